//! Index retention (the original es-cleaner): delete daily indices older than a maximum age.
//!
//! [`select_expired`] is the pure decision; [`run_retention`] lists indices through any
//! [`SearchApi`], deletes the selection in bounded requests (or only reports it in dry-run
//! mode) and reports what was deleted and what failed.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::search::{SearchApi, SearchError};

/// Index names with this suffix are never selected (reindexing targets).
pub const RELOAD_SUFFIX: &str = "-reload";

/// The `%Y%m%d` date at the end of an index name: the last 8 characters, all ASCII digits,
/// not preceded by another digit, forming a valid calendar date. `None` otherwise.
pub fn index_date(name: &str) -> Option<NaiveDate> {
    let bytes = name.as_bytes();
    let start = bytes.len().checked_sub(8)?;
    let digits = &bytes[start..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if start > 0 && bytes[start - 1].is_ascii_digit() {
        return None;
    }
    let n = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(n(0..4)).ok()?;
    NaiveDate::from_ymd_opt(year, n(4..6), n(6..8))
}

/// The indices to delete, in input order.
///
/// Let `today` be the calendar date of `now` in `tz`. An index dated `D` (see
/// [`index_date`]) is selected when it is *older than* `max_age_days`, i.e. when
/// `today - D > max_age_days` days. With `max_age_days = 7` on 2020-03-15 (in `tz`), the
/// index of 2020-03-08 is kept and that of 2020-03-07 is selected; with `0`, every index
/// before today is selected. Names ending in `-reload` and names without a trailing date are
/// never selected; neither are future dates.
pub fn select_expired<'a, I>(
    indices: I,
    now: DateTime<Utc>,
    max_age_days: u32,
    tz: Tz,
) -> Vec<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let today = now.with_timezone(&tz).date_naive();
    indices
        .into_iter()
        .filter(|name| !name.ends_with(RELOAD_SUFFIX))
        .filter(|name| {
            index_date(name).is_some_and(|d| (today - d).num_days() > i64::from(max_age_days))
        })
        .map(str::to_owned)
        .collect()
}

/// Settings of a retention run. Deserializable; missing fields take defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Indices older than this many days are deleted (default 30).
    pub max_age_days: u32,
    /// IANA time zone in which index dates and "today" are read (default `UTC`).
    pub timezone: String,
    /// Only report what would be deleted (default false).
    pub dry_run: bool,
    /// Most index names per DELETE request (default 50).
    pub max_indices_per_request: usize,
    /// Most bytes of the comma-joined names in one DELETE URL (default 3 000, well under
    /// the 4 096-byte HTTP line limit of common proxies and clusters).
    pub max_url_bytes: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age_days: 30,
            timezone: "UTC".to_owned(),
            dry_run: false,
            max_indices_per_request: 50,
            max_url_bytes: 3_000,
        }
    }
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Indices selected for deletion (in dry-run mode: what would be deleted).
    pub selected: Vec<String>,
    /// Indices deleted (empty in dry-run mode).
    pub deleted: Vec<String>,
    /// Indices whose delete request failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Why a retention run could not start.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RetentionError {
    /// The configured time zone is not an IANA name.
    #[error("retention config: unknown time zone {0:?}")]
    TimeZone(String),
    /// Listing indices failed.
    #[error("retention: listing indices failed: {0}")]
    List(#[source] SearchError),
}

