//! Shared helpers for the tests against moto (`BAIKONUR_MOTO_ENDPOINT`).
#![allow(dead_code, clippy::expect_used, clippy::panic)]

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, Region};

/// The moto endpoint; fails the test (never skips it) when the variable is missing.
pub fn endpoint() -> String {
    match std::env::var("BAIKONUR_MOTO_ENDPOINT") {
        Ok(ep) if !ep.trim().is_empty() => ep,
        _ => {
            panic!("BAIKONUR_MOTO_ENDPOINT is not set; run scripts/test, which starts moto_server")
        }
    }
}

/// SDK configuration pointed at moto with test credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// An S3 client with path-style addressing.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A fresh bucket with a unique name.
pub async fn bucket(client: &aws_sdk_s3::Client, hint: &str) -> String {
    let name = format!("{hint}-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket on moto");
    name
}

/// A unique name for streams and the like.
pub fn unique(hint: &str) -> String {
    format!("{hint}-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

/// A Kinesis client.
pub async fn kinesis_client() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config().await)
}

/// Creates a stream and waits until it is ACTIVE.
pub async fn create_active_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream on moto");
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("describe stream");
        if summary
            .stream_description_summary()
            .is_some_and(|s| s.stream_status() == &aws_sdk_kinesis::types::StreamStatus::Active)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("stream {name} did not become ACTIVE within 10 s");
}

/// Every record of a stream, read back from TRIM_HORIZON, as (partition key, data).
pub async fn read_all_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Vec<(String, Vec<u8>)> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("list shards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let it = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("get shard iterator");
        let mut next = it.shard_iterator().map(str::to_owned);
        while let Some(current) = next.take() {
            let page = client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("get records");
            if page.records().is_empty() {
                break;
            }
            out.extend(
                page.records()
                    .iter()
                    .map(|r| (r.partition_key().to_owned(), r.data().as_ref().to_vec())),
            );
            next = page.next_shard_iterator().map(str::to_owned);
        }
    }
    out
}
