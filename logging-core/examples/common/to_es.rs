//! kinesis-to-es: configuration and pipeline, shared by the `kinesis_to_es` example and the
//! compatibility tests (the cluster connection is `search_env`).
//!
//! Compatible with the original terraform-aws-lambda-kinesis-to-es module (v1.0.0 to
//! v2.1.0: `TZ`, `LOG_ID_FIELD`, `LOG_TYPE_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_WHITELIST`, `ES_HOST`, `FAILED_LOG_S3_BUCKET`,
//! `FAILED_LOG_S3_PREFIX`, `INDEX_NAME_PREFIX`): records go to the daily index the original
//! used, `{INDEX_NAME_PREFIX}-{log_type}-{%Y%m%d}` dated as each timestamp was written, and
//! failures to `{FAILED_LOG_S3_PREFIX}/{%Y-%m}/{%d}/…` in the failed-log bucket.

use std::sync::Arc;

use logging_core::dead_letter::{DeadLetter, DeadLetterGroups};
use logging_core::search::{DocIdMode, SearchApi, SearchDestination, SearchDestinationConfig};
use logging_core::{ObjectStore, Pipeline, UnparseableTimestamp};

use crate::env::{self, Common, DeadLetterDefaults, DeadLetterSettings, Get};

/// Everything the function reads besides the cluster connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Schema, zone, whitelist.
    pub common: Common,
    /// Index prefix, `_id`, index dates.
    pub search: SearchDestinationConfig,
    /// Where failures and rejections go, when `FAILED_LOG_S3_BUCKET` is set.
    pub dead_letter: Option<DeadLetterSettings>,
}

/// Reads [`Settings`]:
///
/// * `INDEX_NAME_PREFIX` (required), `ES_DOC_ID` (`origin`, the default: a deterministic
///   `_id` from the record's shard and sequence number, so that replays overwrite; `log_id`;
///   or `none`, cluster-assigned ids as the original, so that replays duplicate);
/// * the schema variables and `TZ` / `LOG_TIMEZONE` (see [`env::common`]); a record without
///   a timestamp, or with one that cannot be parsed, is a failure (the original set the
///   first aside and failed the batch on the second);
/// * `FAILED_LOG_S3_BUCKET` (without it, failures are counted and logged),
///   `FAILED_LOG_S3_PREFIX`, `FAILED_LOG_S3_LAYOUT` (default `flat`: the original's
///   `{prefix}/{%Y-%m}/{%d}/…`), `FAILED_LOG_FORMAT` (`envelope` or `raw`).
pub fn settings(get: Get<'_>) -> Result<Settings, String> {
    let common = env::common(get, true, UnparseableTimestamp::Fail)?;
    let doc_id = env::choice(
        get,
        "ES_DOC_ID",
        &[
            ("origin", DocIdMode::Origin),
            ("log_id", DocIdMode::LogId),
            ("none", DocIdMode::None),
        ],
        DocIdMode::Origin,
    )?;
    let search = SearchDestinationConfig {
        index_prefix: env::required(
            get,
            "INDEX_NAME_PREFIX",
            "the first part of the index names, as in the original module",
        )?,
        doc_id,
        index_dates: common.dates,
        ..SearchDestinationConfig::default()
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
        search,
        dead_letter,
    })
}

/// The pipeline: one search route (the whitelist) into `api`, and the dead letter in the store
/// `store` opens for its bucket. Fails when the index prefix cannot form index names.
pub fn pipeline(
    s: &Settings,
    api: Arc<dyn SearchApi>,
    store: &dyn Fn(&str) -> Arc<dyn ObjectStore>,
) -> Result<Pipeline, String> {
    let es = SearchDestination::builder(api, s.search.clone()).map_err(|e| e.to_string())?;
    let mut pipeline =
        Pipeline::builder(s.common.schema.clone()).route(s.common.whitelist.clone(), es);
    if let Some(dl) = &s.dead_letter {
        pipeline = pipeline.dead_letter(DeadLetter::builder(store(&dl.bucket), dl.config.clone()));
    }
    Ok(pipeline.build())
}
