//! The HTTP API of the original lambda-eden-api as a transport-free handler: an [`ApiRequest`]
//! in, an [`ApiResponse`] out (the user guide:
//! [The HTTP API](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/eden.md#the-http-api)).
//! A Lambda function or an HTTP server wraps it; `lambda` (feature `lambda-events`) adapts
//! API Gateway proxy events.
//!
//! * `GET|POST /api/v1/create?name=..&image_uri=..[&profile=default]`
//! * `GET|POST /api/v1/delete?name=..[&profile=default]`
//!
//! The profile is read from the state table. Checks run in this order, and nothing reaches AWS
//! before the parameters are valid: API key (`x-api-key`, compared in constant time: 401 when
//! absent, 403 when wrong), path (404), method (405), parameters (400, naming the parameter),
//! profile (404 when unknown), then the operation: 200; 400 for what is wrong with the request
//! or the profile (a missing cluster, an invalid value: the body names the `profile_key`), 403
//! when AWS denies a permission (`profile_key` and `aws_error_code`), 409 when a resource is not
//! the environment's, or the environment is busy, 504 when the service did not become stable in
//! time, and 502/503 only when AWS itself fails (a 5xx answer, throttling, the network). The
//! body is always `{"status": "ok"|"error", "message": ..., ...}`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use eden_core::http_api::{ApiHandler, ApiKeys, ApiRequest};
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::remote::RemoteProfiles;
//! use eden_core::Profile;
//!
//! let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
//! RemoteProfiles::new(memory.cloud()).push(&Profile::example()).await.unwrap();
//! let api = ApiHandler::new(memory.cloud(), ApiKeys::new(["s3cret"]));
//!
//! let request = ApiRequest::new("GET", "/api/v1/create")
//!     .header("X-Api-Key", "s3cret")
//!     .query("name", "feature-1")
//!     .query("image_uri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2");
//! let response = api.handle(&request).await;
//! assert_eq!(response.status, 200);
//! assert_eq!(response.body["endpoint"], "api-feature-1.dev.example.com");
//!
//! let wrong = ApiRequest::new("GET", "/api/v1/delete").header("x-api-key", "guess");
//! assert_eq!(api.handle(&wrong).await.status, 403);
//! # });
//! ```

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cloud::Cloud;
use crate::environment::{CreateOptions, DeleteOptions, Environment, Outcome};
use crate::error::{Error, ErrorClass};
use crate::image::ImageRef;
use crate::lease::LeaseOptions;
use crate::names::EnvironmentName;
use crate::remote::validate_profile_name;

/// Path of the create operation.
pub const CREATE_PATH: &str = "/api/v1/create";
/// Path of the delete operation.
pub const DELETE_PATH: &str = "/api/v1/delete";
/// The API key header (matched case-insensitively).
pub const API_KEY_HEADER: &str = "x-api-key";
/// The profile used when the request names none.
pub const DEFAULT_PROFILE: &str = "default";

/// A request, as far as the API needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    /// HTTP method (`GET`, `POST`...).
    pub method: String,
    /// Path, e.g. `/api/v1/create`.
    pub path: String,
    /// Query string parameters (first value of each).
    pub query: BTreeMap<String, String>,
    /// Headers; names are compared case-insensitively.
    pub headers: BTreeMap<String, String>,
}

impl ApiRequest {
    /// A request without parameters or headers.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.insert(key.into(), value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// A header's value, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status code and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// `{"status": "ok"|"error", "message": ..., ...}`.
    pub body: Value,
}

impl ApiResponse {
    fn ok(message: String, fields: Value) -> Self {
        Self::with(200, "ok", message, fields)
    }

    fn error(status: u16, message: impl Into<String>, fields: Value) -> Self {
        Self::with(status, "error", message.into(), fields)
    }

    fn with(status: u16, outcome: &str, message: String, fields: Value) -> Self {
        let mut body = json!({"status": outcome, "message": message});
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        Self { status, body }
    }

    /// The body as JSON text.
    pub fn body_text(&self) -> String {
        self.body.to_string()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The accepted API keys. Keys are kept as SHA-256 digests and a presented key is compared
/// with every one of them in constant time, so neither the length nor the content of a key,
/// nor which key matched, shows in the response time.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys, not even their digests.
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Accepts any of `keys` (empty strings are ignored; with no key every request is refused).
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            digests: keys
                .into_iter()
                .filter(|k| !k.as_ref().is_empty())
                .map(|k| Sha256::digest(k.as_ref().as_bytes()).into())
                .collect(),
        }
    }

    /// Keys from a comma-separated list (e.g. an environment variable).
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(',').map(str::trim))
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `presented` is one of the keys (constant time, no early exit).
    pub fn verify(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digests
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &digest))
    }
}

