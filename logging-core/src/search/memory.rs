//! An in-memory [`SearchApi`] that behaves like a cluster for the parts we use: it indexes
//! bulk bodies (same `_id` overwrites), lists and deletes indices, and answers programmed
//! item statuses and whole-request failures. For tests and examples.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use super::bulk::{BulkItemResult, BulkReply};
use super::{SearchApi, SearchError};

#[derive(Debug, Default)]
struct Inner {
    /// index -> (_id -> source); documents without `_id` get `auto-N`.
    indices: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    item_script: HashMap<String, VecDeque<u16>>,
    failures: VecDeque<SearchError>,
    next_id: u64,
    bulk_requests: usize,
    max_body: Option<usize>,
    bulk_bytes: usize,
    refused_bytes: usize,
}

/// An in-memory search cluster.
#[derive(Debug, Default)]
pub struct MemorySearch {
    inner: Mutex<Inner>,
}

impl MemorySearch {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test double; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an empty index (e.g. to seed retention tests).
    pub fn create_index(&self, name: &str) {
        self.lock().indices.entry(name.to_owned()).or_default();
    }

    /// Answers the next bulk items with `_id` `id` with these statuses, one per attempt
    /// (then 201). 400 answers a mapping error, 429 a rejected execution, others unavailable.
    pub fn script_item(&self, id: &str, statuses: impl IntoIterator<Item = u16>) {
        self.lock()
            .item_script
            .entry(id.to_owned())
            .or_default()
            .extend(statuses);
    }

    /// Fails the next request (any operation) with `error`.
    pub fn push_failure(&self, error: SearchError) {
        self.lock().failures.push_back(error);
    }

    /// The documents of `index` as `(_id, source)`, by id.
    pub fn documents(&self, index: &str) -> Vec<(String, Vec<u8>)> {
        self.lock()
            .indices
            .get(index)
            .map(|docs| docs.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Bulk requests received (failed ones included).
    pub fn bulk_requests(&self) -> usize {
        self.lock().bulk_requests
    }

    /// Answers bulk bodies longer than `max_body` bytes with HTTP 413, as a cluster does past
    /// its `http.max_content_length` (`None`, the default: no limit).
    pub fn set_max_body(&self, max_body: Option<usize>) {
        self.lock().max_body = max_body;
    }

    /// Bulk body bytes received, and the part of them answered 413.
    pub fn bulk_bytes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.bulk_bytes, inner.refused_bytes)
    }
}

fn malformed(message: String) -> SearchError {
    SearchError::Status {
        operation: "bulk",
        resource: "_bulk".to_owned(),
        status: 400,
        body: message,
    }
}

#[async_trait]
impl SearchApi for MemorySearch {
    async fn bulk(&self, body: Bytes) -> Result<BulkReply, SearchError> {
        let mut inner = self.lock();
        inner.bulk_requests += 1;
        inner.bulk_bytes += body.len();
        if let Some(e) = inner.failures.pop_front() {
            return Err(e);
        }
        if inner.max_body.is_some_and(|max| body.len() > max) {
            inner.refused_bytes += body.len();
            return Err(SearchError::Status {
                operation: "bulk",
                resource: "_bulk".to_owned(),
                status: 413,
                body: String::new(),
            });
        }
        let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let mut items = Vec::new();
        while let Some(action) = lines.next() {
            let source = lines
                .next()
                .ok_or_else(|| malformed("action without source".into()))?;
            let action: serde_json::Value = serde_json::from_slice(action)
                .map_err(|e| malformed(format!("action line: {e}")))?;
            let meta = &action["index"];
            let index = meta["_index"]
                .as_str()
                .ok_or_else(|| malformed("action without _index".into()))?
                .to_owned();
            let id = meta["_id"].as_str().map(str::to_owned);
            if serde_json::from_slice::<serde::de::IgnoredAny>(source).is_err() {
                items.push(BulkItemResult {
                    status: 400,
                    error_type: Some("document_parsing_exception".into()),
                    reason: Some("source is not JSON".into()),
                });
                continue;
            }
            let status = id
                .as_ref()
                .and_then(|id| inner.item_script.get_mut(id))
                .and_then(VecDeque::pop_front)
                .unwrap_or(201);
            let (error_type, reason) = match status {
                200..=299 => {
                    let id = id.unwrap_or_else(|| {
                        inner.next_id += 1;
                        format!("auto-{}", inner.next_id)
                    });
                    inner
                        .indices
                        .entry(index)
                        .or_default()
                        .insert(id, source.to_vec());
                    (None, None)
                }
                400 => (Some("mapper_parsing_exception"), Some("failed to parse")),
                429 => (Some("es_rejected_execution_exception"), Some("queue full")),
                _ => (
                    Some("unavailable_shards_exception"),
                    Some("shard not active"),
                ),
            };
            items.push(BulkItemResult {
                status,
                error_type: error_type.map(str::to_owned),
                reason: reason.map(str::to_owned),
            });
        }
        Ok(BulkReply { items })
    }

    async fn list_indices(&self) -> Result<Vec<String>, SearchError> {
        let mut inner = self.lock();
        if let Some(e) = inner.failures.pop_front() {
            return Err(e);
        }
        Ok(inner.indices.keys().cloned().collect())
    }

    async fn delete_indices(&self, names: &[String]) -> Result<(), SearchError> {
        let mut inner = self.lock();
        if let Some(e) = inner.failures.pop_front() {
            return Err(e);
        }
        for name in names {
            inner.indices.remove(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{BulkConfig, BulkItem, ItemOutcome, deliver_bulk};

    #[tokio::test]
    async fn deliver_against_memory_retries_and_rejects() {
        let api = MemorySearch::new();
        api.script_item("b", [503, 429]);
        api.script_item("c", [400]);
        api.push_failure(SearchError::Timeout {
            operation: "bulk",
            resource: "_bulk".into(),
            message: "scripted".into(),
        });
        let items: Vec<_> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(key, id)| BulkItem {
                key,
                index: "logs-x-20200101".into(),
                id: Some((*id).to_owned()),
                source: b"{\"v\":1}",
            })
            .collect();
        let config = BulkConfig {
            initial_backoff_ms: 1,
            ..BulkConfig::default()
        };
        let report = deliver_bulk(&api, &items, &config).await;
        assert_eq!(report.outcomes[0].1, ItemOutcome::Delivered);
        assert_eq!(report.outcomes[1].1, ItemOutcome::Delivered);
        assert!(matches!(
            report.outcomes[2].1,
            ItemOutcome::Rejected {
                status: Some(400),
                ..
            }
        ));
        assert_eq!(api.bulk_requests(), 4);
        assert_eq!(api.documents("logs-x-20200101").len(), 2);
    }
}
