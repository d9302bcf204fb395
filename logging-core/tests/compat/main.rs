//! Compatibility with the released Python modules: each original Terraform module's
//! environment block, verbatim (names and the modules' default or README example values), goes
//! through the example's configuration code; the result is held to what the original did on
//! the same input (computed by `reference.py`, with amazon-kinesis-utils 0.1.8 where the
//! module used it), or to the documented refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../examples/common/cleaner.rs"]
mod cleaner;
#[allow(dead_code)]
#[path = "../../examples/common/env.rs"]
mod env;
#[path = "../../examples/common/forward.rs"]
mod forward;
#[cfg(feature = "search")]
#[path = "../../examples/common/search_env.rs"]
#[allow(dead_code)]
mod search_env;
#[path = "../support/mod.rs"]
mod support;
#[path = "../../examples/common/to_es.rs"]
mod to_es;
#[path = "../../examples/common/to_fluent.rs"]
mod to_fluent;
#[path = "../../examples/common/to_s3.rs"]
mod to_s3;

mod deadline;
mod es_cleaner;
mod kinesis_forward;
mod kinesis_to_es;
mod kinesis_to_fluent;
mod kinesis_to_s3;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use logging_core::{MemoryStore, ObjectStore};

/// An environment block: `(name, value)` pairs.
pub type Env = &'static [(&'static str, &'static str)];

/// Looks a variable up in `env` with `overrides` taking precedence (`None` removes it), as
/// `std::env::var(..).ok()` would see it.
pub fn lookup(env: Env, overrides: &[(&str, Option<&str>)], name: &str) -> Option<String> {
    if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
        return v.map(str::to_owned);
    }
    env.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v).to_owned())
}

/// `env` with `overrides` applied, as a JSON object for `reference.py`.
pub fn env_json(env: Env, overrides: &[(&str, Option<&str>)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in env {
        map.insert((*k).to_owned(), (*v).into());
    }
    for (k, v) in overrides {
        match v {
            Some(v) => map.insert((*k).to_owned(), (*v).into()),
            None => map.remove(*k),
        };
    }
    serde_json::Value::Object(map)
}

/// Runs `reference.py COMMAND` with `input` on stdin and returns its JSON answer.
pub fn reference(command: &str, input: &serde_json::Value) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the reference (scripts/test installs its packages)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("writing the reference's input");
    let out = child.wait_with_output().expect("the reference finishes");
    assert!(
        out.status.success(),
        "reference.py {command} failed (scripts/test installs amazon-kinesis-utils==0.1.8 and \
         its dependencies with pip when they are missing):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference answers JSON")
}

/// One Kinesis record of a test batch.
pub enum Rec<'a> {
    /// A payload as it is.
    Plain(&'a str),
    /// A gzip CloudWatch Logs subscription message holding these log events.
    Cwl(&'a [&'a str]),
    /// A KPL aggregate of these user records.
    Kpl(&'a [&'a str]),
}

/// A Lambda Kinesis event of `records`, as the runtime hands it over.
pub fn event(records: &[Rec<'_>]) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let data: Vec<u8> = match r {
                Rec::Plain(p) => p.as_bytes().to_vec(),
                Rec::Cwl(messages) => {
                    let events: Vec<serde_json::Value> = messages
                        .iter()
                        .enumerate()
                        .map(|(j, m)| {
                            serde_json::json!({"id": format!("3553{i}{j}"),
                                "timestamp": 1_584_187_200_000_i64 + j as i64, "message": m})
                        })
                        .collect();
                    let envelope = serde_json::json!({"messageType": "DATA_MESSAGE",
                        "owner": "123456789012", "logGroup": "/app", "logStream": "s1",
                        "subscriptionFilters": ["f"], "logEvents": events});
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                    gz.write_all(envelope.to_string().as_bytes()).unwrap();
                    gz.finish().unwrap()
                }
                Rec::Kpl(users) => {
                    let users = users
                        .iter()
                        .map(|u| kinesis_utils::kpl::UserRecord::new(u.as_bytes().to_vec(), "pk"));
                    let aggregates = kinesis_utils::kpl::aggregate_all(users, 1 << 20).unwrap();
                    assert_eq!(aggregates.len(), 1);
                    aggregates[0].data.to_vec()
                }
            };
            let seq = format!("4959033827149025660855969253836157109592157598913658{i:04}");
            serde_json::json!({
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": format!("pk{i}"),
                    "sequenceNumber": seq, "data": b64.encode(&data),
                    "approximateArrivalTimestamp": 1_584_230_400.25 + i as f64},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{seq}"),
                "eventName": "aws:kinesis:record", "awsRegion": "ap-northeast-1",
                "eventSourceARN": "arn:aws:kinesis:ap-northeast-1:123456789012:stream/logs"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// In-memory buckets, opened by name as the examples open S3 buckets.
#[derive(Default, Clone)]
pub struct Buckets(Arc<Mutex<HashMap<String, Arc<MemoryStore>>>>);

impl Buckets {
    /// The bucket `name` (created empty on first use).
    pub fn get(&self, name: &str) -> Arc<MemoryStore> {
        self.0
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(MemoryStore::new()))
            .clone()
    }

    /// The opener the examples' `pipeline` functions take.
    pub fn opener(&self) -> impl Fn(&str) -> Arc<dyn ObjectStore> + '_ {
        move |name: &str| -> Arc<dyn ObjectStore> { self.get(name) }
    }

    /// Every object of bucket `name`: key and gunzipped lines.
    pub fn objects(&self, name: &str) -> Vec<(String, Vec<String>)> {
        self.get(name)
            .snapshot()
            .into_iter()
            .map(|(key, object)| {
                let mut text = String::new();
                flate2::read::GzDecoder::new(&object.body[..])
                    .read_to_string(&mut text)
                    .unwrap();
                (key, text.lines().map(str::to_owned).collect())
            })
            .collect()
    }
}

/// A JSON line parsed, for comparing records whatever their formatting (the originals wrote
/// `json.dumps` of the parsed record, the examples the record's own bytes).
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
}

/// The payload of a dead-letter envelope line, parsed as JSON when it is.
pub fn envelope_payload(line: &str) -> serde_json::Value {
    let e = logging_core::Envelope::parse(line.as_bytes()).unwrap();
    let payload = String::from_utf8(e.payload_bytes().unwrap()).unwrap();
    serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload))
}

/// `values` sorted by their JSON text, for comparing multisets.
pub fn sorted(mut values: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    values.sort_by_key(|v| v.to_string());
    values
}
