//! Lambda handler replacing the original kinesis-to-es function: indexes the records of a
//! Kinesis batch into Elasticsearch / OpenSearch (`{INDEX_NAME_PREFIX}-{log_type}-{%Y%m%d}`,
//! dated as each record's timestamp was written) and dead-letters failures and rejections to
//! S3.
//!
//! Environment (the original module's block works unchanged; see `common/to_es.rs` and
//! `common/search_env.rs`): `ES_HOST` (required; a host name as in the original module, HTTPS
//! and SigV4-signed, or a URL), `INDEX_NAME_PREFIX` (required), `LOG_TYPE_FIELD`,
//! `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST`,
//! `TZ`, `FAILED_LOG_S3_BUCKET` (without it failures are only logged), `FAILED_LOG_S3_PREFIX`;
//! new: `ES_DOC_ID` (`origin` (default), `log_id` or `none`), `ES_SIGV4` (`true`/`false`),
//! `ES_USERNAME`/`ES_PASSWORD` (basic auth, self-hosted), `LOG_TIMEZONE`,
//! `FAILED_LOG_S3_LAYOUT`, `FAILED_LOG_FORMAT`.
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.
//!
//! Offline: `cargo run -p logging-core --all-features --example kinesis_to_es -- EVENT_JSON`
//! runs the event file through the same pipeline into an in-memory cluster (`ES_HOST` is
//! not needed; `INDEX_NAME_PREFIX` defaults to `logs`) and prints the report and indices.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[path = "common/lambda.rs"]
mod lambda;
#[path = "common/search_env.rs"]
mod search_env;
#[path = "common/to_es.rs"]
mod to_es;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;
use logging_core::search::{MemorySearch, SearchApi};

/// Runs an event file into an in-memory cluster and prints what happened.
async fn offline(path: &str) -> Result<(), Error> {
    let get = |name: &str| match name {
        "INDEX_NAME_PREFIX" => env::process_env(name).or_else(|| Some("logs".into())),
        _ => env::process_env(name),
    };
    let mut settings = to_es::settings(&get)?;
    settings.dead_letter = None;
    let cluster = Arc::new(MemorySearch::new());
    let pipeline = to_es::pipeline(&settings, cluster.clone(), &|_| {
        Arc::new(logging_core::MemoryStore::new())
    })?;
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
    // Configuration errors stop the cold start with a message naming the variable.
    let settings = to_es::settings(&env::process_env)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let get = |name: &str| env::var(&env::process_env, name);
    let http = search_env::http_search(&search_env::connection(&get)?, &sdk)?;
    let pipeline = to_es::pipeline(&settings, Arc::new(http), &|bucket| {
        lambda::s3_store(&sdk, bucket)
    })?;
    lambda::serve(pipeline).await
}
