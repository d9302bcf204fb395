//! PutRecords batching within the service limits, and retry of only the failed entries.
//!
//! [`PutRecordsBatcher::put_all`] checks every entry before sending anything, packs the entries
//! in input order into requests bounded by [`PutRecordsConfig`], sends them one after another
//! through any [`KinesisApi`], and after a partial failure sends again only the entries whose
//! error is transient, with exponential backoff and full jitter, up to
//! [`PutRecordsConfig::max_attempts`]. The [`PutOutcome`] accounts for every input index.
//!
//! Ordering: records of the first attempt reach the service in input order, but a resent entry
//! lands after entries that were accepted earlier, as with any PutRecords client. Use
//! sequence-number ordering guarantees only with one record in flight per partition key.
//!
//! ```
//! use kinesis_utils::memory::InMemoryKinesis;
//! use kinesis_utils::{PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = InMemoryKinesis::new();
//! let stream = kinesis.create_stream("forward", 2)?;
//! let batcher = PutRecordsBatcher::new(&kinesis, PutRecordsConfig::default())?;
//!
//! let entries = vec![
//!     PutEntry::with_random_key(&b"{\"a\":1}"[..]),
//!     PutEntry::new(&b"{\"b\":2}"[..], "my-key"),
//! ];
//! let outcome = batcher.put_all(&stream, entries).await?;
//! assert!(outcome.all_accepted());
//! assert_eq!(kinesis.records(&stream)?.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

#[doc(no_inline)]
pub use crate::api::{
    DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_REQUEST_BYTES, MAX_CONFIGURABLE_BYTES,
    MAX_PARTITION_KEY_CHARS, MAX_RECORDS_PER_REQUEST, MIB, RANDOM_PARTITION_KEY_CHARS,
    parse_explicit_hash_key, random_partition_key,
};
use crate::api::{
    EntryResult, KinesisApi, KinesisError, PutEntry, StreamTarget, is_retryable_entry_code,
};

/// Limits and retry policy of [`PutRecordsBatcher`].
///
/// Deserializes from e.g. JSON with every field optional (durations in milliseconds):
///
/// ```
/// use kinesis_utils::PutRecordsConfig;
/// let config: PutRecordsConfig =
///     serde_json::from_str(r#"{"max_attempts": 3, "initial_backoff_ms": 50}"#).unwrap();
/// assert_eq!(config.max_attempts, 3);
/// assert_eq!(config.initial_backoff, std::time::Duration::from_millis(50));
/// assert_eq!(config.max_records_per_request, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PutRecordsConfig {
    /// Entries per request, 1..=500. Default 500.
    pub max_records_per_request: usize,
    /// Bytes per request (data + partition keys), up to 10 MiB. Default 5 MiB.
    pub max_request_bytes: usize,
    /// Bytes per record (data + partition key), up to 10 MiB and at most
    /// `max_request_bytes`. Default 1 MiB; raise it only for streams configured for more.
    pub max_record_bytes: usize,
    /// Sends of one entry at most, including the first. Default 5.
    pub max_attempts: u32,
    /// Backoff cap before the first resend; doubles each time. Default 100 ms.
    #[serde(rename = "initial_backoff_ms", deserialize_with = "millis")]
    pub initial_backoff: Duration,
    /// Upper bound of the backoff cap. Default 5 s.
    #[serde(rename = "max_backoff_ms", deserialize_with = "millis")]
    pub max_backoff: Duration,
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

