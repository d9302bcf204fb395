//! Schema-free pieces of the Amazon Kinesis data plane, for Lambda functions and services.
//!
//! * [`decode`]: turn a Lambda Kinesis event (raw JSON bytes, or
//!   `aws_lambda_events::event::kinesis::KinesisEvent` with the `lambda-events` feature) into
//!   payloads that remember where they came from, expanding KPL aggregates ([`kpl`]),
//!   decompressing gzip with a bound ([`gzip`]) and unpacking CloudWatch Logs subscription
//!   messages ([`cwl`]). A bad record is a typed failure for that record; the rest of the batch
//!   still decodes.
//! * [`kpl`]: KPL aggregation and deaggregation, byte-compatible with the reference libraries.
//! * [`json_cursor`]: the validating JSON cursor behind the decoder's fast path (and
//!   `logging-core`'s), for scanners that hand anything unusual to serde_json.
//! * [`put`]: PutRecords batching within the service limits and retry of only the failed
//!   entries, behind the small [`api::KinesisApi`] trait, with an in-memory implementation
//!   ([`memory`]) and one on `aws-sdk-kinesis` (`aws` feature).
//!
//! # Cargo features
//!
//! * `aws` (default): [`aws::AwsKinesis`], the [`api::KinesisApi`] on `aws-sdk-kinesis`.
//! * `lambda-events`: [`decode::Decoder::decode_event`] for `aws_lambda_events` types.
//! * `libdeflate` (default): gzip records are inflated by libdeflate (C, built by `cc`) when
//!   the trailer's size is right, the usual case; zlib-rs inflates everything else, and
//!   everything without the feature.

pub mod api;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(feature = "aws")]
pub mod aws;
#[cfg(not(fuzzing))]
mod b64x;
/// The `data` string decoder's paths, for the `b64_string` fuzz target.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod b64x;
pub mod cwl;
mod cwl_scan;
pub mod decode;
mod event_scan;
pub mod gzip;
pub mod json_cursor;
pub mod kpl;
mod md5x;
pub mod memory;
mod origin;
pub mod put;

pub use api::{KinesisApi, KinesisError, PutEntry, StreamTarget};
pub use decode::{
    CwlOrigin, DecodeError, Decoded, DecodedBatch, Decoder, DecoderConfig, Origin, Payload,
    RecordInfo, Records,
};
pub use put::{PutOutcome, PutRecordsBatcher, PutRecordsConfig};
