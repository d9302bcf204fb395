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
//! # Quickstart
//!
//! In `Cargo.toml` (the `tokio` line is for the example's `main`):
//!
//! ```toml
//! [dependencies]
//! kinesis-utils = "0.1"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! Decode a Lambda Kinesis event and forward its payloads to another stream. The forwarding
//! code takes any [`KinesisApi`]: [`memory::InMemoryKinesis`] here and in your tests, the
//! `aws-sdk-kinesis` client (`aws::AwsKinesis::new(&sdk_config)`, feature `aws`) in
//! production.
//!
//! ```
//! use kinesis_utils::memory::InMemoryKinesis;
//! use kinesis_utils::{
//!     Decoder, KinesisApi, PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget,
//! };
//!
//! /// Forwards every decodable payload of `event` to `stream`; returns how many were stored.
//! async fn forward(
//!     api: impl KinesisApi,
//!     stream: &StreamTarget,
//!     event: &[u8],
//! ) -> Result<usize, Box<dyn std::error::Error>> {
//!     let batch = Decoder::default().decode_event_json(event)?;
//!     for failure in batch.failures() {
//!         // A bad record fails alone, with a stable reason code; the rest still decodes.
//!         eprintln!("{failure} [{}]", failure.error.reason());
//!     }
//!     let entries: Vec<PutEntry> = batch
//!         .payloads()
//!         .map(|p| PutEntry::with_random_key(p.data.clone()))
//!         .collect();
//!     let batcher = PutRecordsBatcher::new(api, PutRecordsConfig::default())?;
//!     // Only the entries that failed transiently are sent again, with backoff.
//!     let outcome = batcher.put_all(stream, entries).await?;
//!     Ok(outcome.accepted_count())
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // What the Lambda runtime delivers: each record's `data` is base64.
//!     let event = br#"{"Records":[
//!       {"kinesis":{"sequenceNumber":"1","partitionKey":"a","data":"eyJtc2ciOiJoZWxsbyJ9"}},
//!       {"kinesis":{"sequenceNumber":"2","partitionKey":"b","data":"not base64!"}}]}"#;
//!
//!     let kinesis = InMemoryKinesis::new();
//!     let stream = kinesis.create_stream("copy", 2)?;
//!     assert_eq!(forward(&kinesis, &stream, event).await?, 1);
//!     assert_eq!(&kinesis.records(&stream)?[0].data[..], br#"{"msg":"hello"}"#);
//!     Ok(())
//! }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what it enables |
//! | --- | --- | --- |
//! | `aws` | yes | [`aws::AwsKinesis`], the [`api::KinesisApi`] on `aws-sdk-kinesis` |
//! | `libdeflate` | yes | gzip records inflated by libdeflate (C, built by `cc`) when the trailer's size is right, the usual case: CloudWatch Logs decoding about a sixth faster (540 → 630 MB/s of payload); zlib-rs inflates everything else, and everything without the feature |
//! | `lambda-events` | no | `Decoder::decode_event` for `aws_lambda_events`' `KinesisEvent` |
//!
//! `default-features = false` gives a pure-Rust build without the AWS SDK: decoding, KPL,
//! batching and the in-memory Kinesis all stay.
//!
//! # Stability
//!
//! The crate follows semantic versioning (while at `0.x`, a minor release may break, a patch
//! release does not) and builds on Rust 1.94 or newer: see the
//! [versioning policy](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/versioning.md).

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
