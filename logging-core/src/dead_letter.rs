//! The dead letter: failed and rejected payloads, grouped by reason like the archive, each
//! line a JSON envelope with the reason, the origin and the raw payload, or the raw payload
//! alone ([`DeadLetterFormat`]).
//!
//! Groups (under the dead letter's own prefix), by [`DeadLetterGroups`]:
//!
//! | reason | `Folders` (default) | `Suffixed` (kinesis-to-s3's) | `Flat` |
//! | --- | --- | --- | --- |
//! | `unknown_type` | `{unknown_prefix}/unknown_type` | `{unknown_prefix}/unknown_type` (`…/unknown_type_no_timestamp` without a timestamp either) | none |
//! | `no_timestamp` | `{unknown_prefix}/{log_type}/no_timestamp` | `{unknown_prefix}/{log_type}_no_timestamp` | none |
//! | `bad_timestamp` | `{unknown_prefix}/{log_type}/bad_timestamp` | `{unknown_prefix}/{log_type}_bad_timestamp` | none |
//! | `undecodable` | `{unknown_prefix}/undecodable` | `{unknown_prefix}/undecodable` | none |
//! | `rejected` | `{unknown_prefix}/{log_type}/rejected` | `{unknown_prefix}/{log_type}_rejected` | none |
//!
//! Keys are `{prefix}/{group}/{%Y-%m}/{%d}/{%Y-%m-%d-%H:%M:%S}-{id}.gz` (`{prefix}/{%Y-%m}/…`
//! when flat) with the time of the group's first entry and an id derived from its origin. The
//! time is the entry's own, the first it has of: its record timestamp, its CloudWatch Logs
//! event timestamp, its Kinesis arrival time; only an event without arrival times (one made by
//! hand) falls back to the time given by the caller (the pipeline passes the batch's first
//! timestamp, else the time of processing). Every time up to the arrival time is the same in
//! whatever batch the entry arrives, so a Lambda replay, which starts at another record than
//! the first attempt, overwrites the objects it wrote before instead of adding new ones.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use kinesis_utils::Origin;
use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

use crate::classify::FailureReason;
use crate::compress::{Compression, Compressor};
use crate::destination::{CUT_AT_DEADLINE, Deadline, RetryPolicy, Stopped, join_all};
use crate::naming::{
    build_body, key_local_time, object_key_local, origin_id, with_extension, write_line,
};
use crate::schema::{KeyDates, SchemaConfig, TimeZone};
use crate::store::{ObjectStore, StoreError};

/// Configuration of a [`DeadLetter`]. Deserializable; missing fields take defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Key prefix (`FAILED_LOG_S3_PREFIX`); empty for none; surrounding `/` trimmed.
    pub prefix: String,
    /// How objects are compressed (default `gzip(6)`), as
    /// [`ObjectsConfig::compression`](crate::archive::ObjectsConfig::compression): keys end in
    /// `.gz`, `.zst` or `.ndjson`.
    pub compression: Compression,
    /// The most compression threads (default: every core; on Lambda, the function's vCPUs), as
    /// [`ObjectsConfig::compression_threads`](crate::archive::ObjectsConfig::compression_threads).
    pub compression_threads: Option<NonZeroUsize>,
    /// The chunk size of large objects (default 256 KiB), as
    /// [`ObjectsConfig::compression_chunk_size`](crate::archive::ObjectsConfig::compression_chunk_size).
    pub compression_chunk_size: Option<NonZeroUsize>,
    /// Retries of a failed put.
    pub retry: RetryPolicy,
    /// Puts in flight at once (default 8).
    pub max_concurrent_puts: usize,
    /// How key dates are taken from a timestamp (default: as written; see [`KeyDates`]).
    pub key_dates: KeyDates,
    /// The folder of each reason (default [`DeadLetterGroups::Folders`]).
    pub groups: DeadLetterGroups,
    /// What a line holds (default [`DeadLetterFormat::Envelope`]).
    pub format: DeadLetterFormat,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        let objects = crate::archive::ObjectsConfig::default();
        Self {
            prefix: objects.prefix,
            compression: objects.compression,
            compression_threads: objects.compression_threads,
            compression_chunk_size: objects.compression_chunk_size,
            retry: objects.retry,
            max_concurrent_puts: objects.max_concurrent_puts,
            key_dates: objects.key_dates,
            groups: DeadLetterGroups::default(),
            format: DeadLetterFormat::default(),
        }
    }
}

