//! Bulk API bodies, bulk answers and the delivery engine with per-item retries.
//!
//! Request building is separate from sending: [`BulkEncoder`] turns items into NDJSON once,
//! into one buffer; chunks are slices of it (retries of a subset copy only that subset).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::SearchApi;
use super::index::{IndexNameError, validate_index_name};

/// Longest `_id` the cluster accepts, in bytes.
pub const MAX_DOC_ID_BYTES: usize = 512;

/// One document to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem<'a> {
    /// The caller's reference for this item (e.g. its position in the batch); outcomes are
    /// reported under it.
    pub key: usize,
    /// Target index name (see [`super::IndexNamer`]); validated before sending.
    pub index: String,
    /// Optional deterministic `_id`, so a replayed batch overwrites instead of duplicating.
    pub id: Option<String>,
    /// The record's original JSON bytes, sent as `_source` unchanged (line breaks between
    /// tokens, which NDJSON cannot carry, become spaces).
    pub source: &'a [u8],
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The cluster indexed it (2xx).
    Delivered,
    /// Refused permanently (e.g. 400 mapping error, invalid index name): dead letter.
    Rejected {
        /// The item's HTTP status; `None` when it was never sent (invalid index name).
        status: Option<u16>,
        /// The cluster's error type, e.g. `mapper_parsing_exception`.
        error_type: String,
        /// The cluster's reason.
        reason: String,
    },
    /// Still failing transiently after all attempts: the caller should retry the batch.
    Failed {
        /// The last failure seen.
        reason: String,
    },
}

/// Limits and retry policy of bulk delivery. Deserializable; missing fields take defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BulkConfig {
    /// Most actions per request (default 500, as the original module).
    pub max_actions: usize,
    /// Most body bytes per request (default 5 MB; AWS domains refuse 10 MB with 413).
    pub max_bytes: usize,
    /// Attempts per item for transient failures, the first included (default 5).
    pub max_attempts: u32,
    /// Backoff before the second attempt, in milliseconds (default 200); doubles each time.
    pub initial_backoff_ms: u64,
    /// Upper bound of one backoff, in milliseconds (default 10 000).
    pub max_backoff_ms: u64,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            max_actions: 500,
            max_bytes: 5 * 1024 * 1024,
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
        }
    }
}

impl BulkConfig {
    /// The backoff before attempt `attempt + 1`: exponential, capped, with jitter in
    /// [half, full] so that concurrent senders spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let full = exp.min(self.max_backoff_ms);
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=full - half))
    }
}

/// Derives a deterministic document `_id` from an origin (e.g. shard id, sequence number,
/// sub-sequence number, CloudWatch event id joined by `/`): URL-safe base64 of its SHA-256.
pub fn derive_doc_id(origin: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(origin.as_bytes()))
}

/// A `_id` from a record's `log_id`: the id itself when it fits (512 bytes), else derived.
pub fn doc_id_from_log_id(log_id: &str) -> String {
    if !log_id.is_empty() && log_id.len() <= MAX_DOC_ID_BYTES {
        log_id.to_owned()
    } else {
        derive_doc_id(log_id)
    }
}

/// One request body and the items it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkChunk {
    /// NDJSON body.
    pub body: Bytes,
    /// The keys of the items in the body, in order.
    pub keys: Vec<usize>,
}

/// Bodies for a batch, plus the items that could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedBulk {
    /// Request bodies within the configured limits.
    pub chunks: Vec<BulkChunk>,
    /// Items whose index name is invalid, by key.
    pub invalid: Vec<(usize, IndexNameError)>,
}

/// Builds NDJSON `index` bodies bounded by action count and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkEncoder {
    max_actions: usize,
    max_bytes: usize,
}

/// The whole batch encoded once; `spans[pos]` is item `pos`'s action + source lines.
struct Encoded {
    buf: Bytes,
    spans: Vec<Range<usize>>,
}

