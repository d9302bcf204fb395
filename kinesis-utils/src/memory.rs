//! An in-memory Kinesis that behaves like the service, and wrappers that inject faults and
//! latency into any [`KinesisApi`].
//!
//! [`InMemoryKinesis`] keeps streams with shards splitting the 128-bit hash key space evenly,
//! routes each record by the MD5 of its partition key (or its explicit hash key), assigns
//! increasing sequence numbers, enforces the request limits with the service's error codes, and
//! lets tests read every stored record back. [`FaultyKinesis`] wraps any implementation to fail
//! chosen entries (e.g. `ProvisionedThroughputExceededException`) or whole requests, and
//! records every request it saw; [`WithLatency`] delays every request.
//!
//! ```
//! use kinesis_utils::memory::{EntryFault, FaultyKinesis, InMemoryKinesis};
//! use kinesis_utils::{PutEntry, PutRecordsBatcher, PutRecordsConfig};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = InMemoryKinesis::new();
//! let stream = kinesis.create_stream("s", 1)?;
//! // Throttle the entry "b" the first time it is sent.
//! let faulty = FaultyKinesis::new(&kinesis);
//! faulty.fail_entries(|call| (call.entry.data.as_ref() == b"b" && call.attempt == 1).then(EntryFault::throttled));
//!
//! let config = PutRecordsConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(5));
//! let batcher = PutRecordsBatcher::new(&faulty, config)?;
//! let entries = ["a", "b", "c"].map(|d| PutEntry::new(d.as_bytes().to_vec(), d)).to_vec();
//! let outcome = batcher.put_all(&stream, entries).await?;
//!
//! assert!(outcome.all_accepted());
//! assert_eq!(faulty.requests().len(), 2); // the second request carried only "b"
//! assert_eq!(faulty.requests()[1].len(), 1);
//! let stored: Vec<_> = kinesis.records(&stream)?.into_iter().map(|r| r.data).collect();
//! assert_eq!(stored, vec!["a", "c", "b"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use crate::api::{
    DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_REQUEST_BYTES, EntryResult, KinesisApi, KinesisError,
    MAX_PARTITION_KEY_CHARS, MAX_RECORDS_PER_REQUEST, PutEntry, StreamTarget,
    parse_explicit_hash_key,
};

/// The account and region in the ARNs of in-memory streams.
const ARN_PREFIX: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/";

/// The hash key that picks the shard of a record: the explicit hash key when given, otherwise
/// the MD5 of the partition key read as a 128-bit big-endian number, as the service does.
/// `None` when the explicit hash key is not a valid decimal below 2^128.
///
/// ```
/// use kinesis_utils::memory::hash_key;
/// // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
/// assert_eq!(hash_key("a", None), Some(0x0cc175b9c0f1b6a831c399e269772661));
/// assert_eq!(hash_key("a", Some("7")), Some(7));
/// ```
pub fn hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    match explicit_hash_key {
        Some(key) => parse_explicit_hash_key(key),
        None => Some(u128::from_be_bytes(
            Md5::digest(partition_key.as_bytes()).into(),
        )),
    }
}

/// The request limits an [`InMemoryKinesis`] enforces; the defaults are the service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Entries per PutRecords request (500).
    pub max_records_per_request: usize,
    /// Bytes per request, data plus partition keys (5 MiB).
    pub max_request_bytes: usize,
    /// Bytes per record, data plus partition key (1 MiB).
    pub max_record_bytes: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            max_records_per_request: MAX_RECORDS_PER_REQUEST,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// A shard of an in-memory stream and its hash key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// E.g. `shardId-000000000000`.
    pub shard_id: String,
    /// First hash key of the shard (inclusive).
    pub starting_hash_key: u128,
    /// Last hash key of the shard (inclusive).
    pub ending_hash_key: u128,
}

/// A record as stored by [`InMemoryKinesis`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The payload.
    pub data: Bytes,
    /// The partition key.
    pub partition_key: String,
    /// The explicit hash key, if one was given.
    pub explicit_hash_key: Option<String>,
    /// The shard that stored it.
    pub shard_id: String,
    /// Its sequence number: decimal, 56 digits like the service's (too many for `u128`),
    /// increasing in arrival order within the stream (and so within each shard); fixed width,
    /// so comparing the strings compares the numbers.
    pub sequence_number: String,
}

