//! The PutRecords partial-failure retry path and the `KinesisApi` conformance suite, on the
//! in-memory implementation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kinesis_utils::memory::{EntryFault, FaultyKinesis, InMemoryKinesis};
use kinesis_utils::put::{PutError, RecordOutcome};
use kinesis_utils::{
    KinesisApi, KinesisError, PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget,
};

fn fast() -> PutRecordsConfig {
    PutRecordsConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(4))
}

fn numbered(n: usize) -> Vec<PutEntry> {
    (0..n)
        .map(|i| PutEntry::new(format!("payload-{i}").into_bytes(), format!("key-{i}")))
        .collect()
}

#[tokio::test]
async fn conformance_in_memory() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("conformance", 2).unwrap();
    let accepted =
        common::put_records_conformance(&kinesis, &stream, &StreamTarget::name("no-such-stream"))
            .await;
    let mut read_back: Vec<(String, Bytes)> = Vec::new();
    for shard in kinesis.shards(&stream).unwrap() {
        read_back.extend(
            kinesis
                .shard_records(&stream, &shard.shard_id)
                .unwrap()
                .into_iter()
                .map(|r| (r.partition_key, r.data)),
        );
    }
    common::assert_stored_exactly(&read_back, &accepted);
}

#[tokio::test]
async fn only_failed_entries_are_resent_until_accepted() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("retry", 4).unwrap();
    let faulty = FaultyKinesis::new(&kinesis);
    // Throttle entries 3 and 7 on their first two sends; entry 5 fails once internally.
    faulty.fail_entries(
        |call| match (call.entry.partition_key.as_str(), call.attempt) {
            ("key-3" | "key-7", 1 | 2) => Some(EntryFault::throttled()),
            ("key-5", 1) => Some(EntryFault::internal_failure()),
            _ => None,
        },
    );
    let batcher = PutRecordsBatcher::new(&faulty, fast()).unwrap();
    let input = numbered(10);
    let outcome = batcher.put_all(&stream, input.clone()).await.unwrap();

    assert!(
        outcome.all_accepted(),
        "{:?}",
        outcome.failed().collect::<Vec<_>>()
    );
    let attempts: Vec<u32> = outcome
        .records()
        .iter()
        .map(RecordOutcome::attempts)
        .collect();
    assert_eq!(attempts, [1, 1, 1, 3, 1, 2, 1, 3, 1, 1]);

    let keys = |req: &Vec<PutEntry>| {
        req.iter()
            .map(|e| e.partition_key.clone())
            .collect::<Vec<_>>()
    };
    let requests: Vec<Vec<String>> = faulty.requests().iter().map(keys).collect();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0],
        input
            .iter()
            .map(|e| e.partition_key.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(requests[1], ["key-3", "key-5", "key-7"]);
    assert_eq!(requests[2], ["key-3", "key-7"]);
    assert_eq!(outcome.requests(), 3);

    // Stored exactly once each, with the sequence number the outcome reports.
    let stored = kinesis.records(&stream).unwrap();
    assert_eq!(stored.len(), 10);
    let by_key: HashMap<_, _> = stored
        .iter()
        .map(|r| (r.partition_key.clone(), r))
        .collect();
    for (i, r) in outcome.records().iter().enumerate() {
        let RecordOutcome::Accepted {
            shard_id,
            sequence_number,
            ..
        } = r
        else {
            unreachable!()
        };
        let s = by_key[&input[i].partition_key];
        assert_eq!(
            (&s.shard_id, &s.sequence_number, &s.data),
            (shard_id, sequence_number, &input[i].data)
        );
    }
}