/// The API handler.
#[derive(Debug, Clone)]
pub struct ApiHandler {
    eden: Environment,
    keys: ApiKeys,
    create_options: CreateOptions,
}

/// Which operation a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Delete,
}

/// Validated parameters.
struct Params {
    profile: String,
    name: String,
    image_uri: Option<String>,
}

fn bad_parameter(parameter: &str, message: impl Into<String>) -> ApiResponse {
    ApiResponse::error(400, message, json!({"parameter": parameter}))
}

/// The response for a failed create or delete.
fn error_response(error: &Error) -> ApiResponse {
    let message = error.to_string();
    let root = error.root();
    let mut fields = serde_json::Map::new();
    if let Some(key) = error.profile_key() {
        fields.insert("profile_key".into(), json!(key));
    }
    match root {
        Error::Cloud { step, source, .. } => {
            fields.insert("aws_error_code".into(), json!(source.code));
            fields.insert("step".into(), json!(step.to_string()));
        }
        Error::Conflict { step, .. } | Error::Contention { step, .. } => {
            fields.insert("step".into(), json!(step.to_string()));
        }
        Error::Timeout { step, outcome, .. } => {
            fields.insert("step".into(), json!(step.to_string()));
            if let Some(outcome) = outcome {
                fields.insert("resources".into(), json!(outcome.resources));
            }
        }
        Error::NotOwned {
            kind,
            resource,
            owner,
        } => {
            fields.insert("resource_kind".into(), json!(kind));
            fields.insert("resource".into(), json!(resource));
            fields.insert("owner".into(), json!(owner));
        }
        Error::Busy { expires_at_ms, .. } => {
            fields.insert("busy_until".into(), json!(expires_at_ms.div_euclid(1000)));
        }
        Error::RolloutFailed { events, .. } => {
            fields.insert("events".into(), json!(events));
        }
        Error::AlbFull { code, .. } | Error::ImageNotFound { code, .. } => {
            fields.insert("aws_error_code".into(), json!(code));
        }
        _ => {}
    }
    let parameter = match root {
        Error::Name(_) | Error::ReferenceCollision { .. } => Some("name"),
        Error::ImageUri(_) | Error::ImageNotFound { .. } => Some("image_uri"),
        _ => None,
    };
    if let Some(parameter) = parameter {
        fields.insert("parameter".into(), json!(parameter));
    }
    if let Error::RollbackIncomplete { leftover, .. } = error {
        fields.insert("leftover".into(), json!(leftover));
    }
    let status = match error.class() {
        // A stored profile that does not parse is this deployment's problem, not the client's.
        ErrorClass::Invalid if matches!(root, Error::Profile(_)) => 500,
        ErrorClass::Invalid => 400,
        ErrorClass::AccessDenied => 403,
        ErrorClass::Conflict | ErrorClass::Busy => 409,
        ErrorClass::Timeout => 504,
        ErrorClass::Unavailable => 503,
        ErrorClass::CloudFailure => 502,
        _ => 500,
    };
    fields.insert("error_class".into(), json!(error.class()));
    ApiResponse::error(status, message, Value::Object(fields))
}

impl ApiHandler {
    /// A handler on `cloud` accepting `keys`, with the state table `eden`.
    pub fn new(cloud: Cloud, keys: ApiKeys) -> Self {
        Self {
            eden: Environment::new(cloud),
            keys,
            create_options: CreateOptions::default(),
        }
    }

    /// Uses another state table.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.eden = self.eden.with_table(table);
        self
    }

    /// Takes environment leases this way (API Gateway gives a request 29 seconds: keep the
    /// wait for a busy environment below that).
    pub fn with_lease(mut self, options: LeaseOptions) -> Self {
        self.eden = self.eden.with_lease(options);
        self
    }

    /// Options for every create (e.g. waiting until the service is stable).
    pub fn with_create_options(mut self, options: CreateOptions) -> Self {
        self.create_options = options;
        self
    }

    /// Handles one request. Never fails: every problem is a response.
    pub async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let response = self.respond(request).await;
        tracing::info!(
            method = %request.method,
            path = %request.path,
            status = response.status,
            "eden api request"
        );
        response
    }

    async fn respond(&self, request: &ApiRequest) -> ApiResponse {
        match request.header_value(API_KEY_HEADER) {
            None | Some("") => {
                return ApiResponse::error(
                    401,
                    format!("missing API key: send it in the {API_KEY_HEADER} header"),
                    json!({}),
                );
            }
            Some(key) if !self.keys.verify(key) => {
                return ApiResponse::error(403, "invalid API key", json!({}));
            }
            Some(_) => {}
        }
        let path = request.path.trim_end_matches('/');
        let operation = match path {
            CREATE_PATH => Operation::Create,
            DELETE_PATH => Operation::Delete,
            _ => {
                return ApiResponse::error(
                    404,
                    format!(
                        "no such path {:?}: use {CREATE_PATH} or {DELETE_PATH}",
                        request.path
                    ),
                    json!({}),
                );
            }
        };
        if !matches!(request.method.to_ascii_uppercase().as_str(), "GET" | "POST") {
            return ApiResponse::error(
                405,
                format!("method {} not allowed: use GET or POST", request.method),
                json!({"allow": "GET, POST"}),
            );
        }
        let params = match validate(operation, request) {
            Ok(params) => params,
            Err(response) => return response,
        };
        let environment = &self.eden;
        let profile = match environment.pull_profile(&params.profile).await {
            Ok(Some(profile)) => profile,
            Ok(None) => {
                return ApiResponse::error(
                    404,
                    format!(
                        "unknown profile {:?}: push it to state table {} first",
                        params.profile,
                        environment.table()
                    ),
                    json!({"parameter": "profile", "profile": params.profile}),
                );
            }
            Err(e) => return error_response(&e),
        };
        let result = match (operation, &params.image_uri) {
            (Operation::Create, Some(image)) => {
                self.eden
                    .create(&profile, &params.name, image, &self.create_options)
                    .await
            }
            _ => {
                self.eden
                    .delete(&profile, &params.name, &DeleteOptions::default())
                    .await
            }
        };
        match result {
            Ok(outcome) => success(operation, &outcome),
            Err(e) => error_response(&e),
        }
    }
}

