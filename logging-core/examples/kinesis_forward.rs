//! Lambda handler replacing the original kinesis-forward function: forwards the records of a
//! Kinesis batch, unchanged, to another stream, with or without a timestamp as the original,
//! and dead-letters failures to S3.
//!
//! Environment (the original module's block works unchanged; see `common/forward.rs`):
//! `TARGET_STREAM_NAME` (required; a name or ARN), `KINESIS_MAX_RETRIES` (default 4: resends
//! after the first attempt), `LOG_TYPE_FIELD`, `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`,
//! `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated), `TZ`,
//! `FAILED_LOG_S3_BUCKET` (without it failures are only logged), `FAILED_LOG_S3_PREFIX`;
//! new: `LOG_TIMEZONE`, `FAILED_LOG_S3_LAYOUT`, `FAILED_LOG_FORMAT`, `PARTITION_KEY_FIELD`
//! (default: random keys) and `KPL_AGGREGATE` (`true` to aggregate).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[path = "common/forward.rs"]
mod forward;
#[path = "common/lambda.rs"]
mod lambda;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use kinesis_utils::aws::AwsKinesis;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration errors stop the cold start with a message naming the variable.
    let settings = forward::settings(&env::process_env)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let pipeline = forward::pipeline(&settings, Arc::new(AwsKinesis::new(&sdk)), &|bucket| {
        lambda::s3_store(&sdk, bucket)
    })?;
    lambda::serve(pipeline).await
}
