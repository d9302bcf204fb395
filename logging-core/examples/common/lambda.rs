//! The AWS and Lambda side of the Kinesis-triggered examples: S3 stores from the SDK
//! configuration, and the handler loop (`logging_core::lambda::serve`: the invocation's raw
//! bytes in, the partial batch response out, before the deadline).

use std::sync::Arc;

use lambda_runtime::Error;
use logging_core::store::s3::S3Store;
use logging_core::{ObjectStore, Pipeline};

/// An S3 bucket as an object store.
pub fn s3_store(sdk: &aws_config::SdkConfig, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(S3Store::new(aws_sdk_s3::Client::new(sdk), bucket))
}

/// Logs in Lambda's format (JSON when the function's log format is JSON), then serves
/// `pipeline` as the function's handler.
pub async fn serve(pipeline: Pipeline) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    logging_core::lambda::serve(pipeline).await
}