fn success(operation: Operation, outcome: &Outcome) -> ApiResponse {
    let verb = match operation {
        Operation::Create => "created",
        Operation::Delete => "deleted",
    };
    let name = outcome.names.env.as_str();
    ApiResponse::ok(
        format!("environment {name} of profile {} {verb}", outcome.profile),
        json!({
            "name": name,
            "profile": outcome.profile,
            "endpoint": outcome.host,
            "resources": outcome.resources,
        }),
    )
}

/// Checks every parameter before anything touches AWS; the error names the parameter.
fn validate(operation: Operation, request: &ApiRequest) -> Result<Params, ApiResponse> {
    let get = |key: &str| request.query.get(key).map(String::as_str);
    let profile = get("profile").unwrap_or(DEFAULT_PROFILE);
    validate_profile_name(profile)
        .map_err(|why| bad_parameter("profile", format!("invalid parameter profile: {why}")))?;
    let name = match get("name") {
        None => return Err(bad_parameter("name", "missing parameter name")),
        Some(name) => name,
    };
    EnvironmentName::new(name)
        .map_err(|e| bad_parameter("name", format!("invalid parameter name: {e}")))?;
    let image_uri = match operation {
        Operation::Delete => None,
        Operation::Create => {
            let image = get("image_uri")
                .ok_or_else(|| bad_parameter("image_uri", "missing parameter image_uri"))?;
            ImageRef::parse(image).map_err(|e| {
                bad_parameter("image_uri", format!("invalid parameter image_uri: {e}"))
            })?;
            Some(image.to_owned())
        }
    };
    Ok(Params {
        profile: profile.to_owned(),
        name: name.to_owned(),
        image_uri,
    })
}

/// API Gateway (REST API, proxy integration) requests and responses.
#[cfg(feature = "lambda-events")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda-events")))]
pub mod lambda {
    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
    use aws_lambda_events::encodings::Body;
    use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};

    use super::{ApiHandler, ApiRequest, ApiResponse};

    /// The request's method, path, query parameters and headers (non-UTF-8 headers dropped).
    pub fn request_from_apigw(event: &ApiGatewayProxyRequest) -> ApiRequest {
        ApiRequest {
            method: event.http_method.as_str().to_owned(),
            path: event.path.clone().unwrap_or_default(),
            query: event
                .query_string_parameters
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            headers: event
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
        }
    }

    /// A JSON proxy response.
    pub fn response_to_apigw(response: &ApiResponse) -> ApiGatewayProxyResponse {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut out = ApiGatewayProxyResponse::default();
        out.status_code = i64::from(response.status);
        out.headers = headers;
        out.body = Some(Body::Text(response.body_text()));
        out.is_base64_encoded = false;
        out
    }

    impl ApiHandler {
        /// Handles an API Gateway proxy event.
        pub async fn handle_apigw(
            &self,
            event: &ApiGatewayProxyRequest,
        ) -> ApiGatewayProxyResponse {
            response_to_apigw(&self.handle(&request_from_apigw(event)).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
        let keys = ApiKeys::new(["one", "", "two"]);
        assert_eq!(keys.len(), 2);
        assert!(keys.verify("one") && keys.verify("two"));
        assert!(!keys.verify("") && !keys.verify("on") && !keys.verify("one "));
        assert!(!ApiKeys::default().verify(""));
        assert_eq!(ApiKeys::from_list(" a, b ,").len(), 2);
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
    }
}
