//! [`SearchApi`] over HTTP(S) with reqwest + rustls: no auth, basic auth, or AWS SigV4.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use bytes::Bytes;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderName, HeaderValue,
};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::bulk::BulkReply;
use super::{MAX_ANSWER_BYTES, SearchApi, SearchError};

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum SearchAuth {
    /// No authentication (local or VPC-only clusters).
    #[default]
    None,
    /// HTTP basic auth (self-hosted clusters, fine-grained access control users).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// AWS Signature Version 4 for managed domains.
    SigV4 {
        /// The domain's region, e.g. `ap-northeast-1`.
        region: String,
        /// The signing service name: `es` for OpenSearch Service domains, `aoss` for
        /// OpenSearch Serverless.
        service: String,
        /// Where credentials come from (refreshed per request by the provider's cache).
        credentials: SharedCredentialsProvider,
    },
}

impl fmt::Debug for SearchAuth {
    // Never print secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchAuth::None => f.write_str("None"),
            SearchAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            SearchAuth::SigV4 {
                region, service, ..
            } => f
                .debug_struct("SigV4")
                .field("region", region)
                .field("service", service)
                .finish_non_exhaustive(),
        }
    }
}

/// Connection settings of [`HttpSearch`]. Deserializable (auth is set in code).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HttpSearchConfig {
    /// Base URL of the cluster, e.g. `https://search-x.ap-northeast-1.es.amazonaws.com`.
    pub endpoint: String,
    /// Whole-request timeout in milliseconds (default 30 000).
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds (default 5 000).
    pub connect_timeout_ms: u64,
    /// Compress `_bulk` bodies with gzip at this level (1–12, see [`super::gzip_body`]) and
    /// send them with `Content-Encoding: gzip` (default `None`: plain). Elasticsearch,
    /// OpenSearch and AWS-managed domains accept such bodies; the body size limits apply to
    /// the uncompressed body. SigV4 signs the compressed bytes.
    pub gzip_level: Option<u32>,
    /// Send `Accept-Encoding: gzip` and inflate gzip answers (default `true`). Clusters
    /// compress answers when `http.compression` is on.
    pub accept_gzip: bool,
}

impl Default for HttpSearchConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://localhost:9200".to_owned(),
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            gzip_level: None,
            accept_gzip: true,
        }
    }
}

/// An Elasticsearch / OpenSearch cluster over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpSearch {
    client: reqwest::Client,
    base: Url,
    auth: SearchAuth,
    gzip_level: Option<u32>,
    accept_gzip: bool,
    timeout: Duration,
}

/// The `User-Agent` of every request: this crate and its version, so that cluster operators
/// can tell its traffic apart in their logs.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Most bytes of an error body kept in [`SearchError::Status`].
const ERROR_BODY_LIMIT: usize = 2048;

