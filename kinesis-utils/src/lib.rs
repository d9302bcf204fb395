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
//! * [`arch`]: the SIMD code, chosen at run time: AVX-512 on x86-64 CPUs that have it, and
//!   portable code everywhere else (arm64 included). Every CPU gives the same results, and the
//!   portable path can be forced.
//!
//! # Cargo features
//!
//! * `aws` (default): [`aws::AwsKinesis`], the [`api::KinesisApi`] on `aws-sdk-kinesis`.
//! * `lambda-events`: `Decoder::decode_event` for `aws_lambda_events` types.
//! * `libdeflate` (default): gzip records are inflated by libdeflate (C, built by `cc`) when
//!   the trailer's size is right, the usual case; zlib-rs inflates everything else, and
//!   everything without the feature.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod arch;
#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub mod aws;
pub mod cwl;
pub mod decode;
mod event_scan;
pub mod gzip;
pub mod json_cursor;
mod json_escape;
pub mod kpl;
pub mod memory;
mod origin;
pub mod put;

pub use api::{KinesisApi, KinesisError, PutEntry, StreamTarget};
pub use decode::{
    CwlOrigin, DecodeError, Decoded, DecodedBatch, Decoder, DecoderConfig, Origin, Payload,
    RecordInfo, Records,
};
pub use put::{PutOutcome, PutRecordsBatcher, PutRecordsConfig};
