//! The event source mapping simulator against moto Kinesis, with a scripted function: events
//! built as Lambda builds them, batch size and batching window, per-shard order, partial batch
//! responses replayed from the lowest sequence number (bisect on and off), function errors
//! retried or bisected, retries running out, and malformed batch responses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use baikonur_e2e::esm::{
    BatchOutcome, EventSourceMapping, MappingConfig, MappingLog, Source, Trigger,
};
use baikonur_e2e::moto;
use baikonur_e2e::outputs::check_mapping;
use baikonur_e2e::producer::{Dataset, ProducedRecord, RecordKind};
use baikonur_e2e::runtime_api::{FunctionConfig, RuntimeApi};
use baikonur_e2e::scripted::{Received, Reply, ScriptedRuntime};
use base64::Engine as _;
use tokio::sync::watch;

/// A stream with `records` records `r0`, `r1`, ... put in order, one PutRecords call per
/// record so that they land in order on each shard.
async fn stream_with(shards: i32, records: usize) -> (Source, Dataset) {
    let endpoint = moto::endpoint().unwrap_or_else(|e| panic!("{e}"));
    let kinesis = moto::kinesis(&endpoint).await;
    let name = moto::unique("e2e-mapping");
    let arn = moto::stream(&kinesis, &name, shards).await.unwrap();
    let mut ds = Dataset::default();
    for i in 0..records {
        ds.records.push(ProducedRecord {
            kind: RecordKind::Plain,
            data: format!("r{i}").into_bytes(),
            partition_key: format!("key-{}", i % 17),
            shard_id: None,
            sequence_number: None,
        });
    }
    let n = ds.records.len();
    ds.put(&kinesis, &name, 0..n).await.unwrap();
    let source = Source {
        client: kinesis,
        stream_name: name,
        stream_arn: arn,
        region: moto::REGION.into(),
        invoke_identity_arn: "arn:aws:iam::123456789012:role/e2e-mapping".into(),
    };
    (source, ds)
}

/// The record texts of an event.
fn texts(event: &Received) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
    v["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["kinesis"]["data"].as_str().unwrap())
                .unwrap();
            String::from_utf8(data).unwrap()
        })
        .collect()
}