#[tokio::test]
async fn final_failures_report_code_message_and_attempts() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("final", 1).unwrap();
    let faulty = FaultyKinesis::new(&kinesis);
    // key-1 is always throttled (retries run out); key-2 fails with a non-retryable code.
    faulty.fail_entries(|call| match call.entry.partition_key.as_str() {
        "key-1" => Some(EntryFault::throttled()),
        "key-2" => Some(EntryFault::new(
            "KMSAccessDeniedException",
            "The ciphertext refers to a key that is not accessible",
        )),
        _ => None,
    });
    let batcher = PutRecordsBatcher::new(&faulty, fast().with_max_attempts(4)).unwrap();
    let outcome = batcher.put_all(&stream, numbered(4)).await.unwrap();

    assert!(!outcome.all_accepted());
    assert_eq!(outcome.len(), 4);
    assert_eq!(outcome.accepted_count(), 2);
    let failed: Vec<_> = outcome.failed().collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].index, 1);
    assert_eq!(
        failed[0].error_code,
        "ProvisionedThroughputExceededException"
    );
    assert_eq!(failed[0].error_message, EntryFault::throttled().message);
    assert_eq!(failed[0].attempts, 4);
    assert_eq!(failed[0].entry.data, Bytes::from_static(b"payload-1"));
    assert_eq!(failed[1].index, 2);
    assert_eq!(failed[1].error_code, "KMSAccessDeniedException");
    assert_eq!(
        failed[1].error_message,
        "The ciphertext refers to a key that is not accessible"
    );
    assert_eq!(
        failed[1].attempts, 1,
        "non-retryable codes are final at once"
    );

    // key-2 was sent once, key-1 four times.
    let sends = |key: &str| {
        faulty
            .requests()
            .iter()
            .flatten()
            .filter(|e| e.partition_key == key)
            .count()
    };
    assert_eq!((sends("key-1"), sends("key-2"), sends("key-0")), (4, 1, 1));
    let stored: Vec<_> = kinesis
        .records(&stream)
        .unwrap()
        .into_iter()
        .map(|r| r.partition_key)
        .collect();
    assert_eq!(stored, ["key-0", "key-3"]);
}

#[tokio::test]
async fn oversize_record_is_refused_before_any_call() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("oversize", 1).unwrap();
    let faulty = FaultyKinesis::new(&kinesis);
    let batcher = PutRecordsBatcher::new(&faulty, fast()).unwrap();
    let mut input = numbered(5);
    // Exactly 1 MiB counting the 5-byte key is fine; one more byte is not.
    input[1] = PutEntry::new(vec![0u8; 1024 * 1024 - 5], "key-1");
    input[3] = PutEntry::new(vec![0u8; 1024 * 1024 - 4], "key-3");

    let err = batcher.put_all(&stream, input.clone()).await.unwrap_err();
    assert_eq!(
        err,
        PutError::RecordTooLarge {
            stream: stream.to_string(),
            index: 3,
            size: 1024 * 1024 + 1,
            limit: 1024 * 1024
        }
    );
    assert!(err.to_string().contains(stream.as_str()), "{err}");
    assert!(
        faulty.requests().is_empty(),
        "nothing may be sent when one record is refused"
    );
    assert!(kinesis.records(&stream).unwrap().is_empty());

    // With the limit raised (as a stream can be, up to 10 MiB), the same input goes through.
    let raised = fast().with_max_record_bytes(2 * 1024 * 1024);
    let outcome = PutRecordsBatcher::new(&faulty, raised)
        .unwrap()
        .put_all(&stream, input)
        .await;
    // ... to a service still at its 1 MiB default, which refuses the whole request: every
    // entry in it is reported failed with the service's code, none resent, none dropped.
    let outcome = outcome.unwrap();
    assert_eq!(outcome.len(), 5);
    assert!(
        outcome
            .failed()
            .all(|f| f.error_code == "ValidationException" && f.attempts == 1)
    );
    assert_eq!(outcome.failed().count(), 5);
    assert_eq!(faulty.requests().len(), 1);
}