/// Splits `names` into groups bounded by count and by joined length (names + commas). A
/// single name longer than the bound goes alone.
pub fn delete_batches(names: &[String], max_count: usize, max_bytes: usize) -> Vec<Vec<String>> {
    let max_count = max_count.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut bytes = 0usize;
    for name in names {
        let extra = name.len() + usize::from(!current.is_empty());
        if !current.is_empty() && (current.len() >= max_count || bytes + extra > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += name.len() + usize::from(!current.is_empty());
        current.push(name.clone());
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Lists indices, selects the expired ones (see [`select_expired`]) and deletes them in
/// bounded requests, unless `config.dry_run`. A failed delete request is reported per index
/// and does not stop the others.
pub async fn run_retention<S: SearchApi + ?Sized>(
    api: &S,
    config: &RetentionConfig,
    now: DateTime<Utc>,
) -> Result<RetentionReport, RetentionError> {
    let tz: Tz = config
        .timezone
        .parse()
        .map_err(|_| RetentionError::TimeZone(config.timezone.clone()))?;
    let indices = api.list_indices().await.map_err(RetentionError::List)?;
    let selected = select_expired(
        indices.iter().map(String::as_str),
        now,
        config.max_age_days,
        tz,
    );
    let mut report = RetentionReport {
        selected,
        dry_run: config.dry_run,
        ..RetentionReport::default()
    };
    if config.dry_run {
        for name in &report.selected {
            tracing::info!(index = %name, "dry run: would delete");
        }
        return Ok(report);
    }
    for batch in delete_batches(
        &report.selected,
        config.max_indices_per_request,
        config.max_url_bytes,
    ) {
        match api.delete_indices(&batch).await {
            Ok(()) => {
                tracing::info!(count = batch.len(), "deleted indices");
                report.deleted.extend(batch);
            }
            Err(e) => {
                tracing::warn!(error = %e, "deleting indices failed");
                let reason = e.to_string();
                report
                    .failed
                    .extend(batch.into_iter().map(|n| (n, reason.clone())));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_dates() {
        assert_eq!(
            index_date("logs-a-20200314"),
            NaiveDate::from_ymd_opt(2020, 3, 14)
        );
        assert_eq!(index_date("20200314"), NaiveDate::from_ymd_opt(2020, 3, 14));
        assert_eq!(index_date("logs-a-120200314"), None);
        assert_eq!(index_date("logs-a-20200230"), None);
        assert_eq!(index_date("logs-a-2020031"), None);
        assert_eq!(index_date("logs-a-20200314-reload"), None);
        assert_eq!(index_date("logs-a-２０２００３１４"), None);
        assert_eq!(index_date(""), None);
    }

    #[tokio::test]
    async fn runs_against_the_memory_cluster() {
        use crate::search::MemorySearch;
        let api = MemorySearch::new();
        for name in [
            "a-20200101",
            "a-20200102",
            "a-20200101-reload",
            "a",
            "a-20991231",
        ] {
            api.create_index(name);
        }
        let now = DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let dry = RetentionConfig {
            dry_run: true,
            ..RetentionConfig::default()
        };
        let report = run_retention(&api, &dry, now).await.unwrap();
        assert_eq!(report.selected, ["a-20200101", "a-20200102"]);
        assert!(report.deleted.is_empty());
        assert_eq!(api.list_indices().await.unwrap().len(), 5);
        let report = run_retention(&api, &RetentionConfig::default(), now)
            .await
            .unwrap();
        assert_eq!(report.deleted, ["a-20200101", "a-20200102"]);
        assert_eq!(
            api.list_indices().await.unwrap(),
            ["a", "a-20200101-reload", "a-20991231"]
        );
        api.push_failure(SearchError::Transport {
            operation: "list indices",
            resource: "_cat/indices".into(),
            message: "refused".into(),
        });
        let err = run_retention(&api, &RetentionConfig::default(), now)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("listing indices failed"));
    }

    #[test]
    fn batches_are_bounded() {
        let names: Vec<String> = (0..10).map(|i| format!("idx-{i}")).collect();
        let b = delete_batches(&names, 3, 1000);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        // "idx-0,idx-1" = 11 bytes fits, a third does not.
        let b = delete_batches(&names, 100, 11);
        assert!(b.iter().all(|g| g.join(",").len() <= 11 && g.len() == 2));
        assert_eq!(b.concat(), names);
    }
}