impl DeadLetterConfig {
    /// With this compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// With at most this many compression threads.
    pub fn with_compression_threads(mut self, threads: NonZeroUsize) -> Self {
        self.compression_threads = Some(threads);
        self
    }

    /// With this chunk size (`None`: objects compressed whole).
    pub fn with_compression_chunk_size(mut self, chunk_size: Option<NonZeroUsize>) -> Self {
        self.compression_chunk_size = chunk_size;
        self
    }

    /// The [`Compressor`] these settings make.
    pub fn compressor(&self) -> Compressor {
        Compressor::configured(
            self.compression,
            self.compression_threads,
            self.compression_chunk_size,
        )
    }
}

/// The folders of the dead letter, below its prefix (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterGroups {
    /// `{unknown_prefix}/{reason}` and `{unknown_prefix}/{log_type}/{reason}`.
    #[default]
    Folders,
    /// `{unknown_prefix}/{reason}` and `{unknown_prefix}/{log_type}_{reason}`: the original
    /// kinesis-to-s3 module's names (`unknown/unknown_type`, `unknown/app_no_timestamp`).
    Suffixed,
    /// No folder: `{prefix}/{%Y-%m}/{%d}/…`, as the original kinesis-to-es and
    /// kinesis-forward modules kept failures (the reason is in each envelope).
    Flat,
}

/// What one line of a dead-letter object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterFormat {
    /// A JSON envelope with the reason, code, detail, origin and payload ([`Envelope`]).
    #[default]
    Envelope,
    /// The payload alone, as the original modules' failure files held the records: written
    /// like an archive line ([`write_line`]: outer whitespace trimmed, raw line breaks turned
    /// into spaces). Exact for JSON payloads; a payload that is not JSON and holds line breaks
    /// loses them, and the reason and origin are not kept.
    Raw,
}

/// One payload for the dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterEntry<'a> {
    /// Why.
    pub reason: FailureReason,
    /// The short code refining the reason (`not_json`, `corrupt_gzip`, ...; for rejections the
    /// destination's code if it gave one, else `rejected`).
    pub code: &'a str,
    /// The explanation (for rejections, the destination's reason).
    pub detail: &'a str,
    /// The `log_type`, when known.
    pub log_type: Option<&'a str>,
    /// The destination that rejected the record (rejections only).
    pub destination: Option<&'a str>,
    /// The record's timestamp, with its offset, when known.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// The raw payload.
    pub data: &'a [u8],
    /// Where it came from.
    pub origin: &'a Origin,
}

/// One line of a dead-letter object, as written. [`EnvelopeOut::write_json`] writes it; the
/// `Serialize` derive is the reference the tests hold it to.
#[derive(Debug)]
#[cfg_attr(test, derive(Serialize))]
struct EnvelopeOut<'a> {
    reason: &'static str,
    code: &'a str,
    detail: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    log_type: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    destination: Option<&'a str>,
    origin: OriginOut<'a>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    payload: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    payload_base64: Option<String>,
}

/// The origin as written in an envelope.
#[derive(Debug)]
#[cfg_attr(test, derive(Serialize))]
struct OriginOut<'a> {
    sequence_number: &'a str,
    partition_key: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    event_id: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    sub_sequence: Option<u32>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    cwl: Option<CwlOut<'a>>,
}

#[derive(Debug)]
#[cfg_attr(test, derive(Serialize))]
struct CwlOut<'a> {
    event_id: &'a str,
    log_group: &'a str,
    log_stream: &'a str,
    timestamp_ms: i64,
}

impl<'a> OriginOut<'a> {
    fn new(o: &'a Origin) -> Self {
        Self {
            sequence_number: o.sequence_number(),
            partition_key: o.partition_key(),
            event_id: o.event_id(),
            sub_sequence: o.sub_sequence(),
            cwl: o.cwl().map(|c| CwlOut {
                event_id: c.event_id(),
                log_group: c.log_group(),
                log_stream: c.log_stream(),
                timestamp_ms: c.timestamp_ms(),
            }),
        }
    }
}