#[derive(Debug)]
struct Stream {
    arn: String,
    shards: Vec<ShardInfo>,
    /// Arrival order across the stream.
    records: Vec<StoredRecord>,
    next_sequence: u128,
}

/// An in-memory Kinesis data plane: streams, shards, sequence numbers and read-back.
///
/// Implements [`KinesisApi`]; see the [module docs](self) for an example with faults.
#[derive(Debug, Default)]
pub struct InMemoryKinesis {
    limits: ServiceLimits,
    streams: Mutex<BTreeMap<String, Stream>>,
}

impl InMemoryKinesis {
    /// An empty service with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty service with other limits, e.g. a record size raised to 10 MiB.
    pub fn with_limits(limits: ServiceLimits) -> Self {
        Self {
            limits,
            streams: Mutex::default(),
        }
    }

    /// The limits enforced on PutRecords.
    pub fn limits(&self) -> ServiceLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Stream>> {
        // A panic while holding the lock cannot leave a stream half-written in a way that
        // matters to a test double, so a poisoned lock is still usable.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an ACTIVE stream of `shard_count` shards splitting the hash key space evenly,
    /// and returns its ARN as a target. `ResourceInUseException` if it exists,
    /// `InvalidArgumentException` for 0 shards.
    pub fn create_stream(
        &self,
        name: &str,
        shard_count: u32,
    ) -> Result<StreamTarget, KinesisError> {
        let target = StreamTarget::name(name);
        if shard_count == 0 {
            return Err(KinesisError::service(
                "CreateStream",
                &target,
                "InvalidArgumentException",
                "ShardCount must be at least 1",
            ));
        }
        let mut streams = self.lock();
        if streams.contains_key(name) {
            return Err(KinesisError::service(
                "CreateStream",
                &target,
                "ResourceInUseException",
                format!("Stream {name} already exists"),
            ));
        }
        let arn = format!("{ARN_PREFIX}{name}");
        let stream = Stream {
            arn: arn.clone(),
            shards: split_hash_space(shard_count),
            records: Vec::new(),
            next_sequence: 0,
        };
        streams.insert(name.to_owned(), stream);
        Ok(StreamTarget::Arn(arn))
    }

    /// Deletes a stream and its records.
    pub fn delete_stream(&self, stream: &StreamTarget) -> Result<(), KinesisError> {
        let mut streams = self.lock();
        let name = resolve(&streams, stream, "DeleteStream")?;
        streams.remove(&name);
        Ok(())
    }

    /// The names of all streams, sorted.
    pub fn stream_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The shards of a stream with their hash key ranges.
    pub fn shards(&self, stream: &StreamTarget) -> Result<Vec<ShardInfo>, KinesisError> {
        let streams = self.lock();
        let name = resolve(&streams, stream, "ListShards")?;
        Ok(streams
            .get(&name)
            .map(|s| s.shards.clone())
            .unwrap_or_default())
    }

    /// Every record stored in a stream, in arrival order.
    pub fn records(&self, stream: &StreamTarget) -> Result<Vec<StoredRecord>, KinesisError> {
        let streams = self.lock();
        let name = resolve(&streams, stream, "GetRecords")?;
        Ok(streams
            .get(&name)
            .map(|s| s.records.clone())
            .unwrap_or_default())
    }

    /// The records stored in one shard, in sequence-number order.
    pub fn shard_records(
        &self,
        stream: &StreamTarget,
        shard_id: &str,
    ) -> Result<Vec<StoredRecord>, KinesisError> {
        Ok(self
            .records(stream)?
            .into_iter()
            .filter(|r| r.shard_id == shard_id)
            .collect())
    }

    /// Checks a request as the service does, before storing anything.
    fn check_request(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<(), KinesisError> {
        let invalid = |code: &str, message: String| {
            Err(KinesisError::service("PutRecords", stream, code, message))
        };
        if entries.is_empty() || entries.len() > self.limits.max_records_per_request {
            return invalid(
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and {} (got {})",
                    self.limits.max_records_per_request,
                    entries.len()
                ),
            );
        }
        for (i, entry) in entries.iter().enumerate() {
            let position = i + 1;
            if entry.aws_size() > self.limits.max_record_bytes {
                return invalid(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value at 'records.{position}.member.data' failed to satisfy constraint: Member must have length less than or equal to {}",
                        self.limits.max_record_bytes
                    ),
                );
            }
            if !(1..=MAX_PARTITION_KEY_CHARS).contains(&entry.partition_key.chars().count()) {
                return invalid(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value at 'records.{position}.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and 256"
                    ),
                );
            }
            if let Some(key) = &entry.explicit_hash_key
                && parse_explicit_hash_key(key).is_none()
            {
                return invalid(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value '{key}' at 'records.{position}.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})"
                    ),
                );
            }
        }
        let total: usize = entries.iter().map(PutEntry::aws_size).sum();
        if total > self.limits.max_request_bytes {
            return invalid(
                "InvalidArgumentException",
                format!(
                    "Records size exceeds {} bytes limit (got {total})",
                    self.limits.max_request_bytes
                ),
            );
        }
        Ok(())
    }
}

