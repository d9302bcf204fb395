//! Helpers shared by the integration tests: the `KinesisApi` conformance suite that every
//! implementation runs, and (with the `aws` feature) moto setup and read-back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use bytes::Bytes;
use kinesis_utils::api::EntryResult;
use kinesis_utils::{KinesisApi, PutEntry, StreamTarget};

/// An accepted entry: what was sent, and where the service says it went.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub entry: PutEntry,
    pub shard_id: String,
    pub sequence_number: String,
}

/// The behaviour every `KinesisApi` implementation must share, run against the in-memory one
/// and against `AwsKinesis` on moto so the two cannot drift apart.
///
/// `stream` must be a fresh stream of exactly 2 shards; `missing` a stream that does not exist.
/// Returns the accepted entries: the caller reads the stream back and checks that exactly these
/// were stored (the refused requests below must store nothing).
pub async fn put_records_conformance<A: KinesisApi>(
    api: &A,
    stream: &StreamTarget,
    missing: &StreamTarget,
) -> Vec<Accepted> {
    // MD5("a") = 0cc1... is in the lower half of the hash key space, MD5("b") = 92eb... in
    // the upper half; an explicit hash key of 0 overrides the partition key.
    let entries = vec![
        PutEntry::new(&b"one"[..], "a"),
        PutEntry::new(&b"two"[..], "b"),
        PutEntry::new(&b"three"[..], "b").explicit_hash_key("0"),
        PutEntry::new(&b"four"[..], "a"),
    ];
    let results = api.put_records(stream, &entries).await.unwrap();
    assert_eq!(results.len(), entries.len(), "one result per entry");
    let accepted: Vec<Accepted> = entries
        .iter()
        .zip(results)
        .map(|(entry, result)| match result {
            EntryResult::Accepted {
                shard_id,
                sequence_number,
            } => Accepted {
                entry: entry.clone(),
                shard_id,
                sequence_number,
            },
            EntryResult::Failed {
                error_code,
                error_message,
            } => {
                panic!("entry {entry:?} failed: {error_code} {error_message}")
            }
        })
        .collect();
    let shards: Vec<&str> = accepted.iter().map(|a| a.shard_id.as_str()).collect();
    assert_eq!(
        shards,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000000",
            "shardId-000000000000"
        ]
    );
    // Sequence numbers are decimal and increase within a shard in request order.
    // Real sequence numbers have 56 digits, more than u128 holds: compare as decimals.
    assert!(
        accepted.iter().all(|a| !a.sequence_number.is_empty()
            && a.sequence_number.bytes().all(|b| b.is_ascii_digit()))
    );
    let seq = |i: usize| seq_order(&accepted[i].sequence_number);
    assert!(
        seq(0) < seq(2) && seq(2) < seq(3),
        "shard 0 sequence numbers increase: {accepted:?}"
    );

    let err = api.put_records(missing, &entries[..1]).await.unwrap_err();
    assert_eq!(err.code(), "ResourceNotFoundException", "{err}");
    assert!(!err.is_retryable());
    assert_eq!(err.stream(), missing.as_str());
    assert!(err.to_string().contains(missing.as_str()), "{err}");

    let too_many: Vec<_> = (0..501)
        .map(|i| PutEntry::new(&b"x"[..], i.to_string()))
        .collect();
    let err = api.put_records(stream, &too_many).await.unwrap_err();
    assert_eq!(err.code(), "ValidationException", "{err}");
    assert!(!err.is_retryable());

    // 1 MiB of data plus a one-byte key: one byte over the record limit.
    let too_big = PutEntry::new(vec![7u8; 1024 * 1024], "k");
    let err = api.put_records(stream, &[too_big]).await.unwrap_err();
    assert_eq!(err.code(), "ValidationException", "{err}");
    assert!(!err.is_retryable());

    // Six records just under 1 MB each: every record fits, the request does not.
    let request_too_big: Vec<_> = (0..6)
        .map(|i| PutEntry::new(vec![1u8; 1_000_000], i.to_string()))
        .collect();
    let err = api.put_records(stream, &request_too_big).await.unwrap_err();
    assert_eq!(err.code(), "InvalidArgumentException", "{err}");
    assert!(!err.is_retryable());

    accepted
}