impl EnvelopeOut<'_> {
    /// The envelope as compact JSON, byte for byte what `serde_json::to_writer` writes for
    /// the derived `Serialize`, without going through serde: payloads are mostly JSON text,
    /// full of quotes to escape, which serde_json writes a few bytes per `io::Write` call.
    fn write_json(&self, out: &mut Vec<u8>) {
        json::field(out, b"{\"reason\":", self.reason);
        json::field(out, b",\"code\":", self.code);
        json::field(out, b",\"detail\":", self.detail);
        json::optional_string(out, b",\"log_type\":", self.log_type);
        json::optional_string(out, b",\"destination\":", self.destination);
        let o = &self.origin;
        json::field(out, b",\"origin\":{\"sequence_number\":", o.sequence_number);
        json::field(out, b",\"partition_key\":", o.partition_key);
        json::optional_string(out, b",\"event_id\":", o.event_id);
        if let Some(n) = o.sub_sequence {
            out.extend_from_slice(b",\"sub_sequence\":");
            json::integer(out, i64::from(n));
        }
        if let Some(c) = &o.cwl {
            json::field(out, b",\"cwl\":{\"event_id\":", c.event_id);
            json::field(out, b",\"log_group\":", c.log_group);
            json::field(out, b",\"log_stream\":", c.log_stream);
            out.extend_from_slice(b",\"timestamp_ms\":");
            json::integer(out, c.timestamp_ms);
            out.push(b'}');
        }
        out.push(b'}');
        json::optional_string(out, b",\"payload\":", self.payload);
        json::optional_string(out, b",\"payload_base64\":", self.payload_base64.as_deref());
        out.push(b'}');
    }
}

/// JSON output as serde_json writes it (compact).
mod json {
    /// What `byte` becomes inside a JSON string: 0 for itself, `u` for `\u00XX`, else the
    /// letter after the backslash (serde_json's choices).
    const ESCAPE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = b'u';
            b += 1;
        }
        t[0x08] = b'b';
        t[0x09] = b't';
        t[0x0a] = b'n';
        t[0x0c] = b'f';
        t[0x0d] = b'r';
        t[b'"' as usize] = b'"';
        t[b'\\' as usize] = b'\\';
        t
    };

    #[inline]
    fn push_escaped(out: &mut Vec<u8>, c: u8) {
        match ESCAPE[usize::from(c)] {
            0 => out.push(c),
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |n: u8| HEX[usize::from(n & 0xf)];
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(c >> 4), hex(c)]);
            }
            letter => out.extend_from_slice(&[b'\\', letter]),
        }
    }

    /// `s` as a JSON string, copying the runs between escapes whole.
    pub(super) fn string(out: &mut Vec<u8>, s: &str) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        let mut rest = s.as_bytes();
        while let Some(at) = kinesis_utils::json_cursor::find_special(rest) {
            let (run, special) = rest.split_at(at);
            out.extend_from_slice(run);
            if let Some((&c, after)) = special.split_first() {
                push_escaped(out, c);
                rest = after;
            } else {
                rest = &[];
            }
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    }

    /// `,"key":"value"` (`field` holds `,"key":`, or `{"key":` for the first).
    pub(super) fn field(out: &mut Vec<u8>, field: &[u8], value: &str) {
        out.extend_from_slice(field);
        string(out, value);
    }

    /// [`field`] when there is a value.
    pub(super) fn optional_string(out: &mut Vec<u8>, field: &[u8], value: Option<&str>) {
        if let Some(v) = value {
            self::field(out, field, v);
        }
    }

    pub(super) fn integer(out: &mut Vec<u8>, n: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if n < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[at..]);
    }
}

/// One line of a dead-letter object, read back (for tools, replays and tests).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// `unknown_type`, `no_timestamp`, `bad_timestamp`, `undecodable` or `rejected`.
    pub reason: String,
    /// The short code refining the reason.
    pub code: String,
    /// The explanation.
    pub detail: String,
    /// The `log_type`, when known.
    #[serde(default)]
    pub log_type: Option<String>,
    /// The rejecting destination, for rejections.
    #[serde(default)]
    pub destination: Option<String>,
    /// The origin: `sequence_number`, `partition_key`, `event_id`, `sub_sequence`, `cwl`, ...
    pub origin: serde_json::Value,
    /// The payload, when it is UTF-8 text.
    #[serde(default)]
    pub payload: Option<String>,
    /// The payload in standard base64, when it is not UTF-8.
    #[serde(default)]
    pub payload_base64: Option<String>,
}

