//! [`ObjectStore`] on the official `aws-sdk-s3` client (`aws` feature).

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{ObjectStore, StoreError, StoreOp, validate_key};

/// One S3 bucket as an [`ObjectStore`].
///
/// Build the client as usual; for S3-compatible servers (moto, MinIO) enable path-style
/// addressing (`aws_sdk_s3::config::Builder::force_path_style(true)`).
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    location: String,
}

impl S3Store {
    /// The bucket `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        let location = format!("s3://{bucket}");
        Self {
            client,
            bucket,
            location,
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn error<E>(&self, op: StoreOp, key: &str, e: aws_sdk_s3::error::SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = e.code().map(str::to_owned);
        let message = match code {
            Some(code) => format!("{code}: {}", DisplayErrorContext(&e)),
            None => DisplayErrorContext(&e).to_string(),
        };
        StoreError::backend(op, &self.location, key, message, Some(Box::new(e)))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> &str {
        &self.location
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        validate_key(StoreOp::Put, &self.location, key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error(StoreOp::Put, key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(StoreOp::Get, &self.location, key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error(StoreOp::Get, key, e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            StoreError::backend(
                StoreOp::Get,
                &self.location,
                key,
                format!("reading the body: {e}"),
                Some(Box::new(e)),
            )
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(StoreOp::List, prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}
