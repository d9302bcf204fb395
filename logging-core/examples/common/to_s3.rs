//! kinesis-to-s3: configuration and pipeline, shared by the `kinesis_to_s3` example and the
//! compatibility tests.
//!
//! Compatible with the original terraform-aws-lambda-kinesis-to-s3 module (v1.0.0 to
//! v2.1.1: `TZ`, `LOG_ID_FIELD`, `LOG_TYPE_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`,
//! `LOG_TIMESTAMP_FIELD`, `LOG_TYPE_WHITELIST` (v2.1.0 on), `LOG_S3_BUCKET`, `LOG_S3_PREFIX`):
//! records are archived at the keys the original wrote, and failures go where it kept them,
//! `{LOG_S3_PREFIX}/{LOG_TYPE_UNKNOWN_PREFIX}/unknown_type/…` and
//! `{LOG_S3_PREFIX}/{LOG_TYPE_UNKNOWN_PREFIX}/{log_type}_no_timestamp/…` in the log bucket,
//! so the module's IAM policy (`s3:PutObject` on the log bucket) keeps working.

use std::sync::Arc;

use logging_core::compress::Compression;
use logging_core::dead_letter::{DeadLetter, DeadLetterGroups};
use logging_core::{ArchiveConfig, ObjectStore, Pipeline, S3Archive, UnparseableTimestamp};

use crate::env::{self, Common, DeadLetterDefaults, DeadLetterSettings, Get};

/// Everything the function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Schema, zone, whitelist.
    pub common: Common,
    /// `LOG_S3_BUCKET`.
    pub bucket: String,
    /// The archive (`LOG_S3_PREFIX`, `LOG_S3_COMPRESSION` or `LOG_S3_GZIP_LEVEL`, dates).
    pub archive: ArchiveConfig,
    /// Where failures go.
    pub dead_letter: DeadLetterSettings,
}

/// Reads [`Settings`]:
///
/// * `LOG_S3_BUCKET` (required) and `LOG_S3_PREFIX` (required, as in the original; keys are
///   `{LOG_S3_PREFIX}/{log_type}/{%Y-%m}/{%d}/…`). A prefix that is empty or starts or ends
///   with `/` is refused: the original wrote it into keys as it was (`/app/…`, `logs//app/…`),
///   and those keys are not worth keeping;
/// * the schema variables and `TZ` / `LOG_TIMEZONE` (see [`env::common`]); a record without
///   a timestamp is a failure (`{type}_no_timestamp`), one whose timestamp cannot be parsed is
///   archived with the others, as the original did;
/// * `FAILED_LOG_S3_BUCKET` (default: the log bucket), `FAILED_LOG_S3_PREFIX` (default:
///   `LOG_S3_PREFIX`), `FAILED_LOG_S3_LAYOUT` (default `suffixed`: the original's folder names)
///   and `FAILED_LOG_FORMAT` (`envelope`, the default, or `raw` lines as the original's files);
/// * `LOG_S3_COMPRESSION` (`gzip(LEVEL)`, `zstd(LEVEL)` or `none`; new), else
///   `LOG_S3_GZIP_LEVEL` (default 6; 0 to 12): refused at start when not a valid setting.
pub fn settings(get: Get<'_>) -> Result<Settings, String> {
    let common = env::common(get, true, UnparseableTimestamp::Ignore)?;
    let bucket = env::required(get, "LOG_S3_BUCKET", "the bucket of the archive")?;
    let prefix = env::required(
        get,
        "LOG_S3_PREFIX",
        "the key prefix of the archive, as in the original module (e.g. logs)",
    )?;
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.trim() != prefix {
        return Err(format!(
            "LOG_S3_PREFIX={prefix:?}: the original module wrote keys \
             {prefix}/{{log_type}}/…, with the slashes as they are; set the prefix without \
             leading or trailing '/' or spaces (the archive's keys then change: see the \
             kinesis-to-s3 runbook)"
        ));
    }
    let compression = match env::var(get, "LOG_S3_COMPRESSION") {
        Some(text) => text
            .parse()
            .map_err(|e| format!("LOG_S3_COMPRESSION={text:?}: {e}"))?,
        None => {
            let level: u32 = env::number(get, "LOG_S3_GZIP_LEVEL", 6)?;
            Compression::gzip(level).map_err(|e| format!("LOG_S3_GZIP_LEVEL={level}: {e}"))?
        }
    };
    let dead_letter = env::dead_letter(
        get,
        DeadLetterDefaults {
            bucket: Some(&bucket),
            prefix: &prefix,
            groups: DeadLetterGroups::Suffixed,
            original_prefix: false,
        },
        common.dates,
    )?
    .ok_or("a dead letter bucket (the log bucket by default)")?;
    Ok(Settings {
        archive: ArchiveConfig {
            prefix,
            compression,
            key_dates: common.dates,
            ..ArchiveConfig::default()
        },
        common,
        bucket,
        dead_letter,
    })
}

/// The pipeline: one archive route (the whitelist) and the dead letter; `store` opens a bucket
/// (called once per distinct bucket).
pub fn pipeline(s: &Settings, store: &dyn Fn(&str) -> Arc<dyn ObjectStore>) -> Pipeline {
    let log = store(&s.bucket);
    let failed = if s.dead_letter.bucket == s.bucket {
        log.clone()
    } else {
        store(&s.dead_letter.bucket)
    };
    Pipeline::builder(s.common.schema.clone())
        .route(
            s.common.whitelist.clone(),
            S3Archive::builder(log, s.archive.clone()),
        )
        .dead_letter(DeadLetter::builder(failed, s.dead_letter.config.clone()))
        .build()
}
