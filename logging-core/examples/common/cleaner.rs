//! The es-cleaner's configuration and run, shared by the `es_cleaner` example and the
//! compatibility tests (which feed it the original Terraform module's environment block).
//!
//! Compatible with the original lambda-es-cleaner module (v1.0.0 to v2.0.1), which set
//! `TZ`, `ES_HOST`, `MAX_AGE_DAYS` and `DRY_RUN_ONLY`:
//!
//! * `DRY_RUN_ONLY` is required, as in the original. `true`, `True` and `yes` (the values the
//!   original read as a dry run) list what would be deleted; `false` and `no` in any case
//!   delete, as the original did. Any other value, the empty one included, stops the cold
//!   start with an error naming the variable: the original deleted for every value it did not
//!   recognise, so a typo such as `TRUE` or `1` deleted indices for real.
//! * `MAX_AGE_DAYS` is required, as in the original: a whole number of days, at least 0.
//! * `INDEX_NAME_PREFIX` is optional. Unset (the original module never set it) or `*`, every
//!   index with a trailing `%Y%m%d` date is considered, as the original did; set, only
//!   `{prefix}-…` indices are.
//! * Today's date is taken in `LOG_TIMEZONE`, else `TZ`, else UTC. The original compared in
//!   UTC; an index is deleted here only once all of its day is older than `MAX_AGE_DAYS`, so
//!   in any zone the selection is a subset of what the original deleted on the same run.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use logging_core::retention::{RetentionConfig, run_retention};
use logging_core::search::{BulkReply, SearchApi, SearchError};

/// What the cleaner reads besides the cluster connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None` considers every index.
    pub index_prefix: Option<String>,
    /// Age, zone and dry-run switch.
    pub retention: RetentionConfig,
}

/// The values of `DRY_RUN_ONLY` that mean a dry run: exactly the original's list.
pub const DRY_RUN_VALUES: [&str; 3] = ["true", "True", "yes"];

/// Reads `DRY_RUN_ONLY`: `Ok(true)` for a dry run, `Ok(false)` to delete, an error naming the
/// variable for anything else (unset, empty, or a value the original did not recognise).
pub fn dry_run(value: Option<&str>) -> Result<bool, String> {
    const FIX: &str = "set DRY_RUN_ONLY=true to only list the indices that would be deleted, \
                       or DRY_RUN_ONLY=false to delete them";
    match value {
        None => Err(format!(
            "environment variable DRY_RUN_ONLY is required, as in the original module: {FIX}"
        )),
        Some(v) if DRY_RUN_VALUES.contains(&v) => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("no") => Ok(false),
        Some(v) => Err(format!(
            "DRY_RUN_ONLY={v:?} is not recognised (the original module deleted indices for \
             every value but true, True and yes): {FIX}"
        )),
    }
}

/// Reads [`Settings`] through `get`, which returns a variable's raw value (`None` when unset;
/// empty values are passed as they are): the environment in `main`, a map in tests.
pub fn settings(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let dry_run = dry_run(get("DRY_RUN_ONLY").as_deref())?;
    let max_age_days = match get("MAX_AGE_DAYS") {
        None => {
            return Err(
                "environment variable MAX_AGE_DAYS is required, as in the original \
                        module: set it to the number of days to keep (the module's default \
                        was 60)"
                    .into(),
            );
        }
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("MAX_AGE_DAYS={v:?} is not a whole number of days (0 or more)"))?,
    };
    let index_prefix = match get("INDEX_NAME_PREFIX").as_deref().map(str::trim) {
        None | Some("" | "*") => None,
        Some(p) => Some(p.to_owned()),
    };
    let timezone = get("LOG_TIMEZONE")
        .filter(|z| !z.trim().is_empty())
        .or_else(|| get("TZ").filter(|z| !z.trim().is_empty()))
        .map(|z| z.trim().trim_start_matches(':').to_owned())
        .unwrap_or_else(|| "UTC".to_owned());
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(format!(
            "time zone {timezone:?} (LOG_TIMEZONE or TZ) is not an IANA name such as Asia/Tokyo"
        ));
    }
    Ok(Settings {
        index_prefix,
        retention: RetentionConfig {
            max_age_days,
            timezone,
            dry_run,
            ..RetentionConfig::default()
        },
    })
}

/// A cluster whose index listing only shows `{prefix}-…`, so retention never sees (and never
/// deletes) other indices.
pub struct Prefixed<S> {
    /// The cluster.
    pub inner: S,
    /// `None` shows every index.
    pub prefix: Option<String>,
}

#[async_trait]
impl<S: SearchApi> SearchApi for Prefixed<S> {
    async fn bulk(&self, body: Bytes) -> Result<BulkReply, SearchError> {
        self.inner.bulk(body).await
    }

    async fn list_indices(&self) -> Result<Vec<String>, SearchError> {
        let mut names = self.inner.list_indices().await?;
        if let Some(prefix) = &self.prefix {
            names.retain(|n| {
                n.strip_prefix(prefix.as_str())
                    .is_some_and(|r| r.starts_with('-'))
            });
        }
        Ok(names)
    }

    async fn delete_indices(&self, names: &[String]) -> Result<(), SearchError> {
        self.inner.delete_indices(names).await
    }
}

/// One run at `now`: the report as the function's JSON answer (`selected`, `deleted`,
/// `failed`, `dry_run`).
pub async fn clean<S: SearchApi>(
    api: &Prefixed<S>,
    s: &Settings,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, String> {
    let report = run_retention(api, &s.retention, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "selected": report.selected,
        "deleted": report.deleted,
        "failed": report.failed,
        "dry_run": report.dry_run,
    }))
}
