//! Lambda handler replacing the original kinesis-to-fluent function: forwards the records of
//! a Kinesis batch to Fluentd / Fluent Bit over the forward protocol (tag
//! `{log_type}.{LOG_FLUENT_TAG}`, `{"message": <JSON text>}` and the event time the original
//! sent, acknowledged chunks) and dead-letters failures and rejections to S3.
//!
//! Environment (the original module's block works unchanged; see `common/to_fluent.rs`):
//! `LOG_FLUENT_SINK_ENDPOINT` (required; `host` or `host:port`, port 24224 by default;
//! `LOG_FLUENT_TARGET_URL` is read as its older name), `LOG_FLUENT_TAG`, `LOG_TYPE_FIELD`,
//! `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST`,
//! `TZ`, `FAILED_LOG_S3_BUCKET` (without it failures are only logged), `FAILED_LOG_S3_PREFIX`;
//! new: `LOG_FLUENT_RECORD_FORMAT` (`message` or `object`), `LOG_FLUENT_EVENT_TIME`
//! (`wall_clock` or `instant`), `FLUENT_REQUIRE_ACK`, `FLUENT_SHARED_KEY` with
//! `FLUENT_SELF_HOSTNAME`, `FLUENT_TLS` (needs the `fluent-tls` feature), `LOG_TIMEZONE`,
//! `FAILED_LOG_S3_LAYOUT`, `FAILED_LOG_FORMAT`.
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[path = "common/lambda.rs"]
mod lambda;
#[path = "common/to_fluent.rs"]
mod to_fluent;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Configuration errors stop the cold start with a message naming the variable.
    let settings = to_fluent::settings(&env::process_env)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let pipeline = to_fluent::pipeline(&settings, &|bucket| lambda::s3_store(&sdk, bucket))?;
    lambda::serve(pipeline).await
}
