//! Amazon S3 as a document store with conditional writes: the endpoints document
//! ([`DocumentStore`]).

use async_trait::async_trait;

use super::CloudResult;

/// A stored object with its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Content.
    pub bytes: Vec<u8>,
    /// ETag.
    pub etag: String,
}

/// How a put is conditioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Only if absent (`If-None-Match: *`).
    Create,
    /// Only if the ETag still matches (`If-Match`).
    Update(String),
}

/// An object store (Amazon S3) with conditional writes.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Reads an object; `None` when the key is absent.
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>>;
    /// Writes an object under a condition; `PreconditionFailed` when it does not hold.
    /// Returns the new ETag.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String>;
}