impl Encoded {
    /// A body for the items at `positions`: a zero-copy slice when they are adjacent.
    fn body(&self, positions: &[usize]) -> Bytes {
        let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
            return Bytes::new();
        };
        let adjacent = positions
            .windows(2)
            .all(|w| self.spans[w[0]].end == self.spans[w[1]].start);
        if adjacent {
            return self
                .buf
                .slice(self.spans[first].start..self.spans[last].end);
        }
        let len = positions.iter().map(|&p| self.spans[p].len()).sum();
        let mut body = Vec::with_capacity(len);
        for &p in positions {
            body.extend_from_slice(&self.buf[self.spans[p].clone()]);
        }
        Bytes::from(body)
    }
}

impl BulkEncoder {
    /// An encoder with the limits of `config`.
    pub fn new(config: &BulkConfig) -> Self {
        Self {
            max_actions: config.max_actions.max(1),
            max_bytes: config.max_bytes.max(1),
        }
    }

    /// Encodes `items` into request bodies. Items with an invalid index name are left out
    /// and listed in [`EncodedBulk::invalid`].
    pub fn encode(&self, items: &[BulkItem<'_>]) -> EncodedBulk {
        let (valid, invalid) = partition_valid(items);
        let encoded = encode_items(items, &valid);
        let chunks = self
            .chunk(&encoded, &valid)
            .into_iter()
            .map(|positions| BulkChunk {
                body: encoded.body(&positions),
                keys: positions.iter().map(|&p| items[p].key).collect(),
            })
            .collect();
        EncodedBulk {
            chunks,
            invalid: invalid
                .into_iter()
                .map(|(p, e)| (items[p].key, e))
                .collect(),
        }
    }

    /// Groups positions, in order, into chunks within the limits. An item larger than
    /// `max_bytes` goes alone (the cluster decides; 413 rejects it).
    fn chunk(&self, encoded: &Encoded, positions: &[usize]) -> Vec<Vec<usize>> {
        let mut chunks = Vec::new();
        let mut rest = positions;
        while !rest.is_empty() {
            let n = take_chunk(&encoded.spans, rest, self.max_actions, self.max_bytes);
            let (chunk, tail) = rest.split_at(n);
            chunks.push(chunk.to_vec());
            rest = tail;
        }
        chunks
    }
}

/// How many of `positions`, from the front, make the next chunk: at most `max_actions`, and
/// at most `max_bytes` unless the first item alone is larger (it then goes alone). At least
/// one when `positions` is not empty.
fn take_chunk(
    spans: &[Range<usize>],
    positions: &[usize],
    max_actions: usize,
    max_bytes: usize,
) -> usize {
    let mut bytes = 0usize;
    for (n, &p) in positions.iter().enumerate() {
        let len = spans[p].len();
        if n > 0 && (n >= max_actions || bytes + len > max_bytes) {
            return n;
        }
        bytes += len;
    }
    positions.len()
}

/// What a batch has learnt about the cluster's body size limit from its answers: the smallest
/// body refused with 413, and the largest body answered below it. Later chunks are sized to
/// what worked instead of paying the refused round trips again.
#[derive(Debug, Clone, Copy, Default)]
struct SizeLimit {
    refused: Option<usize>,
    worked: Option<usize>,
}

impl SizeLimit {
    /// A body of `len` bytes was answered (not 413).
    fn worked(&mut self, len: usize) {
        if self.refused.is_none_or(|r| len < r) {
            self.worked = Some(self.worked.map_or(len, |w| w.max(len)));
        }
    }

    /// A body of `len` bytes was answered 413.
    fn refused(&mut self, len: usize) {
        let refused = self.refused.map_or(len, |r| r.min(len));
        self.refused = Some(refused);
        if self.worked.is_some_and(|w| w >= refused) {
            self.worked = None;
        }
    }