impl Default for PutRecordsConfig {
    fn default() -> Self {
        Self {
            max_records_per_request: MAX_RECORDS_PER_REQUEST,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A [`PutRecordsConfig`] value outside what the service allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PutRecords batcher configuration: {field}: {message}")]
pub struct PutConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why it is refused.
    pub message: String,
}

impl PutRecordsConfig {
    /// Sets [`Self::max_records_per_request`].
    #[must_use]
    pub fn with_max_records_per_request(mut self, n: usize) -> Self {
        self.max_records_per_request = n;
        self
    }

    /// Sets [`Self::max_request_bytes`].
    #[must_use]
    pub fn with_max_request_bytes(mut self, n: usize) -> Self {
        self.max_request_bytes = n;
        self
    }

    /// Sets [`Self::max_record_bytes`].
    #[must_use]
    pub fn with_max_record_bytes(mut self, n: usize) -> Self {
        self.max_record_bytes = n;
        self
    }

    /// Sets [`Self::max_attempts`].
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets [`Self::initial_backoff`] and [`Self::max_backoff`].
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Checks the values against the service's hard limits.
    pub fn validate(&self) -> Result<(), PutConfigError> {
        let err = |field, message: String| Err(PutConfigError { field, message });
        if !(1..=MAX_RECORDS_PER_REQUEST).contains(&self.max_records_per_request) {
            return err(
                "max_records_per_request",
                format!(
                    "{} is not within 1..={MAX_RECORDS_PER_REQUEST}",
                    self.max_records_per_request
                ),
            );
        }
        if !(1..=MAX_CONFIGURABLE_BYTES).contains(&self.max_request_bytes) {
            return err(
                "max_request_bytes",
                format!(
                    "{} is not within 1..={MAX_CONFIGURABLE_BYTES}",
                    self.max_request_bytes
                ),
            );
        }
        if !(1..=MAX_CONFIGURABLE_BYTES).contains(&self.max_record_bytes) {
            return err(
                "max_record_bytes",
                format!(
                    "{} is not within 1..={MAX_CONFIGURABLE_BYTES}",
                    self.max_record_bytes
                ),
            );
        }
        // Every valid record must fit in a request on its own.
        if self.max_record_bytes > self.max_request_bytes {
            return err(
                "max_record_bytes",
                format!(
                    "{} is larger than max_request_bytes {}",
                    self.max_record_bytes, self.max_request_bytes
                ),
            );
        }
        if self.max_attempts == 0 {
            return err(
                "max_attempts",
                "must be at least 1 (the first send)".to_owned(),
            );
        }
        if self.initial_backoff > self.max_backoff {
            return err(
                "initial_backoff_ms",
                format!(
                    "{:?} is longer than max_backoff {:?}",
                    self.initial_backoff, self.max_backoff
                ),
            );
        }
        Ok(())
    }

    /// Splits `entries` into consecutive ranges, in order, each within the request limits
    /// (count and bytes). Entries are assumed to be within the record limit; a larger one gets
    /// a request of its own.
    ///
    /// ```
    /// use kinesis_utils::{PutEntry, PutRecordsConfig};
    /// let config = PutRecordsConfig::default().with_max_records_per_request(2);
    /// let entries: Vec<_> = (0..5).map(|i| PutEntry::new(vec![0u8; 10], i.to_string())).collect();
    /// assert_eq!(config.batches(&entries), vec![0..2, 2..4, 4..5]);
    /// ```
    pub fn batches(&self, entries: &[PutEntry]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut bytes = 0usize;
        for (i, entry) in entries.iter().enumerate() {
            let size = entry.aws_size();
            let count = i - start;
            if count > 0
                && (count >= self.max_records_per_request
                    || bytes.saturating_add(size) > self.max_request_bytes)
            {
                out.push(start..i);
                start = i;
                bytes = 0;
            }
            bytes = bytes.saturating_add(size);
        }
        if start < entries.len() {
            out.push(start..entries.len());
        }
        out
    }

    /// The delay before resend number `retry` (1 for the first resend): uniformly random in
    /// `0..=min(max_backoff, initial_backoff * 2^(retry-1))` ("full jitter"), so clients that
    /// were throttled together do not come back together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let cap = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=cap_nanos))
    }
}

/// An entry refused before anything was sent; no record of the call was put.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// A record is larger than [`PutRecordsConfig::max_record_bytes`].
    #[error(
        "PutRecords to Kinesis stream {stream}: record {index} is {size} bytes (data + partition key), over the limit of {limit}; nothing was sent"
    )]
    RecordTooLarge {
        /// The stream name or ARN.
        stream: String,
        /// The index of the record in the input.
        index: usize,
        /// Its size as the service counts it.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A partition key is empty or longer than 256 Unicode characters.
    #[error(
        "PutRecords to Kinesis stream {stream}: record {index} has a partition key of {chars} characters, not within 1..=256; nothing was sent"
    )]
    InvalidPartitionKey {
        /// The stream name or ARN.
        stream: String,
        /// The index of the record in the input.
        index: usize,
        /// The key's length in Unicode characters.
        chars: usize,
    },
    /// An explicit hash key is not a decimal number in `0..2^128`.
    #[error(
        "PutRecords to Kinesis stream {stream}: record {index} has explicit hash key {key:?}, not a decimal number below 2^128; nothing was sent"
    )]
    InvalidExplicitHashKey {
        /// The stream name or ARN.
        stream: String,
        /// The index of the record in the input.
        index: usize,
        /// The offending key.
        key: String,
    },
}

