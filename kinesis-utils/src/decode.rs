//! Decoding a Lambda Kinesis batch into payloads that remember where they came from.
//!
//! Per Kinesis record, in order: base64 (raw event JSON only), KPL deaggregation, gzip
//! (bounded), CloudWatch Logs subscription envelopes, and otherwise the bytes as one payload.
//! Every record yields at least one [`Decoded`] item; a record that cannot be decoded yields a
//! [`Decoded::Failed`] with the reason and the raw bytes, and the rest of the batch decodes.
//!
//! Payload bytes are [`Bytes`] slices of shared buffers: one for the whole batch's
//! base64-decoded data (KPL user records included) and one per decompressed gzip record
//! (unescaped CloudWatch Logs messages included). Holding a payload keeps its buffer alive.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::cwl::{self, CwlError, CwlMessage, MessageRef, RawBytes};
use crate::event_scan::{Data, ScannedRecord, Sink};
use crate::gzip::{self, GzipError};
use crate::kpl;
pub use crate::origin::{CwlOrigin, Origin, RecordInfo, Records};
use crate::origin::{CwlTable, RecordRow, RecordTable};

/// One decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The bytes, exactly as the producer wrote them.
    pub data: Bytes,
    /// Where they came from.
    pub origin: Origin,
}

/// Why a record (or part of one) could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record's `data` is not valid base64.
    #[error("data is not valid base64: {message}")]
    Base64 {
        /// What the decoder reported.
        message: String,
    },
    /// gzip data that is corrupt or over the bound.
    #[error(transparent)]
    Gzip(#[from] GzipError),
    /// A CloudWatch Logs envelope that is malformed or of unknown type.
    #[error(transparent)]
    Cwl(#[from] CwlError),
}

impl DecodeError {
    /// A short stable code for reports and dead-letter grouping.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Base64 { .. } => "bad_base64",
            Self::Gzip(GzipError::Corrupt { .. }) => "corrupt_gzip",
            Self::Gzip(GzipError::TooLarge { .. }) => "gzip_too_large",
            Self::Gzip(GzipError::OutOfMemory { .. }) => "gzip_out_of_memory",
            Self::Cwl(CwlError::Malformed { .. }) => "malformed_cwl",
            Self::Cwl(CwlError::UnknownMessageType { .. }) => "unknown_cwl_message_type",
        }
    }
}

/// A record, or part of one, that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoding Kinesis record {} failed: {error}", origin.sequence_number())]
pub struct DecodeFailure {
    /// Where the bytes came from.
    pub origin: Origin,
    /// What went wrong.
    pub error: DecodeError,
    /// The bytes at the step that failed (base64 text, gzip data, or decompressed envelope).
    pub raw: Bytes,
}

/// One item of a decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A payload to process.
    Payload(Payload),
    /// A CloudWatch Logs control message (or a data message with no events): nothing to do.
    Control(Origin),
    /// Bytes that could not be decoded (boxed: failures are rare, and the box keeps every
    /// item as small as a payload).
    Failed(Box<DecodeFailure>),
}

impl Decoded {
    /// The origin of the item.
    pub fn origin(&self) -> &Origin {
        match self {
            Decoded::Payload(p) => &p.origin,
            Decoded::Control(o) => o,
            Decoded::Failed(f) => &f.origin,
        }
    }
}

/// A decoded batch: items in input order, and the records they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedBatch {
    /// Every item, in input order; each record yields at least one.
    pub items: Vec<Decoded>,
    /// The Kinesis records, indexed by [`Origin::record_index`].
    pub records: Records,
}

impl DecodedBatch {
    /// The payloads, in order.
    pub fn payloads(&self) -> impl Iterator<Item = &Payload> {
        self.items.iter().filter_map(|d| match d {
            Decoded::Payload(p) => Some(p),
            _ => None,
        })
    }

    /// The failures, in order.
    pub fn failures(&self) -> impl Iterator<Item = &DecodeFailure> {
        self.items.iter().filter_map(|d| match d {
            Decoded::Failed(f) => Some(&**f),
            _ => None,
        })
    }

    /// Number of control items.
    pub fn control_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| matches!(d, Decoded::Control(_)))
            .count()
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.payloads().map(|p| p.data.len()).sum()
    }
}

/// The whole event could not be read (so no record can be attributed).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The event is not Lambda Kinesis event JSON.
    #[error("Lambda Kinesis event JSON could not be read: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the decoder does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// Bound on the decompressed size of one gzip record (default 64 MiB).
    pub max_decompressed_bytes: usize,
    /// Expand KPL aggregated records (default true).
    pub deaggregate: bool,
    /// Decompress gzip records (default true).
    pub decompress: bool,
    /// Unpack CloudWatch Logs subscription envelopes found in gzip records (default true).
    pub cloudwatch_logs: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: gzip::DEFAULT_MAX_DECOMPRESSED_BYTES,
            deaggregate: true,
            decompress: true,
            cloudwatch_logs: true,
        }
    }
}

impl DecoderConfig {
    /// Sets the bound on decompressed bytes per gzip record.
    pub fn max_decompressed_bytes(mut self, limit: usize) -> Self {
        self.max_decompressed_bytes = limit;
        self
    }

    /// Turns KPL deaggregation on or off.
    pub fn deaggregate(mut self, on: bool) -> Self {
        self.deaggregate = on;
        self
    }

    /// Turns gzip decompression on or off.
    pub fn decompress(mut self, on: bool) -> Self {
        self.decompress = on;
        self
    }

    /// Turns CloudWatch Logs envelope handling on or off.
    pub fn cloudwatch_logs(mut self, on: bool) -> Self {
        self.cloudwatch_logs = on;
        self
    }
}

/// Decodes Lambda Kinesis events.
///
/// ```
/// use kinesis_utils::{Decoded, Decoder};
/// let event = br#"{"Records":[
///   {"eventID":"shardId-000000000000:1","kinesis":{"sequenceNumber":"1","partitionKey":"p",
///    "data":"eyJsb2dfdHlwZSI6ImFwcCJ9"}},
///   {"kinesis":{"sequenceNumber":"2","partitionKey":"p","data":"not base64!"}}]}"#;
/// let batch = Decoder::default().decode_event_json(event).unwrap();
/// let payload = batch.payloads().next().unwrap();
/// assert_eq!(&payload.data[..], br#"{"log_type":"app"}"#);
/// assert_eq!(&*payload.origin.sequence_number(), "1");
/// let failure = batch.failures().next().unwrap();
/// assert_eq!(failure.error.reason(), "bad_base64");
/// assert_eq!(&*failure.origin.sequence_number(), "2");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
}

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kinesis: RawKinesis<'a>,
}

