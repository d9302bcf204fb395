//! The `eden_api` example of eden-core, run as a Lambda function process (the real
//! `lambda_runtime` crate) against the local Runtime API, driven with API Gateway (REST API,
//! proxy integration) events. It runs on the example's in-memory cloud (`--in-memory`), so the
//! created environment lives in the function process between invocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use baikonur_e2e::function::{Environments, example_binary};
use baikonur_e2e::runtime_api::{FunctionConfig, Outcome, RuntimeApi};
use serde_json::{Value, json};

const KEY: &str = "s3cret-e2e";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";

/// An API Gateway REST proxy event as API Gateway sends it.
fn apigw(method: &str, path: &str, query: &[(&str, &str)], key: Option<&str>) -> Vec<u8> {
    let mut headers = json!({
        "Accept": "*/*",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-65f2e1c0-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    });
    if let Some(k) = key {
        headers["x-api-key"] = json!(k);
    }
    let multi_headers: serde_json::Map<String, Value> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    let qs: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let multi_qs: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!([v])))
        .collect();
    let query_or_null = |m: serde_json::Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query_or_null(qs),
        "multiValueQueryStringParameters": query_or_null(multi_qs),
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": path,
            "httpMethod": method,
            "extendedRequestId": "UXe1bH-1IAMEbVw=",
            "requestTime": "14/Mar/2024:12:00:00 +0000",
            "path": format!("/prod{path}"),
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123",
            "requestTimeEpoch": 1_710_417_600_000_i64,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {
                "cognitoIdentityPoolId": null, "accountId": null, "cognitoIdentityId": null,
                "caller": null, "sourceIp": "203.0.113.7", "principalOrgId": null,
                "accessKey": null, "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null, "userArn": null,
                "userAgent": "curl/8.5.0", "user": null, "apiKey": key,
            },
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123"
        },
        "body": null,
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

struct Step {
    what: &'static str,
    event: Vec<u8>,
    status: u16,
    check: fn(&Value) -> bool,
}

fn ok(body: &Value) -> bool {
    body["status"] == "ok"
}

