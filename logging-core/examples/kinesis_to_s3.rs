//! Lambda handler replacing the original kinesis-to-s3 function: archives the records of a
//! Kinesis batch to S3 as gzip NDJSON, one object per `log_type`, and dead-letters failures.
//!
//! Environment: `LOG_S3_BUCKET` (required), `LOG_S3_PREFIX`, `LOG_TYPE_FIELD`, `LOG_ID_FIELD`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated),
//! `FAILED_LOG_S3_BUCKET` (default: the log bucket), `FAILED_LOG_S3_PREFIX`,
//! `LOG_TIMEZONE` (IANA name, else `TZ`), `LOG_S3_GZIP_LEVEL` (0-9, default 6).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.
//! Build with `cargo lambda build --example kinesis_to_s3 --features lambda-events`.

#[path = "common/env.rs"]
mod env;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;
use logging_core::store::s3::S3Store;
use logging_core::{ArchiveConfig, Pipeline, S3Archive};

fn build(sdk: &aws_config::SdkConfig) -> Result<Pipeline, String> {
    let schema = env::schema()?;
    let bucket = env::required("LOG_S3_BUCKET")?;
    let failed_bucket = env::var("FAILED_LOG_S3_BUCKET").unwrap_or_else(|| bucket.clone());
    let s3 = aws_sdk_s3::Client::new(sdk);
    let archive = S3Archive::new(
        Arc::new(S3Store::new(s3.clone(), bucket)),
        ArchiveConfig {
            prefix: env::var("LOG_S3_PREFIX").unwrap_or_default(),
            gzip_level: Some(env::number("LOG_S3_GZIP_LEVEL", 6u32)?.min(9)),
            key_dates: env::key_dates(),
            ..ArchiveConfig::default()
        },
        schema.time_zone,
    );
    let dead_letter = env::dead_letter(sdk, failed_bucket, &schema);
    Ok(Pipeline::new(schema)
        .with_route(env::whitelist(), Arc::new(archive))
        .with_dead_letter(dead_letter))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Configuration errors stop the cold start with a message, not a panic.
    env::serve(build(&sdk)?).await
}
