//! Lambda handler replacing the original kinesis-to-es function: indexes the records of a
//! Kinesis batch into Elasticsearch / OpenSearch (`{INDEX_NAME_PREFIX}-{log_type}-{%Y%m%d}`,
//! dated from each record's own timestamp) and dead-letters failures and rejections to S3.
//!
//! Environment: `ES_HOST` (required; a host name as in the original module, or a URL),
//! `INDEX_NAME_PREFIX` (required), `ES_DOC_ID` (`none` (default), `log_id` or `origin`: a
//! deterministic `_id` so that replays overwrite), `ES_SIGV4` (`true`/`false`; default: sign
//! when the host is an AWS domain, `*.es.amazonaws.com`, `*.aos.*.on.aws` or
//! `*.aoss.amazonaws.com`, with credentials and region from the AWS SDK defaults),
//! `ES_USERNAME`/`ES_PASSWORD` (basic auth, self-hosted), `LOG_TYPE_FIELD`, `LOG_ID_FIELD`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated),
//! `FAILED_LOG_S3_BUCKET` (without it failures are only logged), `FAILED_LOG_S3_PREFIX`,
//! `LOG_TIMEZONE` (IANA name, else `TZ`; dates of index names).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.
//!
//! Offline: `cargo run -p logging-core --all-features --example kinesis_to_es -- EVENT_JSON`
//! runs the event file through the same pipeline into an in-memory cluster (`ES_HOST` is
//! not needed; `INDEX_NAME_PREFIX` defaults to `logs`) and prints the report and indices.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[path = "common/search_env.rs"]
mod search_env;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;
use logging_core::Pipeline;
use logging_core::search::{
    DocIdMode, MemorySearch, SearchApi, SearchDestination, SearchDestinationConfig,
};

/// The settings this function reads besides the connection and the schema variables.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    index_prefix: String,
    doc_id: DocIdMode,
}

/// Reads [`Settings`] through `get` (the environment in `main`, a map in tests).
fn settings(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let doc_id = match get("ES_DOC_ID").as_deref() {
        None | Some("none") => DocIdMode::None,
        Some("log_id") => DocIdMode::LogId,
        Some("origin") => DocIdMode::Origin,
        Some(other) => return Err(format!("ES_DOC_ID={other:?}: use none, log_id or origin")),
    };
    Ok(Settings {
        index_prefix: get("INDEX_NAME_PREFIX")
            .ok_or("environment variable INDEX_NAME_PREFIX is required")?,
        doc_id,
    })
}

fn destination(
    api: Arc<dyn SearchApi>,
    s: &Settings,
    schema: &logging_core::SchemaConfig,
) -> Result<SearchDestination, String> {
    SearchDestination::new(
        api,
        SearchDestinationConfig {
            index_prefix: s.index_prefix.clone(),
            doc_id: s.doc_id,
            time_zone: schema.time_zone,
            index_dates: env::key_dates(),
            ..SearchDestinationConfig::default()
        },
    )
    .map_err(|e| e.to_string())
}

fn build(sdk: &aws_config::SdkConfig) -> Result<Pipeline, String> {
    let schema = env::schema()?;
    let s = settings(env::var)?;
    let http = search_env::http_search(&search_env::connection(&env::var)?, sdk)?;
    let es = destination(Arc::new(http), &s, &schema)?;
    let mut pipeline = Pipeline::new(schema.clone()).with_route(env::whitelist(), Arc::new(es));
    if let Some(bucket) = env::var("FAILED_LOG_S3_BUCKET") {
        pipeline = pipeline.with_dead_letter(env::dead_letter(sdk, bucket, &schema));
    }
    Ok(pipeline)
}

/// Runs an event file into an in-memory cluster and prints what happened.
async fn offline(path: &str) -> Result<(), Error> {
    let schema = env::schema()?;
    let s = Settings {
        index_prefix: env::var("INDEX_NAME_PREFIX").unwrap_or_else(|| "logs".to_owned()),
        doc_id: DocIdMode::LogId,
    };
    let cluster = Arc::new(MemorySearch::new());
    let es = destination(cluster.clone(), &s, &schema)?;
    let pipeline = Pipeline::new(schema).with_route(env::whitelist(), Arc::new(es));
    let event = std::fs::read(path).map_err(|e| format!("reading the event {path}: {e}"))?;
    let out = pipeline.process(&event).await?;
    println!("report:\n{}", serde_json::to_string_pretty(&out.report)?);
    println!("lambda response: {}", serde_json::to_string(&out.response)?);
    for index in cluster.list_indices().await? {
        println!("{index}: {} documents", cluster.documents(&index).len());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Some(path) = std::env::args().nth(1) {
        return offline(&path).await;
    }
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Configuration errors stop the cold start with a message, not a panic.
    env::serve(build(&sdk)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        settings(|k| map.get(k).cloned())
    }

    #[test]
    fn prefix_and_doc_id() {
        let s = read(&[("INDEX_NAME_PREFIX", "logs"), ("ES_DOC_ID", "origin")]).unwrap();
        assert_eq!(
            (s.index_prefix.as_str(), s.doc_id),
            ("logs", DocIdMode::Origin)
        );
        let s = read(&[("INDEX_NAME_PREFIX", "logs")]).unwrap();
        assert_eq!(s.doc_id, DocIdMode::None);
        assert!(read(&[]).unwrap_err().contains("INDEX_NAME_PREFIX"));
        assert!(read(&[("INDEX_NAME_PREFIX", "x"), ("ES_DOC_ID", "uuid")]).is_err());
    }

    #[test]
    fn destination_refuses_a_bad_prefix() {
        let s = Settings {
            index_prefix: "Logs".into(),
            doc_id: DocIdMode::None,
        };
        let api: Arc<dyn SearchApi> = Arc::new(MemorySearch::new());
        let err = destination(api, &s, &logging_core::SchemaConfig::default()).unwrap_err();
        assert!(err.contains("uppercase"), "{err}");
    }
}
