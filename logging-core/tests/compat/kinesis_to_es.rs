//! kinesis-to-es: the original module's environment block indexes each record into the
//! daily index the original used, and keeps failures under the original's prefix.

use std::sync::Arc;

use logging_core::search::{MemorySearch, SearchApi};

use crate::to_es::{pipeline, settings};
use crate::{
    Buckets, Env, Rec, env_json, envelope_payload, event, json, lookup, reference, sorted,
};

/// terraform-aws-lambda-kinesis-to-es v2.0.2 `main.tf` (the same names from v1.0.0 to
/// v2.1.0), with the module's defaults (`timezone` "UTC", the field names,
/// `log_type_field_whitelist` [] joined to "") and the README's example values.
pub const V2_0_2: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_TYPE_WHITELIST", ""),
    (
        "ES_HOST",
        "search-dev-elasticsearch-xxxxxxxx.ap-northeast-1.es.amazonaws.com",
    ),
    ("FAILED_LOG_S3_BUCKET", "failed-log"),
    ("FAILED_LOG_S3_PREFIX", "elasticsearch/"),
    ("INDEX_NAME_PREFIX", "dev-logs"),
];

/// The README's `failed_log_s3_prefix` ends in `/`, so the original wrote failures to
/// `elasticsearch//2020-03/…`: refused at start with the fix; the behaviour is compared with
/// the prefix as the fix says.
const FIXED_PREFIX: (&str, Option<&str>) = ("FAILED_LOG_S3_PREFIX", Some("elasticsearch"));

fn batch() -> serde_json::Value {
    event(&[
        Rec::Plain(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00+09:00"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"a2","time":"2020-03-15T00:30:00+09:00"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w1","time":"2020-03-14T22:00:00-05:00"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w2","time":"2020-03-14 23:59:59"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"n1","msg":"no timestamp"}"#),
        Rec::Plain(r#"{"log_id":"u1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Plain("not JSON"),
        Rec::Cwl(&[r#"{"log_type":"db","log_id":"d1","time":"2020-03-14T00:00:01+09:00"}"#]),
        Rec::Kpl(&[r#"{"log_type":"kpl","log_id":"k1","time":"2020-03-14T12:00:00Z"}"#]),
    ])
}

/// Every document the original indexed is in the same index, and nothing else; failures are
/// under the failed-log prefix.
#[tokio::test]
async fn indexes_what_the_original_indexed_where_it_did() {
    for tz in ["UTC", "Asia/Tokyo"] {
        let overrides = [FIXED_PREFIX, ("TZ", Some(tz))];
        let batch = batch();
        let original = reference(
            "to_es",
            &serde_json::json!({"env": env_json(V2_0_2, &overrides), "event": batch}),
        );
        assert_eq!(original["crash"], serde_json::Value::Null, "{original}");
        let s = settings(&|name: &str| lookup(V2_0_2, &overrides, name)).unwrap();
        let cluster = Arc::new(MemorySearch::new());
        let buckets = Buckets::default();
        let p = pipeline(&s, cluster.clone(), &buckets.opener()).unwrap();
        let out = p.process(batch.to_string().as_bytes()).await.unwrap();
        assert!(
            out.response.batch_item_failures.is_empty(),
            "{:?}",
            out.report
        );

        let want = sorted(
            original["docs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| serde_json::json!([d[0], json(d[1].as_str().unwrap())]))
                .collect(),
        );
        let mut got = Vec::new();
        for index in cluster.list_indices().await.unwrap() {
            for (_, source) in cluster.documents(&index) {
                got.push(serde_json::json!([
                    index,
                    json(std::str::from_utf8(&source).unwrap())
                ]));
            }
        }
        assert_eq!(sorted(got), want, "{tz}");
        // 23:30 in Tokyo is the 14th there (the original's strftime), 14:30 UTC.
        assert!(
            cluster.documents("dev-logs-app-20200314").len() == 1,
            "{tz}"
        );

        let failed: Vec<serde_json::Value> = original["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json(l.as_str().unwrap()))
            .collect();
        let objects = buckets.objects("failed-log");
        let dead: Vec<serde_json::Value> = objects
            .iter()
            .flat_map(|(_, l)| l.iter().map(|l| envelope_payload(l)))
            .collect();
        assert!(
            failed.iter().all(|f| dead.contains(f)),
            "{failed:?} {dead:?}"
        );
        assert_eq!(
            dead.len(),
            failed.len() + 1,
            "the non-JSON payload, which it dropped"
        );
        for (key, _) in &objects {
            assert!(key.starts_with("elasticsearch/2020-03/"), "{key}");
        }
    }
}

/// What the original could not index made it fail the whole batch (an epoch number or a
/// time dateutil cannot read, in `dateutil.parser.parse`): Lambda retried it until the records
/// expired. Here the record is dead-lettered (`bad_timestamp`) and the rest is indexed.
#[tokio::test]
async fn timestamps_that_stopped_the_original_are_dead_lettered() {
    let overrides = [FIXED_PREFIX];
    for bad in [
        r#"{"log_type":"app","log_id":"b1","time":"yesterday-ish"}"#,
        r#"{"log_type":"app","log_id":"b2","time":{"s":1}}"#,
    ] {
        let batch = event(&[
            Rec::Plain(bad),
            Rec::Plain(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T12:00:00Z"}"#),
        ]);
        let original = reference(
            "to_es",
            &serde_json::json!({"env": env_json(V2_0_2, &overrides), "event": batch}),
        );
        assert!(original["crash"].is_string(), "{original}");
        let s = settings(&|name: &str| lookup(V2_0_2, &overrides, name)).unwrap();
        let cluster = Arc::new(MemorySearch::new());
        let buckets = Buckets::default();
        let p = pipeline(&s, cluster.clone(), &buckets.opener()).unwrap();
        let out = p.process(batch.to_string().as_bytes()).await.unwrap();
        assert_eq!(
            (out.report.delivered, out.report.invalid.bad_timestamp),
            (1, 1),
            "{bad}"
        );
        assert!(out.response.batch_item_failures.is_empty());
    }
}

/// The README's prefix and other values the original used differently are refused at start,
/// by name, with the fix.
#[test]
fn refusals() {
    let e = settings(&|k: &str| lookup(V2_0_2, &[], k)).unwrap_err();
    assert!(
        e.contains("FAILED_LOG_S3_PREFIX") && e.contains("elasticsearch//"),
        "{e}"
    );
    assert!(
        e.contains("\"elasticsearch\"") || e.contains("elasticsearch/{%Y-%m}"),
        "{e}"
    );
    for (name, value) in [
        ("INDEX_NAME_PREFIX", None),
        ("ES_DOC_ID", Some("random")),
        ("LOG_TIMESTAMP_FIELD", Some("")),
    ] {
        let e = settings(&|k: &str| lookup(V2_0_2, &[FIXED_PREFIX, (name, value)], k)).unwrap_err();
        assert!(e.contains(name), "{name}={value:?}: {e}");
    }
    // An uppercase index prefix cannot form index names: refused when the pipeline is built.
    let s = settings(&|k: &str| {
        lookup(
            V2_0_2,
            &[FIXED_PREFIX, ("INDEX_NAME_PREFIX", Some("Dev"))],
            k,
        )
    })
    .unwrap();
    let api: Arc<dyn SearchApi> = Arc::new(MemorySearch::new());
    let buckets = Buckets::default();
    let e = pipeline(&s, api, &buckets.opener()).err().unwrap();
    assert!(e.contains("uppercase"), "{e}");
}
