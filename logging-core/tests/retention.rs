//! Index retention: table tests of `select_expired` across zones and calendar edges, and
//! runs against the local search server (bounded deletes, dry run, failures).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use logging_core::retention::select_expired;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn older_than_table() {
    let utc = chrono_tz::UTC;
    let tokyo = chrono_tz::Asia::Tokyo;
    let la = chrono_tz::America::Los_Angeles;
    // (now, max_age_days, zone, index date, selected?)
    let table: &[(&str, u32, Tz, &str, bool)] = &[
        // Day boundary in UTC: on 03-15, age 7 keeps 03-08 and selects 03-07.
        ("2020-03-15T00:00:00Z", 7, utc, "20200308", false),
        ("2020-03-15T00:00:00Z", 7, utc, "20200307", true),
        ("2020-03-14T23:59:59Z", 7, utc, "20200307", false),
        // max_age 0: everything before today.
        ("2020-03-15T12:00:00Z", 0, utc, "20200315", false),
        ("2020-03-15T12:00:00Z", 0, utc, "20200314", true),
        // Tokyo is already on 03-15 at 15:00Z on 03-14.
        ("2020-03-14T15:00:00Z", 7, tokyo, "20200307", true),
        ("2020-03-14T14:59:59Z", 7, tokyo, "20200307", false),
        // Los Angeles is still on 03-14 at 06:59Z on 03-15 (PDT, UTC-7).
        ("2020-03-15T06:59:59Z", 7, la, "20200307", false),
        ("2020-03-15T07:00:00Z", 7, la, "20200307", true),
        // Month edge (leap year) and year edge.
        ("2020-03-01T00:00:00Z", 1, utc, "20200229", false),
        ("2020-03-01T00:00:00Z", 1, utc, "20200228", true),
        ("2021-01-01T00:00:00Z", 30, utc, "20201202", false),
        ("2021-01-01T00:00:00Z", 30, utc, "20201201", true),
        ("2020-12-31T14:59:59Z", 0, tokyo, "20201231", false),
        ("2020-12-31T15:00:00Z", 0, tokyo, "20201231", true),
        // Future dates are never selected.
        ("2020-03-15T00:00:00Z", 0, utc, "20300101", false),
    ];
    for (now, days, tz, date, want) in table {
        let name = format!("logs-app-{date}");
        let got = select_expired([name.as_str()], at(now), *days, *tz);
        assert_eq!(!got.is_empty(), *want, "{now} {days} {tz} {date}");
    }
}

#[test]
fn never_selects_reload_or_undated_names() {
    let now = at("2030-01-01T00:00:00Z");
    let names = [
        "logs-app-20200101",
        "logs-app-20200101-reload",
        "logs-app-reload",
        "20200101-reload",
        ".kibana",
        "logs-app",
        "logs-app-2020010",
        "logs-app-20201301",
        "logs-app-120200101",
        "logs-app-2020-01-01",
    ];
    assert_eq!(
        select_expired(names, now, 1, chrono_tz::UTC),
        ["logs-app-20200101"]
    );
}

/// Runs against the local Elasticsearch-like server through the HTTP client.
#[cfg(feature = "search")]
mod http_runs {
    use super::*;
    use chrono::TimeZone;
    use logging_core::retention::{RetentionConfig, run_retention};

    fn seeded(server: &support::search_server::SearchServer, n: usize) -> Vec<String> {
        let names: Vec<String> = (0..n)
            .map(|i| format!("logs-type-with-a-rather-long-name-{i:03}-20200101"))
            .collect();
        let mut st = server.state();
        st.indices.extend(names.iter().cloned());
        st.indices.insert("logs-app-20991231".into());
        st.indices.insert("logs-app-20200101-reload".into());
        names
    }

    fn client(
        server: &support::search_server::SearchServer,
    ) -> logging_core::search::http::HttpSearch {
        use logging_core::search::http::{HttpSearch, HttpSearchConfig, SearchAuth};
        let config = HttpSearchConfig {
            endpoint: server.url(),
            ..HttpSearchConfig::default()
        };
        HttpSearch::new(&config, SearchAuth::None).unwrap()
    }

    #[tokio::test]
    async fn deletes_in_bounded_requests() {
        let server = support::search_server::SearchServer::start().await;
        let names = seeded(&server, 120);
        let config = RetentionConfig {
            max_age_days: 30,
            timezone: "Asia/Tokyo".into(),
            max_indices_per_request: 50,
            max_url_bytes: 1_000,
            ..RetentionConfig::default()
        };
        let report = run_retention(
            &client(&server),
            &config,
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(report.selected.len(), 120);
        assert_eq!(report.deleted.len(), 120);
        assert!(report.failed.is_empty());
        let st = server.state();
        let left: Vec<_> = st.indices.iter().cloned().collect();
        assert_eq!(left, ["logs-app-20200101-reload", "logs-app-20991231"]);
        let deletes: Vec<_> = st
            .requests
            .iter()
            .filter(|r| r.method == "DELETE")
            .collect();
        assert!(deletes.len() >= 3);
        for d in &deletes {
            let path = d.target.split('?').next().unwrap().trim_start_matches('/');
            assert!(path.len() <= 1_000, "{}", path.len());
            assert!(path.split(',').count() <= 50);
        }
        drop(st);
        let _ = names;
    }

    #[tokio::test]
    async fn dry_run_deletes_nothing() {
        let server = support::search_server::SearchServer::start().await;
        let names = seeded(&server, 5);
        let config = RetentionConfig {
            dry_run: true,
            ..RetentionConfig::default()
        };
        let report = run_retention(&client(&server), &config, Utc::now())
            .await
            .unwrap();
        assert!(report.dry_run);
        let mut selected = report.selected.clone();
        selected.sort();
        assert_eq!(selected, names);
        assert!(report.deleted.is_empty());
        let st = server.state();
        assert_eq!(st.indices.len(), 7);
        assert!(st.requests.iter().all(|r| r.method == "GET"));
    }

    #[tokio::test]
    async fn failed_deletes_are_reported_and_others_proceed() {
        let server = support::search_server::SearchServer::start().await;
        seeded(&server, 4);
        server.state().fail_delete_containing = Some("-002-".into());
        let config = RetentionConfig {
            max_indices_per_request: 1,
            ..RetentionConfig::default()
        };
        let report = run_retention(&client(&server), &config, Utc::now())
            .await
            .unwrap();
        assert_eq!(report.deleted.len(), 3);
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0].0.contains("-002-"));
        assert!(report.failed[0].1.contains("500"), "{}", report.failed[0].1);
    }

    #[tokio::test]
    async fn bad_time_zone_is_an_error() {
        let server = support::search_server::SearchServer::start().await;
        let config = RetentionConfig {
            timezone: "Mars/Olympus".into(),
            ..RetentionConfig::default()
        };
        let err = run_retention(&client(&server), &config, Utc::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"));
    }
}
