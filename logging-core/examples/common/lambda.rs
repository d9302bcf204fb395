//! The AWS and Lambda side of the Kinesis-triggered examples: S3 stores from the SDK
//! configuration, and the handler loop.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use logging_core::store::s3::S3Store;
use logging_core::{Deadline, ObjectStore, Pipeline};

/// The longest timeout a Lambda function can have.
const LAMBDA_MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);

/// An S3 bucket as an object store.
pub fn s3_store(sdk: &aws_config::SdkConfig, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(S3Store::new(aws_sdk_s3::Client::new(sdk), bucket))
}

/// Serves `pipeline` as the function's handler: Kinesis events in, partial batch responses
/// (`batchItemFailures`) out, answered before the invocation's deadline (records whose
/// delivery is still retrying then are reported for retry instead of the function timing out).
pub async fn serve(pipeline: Pipeline) -> Result<(), Error> {
    if let Some(budget) = pipeline.retry_budget() {
        if budget > LAMBDA_MAX_TIMEOUT {
            tracing::warn!(
                retry_budget_ms = budget.as_millis() as u64,
                "the destinations' retry budget exceeds Lambda's longest timeout (15 minutes): \
                 every slow batch will be cut at the deadline; lower their attempts or timeouts"
            );
        } else {
            tracing::info!(
                retry_budget_ms = budget.as_millis() as u64,
                "longest delivery with every retry; keep the function timeout above it, or \
                 deliveries still running are cut before the deadline and retried"
            );
        }
    }
    let pipeline = Arc::new(pipeline);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let pipeline = pipeline.clone();
        async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            let (_report, response) = pipeline.process_event_until(event.payload, deadline).await;
            Ok::<KinesisEventResponse, Error>(response)
        }
    }))
    .await
}