#[derive(Deserialize)]
struct RawKinesis<'a> {
    #[serde(borrow)]
    data: RawBytes<'a>,
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Cow<'a, str>,
    #[serde(rename = "partitionKey", borrow, default)]
    partition_key: Cow<'a, str>,
    #[serde(rename = "approximateArrivalTimestamp", borrow, default)]
    arrival: Option<&'a serde_json::value::RawValue>,
}

/// `approximateArrivalTimestamp` (epoch seconds, any fraction) as milliseconds; `None` when it
/// is not a number or out of range.
fn arrival_ms(text: &[u8]) -> Option<i64> {
    exact_arrival_ms(text).or_else(|| arrival_ms_f64(text))
}

/// `digits[.d[d[d]]]` with at most 12 integer digits (Lambda's own form, `1584154800.123`),
/// in integers. Such a value is `n / 1000` for an integer `n < 2^51`, and then
/// `round(f64(n / 1000) * 1000) == n` (two roundings of relative error 2^-53 each stay under
/// half a millisecond), so this agrees with [`arrival_ms_f64`] exactly; other forms go there.
fn exact_arrival_ms(text: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr::memchr(b'.', text) {
        Some(dot) => (text.get(..dot)?, text.get(dot + 1..)?),
        None => (text, &[][..]),
    };
    if int.is_empty()
        || int.len() > 12
        || frac.len() > 3
        || (text.len() > int.len() && frac.is_empty())
    {
        return None;
    }
    let mut ms: i64 = 0;
    for &c in int.iter().chain(frac) {
        if !c.is_ascii_digit() {
            return None;
        }
        ms = ms * 10 + i64::from(c - b'0');
    }
    Some(ms * [1000, 100, 10, 1][frac.len()])
}

fn arrival_ms_f64(text: &[u8]) -> Option<i64> {
    let seconds: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    let ms = (seconds * 1000.0).round();
    // Within ±2^62 ms, far past any real date, so the conversion is exact.
    (ms.abs() < 4.6e18).then_some(ms as i64)
}

/// What the first pass keeps of each record: its origin and where its bytes are.
struct Pending {
    /// Which arena holds the data: 0, or 1 for the second half of a first pass cut in two.
    arena: usize,
    range: std::ops::Range<usize>,
    head: Head,
    base64_error: Option<String>,
    sequence_number: std::ops::Range<usize>,
    partition_key: std::ops::Range<usize>,
    event_id: Option<std::ops::Range<usize>>,
    arrival_ms: Option<i64>,
}

/// What a record's decoded data starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Neither KPL's nor gzip's magic: the data is one payload as it is.
    Plain,
    /// KPL's magic: an aggregate candidate.
    Kpl,
    /// gzip, or data that is not base64.
    Other,
}

/// What the first pass keeps of a batch: every record's data base64-decoded into one shared
/// buffer (one allocation per batch, not per record) and its origin strings into another.
#[derive(Default)]
struct Collector {
    arena: Vec<u8>,
    /// UTF-8: every piece is a `&str` or ASCII checked by the scanner.
    meta: Vec<u8>,
    pending: Vec<Pending>,
    last_partition_key: Option<std::ops::Range<usize>>,
}

impl Collector {
    fn with_capacity(event_len: usize) -> Self {
        Self {
            // Decoded data is never longer than 3/4 of the event that carries it as base64.
            arena: Vec::with_capacity(event_len / 4 * 3 + 3),
            // Origin strings are usually well under an eighth of the event.
            meta: Vec::with_capacity(event_len / 8),
            // Lambda writes over 500 bytes of JSON per record around its data, so this is an
            // upper bound for real events (a contrived one grows the `Vec` as usual).
            pending: Vec::with_capacity(event_len / 512),
            ..Self::default()
        }
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.meta.clear();
        self.pending.clear();
        self.last_partition_key = None;
    }

    fn push_meta(&mut self, text: &[u8]) -> std::ops::Range<usize> {
        let start = self.meta.len();
        self.meta.extend_from_slice(text);
        start..self.meta.len()
    }

    /// Decodes `data` onto the arena: `Some(None)` when it is base64,
    /// `Some(Some(reason))` when it is not (the text itself is kept, for the dead letter), and
    /// `None` when `strict` refuses it (see [`Collector::push`]).
    fn decode_raw(&mut self, data: &[u8], strict: bool) -> Option<Option<String>> {
        let start = self.arena.len();
        // SIMD decoding of canonical padded base64; the lenient scalar decoder only when
        // that refuses (unpadded data), so its error is the one reported.
        match base64_simd::STANDARD.decode_append(data, &mut self.arena) {
            Ok(()) => Some(None),
            Err(_) => {
                self.arena.truncate(start);
                match BASE64.decode_vec(data, &mut self.arena) {
                    Ok(()) => Some(None),
                    // The scanner's `data` is raw JSON string content, which serde's raw
                    // bytes equal unless an escape changes them.
                    Err(_) if strict && memchr::memchr(b'\\', data).is_some() => None,
                    Err(e) => {
                        // Keep the undecodable text itself for the dead letter.
                        self.arena.truncate(start);
                        self.arena.extend_from_slice(data);
                        Some(Some(e.to_string()))
                    }
                }
            }
        }
    }

