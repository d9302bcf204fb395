//! lambda-es-cleaner: nothing is deleted that the original would not have deleted.

use chrono::{DateTime, TimeDelta, Utc};
use logging_core::search::{MemorySearch, SearchApi};

use crate::cleaner::{Prefixed, clean, settings};
use crate::{Env, env_json, lookup, reference};

/// terraform-aws-lambda-es-cleaner v2.0.1 `main.tf` (the same four names since v1.0.0), with
/// the module's defaults (`timezone` "UTC", `max_age_days` "60", `dry_run_only` "false") and
/// the README's example host.
const V2_0_1: Env = &[
    ("TZ", "UTC"),
    (
        "ES_HOST",
        "search-dev-elasticsearch-xxxxxxxx.ap-northeast-1.es.amazonaws.com",
    ),
    ("MAX_AGE_DAYS", "60"),
    ("DRY_RUN_ONLY", "false"),
];

/// Names a cluster of the original kinesis-to-es module holds, and others.
const INDICES: &[&str] = &[
    "logs-app-20200101",
    "logs-app-20200110",
    "logs-app-20200114",
    "logs-app-20200115",
    "logs-app-20200116",
    "logs-app-20200301",
    "logs-app-20200101-reload",
    "logs-nginx-20191231",
    "other-app-20200101",
    "logs-app-20200101-copy",
    ".kibana",
    "logs",
    "logs-app-29991231",
];

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Runs the example's configuration and cleaner on a fresh cluster holding [`INDICES`];
/// `Err` is the start-up refusal, `Ok` what was deleted and what was selected.
async fn rust_run(
    env: Env,
    overrides: &[(&str, Option<&str>)],
    now: DateTime<Utc>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let s = settings(|name| lookup(env, overrides, name))?;
    let mem = MemorySearch::new();
    for name in INDICES {
        mem.create_index(name);
    }
    let api = Prefixed {
        inner: mem,
        prefix: s.index_prefix.clone(),
    };
    let before = api.inner.list_indices().await.unwrap();
    let out = clean(&api, &s, now).await?;
    let after = api.inner.list_indices().await.unwrap();
    let deleted: Vec<String> = before.into_iter().filter(|n| !after.contains(n)).collect();
    let listed: Vec<String> = serde_json::from_value(out["deleted"].clone()).unwrap();
    assert_eq!(listed, deleted, "the report names what is gone");
    let selected = serde_json::from_value(out["selected"].clone()).unwrap();
    Ok((deleted, selected))
}

/// Variables set (`Some`) or removed (`None`) on top of a block.
type Overrides<'a> = Vec<(&'a str, Option<&'a str>)>;

