//! [`KinesisApi`] on the official `aws-sdk-kinesis` client (`aws` feature).
//!
//! ```no_run
//! use kinesis_utils::aws::AwsKinesis;
//! use kinesis_utils::{PutEntry, PutRecordsBatcher, StreamTarget};
//!
//! # async fn run(sdk_config: &aws_types::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let batcher = PutRecordsBatcher::with_defaults(AwsKinesis::new(sdk_config));
//! let outcome = batcher
//!     .put_all(&StreamTarget::name("logs"), vec![PutEntry::with_random_key(&b"hello"[..])])
//!     .await?;
//! for failed in outcome.failed() {
//!     eprintln!("record {} not stored: {} {}", failed.index, failed.error_code, failed.error_message);
//! }
//! # Ok(())
//! # }
//! ```

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use crate::api::{EntryResult, KinesisApi, KinesisError, PutEntry, StreamTarget};

/// [`KinesisApi`] on an `aws_sdk_kinesis::Client`.
///
/// The SDK retries transient whole-request errors itself (its standard retry mode, 3 attempts
/// by default) beneath the batcher's own retries; set `retry_config` on the SDK config to
/// change that. Entry-level failures are never retried by the SDK, only by the batcher.
#[derive(Debug, Clone)]
pub struct AwsKinesis {
    client: Client,
}

impl AwsKinesis {
    /// A client built from a shared SDK configuration (region, credentials, endpoint).
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }

    /// Wraps an existing client.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// The underlying client, for operations outside [`KinesisApi`].
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl From<Client> for AwsKinesis {
    fn from(client: Client) -> Self {
        Self::from_client(client)
    }
}

/// Maps an SDK error of `operation` on `stream` to a [`KinesisError`], keeping the AWS error
/// code, message and HTTP status, and telling timeouts and connection failures apart.
pub fn map_sdk_error<E>(
    operation: &'static str,
    stream: &StreamTarget,
    error: SdkError<E>,
) -> KinesisError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let stream_name = stream.to_string();
    let http_status = error.raw_response().map(|r| r.status().as_u16());
    match &error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            KinesisError::Service {
                operation,
                stream: stream_name,
                code: inner.code().unwrap_or("Unknown").to_owned(),
                message: inner
                    .message()
                    .map_or_else(|| DisplayErrorContext(inner).to_string(), str::to_owned),
                http_status,
            }
        }
        SdkError::TimeoutError(_) => KinesisError::Transport {
            operation,
            stream: stream_name,
            message: DisplayErrorContext(&error).to_string(),
            timed_out: true,
        },
        SdkError::DispatchFailure(dispatch) => KinesisError::Transport {
            operation,
            stream: stream_name,
            message: DisplayErrorContext(&error).to_string(),
            timed_out: dispatch.is_timeout(),
        },
        SdkError::ConstructionFailure(_) => KinesisError::InvalidRequest {
            operation,
            stream: stream_name,
            message: DisplayErrorContext(&error).to_string(),
        },
        // ResponseError and any variant added later: an answer we could not use.
        _ => KinesisError::InvalidResponse {
            operation,
            stream: stream_name,
            message: DisplayErrorContext(&error).to_string(),
            http_status,
        },
    }
}

#[async_trait]
impl KinesisApi for AwsKinesis {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let record = PutRecordsRequestEntry::builder()
                .data(Blob::new(entry.data.to_vec()))
                .partition_key(entry.partition_key.clone())
                .set_explicit_hash_key(entry.explicit_hash_key.clone())
                .build()
                .map_err(|e| KinesisError::InvalidRequest {
                    operation: "PutRecords",
                    stream: stream.to_string(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            records.push(record);
        }
        let request = self.client.put_records().set_records(Some(records));
        let request = match stream {
            StreamTarget::Name(name) => request.stream_name(name),
            StreamTarget::Arn(arn) => request.stream_arn(arn),
        };
        let output = request
            .send()
            .await
            .map_err(|e| map_sdk_error("PutRecords", stream, e))?;

        let invalid = |message: String| KinesisError::InvalidResponse {
            operation: "PutRecords",
            stream: stream.to_string(),
            message,
            http_status: None,
        };
        if output.records().len() != entries.len() {
            return Err(invalid(format!(
                "{} results for {} entries",
                output.records().len(),
                entries.len()
            )));
        }
        output
            .records()
            .iter()
            .map(
                |r| match (r.error_code(), r.shard_id(), r.sequence_number()) {
                    (Some(code), _, _) => Ok(EntryResult::Failed {
                        error_code: code.to_owned(),
                        error_message: r.error_message().unwrap_or_default().to_owned(),
                    }),
                    (None, Some(shard_id), Some(sequence_number)) => Ok(EntryResult::Accepted {
                        shard_id: shard_id.to_owned(),
                        sequence_number: sequence_number.to_owned(),
                    }),
                    (None, _, _) => Err(invalid(
                        "a result has neither an error code nor a shard and sequence number"
                            .to_owned(),
                    )),
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::operation::put_records::PutRecordsError;
    use aws_sdk_kinesis::types::error::ResourceNotFoundException;

    #[test]
    fn service_errors_keep_code_message_and_stream() {
        let err = PutRecordsError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Stream s not found")
                // The deserializer fills the metadata from the answer; do what it does.
                .meta(
                    aws_sdk_kinesis::error::ErrorMetadata::builder()
                        .code("ResourceNotFoundException")
                        .message("Stream s not found")
                        .build(),
                )
                .build(),
        );
        // The SDK re-exports neither StatusCode nor SdkBody; the constructor's types drive inference.
        let raw =
            aws_sdk_kinesis::config::http::HttpResponse::new(400u16.try_into().unwrap(), "".into());
        let mapped = map_sdk_error(
            "PutRecords",
            &StreamTarget::name("s"),
            SdkError::service_error(err, raw),
        );
        assert_eq!(mapped.code(), "ResourceNotFoundException");
        assert_eq!(mapped.message(), "Stream s not found");
        assert_eq!(mapped.stream(), "s");
        assert!(!mapped.is_retryable());
    }

    #[test]
    fn timeouts_are_retryable_transport_errors() {
        let err: SdkError<PutRecordsError> = SdkError::timeout_error("slow");
        let mapped = map_sdk_error("PutRecords", &StreamTarget::name("s"), err);
        assert_eq!(mapped.code(), "RequestTimeout");
        assert!(mapped.is_retryable());
        let err: SdkError<PutRecordsError> = SdkError::construction_failure("bad");
        assert!(!map_sdk_error("PutRecords", &StreamTarget::name("s"), err).is_retryable());
    }
}
