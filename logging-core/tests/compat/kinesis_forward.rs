//! kinesis-forward: the original module's environment block forwards what the original
//! forwarded, records without a timestamp included, and keeps its failures.

use std::sync::Arc;

use kinesis_utils::memory::InMemoryKinesis;

use crate::forward::{pipeline, settings};
use crate::{
    Buckets, Env, Rec, env_json, envelope_payload, event, json, lookup, reference, sorted,
};

/// terraform-aws-lambda-kinesis-forward v2.0.8 `main.tf` (v2.0.x; v1.x without
/// `KINESIS_MAX_RETRIES`), with the module's defaults (`timezone` "UTC", the field names,
/// `kinesis_max_retries` 3, `log_type_field_whitelist` [] joined to "") and the README's
/// example bucket and prefix; `TARGET_STREAM_NAME` is the name of the README's
/// `aws_kinesis_stream.target`.
pub const V2_0_8: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_TYPE_WHITELIST", ""),
    ("TARGET_STREAM_NAME", "target"),
    ("KINESIS_MAX_RETRIES", "3"),
    ("FAILED_LOG_S3_BUCKET", "failed-logs"),
    ("FAILED_LOG_S3_PREFIX", "forward"),
];

fn batch() -> serde_json::Value {
    event(&[
        Rec::Plain(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00+09:00"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"n1","msg":"no timestamp"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w0","msg":"no timestamp, first of its type"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w1","time":"whenever"}"#),
        Rec::Plain(r#"{"log_type":"audit","log_id":"x1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Plain(r#"{"log_id":"u1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Plain("not JSON"),
        Rec::Cwl(&[r#"{"log_type":"app","log_id":"c1"}"#]),
        Rec::Kpl(&[
            r#"{"log_type":"web","log_id":"k1","time":"2020-03-14T12:00:00Z"}"#,
            r#"{"log_type":"app","log_id":"k2"}"#,
        ]),
    ])
}

struct Forwarded {
    records: Vec<serde_json::Value>,
    dead: Vec<(String, Vec<String>)>,
}

async fn run(overrides: &[(&str, Option<&str>)], event: &serde_json::Value) -> Forwarded {
    let s = settings(&|name: &str| lookup(V2_0_8, overrides, name)).unwrap();
    let kinesis = Arc::new(InMemoryKinesis::new());
    let stream = kinesis.create_stream("target", 1).unwrap();
    let buckets = Buckets::default();
    let p = pipeline(&s, kinesis.clone(), &buckets.opener()).unwrap();
    let out = p.process(event.to_string().as_bytes()).await.unwrap();
    assert!(
        out.response.batch_item_failures.is_empty(),
        "{:?}",
        out.report
    );
    Forwarded {
        records: kinesis
            .records(&stream)
            .unwrap()
            .iter()
            .map(|r| json(std::str::from_utf8(&r.data).unwrap()))
            .collect(),
        dead: buckets.objects("failed-logs"),
    }
}

fn original(overrides: &[(&str, Option<&str>)], event: &serde_json::Value) -> serde_json::Value {
    let out = reference(
        "forward",
        &serde_json::json!({"env": env_json(V2_0_8, overrides), "event": event}),
    );
    assert_eq!(out["crash"], serde_json::Value::Null, "{out}");
    out
}

fn lines(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| json(l.as_str().unwrap()))
        .collect()
}

/// With a whitelist, exactly what the library forwarded (amazon-kinesis-utils 0.1.8,
/// `timestamp_required=False`): records without a timestamp and with one it never parsed
/// included; records without a type are kept as failures by both.
#[tokio::test]
async fn forwards_what_the_original_forwarded() {
    let overrides = [("LOG_TYPE_WHITELIST", Some("app,web"))];
    let batch = batch();
    let original = original(&overrides, &batch);
    let rust = run(&overrides, &batch).await;
    let forwarded = lines(&original["forwarded"]);
    assert!(
        forwarded.iter().any(|r| r["log_id"] == "n1"),
        "{forwarded:?}"
    );
    assert_eq!(sorted(rust.records.clone()), sorted(forwarded));
    // The original's failed_dict ("unknown/unknown_type"), kept in the failed-log bucket
    // under FAILED_LOG_S3_PREFIX in the original's flat layout, plus the non-JSON payload the
    // original dropped.
    let failed = lines(&original["failed"]["unknown/unknown_type"]);
    let dead: Vec<serde_json::Value> = rust
        .dead
        .iter()
        .flat_map(|(_, l)| l.iter().map(|l| envelope_payload(l)))
        .collect();
    assert!(
        failed.iter().all(|f| dead.contains(f)),
        "{failed:?} {dead:?}"
    );
    assert_eq!(dead.len(), failed.len() + 1);
    for (key, _) in &rust.dead {
        assert!(key.starts_with("forward/2020-03/"), "{key}");
    }
}

/// With the module's default, empty whitelist, the library forwarded nothing (it compared
/// every type with the set {""}), contrary to the module's documentation ("if empty, all types
/// will be processed"). The example does what the documentation says.
#[tokio::test]
async fn an_empty_whitelist_forwards_every_type_as_documented() {
    let batch = batch();
    let original = original(&[], &batch);
    assert_eq!(
        lines(&original["forwarded"]),
        Vec::<serde_json::Value>::new()
    );
    let rust = run(&[], &batch).await;
    let mut types: Vec<String> = rust
        .records
        .iter()
        .map(|r| r["log_type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(types, ["app", "audit", "web"]);
    assert_eq!(rust.records.len(), 8);
}

/// A failure prefix the original wrote differently is refused; so are unknown switches.
#[test]
fn refusals() {
    for (name, value) in [
        ("FAILED_LOG_S3_PREFIX", Some("forward/")),
        ("FAILED_LOG_S3_PREFIX", Some("")),
        ("TARGET_STREAM_NAME", None),
        ("KINESIS_MAX_RETRIES", Some("three")),
        ("KPL_AGGREGATE", Some("maybe")),
    ] {
        let e = settings(&|k: &str| lookup(V2_0_8, &[(name, value)], k)).unwrap_err();
        assert!(e.contains(name), "{name}={value:?}: {e}");
    }
    let s = settings(&|k: &str| lookup(V2_0_8, &[], k)).unwrap();
    assert_eq!(s.forward.put.max_attempts, 4);
    assert!(!s.common.schema.timestamp_required);
}
