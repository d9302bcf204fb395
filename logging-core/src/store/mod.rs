//! A small object-store trait for what the pipeline needs: put an object; get and list for
//! tests and tools. Implementations: [`MemoryStore`] (the embedded default), [`LocalDirStore`]
//! (a local directory), [`S3Store`](s3::S3Store) on `aws-sdk-s3` (`aws` feature), and the
//! [`FaultyStore`] wrapper that injects failures into any of them.
//!
//! Keys are `/`-separated, 1 to 1024 bytes, without empty, `.` or `..` segments, so that every
//! backend (a directory too) stores exactly the same keys.

mod faulty;
mod local;
mod memory;
#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub mod s3;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use faulty::{FaultyStore, PutFault};
pub use local::LocalDirStore;
pub use memory::{MemoryStore, StoredObject};

/// Where objects are written.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A name for the store in messages and reports (`s3://bucket`, `memory`, `file:///dir`).
    fn location(&self) -> &str;

    /// Writes (or overwrites) the object `key`.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;

    /// Reads the object `key`; `Ok(None)` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Lists the keys that start with `prefix`, in lexicographic order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

impl fmt::Debug for dyn ObjectStore + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectStore({})", self.location())
    }
}

#[async_trait]
impl<S: ObjectStore + ?Sized> ObjectStore for std::sync::Arc<S> {
    fn location(&self) -> &str {
        (**self).location()
    }
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        (**self).put(key, body, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        (**self).get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        (**self).list(prefix).await
    }
}

/// The store operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Writing an object.
    Put,
    /// Reading an object.
    Get,
    /// Listing keys.
    List,
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreOp::Put => "put object",
            StoreOp::Get => "get object",
            StoreOp::List => "list objects",
        })
    }
}

/// A failed store operation, naming the step, the store and the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key is not acceptable (empty, too long, empty / `.` / `..` segments).
    #[error("{op} {location} key {key:?}: invalid key: {reason}")]
    InvalidKey {
        /// The operation.
        op: StoreOp,
        /// The store.
        location: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The backend failed.
    #[error("{op} {location} key {key:?}: {message}")]
    Backend {
        /// The operation.
        op: StoreOp,
        /// The store.
        location: String,
        /// The key (or prefix, for list).
        key: String,
        /// The backend's message (service error code and message, or the I/O error).
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend error.
    pub fn backend(
        op: StoreOp,
        location: &str,
        key: &str,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend {
            op,
            location: location.to_owned(),
            key: key.to_owned(),
            message: message.into(),
            source,
        }
    }
}

/// The longest key, in bytes (the S3 limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Checks a key against the rules shared by every backend.
pub fn validate_key(op: StoreOp, location: &str, key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("empty")
    } else if key.len() > MAX_KEY_LEN {
        Some("longer than 1024 bytes")
    } else if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        Some("empty, '.' or '..' path segment")
    } else if key.bytes().any(|b| b == 0 || b == b'\\') {
        Some("NUL or backslash")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            op,
            location: location.to_owned(),
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key(StoreOp::Put, "m", "a/b.gz").is_ok());
        assert!(validate_key(StoreOp::Put, "m", "a:b/2020-03-14-12:00:00-x.gz").is_ok());
        let e = validate_key(StoreOp::Get, "s3://b", "a/../c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "get object s3://b key \"a/../c\": invalid key: empty, '.' or '..' path segment"
        );
        assert!(validate_key(StoreOp::Put, "m", &"x".repeat(1025)).is_err());
    }
}
