//! [`DocumentStore`] on `aws-sdk-s3`.

use async_trait::async_trait;
use aws_types::SdkConfig;

use super::error::map_sdk_error;
use crate::cloud::{CloudError, CloudResult, DocumentStore, PutMode, StoredDocument, codes};

/// [`DocumentStore`] on `aws-sdk-s3`.
#[derive(Debug, Clone)]
pub struct AwsS3 {
    client: aws_sdk_s3::Client,
}

impl AwsS3 {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_s3::Client::new(config),
        }
    }

    /// A client from an S3 configuration (e.g. with `force_path_style(true)`).
    pub fn from_conf(config: aws_sdk_s3::Config) -> Self {
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }
}

#[async_trait]
impl DocumentStore for AwsS3 {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = map_sdk_error(e);
                return if e.code == "NoSuchKey" {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| CloudError::new(codes::TRANSPORT, e.to_string()))?
            .into_bytes()
            .to_vec();
        Ok(Some(StoredDocument { bytes, etag }))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes));
        let request = match mode {
            PutMode::Create => request.if_none_match("*"),
            PutMode::Update(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_owned()),
            Err(e) => {
                // A 412 without a parsable body still means the condition failed.
                let status = e.raw_response().map(|r| r.status().as_u16());
                let e = map_sdk_error(e);
                if status == Some(412) {
                    Err(CloudError::new(codes::PRECONDITION_FAILED, e.message))
                } else {
                    Err(e)
                }
            }
        }
    }
}
