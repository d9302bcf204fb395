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
