//! Lambda handler replacing the original es-cleaner function: deletes daily indices
//! (`…-%Y%m%d`) older than `MAX_AGE_DAYS`, in bounded requests; run it on a schedule
//! (EventBridge). Indices ending `-reload` and names without a trailing date are never touched.
//!
//! Environment (the original module's block works unchanged):
//!
//! * `ES_HOST` (required): a host name as in the original module (HTTPS on port 443, requests
//!   SigV4-signed as the original always did), or a URL (`http://localhost:9200`: signed
//!   only for AWS domains). `ES_SIGV4` (`true`/`false`) overrides; `ES_USERNAME` /
//!   `ES_PASSWORD` for basic auth on self-hosted clusters.
//! * `DRY_RUN_ONLY` (required, as in the original): `true`, `True` or `yes` only list what
//!   would be deleted; `false` or `no` delete. Any other value stops the cold start with an
//!   error instead of deleting.
//! * `MAX_AGE_DAYS` (required, as in the original): an index is deleted once its whole day is
//!   older than this many days.
//! * `INDEX_NAME_PREFIX` (optional): only indices named `{prefix}-…`; unset or `*` considers
//!   every index, as the original did.
//! * `LOG_TIMEZONE`, else `TZ`: the zone of "today" (default UTC).
//!
//! The function answers with the report as JSON: `selected`, `deleted`, `failed`, `dry_run`.

#[path = "common/cleaner.rs"]
mod cleaner;
#[path = "common/search_env.rs"]
mod search_env;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Raw values: an empty DRY_RUN_ONLY is refused, not read as unset.
    let raw = |name: &str| std::env::var(name).ok();
    let s = cleaner::settings(raw)?;
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let api = Arc::new(cleaner::Prefixed {
        inner: search_env::http_search(&search_env::connection(&get)?, &sdk)?,
        prefix: s.index_prefix.clone(),
    });
    tracing::info!(dry_run = s.retention.dry_run, max_age_days = s.retention.max_age_days,
        prefix = ?s.index_prefix, "es-cleaner configured");
    let s = Arc::new(s);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let (api, s) = (api.clone(), s.clone());
        // A failed listing fails the invocation, so the schedule's retry and alarms see it.
        async move {
            cleaner::clean(&*api, &s, Utc::now())
                .await
                .map_err(Error::from)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::cleaner::*;
    use logging_core::search::{MemorySearch, SearchApi};

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        settings(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const BASE: [(&str, &str); 2] = [("MAX_AGE_DAYS", "60"), ("DRY_RUN_ONLY", "false")];

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
        let s = read(&BASE).unwrap();
        assert_eq!((s.index_prefix, s.retention.max_age_days), (None, 60));
        assert!(!s.retention.dry_run);
        let s = read(&[BASE[0], BASE[1], ("INDEX_NAME_PREFIX", "*")]).unwrap();
        assert_eq!(s.index_prefix, None);
        assert!(read(&[]).unwrap_err().contains("DRY_RUN_ONLY"));
        assert!(read(&[BASE[1]]).unwrap_err().contains("MAX_AGE_DAYS"));
        assert!(read(&[("MAX_AGE_DAYS", "a week"), BASE[1]]).is_err());
        assert!(read(&[("MAX_AGE_DAYS", "-1"), BASE[1]]).is_err());
        assert!(read(&[BASE[0], BASE[1], ("TZ", "Mars/Base")]).is_err());
    }

    #[test]
    fn dry_run_values() {
        for v in ["true", "True", "yes"] {
            assert_eq!(dry_run(Some(v)), Ok(true), "{v}");
        }
        for v in ["false", "False", "FALSE", "no", "No"] {
            assert_eq!(dry_run(Some(v)), Ok(false), "{v}");
        }
        for v in ["", " ", "TRUE", "Yes", "1", "0", "on", "y", " true", "dry"] {
            let err = dry_run(Some(v)).unwrap_err();
            assert!(err.contains("DRY_RUN_ONLY"), "{v}: {err}");
        }
        assert!(dry_run(None).unwrap_err().contains("required"));
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
        let now = chrono::Utc::now();
        let s = read(&[
            ("INDEX_NAME_PREFIX", "logs"),
            BASE[0],
            ("DRY_RUN_ONLY", "yes"),
        ])
        .unwrap();
        let out = clean(&api, &s, now).await.unwrap();
        assert_eq!(out["selected"], serde_json::json!(["logs-a-20000101"]));
        assert_eq!(api.inner.list_indices().await.unwrap().len(), 5);
        let s = read(&[("INDEX_NAME_PREFIX", "logs"), BASE[0], BASE[1]]).unwrap();
        let out = clean(&api, &s, now).await.unwrap();
        assert_eq!(out["deleted"], serde_json::json!(["logs-a-20000101"]));
        assert_eq!(api.inner.list_indices().await.unwrap().len(), 4);
    }
}