/// An envelope that does not give the payload back.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The line is not an envelope.
    #[error("dead-letter line is not an envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// `payload_base64` is not base64.
    #[error("dead-letter envelope payload_base64 is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Neither `payload` nor `payload_base64` is present.
    #[error("dead-letter envelope has no payload")]
    NoPayload,
}

impl Envelope {
    /// Parses one line.
    pub fn parse(line: &[u8]) -> Result<Self, EnvelopeError> {
        Ok(serde_json::from_slice(line)?)
    }

    /// The original payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        match (&self.payload, &self.payload_base64) {
            (Some(text), _) => Ok(text.as_bytes().to_vec()),
            (None, Some(b64)) => Ok(base64::engine::general_purpose::STANDARD.decode(b64)?),
            (None, None) => Err(EnvelopeError::NoPayload),
        }
    }
}

/// What happened to each entry given to [`DeadLetter::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterReport {
    /// Per entry, in input order: `None` when written, else the error after retries.
    pub errors: Vec<Option<Arc<str>>>,
    /// The keys written.
    pub objects: Vec<String>,
}

impl DeadLetterReport {
    /// Number of entries written.
    pub fn written(&self) -> usize {
        self.errors.iter().filter(|e| e.is_none()).count()
    }

    /// Number of entries that could not be written.
    pub fn failed(&self) -> usize {
        self.errors.len() - self.written()
    }

    /// Number of entries not written because the deadline came first (among `failed`).
    pub fn cut(&self) -> usize {
        self.errors
            .iter()
            .filter(|e| e.as_deref().is_some_and(|e| e.starts_with(CUT_AT_DEADLINE)))
            .count()
    }
}

/// Writes dead-letter entries to an object store.
pub struct DeadLetter {
    store: Arc<dyn ObjectStore>,
    config: DeadLetterConfig,
    compressor: Compressor,
    unknown_prefix: String,
    zone: TimeZone,
    name: String,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

/// A [`DeadLetter`] waiting for the schema: hand it to
/// [`PipelineBuilder::dead_letter`](crate::pipeline::PipelineBuilder::dead_letter), which
/// builds it with the pipeline's schema, or build it yourself with
/// [`DeadLetterBuilder::build`].
#[derive(Debug)]
pub struct DeadLetterBuilder {
    store: Arc<dyn ObjectStore>,
    config: DeadLetterConfig,
}

impl DeadLetterBuilder {
    /// The dead letter, with `schema`'s unknown-type prefix (the first folder of every group)
    /// and zone (key dates of entries without a timestamp, and of every entry with
    /// [`KeyDates::Zone`]).
    pub fn build(self, schema: &SchemaConfig) -> DeadLetter {
        DeadLetter::with_schema(
            self.store,
            self.config,
            &schema.unknown_prefix,
            schema.time_zone,
        )
    }
}

impl DeadLetter {
    /// A dead letter in `store`, built with the schema of the pipeline it serves (see
    /// [`DeadLetterBuilder`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logging_core::{DeadLetter, DeadLetterConfig, MemoryStore, Pipeline, SchemaConfig};
    /// let store = Arc::new(MemoryStore::new());
    /// let pipeline = Pipeline::builder(SchemaConfig::default())
    ///     .dead_letter(DeadLetter::builder(store, DeadLetterConfig::default()))
    ///     .build();
    /// # let _ = pipeline;
    /// ```
    pub fn builder(store: Arc<dyn ObjectStore>, config: DeadLetterConfig) -> DeadLetterBuilder {
        DeadLetterBuilder { store, config }
    }

    fn with_schema(
        store: Arc<dyn ObjectStore>,
        config: DeadLetterConfig,
        unknown_prefix: &str,
        zone: TimeZone,
    ) -> Self {
        let prefix = config.prefix.trim_matches('/');
        let name = if prefix.is_empty() {
            format!("dead-letter:{}", store.location())
        } else {
            format!("dead-letter:{}/{prefix}", store.location())
        };
        Self {
            store,
            compressor: config.compressor(),
            config,
            unknown_prefix: unknown_prefix.to_owned(),
            zone,
            name,
        }
    }

    /// A name for reports and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &DeadLetterConfig {
        &self.config
    }