    /// Adds one record. Data that is not base64 is kept as text with the reason; when
    /// `strict` (raw JSON string content from the scanner) data with an escape is refused
    /// (`false`), so that the caller starts again on the serde path.
    fn push(
        &mut self,
        event_id: Option<&[u8]>,
        sequence_number: &[u8],
        partition_key: &[u8],
        arrival: Option<&[u8]>,
        data: Data<'_>,
        strict: bool,
    ) -> bool {
        // Producers often reuse partition keys: share the last one when it repeats.
        let partition_key = match self.last_partition_key.clone() {
            Some(pk) if self.meta.get(pk.clone()) == Some(partition_key) => pk,
            _ => self.push_meta(partition_key),
        };
        self.last_partition_key = Some(partition_key.clone());
        let sequence_number = self.push_meta(sequence_number);
        let event_id = event_id.map(|e| self.push_meta(e));
        let (start, base64_error) = match data {
            // The scanner had it decoded already (canonical base64), as the arena's last bytes.
            Data::Decoded(range) => {
                debug_assert_eq!(range.end, self.arena.len());
                (range.start, None)
            }
            Data::Raw(data) => {
                let start = self.arena.len();
                match self.decode_raw(data, strict) {
                    Some(error) => (start, error),
                    None => return false,
                }
            }
        };
        // Judged now, while the bytes are in cache: the later passes then skip plain data
        // without touching the arena again.
        let head = self.arena.get(start..).unwrap_or_default();
        let head = if base64_error.is_some() {
            Head::Other
        } else if kpl::has_magic(head) {
            Head::Kpl
        } else if gzip::is_gzip(head) {
            Head::Other
        } else {
            Head::Plain
        };
        self.pending.push(Pending {
            arena: 0,
            range: start..self.arena.len(),
            head,
            base64_error,
            sequence_number,
            partition_key,
            event_id,
            arrival_ms: arrival.and_then(arrival_ms),
        });
        true
    }
}

impl<'a> Sink<'a> for Collector {
    fn record(&mut self, r: ScannedRecord<'a>) -> Option<()> {
        self.push(
            r.event_id,
            r.sequence_number,
            r.partition_key,
            r.arrival,
            r.data,
            true,
        )
        .then_some(())
    }

    fn decode_data(&mut self, src: &'a [u8]) -> Option<(usize, std::ops::Range<usize>)> {
        let start = self.arena.len();
        let len = crate::arch::decode_base64_string(src, &mut self.arena)?;
        Some((len, start..self.arena.len()))
    }

    fn mark(&self) -> usize {
        self.arena.len()
    }

    fn rewind(&mut self, mark: usize) {
        self.arena.truncate(mark);
    }
}

/// The serde_json path over the event, for any JSON the fast scanner gives up on: records
/// stream out of the parser one at a time.
struct EventSeed<'s>(&'s mut Collector);

impl<'de> serde::de::DeserializeSeed<'de> for EventSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EventSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Lambda Kinesis event object with \"Records\"")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "Records" && !seen {
                seen = true;
                map.next_value_seed(RecordsSeed(&mut *self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(serde::de::Error::missing_field("Records"))
        }
    }
}

struct RecordsSeed<'s>(&'s mut Collector);

