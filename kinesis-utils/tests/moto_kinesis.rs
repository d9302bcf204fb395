//! `AwsKinesis` and `PutRecordsBatcher` against moto server: the real `aws-sdk-kinesis`
//! request and response code. Needs `BAIKONUR_MOTO_ENDPOINT` (set by scripts/test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "aws")]

mod common;

use std::collections::HashMap;

use aws_sdk_kinesis::Client;
use bytes::Bytes;
use common::moto;
use kinesis_utils::aws::AwsKinesis;
use kinesis_utils::put::RecordOutcome;
use kinesis_utils::{KinesisApi, PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget};

#[tokio::test]
async fn conformance_on_moto() {
    let config = moto::sdk_config().await;
    let client = Client::new(&config);
    let name = moto::unique_stream_name("conformance");
    let arn = moto::create_active_stream(&client, &name, 2).await;
    let api = AwsKinesis::new(&config);
    let missing = StreamTarget::name(moto::unique_stream_name("missing"));
    // Address the stream by ARN here; the batcher test below uses the name.
    let accepted = common::put_records_conformance(&api, &StreamTarget::arn(arn), &missing).await;
    let read_back = moto::read_all_records(&client, &name).await;
    common::assert_stored_exactly(&read_back, &accepted);
}

#[tokio::test]
async fn batcher_puts_plain_records_that_read_back_identical() {
    let config = moto::sdk_config().await;
    let client = Client::new(&config);
    let name = moto::unique_stream_name("plain");
    moto::create_active_stream(&client, &name, 2).await;
    let stream = StreamTarget::name(&name);

    // 1100 records: random keys and caller keys (non-ASCII included), binary and text data,
    // one explicit hash key; more than two requests' worth by count.
    let input: Vec<PutEntry> = (0..1100)
        .map(|i| match i % 4 {
            0 => PutEntry::with_random_key(format!("{{\"n\":{i}}}").into_bytes()),
            1 => PutEntry::new(format!("text record {i}").into_bytes(), format!("clé-{i}")),
            2 => PutEntry::new(
                (0..=255u8).cycle().skip(i).take(300).collect::<Vec<u8>>(),
                format!("bin-{i}"),
            ),
            _ if i == 3 => PutEntry::new(&b"pinned"[..], "pinned").explicit_hash_key("1"),
            _ => PutEntry::new(Bytes::from(vec![b'z'; i]), format!("k{i}")),
        })
        .collect();
    let batcher =
        PutRecordsBatcher::new(AwsKinesis::new(&config), PutRecordsConfig::default()).unwrap();
    let outcome = batcher.put_all(&stream, input.clone()).await.unwrap();
    assert!(
        outcome.all_accepted(),
        "{:?}",
        outcome.failed().collect::<Vec<_>>()
    );
    assert_eq!(outcome.requests(), 3);
    let RecordOutcome::Accepted { shard_id, .. } = &outcome.records()[3] else {
        unreachable!()
    };
    assert_eq!(
        shard_id, "shardId-000000000000",
        "explicit hash key 1 belongs to the first shard"
    );

    let read_back = moto::read_all_records(&client, &name).await;
    assert_eq!(read_back.len(), input.len());
    // Same multiset of (key, data), and within each shard the input order is kept.
    let index_of: HashMap<&str, usize> = input
        .iter()
        .enumerate()
        .map(|(i, e)| (e.partition_key.as_str(), i))
        .collect();
    assert_eq!(
        index_of.len(),
        input.len(),
        "partition keys are unique in this test"
    );
    let mut last_in_shard: HashMap<&str, usize> = HashMap::new();
    for (key, data) in &read_back {
        let i = index_of[key.as_str()];
        assert_eq!(data, &input[i].data, "data of {key}");
        let RecordOutcome::Accepted { shard_id, .. } = &outcome.records()[i] else {
            unreachable!()
        };
        if let Some(previous) = last_in_shard.insert(shard_id, i) {
            assert!(previous < i, "{shard_id}: record {i} read after {previous}");
        }
    }
    assert_eq!(last_in_shard.len(), 2, "both shards got records");
}

