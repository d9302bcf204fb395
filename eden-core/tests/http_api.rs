//! The transport-free HTTP API handler against the in-memory cloud: every status code, the
//! API key check, parameter validation before any cloud call, create/delete, the lease (409)
//! and the API Gateway adapter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eden_core::cloud::{AttrValue, CloudError, CloudResult, ImageDetails, ImageRegistry, Item};
use eden_core::http_api::{ApiHandler, ApiKeys, ApiRequest, ApiResponse};
use eden_core::image::EcrImage;
use eden_core::instrument::{Fault, Instrumentation};
use eden_core::lease::{self, LeaseOptions};
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::remote::RemoteProfiles;
use eden_core::{Cloud, Environment, Profile};

const KEY: &str = "k-0123456789";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";

struct Setup {
    cloud: Cloud,
    inst: Arc<Instrumentation>,
    api: ApiHandler,
}

async fn setup() -> Setup {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    RemoteProfiles::new(memory.cloud())
        .push(&profile)
        .await
        .unwrap();
    let inst = Instrumentation::new(Duration::ZERO);
    let cloud = memory.cloud().instrumented(&inst);
    inst.reset();
    let api = ApiHandler::new(cloud.clone(), ApiKeys::new(["other-key", KEY]));
    Setup { cloud, inst, api }
}

fn create(name: &str, image: &str) -> ApiRequest {
    ApiRequest::new("GET", "/api/v1/create")
        .header("x-api-key", KEY)
        .query("name", name)
        .query("image_uri", image)
}

fn delete(name: &str) -> ApiRequest {
    ApiRequest::new("POST", "/api/v1/delete")
        .header("X-API-Key", KEY)
        .query("name", name)
}

