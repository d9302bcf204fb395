//! Elasticsearch / OpenSearch delivery: index naming, Bulk API bodies, per-item results with
//! retries, and the [`SearchApi`] trait that the delivery engine and index retention speak.
//!
//! The pure parts (naming, encoding, reading bulk answers, the retry engine over any
//! [`SearchApi`]) build without the `search` cargo feature; only the HTTP client
//! ([`http::HttpSearch`], on reqwest + rustls with SigV4) needs it.

pub mod bulk;
pub mod destination;
#[cfg(feature = "search")]
pub mod http;
pub mod index;
pub mod memory;

use async_trait::async_trait;
use bytes::Bytes;

pub use bulk::{
    BulkChunk, BulkConfig, BulkEncoder, BulkItem, BulkItemResult, BulkReply, BulkReport,
    EncodedBulk, ItemOutcome, deliver_bulk, derive_doc_id, doc_id_from_log_id,
};
pub use destination::{DocIdMode, SearchConfigError, SearchDestination, SearchDestinationConfig};
pub use index::{IndexNameError, IndexNamer, validate_index_name};
pub use memory::MemorySearch;

/// Why a request to the search cluster failed as a whole.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SearchError {
    /// The cluster answered with a non-success HTTP status for the whole request.
    #[error("{operation} on {resource}: cluster answered HTTP {status}: {body}")]
    Status {
        /// The step that failed (`bulk`, `list indices`, `delete indices`).
        operation: &'static str,
        /// The path or index names concerned.
        resource: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the operator.
        body: String,
    },
    /// The request timed out.
    #[error("{operation} on {resource}: timed out: {message}")]
    Timeout {
        /// The step that failed.
        operation: &'static str,
        /// The path or index names concerned.
        resource: String,
        /// What the client reported.
        message: String,
    },
    /// The connection failed (refused, reset, closed before the answer, TLS).
    #[error("{operation} on {resource}: connection failed: {message}")]
    Transport {
        /// The step that failed.
        operation: &'static str,
        /// The path or index names concerned.
        resource: String,
        /// What the client reported.
        message: String,
    },
    /// The answer could not be read (not the documented JSON shape).
    #[error("{operation} on {resource}: malformed answer: {message}")]
    Malformed {
        /// The step that failed.
        operation: &'static str,
        /// The path or index names concerned.
        resource: String,
        /// What was wrong with it.
        message: String,
    },
    /// The request could not be built or signed (configuration or credentials).
    #[error("{operation} on {resource}: cannot build request: {message}")]
    Request {
        /// The step that failed.
        operation: &'static str,
        /// The path or index names concerned.
        resource: String,
        /// What went wrong.
        message: String,
    },
}

impl SearchError {
    /// Whether sending the same request again may succeed: HTTP 429 and 5xx, timeouts,
    /// connection failures and malformed answers (often a proxy's error page).
    pub fn is_retryable(&self) -> bool {
        match self {
            SearchError::Status { status, .. } => *status == 429 || *status >= 500,
            SearchError::Timeout { .. }
            | SearchError::Transport { .. }
            | SearchError::Malformed { .. } => true,
            SearchError::Request { .. } => false,
        }
    }

    /// Whether the cluster refused the body as too large (HTTP 413): split and resend.
    pub fn is_too_large(&self) -> bool {
        matches!(self, SearchError::Status { status: 413, .. })
    }
}

/// The parts of an Elasticsearch / OpenSearch cluster that delivery and retention use.
///
/// Implementations speak HTTP ([`http::HttpSearch`]) or stand in for a cluster in tests.
#[async_trait]
pub trait SearchApi: Send + Sync {
    /// Sends one `_bulk` request with an NDJSON body and returns its per-item results, in
    /// the order of the actions in the body.
    async fn bulk(&self, body: Bytes) -> Result<BulkReply, SearchError>;

    /// Lists the names of all indices (`GET _cat/indices?format=json`).
    async fn list_indices(&self) -> Result<Vec<String>, SearchError>;

    /// Deletes the named indices in one request (`DELETE /a,b,c`); names that no longer
    /// exist are not an error.
    async fn delete_indices(&self, names: &[String]) -> Result<(), SearchError>;
}