/// What finally happened to one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored by the service.
    Accepted {
        /// The shard that stored it.
        shard_id: String,
        /// Its sequence number.
        sequence_number: String,
        /// How many times it was sent (1 = first time).
        attempts: u32,
    },
    /// Not stored: a final error code, or retries exhausted.
    Failed {
        /// The last error code, e.g. `ProvisionedThroughputExceededException`.
        error_code: String,
        /// The last error message.
        error_message: String,
        /// How many times it was sent.
        attempts: u32,
        /// The entry itself, so the caller can dead-letter it without keeping a copy.
        entry: PutEntry,
    },
}

impl RecordOutcome {
    /// Whether the record was stored.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// How many times the record was sent.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Accepted { attempts, .. } | Self::Failed { attempts, .. } => *attempts,
        }
    }
}

/// A record that was finally not accepted, as listed by [`PutOutcome::failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedRecord<'a> {
    /// The index of the record in the input of [`PutRecordsBatcher::put_all`].
    pub index: usize,
    /// The last error code.
    pub error_code: &'a str,
    /// The last error message.
    pub error_message: &'a str,
    /// How many times it was sent.
    pub attempts: u32,
    /// The entry.
    pub entry: &'a PutEntry,
}

/// The result of [`PutRecordsBatcher::put_all`]: one [`RecordOutcome`] per input index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutOutcome {
    records: Vec<RecordOutcome>,
    requests: u32,
}

impl PutOutcome {
    /// The outcome of every input record, indexed like the input.
    pub fn records(&self) -> &[RecordOutcome] {
        &self.records
    }

    /// The outcome of input record `index`.
    pub fn get(&self, index: usize) -> Option<&RecordOutcome> {
        self.records.get(index)
    }

    /// Consumes the outcome, returning the per-record outcomes.
    pub fn into_records(self) -> Vec<RecordOutcome> {
        self.records
    }

    /// The number of input records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there were no input records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether every record was stored.
    pub fn all_accepted(&self) -> bool {
        self.records.iter().all(RecordOutcome::is_accepted)
    }

    /// The number of records stored.
    pub fn accepted_count(&self) -> usize {
        self.records.iter().filter(|r| r.is_accepted()).count()
    }

    /// The records finally not stored, in input order, with their last error.
    pub fn failed(&self) -> impl Iterator<Item = FailedRecord<'_>> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(index, r)| match r {
                RecordOutcome::Failed {
                    error_code,
                    error_message,
                    attempts,
                    entry,
                } => Some(FailedRecord {
                    index,
                    error_code,
                    error_message,
                    attempts: *attempts,
                    entry,
                }),
                RecordOutcome::Accepted { .. } => None,
            })
    }

    /// The number of PutRecords requests sent, retries included.
    pub fn requests(&self) -> u32 {
        self.requests
    }
}

/// Sends any number of entries to a stream through a [`KinesisApi`], in requests within the
/// service limits, resending only what failed transiently. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PutRecordsBatcher<A> {
    api: A,
    config: PutRecordsConfig,
}

/// How one send of one entry ended.
enum Verdict {
    Accepted {
        shard_id: String,
        sequence_number: String,
    },
    Failed {
        code: String,
        message: String,
        retryable: bool,
    },
}