fn assert_error(r: &ApiResponse, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["status"], "error", "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test]
async fn create_and_delete_through_the_handler() {
    let s = setup().await;
    let r = s.api.handle(&create("feature-1", IMAGE)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["name"], "feature-1");
    assert_eq!(r.body["profile"], "default");
    assert_eq!(r.body["endpoint"], "api-feature-1.dev.example.com");
    assert!(r.body["message"].as_str().unwrap().contains("created"));
    let eden = Environment::new(s.cloud.clone());
    assert_eq!(eden.list(Some("default")).await.unwrap().len(), 1);
    // Deploying again converges.
    assert_eq!(s.api.handle(&create("feature-1", IMAGE)).await.status, 200);

    let r = s.api.handle(&delete("feature-1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["endpoint"], "api-feature-1.dev.example.com");
    assert!(eden.list(None).await.unwrap().is_empty());
    // Trailing slash and explicit profile.
    let r = s
        .api
        .handle(&delete("feature-1").query("profile", "default"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn api_key_is_required_and_checked() {
    let s = setup().await;
    let no_key = ApiRequest::new("GET", "/api/v1/create").query("name", "a");
    assert_error(&s.api.handle(&no_key).await, 401, "missing API key");
    let empty = no_key.clone().header("x-api-key", "");
    assert_error(&s.api.handle(&empty).await, 401, "missing API key");
    for wrong in [
        "k-012345678",
        "k-01234567890",
        "K-0123456789",
        "other-key ",
        "x",
    ] {
        let r = s
            .api
            .handle(&no_key.clone().header("x-api-key", wrong))
            .await;
        assert_error(&r, 403, "invalid API key");
    }
    // Any configured key works; the header name is case-insensitive.
    let r = s
        .api
        .handle(&delete("a").header("X-API-KEY", "other-key"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Unknown paths answer 404 only to holders of a key.
    let elsewhere = ApiRequest::new("GET", "/api/v2/create");
    assert_eq!(s.api.handle(&elsewhere).await.status, 401);
    let r = s.api.handle(&elsewhere.header("x-api-key", KEY)).await;
    assert_error(&r, 404, "no such path");
    // No key configured: nothing is accepted.
    let closed = ApiHandler::new(s.cloud.clone(), ApiKeys::new(Vec::<String>::new()));
    assert_eq!(closed.handle(&delete("a")).await.status, 403);
}

#[tokio::test]
async fn bad_parameters_are_400_before_any_cloud_call() {
    let s = setup().await;
    let cases: Vec<(ApiRequest, &str)> = vec![
        (
            ApiRequest::new("GET", "/api/v1/create")
                .header("x-api-key", KEY)
                .query("image_uri", IMAGE),
            "name",
        ),
        (create("", IMAGE), "name"),
        (create("a/b", IMAGE), "name"),
        (create("a_b", IMAGE), "name"),
        (create("Feature", IMAGE), "name"),
        (create("-lead", IMAGE), "name"),
        (create("trail-", IMAGE), "name"),
        (create(&"a".repeat(64), IMAGE), "name"),
        (create(&"a".repeat(100), IMAGE), "name"),
        (
            ApiRequest::new("GET", "/api/v1/create")
                .header("x-api-key", KEY)
                .query("name", "ok"),
            "image_uri",
        ),
        (create("ok", ""), "image_uri"),
        (create("ok", "has space:1"), "image_uri"),
        (
            create(
                "ok",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:xyz",
            ),
            "image_uri",
        ),
        (
            create("ok", "123456789012.dkr.ecr.us-east-1.amazonaws.com/Web:v1"),
            "image_uri",
        ),
        (
            create(
                "ok",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:bad tag",
            ),
            "image_uri",
        ),
        (create("ok", IMAGE).query("profile", "a/b"), "profile"),
        (create("ok", IMAGE).query("profile", "_lease"), "profile"),
        (create("ok", IMAGE).query("profile", ""), "profile"),
        (delete("a_b"), "name"),
        (
            ApiRequest::new("GET", "/api/v1/delete").header("x-api-key", KEY),
            "name",
        ),
    ];
    for (request, parameter) in cases {
        let r = s.api.handle(&request).await;
        assert_eq!(r.status, 400, "{request:?}: {}", r.body);
        assert_eq!(r.body["parameter"], parameter, "{request:?}: {}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains(parameter),
            "{}",
            r.body
        );
    }
    assert!(s.inst.calls().is_empty(), "{:?}", s.inst.calls());
    let r = s
        .api
        .handle(&ApiRequest::new("PUT", "/api/v1/create").header("x-api-key", KEY))
        .await;
    assert_error(&r, 405, "not allowed");
    assert!(s.inst.calls().is_empty());
}

#[tokio::test]
async fn every_image_uri_form_of_spec_3_3() {
    let s = setup().await;
    // Seeded by the in-memory cloud: web:v2 in us-east-1 (by tag and by digest).
    let ok = [
        IMAGE.to_owned(),
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:{}",
            "2".repeat(64)
        ),
        "public.ecr.aws/nginx/nginx:1.27".to_owned(),
        "nginx:1.27".to_owned(),
        "nginx".to_owned(),
        "ghcr.io/org/app:v1".to_owned(),
        "docker.io/library/redis@sha256:".to_owned() + &"a".repeat(64),
        // FIPS and dual-stack hosts name the same registry.
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/web:v1".to_owned(),
        "123456789012.dkr-ecr.us-east-1.on.aws/web:v1".to_owned(),
    ];
    for (i, image) in ok.iter().enumerate() {
        let r = s.api.handle(&create(&format!("img-{i}"), image)).await;
        assert_eq!(r.status, 200, "{image}: {}", r.body);
    }
    // Valid private ECR forms whose images do not exist: checked, and refused as not found.
    let missing = [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v9",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v1",
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/web:v9",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web:v1",
        "123456789012.dkr-ecr.us-east-1.on.aws/web:v9",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/other@sha256:abababababababababababababababababababababababababababababababab",
    ];
    for image in missing {
        let r = s.api.handle(&create("missing", image)).await;
        assert_eq!(r.status, 400, "{image}: {}", r.body);
        assert_eq!(r.body["parameter"], "image_uri");
        let code = r.body["aws_error_code"].as_str().unwrap();
        assert!(code.ends_with("NotFoundException"), "{image}: {code}");
    }
}

#[tokio::test]
async fn unknown_and_invalid_profiles() {
    let s = setup().await;
    let r = s
        .api
        .handle(&create("a", IMAGE).query("profile", "prod"))
        .await;
    assert_error(&r, 404, "unknown profile");
    assert_eq!(r.body["profile"], "prod");
    let r = s.api.handle(&delete("a").query("profile", "prod")).await;
    assert_eq!(r.status, 404);
    // A profile item that is not a valid profile is our problem, not the client's nor AWS's.
    let item = Item::from([
        ("type".into(), AttrValue::S("_profile".into())),
        ("name".into(), AttrValue::S("broken".into())),
        (
            "profile".into(),
            AttrValue::S("{\"name_prefix\": \"\"}".into()),
        ),
    ]);
    s.cloud
        .state
        .put_item("eden", item, eden_core::cloud::WriteCondition::None)
        .await
        .unwrap();
    let r = s.api.handle(&delete("a").query("profile", "broken")).await;
    assert_error(&r, 500, "broken");
}

/// Holds environment `name` of the default profile for another run, as a create that is
/// still running (or died a minute ago) leaves it.
async fn hold(cloud: &Cloud, name: &str, until_ms: i64) {
    cloud.state.ensure_table("eden").await.unwrap();
    let item = Item::from([
        ("type".into(), AttrValue::S("default".into())),
        ("name".into(), AttrValue::S(name.into())),
        ("kind".into(), AttrValue::S("environment".into())),
        ("last_updated".into(), AttrValue::N("1700000000".into())),
        (lease::STATUS.into(), AttrValue::S("creating".into())),
        (lease::RUN.into(), AttrValue::S("other-run".into())),
        (lease::LEASE_HOLDER.into(), AttrValue::S("other-run".into())),
        (
            lease::LEASE_UNTIL.into(),
            AttrValue::N(until_ms.to_string()),
        ),
        (lease::LEASE_OPERATION.into(), AttrValue::S("create".into())),
    ]);
    cloud
        .state
        .put_item("eden", item, eden_core::cloud::WriteCondition::None)
        .await
        .unwrap();
}

#[tokio::test]
async fn busy_environment_is_409_until_the_lease_is_broken() {
    let s = setup().await;
    let api = s
        .api
        .clone()
        .with_lease(LeaseOptions::default().wait(Duration::ZERO));
    let now_ms = chrono::Utc::now().timestamp_millis();
    hold(&s.cloud, "feature-1", now_ms + 600_000).await;
    let r = api.handle(&create("feature-1", IMAGE)).await;
    assert_error(&r, 409, "busy");
    assert!(r.body["busy_until"].as_i64().unwrap() > now_ms / 1000);
    assert!(
        r.body["message"].as_str().unwrap().contains("other-run"),
        "{}",
        r.body
    );
    assert_error(&api.handle(&delete("feature-1")).await, 409, "busy");
    // Other environments are not blocked.
    assert_eq!(api.handle(&create("feature-2", IMAGE)).await.status, 200);
    // Breaking the lease frees the environment; the next create finishes it.
    let eden = Environment::new(s.cloud.clone());
    let broken = eden.break_lease("default", "feature-1").await.unwrap();
    assert_eq!(broken.map(|l| l.run), Some("other-run".to_owned()));
    assert_eq!(
        eden.lease_holder("default", "feature-1").await.unwrap(),
        None
    );
    let r = api.handle(&create("feature-1", IMAGE)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn an_abandoned_lease_is_taken_over_after_it_expires() {
    let s = setup().await;
    let api = s.api.clone().with_lease(
        LeaseOptions::default()
            .wait(Duration::from_secs(5))
            .poll(Duration::from_millis(20)),
    );
    let started = std::time::Instant::now();
    hold(
        &s.cloud,
        "feature-1",
        chrono::Utc::now().timestamp_millis() + 300,
    )
    .await;
    let r = api.handle(&create("feature-1", IMAGE)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn concurrent_requests_on_one_environment() {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    RemoteProfiles::new(memory.cloud())
        .push(&profile)
        .await
        .unwrap();
    let inst = Instrumentation::new(Duration::from_millis(2));
    let api = ApiHandler::new(memory.cloud().instrumented(&inst), ApiKeys::new([KEY]));
    // The second waits for the first one's lease, then runs.
    let (first, second) = (create("same", IMAGE), delete("same"));
    let (a, b) = tokio::join!(api.handle(&first), api.handle(&second));
    assert_eq!([a.status, b.status], [200, 200], "{} {}", a.body, b.body);
    // Without waiting, the second is told the environment is busy.
    let api = api.with_lease(LeaseOptions::default().wait(Duration::ZERO));
    let (a, b) = tokio::join!(api.handle(&first), api.handle(&first));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", a.body, b.body);
}

/// An image registry that is being throttled.
struct Throttled;

#[async_trait]
impl ImageRegistry for Throttled {
    async fn describe_image(&self, _: &EcrImage) -> CloudResult<ImageDetails> {
        Err(CloudError::new("ThrottlingException", "Rate exceeded"))
    }
}

#[tokio::test]
async fn aws_failures_are_502_or_503_with_the_code() {
    let s = setup().await;
    s.inst.inject(Fault::Op {
        op: "ecs.create_service".into(),
        nth: 0,
    });
    let r = s.api.handle(&create("feature-1", IMAGE)).await;
    assert_error(&r, 502, "InjectedFault");
    assert_eq!(r.body["aws_error_code"], "InjectedFault");
    assert_eq!(r.body["step"], "ECS service");
    // Rolled back, and the lease released: the retry works.
    assert_eq!(s.api.handle(&create("feature-1", IMAGE)).await.status, 200);

    let mut cloud = s.cloud.clone();
    cloud.images = Arc::new(Throttled);
    let api = ApiHandler::new(cloud, ApiKeys::new([KEY]));
    let r = api.handle(&create("feature-2", IMAGE)).await;
    assert_error(&r, 503, "Rate exceeded");
    assert_eq!(r.body["aws_error_code"], "ThrottlingException");

    s.inst.reset();
    s.inst.inject(Fault::Op {
        op: "dynamodb.get_item".into(),
        nth: 0,
    });
    let r = s.api.handle(&delete("feature-1")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.body["aws_error_code"], "InjectedFault");
}

#[cfg(feature = "lambda-events")]
#[tokio::test]
async fn api_gateway_adapter() {
    use aws_lambda_events::apigw::ApiGatewayProxyRequest;
    use aws_lambda_events::encodings::Body;

    let s = setup().await;
    // from_str: the method deserializer borrows its text, which from_value cannot lend.
    let event: ApiGatewayProxyRequest = serde_json::from_str(
        &serde_json::json!({
            "resource": "/api/v1/create",
            "path": "/api/v1/create",
            "httpMethod": "GET",
            "headers": {"X-Api-Key": KEY, "Host": "example.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {},
            "queryStringParameters": {"name": "from-apigw", "image_uri": IMAGE},
            "multiValueQueryStringParameters": {},
            "pathParameters": {},
            "stageVariables": {},
            "requestContext": {"httpMethod": "GET"},
            "body": null,
            "isBase64Encoded": false
        })
        .to_string(),
    )
    .unwrap();
    let response = s.api.handle_apigw(&event).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(response.headers["content-type"], "application/json");
    let Some(Body::Text(text)) = &response.body else {
        panic!("{:?}", response.body)
    };
    let body: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["endpoint"], "api-from-apigw.dev.example.com");

    let mut anonymous = event.clone();
    anonymous.headers.clear();
    assert_eq!(s.api.handle_apigw(&anonymous).await.status_code, 401);
}

/// The `eden_api` example handles an API Gateway event in-process (`--event`), as the Lambda
/// runtime would hand it over.
#[cfg(feature = "lambda-events")]
#[test]
fn the_eden_api_example_handles_an_api_gateway_event() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("eden_api{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with cargo test",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("eden-api-{:08x}", fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let event = dir.join("event.json");
    let write = |name: &str, key: &str| {
        let body = serde_json::json!({
            "resource": "/api/v1/create",
            "path": "/api/v1/create",
            "httpMethod": "POST",
            "headers": {"x-api-key": key},
            "multiValueHeaders": {},
            "queryStringParameters": {"name": name, "image_uri": IMAGE},
            "multiValueQueryStringParameters": {},
            "pathParameters": {},
            "stageVariables": {},
            "requestContext": {"httpMethod": "POST"},
            "body": null,
            "isBase64Encoded": false
        });
        std::fs::write(&event, body.to_string()).unwrap();
    };
    let run = || {
        let out = std::process::Command::new(&bin)
            .args(["--in-memory", "--event"])
            .arg(&event)
            .env("EDEN_API_KEYS", "s3cret")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        (response["statusCode"].as_i64().unwrap(), body)
    };
    write("from-event", "s3cret");
    let (status, body) = run();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["endpoint"], "api-from-event.dev.example.com");
    write("from-event", "wrong");
    assert_eq!(run().0, 403);
    std::fs::remove_dir_all(dir).ok();
}
