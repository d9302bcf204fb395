//! Lambda handler replacing the original es-cleaner function: deletes daily indices
//! (`…-%Y%m%d`) older than `MAX_AGE_DAYS`, in bounded requests; run it on a schedule
//! (EventBridge). Indices ending `-reload` and names without a trailing date are never touched.
//!
//! Environment: `ES_HOST` (required; SigV4 for AWS domains as in `kinesis_to_es`, or
//! `ES_SIGV4`, `ES_USERNAME`/`ES_PASSWORD`), `INDEX_NAME_PREFIX` (required: only indices
//! named `{prefix}-…` are considered; `*` for every index), `MAX_AGE_DAYS` (default 30),
//! `DRY_RUN_ONLY` (`true` only lists what would be deleted), `LOG_TIMEZONE` (else `TZ`;
//! the zone of "today" and of index dates, default `UTC`).
//!
//! The function answers with the report as JSON: `selected`, `deleted`, `failed`, `dry_run`.

#[path = "common/search_env.rs"]
mod search_env;

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use bytes::Bytes;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use logging_core::retention::{RetentionConfig, run_retention};
use logging_core::search::{BulkReply, SearchApi, SearchError};

/// What the cleaner reads besides the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    /// `None` considers every index.
    index_prefix: Option<String>,
    retention: RetentionConfig,
}

/// Reads [`Settings`] through `get` (the environment in `main`, a map in tests).
fn settings(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let index_prefix = match get("INDEX_NAME_PREFIX").as_deref().map(str::trim) {
        None => {
            return Err("environment variable INDEX_NAME_PREFIX is required (`*` for all)".into());
        }
        Some("*") => None,
        Some(p) => Some(p.to_owned()),
    };
    let max_age_days = match get("MAX_AGE_DAYS") {
        None => 30,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("MAX_AGE_DAYS={v:?} is not a number of days"))?,
    };
    let timezone = get("LOG_TIMEZONE")
        .or_else(|| get("TZ"))
        .map(|z| z.trim().trim_start_matches(':').to_owned())
        .unwrap_or_else(|| "UTC".to_owned());
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(format!("time zone {timezone:?} is not an IANA name"));
    }
    Ok(Settings {
        index_prefix,
        retention: RetentionConfig {
            max_age_days,
            timezone,
            dry_run: get("DRY_RUN_ONLY").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ..RetentionConfig::default()
        },
    })
}

/// A cluster whose index listing only shows `{prefix}-…`, so retention never sees (and never
/// deletes) other indices.
struct Prefixed<S> {
    inner: S,
    prefix: Option<String>,
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

async fn clean<S: SearchApi>(api: &Prefixed<S>, s: &Settings) -> Result<serde_json::Value, String> {
    let report = run_retention(api, &s.retention, Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "selected": report.selected,
        "deleted": report.deleted,
        "failed": report.failed,
        "dry_run": report.dry_run,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let s = settings(get)?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let api = Arc::new(Prefixed {
        inner: search_env::http_search(&search_env::connection(&get)?, &sdk)?,
        prefix: s.index_prefix.clone(),
    });
    let s = Arc::new(s);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let (api, s) = (api.clone(), s.clone());
        // A failed listing fails the invocation, so the schedule's retry and alarms see it.
        async move { clean(&*api, &s).await.map_err(Error::from) }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use logging_core::search::MemorySearch;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        settings(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn settings_from_env() {
        let s = read(&[
            ("INDEX_NAME_PREFIX", "logs"),
            ("MAX_AGE_DAYS", "7"),
            ("DRY_RUN_ONLY", "True"),
            ("TZ", ":Asia/Tokyo"),
        ])
        .unwrap();
        assert_eq!(s.index_prefix.as_deref(), Some("logs"));
        assert_eq!(s.retention.max_age_days, 7);
        assert!(s.retention.dry_run);
        assert_eq!(s.retention.timezone, "Asia/Tokyo");
        let s = read(&[("INDEX_NAME_PREFIX", "*")]).unwrap();
        assert_eq!((s.index_prefix, s.retention.max_age_days), (None, 30));
        assert!(read(&[]).is_err());
        assert!(read(&[("INDEX_NAME_PREFIX", "x"), ("MAX_AGE_DAYS", "a week")]).is_err());
        assert!(read(&[("INDEX_NAME_PREFIX", "x"), ("TZ", "Mars/Base")]).is_err());
    }

    #[tokio::test]
    async fn deletes_only_old_indices_under_the_prefix() {
        let mem = MemorySearch::new();
        for name in [
            "logs-a-20000101",
            "logs-a-20000101-reload",
            "other-a-20000101",
            "logs-a-29990101",
            "logsx-a-20000101",
        ] {
            mem.create_index(name);
        }
        let api = Prefixed {
            inner: mem,
            prefix: Some("logs".into()),
        };
        let s = read(&[("INDEX_NAME_PREFIX", "logs"), ("DRY_RUN_ONLY", "true")]).unwrap();
        let out = clean(&api, &s).await.unwrap();
        assert_eq!(out["selected"], serde_json::json!(["logs-a-20000101"]));
        assert_eq!(api.inner.list_indices().await.unwrap().len(), 5);
        let s = read(&[("INDEX_NAME_PREFIX", "logs")]).unwrap();
        let out = clean(&api, &s).await.unwrap();
        assert_eq!(out["deleted"], serde_json::json!(["logs-a-20000101"]));
        assert_eq!(api.inner.list_indices().await.unwrap().len(), 4);
    }
}
