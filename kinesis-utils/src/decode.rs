//! Decoding a Lambda Kinesis batch into payloads that remember where they came from.
//!
//! Per Kinesis record, in order: base64 (raw event JSON only), KPL deaggregation, gzip
//! (bounded), CloudWatch Logs subscription envelopes, and otherwise the bytes as one payload.
//! Every record yields at least one [`Decoded`] item; a record that cannot be decoded yields a
//! [`Decoded::Failed`] with the reason and the raw bytes, and the rest of the batch decodes.
//!
//! Payload bytes are [`Bytes`] slices of one buffer per Kinesis record (KPL user records and
//! unescaped CloudWatch Logs messages are not copied).

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::cwl::{self, CwlError, CwlMessage};
use crate::gzip::{self, GzipError};
use crate::kpl;

/// Where a payload came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Position of the Kinesis record in the batch.
    pub record_index: usize,
    /// The Kinesis record's sequence number (what Lambda's `itemIdentifier` names).
    pub sequence_number: Arc<str>,
    /// The Kinesis record's partition key.
    pub partition_key: Arc<str>,
    /// Lambda's `eventID` (`shardId-…:sequence`), when the event carried one.
    pub event_id: Option<Arc<str>>,
    /// Index of the user record inside a KPL aggregate.
    pub sub_sequence: Option<u32>,
    /// CloudWatch Logs details, for payloads unpacked from a subscription message.
    pub cwl: Option<CwlOrigin>,
}

/// Where a CloudWatch Logs payload came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwlOrigin {
    /// The log event id.
    pub event_id: Arc<str>,
    /// The source log group.
    pub log_group: Arc<str>,
    /// The source log stream.
    pub log_stream: Arc<str>,
    /// The event's timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

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
            Self::Cwl(CwlError::Malformed { .. }) => "malformed_cwl",
            Self::Cwl(CwlError::UnknownMessageType { .. }) => "unknown_cwl_message_type",
        }
    }
}

/// A record, or part of one, that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoding Kinesis record {} failed: {error}", origin.sequence_number)]
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
    /// Bytes that could not be decoded.
    Failed(DecodeFailure),
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

/// One Kinesis record of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// The sequence number.
    pub sequence_number: Arc<str>,
    /// The partition key.
    pub partition_key: Arc<str>,
    /// Lambda's `eventID`, when present.
    pub event_id: Option<Arc<str>>,
    /// Size of the record's data after base64 decoding.
    pub data_len: usize,
}

/// A decoded batch: items in input order, and the records they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedBatch {
    /// Every item, in input order; each record yields at least one.
    pub items: Vec<Decoded>,
    /// The Kinesis records, indexed by [`Origin::record_index`].
    pub records: Vec<RecordInfo>,
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
            Decoded::Failed(f) => Some(f),
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
/// assert_eq!(&*payload.origin.sequence_number, "1");
/// let failure = batch.failures().next().unwrap();
/// assert_eq!(failure.error.reason(), "bad_base64");
/// assert_eq!(&*failure.origin.sequence_number, "2");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RawRecord<'a>>,
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
    data: Cow<'a, str>,
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Cow<'a, str>,
    #[serde(rename = "partitionKey", borrow, default)]
    partition_key: Cow<'a, str>,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

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
        let raw: RawEvent<'_> = serde_json::from_slice(event)?;
        let mut batch = DecodedBatch {
            items: Vec::with_capacity(raw.records.len()),
            records: Vec::with_capacity(raw.records.len()),
        };
        for (record_index, r) in raw.records.into_iter().enumerate() {
            let origin = Origin {
                record_index,
                sequence_number: Arc::from(&*r.kinesis.sequence_number),
                partition_key: Arc::from(&*r.kinesis.partition_key),
                event_id: r.event_id.as_deref().map(Arc::from),
                sub_sequence: None,
                cwl: None,
            };
            match BASE64.decode(r.kinesis.data.as_bytes()) {
                Ok(data) => {
                    batch.records.push(info(&origin, data.len()));
                    self.decode_data(Bytes::from(data), origin, &mut batch.items);
                }
                Err(e) => {
                    batch.records.push(info(&origin, 0));
                    batch.items.push(Decoded::Failed(DecodeFailure {
                        origin,
                        error: DecodeError::Base64 {
                            message: e.to_string(),
                        },
                        raw: Bytes::copy_from_slice(r.kinesis.data.as_bytes()),
                    }));
                }
            }
        }
        Ok(batch)
    }

    /// Decodes an `aws_lambda_events` Kinesis event (its data is already base64-decoded).
    #[cfg(feature = "lambda-events")]
    pub fn decode_event(
        &self,
        event: aws_lambda_events::event::kinesis::KinesisEvent,
    ) -> DecodedBatch {
        let mut batch = DecodedBatch {
            items: Vec::with_capacity(event.records.len()),
            records: Vec::with_capacity(event.records.len()),
        };
        for (record_index, r) in event.records.into_iter().enumerate() {
            let origin = Origin {
                record_index,
                sequence_number: Arc::from(r.kinesis.sequence_number),
                partition_key: Arc::from(r.kinesis.partition_key),
                event_id: r.event_id.map(Arc::from),
                sub_sequence: None,
                cwl: None,
            };
            let data = Bytes::from(r.kinesis.data.0);
            batch.records.push(info(&origin, data.len()));
            self.decode_data(data, origin, &mut batch.items);
        }
        batch
    }

    /// Decodes one record's data (already base64-decoded), appending its items to `out`.
    ///
    /// This is the building block for callers with their own record source (for example
    /// records read back with `GetRecords`).
    pub fn decode_data(&self, data: Bytes, origin: Origin, out: &mut Vec<Decoded>) {
        if self.config.deaggregate && kpl::has_magic(&data) {
            if let Some(users) = kpl::deaggregate(&data).filter(|u| !u.is_empty()) {
                for (i, user) in users.into_iter().enumerate() {
                    let mut o = origin.clone();
                    o.sub_sequence = Some(u32::try_from(i).unwrap_or(u32::MAX));
                    self.decode_user_record(user.data, o, out);
                }
                return;
            }
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
                out.push(Decoded::Failed(DecodeFailure {
                    origin,
                    error: e.into(),
                    raw: data,
                }));
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
        match cwl::parse(&plain) {
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
                let log_group: Arc<str> = Arc::from(&*log_group);
                let log_stream: Arc<str> = Arc::from(&*log_stream);
                out.reserve(events.len());
                for event in events {
                    let data = match event.message {
                        Cow::Borrowed(s) => plain.slice_ref(s.as_bytes()),
                        Cow::Owned(s) => Bytes::from(s),
                    };
                    let mut o = origin.clone();
                    o.cwl = Some(CwlOrigin {
                        event_id: Arc::from(&*event.id),
                        log_group: log_group.clone(),
                        log_stream: log_stream.clone(),
                        timestamp_ms: event.timestamp,
                    });
                    out.push(Decoded::Payload(Payload { data, origin: o }));
                }
            }
            Err(e) => out.push(Decoded::Failed(DecodeFailure {
                origin,
                error: e.into(),
                raw: plain.clone(),
            })),
        }
    }
}

fn info(origin: &Origin, data_len: usize) -> RecordInfo {
    RecordInfo {
        sequence_number: origin.sequence_number.clone(),
        partition_key: origin.partition_key.clone(),
        event_id: origin.event_id.clone(),
        data_len,
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
