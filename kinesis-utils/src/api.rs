//! The small [`KinesisApi`] trait the PutRecords batcher talks to, and the types it speaks.
//!
//! The trait uses this crate's own types, never SDK types, so the batcher, the in-memory
//! implementation ([`crate::memory`]) and the AWS one (`aws` feature) are interchangeable and a
//! downstream crate can plug in any other client.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

/// Entry error codes that the service documents as transient: an entry failing with one of
/// these may be sent again. Every other entry error code is final.
pub const RETRYABLE_ENTRY_CODES: &[&str] =
    &["ProvisionedThroughputExceededException", "InternalFailure"];

/// Whether an entry-level error code of a PutRecords answer is worth sending again.
///
/// ```
/// use kinesis_utils::api::is_retryable_entry_code;
/// assert!(is_retryable_entry_code("ProvisionedThroughputExceededException"));
/// assert!(!is_retryable_entry_code("KMSAccessDeniedException"));
/// ```
pub fn is_retryable_entry_code(code: &str) -> bool {
    RETRYABLE_ENTRY_CODES.contains(&code)
}

/// Request-level error codes that are transient (throttling and service-side failures).
const RETRYABLE_REQUEST_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalFailureException",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "KMSThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The most entries one PutRecords request may carry (a hard service limit).
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// One MiB.
pub const MIB: usize = 1024 * 1024;
/// The largest record or request size a stream can be configured to accept (10 MiB).
pub const MAX_CONFIGURABLE_BYTES: usize = 10 * MIB;
/// The default request size limit (5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 5 * MIB;
/// The default record size limit (1 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = MIB;
/// The most Unicode characters a partition key may have.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// The length of [`random_partition_key`] keys.
pub const RANDOM_PARTITION_KEY_CHARS: usize = 20;

/// A random partition key of 20 ASCII letters and digits, as the original Python module
/// generated, which spreads records evenly over the shards.
///
/// ```
/// let key = kinesis_utils::api::random_partition_key();
/// assert_eq!(key.len(), 20);
/// assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
/// ```
pub fn random_partition_key() -> String {
    (0..RANDOM_PARTITION_KEY_CHARS)
        .map(|_| fastrand::alphanumeric())
        .collect()
}

/// Parses an explicit hash key as the service does: `0` or a decimal without leading zeros,
/// below 2^128.
pub fn parse_explicit_hash_key(key: &str) -> Option<u128> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if canonical { key.parse().ok() } else { None }
}

/// The stream a request is addressed to: by name, or by ARN (needed across accounts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamTarget {
    /// The stream name, resolved in the client's account and region.
    Name(String),
    /// The full stream ARN, `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
    Arn(String),
}

impl StreamTarget {
    /// A target by stream name.
    pub fn name(name: impl Into<String>) -> Self {
        Self::Name(name.into())
    }

    /// A target by stream ARN.
    pub fn arn(arn: impl Into<String>) -> Self {
        Self::Arn(arn.into())
    }

    /// The name or ARN as given.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name(s) | Self::Arn(s) => s,
        }
    }

    /// The stream name: the target itself, or the part after `stream/` of an ARN.
    pub fn stream_name(&self) -> &str {
        match self {
            Self::Name(s) => s,
            Self::Arn(arn) => arn
                .rsplit_once(":stream/")
                .map_or(arn.as_str(), |(_, name)| name),
        }
    }
}

