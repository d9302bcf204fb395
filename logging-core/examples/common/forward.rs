//! kinesis-forward: configuration and pipeline, shared by the `kinesis_forward` example and
//! the compatibility tests.
//!
//! Compatible with the original terraform-aws-lambda-kinesis-forward module (v1.0.0 to
//! v2.0.8: `TZ`, `LOG_ID_FIELD`, `LOG_TYPE_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_WHITELIST`, `TARGET_STREAM_NAME`, `KINESIS_MAX_RETRIES`
//! (v2.0.x), `FAILED_LOG_S3_BUCKET`, `FAILED_LOG_S3_PREFIX`): every record with a `log_type`
//! the whitelist accepts is forwarded, with or without a timestamp, as the original did
//! (`timestamp_required=False`).

use std::sync::Arc;

use kinesis_utils::PutRecordsConfig;
use kinesis_utils::api::KinesisApi;
use logging_core::dead_letter::{DeadLetter, DeadLetterGroups};
use logging_core::forward::{ForwardConfig, KinesisForward};
use logging_core::{ObjectStore, Pipeline, UnparseableTimestamp};

use crate::env::{self, Common, DeadLetterDefaults, DeadLetterSettings, Get};

/// Everything the function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Schema, zone, whitelist.
    pub common: Common,
    /// The target stream, keys, aggregation, retries.
    pub forward: ForwardConfig,
    /// Where failures go, when `FAILED_LOG_S3_BUCKET` is set.
    pub dead_letter: Option<DeadLetterSettings>,
}

/// Reads [`Settings`]:
///
/// * `TARGET_STREAM_NAME` (required; a name or ARN), `KINESIS_MAX_RETRIES` (resends after the
///   first attempt, default 4), `PARTITION_KEY_FIELD` (default: random keys, as the original),
///   `KPL_AGGREGATE` (`true` to aggregate), `KPL_AGGREGATE_MAX_BYTES` (default 51,200, the
///   KPL's; up to 1 MiB);
/// * the schema variables and `TZ` / `LOG_TIMEZONE` (see [`env::common`]); a timestamp is
///   neither required nor read: records without one, or with one that cannot be parsed, are
///   forwarded, as the original did;
/// * `FAILED_LOG_S3_BUCKET` (without it, failures are counted and logged),
///   `FAILED_LOG_S3_PREFIX`, `FAILED_LOG_S3_LAYOUT` (default `flat`: the original's
///   `{prefix}/{%Y-%m}/{%d}/…`), `FAILED_LOG_FORMAT` (`envelope` or `raw`).
pub fn settings(get: Get<'_>) -> Result<Settings, String> {
    let common = env::common(get, false, UnparseableTimestamp::Ignore)?;
    let retries: u32 = env::number(get, "KINESIS_MAX_RETRIES", 4)?;
    let forward = ForwardConfig {
        stream: env::required(get, "TARGET_STREAM_NAME", "the stream to forward to")?,
        partition_key_field: env::var(get, "PARTITION_KEY_FIELD"),
        aggregate: env::flag(get, "KPL_AGGREGATE", false)?,
        aggregate_max_bytes: env::number(
            get,
            "KPL_AGGREGATE_MAX_BYTES",
            ForwardConfig::default().aggregate_max_bytes,
        )?,
        put: PutRecordsConfig::default().with_max_attempts(retries.saturating_add(1)),
    };
    let dead_letter = env::dead_letter(
        get,
        DeadLetterDefaults {
            bucket: None,
            prefix: "",
            groups: DeadLetterGroups::Flat,
            original_prefix: true,
        },
        common.dates,
    )?;
    Ok(Settings {
        common,
        forward,
        dead_letter,
    })
}

/// The pipeline: one forward route (the whitelist) through `kinesis`, and the dead letter in
/// the store `store` opens for its bucket.
pub fn pipeline(
    s: &Settings,
    kinesis: Arc<dyn KinesisApi>,
    store: &dyn Fn(&str) -> Arc<dyn ObjectStore>,
) -> Result<Pipeline, String> {
    let forward = KinesisForward::new(kinesis, s.forward.clone()).map_err(|e| e.to_string())?;
    let mut pipeline =
        Pipeline::builder(s.common.schema.clone()).route(s.common.whitelist.clone(), forward);
    if let Some(dl) = &s.dead_letter {
        pipeline = pipeline.dead_letter(DeadLetter::builder(store(&dl.bucket), dl.config.clone()));
    }
    Ok(pipeline.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        settings(&move |k: &str| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn aggregate_size() {
        let stream = ("TARGET_STREAM_NAME", "out");
        let f = read(&[stream, ("KPL_AGGREGATE", "true")]).unwrap().forward;
        assert!(f.aggregate);
        assert_eq!(f.aggregate_max_bytes, 51_200);
        let f = read(&[stream, ("KPL_AGGREGATE_MAX_BYTES", "1048576")])
            .unwrap()
            .forward;
        assert_eq!(f.aggregate_max_bytes, 1_048_576);
        let e = read(&[stream, ("KPL_AGGREGATE_MAX_BYTES", "50k")]).unwrap_err();
        assert!(e.contains("KPL_AGGREGATE_MAX_BYTES"), "{e}");
    }
}
