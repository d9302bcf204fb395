//! The local Runtime API speaks the 2018-06-01 protocol: `next` with Lambda's headers,
//! `response`, `error` and `init/error`, and Lambda's answers to ids it does not know, to late
//! answers and to oversized responses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baikonur_e2e::runtime_api::{FunctionConfig, MAX_RESPONSE_BYTES, Outcome, RuntimeApi};
use baikonur_e2e::scripted::{Reply, ScriptedRuntime};

fn config() -> FunctionConfig {
    let mut c = FunctionConfig::new("runtime-api-test");
    c.timeout = Duration::from_secs(5);
    c.pickup_timeout = Duration::from_secs(5);
    c
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn next_carries_lambdas_headers_and_response_completes_the_invoke() {
    let api = RuntimeApi::start(config()).await.unwrap();
    let runtime = ScriptedRuntime::start(&api.address(), |e| {
        let mut body = b"echo:".to_vec();
        body.extend_from_slice(&e.body);
        Reply::Response(body)
    });
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let first = api.invoke(br#"{"n":1}"#.to_vec()).await;
    let second = api.invoke(br#"{"n":2}"#.to_vec()).await;
    assert_eq!(
        first.outcome,
        Outcome::Response(br#"echo:{"n":1}"#.to_vec())
    );
    assert_eq!(
        second.outcome,
        Outcome::Response(br#"echo:{"n":2}"#.to_vec())
    );
    assert_ne!(first.request_id, second.request_id);

    let got = runtime.received();
    assert_eq!(got.len(), 2);
    let e = &got[0];
    assert_eq!(e.body, br#"{"n":1}"#);
    assert_eq!(
        e.header("lambda-runtime-aws-request-id"),
        Some(first.request_id.as_str())
    );
    let deadline: u128 = e
        .header("lambda-runtime-deadline-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        deadline >= before + 4_000 && deadline <= before + 60_000,
        "deadline {deadline} is not about 5 s after {before}"
    );
    assert_eq!(
        e.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:123456789012:function:runtime-api-test")
    );
    let trace = e.header("lambda-runtime-trace-id").unwrap();
    assert!(
        trace.starts_with("Root=1-") && trace.contains(";Parent=") && trace.contains(";Sampled="),
        "{trace}"
    );
    assert_eq!(e.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn error_reports_a_function_error_with_its_document() {
    let api = RuntimeApi::start(config()).await.unwrap();
    let _runtime = ScriptedRuntime::start(&api.address(), |_| {
        Reply::Error("Handler.Boom".into(), "it broke".into())
    });
    match api.invoke(b"{}".to_vec()).await.outcome {
        Outcome::Error {
            error_type,
            header_type,
            body,
        } => {
            assert_eq!(error_type, "Handler.Boom");
            assert_eq!(header_type.as_deref(), Some("Unhandled"));
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc["errorMessage"], "it broke");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
}

#[tokio::test]
async fn silence_times_out_and_a_late_answer_is_gone() {
    let mut c = config();
    c.timeout = Duration::from_millis(300);
    let api = RuntimeApi::start(c).await.unwrap();
    let runtime = ScriptedRuntime::start(&api.address(), |_| Reply::Silence);
    let invoked = api.invoke(b"{}".to_vec()).await;
    assert_eq!(invoked.outcome, Outcome::TimedOut);
    assert_eq!(runtime.received().len(), 1);
    let base = format!("http://{}/2018-06-01/runtime", api.address());
    let late = client()
        .post(format!("{base}/invocation/{}/response", invoked.request_id))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(late.status().as_u16(), 410);
    let unknown = client()
        .post(format!("{base}/invocation/never-issued/response"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 400);
    let doc: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(doc["errorType"], "InvalidRequestID");
    let nowhere = client()
        .get(format!("{base}/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status().as_u16(), 404);
}

#[tokio::test]
async fn an_oversized_response_is_refused_and_fails_the_invoke() {
    let api = RuntimeApi::start(config()).await.unwrap();
    let _runtime = ScriptedRuntime::start(&api.address(), |_| {
        Reply::Response(vec![b'x'; MAX_RESPONSE_BYTES + 1])
    });
    match api.invoke(b"{}".to_vec()).await.outcome {
        Outcome::Error { error_type, .. } => {
            assert_eq!(error_type, "Function.ResponseSizeTooLarge");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
}

#[tokio::test]
async fn init_errors_are_recorded() {
    let api = RuntimeApi::start(config()).await.unwrap();
    let answer = client()
        .post(format!(
            "http://{}/2018-06-01/runtime/init/error",
            api.address()
        ))
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .body(r#"{"errorType":"Config","errorMessage":"LOG_S3_BUCKET is required"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let errors = api.init_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].header_type.as_deref(), Some("Runtime.InitError"));
    assert!(errors[0].body.contains("LOG_S3_BUCKET"));
}

#[tokio::test]
async fn an_event_nobody_takes_fails_and_is_never_delivered_later() {
    let mut c = config();
    c.pickup_timeout = Duration::from_millis(200);
    let api = RuntimeApi::start(c).await.unwrap();
    assert_eq!(
        api.invoke(b"{\"n\":1}".to_vec()).await.outcome,
        Outcome::NotPickedUp
    );
    // A runtime that starts afterwards gets the next event, not the abandoned one.
    let runtime = ScriptedRuntime::start(&api.address(), |_| Reply::Response(b"null".to_vec()));
    let later = api.invoke(b"{\"n\":2}".to_vec()).await;
    assert_eq!(later.outcome, Outcome::Response(b"null".to_vec()));
    let bodies: Vec<Vec<u8>> = runtime.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, vec![b"{\"n\":2}".to_vec()]);
}

#[tokio::test]
async fn several_runtimes_share_the_events() {
    let api = std::sync::Arc::new(RuntimeApi::start(config()).await.unwrap());
    let a = ScriptedRuntime::start(&api.address(), |_| {
        std::thread::sleep(Duration::from_millis(20));
        Reply::Response(b"\"a\"".to_vec())
    });
    let b = ScriptedRuntime::start(&api.address(), |_| {
        std::thread::sleep(Duration::from_millis(20));
        Reply::Response(b"\"b\"".to_vec())
    });
    let mut calls = Vec::new();
    for i in 0..8 {
        let api = api.clone();
        calls.push(tokio::spawn(async move {
            api.invoke(format!("{i}").into_bytes()).await
        }));
    }
    for c in calls {
        assert!(matches!(c.await.unwrap().outcome, Outcome::Response(_)));
    }
    assert_eq!(a.received().len() + b.received().len(), 8);
}