fn seq_of(event: &Received, text: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
    let i = texts(event).iter().position(|t| t == text).unwrap();
    v["Records"][i]["kinesis"]["sequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn run(
    source: Source,
    ds: &Dataset,
    config: MappingConfig,
    script: impl Fn(&Received) -> Reply + Send + 'static,
) -> (MappingLog, Vec<Received>) {
    let mut fc = FunctionConfig::new("mapping-test");
    fc.timeout = Duration::from_secs(5);
    let api = Arc::new(RuntimeApi::start(fc).await.unwrap());
    let runtime = ScriptedRuntime::start(&api.address(), script);
    let mapping = EventSourceMapping::new(source, config, api.clone());
    let (_tx, rx) = watch::channel(Some(ds.targets()));
    let log = match tokio::time::timeout(Duration::from_secs(60), mapping.run(rx)).await {
        Ok(log) => log,
        Err(_) => panic!(
            "the mapping did not finish in 60 s:\n{}",
            mapping.log().render()
        ),
    };
    (log, runtime.received())
}

fn assert_clean(ds: &Dataset, log: &MappingLog, batch: usize) {
    let mut problems = Vec::new();
    check_mapping(ds, log, batch, &mut problems);
    assert!(
        problems.is_empty(),
        "{}\n\n{}",
        problems.join("\n"),
        log.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_built_as_lambda_builds_them() {
    let (source, ds) = stream_with(2, 6).await;
    let arn = source.stream_arn.clone();
    let (log, received) = run(source, &ds, MappingConfig::default(), |_| {
        Reply::Response(br#"{"batchItemFailures":[]}"#.to_vec())
    })
    .await;
    assert_clean(&ds, &log, 100);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut seen = 0;
    for event in &received {
        // The typed model accepts it.
        let typed: KinesisEvent = serde_json::from_slice(&event.body).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
        for (r, t) in raw["Records"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&typed.records)
        {
            seen += 1;
            let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                [
                    "awsRegion",
                    "eventID",
                    "eventName",
                    "eventSource",
                    "eventSourceARN",
                    "eventVersion",
                    "invokeIdentityArn",
                    "kinesis"
                ]
            );
            let k = &r["kinesis"];
            let mut kkeys: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
            kkeys.sort_unstable();
            assert_eq!(
                kkeys,
                [
                    "approximateArrivalTimestamp",
                    "data",
                    "kinesisSchemaVersion",
                    "partitionKey",
                    "sequenceNumber"
                ]
            );
            assert_eq!(k["kinesisSchemaVersion"], "1.0");
            assert_eq!(r["eventSource"], "aws:kinesis");
            assert_eq!(r["eventVersion"], "1.0");
            assert_eq!(r["eventName"], "aws:kinesis:record");
            assert_eq!(r["awsRegion"], "us-east-1");
            assert_eq!(r["eventSourceARN"], arn.as_str());
            assert_eq!(
                r["invokeIdentityArn"],
                "arn:aws:iam::123456789012:role/e2e-mapping"
            );
            let seq = k["sequenceNumber"].as_str().unwrap();
            let id = r["eventID"].as_str().unwrap();
            let (shard, id_seq) = id.split_once(':').unwrap();
            assert!(
                shard.starts_with("shardId-") && shard.len() == "shardId-000000000000".len(),
                "{id}"
            );
            assert_eq!(id_seq, seq);
            let arrival = k["approximateArrivalTimestamp"].as_f64().unwrap();
            assert!(
                k["approximateArrivalTimestamp"].is_f64(),
                "arrival time is not a float"
            );
            assert!(
                (now - arrival).abs() < 300.0,
                "arrival {arrival} is not about now {now}"
            );
            let data = base64::engine::general_purpose::STANDARD
                .decode(k["data"].as_str().unwrap())
                .unwrap();
            assert_eq!(data, &t.kinesis.data.0[..]);
            let produced = ds
                .records
                .iter()
                .find(|p| {
                    p.sequence_number.as_deref() == Some(seq)
                        && p.shard_id.as_deref() == Some(shard)
                })
                .unwrap();
            assert_eq!(data, produced.data);
            assert_eq!(k["partitionKey"], produced.partition_key.as_str());
        }
    }
    assert_eq!(seen, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_full_when_records_wait_and_stay_in_shard_order() {
    let (source, ds) = stream_with(3, 150).await;
    let config = MappingConfig {
        batch_size: 20,
        batching_window: Duration::from_millis(200),
        ..MappingConfig::default()
    };
    let (log, _) = run(source, &ds, config, |_| Reply::Response(b"{}".to_vec())).await;
    assert_clean(&ds, &log, 20);
    let mut per_shard: HashMap<&str, Vec<usize>> = HashMap::new();
    for i in &log.invocations {
        per_shard
            .entry(&i.shard_id)
            .or_default()
            .push(i.sequence_numbers.len());
    }
    for (shard, sizes) in per_shard {
        // Everything was waiting: every batch but the last of a shard is full.
        let (last, full) = sizes.split_last().unwrap();
        assert!(
            full.iter().all(|&n| n == 20),
            "{shard}: {sizes:?}\n{}",
            log.render()
        );
        assert!(*last >= 1 && *last <= 20);
    }
    assert_eq!(
        log.invocations
            .iter()
            .map(|i| i.sequence_numbers.len())
            .sum::<usize>(),
        150
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batching_window_gathers_records_that_trickle_in() {
    let endpoint = moto::endpoint().unwrap_or_else(|e| panic!("{e}"));
    let (source, mut ds) = stream_with(1, 0).await;
    let kinesis = moto::kinesis(&endpoint).await;
    let name = source.stream_name.clone();
    let config = MappingConfig {
        batch_size: 100,
        batching_window: Duration::from_millis(500),
        poll_interval: Duration::from_millis(50),
        ..MappingConfig::default()
    };
    let mut fc = FunctionConfig::new("window-test");
    fc.timeout = Duration::from_secs(5);
    let api = Arc::new(RuntimeApi::start(fc).await.unwrap());
    let _runtime = ScriptedRuntime::start(&api.address(), |_| Reply::Response(b"{}".to_vec()));
    let mapping = EventSourceMapping::new(source, config, api.clone());
    let (tx, rx) = watch::channel(None);
    let m = mapping.clone();
    let running = tokio::spawn(async move { m.run(rx).await });
    let producing = std::time::Instant::now();
    for i in 0..20 {
        ds.records.push(ProducedRecord {
            kind: RecordKind::Plain,
            data: format!("t{i}").into_bytes(),
            partition_key: "k".into(),
            shard_id: None,
            sequence_number: None,
        });
        ds.put(&kinesis, &name, i..i + 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let produced_in = producing.elapsed();
    tx.send(Some(ds.targets())).unwrap();
    let log = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap_or_else(|_| panic!("no end:\n{}", mapping.log().render()))
        .unwrap();
    assert_clean(&ds, &log, 100);
    // 20 records over about a second (longer on a busy machine), gathered for half a second
    // at a time: one batch per window, closed by the window, not one per record.
    let windows = (produced_in.as_millis() / 500) as usize + 2;
    assert!(
        log.invocations.len() <= windows,
        "{} invocations for {windows} windows\n{}",
        log.invocations.len(),
        log.render()
    );
    assert!(
        log.invocations.iter().all(|i| i.trigger == Trigger::Window),
        "{}",
        log.render()
    );
}

async fn partial_failure_replays_from_the_lowest(bisect: bool) {
    let (source, ds) = stream_with(1, 30).await;
    let config = MappingConfig {
        batch_size: 10,
        bisect_on_error: bisect,
        maximum_retry_attempts: Some(3),
        ..MappingConfig::default()
    };
    let failed_once = Arc::new(Mutex::new(false));
    let (log, received) = run(source, &ds, config, move |e| {
        let t = texts(e);
        let mut done = failed_once.lock().unwrap();
        if !*done && t.iter().any(|x| x == "r13") {
            *done = true;
            // Two identifiers, not in order: Lambda replays from the lowest.
            let body = serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": seq_of(e, "r15")}, {"itemIdentifier": seq_of(e, "r13")}]});
            return Reply::Response(body.to_string().into_bytes());
        }
        Reply::Response(br#"{"batchItemFailures":[]}"#.to_vec())
    })
    .await;
    assert_clean(&ds, &log, 10);
    let firsts: Vec<String> = received.iter().map(|e| texts(e)[0].clone()).collect();
    assert_eq!(firsts, ["r0", "r10", "r13", "r20"], "{}", log.render());
    assert!(
        matches!(&log.invocations[1].outcome, BatchOutcome::Partial { named, .. } if named.len() == 2)
    );
    // The checkpoint stopped just before r13.
    let r12 = ds.records[12].sequence_number.clone().unwrap();
    assert!(
        log.checkpoints.iter().any(|c| c.sequence_number == r12),
        "{}",
        log.render()
    );
    // The replay holds what was read from r13 on (no batching window: nothing more waited).
    assert_eq!(
        texts(&received[2]),
        (13..20).map(|i| format!("r{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_replay_from_the_lowest_sequence_number() {
    partial_failure_replays_from_the_lowest(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_replay_from_the_lowest_sequence_number_with_bisect_on() {
    partial_failure_replays_from_the_lowest(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_retry_the_same_batch_without_bisect() {
    let (source, ds) = stream_with(1, 20).await;
    let config = MappingConfig {
        batch_size: 10,
        maximum_retry_attempts: Some(5),
        ..MappingConfig::default()
    };
    let errors = Arc::new(Mutex::new(0));
    let (log, received) = run(source, &ds, config, move |e| {
        let mut n = errors.lock().unwrap();
        if *n < 2 && texts(e).iter().any(|x| x == "r4") {
            *n += 1;
            return Reply::Error("Boom".into(), "r4".into());
        }
        Reply::Response(b"null".to_vec())
    })
    .await;
    assert_clean(&ds, &log, 10);
    let batches: Vec<Vec<String>> = received.iter().map(texts).collect();
    let first: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let second: Vec<String> = (10..20).map(|i| format!("r{i}")).collect();
    assert_eq!(
        batches,
        [first.clone(), first.clone(), first, second],
        "{}",
        log.render()
    );
    let attempts: Vec<u32> = log.invocations.iter().map(|i| i.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 1]);
    assert_eq!(log.invocations[1].trigger, Trigger::Retry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_on_error_isolates_a_poison_record_and_discards_it_when_retries_run_out() {
    let (source, ds) = stream_with(1, 16).await;
    let config = MappingConfig {
        batch_size: 16,
        bisect_on_error: true,
        maximum_retry_attempts: Some(2),
        ..MappingConfig::default()
    };
    let (log, received) = run(source, &ds, config, |e| {
        if texts(e).iter().any(|x| x == "r5") {
            return Reply::Error("Poison".into(), "r5".into());
        }
        Reply::Response(b"{}".to_vec())
    })
    .await;
    let sizes: Vec<usize> = received.iter().map(|e| texts(e).len()).collect();
    // 16 -> 8 -> 4 ok, 4 -> 2 -> r4 ok, r5 x3 (first try and two retries) -> r6..r7, r8..r15.
    assert_eq!(
        sizes,
        [16, 8, 4, 4, 2, 1, 1, 1, 1, 2, 8],
        "{}",
        log.render()
    );
    assert_eq!(log.discarded.len(), 1);
    assert_eq!(
        log.discarded[0].sequence_numbers,
        [ds.records[5].sequence_number.clone().unwrap()]
    );
    // Every other record succeeded exactly once.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for (e, inv) in received.iter().zip(&log.invocations) {
        if inv.outcome == BatchOutcome::Success {
            for t in texts(e) {
                *delivered.entry(t).or_default() += 1;
            }
        }
    }
    for i in (0..16).filter(|&i| i != 5) {
        assert_eq!(
            delivered.get(&format!("r{i}")),
            Some(&1),
            "r{i}\n{}",
            log.render()
        );
    }
    // Checkpoints still moved strictly forward to the end.
    let mut problems = Vec::new();
    check_mapping(&ds, &log, 16, &mut problems);
    let not_discard: Vec<&String> = problems
        .iter()
        .filter(|p| !p.contains("discarded"))
        .collect();
    assert!(not_discard.is_empty(), "{not_discard:?}\n{}", log.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bisect_a_poison_record_discards_its_whole_batch() {
    let (source, ds) = stream_with(1, 20).await;
    let config = MappingConfig {
        batch_size: 10,
        maximum_retry_attempts: Some(2),
        ..MappingConfig::default()
    };
    let (log, received) = run(source, &ds, config, |e| {
        if texts(e).iter().any(|x| x == "r3") {
            return Reply::Error("Poison".into(), "r3".into());
        }
        Reply::Response(b"{}".to_vec())
    })
    .await;
    assert_eq!(received.len(), 4, "{}", log.render());
    assert_eq!(log.discarded.len(), 1);
    assert_eq!(log.discarded[0].sequence_numbers.len(), 10);
    assert_eq!(log.invocations[3].outcome, BatchOutcome::Success);
    assert_eq!(texts(&received[3])[0], "r10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_batch_responses_fail_the_whole_batch_and_empty_ones_succeed() {
    let (source, ds) = stream_with(1, 50).await;
    let config = MappingConfig {
        batch_size: 10,
        maximum_retry_attempts: Some(10),
        ..MappingConfig::default()
    };
    let answers: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(vec![
        r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":"999999999"}]}"#,
        r#"{"batchItemFailures":[{"itemId":"1"}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
        "this is not JSON",
        "null",
        "{}",
        r#"{"batchItemFailures":null}"#,
        r#"{"batchItemFailures":[]}"#,
        r#"{"somethingElse":true}"#,
    ]));
    let (log, received) = run(source, &ds, config, move |_| {
        let mut a = answers.lock().unwrap();
        let next = if a.is_empty() { "{}" } else { a.remove(0) };
        Reply::Response(next.as_bytes().to_vec())
    })
    .await;
    let kinds: Vec<&str> = log
        .invocations
        .iter()
        .map(|i| match i.outcome {
            BatchOutcome::InvalidResponse(_) => "invalid",
            BatchOutcome::Success => "ok",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "invalid", "invalid", "invalid", "invalid", "invalid", "ok", "ok", "ok", "ok", "ok"
        ],
        "{}",
        log.render()
    );
    // The five failures were the same batch, retried as it was.
    let firsts: Vec<String> = received.iter().map(|e| texts(e)[0].clone()).collect();
    assert_eq!(
        firsts,
        [
            "r0", "r0", "r0", "r0", "r0", "r0", "r10", "r20", "r30", "r40"
        ]
    );
}