/// What the original did on each run (`(overrides, now)`), from `reference.py`.
fn original_runs(env: Env, runs: &[(Overrides<'_>, DateTime<Utc>)]) -> Vec<serde_json::Value> {
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|(overrides, now)| {
            serde_json::json!({
                "env": env_json(env, overrides),
                "now_epoch": now.timestamp(),
                "indices": INDICES,
            })
        })
        .collect();
    serde_json::from_value(reference("curator", &serde_json::json!({ "runs": runs }))).unwrap()
}

fn original_run(
    env: Env,
    overrides: &[(&str, Option<&str>)],
    now: DateTime<Utc>,
) -> serde_json::Value {
    original_runs(env, &[(overrides.to_vec(), now)]).remove(0)
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

/// The module's block as it is: deletes what the original deleted, minus the boundary day
/// and names whose date is not at the end.
#[tokio::test]
async fn the_original_block_deletes_a_subset_of_what_the_original_deleted() {
    let now = at("2020-03-16T01:00:00Z");
    let original = original_run(V2_0_1, &[], now);
    assert_eq!(original["crash"], serde_json::Value::Null);
    assert_eq!(
        strings(&original["deleted"]),
        [
            "logs-app-20200101",
            "logs-app-20200110",
            "logs-app-20200114",
            "logs-app-20200115",
            "logs-app-20200116",
            "logs-nginx-20191231",
            "other-app-20200101",
            "logs-app-20200101-copy",
        ]
    );
    let (deleted, _) = rust_run(V2_0_1, &[], now).await.unwrap();
    // 2020-01-16 is 60 days before 2020-03-16: its start is more than 60 days old at 01:00, so
    // curator deleted it, but the rest of its day is not; `-copy` has no trailing date.
    assert_eq!(
        deleted,
        [
            "logs-app-20200101",
            "logs-app-20200110",
            "logs-app-20200114",
            "logs-app-20200115",
            "logs-nginx-20191231",
            "other-app-20200101",
        ]
    );
}

/// Every `DRY_RUN_ONLY` value: a dry run wherever the original dry-ran, a refusal where the
/// value is empty or unknown, and never a deletion the original would not have made.
#[tokio::test]
async fn dry_run_only_values() {
    let now = at("2020-03-16T01:00:00Z");
    // (value, what the original did: true = dry run, what the Rust example does)
    let cases: &[(Option<&str>, &str)] = &[
        (Some("yes"), "dry run"),
        (Some("True"), "dry run"),
        (Some("true"), "dry run"),
        (Some("false"), "delete"),
        (Some("no"), "delete"),
        (Some(""), "refuse"),
        (Some("TRUE"), "refuse"),
        (Some("1"), "refuse"),
        (None, "refuse"),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|(value, _)| (vec![("DRY_RUN_ONLY", *value)], now))
        .collect();
    let originals = original_runs(V2_0_1, &runs);
    for (&(value, want), original) in cases.iter().zip(originals) {
        let overrides = [("DRY_RUN_ONLY", value)];
        let original_deleted = strings(&original["deleted"]);
        let rust = rust_run(V2_0_1, &overrides, now).await;
        match (want, &rust) {
            ("dry run", Ok((deleted, selected))) => {
                assert_eq!(original["dry_run"], true, "{value:?}");
                assert!(deleted.is_empty(), "{value:?}: {deleted:?}");
                assert!(!selected.is_empty(), "{value:?}: the dry run lists");
            }
            ("delete", Ok((deleted, _))) => {
                assert_eq!(original["dry_run"], false, "{value:?}");
                assert!(!deleted.is_empty(), "{value:?}");
            }
            ("refuse", Err(e)) => assert!(e.contains("DRY_RUN_ONLY"), "{value:?}: {e}"),
            _ => panic!("DRY_RUN_ONLY={value:?}: expected {want}, got {rust:?}"),
        }
        let deleted = rust.map(|(d, _)| d).unwrap_or_default();
        for name in &deleted {
            assert!(
                original_deleted.contains(name),
                "DRY_RUN_ONLY={value:?}: {name} deleted, the original kept it"
            );
        }
    }
}

/// Across the day, in zones on both sides of UTC, with and without a prefix: what is deleted
/// is always among what the original deleted at that instant.
#[tokio::test]
async fn never_more_than_the_original_at_any_hour_in_any_zone() {
    let start = at("2020-03-15T00:00:00Z");
    let mut runs = Vec::new();
    for tz in [
        "UTC",
        "Asia/Tokyo",
        "Pacific/Kiritimati",
        "America/Los_Angeles",
    ] {
        for prefix in [None, Some("logs")] {
            for days in ["0", "1", "60", "65"] {
                for step in 0..12 {
                    let now = start + TimeDelta::minutes(step * 127);
                    let overrides = vec![
                        ("TZ", Some(tz)),
                        ("INDEX_NAME_PREFIX", prefix),
                        ("MAX_AGE_DAYS", Some(days)),
                    ];
                    runs.push((overrides, now));
                }
            }
        }
    }
    let originals = original_runs(V2_0_1, &runs);
    let mut deleted_any = false;
    for ((overrides, now), original) in runs.iter().zip(&originals) {
        let original = strings(&original["deleted"]);
        let (deleted, _) = rust_run(V2_0_1, overrides, *now).await.unwrap();
        deleted_any |= !deleted.is_empty();
        for name in &deleted {
            assert!(
                original.contains(name),
                "{overrides:?} {now}: {name} deleted, the original kept it"
            );
        }
    }
    assert!(deleted_any);
}

/// `INDEX_NAME_PREFIX` unset is the original's behaviour (every index); set, it narrows.
#[tokio::test]
async fn index_name_prefix() {
    let now = at("2020-03-16T01:00:00Z");
    let (all, _) = rust_run(V2_0_1, &[], now).await.unwrap();
    assert!(all.contains(&"other-app-20200101".to_owned()));
    let (logs, _) = rust_run(V2_0_1, &[("INDEX_NAME_PREFIX", Some("logs"))], now)
        .await
        .unwrap();
    assert!(!logs.contains(&"other-app-20200101".to_owned()));
    assert!(logs.iter().all(|n| n.starts_with("logs-")));
}

/// `MAX_AGE_DAYS` unset or negative: the original failed at import (KeyError, or a negative
/// age that selects everything); the example refuses at start.
#[tokio::test]
async fn max_age_days_is_required_and_not_negative() {
    let now = at("2020-03-16T01:00:00Z");
    let e = rust_run(V2_0_1, &[("MAX_AGE_DAYS", None)], now)
        .await
        .unwrap_err();
    assert!(e.contains("MAX_AGE_DAYS"), "{e}");
    assert!(original_run(V2_0_1, &[("MAX_AGE_DAYS", None)], now)["crash"].is_string());
    let e = rust_run(V2_0_1, &[("MAX_AGE_DAYS", Some("-5"))], now)
        .await
        .unwrap_err();
    assert!(e.contains("MAX_AGE_DAYS"), "{e}");
}

/// `ES_HOST` as the module passes it (a host name without scheme): HTTPS on 443, SigV4 with
/// the domain's region, as the original's AWS4Auth did.
#[cfg(feature = "search")]
#[test]
fn the_original_host_is_https_and_signed() {
    let c = crate::search_env::connection(&|name: &str| lookup(V2_0_1, &[], name)).unwrap();
    assert_eq!(
        c.endpoint,
        "https://search-dev-elasticsearch-xxxxxxxx.ap-northeast-1.es.amazonaws.com"
    );
    assert_eq!(c.sigv4, Some((Some("ap-northeast-1".into()), "es".into())));
}