impl HttpSearch {
    /// A client for `config.endpoint` with the given authentication.
    pub fn new(config: &HttpSearchConfig, auth: SearchAuth) -> Result<Self, SearchError> {
        let request_error = |message: String| SearchError::Request {
            operation: "create client",
            resource: config.endpoint.clone(),
            message,
        };
        let mut base = Url::parse(&config.endpoint)
            .map_err(|e| request_error(format!("invalid endpoint URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(request_error(
                "endpoint must be an http(s) URL with a host".into(),
            ));
        }
        if let Some(level) = config.gzip_level
            && !(1..=12).contains(&level)
        {
            return Err(request_error(format!(
                "gzip level {level} is outside 1..=12"
            )));
        }
        // Paths are joined to the base: make sure it ends with '/'.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .build()
            .map_err(|e| request_error(e.to_string()))?;
        Ok(Self {
            client,
            base,
            auth,
            gzip_level: config.gzip_level,
            accept_gzip: config.accept_gzip,
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// The cluster's base URL.
    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    /// Sends one request, authenticated, and returns the success body or a classified error.
    async fn send(
        &self,
        operation: &'static str,
        resource: &str,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, SearchError> {
        let fail_request = |message: String| SearchError::Request {
            operation,
            resource: resource.to_owned(),
            message,
        };
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| fail_request(format!("invalid URL: {e}")))?;
        let mut builder = self.client.request(method, url.clone());
        if self.accept_gzip {
            builder = builder.header(ACCEPT_ENCODING, "gzip");
        }
        let body = match (body, self.gzip_level) {
            (Some(plain), Some(level)) => {
                let gz = super::gzip_body(&plain, level)
                    .map_err(|e| fail_request(format!("gzip of the body: {e}")))?;
                builder = builder.header(CONTENT_ENCODING, "gzip");
                Some(gz)
            }
            (body, _) => body,
        };
        if let Some(body) = &body {
            builder = builder
                .header(CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone());
        }
        if let SearchAuth::Basic { username, password } = &self.auth {
            builder = builder.basic_auth(username, Some(password));
        }
        let mut request = builder.build().map_err(|e| fail_request(e.to_string()))?;
        if let SearchAuth::SigV4 {
            region,
            service,
            credentials,
        } = &self.auth
        {
            sign_request(
                &mut request,
                &url,
                body.as_deref(),
                region,
                service,
                credentials,
            )
            .await
            .map_err(fail_request)?;
        }

        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| classify(operation, resource, &e))?;
        let status = response.status();
        let encoding = response
            .headers()
            .get(CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let raw = response
            .bytes()
            .await
            .map_err(|e| classify(operation, resource, &e))?;
        let decoded = super::decode_answer(encoding.as_deref(), raw.clone(), MAX_ANSWER_BYTES);
        if !status.is_success() {
            // An error answer that does not inflate is still worth showing as it came.
            let bytes = decoded.unwrap_or(raw);
            let end = bytes.len().min(ERROR_BODY_LIMIT);
            return Err(SearchError::Status {
                operation,
                resource: resource.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes[..end]).into_owned(),
            });
        }
        decoded.map_err(|message| SearchError::Malformed {
            operation,
            resource: resource.to_owned(),
            message,
        })
    }
}

fn classify(operation: &'static str, resource: &str, e: &reqwest::Error) -> SearchError {
    // Include the source chain: reqwest's top-level message hides "connection reset".
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        SearchError::Timeout {
            operation,
            resource: resource.to_owned(),
            message,
        }
    } else if e.is_builder() {
        SearchError::Request {
            operation,
            resource: resource.to_owned(),
            message,
        }
    } else {
        SearchError::Transport {
            operation,
            resource: resource.to_owned(),
            message,
        }
    }
}

/// Adds SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and
/// `x-amz-security-token` for temporary credentials) to `request`.
async fn sign_request(
    request: &mut reqwest::Request,
    url: &Url,
    body: Option<&[u8]>,
    region: &str,
    service: &str,
    provider: &SharedCredentialsProvider,
) -> Result<(), String> {
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| format!("loading AWS credentials: {e}"))?;
    let identity = credentials.into();
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err("URL has no host".to_owned()),
    };
    // Send exactly the Host that was signed.
    request.headers_mut().insert(
        HOST,
        HeaderValue::from_str(&host).map_err(|e| format!("host header: {e}"))?,
    );
    let mut settings = SigningSettings::default();
    // OpenSearch Serverless requires the payload hash header; domains accept it.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?;
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body.unwrap_or_default()),
    )
    .map_err(|e| format!("signing request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params.into())
        .map_err(|e| format!("signing request: {e}"))?
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    for header in new_headers {
        let name = HeaderName::from_bytes(header.name().as_bytes())
            .map_err(|e| format!("signed header name {}: {e}", header.name()))?;
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|e| format!("signed header {}: {e}", header.name()))?;
        value.set_sensitive(header.sensitive());
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[derive(Deserialize)]
struct CatIndex {
    index: String,
}

#[async_trait]
impl SearchApi for HttpSearch {
    fn request_timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    async fn bulk(&self, body: Bytes) -> Result<BulkReply, SearchError> {
        let answer = self
            .send("bulk", "_bulk", Method::POST, "_bulk", Some(body))
            .await?;
        BulkReply::parse(&answer).map_err(|message| SearchError::Malformed {
            operation: "bulk",
            resource: "_bulk".to_owned(),
            message,
        })
    }

    async fn list_indices(&self) -> Result<Vec<String>, SearchError> {
        let resource = "_cat/indices";
        let answer = self
            .send(
                "list indices",
                resource,
                Method::GET,
                "_cat/indices?format=json&h=index",
                None,
            )
            .await?;
        let rows: Vec<CatIndex> =
            serde_json::from_slice(&answer).map_err(|e| SearchError::Malformed {
                operation: "list indices",
                resource: resource.to_owned(),
                message: e.to_string(),
            })?;
        Ok(rows.into_iter().map(|r| r.index).collect())
    }

    async fn delete_indices(&self, names: &[String]) -> Result<(), SearchError> {
        if names.is_empty() {
            return Ok(());
        }
        let joined = names.join(",");
        // Valid index names need no escaping except for non-ASCII; let Url encode those.
        let path = format!("{joined}?ignore_unavailable=true");
        self.send("delete indices", &joined, Method::DELETE, &path, None)
            .await?;
        Ok(())
    }
}