fn error(body: &Value) -> bool {
    body["status"] == "error" && body["message"].as_str().is_some_and(|m| !m.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eden_api_example_serves_api_gateway_events_through_the_runtime_api() {
    let binary = example_binary("eden_api").unwrap_or_else(|e| panic!("{e}"));
    let mut config = FunctionConfig::new("eden-api-e2e");
    config.timeout = Duration::from_secs(30);
    config.pickup_timeout = Duration::from_secs(30);
    let api = Arc::new(RuntimeApi::start(config.clone()).await.unwrap());
    let log_dir = std::env::temp_dir().join(format!("baikonur-e2e-eden-{}", std::process::id()));
    let mut envs = Environments::start(
        &binary,
        &["--in-memory"],
        &config,
        &api.address(),
        &[("EDEN_API_KEYS", format!("other-key, {KEY}"))],
        1,
        &log_dir,
    )
    .unwrap();

    let create = [("name", "feature-1"), ("image_uri", IMAGE)];
    let steps = vec![
        Step {
            what: "create",
            event: apigw("POST", "/api/v1/create", &create, Some(KEY)),
            status: 200,
            check: |b| {
                ok(b)
                    && b["endpoint"]
                        .as_str()
                        .is_some_and(|e| e.contains("feature-1"))
            },
        },
        Step {
            what: "deploy to the existing environment",
            event: apigw("GET", "/api/v1/create", &create, Some(KEY)),
            status: 200,
            check: ok,
        },
        Step {
            what: "no API key",
            event: apigw("GET", "/api/v1/create", &create, None),
            status: 401,
            check: error,
        },
        Step {
            what: "wrong API key",
            event: apigw("GET", "/api/v1/create", &create, Some("guess")),
            status: 403,
            check: error,
        },
        Step {
            what: "invalid name",
            event: apigw(
                "GET",
                "/api/v1/create",
                &[("name", "Feature_1!"), ("image_uri", IMAGE)],
                Some(KEY),
            ),
            status: 400,
            check: |b| error(b) && b["parameter"] == "name",
        },
        Step {
            what: "missing image_uri",
            event: apigw("GET", "/api/v1/create", &[("name", "feature-2")], Some(KEY)),
            status: 400,
            check: |b| error(b) && b["parameter"] == "image_uri",
        },
        Step {
            what: "unknown profile",
            event: apigw(
                "GET",
                "/api/v1/delete",
                &[("name", "feature-1"), ("profile", "nope")],
                Some(KEY),
            ),
            status: 404,
            check: |b| error(b) && b["parameter"] == "profile",
        },
        Step {
            what: "unknown path",
            event: apigw(
                "GET",
                "/api/v1/destroy",
                &[("name", "feature-1")],
                Some(KEY),
            ),
            status: 404,
            check: error,
        },
        Step {
            what: "wrong method",
            event: apigw("PUT", "/api/v1/delete", &[("name", "feature-1")], Some(KEY)),
            status: 405,
            check: error,
        },
        Step {
            what: "delete",
            event: apigw("GET", "/api/v1/delete", &[("name", "feature-1")], Some(KEY)),
            status: 200,
            check: ok,
        },
    ];

    let mut problems = Vec::new();
    let mut transcript = Vec::new();
    for step in &steps {
        let invoked = api.invoke(step.event.clone()).await;
        let Outcome::Response(body) = &invoked.outcome else {
            problems.push(format!(
                "{}: invocation failed: {:?}",
                step.what, invoked.outcome
            ));
            continue;
        };
        transcript.push(format!("{}: {}", step.what, String::from_utf8_lossy(body)));
        let response: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: the response is not JSON: {e}", step.what));
                continue;
            }
        };
        if response["statusCode"] != json!(step.status) {
            problems.push(format!(
                "{}: statusCode {}, expected {}",
                step.what, response["statusCode"], step.status
            ));
        }
        if response["headers"]["content-type"] != "application/json"
            || response["isBase64Encoded"] != json!(false)
        {
            problems.push(format!(
                "{}: not a JSON proxy response: {response}",
                step.what
            ));
        }
        let inner: Value = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if !(step.check)(&inner) {
            problems.push(format!("{}: unexpected body {inner}", step.what));
        }
    }

    // An event that is not an API Gateway request: the runtime reports a function error
    // (POST /invocation/{id}/error) and keeps serving.
    let invoked = api
        .invoke(br#"{"httpMethod": 42, "headers": "nope"}"#.to_vec())
        .await;
    match &invoked.outcome {
        Outcome::Error {
            error_type,
            header_type,
            body,
        } => {
            let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if error_type.is_empty() || doc["errorMessage"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("malformed event: error document {doc}"));
            }
            if header_type.is_none() {
                problems.push("malformed event: no Lambda-Runtime-Function-Error-Type".into());
            }
        }
        other => problems.push(format!(
            "malformed event: expected a function error, got {other:?}"
        )),
    }
    let after = api
        .invoke(apigw(
            "GET",
            "/api/v1/delete",
            &[("name", "feature-9")],
            None,
        ))
        .await;
    if !matches!(&after.outcome, Outcome::Response(b) if String::from_utf8_lossy(b).contains("401"))
    {
        problems.push(format!(
            "after a function error the runtime no longer serves: {:?}",
            after.outcome
        ));
    }
    if !api.init_errors().is_empty() {
        problems.push(format!("init errors: {:?}", api.init_errors()));
    }
    let exited = envs.exited();
    if !exited.is_empty() {
        problems.push(format!("environments exited: {exited:?}"));
    }
    envs.stop().await;
    if std::env::var("E2E_SHOW").is_ok() || !problems.is_empty() {
        panic!(
            "eden_api end to end:\n  {}\n\ntranscript:\n{}\n\nruntime API journal:\n{}\n\nfunction output:\n{}",
            problems.join("\n  "),
            transcript.join("\n"),
            api.journal().join("\n"),
            envs.tails(60)
        );
    }
    let _ = std::fs::remove_dir_all(&log_dir);
}