/// Splits `0..=u128::MAX` into `n` contiguous ranges of equal size (the last one absorbs the
/// remainder), as CreateStream does.
fn split_hash_space(n: u32) -> Vec<ShardInfo> {
    // floor(2^128 / n) computed without overflowing: 2^128 = u128::MAX + 1.
    let n128 = u128::from(n);
    let width = if n128 <= 1 {
        0
    } else {
        u128::MAX / n128 + u128::from(u128::MAX % n128 == n128 - 1)
    };
    (0..n)
        .map(|i| {
            let i128 = u128::from(i);
            let start = width.saturating_mul(i128);
            let end = if i + 1 == n {
                u128::MAX
            } else {
                width.saturating_mul(i128 + 1) - 1
            };
            ShardInfo {
                shard_id: format!("shardId-{i:012}"),
                starting_hash_key: start,
                ending_hash_key: end,
            }
        })
        .collect()
}

/// Finds a stream by name or ARN; `ResourceNotFoundException` naming the account's stream as
/// the service does.
fn resolve(
    streams: &BTreeMap<String, Stream>,
    target: &StreamTarget,
    operation: &'static str,
) -> Result<String, KinesisError> {
    let found = match target {
        StreamTarget::Name(name) => streams.contains_key(name.as_str()).then(|| name.clone()),
        StreamTarget::Arn(arn) => streams
            .iter()
            .find(|(_, s)| &s.arn == arn)
            .map(|(name, _)| name.clone()),
    };
    found.ok_or_else(|| {
        KinesisError::service(
            operation,
            target,
            "ResourceNotFoundException",
            format!(
                "Stream {} under account 123456789012 not found.",
                target.stream_name()
            ),
        )
    })
}

#[async_trait]
impl KinesisApi for InMemoryKinesis {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        let mut streams = self.lock();
        let name = resolve(&streams, stream, "PutRecords")?;
        self.check_request(stream, entries)?;
        let Some(state) = streams.get_mut(&name) else {
            return Err(KinesisError::service(
                "PutRecords",
                stream,
                "ResourceNotFoundException",
                "stream vanished",
            ));
        };
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            // check_request validated the explicit hash key, so this always finds a shard.
            let shard = hash_key(&entry.partition_key, entry.explicit_hash_key.as_deref())
                .and_then(|h| {
                    state
                        .shards
                        .iter()
                        .find(|s| (s.starting_hash_key..=s.ending_hash_key).contains(&h))
                });
            let Some(shard) = shard else {
                results.push(EntryResult::Failed {
                    error_code: "InternalFailure".to_owned(),
                    error_message: "no shard owns the record's hash key".to_owned(),
                });
                continue;
            };
            state.next_sequence += 1;
            let sequence_number = format!("49{:054}", state.next_sequence);
            let shard_id = shard.shard_id.clone();
            state.records.push(StoredRecord {
                data: entry.data.clone(),
                partition_key: entry.partition_key.clone(),
                explicit_hash_key: entry.explicit_hash_key.clone(),
                shard_id: shard_id.clone(),
                sequence_number: sequence_number.clone(),
            });
            results.push(EntryResult::Accepted {
                shard_id,
                sequence_number,
            });
        }
        Ok(results)
    }
}