impl<'de> serde::de::DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of Kinesis event records")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(r) = seq.next_element::<RawRecord<'de>>()? {
            self.0.push(
                r.event_id.as_deref().map(str::as_bytes),
                r.kinesis.sequence_number.as_bytes(),
                r.kinesis.partition_key.as_bytes(),
                r.kinesis.arrival.map(|a| a.get().as_bytes()),
                Data::Raw(&r.kinesis.data.0),
                false,
            );
        }
        Ok(())
    }
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Runs the second pass of [`Decoder::decode_event_json_on`] (decompression, KPL
/// deaggregation, CloudWatch Logs parsing) over parts of a batch's records, possibly side by
/// side on threads of the caller's: kinesis-utils starts no thread of its own.
///
/// `run` gets one weight per record (about the work its decoding takes) and `decode`, which
/// decodes the records of a range, in order. It returns the ranges it decoded with their
/// items. Any cut works: the batch is the same as [`Decoder::decode_event_json`]'s. Ranges
/// should tile `0..weights.len()` in order; a record no returned range covers is decoded by
/// the caller afterwards, and a range that overlaps an earlier one is dropped, so a faulty
/// runner costs time but loses and duplicates nothing.
///
/// ```
/// use std::ops::Range;
/// use kinesis_utils::decode::DecodeRunner;
/// use kinesis_utils::{Decoded, Decoder};
///
/// /// Two halves, one after the other (a real runner hands them to two threads).
/// struct Halves;
/// impl DecodeRunner for Halves {
///     fn run(
///         &self,
///         weights: &[usize],
///         decode: &(dyn Fn(Range<usize>) -> Vec<Decoded> + Sync),
///     ) -> Vec<(Range<usize>, Vec<Decoded>)> {
///         let mid = weights.len() / 2;
///         vec![(0..mid, decode(0..mid)), (mid..weights.len(), decode(mid..weights.len()))]
///     }
/// }
///
/// let event = br#"{"Records":[
///   {"kinesis":{"sequenceNumber":"1","partitionKey":"p","data":"eyJsb2dfdHlwZSI6ImFwcCJ9"}},
///   {"kinesis":{"sequenceNumber":"2","partitionKey":"p","data":"e30="}}]}"#;
/// let decoder = Decoder::default();
/// let halves = decoder.decode_event_json_on(event, &Halves).unwrap();
/// assert_eq!(halves, decoder.decode_event_json(event).unwrap());
/// ```
pub trait DecodeRunner {
    /// `decode` over ranges of `0..weights.len()`, each range with its items.
    fn run(
        &self,
        weights: &[usize],
        decode: &(dyn Fn(std::ops::Range<usize>) -> Vec<Decoded> + Sync),
    ) -> Vec<(std::ops::Range<usize>, Vec<Decoded>)>;

    /// How many threads the runner works on (default 1). From 2 on, the decoder also cuts a
    /// large event's first pass (its JSON, the base64 `data`) in two and hands both halves
    /// to [`DecodeRunner::join`].
    fn threads(&self) -> usize {
        1
    }

    /// Runs `first` and `second`, side by side if the runner can, and returns when both are
    /// done (default: one after the other). A runner that leaves one undone costs the
    /// decoder a sequential pass, never a record.
    fn join(&self, first: &mut (dyn FnMut() + Send), second: &mut (dyn FnMut() + Send)) {
        first();
        second();
    }
}

/// Two threads' worth of first pass, run one after the other, with a fault: `0` as asked,
/// `1` the second half first, `2` the first half twice, `3` the second half left undone,
/// `4` the first half left undone, `5` neither done.
#[cfg(any(test, fuzzing))]
pub(crate) struct Joiner(pub(crate) u8);

#[cfg(any(test, fuzzing))]
impl DecodeRunner for Joiner {
    fn run(
        &self,
        weights: &[usize],
        decode: &(dyn Fn(std::ops::Range<usize>) -> Vec<Decoded> + Sync),
    ) -> Vec<(std::ops::Range<usize>, Vec<Decoded>)> {
        InPlace.run(weights, decode)
    }

    fn threads(&self) -> usize {
        2
    }

    fn join(&self, first: &mut (dyn FnMut() + Send), second: &mut (dyn FnMut() + Send)) {
        match self.0 % 6 {
            0 => {
                first();
                second();
            }
            1 => {
                second();
                first();
            }
            2 => {
                first();
                second();
                first();
            }
            3 => first(),
            4 => second(),
            _ => {}
        }
    }
}

/// Events from this size on may have their first pass cut in two (see
/// [`DecodeRunner::threads`]); below it the second thread costs more than it saves.
const SPLIT_FROM: usize = 1024 * 1024;

/// The runner of [`Decoder::decode_event_json`]: every record on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct InPlace;

impl DecodeRunner for InPlace {
    fn run(
        &self,
        weights: &[usize],
        decode: &(dyn Fn(std::ops::Range<usize>) -> Vec<Decoded> + Sync),
    ) -> Vec<(std::ops::Range<usize>, Vec<Decoded>)> {
        vec![(0..weights.len(), decode(0..weights.len()))]
    }
}

impl Decoder {
    /// A decoder with this configuration.
    pub fn new(config: DecoderConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Decodes the raw Lambda event JSON bytes as the runtime hands them over.
    ///
    /// Bad base64 in one record is a failure of that record; only JSON that is not a Kinesis
    /// event at all is an error for the whole batch.
    pub fn decode_event_json(&self, event: &[u8]) -> Result<DecodedBatch, EventError> {
        self.decode_event_json_with(event, true, &InPlace)
    }

    /// [`Decoder::decode_event_json`], with the records' decompression, deaggregation and
    /// CloudWatch Logs parsing run by `runner` (for example on several threads). The result
    /// is the same whatever the runner.
    pub fn decode_event_json_on(
        &self,
        event: &[u8],
        runner: &dyn DecodeRunner,
    ) -> Result<DecodedBatch, EventError> {
        self.decode_event_json_with(event, true, runner)
    }

    /// [`Decoder::decode_event_json`] on serde_json alone, for differential fuzzing.
    #[cfg(fuzzing)]
    pub fn decode_event_json_serde_only(&self, event: &[u8]) -> Result<DecodedBatch, EventError> {
        self.decode_event_json_with(event, false, &InPlace)
    }

    /// The first pass over `event`: every record's origin strings and base64-decoded data, in
    /// one collector, or two when the halves before and after `stop` were read side by side
    /// by `runner` (the second's records follow the first's). The fast scanner when
    /// `try_fast` and it accepts the event, else serde_json. A `stop` that is not where a
    /// record starts costs the second half's work and nothing else: the first half reads on.
    fn first_pass(
        event: &[u8],
        try_fast: bool,
        runner: &dyn DecodeRunner,
        stop: Option<usize>,
    ) -> Result<(Collector, Option<Collector>), EventError> {
        use crate::event_scan::{Scanned, scan_from, scan_until};
        if try_fast && let Some(stop) = stop.filter(|&s| s < event.len()) {
            let mut first = Collector::with_capacity(stop);
            let mut second = Collector::with_capacity(event.len().saturating_sub(stop));
            let (mut first_done, mut second_done) = (None, None);
            runner.join(
                &mut || {
                    first.clear();
                    first_done = Some(scan_until(event, &mut first, Some(stop)));
                },
                &mut || {
                    second.clear();
                    second_done = Some(scan_from(event, stop, &mut second));
                },
            );
            // What the runner left undone is done here.
            let first_done = first_done.unwrap_or_else(|| {
                first.clear();
                scan_until(event, &mut first, Some(stop))
            });
            match first_done {
                // The stop was not between two records: the first half read it all.
                Some(Scanned::Whole(_)) => return Ok((first, None)),
                Some(Scanned::Stopped(_)) => {
                    let second_done = second_done.unwrap_or_else(|| {
                        second.clear();
                        scan_from(event, stop, &mut second)
                    });
                    if second_done.is_some() {
                        return Ok((first, Some(second)));
                    }
                }
                None => {}
            }
            first.clear();
            return Self::serde_pass(event, first).map(|c| (c, None));
        }
        let mut c = Collector::with_capacity(event.len());
        if try_fast && crate::event_scan::scan(event, &mut c).is_some() {
            return Ok((c, None));
        }
        c.clear();
        Self::serde_pass(event, c).map(|c| (c, None))
    }

    /// The first pass on serde_json, which accepts all of JSON and reports errors.
    fn serde_pass(event: &[u8], mut c: Collector) -> Result<Collector, EventError> {
        let mut de = serde_json::Deserializer::from_slice(event);
        serde::de::DeserializeSeed::deserialize(EventSeed(&mut c), &mut de)?;
        de.end()?;
        Ok(c)
    }

    /// [`Decoder::decode_event_json`] with its first pass cut in two at `stop` and both
    /// halves run on the calling thread, for differential fuzzing of the cut.
    #[cfg(fuzzing)]
    pub fn decode_event_json_cut_at(
        &self,
        event: &[u8],
        stop: usize,
    ) -> Result<DecodedBatch, EventError> {
        self.decode_with_stop(event, true, &Joiner(0), Some(stop))
    }

    fn decode_event_json_with(
        &self,
        event: &[u8],
        try_fast: bool,
        runner: &dyn DecodeRunner,
    ) -> Result<DecodedBatch, EventError> {
        let stop = (try_fast && runner.threads() > 1 && event.len() >= SPLIT_FROM)
            .then(|| crate::event_scan::split_candidate(event))
            .flatten();
        self.decode_with_stop(event, try_fast, runner, stop)
    }

    /// [`Decoder::decode_event_json_with`] with the first pass cut in two at `stop` (see
    /// [`Decoder::first_pass`]).
    fn decode_with_stop(
        &self,
        event: &[u8],
        try_fast: bool,
        runner: &dyn DecodeRunner,
        stop: Option<usize>,
    ) -> Result<DecodedBatch, EventError> {
        let (c, second) = Self::first_pass(event, try_fast, runner, stop)?;
        let Collector {
            arena,
            mut meta,
            mut pending,
            ..
        } = c;
        let mut arenas = vec![Bytes::from(arena)];
        if let Some(second) = second {
            // The second half's origin strings after the first's, and its data in an arena
            // of its own (no copy).
            let shift = meta.len();
            let shifted = |r: std::ops::Range<usize>| r.start + shift..r.end + shift;
            meta.extend_from_slice(&second.meta);
            pending.extend(second.pending.into_iter().map(|p| Pending {
                arena: 1,
                sequence_number: shifted(p.sequence_number),
                partition_key: shifted(p.partition_key),
                event_id: p.event_id.map(shifted),
                ..p
            }));
            arenas.push(Bytes::from(second.arena));
        }
        // The records' data tile each arena: a record read in part and then again left
        // nothing behind.
        debug_assert!(arenas.iter().enumerate().all(|(a, bytes)| {
            pending
                .iter()
                .filter(|p| p.arena == a)
                .try_fold(0, |end, p| (p.range.start == end).then_some(p.range.end))
                == Some(bytes.len())
        }));
        // Whole `&str`s and checked ASCII, so UTF-8 and every range on char boundaries.
        let rows = pending
            .iter()
            .enumerate()
            .map(|(record_index, p)| RecordRow {
                record_index,
                sequence_number: p.sequence_number.clone(),
                partition_key: p.partition_key.clone(),
                event_id: p.event_id.clone(),
                arrival_ms: p.arrival_ms,
                data_len: if p.base64_error.is_some() {
                    0
                } else {
                    p.range.len()
                },
            })
            .collect();
        let table = Arc::new(RecordTable {
            text: String::from_utf8(meta).unwrap_or_default(),
            rows,
        });
        let decode = |range: std::ops::Range<usize>| -> Vec<Decoded> {
            let start = range.start;
            let part = pending.get(range).unwrap_or_default();
            let digests_ok = self.check_kpl_digests(&arenas, part);
            let mut items = Vec::with_capacity(part.len());
            for (i, p) in part.iter().enumerate() {
                let origin = Origin::of_row(&table, start + i);
                let data = arenas
                    .get(p.arena)
                    .map(|a| a.slice(p.range.clone()))
                    .unwrap_or_default();
                match &p.base64_error {
                    None if p.head == Head::Plain => {
                        items.push(Decoded::Payload(Payload { data, origin }));
                    }
                    None => {
                        let digest_ok = digests_ok.get(i).copied().flatten();
                        self.decode_data_with(data, origin, digest_ok, &mut items);
                    }
                    Some(message) => {
                        items.push(Decoded::Failed(Box::new(DecodeFailure {
                            origin,
                            error: DecodeError::Base64 {
                                message: message.clone(),
                            },
                            raw: data,
                        })));
                    }
                }
            }
            items
        };
        // About the work each record takes: plain data only becomes an item; gzip inflates
        // (CloudWatch Logs about tenfold) and is parsed.
        let weights: Vec<usize> = pending
            .iter()
            .map(|p| match (p.head, &p.base64_error) {
                (Head::Plain, _) | (_, Some(_)) => 1,
                (Head::Kpl, None) => p.range.len(),
                (Head::Other, None) => p.range.len() * 8,
            })
            .collect();
        let mut parts = runner.run(&weights, &decode);
        parts.sort_by_key(|(range, _)| range.start);
        let mut items = Vec::with_capacity(pending.len());
        let mut next = 0;
        for (range, part) in parts {
            if range.start < next || range.end > pending.len() || range.is_empty() {
                continue;
            }
            if range.start > next {
                items.extend(decode(next..range.start));
            }
            items.extend(part);
            next = range.end;
        }
        if next < pending.len() {
            items.extend(decode(next..pending.len()));
        }
        Ok(DecodedBatch {
            items,
            records: Records::new(Arc::clone(&table)),
        })
    }

    /// Decodes an `aws_lambda_events` Kinesis event (its data is already base64-decoded).
    #[cfg(feature = "lambda-events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda-events")))]
    pub fn decode_event(
        &self,
        event: aws_lambda_events::event::kinesis::KinesisEvent,
    ) -> DecodedBatch {
        let mut table = RecordTable::default();
        let mut data = Vec::with_capacity(event.records.len());
        for (record_index, r) in event.records.into_iter().enumerate() {
            let row = RecordRow {
                record_index,
                sequence_number: table.push_text(&r.kinesis.sequence_number),
                partition_key: table.push_text(&r.kinesis.partition_key),
                event_id: r.event_id.as_deref().map(|e| table.push_text(e)),
                arrival_ms: Some(r.kinesis.approximate_arrival_timestamp.0.timestamp_millis()),
                data_len: r.kinesis.data.0.len(),
            };
            table.rows.push(row);
            data.push(Bytes::from(r.kinesis.data.0));
        }
        let table = Arc::new(table);
        let mut batch = DecodedBatch {
            items: Vec::with_capacity(data.len()),
            records: Records::new(Arc::clone(&table)),
        };
        for (record_index, data) in data.into_iter().enumerate() {
            self.decode_data(data, Origin::of_row(&table, record_index), &mut batch.items);
        }
        batch
    }

    /// Decodes one record's data (already base64-decoded), appending its items to `out`.
    ///
    /// This is the building block for callers with their own record source (for example
    /// records read back with `GetRecords`).
    pub fn decode_data(&self, data: Bytes, origin: Origin, out: &mut Vec<Decoded>) {
        self.decode_data_with(data, origin, None, out);
    }

    /// Whether each record's KPL digest matches (`None`: not an aggregate candidate), with
    /// all of the batch's aggregates hashed side by side.
    fn check_kpl_digests(&self, arenas: &[Bytes], pending: &[Pending]) -> Vec<Option<bool>> {
        if !self.config.deaggregate {
            return Vec::new();
        }
        if !pending.iter().any(|p| p.head == Head::Kpl) {
            return Vec::new();
        }
        let mut result = vec![None; pending.len()];
        let candidates: Vec<(usize, &[u8], &[u8])> = pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.head == Head::Kpl)
            .filter_map(|(i, p)| {
                let data = arenas.get(p.arena)?.get(p.range.clone())?;
                let (body, digest) = kpl::body_and_digest(data)?;
                Some((i, body, digest))
            })
            .collect();
        let bodies: Vec<&[u8]> = candidates.iter().map(|c| c.1).collect();
        for ((i, _, claimed), digest) in candidates.iter().zip(crate::arch::md5_digests(&bodies)) {
            result[*i] = Some(digest.as_slice() == *claimed);
        }
        result
    }

    /// [`Decoder::decode_data`], with the KPL digest comparison already made when known.
    fn decode_data_with(
        &self,
        data: Bytes,
        origin: Origin,
        digest_ok: Option<bool>,
        out: &mut Vec<Decoded>,
    ) {
        // An aggregate with no user records passes through, so it is not lost.
        if self.config.deaggregate
            && kpl::has_magic(&data)
            && let Some(users) = match digest_ok {
                Some(ok) => kpl::deaggregate_data_prechecked(&data, ok),
                None => kpl::deaggregate_data(&data),
            }
            .filter(|u| !u.is_empty())
        {
            // Most user records are one item each: grow the batch once, not by doubling.
            out.reserve(users.len());
            for (i, user) in users.into_iter().enumerate() {
                let o = origin
                    .clone()
                    .with_sub_sequence(u32::try_from(i).unwrap_or(u32::MAX));
                self.decode_user_record(user, o, out);
            }
            return;
        }
        self.decode_user_record(data, origin, out);
    }

    fn decode_user_record(&self, data: Bytes, origin: Origin, out: &mut Vec<Decoded>) {
        if !(self.config.decompress && gzip::is_gzip(&data)) {
            out.push(Decoded::Payload(Payload { data, origin }));
            return;
        }
        let plain = match gzip::gunzip_bounded(&data, self.config.max_decompressed_bytes) {
            Ok(plain) => Bytes::from(plain),
            Err(e) => {
                out.push(Decoded::Failed(Box::new(DecodeFailure {
                    origin,
                    error: e.into(),
                    raw: data,
                })));
                return;
            }
        };
        if !self.config.cloudwatch_logs {
            out.push(Decoded::Payload(Payload {
                data: plain,
                origin,
            }));
            return;
        }
        // Unescaped messages are never longer than the envelope: one allocation, if the
        // allocator grants it (the buffer grows as needed otherwise).
        let mut unescaped = Vec::new();
        let _ = unescaped.try_reserve_exact(plain.len());
        match cwl::parse_into(&plain, &mut unescaped) {
            Ok(None) => out.push(Decoded::Payload(Payload {
                data: plain.clone(),
                origin,
            })),
            Ok(Some(CwlMessage::Control)) => out.push(Decoded::Control(origin)),
            Ok(Some(CwlMessage::Data {
                log_group,
                log_stream,
                events,
                ..
            })) => {
                if events.is_empty() {
                    out.push(Decoded::Control(origin));
                    return;
                }
                // The envelope's strings in one shared table: group, stream, then event ids.
                let envelope = Arc::new(CwlTable::new(
                    &log_group,
                    &log_stream,
                    events.iter().map(|e| &*e.id),
                ));
                let unescaped = Bytes::from(unescaped);
                out.reserve(events.len());
                for (n, event) in events.into_iter().enumerate() {
                    let data = match event.message {
                        MessageRef::Borrowed(s) => plain.slice_ref(s),
                        MessageRef::Arena(r) => unescaped.slice(r),
                    };
                    let cwl = CwlOrigin::of_event(&envelope, n, event.timestamp);
                    out.push(Decoded::Payload(Payload {
                        data,
                        origin: origin.clone().with_cwl(cwl),
                    }));
                }
            }
            Err(e) => out.push(Decoded::Failed(Box::new(DecodeFailure {
                origin,
                error: e.into(),
                raw: plain.clone(),
            }))),
        }
    }
}

/// Compares two Kinesis sequence numbers (decimal integers of up to 128 bits) numerically.
///
/// ```
/// use std::cmp::Ordering;
/// use kinesis_utils::decode::cmp_sequence_numbers;
/// assert_eq!(cmp_sequence_numbers("9", "10"), Ordering::Less);
/// assert_eq!(cmp_sequence_numbers("0010", "10"), Ordering::Equal);
/// ```
pub fn cmp_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod scan_equivalence {
    //! The fast scanner and serde_json must agree on every event, valid or not.
    use super::*;
    use proptest::prelude::*;

    fn both(event: &[u8]) -> (String, String) {
        let d = Decoder::default();
        let show = |r: Result<DecodedBatch, EventError>| match r {
            Ok(b) => format!("{b:?}"),
            Err(e) => format!("error: {e}"),
        };
        (
            show(d.decode_event_json_with(event, true, &InPlace)),
            show(d.decode_event_json_with(event, false, &InPlace)),
        )
    }

    fn ws() -> impl Strategy<Value = String> {
        prop_oneof![4 => Just(String::new()), 1 => "[ \t\r\n]{1,3}"]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-zA-Z0-9:._-]{0,12}",
            1 => "[a-z\\\\\"/\u{e5}\u{65e5}\u{1}]{0,4}",
            1 => Just("\\u0041".to_string()),
        ]
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            text().prop_map(|t| format!("\"{t}\"")),
            "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            Just("true".into()),
            Just("false".into()),
            Just("null".into()),
            Just("01".into()),
            Just("1.".into()),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        scalar().prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|v| {
                    let v: Vec<String> =
                        v.into_iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                    format!("{{{}}}", v.join(","))
                }),
            ]
        })
    }

    fn data() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            // Long enough for the vector decoder's whole 64-character blocks.
            2 => proptest::collection::vec(any::<u8>(), 40..400)
                .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            1 => proptest::collection::vec(any::<u8>(), 1..40)
                .prop_map(|b| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)),
            1 => text(),
        ]
    }

    /// A field list in random order, with fields sometimes missing, doubled or extra.
    fn object(
        fields: Vec<(String, String)>,
        extra: Vec<(String, String)>,
        order: Vec<usize>,
        w: String,
    ) -> String {
        let mut all: Vec<(String, String)> = fields.into_iter().chain(extra).collect();
        for (i, j) in order.into_iter().enumerate() {
            let n = all.len();
            if n > 1 {
                all.swap(i % n, j % n);
            }
        }
        let parts: Vec<String> = all
            .into_iter()
            .map(|(k, v)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    fn field(
        name: &'static str,
        v: impl Strategy<Value = String> + 'static,
    ) -> impl Strategy<Value = Vec<(String, String)>> {
        let v = v.boxed();
        prop_oneof![
            8 => v.clone().prop_map(move |v| vec![(name.to_string(), v)]),
            1 => Just(vec![]),
            1 => Just(vec![(name.to_string(), "null".to_string())]),
            1 => v.prop_map(move |v| vec![(name.to_string(), v.clone()), (name.to_string(), v)]),
        ]
    }

    fn extras() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(("[a-zA-Z]{1,8}", value()), 0..3)
    }

    fn record() -> impl Strategy<Value = String> {
        let kinesis = (
            field("data", data().prop_map(|d| format!("\"{d}\""))),
            field(
                "sequenceNumber",
                "[0-9]{1,20}".prop_map(|s| format!("\"{s}\"")),
            ),
            field("partitionKey", text().prop_map(|s| format!("\"{s}\""))),
            field(
                "approximateArrivalTimestamp",
                prop_oneof![
                    "-?[0-9]{1,10}(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?",
                    Just("\"1\"".to_string()),
                ],
            ),
            extras(),
            proptest::collection::vec(any::<usize>(), 0..4),
            ws(),
        )
            .prop_map(|(a, b, c, t, x, o, w)| object([a, b, c, t].concat(), x, o, w));
        (
            field("kinesis", kinesis),
            field("eventID", text().prop_map(|s| format!("\"{s}\""))),
            extras(),
            proptest::collection::vec(any::<usize>(), 0..4),
            ws(),
        )
            .prop_map(|(k, e, x, o, w)| object([k, e].concat(), x, o, w))
    }

    /// Whether a field is there (0), missing (1), `null` (2) or doubled (3).
    fn presence() -> impl Strategy<Value = u8> {
        prop_oneof![8 => Just(0u8), 1 => Just(1), 1 => Just(2), 1 => Just(3)]
    }

    fn put(name: &str, value: String, presence: u8) -> Vec<(String, String)> {
        match presence {
            0 => vec![(name.into(), value)],
            1 => vec![],
            2 => vec![(name.into(), "null".into())],
            _ => vec![(name.into(), value.clone()), (name.into(), value)],
        }
    }

    /// Records of one shape (fields, order, extras, whitespace) with their own values, as a
    /// producer writes them: the scanner's template path reads all but the first.
    fn similar_records() -> impl Strategy<Value = Vec<String>> {
        let shape = (
            proptest::collection::vec(presence(), 6),
            extras(),
            proptest::collection::vec(any::<usize>(), 0..4),
            extras(),
            proptest::collection::vec(any::<usize>(), 0..4),
            ws(),
        );
        let arrival = prop_oneof![
            4 => "[0-9]{1,10}(\\.[0-9]{1,3})?",
            1 => "-?[0-9]{1,10}(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?",
            1 => Just("\"1\"".to_string()),
            1 => Just("null".to_string()),
        ];
        let values = (
            data(),
            prop_oneof![6 => "[0-9]{1,20}", 1 => text()],
            text(),
            arrival,
            text(),
        );
        (shape, proptest::collection::vec(values, 1..6)).prop_map(
            |((p, kx, ko, rx, ro, w), values)| {
                values
                    .into_iter()
                    .map(|(data, seq, pk, arrival, id)| {
                        let kinesis = [
                            put("data", format!("\"{data}\""), p[0]),
                            put("sequenceNumber", format!("\"{seq}\""), p[1]),
                            put("partitionKey", format!("\"{pk}\""), p[2]),
                            put("approximateArrivalTimestamp", arrival, p[3]),
                        ]
                        .concat();
                        let kinesis = object(kinesis, kx.clone(), ko.clone(), w.clone());
                        let fields = [
                            put("kinesis", kinesis, p[4]),
                            put("eventID", format!("\"{id}\""), p[5]),
                        ]
                        .concat();
                        object(fields, rx.clone(), ro.clone(), w.clone())
                    })
                    .collect()
            },
        )
    }

    fn event() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![proptest::collection::vec(record(), 0..5), similar_records()],
            extras(),
            ws(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..2),
            any::<Option<usize>>(),
        )
            .prop_map(|(records, x, w, flips, cut)| {
                let records = format!("[{w}{}{w}]", records.join(","));
                let mut e = object(vec![("Records".into(), records)], x, vec![], w).into_bytes();
                for (at, b) in flips {
                    if !e.is_empty() {
                        let n = e.len();
                        e[at % n] = b;
                    }
                }
                if let Some(cut) = cut.filter(|c| c % 4 == 0) {
                    e.truncate(cut % (e.len() + 1));
                }
                e
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn fast_scanner_agrees_with_serde(event in event()) {
            let (fast, serde) = both(&event);
            prop_assert_eq!(fast, serde, "{}", String::from_utf8_lossy(&event));
        }
    }

    /// Events the fast scanner mostly reads through, with the offsets where their records
    /// start: records with `},{` in strings and nested values, data that is base64 or not
    /// (escapes included, which send the whole event to serde_json), whitespace or none
    /// between records, and more top-level fields after `Records` (a second `Records`
    /// among them).
    fn readable_event() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        let data = prop_oneof![
            8 => proptest::collection::vec(any::<u8>(), 0..60).prop_map(|d| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(d)
            }),
            1 => Just("QQ".to_string()),
            1 => Just("Q!==".to_string()),
            1 => Just("QQ\\u003d=".to_string()),
        ];
        let key = prop_oneof![4 => "[a-z0-9]{0,6}", 1 => Just("},{".to_string()), 1 => Just("a\\\"},{\\\"b".to_string())];
        let record = (data, key, any::<u16>(), any::<bool>(), any::<bool>()).prop_map(
            |(data, pk, seq, arrival, extra)| {
                let arrival = if arrival { format!(r#","approximateArrivalTimestamp":{seq}.25"#) } else { String::new() };
                let extra = if extra { r#","x":[{},{"y":[{},{}]}]"# } else { "" };
                format!(r#"{{"kinesis":{{"sequenceNumber":"{seq}","partitionKey":"{pk}","data":"{data}"{arrival}}},"eventID":"s:{seq}"{extra}}}"#)
            },
        );
        (
            proptest::collection::vec((record, prop_oneof![4 => Just(","), 1 => Just(" ,\n ")]), 0..12),
            prop_oneof![4 => Just(""), 1 => Just(r#","z":[{},{}]"#), 1 => Just(r#","Records":[{},{}]"#)],
        )
            .prop_map(|(records, tail)| {
                let mut e = String::from(r#"{"Records":["#);
                let mut starts = Vec::new();
                for (i, (r, sep)) in records.iter().enumerate() {
                    if i > 0 {
                        e.push_str(sep);
                    }
                    starts.push(e.len());
                    e.push_str(r);
                }
                e.push(']');
                e.push_str(tail);
                e.push('}');
                (e.into_bytes(), starts)
            })
    }

    fn show(r: Result<DecodedBatch, EventError>) -> String {
        match r {
            Ok(b) => format!("{b:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The first pass cut in two anywhere (where a record starts or not) gives the batch,
        /// or the error, of the uncut pass, whatever the runner does with the halves.
        #[test]
        fn a_first_pass_cut_anywhere_gives_the_same_batch(
            (event, starts) in readable_event(),
            at in any::<usize>(),
            fault in any::<u8>(),
        ) {
            let d = Decoder::default();
            let whole = show(d.decode_event_json_with(&event, true, &InPlace));
            // Mostly where a record starts, else anywhere.
            let stop = match starts.get(at % (starts.len() + 1)) {
                Some(&s) if at % 5 != 0 => s,
                _ => at % (event.len() + 1),
            };
            let cut = show(d.decode_with_stop(&event, true, &Joiner(fault), Some(stop)));
            prop_assert_eq!(whole, cut, "stop {} in {}", stop, String::from_utf8_lossy(&event));
        }

        /// The same over the scanner's own test events, most of which it gives up on.
        #[test]
        fn a_first_pass_cut_anywhere_in_any_event_gives_the_same_answer(
            event in event(),
            at in any::<usize>(),
            fault in any::<u8>(),
        ) {
            let d = Decoder::default();
            let whole = show(d.decode_event_json_with(&event, true, &InPlace));
            let cut = show(d.decode_with_stop(&event, true, &Joiner(fault), Some(at % (event.len() + 1))));
            prop_assert_eq!(whole, cut);
        }
    }

    #[test]
    fn large_events_are_cut_in_two_only_for_a_runner_on_several_threads() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        // About 1.2 MB of records whose partition keys hold `},{`, so that the middle of the
        // event falls before a false candidate for some sizes of the first record.
        for pad in 0..8 {
            let records: Vec<String> = (0..400)
                .map(|i| {
                    let data = format!(r#"{{"log_type":"a","n":{i},"m":"{}"}}"#, "x".repeat(2200 + pad * 97 * usize::from(i == 0)));
                    format!(
                        r#"{{"kinesis":{{"sequenceNumber":"{i}","partitionKey":"k}},{{{i}","data":"{}"}},"eventID":"e{i}"}}"#,
                        b64.encode(data)
                    )
                })
                .collect();
            let event = format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes();
            assert!(event.len() >= SPLIT_FROM);
            let d = Decoder::default();
            let whole = d.decode_event_json(&event).ok();
            assert!(
                whole
                    .as_ref()
                    .is_some_and(|b| b.items.len() == 400 && b.failures().count() == 0)
            );
            for fault in 0..6 {
                assert_eq!(
                    d.decode_event_json_on(&event, &Joiner(fault)).ok(),
                    whole,
                    "pad {pad} fault {fault}"
                );
            }
        }
    }

    proptest! {
        /// The integer path is exactly the f64 definition wherever it answers.
        #[test]
        fn exact_arrival_ms_agrees_with_f64(
            int in prop_oneof![0u64..2_000_000_000, 0u64..1_000_000_000_000],
            frac in proptest::option::of("[0-9]{1,3}"),
        ) {
            let text = match &frac {
                Some(f) => format!("{int}.{f}"),
                None => int.to_string(),
            };
            let exact = exact_arrival_ms(text.as_bytes());
            prop_assert!(exact.is_some(), "{}", text);
            prop_assert_eq!(exact, arrival_ms_f64(text.as_bytes()), "{}", text);
        }
    }

    #[test]
    fn arrival_times_are_milliseconds_from_either_path() {
        assert_eq!(arrival_ms(b"1584154800.123"), Some(1_584_154_800_123));
        assert_eq!(arrival_ms(b"1584154800.1235"), Some(1_584_154_800_124));
        assert_eq!(arrival_ms(b"-1.5"), Some(-1500));
        assert_eq!(arrival_ms(b"1e400"), None);
        assert_eq!(arrival_ms(b"\"1\""), None);
        assert_eq!(arrival_ms(b"0"), Some(0));
        assert_eq!(arrival_ms(b"1.5e3"), Some(1_500_000));
        assert_eq!(arrival_ms(b"999999999999.999"), Some(999_999_999_999_999));
        for event in [
            &br#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"","approximateArrivalTimestamp":1.5}}]}"#[..],
            br#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"","approximateArrivalTimestamp": 1.5 }}], "x":"\u0041"}"#,
        ] {
            let batch = Decoder::default().decode_event_json(event).unwrap();
            assert_eq!(batch.records.get(0).and_then(|r| r.arrival_ms), Some(1500));
            assert_eq!(batch.items[0].origin().arrival_ms(), Some(1500));
        }
        let batch = Decoder::default()
            .decode_event_json(br#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"","approximateArrivalTimestamp":null}}]}"#)
            .unwrap();
        assert_eq!(batch.records.get(0).and_then(|r| r.arrival_ms), None);
    }

    #[test]
    fn the_usual_shape_takes_the_fast_path() {
        let event = br#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"p",
            "sequenceNumber":"1","data":"QQ==","approximateArrivalTimestamp":1.5},
            "eventSource":"aws:kinesis","eventID":"shardId-0:1"}]}"#;
        let mut n = 0;
        assert!(
            crate::event_scan::scan(event, &mut |_| {
                n += 1;
                Some(())
            })
            .is_some()
        );
        assert_eq!(n, 1);
        let (fast, serde) = both(event);
        assert_eq!(fast, serde);
    }
}
