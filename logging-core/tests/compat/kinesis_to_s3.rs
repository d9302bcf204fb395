//! kinesis-to-s3: the original module's environment block archives at the keys the original
//! wrote, and keeps failures in the folders where the original kept them.

use std::collections::BTreeSet;

use logging_core::compress::Compression;

use crate::to_s3::{pipeline, settings};
use crate::{Buckets, Env, Rec, env_json, envelope_payload, event, json, lookup, reference};

/// terraform-aws-lambda-kinesis-to-s3 v2.1.1 `main.tf` (v2.1.0 the same; v1.0.0 to v2.0.1
/// without `LOG_TYPE_WHITELIST`), with the module's defaults (`timezone` "UTC", the field
/// names, `log_type_field_whitelist` [] joined to "") and the README's example bucket and
/// prefix.
pub const V2_1_1: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_TYPE_WHITELIST", ""),
    ("LOG_S3_BUCKET", "example-bucket"),
    ("LOG_S3_PREFIX", "foo/bar"),
];

/// v2.0.1, the last release that wrote objects.
pub const V2_0_1: Env = &[
    ("TZ", "UTC"),
    ("LOG_ID_FIELD", "log_id"),
    ("LOG_TYPE_FIELD", "log_type"),
    ("LOG_TYPE_UNKNOWN_PREFIX", "unknown"),
    ("LOG_TIMESTAMP_FIELD", "time"),
    ("LOG_S3_BUCKET", "example-bucket"),
    ("LOG_S3_PREFIX", "foo/bar"),
];