#[tokio::test]
async fn batcher_splits_by_bytes_under_moto_request_limit() {
    // moto refuses requests over 5 MiB; 12 records of 900 KB must go as 5 + 5 + 2.
    let config = moto::sdk_config().await;
    let client = Client::new(&config);
    let name = moto::unique_stream_name("bytes");
    moto::create_active_stream(&client, &name, 1).await;
    let input: Vec<_> = (0..12u8)
        .map(|i| PutEntry::new(vec![i; 900_000], format!("big-{i}")))
        .collect();
    let batcher = PutRecordsBatcher::with_defaults(AwsKinesis::new(&config));
    let outcome = batcher
        .put_all(&StreamTarget::name(&name), input.clone())
        .await
        .unwrap();
    assert!(
        outcome.all_accepted(),
        "{:?}",
        outcome.failed().map(|f| f.error_code).collect::<Vec<_>>()
    );
    assert_eq!(outcome.requests(), 3);
    let read_back = moto::read_all_records(&client, &name).await;
    let expected: Vec<_> = input
        .into_iter()
        .map(|e| (e.partition_key, e.data))
        .collect();
    assert_eq!(read_back, expected);
}

#[tokio::test]
async fn unreachable_endpoint_is_a_retryable_transport_error() {
    // Like every test here, refuse to run outside scripts/test.
    moto::endpoint();
    // Fail fast: no SDK retries, and a port nothing listens on.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:1")
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let err = AwsKinesis::new(&config)
        .put_records(&StreamTarget::name("s"), &[PutEntry::new(&b"x"[..], "k")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, kinesis_utils::KinesisError::Transport { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.stream(), "s");
}

/// KPL-aggregated and gzip records put through the AWS implementation, read back with
/// GetRecords, and decoded with the same decoder a Lambda function uses.
#[tokio::test]
async fn aggregated_and_gzip_records_read_back_and_decode() {
    use std::io::Write;

    use kinesis_utils::kpl::{UserRecord, aggregate_all};
    use kinesis_utils::{Decoded, Decoder, Origin};

    let config = moto::sdk_config().await;
    let client = Client::new(&config);
    let name = moto::unique_stream_name("aggregated");
    moto::create_active_stream(&client, &name, 1).await;
    let stream = StreamTarget::name(&name);

    let lines: Vec<Bytes> = (0..250)
        .map(|i| {
            Bytes::from(format!(
                "{{\"log_type\":\"t{}\",\"n\":{i},\"s\":\"日本\"}}",
                i % 3
            ))
        })
        .collect();
    // 4 KiB aggregates: several of them, each holding many user records.
    let aggs = aggregate_all(
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| UserRecord::new(l.clone(), format!("pk-{i}"))),
        4 * 1024,
    )
    .unwrap();
    assert!(aggs.len() > 1);
    let mut entries: Vec<PutEntry> = aggs
        .iter()
        .map(|a| PutEntry::new(a.data.clone(), a.partition_key.clone()))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"log_type\":\"zipped\"}").unwrap();
    entries.push(PutEntry::new(gz.finish().unwrap(), "gz"));

    let batcher = PutRecordsBatcher::with_defaults(AwsKinesis::new(&config));
    let outcome = batcher.put_all(&stream, entries).await.unwrap();
    assert!(outcome.all_accepted());

    let decoder = Decoder::default();
    let mut items = Vec::new();
    for (i, (pk, data)) in moto::read_all_records(&client, &name)
        .await
        .into_iter()
        .enumerate()
    {
        let origin = Origin::new(&i.to_string())
            .with_record_index(i)
            .with_partition_key(&pk);
        decoder.decode_data(data, origin, &mut items);
    }
    let payloads: Vec<Bytes> = items
        .iter()
        .map(|d| match d {
            Decoded::Payload(p) => p.data.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let mut want = lines.clone();
    want.push(Bytes::from_static(b"{\"log_type\":\"zipped\"}"));
    assert_eq!(payloads, want);
    let subs: Vec<Option<u32>> = items
        .iter()
        .take(3)
        .map(|d| d.origin().sub_sequence())
        .collect();
    assert_eq!(subs, [Some(0), Some(1), Some(2)]);
}