impl<A: KinesisApi> PutRecordsBatcher<A> {
    /// A batcher on `api` with `config`, refused if the config exceeds the service limits.
    pub fn new(api: A, config: PutRecordsConfig) -> Result<Self, PutConfigError> {
        config.validate()?;
        Ok(Self { api, config })
    }

    /// A batcher on `api` with the default limits (500 records, 5 MiB, 1 MiB, 5 attempts).
    pub fn with_defaults(api: A) -> Self {
        Self {
            api,
            config: PutRecordsConfig::default(),
        }
    }

    /// The client.
    pub fn api(&self) -> &A {
        &self.api
    }

    /// The configuration.
    pub fn config(&self) -> &PutRecordsConfig {
        &self.config
    }

    /// Checks every entry against the record limit and the service's key rules; the first bad
    /// one is the error.
    pub fn validate(&self, stream: &StreamTarget, entries: &[PutEntry]) -> Result<(), PutError> {
        for (index, entry) in entries.iter().enumerate() {
            let size = entry.aws_size();
            if size > self.config.max_record_bytes {
                return Err(PutError::RecordTooLarge {
                    stream: stream.to_string(),
                    index,
                    size,
                    limit: self.config.max_record_bytes,
                });
            }
            let chars = entry.partition_key.chars().count();
            if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
                return Err(PutError::InvalidPartitionKey {
                    stream: stream.to_string(),
                    index,
                    chars,
                });
            }
            if let Some(key) = &entry.explicit_hash_key
                && parse_explicit_hash_key(key).is_none()
            {
                return Err(PutError::InvalidExplicitHashKey {
                    stream: stream.to_string(),
                    index,
                    key: key.clone(),
                });
            }
        }
        Ok(())
    }

    /// Puts every entry, resending transient failures; see the [module docs](self).
    ///
    /// `Err` only when an entry is invalid, and then nothing was sent. Otherwise the outcome
    /// lists every input index as accepted or finally failed (with code, message and the
    /// number of sends); a request that failed as a whole counts as a failure of each of its
    /// entries with the request's error code.
    pub async fn put_all(
        &self,
        stream: &StreamTarget,
        entries: Vec<PutEntry>,
    ) -> Result<PutOutcome, PutError> {
        self.validate(stream, &entries)?;
        let total = entries.len();
        let mut outcomes: Vec<Option<RecordOutcome>> = (0..total).map(|_| None).collect();
        let mut requests = 0u32;
        // Parallel vectors: the input index of each pending entry, and the entries themselves
        // (contiguous, so a request is a plain slice and nothing is cloned).
        let mut pending_index: Vec<usize> = (0..total).collect();
        let mut pending: Vec<PutEntry> = entries;
        let mut attempt = 1u32;

        while !pending.is_empty() {
            let mut verdicts: Vec<Verdict> = Vec::with_capacity(pending.len());
            for range in self.config.batches(&pending) {
                let batch = &pending[range];
                requests = requests.saturating_add(1);
                let answer = self
                    .api
                    .put_records(stream, batch)
                    .await
                    .and_then(|results| {
                        if results.len() == batch.len() {
                            Ok(results)
                        } else {
                            Err(KinesisError::InvalidResponse {
                                operation: "PutRecords",
                                stream: stream.to_string(),
                                message: format!(
                                    "{} results for {} entries",
                                    results.len(),
                                    batch.len()
                                ),
                                http_status: None,
                            })
                        }
                    });
                match answer {
                    Ok(results) => {
                        tracing::debug!(
                            stream = %stream,
                            attempt,
                            entries = batch.len(),
                            failed = results.iter().filter(|r| !r.is_accepted()).count(),
                            "PutRecords answered"
                        );
                        verdicts.extend(results.into_iter().map(|r| match r {
                            EntryResult::Accepted {
                                shard_id,
                                sequence_number,
                            } => Verdict::Accepted {
                                shard_id,
                                sequence_number,
                            },
                            EntryResult::Failed {
                                error_code,
                                error_message,
                            } => Verdict::Failed {
                                retryable: is_retryable_entry_code(&error_code),
                                code: error_code,
                                message: error_message,
                            },
                        }));
                    }
                    Err(error) => {
                        tracing::warn!(
                            stream = %stream,
                            attempt,
                            entries = batch.len(),
                            retryable = error.is_retryable(),
                            error = %error,
                            "PutRecords request failed as a whole"
                        );
                        let retryable = error.is_retryable();
                        verdicts.extend(batch.iter().map(|_| Verdict::Failed {
                            code: error.code().to_owned(),
                            message: error.message().to_owned(),
                            retryable,
                        }));
                    }
                }
            }

            let mut next_index = Vec::new();
            let mut next = Vec::new();
            let mut first_retry_code: Option<String> = None;
            for ((index, entry), verdict) in pending_index.into_iter().zip(pending).zip(verdicts) {
                let outcome = match verdict {
                    Verdict::Accepted {
                        shard_id,
                        sequence_number,
                    } => RecordOutcome::Accepted {
                        shard_id,
                        sequence_number,
                        attempts: attempt,
                    },
                    Verdict::Failed {
                        code,
                        retryable: true,
                        ..
                    } if attempt < self.config.max_attempts => {
                        first_retry_code.get_or_insert(code);
                        next_index.push(index);
                        next.push(entry);
                        continue;
                    }
                    Verdict::Failed { code, message, .. } => RecordOutcome::Failed {
                        error_code: code,
                        error_message: message,
                        attempts: attempt,
                        entry,
                    },
                };
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some(outcome);
                }
            }

            if !next.is_empty() {
                let delay = self.config.backoff(attempt);
                tracing::warn!(
                    stream = %stream,
                    attempt,
                    resending = next.len(),
                    first_error_code = first_retry_code.as_deref().unwrap_or_default(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "resending PutRecords entries that failed transiently"
                );
                tokio::time::sleep(delay).await;
            }
            pending_index = next_index;
            pending = next;
            attempt = attempt.saturating_add(1);
        }

        // Every index got an outcome above; the fallback only keeps this free of panics.
        let records = outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| RecordOutcome::Failed {
                    error_code: "Unaccounted".to_owned(),
                    error_message: "no outcome was recorded for this record".to_owned(),
                    attempts: 0,
                    entry: PutEntry::new(bytes::Bytes::new(), String::new()),
                })
            })
            .collect();
        Ok(PutOutcome { records, requests })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{EntryFault, FaultyKinesis, InMemoryKinesis};
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn fast() -> PutRecordsConfig {
        PutRecordsConfig::default()
            .with_backoff(Duration::from_micros(10), Duration::from_micros(100))
    }

    fn entries(n: usize) -> Vec<PutEntry> {
        (0..n)
            .map(|i| PutEntry::new(format!("record-{i}").into_bytes(), format!("key-{i}")))
            .collect()
    }

    #[test]
    fn default_config_matches_service_limits() {
        let c = PutRecordsConfig::default();
        assert_eq!(
            (
                c.max_records_per_request,
                c.max_request_bytes,
                c.max_record_bytes
            ),
            (500, 5 * MIB, MIB)
        );
        c.validate().unwrap();
    }

    #[test]
    fn config_validation_refuses_values_beyond_service_limits() {
        let d = PutRecordsConfig::default;
        assert_eq!(
            d().with_max_records_per_request(501)
                .validate()
                .unwrap_err()
                .field,
            "max_records_per_request"
        );
        assert_eq!(
            d().with_max_records_per_request(0)
                .validate()
                .unwrap_err()
                .field,
            "max_records_per_request"
        );
        assert_eq!(
            d().with_max_request_bytes(10 * MIB + 1)
                .validate()
                .unwrap_err()
                .field,
            "max_request_bytes"
        );
        assert_eq!(
            d().with_max_record_bytes(6 * MIB)
                .validate()
                .unwrap_err()
                .field,
            "max_record_bytes"
        );
        assert_eq!(
            d().with_max_attempts(0).validate().unwrap_err().field,
            "max_attempts"
        );
        let backwards = d().with_backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(
            backwards.validate().unwrap_err().field,
            "initial_backoff_ms"
        );
        // A stream raised to 10 MiB records and requests is fine.
        d().with_max_record_bytes(10 * MIB)
            .with_max_request_bytes(10 * MIB)
            .validate()
            .unwrap();
        assert!(PutRecordsBatcher::new(InMemoryKinesis::new(), d().with_max_attempts(0)).is_err());
    }

    #[test]
    fn config_deserializes_with_defaults_and_refuses_unknown_fields() {
        let c: PutRecordsConfig =
            serde_json::from_str(r#"{"max_backoff_ms": 250, "max_record_bytes": 2097152}"#)
                .unwrap();
        assert_eq!(c.max_backoff, Duration::from_millis(250));
        assert_eq!(c.max_record_bytes, 2 * MIB);
        assert_eq!(c.max_attempts, 5);
        assert!(serde_json::from_str::<PutRecordsConfig>(r#"{"max_atempts": 3}"#).is_err());
    }

    #[test]
    fn batches_split_on_bytes_counting_partition_keys() {
        // Each entry is 90 data bytes + 10 key bytes = 100; 250 bytes fit two per request.
        let config = PutRecordsConfig::default()
            .with_max_request_bytes(250)
            .with_max_record_bytes(250);
        let e: Vec<_> = (0..5)
            .map(|i| PutEntry::new(vec![0u8; 90], format!("{i:010}")))
            .collect();
        assert_eq!(config.batches(&e), vec![0..2, 2..4, 4..5]);
        // Exactly at the limit still fits.
        let config = config
            .with_max_request_bytes(200)
            .with_max_record_bytes(200);
        assert_eq!(config.batches(&e), vec![0..2, 2..4, 4..5]);
        assert!(config.batches(&[]).is_empty());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let c = PutRecordsConfig::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(1000));
        for retry in 1..40 {
            let cap = Duration::from_millis(100 * 2u64.pow((retry - 1).min(20)))
                .min(Duration::from_millis(1000));
            assert!(c.backoff(retry) <= cap, "retry {retry}");
        }
        // Full jitter: not always the cap.
        let samples: std::collections::HashSet<_> = (0..50).map(|_| c.backoff(3)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn random_keys_are_20_alphanumerics_and_differ() {
        let a = random_partition_key();
        let b = random_partition_key();
        assert_eq!(a.chars().count(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(PutEntry::with_random_key(&b"x"[..]).partition_key.len(), 20);
    }

    #[test]
    fn explicit_hash_keys_parse_like_the_service() {
        assert_eq!(parse_explicit_hash_key("0"), Some(0));
        assert_eq!(
            parse_explicit_hash_key(&u128::MAX.to_string()),
            Some(u128::MAX)
        );
        for bad in [
            "",
            "01",
            "-1",
            "1.5",
            "abc",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(parse_explicit_hash_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn invalid_entries_are_refused_before_any_request() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            let b = PutRecordsBatcher::new(&f, fast()).unwrap();

            let mut e = entries(3);
            e[1].partition_key = String::new();
            let err = b.put_all(&s, e).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    PutError::InvalidPartitionKey {
                        index: 1,
                        chars: 0,
                        ..
                    }
                ),
                "{err:?}"
            );

            // 256 multi-byte characters are fine (the limit is in characters); 257 are not.
            let mut e = entries(3);
            e[0].partition_key = "é".repeat(256);
            e[2].partition_key = "é".repeat(257);
            let err = b.put_all(&s, e).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    PutError::InvalidPartitionKey {
                        index: 2,
                        chars: 257,
                        ..
                    }
                ),
                "{err:?}"
            );

            let mut e = entries(2);
            e[1].explicit_hash_key = Some("0042".into());
            assert!(matches!(
                b.put_all(&s, e).await,
                Err(PutError::InvalidExplicitHashKey { index: 1, .. })
            ));

            assert!(f.requests().is_empty());
            assert!(k.records(&s).unwrap().is_empty());
        });
    }

    #[test]
    fn empty_input_sends_nothing() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            let outcome = PutRecordsBatcher::with_defaults(&f)
                .put_all(&s, Vec::new())
                .await
                .unwrap();
            assert!(outcome.is_empty() && outcome.all_accepted());
            assert_eq!(outcome.requests(), 0);
            assert!(f.requests().is_empty());
        });
    }

    #[test]
    fn non_retryable_request_error_fails_every_entry_of_that_request_once() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            f.fail_next_request(KinesisError::service(
                "PutRecords",
                &s,
                "KMSAccessDeniedException",
                "no key",
            ));
            let b = PutRecordsBatcher::new(&f, fast().with_max_records_per_request(2)).unwrap();
            let outcome = b.put_all(&s, entries(5)).await.unwrap();
            // The first request (entries 0 and 1) failed for good; the others went through.
            let failed: Vec<_> = outcome
                .failed()
                .map(|r| (r.index, r.error_code, r.error_message, r.attempts))
                .collect();
            assert_eq!(
                failed,
                vec![
                    (0, "KMSAccessDeniedException", "no key", 1),
                    (1, "KMSAccessDeniedException", "no key", 1)
                ]
            );
            assert_eq!(outcome.accepted_count(), 3);
            assert_eq!(outcome.requests(), 3);
        });
    }

    #[test]
    fn retryable_request_error_resends_the_whole_batch() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            f.fail_next_request(KinesisError::Transport {
                operation: "PutRecords",
                stream: s.to_string(),
                message: "connection reset".into(),
                timed_out: false,
            });
            let outcome = PutRecordsBatcher::new(&f, fast())
                .unwrap()
                .put_all(&s, entries(3))
                .await
                .unwrap();
            assert!(outcome.all_accepted());
            assert!(outcome.records().iter().all(|r| r.attempts() == 2));
            let requests = f.requests();
            assert_eq!(requests.len(), 2);
            assert_eq!(requests[0], requests[1]);
        });
    }

    #[test]
    fn mismatched_result_count_fails_the_batch_without_resending() {
        struct Short;
        #[async_trait::async_trait]
        impl KinesisApi for Short {
            async fn put_records(
                &self,
                _: &StreamTarget,
                _: &[PutEntry],
            ) -> Result<Vec<EntryResult>, KinesisError> {
                Ok(vec![EntryResult::Accepted {
                    shard_id: "shardId-0".into(),
                    sequence_number: "1".into(),
                }])
            }
        }
        block_on(async {
            let outcome = PutRecordsBatcher::new(Short, fast())
                .unwrap()
                .put_all(&StreamTarget::name("s"), entries(2))
                .await
                .unwrap();
            assert_eq!(outcome.failed().count(), 2);
            assert!(
                outcome
                    .failed()
                    .all(|f| f.error_code == "InvalidResponse" && f.attempts == 1)
            );
        });
    }

    #[test]
    fn exhausted_retries_report_the_last_error_and_attempt_count() {
        block_on(async {
            let k = InMemoryKinesis::new();
            let s = k.create_stream("s", 1).unwrap();
            let f = FaultyKinesis::new(&k);
            f.fail_entries(|c| {
                (c.entry.partition_key == "key-1").then(EntryFault::internal_failure)
            });
            let outcome = PutRecordsBatcher::new(&f, fast().with_max_attempts(3))
                .unwrap()
                .put_all(&s, entries(3))
                .await
                .unwrap();
            let failed: Vec<_> = outcome.failed().collect();
            assert_eq!(failed.len(), 1);
            assert_eq!(
                (failed[0].index, failed[0].error_code, failed[0].attempts),
                (1, "InternalFailure", 3)
            );
            assert_eq!(failed[0].entry.partition_key, "key-1");
            assert_eq!(f.requests().len(), 3);
            assert_eq!(k.records(&s).unwrap().len(), 2);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Batches stay within both limits, cover the input in order, and never leave a
        /// request room for the next entry unused when a limit was the reason to split.
        #[test]
        fn batches_respect_limits_and_order(
            sizes in prop::collection::vec((0usize..300, 1usize..20), 0..200),
            max_records in 1usize..20,
            max_bytes in 320usize..2000,
        ) {
            let config = PutRecordsConfig::default()
                .with_max_records_per_request(max_records)
                .with_max_request_bytes(max_bytes)
                .with_max_record_bytes(320);
            let e: Vec<_> = sizes.iter().map(|&(d, k)| PutEntry::new(vec![0u8; d], "k".repeat(k))).collect();
            let batches = config.batches(&e);
            let mut next = 0;
            for (n, r) in batches.iter().enumerate() {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end > r.start);
                prop_assert!(r.len() <= max_records);
                let bytes: usize = e[r.clone()].iter().map(PutEntry::aws_size).sum();
                prop_assert!(bytes <= max_bytes);
                if let Some(following) = e.get(r.end).filter(|_| n + 1 < batches.len()) {
                    prop_assert!(r.len() == max_records || bytes + following.aws_size() > max_bytes);
                }
                next = r.end;
            }
            prop_assert_eq!(next, e.len());
        }

        /// Under random per-entry and per-request faults, every input index ends up accounted
        /// for exactly once, accepted records are stored exactly once with their own data, each
        /// request stays within the limits, and only retryable failures are resent.
        #[test]
        fn every_index_accounted_for_under_random_faults(
            n in 0usize..120,
            max_records in 1usize..40,
            max_attempts in 1u32..5,
            seed in any::<u64>(),
            request_faults in prop::collection::vec(prop::bool::ANY, 0..4),
        ) {
            block_on(async move {
                let k = InMemoryKinesis::new();
                let s = k.create_stream("s", 3).unwrap();
                let f = FaultyKinesis::new(&k);
                let rng = std::sync::Mutex::new(fastrand::Rng::with_seed(seed));
                f.fail_entries(move |_| {
                    let roll = rng.lock().unwrap().u8(0..10);
                    match roll {
                        0..=2 => Some(EntryFault::throttled()),
                        3 => Some(EntryFault::internal_failure()),
                        4 => Some(EntryFault::new("KMSNotFoundException", "gone")),
                        _ => None,
                    }
                });
                for retryable in &request_faults {
                    let code = if *retryable { "InternalFailure" } else { "AccessDeniedException" };
                    f.fail_next_request(KinesisError::service("PutRecords", &s, code, "injected"));
                }
                let config = fast().with_max_records_per_request(max_records).with_max_request_bytes(600).with_max_record_bytes(100).with_max_attempts(max_attempts);
                let input = entries(n);
                let outcome = PutRecordsBatcher::new(&f, config).unwrap().put_all(&s, input.clone()).await.unwrap();

                prop_assert_eq!(outcome.len(), n);
                let stored = k.records(&s).unwrap();
                prop_assert_eq!(stored.len(), outcome.accepted_count());
                for (i, r) in outcome.records().iter().enumerate() {
                    prop_assert!(r.attempts() >= 1 && r.attempts() <= max_attempts);
                    match r {
                        RecordOutcome::Accepted { sequence_number, .. } => {
                            let rec = stored.iter().find(|x| &x.sequence_number == sequence_number).unwrap();
                            prop_assert_eq!(&rec.data, &input[i].data);
                            prop_assert_eq!(&rec.partition_key, &input[i].partition_key);
                        }
                        RecordOutcome::Failed { error_code, attempts, entry, .. } => {
                            prop_assert_eq!(entry, &input[i]);
                            if crate::api::is_retryable_entry_code(error_code) {
                                prop_assert_eq!(*attempts, max_attempts);
                            }
                        }
                    }
                    // Sent exactly `attempts` times in total.
                    let sends = f.requests().iter().flatten().filter(|e| **e == input[i]).count();
                    prop_assert_eq!(sends, r.attempts() as usize);
                }
                for req in f.requests() {
                    prop_assert!(!req.is_empty() && req.len() <= max_records);
                    prop_assert!(req.iter().map(PutEntry::aws_size).sum::<usize>() <= 600);
                }
                Ok(())
            })?;
        }
    }
}
