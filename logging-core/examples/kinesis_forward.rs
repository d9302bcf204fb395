//! Lambda handler replacing the original kinesis-forward function: forwards the records of a
//! Kinesis batch, unchanged, to another stream, and dead-letters failures to S3.
//!
//! Environment: `TARGET_STREAM_NAME` (required; a name or ARN), `KINESIS_MAX_RETRIES`
//! (default 4: resends after the first attempt), `LOG_TYPE_FIELD`, `LOG_ID_FIELD`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated),
//! `FAILED_LOG_S3_BUCKET` (without it failures are only logged), `FAILED_LOG_S3_PREFIX`,
//! `LOG_TIMEZONE` (else `TZ`), `PARTITION_KEY_FIELD` (default: random keys) and
//! `KPL_AGGREGATE` (`true` to aggregate).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.

#[path = "common/env.rs"]
mod env;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use kinesis_utils::PutRecordsConfig;
use kinesis_utils::aws::AwsKinesis;
use lambda_runtime::Error;
use logging_core::Pipeline;
use logging_core::forward::{ForwardConfig, KinesisForward};

fn build(sdk: &aws_config::SdkConfig) -> Result<Pipeline, String> {
    let schema = env::schema()?;
    let retries: u32 = env::number("KINESIS_MAX_RETRIES", 4)?;
    let forward = KinesisForward::new(
        AwsKinesis::new(sdk),
        ForwardConfig {
            stream: env::required("TARGET_STREAM_NAME")?,
            partition_key_field: env::var("PARTITION_KEY_FIELD"),
            aggregate: env::var("KPL_AGGREGATE").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            put: PutRecordsConfig::default().with_max_attempts(retries.saturating_add(1)),
            ..ForwardConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut pipeline =
        Pipeline::new(schema.clone()).with_route(env::whitelist(), Arc::new(forward));
    if let Some(bucket) = env::var("FAILED_LOG_S3_BUCKET") {
        pipeline = pipeline.with_dead_letter(env::dead_letter(sdk, bucket, &schema));
    }
    Ok(pipeline)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Configuration errors stop the cold start with a message, not a panic.
    env::serve(build(&sdk)?).await
}
