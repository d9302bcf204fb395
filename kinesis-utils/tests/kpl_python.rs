//! KPL compatibility with the reference Python library `aws_kinesis_agg`, both ways.
//!
//! `tests/fixtures/kpl_python.json` was made by `tests/fixtures/make_fixtures.py` with the
//! Python aggregator; the last test runs the Python deaggregator on our output (the test
//! command installs `aws-kinesis-agg`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use base64::Engine as _;
use bytes::Bytes;
use kinesis_utils::kpl::{Aggregator, UserRecord, aggregate_all, deaggregate};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    user_records: Vec<Rec>,
    aggregated: Vec<Agg>,
}

#[derive(Deserialize)]
struct Rec {
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: String,
}

#[derive(Deserialize)]
struct Agg {
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: String,
    user_records: usize,
}

fn unb64(s: &str) -> Bytes {
    Bytes::from(base64::engine::general_purpose::STANDARD.decode(s).unwrap())
}

fn cases() -> Vec<Case> {
    serde_json::from_str(include_str!("fixtures/kpl_python.json")).unwrap()
}

fn user(r: &Rec) -> UserRecord {
    UserRecord {
        data: unb64(&r.data),
        partition_key: r.partition_key.clone(),
        explicit_hash_key: r.explicit_hash_key.clone(),
    }
}

#[test]
fn python_aggregates_deaggregate_to_their_user_records() {
    for case in cases() {
        let mut back = Vec::new();
        for agg in &case.aggregated {
            let users = deaggregate(&unb64(&agg.data)).unwrap_or_else(|| panic!("{}", case.name));
            assert_eq!(users.len(), agg.user_records, "{}", case.name);
            back.extend(users);
        }
        let want: Vec<_> = case.user_records.iter().map(user).collect();
        assert_eq!(back, want, "{}", case.name);
    }
}

#[test]
fn our_aggregates_are_byte_identical_to_python_for_the_same_groups() {
    for case in cases() {
        let mut users = case.user_records.iter().map(user);
        for agg in &case.aggregated {
            let mut ours = Aggregator::new(usize::MAX);
            for _ in 0..agg.user_records {
                assert!(ours.add(users.next().unwrap()).unwrap().is_none());
            }
            let out = ours.flush().unwrap();
            assert_eq!(out.data, unb64(&agg.data), "{}", case.name);
            assert_eq!(out.partition_key, agg.partition_key, "{}", case.name);
            assert_eq!(
                out.explicit_hash_key, agg.explicit_hash_key,
                "{}",
                case.name
            );
        }
    }
}

const PY_DEAGG: &str = r#"
import base64, json, sys
try:
    from aws_kinesis_agg.deaggregator import deaggregate_records
except ImportError:
    sys.exit("aws_kinesis_agg is not installed: run scripts/test, which installs aws-kinesis-agg")
records = json.load(sys.stdin)
out = []
for i, (pk, data) in enumerate(records):
    r = {"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": str(i), "partitionKey": pk,
                     "approximateArrivalTimestamp": 0, "data": data}}
    for u in deaggregate_records([r]):
        k = u["kinesis"]
        d = k["data"]
        out.append([i, k["partitionKey"], k.get("explicitHashKey"), d.decode() if isinstance(d, bytes) else d])
print(json.dumps(out))
"#;

#[test]
fn python_deaggregator_reads_our_aggregates() {
    let users: Vec<UserRecord> = (0..300u32)
        .map(|i| UserRecord {
            data: Bytes::from(
                format!("{{\"log_type\":\"t{}\",\"n\":{i},\"s\":\"日本\"}}", i % 5)
                    .repeat(1 + (i as usize % 7)),
            ),
            partition_key: format!("pk-{}", i % 13),
            explicit_hash_key: (i % 4 == 0).then(|| (u128::from(i) * 1_000_000_007).to_string()),
        })
        .collect();
    let aggs = aggregate_all(users.clone(), 8 * 1024).unwrap();
    assert!(aggs.len() > 5, "the bound must split the input");
    let input: Vec<(String, String)> = aggs
        .iter()
        .map(|a| {
            (
                a.partition_key.clone(),
                base64::engine::general_purpose::STANDARD.encode(&a.data),
            )
        })
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", PY_DEAGG])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be on PATH");
    serde_json::to_writer(child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python deaggregator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<(usize, String, Option<String>, String)> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.len(), users.len());
    for ((_, pk, ehk, data), want) in got.iter().zip(&users) {
        assert_eq!(pk, &want.partition_key);
        // The Python deaggregator reads an unset explicit_hash_key_index as 0, so a record
        // without a key shows the table's first key when the aggregate has any: compare only
        // the records that carry one.
        if want.explicit_hash_key.is_some() {
            assert_eq!(ehk, &want.explicit_hash_key);
        }
        assert_eq!(unb64(data), want.data);
    }
}