#[tokio::test]
async fn batches_are_split_by_count_and_bytes_in_order() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("split", 3).unwrap();
    let faulty = FaultyKinesis::new(&kinesis);
    // 1200 small records: three requests by count (500, 500, 200).
    let outcome = PutRecordsBatcher::new(&faulty, fast())
        .unwrap()
        .put_all(&stream, numbered(1200))
        .await
        .unwrap();
    assert!(outcome.all_accepted());
    let sizes: Vec<usize> = faulty.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, [500, 500, 200]);
    let stored: Vec<_> = kinesis
        .records(&stream)
        .unwrap()
        .into_iter()
        .map(|r| r.partition_key)
        .collect();
    let expected: Vec<_> = (0..1200).map(|i| format!("key-{i}")).collect();
    assert_eq!(
        stored, expected,
        "first attempts reach the service in input order"
    );

    // 12 records of ~900 KB: 5 fit in 5 MiB, so 5 + 5 + 2.
    let faulty = FaultyKinesis::new(&kinesis);
    let big: Vec<_> = (0..12)
        .map(|i| PutEntry::new(vec![b'x'; 900_000], format!("big-{i}")))
        .collect();
    let outcome = PutRecordsBatcher::new(&faulty, fast())
        .unwrap()
        .put_all(&stream, big)
        .await
        .unwrap();
    assert!(outcome.all_accepted());
    let sizes: Vec<usize> = faulty.requests().iter().map(Vec::len).collect();
    assert_eq!(sizes, [5, 5, 2]);
}

#[tokio::test]
async fn whole_request_throttling_is_retried_and_other_errors_are_final() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("request-faults", 1).unwrap();
    let faulty = FaultyKinesis::new(&kinesis);
    faulty.fail_next_request(KinesisError::service(
        "PutRecords",
        &stream,
        "ProvisionedThroughputExceededException",
        "Rate exceeded",
    ));
    let outcome = PutRecordsBatcher::new(&faulty, fast())
        .unwrap()
        .put_all(&stream, numbered(3))
        .await
        .unwrap();
    assert!(outcome.all_accepted());
    assert_eq!(faulty.requests().len(), 2);

    // An unknown stream is final: every entry fails with the service's code, sent once.
    let missing = StreamTarget::name("missing");
    let faulty = FaultyKinesis::new(&kinesis);
    let outcome = PutRecordsBatcher::new(&faulty, fast())
        .unwrap()
        .put_all(&missing, numbered(3))
        .await
        .unwrap();
    assert_eq!(outcome.failed().count(), 3);
    assert!(
        outcome
            .failed()
            .all(|f| f.error_code == "ResourceNotFoundException" && f.attempts == 1)
    );
    assert!(
        outcome
            .failed()
            .all(|f| f.error_message.contains("missing"))
    );
    assert_eq!(faulty.requests().len(), 1);
}

#[tokio::test]
async fn shared_client_through_arc_and_box() {
    let kinesis = Arc::new(InMemoryKinesis::new());
    let stream = kinesis.create_stream("shared", 1).unwrap();
    let boxed: Box<dyn KinesisApi> = Box::new(Arc::clone(&kinesis));
    let outcome = PutRecordsBatcher::with_defaults(boxed)
        .put_all(&stream, numbered(2))
        .await
        .unwrap();
    assert!(outcome.all_accepted());
    assert_eq!(kinesis.records(&stream).unwrap().len(), 2);
}

#[tokio::test]
async fn no_backoff_when_nothing_needs_resending() {
    let kinesis = InMemoryKinesis::new();
    let stream = kinesis.create_stream("no-wait", 1).unwrap();
    // A long backoff would show up in the elapsed time if the batcher slept after success.
    let config = PutRecordsConfig::default()
        .with_max_records_per_request(1)
        .with_backoff(Duration::from_secs(30), Duration::from_secs(30));
    let started = std::time::Instant::now();
    let outcome = PutRecordsBatcher::new(&kinesis, config)
        .unwrap()
        .put_all(&stream, numbered(3))
        .await
        .unwrap();
    assert!(outcome.all_accepted());
    assert_eq!(outcome.requests(), 3);
    assert!(started.elapsed() < Duration::from_secs(5));
}