/// Records of every shape the original handled: offsets on both sides of UTC near midnight, a
/// naive time, a time the original parsed only as the first of its type, no timestamp, no
/// type, an epoch number, CloudWatch Logs and KPL records, and a payload that is not JSON.
pub fn batch() -> serde_json::Value {
    event(&[
        Rec::Plain(
            r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00+09:00","msg":"late"}"#,
        ),
        Rec::Plain(r#"{"log_type":"app","log_id":"a2","time":"2020-03-15T00:10:00+09:00"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w1","time":"2020-03-14T15:00:00Z","path":"/é"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w2","time":"2020-03-14 16:00:00"}"#),
        Rec::Plain(r#"{"log_type":"web","log_id":"w3","time":"at noon, probably"}"#),
        Rec::Plain(r#"{"log_type":"app","log_id":"n1","msg":"no time"}"#),
        Rec::Plain(r#"{"log_id":"u1","time":"2020-03-14T12:00:00Z"}"#),
        Rec::Plain(r#"{"log_id":"u2","msg":"neither type nor time"}"#),
        Rec::Plain("plain text, not JSON"),
        Rec::Cwl(&[
            r#"{"log_type":"db","log_id":"d1","time":"2020-03-14T01:02:03.456+09:00"}"#,
            r#"{"log_type":"db","log_id":"d2","time":"2020-03-14T01:02:04+09:00"}"#,
        ]),
        Rec::Kpl(&[
            r#"{"log_type":"kpl","log_id":"k1","time":"2020-03-14T22:00:00-05:00"}"#,
            r#"{"log_type":"kpl","log_id":"k2","time":"2020-03-14T22:00:01-05:00"}"#,
        ]),
        Rec::Plain(r#"{"log_type":"epoch","log_id":"e1","time":1584187200}"#),
    ])
}

struct Original {
    folder: String,
    key: Option<String>,
    time: Option<String>,
    lines: Vec<serde_json::Value>,
}

fn original(
    env: Env,
    overrides: &[(&str, Option<&str>)],
    event: &serde_json::Value,
) -> Vec<Original> {
    let out = reference(
        "to_s3",
        &serde_json::json!({"env": env_json(env, overrides), "event": event}),
    );
    assert_eq!(out["crash"], serde_json::Value::Null, "{out}");
    out["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| Original {
            folder: o["folder"].as_str().unwrap().to_owned(),
            key: o["key"].as_str().map(str::to_owned),
            time: o["time"].as_str().map(str::to_owned),
            lines: o["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| json(l.as_str().unwrap()))
                .collect(),
        })
        .collect()
}

/// The folder of a key: everything before the `%Y-%m/%d/…` part.
fn folder(key: &str) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    format!("{}/", parts[..parts.len() - 3].join("/"))
}

async fn run(env: Env, overrides: &[(&str, Option<&str>)], event: &serde_json::Value) -> Buckets {
    let s = settings(&|name: &str| lookup(env, overrides, name)).unwrap();
    let buckets = Buckets::default();
    let p = pipeline(&s, &buckets.opener());
    let out = p.process(event.to_string().as_bytes()).await.unwrap();
    assert!(
        out.response.batch_item_failures.is_empty(),
        "{:?}",
        out.report
    );
    assert_eq!(out.report.outcome_total(), out.report.items);
    buckets
}

/// Every object the original wrote is there at the same key (or, where the original used the
/// current time or a random id, in the same folder), holding the same records; failures are
/// in the original's folders in the log bucket.
#[tokio::test]
async fn the_original_block_writes_the_original_keys_and_folders() {
    for (env, tz) in [(V2_1_1, "UTC"), (V2_0_1, "UTC"), (V2_1_1, "Asia/Tokyo")] {
        let overrides = [("TZ", Some(tz))];
        let batch = batch();
        let originals = original(env, &overrides, &batch);
        let buckets = run(env, &overrides, &batch).await;
        let objects = buckets.objects("example-bucket");
        let mut folders_seen = BTreeSet::new();
        for o in &originals {
            // Failures keep the original's folders; their file names are the dead letter's
            // (the batch's time and the first entry's origin, so that a replay overwrites).
            let failure = o.folder.contains("/unknown/");
            let found: Vec<&(String, Vec<String>)> = match &o.key {
                Some(key) if !failure => objects.iter().filter(|(k, _)| k == key).collect(),
                _ => objects
                    .iter()
                    .filter(|(k, _)| folder(k) == o.folder)
                    .collect(),
            };
            assert_eq!(
                found.len(),
                1,
                "{tz}: {:?} {:?} in {objects:#?}",
                o.folder,
                o.key
            );
            let (key, lines) = found[0];
            folders_seen.insert(folder(key));
            if let (false, None, Some(time)) = (failure, &o.key, &o.time) {
                // A random first id in the original: the same time, another file name.
                assert!(key.contains(time.as_str()), "{key} {time}");
            }
            let rust: Vec<serde_json::Value> = if failure {
                lines.iter().map(|l| envelope_payload(l)).collect()
            } else {
                lines.iter().map(|l| json(l)).collect()
            };
            let extra: Vec<&serde_json::Value> =
                rust.iter().filter(|r| !o.lines.contains(r)).collect();
            assert!(
                o.lines.iter().all(|l| rust.contains(l)),
                "{tz} {key}: {:?} vs {rust:?}",
                o.lines
            );
            // The only record the original did not keep is the payload that is not JSON,
            // which it dropped and which is dead-lettered here.
            assert!(
                extra
                    .iter()
                    .all(|r| **r == serde_json::json!("plain text, not JSON")),
                "{tz} {key}: {extra:?}"
            );
        }
        // Nothing else: no object the original would not have written.
        let all: BTreeSet<String> = objects.iter().map(|(k, _)| folder(k)).collect();
        assert_eq!(all, folders_seen, "{tz}");
    }
}

/// The facts behind the test above, spelled out for the reader.
#[tokio::test]
async fn keys_are_dated_as_written_and_failures_sit_in_the_log_bucket() {
    let buckets = run(V2_1_1, &[], &batch()).await;
    let keys: Vec<String> = buckets
        .objects("example-bucket")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for want in [
        // 23:30 in Tokyo is still the 14th there, whatever TZ says.
        "foo/bar/app/2020-03/14/2020-03-14-23:30:00-a1.gz",
        "foo/bar/web/2020-03/14/2020-03-14-15:00:00-w1.gz",
        "foo/bar/db/2020-03/14/2020-03-14-01:02:03-d1.gz",
        "foo/bar/kpl/2020-03/14/2020-03-14-22:00:00-k1.gz",
    ] {
        assert!(keys.iter().any(|k| k == want), "{want} not in {keys:#?}");
    }
    for folder in [
        "foo/bar/unknown/app_no_timestamp/",
        "foo/bar/unknown/unknown_type/",
    ] {
        assert!(
            keys.iter().any(|k| k.starts_with(folder)),
            "{folder} not in {keys:#?}"
        );
    }
    assert_eq!(
        buckets.0.lock().unwrap().len(),
        1,
        "one bucket: the log bucket"
    );
}

/// `LOG_TIMEZONE` converts: the explicit option moves the keys of records written in another
/// offset (the documented trade-off).
#[tokio::test]
async fn log_timezone_converts_key_dates() {
    let buckets = run(V2_1_1, &[("LOG_TIMEZONE", Some("UTC"))], &batch()).await;
    let keys: Vec<String> = buckets
        .objects("example-bucket")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.iter()
            .any(|k| k == "foo/bar/app/2020-03/14/2020-03-14-14:30:00-a1.gz"),
        "{keys:#?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "foo/bar/kpl/2020-03/15/2020-03-15-03:00:00-k1.gz"),
        "{keys:#?}"
    );
}

/// Raw lines (`FAILED_LOG_FORMAT=raw`): the failure files hold the records alone, one per line,
/// as the original's did.
#[tokio::test]
async fn raw_failure_lines_are_the_records() {
    let batch = batch();
    let originals = original(V2_1_1, &[], &batch);
    let buckets = run(V2_1_1, &[("FAILED_LOG_FORMAT", Some("raw"))], &batch).await;
    let objects = buckets.objects("example-bucket");
    let no_ts = originals
        .iter()
        .find(|o| o.folder.ends_with("app_no_timestamp/"))
        .unwrap();
    let (_, lines) = objects
        .iter()
        .find(|(k, _)| folder(k) == no_ts.folder)
        .unwrap();
    let rust: Vec<serde_json::Value> = lines.iter().map(|l| json(l)).collect();
    assert_eq!(rust, no_ts.lines);
}

/// Values the original wrote into keys differently are refused at start, by name, with the
/// fix; so is a gzip level this build cannot write.
#[test]
fn refusals() {
    for (name, value) in [
        ("LOG_S3_PREFIX", None),
        ("LOG_S3_PREFIX", Some("")),
        ("LOG_S3_PREFIX", Some("foo/bar/")),
        ("LOG_S3_PREFIX", Some("/foo")),
        ("LOG_S3_BUCKET", None),
        ("LOG_TYPE_FIELD", Some("")),
        ("LOG_TYPE_UNKNOWN_PREFIX", Some("unknown/")),
        ("TZ", Some("Mars/Olympus")),
        ("LOG_S3_GZIP_LEVEL", Some("13")),
        ("LOG_S3_COMPRESSION", Some("zstd(0)")),
        ("LOG_S3_COMPRESSION", Some("brotli")),
        ("FAILED_LOG_FORMAT", Some("json")),
        ("FAILED_LOG_S3_LAYOUT", Some("nested")),
    ] {
        let e = settings(&|k: &str| lookup(V2_1_1, &[(name, value)], k)).unwrap_err();
        assert!(e.contains(name), "{name}={value:?}: {e}");
    }
    let s = settings(&|k: &str| lookup(V2_1_1, &[("LOG_S3_GZIP_LEVEL", Some("9"))], k)).unwrap();
    assert_eq!(s.archive.compression, Compression::gzip(9).unwrap());
    let s = settings(&|k: &str| lookup(V2_1_1, &[("LOG_S3_COMPRESSION", Some("zstd(3)"))], k));
    if cfg!(feature = "zstd") {
        assert_eq!(
            s.unwrap().archive.compression,
            Compression::zstd(3).unwrap()
        );
    } else {
        assert!(s.unwrap_err().contains("LOG_S3_COMPRESSION"));
    }
}

/// The documented least-privilege policy (docs/deployment.md) and the module's own policy
/// (`s3:PutObject` on the log bucket) allow every key the function writes with the module's
/// block: no AccessDenied, no replay loop.
#[tokio::test]
async fn the_documented_policies_allow_every_key_written() {
    let buckets = run(V2_1_1, &[], &batch()).await;
    let docs = include_str!("../../../docs/deployment.md");
    let start = docs
        .find("kinesis-to-s3 (archive and dead letter")
        .expect("the kinesis-to-s3 policy in docs/deployment.md");
    let block = &docs[start..];
    let json_start = block.find("```json").unwrap() + "```json".len();
    let json_end = json_start + block[json_start..].find("```").unwrap();
    let policy: serde_json::Value = serde_json::from_str(&block[json_start..json_end]).unwrap();
    let resources: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow" && s["Action"].to_string().contains("s3:PutObject"))
        .flat_map(|s| match &s["Resource"] {
            serde_json::Value::Array(a) => {
                a.iter().map(|r| r.as_str().unwrap().to_owned()).collect()
            }
            r => vec![r.as_str().unwrap().to_owned()],
        })
        .map(|r| {
            r.replace("LOG_BUCKET", "example-bucket")
                .replace("LOG_PREFIX", "foo/bar")
        })
        .collect();
    let module_policy = ["arn:aws:s3:::example-bucket/*".to_owned()];
    let keys: Vec<String> = buckets
        .objects("example-bucket")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.len() > 5);
    for key in keys {
        let arn = format!("arn:aws:s3:::example-bucket/{key}");
        for (name, allowed) in [
            ("documented", &resources[..]),
            ("module", &module_policy[..]),
        ] {
            assert!(
                allowed.iter().any(|r| glob(r, &arn)),
                "{name} policy {allowed:?} does not allow {arn}"
            );
        }
    }
}

/// IAM resource matching: `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..]))
        }
    }
}