impl fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"arn:..."` becomes [`StreamTarget::Arn`], anything else [`StreamTarget::Name`].
impl From<&str> for StreamTarget {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

/// `"arn:..."` becomes [`StreamTarget::Arn`], anything else [`StreamTarget::Name`].
impl From<String> for StreamTarget {
    fn from(s: String) -> Self {
        if s.starts_with("arn:") {
            Self::Arn(s)
        } else {
            Self::Name(s)
        }
    }
}

/// One record to put: the payload, its partition key and optionally an explicit hash key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    /// The record payload, as stored (no base64: the client encodes on the wire).
    pub data: Bytes,
    /// The partition key, 1 to 256 Unicode characters; its MD5 picks the shard.
    pub partition_key: String,
    /// A decimal 128-bit hash key that picks the shard instead of the partition key.
    pub explicit_hash_key: Option<String>,
}

impl PutEntry {
    /// An entry with a caller-supplied partition key.
    pub fn new(data: impl Into<Bytes>, partition_key: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            partition_key: partition_key.into(),
            explicit_hash_key: None,
        }
    }

    /// An entry with a random 20-character partition key, as the original Python module did,
    /// which spreads records evenly over the shards.
    pub fn with_random_key(data: impl Into<Bytes>) -> Self {
        Self::new(data, random_partition_key())
    }

    /// Sets the explicit hash key (decimal, `0..2^128`).
    #[must_use]
    pub fn explicit_hash_key(mut self, key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(key.into());
        self
    }

    /// The size the service counts against its limits: data bytes plus the UTF-8 length of the
    /// partition key. The explicit hash key does not count.
    pub fn aws_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The service's answer for one entry of a PutRecords request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Stored: where and under which sequence number.
    Accepted {
        /// The shard that stored the record, e.g. `shardId-000000000001`.
        shard_id: String,
        /// The record's sequence number, a decimal string.
        sequence_number: String,
    },
    /// Not stored.
    Failed {
        /// The error code, e.g. `ProvisionedThroughputExceededException`.
        error_code: String,
        /// The service's message.
        error_message: String,
    },
}

impl EntryResult {
    /// Whether the entry was stored.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// A PutRecords request failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KinesisError {
    /// The service answered with an error.
    #[error("{operation} on Kinesis stream {stream} failed: {code}: {message}")]
    Service {
        /// The API operation, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name or ARN the request was addressed to.
        stream: String,
        /// The AWS error code, e.g. `ResourceNotFoundException`.
        code: String,
        /// The service's message.
        message: String,
        /// The HTTP status of the answer, when known.
        http_status: Option<u16>,
    },
    /// The request did not reach the service or no answer came back (connection error or
    /// timeout). It may or may not have been applied.
    #[error("{operation} on Kinesis stream {stream} was not delivered{}: {message}", if *timed_out { " (timed out)" } else { "" })]
    Transport {
        /// The API operation, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name or ARN the request was addressed to.
        stream: String,
        /// What went wrong.
        message: String,
        /// Whether a timeout (rather than a connection error) ended the attempt.
        timed_out: bool,
    },
    /// The request could not be built, e.g. a field the client refused; never sent.
    #[error("{operation} on Kinesis stream {stream}: could not build the request: {message}")]
    InvalidRequest {
        /// The API operation, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name or ARN the request was addressed to.
        stream: String,
        /// What was wrong.
        message: String,
    },
    /// An answer came back but could not be understood (unparseable, or not one result per
    /// entry).
    #[error("{operation} on Kinesis stream {stream}: unusable answer: {message}")]
    InvalidResponse {
        /// The API operation, e.g. `PutRecords`.
        operation: &'static str,
        /// The stream name or ARN the request was addressed to.
        stream: String,
        /// What was wrong.
        message: String,
        /// The HTTP status of the answer, when known.
        http_status: Option<u16>,
    },
}

impl KinesisError {
    /// A service error for `operation` on `stream` with the AWS error `code` and `message`.
    pub fn service(
        operation: &'static str,
        stream: &StreamTarget,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Service {
            operation,
            stream: stream.to_string(),
            code: code.into(),
            message: message.into(),
            http_status: None,
        }
    }

    /// The AWS error code of a service error; for the other kinds a fixed code naming the
    /// kind (`RequestTimeout`, `TransportError`, `InvalidRequest`, `InvalidResponse`), so a
    /// failed record can always report a code.
    pub fn code(&self) -> &str {
        match self {
            Self::Service { code, .. } => code,
            Self::Transport {
                timed_out: true, ..
            } => "RequestTimeout",
            Self::Transport { .. } => "TransportError",
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::InvalidResponse { .. } => "InvalidResponse",
        }
    }

    /// The message: the service's, or a description of the failure.
    pub fn message(&self) -> &str {
        match self {
            Self::Service { message, .. }
            | Self::Transport { message, .. }
            | Self::InvalidRequest { message, .. }
            | Self::InvalidResponse { message, .. } => message,
        }
    }

    /// The stream name or ARN the failed request was addressed to.
    pub fn stream(&self) -> &str {
        match self {
            Self::Service { stream, .. }
            | Self::Transport { stream, .. }
            | Self::InvalidRequest { stream, .. }
            | Self::InvalidResponse { stream, .. } => stream,
        }
    }

    /// Whether sending the same request again may succeed: throttling, internal failures,
    /// HTTP 429 and 5xx, timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        let transient_status = |status: &Option<u16>| matches!(status, Some(429 | 500..=599));
        match self {
            Self::Service {
                code, http_status, ..
            } => RETRYABLE_REQUEST_CODES.contains(&code.as_str()) || transient_status(http_status),
            Self::Transport { .. } => true,
            Self::InvalidRequest { .. } => false,
            Self::InvalidResponse { http_status, .. } => transient_status(http_status),
        }
    }
}

/// The part of the Kinesis data plane the PutRecords batcher needs.
///
/// Implemented by [`crate::memory::InMemoryKinesis`], by `AwsKinesis` (`aws` feature), and by
/// references, `Arc`s and `Box`es of implementations, so one client can be shared.
#[async_trait]
pub trait KinesisApi: Send + Sync {
    /// Sends one PutRecords request.
    ///
    /// On success the answer has exactly one [`EntryResult`] per entry, in order; some may
    /// have failed (a partial failure). `Err` means the request failed as a whole.
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError>;
}

#[async_trait]
impl<T: KinesisApi + ?Sized> KinesisApi for &T {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        (**self).put_records(stream, entries).await
    }
}

#[async_trait]
impl<T: KinesisApi + ?Sized> KinesisApi for Arc<T> {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        (**self).put_records(stream, entries).await
    }
}

#[async_trait]
impl<T: KinesisApi + ?Sized> KinesisApi for Box<T> {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        (**self).put_records(stream, entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_target_from_string_detects_arns() {
        let arn = StreamTarget::from("arn:aws:kinesis:us-east-1:123456789012:stream/logs");
        assert_eq!(
            arn,
            StreamTarget::Arn("arn:aws:kinesis:us-east-1:123456789012:stream/logs".into())
        );
        assert_eq!(arn.stream_name(), "logs");
        let name = StreamTarget::from("logs");
        assert_eq!(name, StreamTarget::Name("logs".into()));
        assert_eq!(name.stream_name(), "logs");
        assert_eq!(name.to_string(), "logs");
    }

    #[test]
    fn aws_size_counts_data_and_key_bytes_but_not_hash_key() {
        // "é" is two UTF-8 bytes: AWS counts bytes, not characters.
        let e = PutEntry::new(vec![0u8; 10], "é").explicit_hash_key("12345");
        assert_eq!(e.aws_size(), 12);
    }

    #[test]
    fn retryability_of_request_errors() {
        let s = StreamTarget::name("s");
        assert!(
            KinesisError::service(
                "PutRecords",
                &s,
                "ProvisionedThroughputExceededException",
                ""
            )
            .is_retryable()
        );
        assert!(KinesisError::service("PutRecords", &s, "InternalFailure", "").is_retryable());
        assert!(
            !KinesisError::service("PutRecords", &s, "ResourceNotFoundException", "")
                .is_retryable()
        );
        assert!(!KinesisError::service("PutRecords", &s, "ValidationException", "").is_retryable());
        let status = |code: u16| KinesisError::Service {
            operation: "PutRecords",
            stream: "s".into(),
            code: "Unknown".into(),
            message: String::new(),
            http_status: Some(code),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        let t = KinesisError::Transport {
            operation: "PutRecords",
            stream: "s".into(),
            message: "x".into(),
            timed_out: true,
        };
        assert!(t.is_retryable());
        assert_eq!(t.code(), "RequestTimeout");
        let r = KinesisError::InvalidRequest {
            operation: "PutRecords",
            stream: "s".into(),
            message: "x".into(),
        };
        assert!(!r.is_retryable());
    }

    #[test]
    fn error_display_names_operation_stream_and_code() {
        let e = KinesisError::service(
            "PutRecords",
            &StreamTarget::name("logs"),
            "ResourceNotFoundException",
            "Stream logs not found",
        );
        let text = e.to_string();
        assert!(text.contains("PutRecords"), "{text}");
        assert!(text.contains("logs"), "{text}");
        assert!(text.contains("ResourceNotFoundException"), "{text}");
        assert_eq!(e.stream(), "logs");
        assert_eq!(e.message(), "Stream logs not found");
    }
}