/// Orders decimal sequence numbers without parsing them (they can exceed u128).
pub fn seq_order(sequence_number: &str) -> (usize, &str) {
    let digits = sequence_number.trim_start_matches('0');
    (digits.len(), digits)
}

/// Checks that a stream read back as `(partition_key, data)` holds exactly the accepted
/// entries, each shard in sequence order.
pub fn assert_stored_exactly(read_back: &[(String, Bytes)], accepted: &[Accepted]) {
    let mut expected: Vec<(String, Bytes)> = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let mut in_shard: Vec<&Accepted> =
            accepted.iter().filter(|a| a.shard_id == shard).collect();
        in_shard.sort_by_key(|a| seq_order(&a.sequence_number));
        expected.extend(
            in_shard
                .into_iter()
                .map(|a| (a.entry.partition_key.clone(), a.entry.data.clone())),
        );
    }
    assert_eq!(read_back, expected.as_slice());
}

#[cfg(feature = "aws")]
pub mod moto {
    //! moto server setup and read-back through the SDK.

    use std::time::Duration;

    use aws_config::BehaviorVersion;
    use aws_sdk_kinesis::Client;
    use aws_sdk_kinesis::config::{Credentials, Region};
    use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
    use bytes::Bytes;

    /// The moto endpoint from `BAIKONUR_MOTO_ENDPOINT`; these tests never skip silently.
    pub fn endpoint() -> String {
        match std::env::var("BAIKONUR_MOTO_ENDPOINT") {
            Ok(ep) if !ep.trim().is_empty() => ep,
            _ => panic!(
                "BAIKONUR_MOTO_ENDPOINT is not set; run scripts/test, which starts moto_server"
            ),
        }
    }

    /// SDK configuration pointed at moto with fixed region and test credentials.
    pub async fn sdk_config() -> aws_types::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    /// A stream name no other test (or test run) uses.
    pub fn unique_stream_name(prefix: &str) -> String {
        format!("{prefix}-{}-{}", std::process::id(), fastrand::u64(..))
    }

    /// Creates a stream and waits until it is ACTIVE; returns its ARN.
    pub async fn create_active_stream(client: &Client, name: &str, shards: i32) -> String {
        client
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .unwrap();
        for _ in 0..100 {
            let summary = client
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .unwrap();
            let summary = summary.stream_description_summary().unwrap();
            if summary.stream_status() == &StreamStatus::Active {
                return summary.stream_arn().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("stream {name} did not become ACTIVE within 10 s");
    }

    /// Reads every record of a stream back with GetShardIterator (TRIM_HORIZON) and
    /// GetRecords, shard by shard in shard id order, each shard in sequence order, as
    /// `(partition_key, data)`. Reusable by any test that needs the raw stored records.
    pub async fn read_all_records(client: &Client, stream_name: &str) -> Vec<(String, Bytes)> {
        let shards = client
            .list_shards()
            .stream_name(stream_name)
            .send()
            .await
            .unwrap();
        let mut shard_ids: Vec<String> = shards
            .shards()
            .iter()
            .map(|s| s.shard_id().to_owned())
            .collect();
        shard_ids.sort();
        let mut out = Vec::new();
        for shard_id in shard_ids {
            let iterator = client
                .get_shard_iterator()
                .stream_name(stream_name)
                .shard_id(&shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap();
            let mut iterator = iterator.shard_iterator().map(str::to_owned);
            // An open shard always returns a next iterator; stop at the first empty page.
            for _ in 0..1000 {
                let Some(current) = iterator.take() else {
                    break;
                };
                let page = client
                    .get_records()
                    .shard_iterator(current)
                    .limit(10_000)
                    .send()
                    .await
                    .unwrap();
                if page.records().is_empty() {
                    break;
                }
                out.extend(page.records().iter().map(|r| {
                    (
                        r.partition_key().to_owned(),
                        Bytes::copy_from_slice(r.data().as_ref()),
                    )
                }));
                iterator = page.next_shard_iterator().map(str::to_owned);
            }
        }
        out
    }
}