    /// The group (key path below the prefix) of an entry; empty with
    /// [`DeadLetterGroups::Flat`].
    pub fn group(&self, entry: &DeadLetterEntry<'_>) -> String {
        let u = self.unknown_prefix.trim_matches('/');
        let reason = entry.reason.as_str();
        let sep = match self.config.groups {
            DeadLetterGroups::Flat => return String::new(),
            DeadLetterGroups::Folders => '/',
            DeadLetterGroups::Suffixed => '_',
        };
        match (entry.reason, entry.log_type) {
            (FailureReason::UnknownType, _)
                if sep == '_' && entry.code == "missing_no_timestamp" =>
            {
                format!("{u}/unknown_type_no_timestamp")
            }
            (FailureReason::UnknownType | FailureReason::Undecodable, _) | (_, None) => {
                format!("{u}/{reason}")
            }
            (_, Some(t)) => format!("{u}/{t}{sep}{reason}"),
        }
    }

    /// Writes the entries, one object per group, and says which were written.
    pub async fn write(
        &self,
        entries: &[DeadLetterEntry<'_>],
        now: DateTime<Utc>,
    ) -> DeadLetterReport {
        self.write_until(entries, now, Deadline::none()).await
    }

    /// The longest [`DeadLetter::write`] can take: its put retry budget.
    pub fn retry_budget(&self) -> std::time::Duration {
        self.config.retry.budget()
    }

    /// [`DeadLetter::write`], giving up at `deadline`: entries not written by then have an
    /// error starting with [`CUT_AT_DEADLINE`].
    pub async fn write_until(
        &self,
        entries: &[DeadLetterEntry<'_>],
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> DeadLetterReport {
        let mut report = DeadLetterReport {
            errors: vec![None; entries.len()],
            objects: Vec::new(),
        };
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let g = self.group(e);
            let n = match index.get(&g) {
                Some(&n) => n,
                None => {
                    index.insert(g.clone(), groups.len());
                    groups.push((g, Vec::new()));
                    groups.len() - 1
                }
            };
            groups[n].1.push(i);
        }
        type Put<'f> =
            Pin<Box<dyn Future<Output = Result<String, Stopped<StoreError>>> + Send + 'f>>;
        let mut puts: Vec<(Vec<usize>, Put<'_>)> = Vec::with_capacity(groups.len());
        let mut encoded: Vec<(String, Vec<usize>, String)> = Vec::with_capacity(groups.len());
        let mut plains = Vec::with_capacity(groups.len());
        for (group, members) in groups {
            match self.encode(&group, entries, &members, now) {
                Ok((key, plain)) => {
                    encoded.push((group, members, key));
                    plains.push(plain);
                }
                Err(e) => {
                    let msg: Arc<str> =
                        Arc::from(format!("{}: encoding {group} failed: {e}", self.name));
                    for &m in &members {
                        report.errors[m] = Some(msg.clone());
                    }
                }
            }
        }
        // On every core, beside the other deliveries on a multi-thread runtime.
        let bodies = self.compressor.compress_all_async(plains).await;
        for ((group, members, key), body) in encoded.into_iter().zip(bodies) {
            match body {
                Ok(body) => puts.push((members, Box::pin(self.put(key, body, deadline)))),
                Err(e) => {
                    let msg: Arc<str> =
                        Arc::from(format!("{}: encoding {group} failed: {e}", self.name));
                    for &m in &members {
                        report.errors[m] = Some(msg.clone());
                    }
                }
            }
        }
        let chunk = self.config.max_concurrent_puts.max(1);
        while !puts.is_empty() {
            let rest = puts.split_off(chunk.min(puts.len()));
            let (members, futures): (Vec<_>, Vec<_>) =
                std::mem::replace(&mut puts, rest).into_iter().unzip();
            for (members, result) in members.into_iter().zip(join_all(futures).await) {
                match result {
                    Ok(key) => report.objects.push(key),
                    Err(e) => {
                        tracing::error!(dead_letter = %self.name, error = %e, "dead-letter put failed after retries");
                        let msg: Arc<str> = Arc::from(e.to_string());
                        for m in members {
                            report.errors[m] = Some(msg.clone());
                        }
                    }
                }
            }
        }
        report
    }

    fn encode(
        &self,
        group: &str,
        entries: &[DeadLetterEntry<'_>],
        members: &[usize],
        now: DateTime<Utc>,
    ) -> std::io::Result<(String, Vec<u8>)> {
        let first = members
            .first()
            .and_then(|&i| entries.get(i))
            .ok_or_else(|| std::io::Error::other("empty dead-letter group"))?;
        let time = key_local_time(
            first.timestamp,
            first.origin,
            now,
            self.zone,
            self.config.key_dates,
        );
        let key = object_key_local(&self.config.prefix, group, time, &origin_id(first.origin));
        let raw_len = members
            .iter()
            .filter_map(|&i| entries.get(i))
            .map(|e| e.data.len() + 256)
            .sum();
        let raw = self.config.format == DeadLetterFormat::Raw;
        let plain = build_body(raw_len, Compression::None, members, |w, &i| {
            let Some(e) = entries.get(i) else {
                return Ok(());
            };
            if raw {
                return write_line(w, e.data);
            }
            let text = simdutf8::basic::from_utf8(e.data).ok();
            let envelope = EnvelopeOut {
                reason: e.reason.as_str(),
                code: e.code,
                detail: e.detail,
                log_type: e.log_type,
                destination: e.destination,
                origin: OriginOut::new(e.origin),
                payload: text,
                payload_base64: match text {
                    Some(_) => None,
                    None => Some(base64::engine::general_purpose::STANDARD.encode(e.data)),
                },
            };
            envelope.write_json(w);
            w.push(b'\n');
            Ok(())
        })?;
        Ok((with_extension(key, self.config.compression), plain))
    }

    async fn put(
        &self,
        key: String,
        body: Vec<u8>,
        deadline: Deadline,
    ) -> Result<String, Stopped<StoreError>> {
        let content_type = self.config.compression.content_type();
        let body = Bytes::from(body);
        self.config
            .retry
            .run_until(deadline, || {
                self.store.put(&key, body.clone(), content_type)
            })
            .await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::origin;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Every escape class often: quotes, backslashes, control bytes, non-ASCII.
        prop_oneof![
            any::<String>(),
            "[\"\\\\\u{0}-\u{1f}\u{7f}a-z日é ]{0,40}",
            "\\{\"[a-z_]{1,8}\":\"[a-z0-9 \"\\\\\n]{0,30}\"\\}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The hand-written envelope is byte for byte serde_json's.
        #[test]
        fn envelope_json_is_serde_json(
            strings in proptest::collection::vec(text(), 12),
            present in proptest::collection::vec(any::<bool>(), 6),
            sub_sequence: u32,
            timestamp_ms: i64,
        ) {
            let s = |i: usize| strings[i].as_str();
            let some = |i: usize, v: &'static str| present[i].then_some(v);
            let envelope = EnvelopeOut {
                reason: some(0, "unknown_type").unwrap_or("rejected"),
                code: s(0),
                detail: s(1),
                log_type: present[1].then(|| s(2)),
                destination: present[2].then(|| s(3)),
                origin: OriginOut {
                    sequence_number: s(4),
                    partition_key: s(5),
                    event_id: present[3].then(|| s(6)),
                    sub_sequence: present[4].then_some(sub_sequence),
                    cwl: present[5].then(|| CwlOut {
                        event_id: s(7),
                        log_group: s(8),
                        log_stream: s(9),
                        timestamp_ms,
                    }),
                },
                payload: present[0].then(|| s(10)),
                payload_base64: (!present[0]).then(|| s(11).to_owned()),
            };
            let mut ours = Vec::new();
            envelope.write_json(&mut ours);
            let serde = serde_json::to_vec(&envelope).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
            prop_assert_eq!(ours, serde);
        }
    }

    #[test]
    fn integers_at_the_extremes() {
        for n in [0, 1, -1, 9, 10, -10, i64::MAX, i64::MIN, 1_584_154_800_000] {
            let mut out = Vec::new();
            json::integer(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
    use crate::destination::RetryPolicy;
    use crate::store::{FaultyStore, MemoryStore};
    use std::io::Read;

    fn lines(body: &[u8]) -> Vec<Envelope> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap();
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Envelope::parse(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn groups_by_reason_and_round_trips_payloads() {
        let o = origin("777").with_sub_sequence(2);
        let now = DateTime::parse_from_rfc3339("2020-03-14T12:00:00Z")
            .unwrap()
            .to_utc();
        let entry = |reason, log_type, data: &'static [u8]| DeadLetterEntry {
            reason,
            code: "c",
            detail: "d",
            log_type,
            destination: None,
            timestamp: None,
            data,
            origin: &o,
        };
        let entries = [
            entry(FailureReason::UnknownType, None, b"not json"),
            entry(
                FailureReason::NoTimestamp,
                Some("app"),
                b"{\"log_type\":\"app\"}",
            ),
            entry(FailureReason::UnknownType, None, b"\xff\x00binary"),
            entry(FailureReason::Undecodable, None, b"\x1f\x8b\x08corrupt"),
            DeadLetterEntry {
                destination: Some("es"),
                ..entry(
                    FailureReason::Rejected,
                    Some("app"),
                    "{\"é\":\"\\n\"}".as_bytes(),
                )
            },
        ];
        let store = Arc::new(MemoryStore::new());
        let dl = DeadLetter::with_schema(
            store.clone(),
            DeadLetterConfig {
                prefix: "failed".into(),
                ..DeadLetterConfig::default()
            },
            "unknown",
            TimeZone::UTC,
        );
        let report = dl.write(&entries, now).await;
        assert_eq!(report.written(), 5);
        let objects = store.snapshot();
        let keys: Vec<_> = objects.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "failed/unknown/app/no_timestamp/2020-03/14/2020-03-14-12:00:00-777-2.gz",
                "failed/unknown/app/rejected/2020-03/14/2020-03-14-12:00:00-777-2.gz",
                "failed/unknown/undecodable/2020-03/14/2020-03-14-12:00:00-777-2.gz",
                "failed/unknown/unknown_type/2020-03/14/2020-03-14-12:00:00-777-2.gz",
            ]
        );
        let unknown = lines(&objects[&keys[3]].body);
        assert_eq!(unknown.len(), 2);
        assert_eq!(unknown[0].payload.as_deref(), Some("not json"));
        assert_eq!(unknown[1].payload, None);
        assert_eq!(unknown[1].payload_bytes().unwrap(), b"\xff\x00binary");
        assert_eq!(unknown[0].origin["sequence_number"], "777");
        assert_eq!(unknown[0].origin["sub_sequence"], 2);
        let rejected = lines(&objects[&keys[1]].body);
        assert_eq!(rejected[0].destination.as_deref(), Some("es"));
        assert_eq!(
            rejected[0].payload_bytes().unwrap(),
            "{\"é\":\"\\n\"}".as_bytes()
        );
    }

    /// The original modules' layouts: kinesis-to-s3's `{type}_no_timestamp` folders and the
    /// flat one of kinesis-to-es / kinesis-forward, with envelopes or raw lines.
    #[tokio::test]
    async fn suffixed_and_flat_groups_and_raw_lines() {
        let o = origin("9");
        let now = DateTime::parse_from_rfc3339("2020-03-14T12:00:00Z")
            .unwrap()
            .to_utc();
        let entry = |reason, log_type, data: &'static [u8]| DeadLetterEntry {
            reason,
            code: "c",
            detail: "d",
            log_type,
            destination: None,
            timestamp: None,
            data,
            origin: &o,
        };
        let entries = [
            entry(FailureReason::UnknownType, None, b"{\"a\":\n1}"),
            entry(
                FailureReason::NoTimestamp,
                Some("app"),
                b"{\"log_type\":\"app\"}",
            ),
            entry(
                FailureReason::BadTimestamp,
                Some("app"),
                b"{\"log_type\":\"app\",\"time\":1}",
            ),
        ];
        let cases = [
            (
                DeadLetterGroups::Suffixed,
                vec![
                    "logs/unknown/app_bad_timestamp/2020-03/14/2020-03-14-12:00:00-9.gz",
                    "logs/unknown/app_no_timestamp/2020-03/14/2020-03-14-12:00:00-9.gz",
                    "logs/unknown/unknown_type/2020-03/14/2020-03-14-12:00:00-9.gz",
                ],
            ),
            (
                DeadLetterGroups::Flat,
                vec!["logs/2020-03/14/2020-03-14-12:00:00-9.gz"],
            ),
        ];
        for (groups, keys) in cases {
            for format in [DeadLetterFormat::Envelope, DeadLetterFormat::Raw] {
                let store = Arc::new(MemoryStore::new());
                let dl = DeadLetter::with_schema(
                    store.clone(),
                    DeadLetterConfig {
                        prefix: "logs".into(),
                        groups,
                        format,
                        ..DeadLetterConfig::default()
                    },
                    "unknown",
                    TimeZone::UTC,
                );
                assert_eq!(dl.write(&entries, now).await.written(), 3);
                let objects = store.snapshot();
                assert_eq!(objects.keys().collect::<Vec<_>>(), keys, "{groups:?}");
                let mut all = Vec::new();
                for object in objects.values() {
                    flate2::read::GzDecoder::new(&object.body[..])
                        .read_to_end(&mut all)
                        .unwrap();
                }
                let text = String::from_utf8(all).unwrap();
                match format {
                    DeadLetterFormat::Raw => {
                        let mut got: Vec<&str> = text.lines().collect();
                        got.sort_unstable();
                        assert_eq!(
                            got,
                            [
                                "{\"a\": 1}",
                                "{\"log_type\":\"app\",\"time\":1}",
                                "{\"log_type\":\"app\"}",
                            ]
                        );
                    }
                    DeadLetterFormat::Envelope => {
                        assert_eq!(text.lines().count(), 3);
                        assert!(text.lines().all(|l| Envelope::parse(l.as_bytes()).is_ok()));
                    }
                }
            }
        }
    }

    /// Every compression: keys end in its extension, objects carry its content type and read
    /// back to the same envelopes; a large group is several frames, written off the executor.
    #[tokio::test]
    async fn every_compression_names_and_reads_back() {
        let o = origin("9");
        let big = "{\"message\":\"a b c\"}".repeat(40);
        let entries: Vec<DeadLetterEntry<'_>> = (0..400)
            .map(|i| DeadLetterEntry {
                reason: FailureReason::UnknownType,
                code: "no_log_type",
                detail: "x",
                log_type: None,
                destination: None,
                timestamp: DateTime::from_timestamp(1_584_187_200 + i, 0).map(|t| t.fixed_offset()),
                data: big.as_bytes(),
                origin: &o,
            })
            .collect();
        let mut compressions = vec![
            (Compression::None, "ndjson", "application/x-ndjson"),
            (Compression::default(), "gz", "application/gzip"),
        ];
        if let Ok(zstd) = Compression::zstd(1) {
            compressions.push((zstd, "zst", "application/zstd"));
        }
        let mut plain = None;
        for (compression, extension, content_type) in compressions {
            let store = Arc::new(MemoryStore::new());
            let config = DeadLetterConfig::default()
                .with_compression(compression)
                .with_compression_chunk_size(std::num::NonZeroUsize::new(32 * 1024));
            let dl = DeadLetter::with_schema(store.clone(), config, "unknown", TimeZone::UTC);
            assert_eq!(dl.write(&entries, Utc::now()).await.written(), 400);
            let objects = store.snapshot();
            let (key, object) = objects.iter().next().unwrap();
            assert_eq!(
                key,
                &format!("unknown/unknown_type/2020-03/14/2020-03-14-12:00:00-9.{extension}")
            );
            assert_eq!(object.content_type, content_type);
            let back = match compression {
                Compression::None => object.body.to_vec(),
                Compression::Gzip(_) => {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&object.body[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
                #[cfg(feature = "zstd")]
                _ => zstd::stream::decode_all(&object.body[..]).unwrap(),
                #[cfg(not(feature = "zstd"))]
                _ => unreachable!(),
            };
            assert!(back.len() > 4 * 32 * 1024);
            match &plain {
                None => plain = Some(back),
                Some(p) => assert_eq!(&back, p, "{compression}"),
            }
        }
    }

    #[tokio::test]
    async fn a_failed_put_fails_only_its_group() {
        let o = origin("1");
        let entries = [
            DeadLetterEntry {
                reason: FailureReason::UnknownType,
                code: "not_json",
                detail: "x",
                log_type: None,
                destination: None,
                timestamp: None,
                data: b"x",
                origin: &o,
            },
            DeadLetterEntry {
                reason: FailureReason::Undecodable,
                code: "corrupt_gzip",
                detail: "x",
                log_type: None,
                destination: None,
                timestamp: None,
                data: b"y",
                origin: &o,
            },
        ];
        let store = Arc::new(FaultyStore::new(MemoryStore::new()));
        store.fail_puts("undecodable", u32::MAX);
        let dl = DeadLetter::with_schema(
            store.clone(),
            DeadLetterConfig {
                retry: RetryPolicy::none(),
                ..DeadLetterConfig::default()
            },
            "unknown",
            TimeZone::UTC,
        );
        let report = dl.write(&entries, Utc::now()).await;
        assert_eq!(report.errors[0], None);
        assert!(
            report.errors[1]
                .as_deref()
                .unwrap()
                .contains("injected fault")
        );
        assert_eq!((report.written(), report.failed()), (1, 1));
    }
}