/// A failure to answer for one entry, chosen by a [`FaultyKinesis`] rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFault {
    /// The entry error code.
    pub code: String,
    /// The entry error message.
    pub message: String,
}

impl EntryFault {
    /// A fault with any code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `ProvisionedThroughputExceededException`, as the service reports a throttled entry.
    pub fn throttled() -> Self {
        Self::new(
            "ProvisionedThroughputExceededException",
            "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012.",
        )
    }

    /// `InternalFailure`, the other transient entry error.
    pub fn internal_failure() -> Self {
        Self::new("InternalFailure", "Internal service failure.")
    }
}

/// What a [`FaultyKinesis`] entry rule sees for each entry of each request.
#[derive(Debug, Clone, Copy)]
pub struct EntryCall<'a> {
    /// The request number, from 1, counting every request the wrapper received.
    pub request: usize,
    /// The entry's position in the request, from 0.
    pub position: usize,
    /// How many times the wrapper has received this entry (same data and partition key),
    /// this time included: 1 on the first send, 2 on the first resend, ...
    pub attempt: u32,
    /// The entry.
    pub entry: &'a PutEntry,
}

type EntryRule = Box<dyn FnMut(&EntryCall<'_>) -> Option<EntryFault> + Send>;

#[derive(Default)]
struct FaultState {
    request_faults: VecDeque<KinesisError>,
    entry_rule: Option<EntryRule>,
    seen: HashMap<(Bytes, String), u32>,
    requests: Vec<Vec<PutEntry>>,
}

/// Wraps a [`KinesisApi`] to inject faults: whole-request errors from a queue, and per-entry
/// failures chosen by a rule. Entries the rule does not fail are passed on to the inner
/// implementation in one request, in order. Records every request received.
pub struct FaultyKinesis<A> {
    inner: A,
    state: Mutex<FaultState>,
}

impl<A> std::fmt::Debug for FaultyKinesis<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyKinesis").finish_non_exhaustive()
    }
}

impl<A> FaultyKinesis<A> {
    /// Wraps `inner` with no faults.
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            state: Mutex::default(),
        }
    }

    /// The wrapped implementation.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next request that has no queued error yet fail as a whole with `error`
    /// (queued: each request takes one).
    pub fn fail_next_request(&self, error: KinesisError) {
        self.lock().request_faults.push_back(error);
    }

    /// Sets the rule deciding per entry whether it fails, replacing any previous rule.
    pub fn fail_entries(
        &self,
        rule: impl FnMut(&EntryCall<'_>) -> Option<EntryFault> + Send + 'static,
    ) {
        self.lock().entry_rule = Some(Box::new(rule));
    }

    /// Every request received so far (including those failed by a fault), in order.
    pub fn requests(&self) -> Vec<Vec<PutEntry>> {
        self.lock().requests.clone()
    }
}

#[async_trait]
impl<A: KinesisApi> KinesisApi for FaultyKinesis<A> {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        // Decide everything under the lock, then release it before awaiting the inner call.
        let faults: Vec<Option<EntryFault>> = {
            let mut state = self.lock();
            state.requests.push(entries.to_vec());
            let request = state.requests.len();
            let attempts: Vec<u32> = entries
                .iter()
                .map(|e| {
                    let n = state
                        .seen
                        .entry((e.data.clone(), e.partition_key.clone()))
                        .or_insert(0);
                    *n += 1;
                    *n
                })
                .collect();
            if let Some(error) = state.request_faults.pop_front() {
                return Err(error);
            }
            match state.entry_rule.as_mut() {
                None => vec![None; entries.len()],
                Some(rule) => entries
                    .iter()
                    .zip(attempts)
                    .enumerate()
                    .map(|(position, (entry, attempt))| {
                        rule(&EntryCall {
                            request,
                            position,
                            attempt,
                            entry,
                        })
                    })
                    .collect(),
            }
        };

