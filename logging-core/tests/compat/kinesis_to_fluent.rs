//! kinesis-to-fluent: the original module's environment block sends what the original sent:
//! the same tags, `{"message": <JSON text>}` records and event times.

use crate::support::fluent_server::FluentServer;
use crate::to_fluent::{pipeline, settings};
use crate::{
    Buckets, Env, Rec, env_json, envelope_payload, event, json, lookup, reference, sorted,
};

/// terraform-aws-lambda-kinesis-to-fluent v0.1.0 `main.tf` (its only release), with the
/// module's defaults (`timezone` "UTC", the field names, `log_type_field_whitelist` [] joined to
/// "") and the README's example values (`fluent_tag` "dev", the endpoint "10.20.30.40",
/// `failed_log_s3_bucket` "failed-logs", `failed_log_s3_prefix` "fluent").
pub const V0_1_0: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_TYPE_WHITELIST", ""),
    ("LOG_FLUENT_SINK_ENDPOINT", "10.20.30.40"),
    ("LOG_FLUENT_TAG", "dev"),
    ("FAILED_LOG_S3_BUCKET", "failed-logs"),
    ("FAILED_LOG_S3_PREFIX", "fluent"),
];

/// The same block as the module's README documents it (`version = "1.0.0"`,
/// `fluent_target_url`), which the module's main.tf before v0.1.0 passed as
/// `LOG_FLUENT_TARGET_URL`.
pub const README_1_0_0: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_TYPE_WHITELIST", ""),
    ("LOG_FLUENT_TARGET_URL", "10.20.30.40"),
    ("LOG_FLUENT_TAG", "dev"),
    ("FAILED_LOG_S3_BUCKET", "failed-logs"),
    ("FAILED_LOG_S3_PREFIX", "fluent"),
];

