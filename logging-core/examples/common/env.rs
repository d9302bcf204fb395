//! Configuration from the environment variables of the original Python modules.

use std::env;
use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig};
use logging_core::store::s3::S3Store;
use logging_core::{Deadline, KeyDates, Pipeline, SchemaConfig, TimeZone, TypeFilter};

/// A variable, or `None` when unset or blank.
pub fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A required variable.
pub fn required(name: &str) -> Result<String, String> {
    var(name).ok_or_else(|| format!("environment variable {name} is required"))
}

/// A numeric variable with a default.
pub fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("environment variable {name}={v:?} is not a number")),
    }
}

/// `LOG_TYPE_FIELD`, `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, and the
/// zone from `LOG_TIMEZONE`, else `TZ` (Lambda reserves `TZ`, so `LOG_TIMEZONE` is preferred).
pub fn schema() -> Result<SchemaConfig, String> {
    let mut s = SchemaConfig::default();
    if let Some(v) = var("LOG_TYPE_FIELD") {
        s.log_type_field = v;
    }
    if let Some(v) = var("LOG_ID_FIELD") {
        s.log_id_field = v;
    }
    if let Some(v) = var("LOG_TIMESTAMP_FIELD") {
        s.timestamp_field = v;
    }
    if let Some(v) = var("LOG_TYPE_UNKNOWN_PREFIX") {
        s.unknown_prefix = v;
    }
    if let Some(v) = var("LOG_TIMEZONE").or_else(|| var("TZ")) {
        s.time_zone = v.parse::<TimeZone>().map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// How key and index dates are taken: converted to `LOG_TIMEZONE` when it is set (an explicit
/// choice), else as each record's timestamp was written, in its own offset (the original
/// modules' layout; `TZ` then only dates records without an offset or without a timestamp).
pub fn key_dates() -> KeyDates {
    if var("LOG_TIMEZONE").is_some() {
        KeyDates::Zone
    } else {
        KeyDates::RecordOffset
    }
}

/// `LOG_TYPE_WHITELIST`, comma separated; empty or unset accepts every type.
pub fn whitelist() -> TypeFilter {
    TypeFilter::from_comma_list(&var("LOG_TYPE_WHITELIST").unwrap_or_default())
}

/// The dead letter in S3 `bucket`, under `FAILED_LOG_S3_PREFIX`.
pub fn dead_letter(
    sdk: &aws_config::SdkConfig,
    bucket: String,
    schema: &SchemaConfig,
) -> DeadLetter {
    DeadLetter::new(
        Arc::new(S3Store::new(aws_sdk_s3::Client::new(sdk), bucket)),
        DeadLetterConfig {
            prefix: var("FAILED_LOG_S3_PREFIX").unwrap_or_default(),
            key_dates: key_dates(),
            ..DeadLetterConfig::default()
        },
        &schema.unknown_prefix,
        schema.time_zone,
    )
}

/// Serves `pipeline` as the function's handler: Kinesis events in, partial batch responses
/// (`batchItemFailures`) out, answered before the invocation's deadline (records whose
/// delivery is still retrying then are reported for retry instead of the function timing out).
pub async fn serve(pipeline: Pipeline) -> Result<(), Error> {
    if let Some(budget) = pipeline.retry_budget() {
        tracing::info!(
            retry_budget_ms = budget.as_millis() as u64,
            "longest delivery with every retry; deliveries are cut before the function's deadline"
        );
    }
    let pipeline = Arc::new(pipeline);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let pipeline = pipeline.clone();
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let (_report, response) = pipeline.process_event_until(event.payload, deadline).await;
            Ok::<KinesisEventResponse, Error>(response)
        }
    }))
    .await
}