    /// The body size to build chunks to: the configured one until a 413, then the largest
    /// size that worked below the refused one, or half the refused one when nothing that
    /// large worked yet (as a bisection would). Always less than the refused size.
    fn max_bytes(&self, configured: usize) -> usize {
        match self.refused {
            None => configured,
            Some(refused) => self
                .worked
                .unwrap_or(0)
                .max(refused / 2)
                .clamp(1, configured),
        }
    }
}

/// Splits positions into valid ones and those with an invalid index name. A batch names few
/// indices (a type and a day each), interleaved, so the last few valid names are remembered.
fn partition_valid(items: &[BulkItem<'_>]) -> (Vec<usize>, Vec<(usize, IndexNameError)>) {
    const REMEMBERED: usize = 16;
    let mut valid = Vec::with_capacity(items.len());
    let mut invalid = Vec::new();
    let mut known_ok: [&str; REMEMBERED] = [""; REMEMBERED];
    let mut next = 0;
    for (pos, item) in items.iter().enumerate() {
        let name = item.index.as_str();
        if !name.is_empty() && known_ok.contains(&name) {
            valid.push(pos);
            continue;
        }
        match validate_index_name(name) {
            Ok(()) => {
                known_ok[next % REMEMBERED] = name;
                next += 1;
                valid.push(pos);
            }
            Err(e) => invalid.push((pos, e)),
        }
    }
    (valid, invalid)
}

fn encode_items(items: &[BulkItem<'_>], valid: &[usize]) -> Encoded {
    let estimate: usize = valid
        .iter()
        .map(|&p| items[p].source.len() + items[p].index.len() + 64)
        .sum();
    let mut buf = Vec::with_capacity(estimate);
    let mut spans = vec![0..0; items.len()];
    for &p in valid {
        let item = &items[p];
        let start = buf.len();
        buf.extend_from_slice(b"{\"index\":{\"_index\":");
        push_json_str(&mut buf, &item.index);
        if let Some(id) = &item.id {
            buf.extend_from_slice(b",\"_id\":");
            push_json_str(&mut buf, id);
        }
        buf.extend_from_slice(b"}}\n");
        push_single_line(&mut buf, item.source);
        buf.push(b'\n');
        spans[p] = start..buf.len();
    }
    Encoded {
        buf: Bytes::from(buf),
        spans,
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    // Without a short cut the check vectorizes; names and ids rarely need escaping.
    let special = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !special {
        buf.extend_from_slice(bytes);
    } else {
        for &b in bytes {
            match b {
                b'"' => buf.extend_from_slice(b"\\\""),
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    buf.extend_from_slice(b"\\u00");
                    buf.push(HEX[usize::from(b >> 4)]);
                    buf.push(HEX[usize::from(b & 0xf)]);
                }
                _ => buf.push(b),
            }
        }
    }
    buf.push(b'"');
}

/// Appends JSON `source` on one line. Raw CR/LF can only be whitespace between tokens in
/// valid JSON (inside strings they are escaped), so a space keeps the document's meaning.
fn push_single_line(buf: &mut Vec<u8>, source: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(source);
    if memchr::memchr2(b'\n', b'\r', source).is_some() {
        for b in &mut buf[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
}

/// The per-item results of one `_bulk` request, in the order of its actions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkReply {
    /// One result per action.
    pub items: Vec<BulkItemResult>,
}

/// One item of a bulk answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItemResult {
    /// The item's HTTP status.
    pub status: u16,
    /// `error.type`, when the item failed.
    pub error_type: Option<String>,
    /// `error.reason`, when the item failed.
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    items: Vec<BTreeMap<String, RawItem>>,
}

#[derive(Deserialize)]
struct RawItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl BulkReply {
    /// Reads a `_bulk` answer body. Each item is an object with one key (the action);
    /// `error` may be an object with `type` and `reason`, or a plain string (old clusters).
    pub fn parse(body: &[u8]) -> Result<BulkReply, String> {
        let raw: RawReply =
            serde_json::from_slice(body).map_err(|e| format!("bulk answer is not JSON: {e}"))?;
        let mut items = Vec::with_capacity(raw.items.len());
        for (i, item) in raw.items.into_iter().enumerate() {
            let Some((_, result)) = item.into_iter().next() else {
                return Err(format!("bulk answer item {i} is empty"));
            };
            let (error_type, reason) = match result.error {
                None | Some(serde_json::Value::Null) => (None, None),
                Some(serde_json::Value::String(s)) => (None, Some(s)),
                Some(serde_json::Value::Object(o)) => (
                    o.get("type").and_then(|v| v.as_str()).map(str::to_owned),
                    o.get("reason").and_then(|v| v.as_str()).map(str::to_owned),
                ),
                Some(other) => (None, Some(other.to_string())),
            };
            items.push(BulkItemResult {
                status: result.status,
                error_type,
                reason,
            });
        }
        Ok(BulkReply { items })
    }
}

/// The outcome of delivering a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkReport {
    /// One outcome per input item, in input order, by key.
    pub outcomes: Vec<(usize, ItemOutcome)>,
    /// Bulk requests sent (attempts and 413 splits included).
    pub requests: usize,
    /// NDJSON body bytes of those requests, before any compression by the [`SearchApi`].
    pub bytes_sent: usize,
    /// The part of [`BulkReport::bytes_sent`] in bodies the cluster refused as too large
    /// (HTTP 413).
    pub bytes_refused: usize,
}

impl BulkReport {
    /// How many items were delivered.
    pub fn delivered(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Delivered))
    }
    /// How many items were rejected permanently.
    pub fn rejected(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Rejected { .. }))
    }
    /// How many items still failed transiently.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Failed { .. }))
    }
    fn count(&self, f: impl Fn(&ItemOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
}

fn is_retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// Delivers `items` through `api`: encodes once, sends chunks within the limits, reads the
/// per-item results, retries items answered 429/5xx and whole requests that failed
/// transiently (429, 5xx, timeout, connection failure) with backoff, and reports one outcome
/// per item. Never loses an item: each ends Delivered, Rejected or Failed.
///
/// A chunk answered 413 is split (down to single items; a single item still refused is
/// Rejected), and the answer is remembered for the rest of the batch: later chunks are built
/// to the largest body size that was accepted below the refused one, so that a cluster whose
/// limit is under [`BulkConfig::max_bytes`] costs one refused round trip, not one per chunk.
pub async fn deliver_bulk<S: SearchApi + ?Sized>(
    api: &S,
    items: &[BulkItem<'_>],
    config: &BulkConfig,
) -> BulkReport {
    let max_actions = config.max_actions.max(1);
    let configured_bytes = config.max_bytes.max(1);
    let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
    let (mut pending, invalid) = partition_valid(items);
    for (pos, err) in invalid {
        outcomes[pos] = Some(ItemOutcome::Rejected {
            status: None,
            error_type: "invalid_index_name".to_owned(),
            reason: err.to_string(),
        });
    }
    let encoded = encode_items(items, &pending);
    let mut reasons: Vec<String> = vec![String::new(); items.len()];
    let mut report = BulkReport::default();
    let mut limit = SizeLimit::default();
    let max_attempts = config.max_attempts.max(1);

    for attempt in 1..=max_attempts {
        // Chunks are taken from the front of what is left, to the size known to work; a
        // chunk answered 413 is not consumed, so the next one is a smaller part of it.
        let mut cursor = 0;
        let mut retry: Vec<usize> = Vec::new();
        while cursor < pending.len() {
            let max_bytes = limit.max_bytes(configured_bytes);
            let n = take_chunk(&encoded.spans, &pending[cursor..], max_actions, max_bytes);
            let chunk = &pending[cursor..cursor + n];
            cursor += n;
            let body = encoded.body(chunk);
            let body_len = body.len();
            report.requests += 1;
            report.bytes_sent += body_len;
            match api.bulk(body).await {
                Ok(reply) if reply.items.len() == chunk.len() => {
                    limit.worked(body_len);
                    for (&pos, result) in chunk.iter().zip(reply.items) {
                        let status = result.status;
                        if (200..300).contains(&status) {
                            outcomes[pos] = Some(ItemOutcome::Delivered);
                        } else {
                            let error_type = result.error_type.unwrap_or_else(|| "unknown".into());
                            let reason = result.reason.unwrap_or_default();
                            if is_retryable_status(status) {
                                reasons[pos] =
                                    format!("item HTTP {status}: {error_type}: {reason}");
                                retry.push(pos);
                            } else {
                                outcomes[pos] = Some(ItemOutcome::Rejected {
                                    status: Some(status),
                                    error_type,
                                    reason,
                                });
                            }
                        }
                    }
                }
                Ok(reply) => {
                    // Cannot tell which item is which: resend all (at-least-once).
                    let reason = format!(
                        "bulk answer has {} items for {} actions",
                        reply.items.len(),
                        chunk.len()
                    );
                    tracing::warn!(%reason, "malformed bulk answer");
                    for &pos in chunk {
                        reasons[pos].clone_from(&reason);
                    }
                    retry.extend_from_slice(chunk);
                }
                Err(e) if e.is_too_large() => {
                    report.bytes_refused += body_len;
                    limit.refused(body_len);
                    if chunk.len() > 1 {
                        // Send it again in parts: the next chunk is built to less than this
                        // body, so it is a strict part of it, and the refused size only
                        // falls: the splitting ends.
                        cursor -= n;
                        tracing::info!(
                            refused_bytes = body_len,
                            next_bytes = limit.max_bytes(configured_bytes),
                            "bulk body too large, splitting"
                        );
                    } else {
                        for &pos in chunk {
                            outcomes[pos] = Some(ItemOutcome::Rejected {
                                status: Some(413),
                                error_type: "request_entity_too_large".to_owned(),
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, attempt, "bulk request failed, will retry");
                    let reason = e.to_string();
                    for &pos in chunk {
                        reasons[pos].clone_from(&reason);
                    }
                    retry.extend_from_slice(chunk);
                }
                Err(e) => {
                    // Auth or request errors: retrying now will not help and the records are
                    // not at fault, so report them as failed (replayed later), not rejected.
                    tracing::error!(error = %e, "bulk request refused");
                    let reason = e.to_string();
                    for &pos in chunk {
                        outcomes[pos] = Some(ItemOutcome::Failed {
                            reason: reason.clone(),
                        });
                    }
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        retry.sort_unstable();
        pending = retry;
        if attempt < max_attempts {
            tokio::time::sleep(config.backoff(attempt)).await;
        } else {
            for &pos in &pending {
                outcomes[pos] = Some(ItemOutcome::Failed {
                    reason: std::mem::take(&mut reasons[pos]),
                });
            }
        }
    }

    report.outcomes = items
        .iter()
        .zip(outcomes)
        .map(|(item, o)| {
            let outcome = o.unwrap_or_else(|| ItemOutcome::Failed {
                reason: "not sent".to_owned(),
            });
            (item.key, outcome)
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: usize, index: &str, id: Option<&str>, source: &'static [u8]) -> BulkItem<'static> {
        BulkItem {
            key,
            index: index.to_owned(),
            id: id.map(str::to_owned),
            source,
        }
    }

    #[test]
    fn encodes_ndjson_with_escaped_ids_and_single_line_sources() {
        let items = [
            item(7, "logs-a-20200101", Some("x\"y"), b"{\"a\":1}"),
            item(8, "logs-a-20200101", None, b"{\n\"b\": \"\\n\"\r\n}"),
            item(9, "logs-A-20200101", None, b"{}"),
        ];
        let enc = BulkEncoder::new(&BulkConfig::default()).encode(&items);
        assert_eq!(enc.chunks.len(), 1);
        assert_eq!(enc.chunks[0].keys, vec![7, 8]);
        assert_eq!(
            std::str::from_utf8(&enc.chunks[0].body).unwrap(),
            "{\"index\":{\"_index\":\"logs-a-20200101\",\"_id\":\"x\\\"y\"}}\n{\"a\":1}\n\
             {\"index\":{\"_index\":\"logs-a-20200101\"}}\n{ \"b\": \"\\n\"  }\n"
        );
        assert_eq!(enc.invalid.len(), 1);
        assert_eq!(enc.invalid[0].0, 9);
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let items: Vec<_> = (0..10)
            .map(|k| item(k, "i", None, b"{\"v\":123456789}"))
            .collect();
        let config = BulkConfig {
            max_actions: 3,
            ..BulkConfig::default()
        };
        let enc = BulkEncoder::new(&config).encode(&items);
        assert_eq!(
            enc.chunks.iter().map(|c| c.keys.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        let one = enc.chunks[0].body.len() / 3;
        let config = BulkConfig {
            max_bytes: one * 2 + 1,
            ..BulkConfig::default()
        };
        let enc = BulkEncoder::new(&config).encode(&items);
        assert_eq!(enc.chunks.len(), 5);
        assert!(enc.chunks.iter().all(|c| c.body.len() <= one * 2 + 1));
    }

    #[test]
    fn parses_answers_and_tolerates_string_errors() {
        let body = br#"{"took":1,"errors":true,"items":[
            {"index":{"_index":"a","status":201}},
            {"index":{"_index":"a","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},
            {"create":{"status":429,"error":"es_rejected_execution_exception"}}]}"#;
        let reply = BulkReply::parse(body).unwrap();
        assert_eq!(reply.items.len(), 3);
        assert_eq!(
            reply.items[1].error_type.as_deref(),
            Some("mapper_parsing_exception")
        );
        assert_eq!(
            reply.items[2].reason.as_deref(),
            Some("es_rejected_execution_exception")
        );
        assert!(BulkReply::parse(b"<html>").is_err());
        assert!(BulkReply::parse(br#"{"items":[{}]}"#).is_err());
    }

    #[test]
    fn doc_ids_are_deterministic_and_bounded() {
        assert_eq!(
            derive_doc_id("shard-1/49590"),
            derive_doc_id("shard-1/49590")
        );
        assert_ne!(
            derive_doc_id("shard-1/49590"),
            derive_doc_id("shard-1/49591")
        );
        assert_eq!(derive_doc_id("x").len(), 43);
        assert_eq!(doc_id_from_log_id("abc"), "abc");
        assert_eq!(doc_id_from_log_id(&"a".repeat(600)).len(), 43);
    }

    proptest::proptest! {
        /// Every body is valid NDJSON that decodes back to the items, in order, within limits.
        #[test]
        fn bodies_round_trip(
            docs in proptest::collection::vec(
                (".*", proptest::option::of(".*"), proptest::collection::btree_map("[a-z\n\"]{0,8}", ".*", 0..4), proptest::bool::ANY),
                1..30,
            ),
            max_actions in 1usize..10,
            max_bytes in 1usize..2000,
        ) {
            let sources: Vec<Vec<u8>> = docs
                .iter()
                .map(|(_, _, obj, pretty)| if *pretty {
                    serde_json::to_vec_pretty(obj).unwrap()
                } else {
                    serde_json::to_vec(obj).unwrap()
                })
                .collect();
            let items: Vec<BulkItem<'_>> = docs
                .iter()
                .zip(&sources)
                .enumerate()
                .map(|(key, ((suffix, id, _, _), src))| BulkItem {
                    key,
                    index: format!("i-{}", suffix.to_lowercase()),
                    id: id.clone(),
                    source: src,
                })
                .collect();
            let config = BulkConfig { max_actions, max_bytes, ..BulkConfig::default() };
            let enc = BulkEncoder::new(&config).encode(&items);
            let mut seen = Vec::new();
            for chunk in &enc.chunks {
                proptest::prop_assert!(chunk.keys.len() <= max_actions);
                proptest::prop_assert!(chunk.keys.len() == 1 || chunk.body.len() <= max_bytes);
                let text = std::str::from_utf8(&chunk.body).unwrap();
                let lines: Vec<&str> = text.split_terminator('\n').collect();
                proptest::prop_assert_eq!(lines.len(), chunk.keys.len() * 2);
                for (pair, &key) in lines.chunks(2).zip(&chunk.keys) {
                    let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                    proptest::prop_assert_eq!(action["index"]["_index"].as_str(), Some(items[key].index.as_str()));
                    proptest::prop_assert_eq!(action["index"]["_id"].as_str(), items[key].id.as_deref());
                    let source: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
                    proptest::prop_assert_eq!(source, serde_json::to_value(&docs[key].2).unwrap());
                }
                seen.extend(&chunk.keys);
            }
            seen.extend(enc.invalid.iter().map(|(k, _)| *k));
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..items.len()).collect::<Vec<_>>());
            for (k, _) in &enc.invalid {
                proptest::prop_assert!(validate_index_name(&items[*k].index).is_err());
            }
        }
    }

    #[test]
    fn size_limit_learns_from_answers() {
        let mut limit = SizeLimit::default();
        limit.worked(900);
        assert_eq!(
            limit.max_bytes(5000),
            5000,
            "no 413 yet: the configured size"
        );
        limit.refused(4000);
        assert_eq!(
            limit.max_bytes(5000),
            2000,
            "nothing that large worked: half"
        );
        limit.worked(3000);
        assert_eq!(
            limit.max_bytes(5000),
            3000,
            "what worked below the refused size"
        );
        limit.worked(4500);
        assert_eq!(
            limit.max_bytes(5000),
            3000,
            "above the refused size: not evidence"
        );
        limit.refused(2500);
        assert_eq!(
            limit.max_bytes(5000),
            1250,
            "a smaller refusal forgets larger successes"
        );
        assert_eq!(
            limit.max_bytes(1000),
            1000,
            "never above the configured size"
        );
    }

    /// A cluster that refuses bodies over a limit and remembers what it was sent.
    struct Limited {
        inner: crate::search::MemorySearch,
        /// (body bytes, actions, refused) per request.
        seen: std::sync::Mutex<Vec<(usize, usize, bool)>>,
    }

    #[async_trait::async_trait]
    impl SearchApi for Limited {
        async fn bulk(&self, body: Bytes) -> Result<BulkReply, crate::search::SearchError> {
            let (len, actions) = (body.len(), body.iter().filter(|&&b| b == b'\n').count() / 2);
            let answer = self.inner.bulk(body).await;
            let refused = matches!(&answer, Err(e) if e.is_too_large());
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((len, actions, refused));
            answer
        }
        async fn list_indices(&self) -> Result<Vec<String>, crate::search::SearchError> {
            self.inner.list_indices().await
        }
        async fn delete_indices(&self, names: &[String]) -> Result<(), crate::search::SearchError> {
            self.inner.delete_indices(names).await
        }
    }

    proptest::proptest! {
        /// Whatever the cluster's limit, every item ends delivered, or rejected with 413 when
        /// it is larger than the limit by itself; bodies of several items are refused only
        /// while the size that works is being found: each such refusal is smaller than the
        /// one before, and none is at or under a size that was accepted.
        #[test]
        fn a_body_limit_is_learnt_once(
            sizes in proptest::collection::vec(0usize..300, 1..120),
            max_body in 60usize..4000,
            max_actions in 1usize..50,
        ) {
            let sources: Vec<Vec<u8>> = sizes
                .iter()
                .map(|&n| format!("{{\"v\":\"{}\"}}", "x".repeat(n)).into_bytes())
                .collect();
            let items: Vec<BulkItem<'_>> = sources
                .iter()
                .enumerate()
                .map(|(key, source)| BulkItem { key, index: "i".into(), id: Some(key.to_string()), source })
                .collect();
            let api = Limited { inner: crate::search::MemorySearch::new(), seen: Default::default() };
            api.inner.set_max_body(Some(max_body));
            let config = BulkConfig { max_actions, initial_backoff_ms: 0, max_backoff_ms: 0, ..BulkConfig::default() };
            let report = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(deliver_bulk(&api, &items, &config));
            let alone = |k: usize| BulkEncoder::new(&config).encode(&items[k..=k]).chunks[0].body.len();
            for (k, outcome) in &report.outcomes {
                if alone(*k) > max_body {
                    let refused = matches!(outcome, ItemOutcome::Rejected { status: Some(413), .. });
                    proptest::prop_assert!(refused, "{:?}", outcome);
                } else {
                    proptest::prop_assert_eq!(outcome, &ItemOutcome::Delivered);
                }
            }
            proptest::prop_assert_eq!(api.inner.documents("i").len(), report.delivered());
            proptest::prop_assert_eq!(api.inner.bulk_bytes(), (report.bytes_sent, report.bytes_refused));
            let seen = api.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut last_refused = usize::MAX;
            let mut accepted = 0;
            for (len, actions, refused) in seen {
                if !refused {
                    accepted = accepted.max(len);
                } else if actions > 1 {
                    proptest::prop_assert!(len < last_refused && len > accepted);
                    last_refused = len;
                }
            }
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = BulkConfig::default();
        for attempt in 1..40 {
            let d = c.backoff(attempt).as_millis() as u64;
            let full = (200u64 << (attempt - 1).min(30)).min(10_000);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d}");
        }
    }
}