fn batch() -> serde_json::Value {
    event(&[
        Rec::Plain(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00+09:00"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"a2","time":"2020-03-14T12:00:00.750Z"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w1","time":"2020-03-14 08:00:00"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w2","time":"not a time"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"n1","msg":"no timestamp"}"#),
        Rec::Plain(r#"{"log_id":"u1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Cwl(&[r#"{"log_type":"db","log_id":"d1","time":"2020-03-14T01:00:00-08:00"}"#]),
    ])
}

struct Sent {
    /// `(tag, seconds, record)`.
    events: Vec<(String, u32, serde_json::Value)>,
    dead: Vec<serde_json::Value>,
}

async fn run(env: Env, overrides: &[(&str, Option<&str>)], event: &serde_json::Value) -> Sent {
    let server = FluentServer::start(None).await;
    let endpoint = format!("127.0.0.1:{}", server.port);
    let mut all: Vec<(&str, Option<&str>)> = overrides.to_vec();
    let endpoint_var = if env.iter().any(|(k, _)| *k == "LOG_FLUENT_TARGET_URL") {
        "LOG_FLUENT_TARGET_URL"
    } else {
        "LOG_FLUENT_SINK_ENDPOINT"
    };
    all.push((endpoint_var, Some(&endpoint)));
    let s = settings(&|name: &str| lookup(env, &all, name)).unwrap();
    let buckets = Buckets::default();
    let p = pipeline(&s, &buckets.opener()).unwrap();
    let out = p.process(event.to_string().as_bytes()).await.unwrap();
    assert!(
        out.response.batch_item_failures.is_empty(),
        "{:?}",
        out.report
    );
    let events = server
        .state()
        .events
        .iter()
        .map(|e| (e.tag.clone(), e.secs, e.record.clone()))
        .collect();
    Sent {
        events,
        dead: buckets
            .objects("failed-logs")
            .iter()
            .flat_map(|(_, l)| l.iter().map(|l| envelope_payload(l)).collect::<Vec<_>>())
            .collect(),
    }
}

/// `{"message": text}` with the text parsed, for comparing records.
fn message(record: &serde_json::Value) -> serde_json::Value {
    let text = record["message"].as_str().expect("a message field");
    serde_json::json!({"message": json(text)})
}

/// With a whitelist, the events the original sent: tag `{log_type}.dev`, the record as
/// `{"message": "<JSON>"}`, and the original's event time (the timestamp's wall-clock time
/// read in `TZ`, in whole seconds), in zones where that differs from the instant.
#[tokio::test]
async fn sends_what_the_original_sent() {
    for env in [V0_1_0, README_1_0_0] {
        for tz in ["UTC", "Asia/Tokyo", "America/Los_Angeles"] {
            let overrides = [("LOG_TYPE_WHITELIST", Some("app,web,db")), ("TZ", Some(tz))];
            let batch = batch();
            let original = reference(
                "to_fluent",
                &serde_json::json!({"env": env_json(V0_1_0, &overrides), "event": batch}),
            );
            assert_eq!(original["crash"], serde_json::Value::Null, "{original}");
            let sent = run(env, &overrides, &batch).await;
            let want: Vec<serde_json::Value> = original["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| serde_json::json!([e["tag"], message(&e["record"])]))
                .collect();
            let got: Vec<serde_json::Value> = sent
                .events
                .iter()
                .map(|(tag, _, record)| serde_json::json!([tag, message(record)]))
                .collect();
            assert_eq!(sorted(got), sorted(want), "{tz}");
            for e in original["events"].as_array().unwrap() {
                let Some(time) = e["time"].as_i64() else {
                    continue; // the original's time.time() fallback
                };
                let record = message(&e["record"]);
                let (_, secs, _) = sent
                    .events
                    .iter()
                    .find(|(_, _, r)| message(r) == record)
                    .unwrap();
                // In a zone with daylight saving time, the original read a time written with an
                // offset as standard time (`time.mktime` with `tm_isdst` 0), an hour late while
                // DST is in effect (Los Angeles from 2020-03-08); the example reads it as the
                // local clock time, as the original read naive times (documented).
                let text = record["message"]["time"].as_str().unwrap();
                let written_with_offset = text.ends_with('Z') || text[10..].contains(['+', '-']);
                let dst_shift = if tz == "America/Los_Angeles" && written_with_offset {
                    3600
                } else {
                    0
                };
                assert_eq!(i64::from(*secs) + dst_shift, time, "{tz}: {record}");
            }
            // The record without a timestamp: the original re-tagged it `app_no_timestamp`,
            // which no whitelist let through; it is kept in the dead letter here, as is the
            // record without a type, which the original skipped.
            let ids: Vec<&str> = sent
                .dead
                .iter()
                .filter_map(|d| d["log_id"].as_str())
                .collect();
            assert_eq!(sorted_strs(ids), ["n1", "u1"], "{tz}");
        }
    }
}

fn sorted_strs(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

/// With the module's default, empty whitelist, the original sent nothing (it kept only the
/// types in the set {""}), contrary to its documentation; the example sends every type.
#[tokio::test]
async fn an_empty_whitelist_sends_every_type_as_documented() {
    let batch = batch();
    let original = reference(
        "to_fluent",
        &serde_json::json!({"env": env_json(V0_1_0, &[]), "event": batch}),
    );
    assert_eq!(original["events"], serde_json::json!([]));
    let sent = run(V0_1_0, &[], &batch).await;
    let mut tags: Vec<String> = sent.events.iter().map(|e| e.0.clone()).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags, ["app.dev", "db.dev", "web.dev"]);
}

/// `LOG_FLUENT_EVENT_TIME=instant` and `LOG_FLUENT_RECORD_FORMAT=object` are the explicit
/// options: the instant, and the record's fields as the event.
#[tokio::test]
async fn explicit_instant_and_object() {
    let batch = event(&[Rec::Plain(
        r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00+09:00"}"#,
    )]);
    let sent = run(
        V0_1_0,
        &[
            ("LOG_FLUENT_EVENT_TIME", Some("instant")),
            ("LOG_FLUENT_RECORD_FORMAT", Some("object")),
        ],
        &batch,
    )
    .await;
    assert_eq!(sent.events.len(), 1);
    let (tag, secs, record) = &sent.events[0];
    assert_eq!(tag, "app.dev");
    assert_eq!(*secs, 1_584_196_200); // 2020-03-14T14:30:00Z
    assert_eq!(record["log_id"], "a1");
}

/// Values the original could not have worked with are refused, by name, with the fix.
#[test]
fn refusals() {
    for (name, value) in [
        ("LOG_FLUENT_SINK_ENDPOINT", Some("tcp://10.20.30.40:24224")),
        ("LOG_FLUENT_SINK_ENDPOINT", None),
        ("LOG_FLUENT_EVENT_TIME", Some("now")),
        ("FLUENT_REQUIRE_ACK", Some("sometimes")),
    ] {
        let e = settings(&|k: &str| lookup(V0_1_0, &[(name, value)], k)).unwrap_err();
        assert!(e.contains(name), "{name}={value:?}: {e}");
    }
    let e = settings(&|k: &str| lookup(V0_1_0, &[("LOG_FLUENT_TARGET_URL", Some("10.9.9.9"))], k))
        .unwrap_err();
    assert!(e.contains("LOG_FLUENT_TARGET_URL"), "{e}");
    let s = settings(&|k: &str| lookup(README_1_0_0, &[], k)).unwrap();
    assert_eq!(
        (s.fluent.client.host.as_str(), s.fluent.client.port),
        ("10.20.30.40", 24224)
    );
}