        let passed: Vec<PutEntry> = entries
            .iter()
            .zip(&faults)
            .filter(|(_, f)| f.is_none())
            .map(|(e, _)| e.clone())
            .collect();
        let mut inner_results = if passed.is_empty() {
            Vec::new()
        } else {
            self.inner.put_records(stream, &passed).await?
        }
        .into_iter();
        faults
            .into_iter()
            .map(|fault| match fault {
                Some(f) => Ok(EntryResult::Failed {
                    error_code: f.code,
                    error_message: f.message,
                }),
                None => inner_results
                    .next()
                    .ok_or_else(|| KinesisError::InvalidResponse {
                        operation: "PutRecords",
                        stream: stream.to_string(),
                        message: "inner implementation returned fewer results than entries"
                            .to_owned(),
                        http_status: None,
                    }),
            })
            .collect()
    }
}

/// Wraps a [`KinesisApi`] to delay every request, e.g. to exercise timeouts.
#[derive(Debug, Clone)]
pub struct WithLatency<A> {
    inner: A,
    delay: Duration,
}

impl<A> WithLatency<A> {
    /// Delays each request to `inner` by `delay`.
    pub fn new(inner: A, delay: Duration) -> Self {
        Self { inner, delay }
    }
}

#[async_trait]
impl<A: KinesisApi> KinesisApi for WithLatency<A> {
    async fn put_records(
        &self,
        stream: &StreamTarget,
        entries: &[PutEntry],
    ) -> Result<Vec<EntryResult>, KinesisError> {
        tokio::time::sleep(self.delay).await;
        self.inner.put_records(stream, entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn hash_space_split_matches_aws_boundaries() {
        let two = split_hash_space(2);
        assert_eq!(two[0].starting_hash_key, 0);
        assert_eq!(two[0].ending_hash_key, (1u128 << 127) - 1);
        assert_eq!(two[1].starting_hash_key, 1u128 << 127);
        assert_eq!(two[1].ending_hash_key, u128::MAX);
        let one = split_hash_space(1);
        assert_eq!(
            (one[0].starting_hash_key, one[0].ending_hash_key),
            (0, u128::MAX)
        );
        for n in [3u32, 7, 100] {
            let shards = split_hash_space(n);
            assert_eq!(shards.len(), n as usize);
            assert_eq!(shards[0].starting_hash_key, 0);
            assert_eq!(shards.last().unwrap().ending_hash_key, u128::MAX);
            for w in shards.windows(2) {
                assert_eq!(
                    w[0].ending_hash_key + 1,
                    w[1].starting_hash_key,
                    "contiguous for {n}"
                );
            }
        }
    }

    #[test]
    fn records_route_by_md5_and_explicit_hash_key() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 2).unwrap();
            // MD5("a") starts 0x0c: lower half. MD5("b") = 92eb5ffe...: upper half.
            let entries = vec![
                PutEntry::new(&b"1"[..], "a"),
                PutEntry::new(&b"2"[..], "b"),
                PutEntry::new(&b"3"[..], "b").explicit_hash_key("0"),
            ];
            let results = k.put_records(&s, &entries).await.unwrap();
            let shards: Vec<_> = results
                .iter()
                .map(|r| match r {
                    EntryResult::Accepted { shard_id, .. } => shard_id.as_str(),
                    EntryResult::Failed { .. } => panic!("failed: {r:?}"),
                })
                .collect();
            assert_eq!(
                shards,
                [
                    "shardId-000000000000",
                    "shardId-000000000001",
                    "shardId-000000000000"
                ]
            );
            let stored = k.records(&s).unwrap();
            assert_eq!(stored.len(), 3);
            assert!(
                stored
                    .windows(2)
                    .all(|w| w[0].sequence_number < w[1].sequence_number)
            );
            assert!(stored.iter().all(|r| r.sequence_number.len() == 56));
            assert_eq!(
                k.shard_records(&s, "shardId-000000000001").unwrap().len(),
                1
            );
        });
    }

    #[test]
    fn stream_lifecycle_and_unknown_streams() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let arn = k.create_stream("s", 1).unwrap();
            assert_eq!(arn.stream_name(), "s");
            assert_eq!(
                k.create_stream("s", 1).unwrap_err().code(),
                "ResourceInUseException"
            );
            assert_eq!(
                k.create_stream("t", 0).unwrap_err().code(),
                "InvalidArgumentException"
            );
            // Name and ARN address the same stream.
            k.put_records(&StreamTarget::name("s"), &[PutEntry::new(&b"x"[..], "k")])
                .await
                .unwrap();
            assert_eq!(k.records(&arn).unwrap().len(), 1);
            k.delete_stream(&StreamTarget::name("s")).unwrap();
            let err = k
                .put_records(&arn, &[PutEntry::new(&b"x"[..], "k")])
                .await
                .unwrap_err();
            assert_eq!(err.code(), "ResourceNotFoundException");
            assert!(!err.is_retryable());
            assert!(k.stream_names().is_empty());
        });
    }

    #[test]
    fn request_limits_are_enforced_before_storing() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let many: Vec<_> = (0..501)
                .map(|i| PutEntry::new(&b"x"[..], i.to_string()))
                .collect();
            assert_eq!(
                k.put_records(&s, &many).await.unwrap_err().code(),
                "ValidationException"
            );
            assert_eq!(
                k.put_records(&s, &[]).await.unwrap_err().code(),
                "ValidationException"
            );
            // 1 MiB of data + a 1-byte key is one byte over.
            let big = PutEntry::new(vec![0u8; DEFAULT_MAX_RECORD_BYTES], "k");
            assert_eq!(
                k.put_records(&s, &[big]).await.unwrap_err().code(),
                "ValidationException"
            );
            let six: Vec<_> = (0..6)
                .map(|i| PutEntry::new(vec![0u8; 1_000_000], i.to_string()))
                .collect();
            assert_eq!(
                k.put_records(&s, &six).await.unwrap_err().code(),
                "InvalidArgumentException"
            );
            let long_key = PutEntry::new(&b"x"[..], "k".repeat(257));
            assert_eq!(
                k.put_records(&s, &[long_key]).await.unwrap_err().code(),
                "ValidationException"
            );
            let bad_hash =
                PutEntry::new(&b"x"[..], "k").explicit_hash_key(format!("{}0", u128::MAX));
            assert_eq!(
                k.put_records(&s, &[bad_hash]).await.unwrap_err().code(),
                "ValidationException"
            );
            assert!(k.records(&s).unwrap().is_empty());
            // Raised limits let a 2 MiB record in.
            let raised = InMemoryKinesis::with_limits(ServiceLimits {
                max_record_bytes: 10 * 1024 * 1024,
                max_request_bytes: 10 * 1024 * 1024,
                ..ServiceLimits::default()
            });
            let s = raised.create_stream("s", 1).unwrap();
            raised
                .put_records(&s, &[PutEntry::new(vec![0u8; 2 * 1024 * 1024], "k")])
                .await
                .unwrap();
        });
    }

    #[test]
    fn faulty_wrapper_fails_chosen_entries_and_queued_requests() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            f.fail_entries(|c| (c.position == 1).then(EntryFault::throttled));
            f.fail_next_request(KinesisError::service(
                "PutRecords",
                &s,
                "InternalFailure",
                "boom",
            ));
            let entries: Vec<_> = ["a", "b", "c"]
                .iter()
                .map(|d| PutEntry::new(d.as_bytes().to_vec(), *d))
                .collect();
            let err = f.put_records(&s, &entries).await.unwrap_err();
            assert_eq!(err.code(), "InternalFailure");
            let results = f.put_records(&s, &entries).await.unwrap();
            assert!(results[0].is_accepted() && results[2].is_accepted());
            assert_eq!(
                results[1],
                EntryResult::Failed {
                    error_code: "ProvisionedThroughputExceededException".into(),
                    error_message: EntryFault::throttled().message
                }
            );
            let stored: Vec<_> = k
                .records(&s)
                .unwrap()
                .into_iter()
                .map(|r| r.partition_key)
                .collect();
            assert_eq!(stored, ["a", "c"]);
            assert_eq!(f.requests().len(), 2);
        });
    }

    #[test]
    fn latency_wrapper_delays() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let slow = WithLatency::new(&k, Duration::from_millis(30));
            let started = std::time::Instant::now();
            slow.put_records(&s, &[PutEntry::new(&b"x"[..], "k")])
                .await
                .unwrap();
            assert!(started.elapsed() >= Duration::from_millis(30));
        });
    }
}
