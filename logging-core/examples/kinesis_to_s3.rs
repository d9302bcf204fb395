//! Lambda handler replacing the original kinesis-to-s3 function: archives the records of a
//! Kinesis batch to S3 as gzip NDJSON, one object per `log_type`, at the keys the original
//! wrote, and keeps failures where the original kept them.
//!
//! Environment (the original module's block works unchanged; see `common/to_s3.rs`):
//! `LOG_S3_BUCKET` and `LOG_S3_PREFIX` (required), `LOG_TYPE_FIELD`, `LOG_ID_FIELD`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated),
//! `TZ`; new: `LOG_TIMEZONE` (convert key dates to this zone), `FAILED_LOG_S3_BUCKET`
//! (default: the log bucket), `FAILED_LOG_S3_PREFIX` (default: `LOG_S3_PREFIX`),
//! `FAILED_LOG_S3_LAYOUT` (`suffixed`, `folders` or `flat`), `FAILED_LOG_FORMAT` (`envelope`
//! or `raw`), `LOG_S3_COMPRESSION` (`gzip(LEVEL)`, `zstd(LEVEL)` or `none`; default
//! `gzip(6)`), `LOG_S3_GZIP_LEVEL` (0-12, default 6; when `LOG_S3_COMPRESSION` is unset).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.
//! Build with `cargo lambda build --example kinesis_to_s3 --features aws,lambda`.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[path = "common/lambda.rs"]
mod lambda;
#[path = "common/to_s3.rs"]
mod to_s3;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration errors stop the cold start with a message naming the variable.
    let settings = to_s3::settings(&env::process_env)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let pipeline = to_s3::pipeline(&settings, &|bucket| lambda::s3_store(&sdk, bucket));
    lambda::serve(pipeline).await
}
