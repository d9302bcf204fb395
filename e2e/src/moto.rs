//! Clients for the moto server the test command starts (`BAIKONUR_MOTO_ENDPOINT`), used by the
//! test harness itself (producers, the mapping, reading outputs back); the functions under
//! test reach moto through the fault proxy.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_kinesis::types::StreamStatus;
use aws_sdk_s3::config::{Credentials, Region};

/// The region everything runs in.
pub const REGION: &str = "us-east-1";

/// The moto endpoint, or an error saying how to get one (tests fail on it, never skip).
pub fn endpoint() -> Result<String, String> {
    match std::env::var("BAIKONUR_MOTO_ENDPOINT") {
        Ok(ep) if !ep.trim().is_empty() => Ok(ep.trim().trim_end_matches('/').to_owned()),
        _ => Err(
            "BAIKONUR_MOTO_ENDPOINT is not set: run scripts/test, which starts moto_server, or \
             start one (`python3 -m moto.server -H 127.0.0.1 -p PORT`) and export \
             BAIKONUR_MOTO_ENDPOINT=http://127.0.0.1:PORT"
                .into(),
        ),
    }
}

/// SDK configuration for `endpoint` with test credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await
}

/// An S3 client (path-style) for `endpoint`.
pub async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config(endpoint).await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A Kinesis client for `endpoint`.
pub async fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(endpoint).await)
}

/// A name unique to this run (moto is shared by every test of the workspace).
pub fn unique(hint: &str) -> String {
    format!("{hint}-{:010x}", fastrand::u64(..) & 0xff_ffff_ffff)
}

/// Creates a bucket with versioning on (so overwrites can be counted).
pub async fn bucket(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), String> {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(|e| format!("CreateBucket {name}: {e:?}"))?;
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("PutBucketVersioning {name}: {e:?}"))?;
    Ok(())
}

/// Creates a stream of `shards` shards, waits until it is active and returns its ARN.
pub async fn stream(
    kinesis: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> Result<String, String> {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .map_err(|e| format!("CreateStream {name}: {e:?}"))?;
    for _ in 0..100 {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| format!("DescribeStreamSummary {name}: {e:?}"))?;
        if let Some(s) = summary
            .stream_description_summary()
            .filter(|s| s.stream_status() == &StreamStatus::Active)
        {
            return Ok(s.stream_arn().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("stream {name} did not become ACTIVE within 10 s"))
}
