//! Elasticsearch / OpenSearch delivery: index naming, Bulk API bodies, per-item results with
//! retries, and the [`SearchApi`] trait that the delivery engine and index retention speak.
//!
//! The pure parts (naming, encoding, reading bulk answers, the retry engine over any
//! [`SearchApi`]) build without the `search` cargo feature; only the HTTP client
//! ([`http::HttpSearch`], on reqwest + rustls with SigV4) needs it.

pub mod bulk;
pub mod destination;
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub mod http;
pub mod index;
pub mod memory;

use async_trait::async_trait;
use bytes::Bytes;

pub use bulk::{
    BulkChunk, BulkConfig, BulkEncoder, BulkItem, BulkItemResult, BulkReply, BulkReport,
    EncodedBulk, ItemOutcome, deliver_bulk, derive_doc_id, doc_id_from_log_id,
};
pub use destination::{
    DocIdMode, SearchConfigError, SearchDestination, SearchDestinationBuilder,
    SearchDestinationConfig, origin_doc_id,
};
pub use index::{IndexNameError, IndexNamer, validate_index_name};
pub use memory::MemorySearch;

/// Most bytes an answer may inflate to (a bulk answer for 500 items is well under 1 MB): past
/// it a gzip answer is refused as malformed instead of allocating without bound.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// gzip of a request body at `level` (1–12; above 9 counts as 9 without the `libdeflate`
/// feature), as [`http::HttpSearch`] sends bulk bodies with `Content-Encoding: gzip`.
/// The same body always gives the same bytes.
///
/// ```
/// let body = b"{\"index\":{\"_index\":\"logs-a-20200314\"}}\n{\"n\":1}\n".repeat(100);
/// let gz = logging_core::search::gzip_body(&body, 6).unwrap();
/// assert!(gz.len() < body.len() / 10);
/// let answer = logging_core::search::decode_answer(Some("gzip"), gz, 1 << 20).unwrap();
/// assert_eq!(answer, body);
/// ```
pub fn gzip_body(body: &[u8], level: u32) -> std::io::Result<Bytes> {
    crate::naming::gzip(body, level).map(Bytes::from)
}

/// An answer body as the server encoded it (its `Content-Encoding`): unchanged when there is
/// none (or `identity`), inflated when it is `gzip` (or `x-gzip`), refusing more than
/// `limit` bytes. Other encodings are errors: only gzip is ever asked for.
pub fn decode_answer(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, String> {
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(body),
        Some("gzip" | "x-gzip") => kinesis_utils::gzip::gunzip_bounded(&body, limit)
            .map(Bytes::from)
            .map_err(|e| format!("gzip answer: {e}")),
        Some(other) => Err(format!("answer in unsupported content encoding {other:?}")),
    }
}

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

    /// The longest one request may take (the client's timeout), when there is one; used for
    /// retry budgets ([`crate::Destination::retry_budget`]). Default `None`.
    fn request_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers_are_read_per_their_encoding() {
        let body = Bytes::from_static(b"{\"items\":[]}");
        for plain in [None, Some("identity"), Some("")] {
            assert_eq!(decode_answer(plain, body.clone(), 10).unwrap(), body);
        }
        let gz = gzip_body(&body, 6).unwrap();
        for gzip in ["gzip", "x-gzip", " GZIP "] {
            assert_eq!(decode_answer(Some(gzip), gz.clone(), 1024).unwrap(), body);
        }
        // Past the bound, corrupt, or an encoding never asked for: an error, not a panic.
        assert!(
            decode_answer(Some("gzip"), gz.clone(), 4)
                .unwrap_err()
                .contains("more than")
        );
        let mut corrupt = gz.to_vec();
        let n = corrupt.len();
        corrupt[n - 5] ^= 0xff;
        assert!(decode_answer(Some("gzip"), corrupt.into(), 1024).is_err());
        assert!(
            decode_answer(Some("br"), gz, 1024)
                .unwrap_err()
                .contains("br")
        );
    }

    proptest! {
        /// What `gzip_body` compresses at any level, an independent reader inflates back.
        #[test]
        fn gzip_bodies_round_trip(body in proptest::collection::vec(any::<u8>(), 0..5000), level in 1u32..=12) {
            let gz = gzip_body(&body, level).unwrap();
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut back).unwrap();
            prop_assert_eq!(&back, &body);
            prop_assert_eq!(decode_answer(Some("gzip"), gz, body.len()).unwrap(), body);
        }

        #[test]
        fn decode_answer_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), magic: bool) {
            let mut bytes = if magic { vec![0x1f, 0x8b, 8, 0] } else { Vec::new() };
            bytes.extend(data);
            let _ = decode_answer(Some("gzip"), bytes.into(), 4096);
        }
    }
}
