//! The Baikonur common log schema, routing, destinations and a Kinesis Lambda pipeline that
//! loses nothing.
//!
//! * [`schema`]: [`SchemaConfig`] (key names, unknown prefix, time zone) and `log_type` rules.
//! * [`record`]: [`LogRecord::parse`] validates a payload as a JSON object and borrows the
//!   three schema fields without re-serialising; [`timestamp`] parses their timestamps.
//! * [`classify`]: one outcome per payload ([`FailureReason`]).
//! * [`routing`]: [`Router::route`] groups records by route and `log_type`, with fan-out, into
//!   the [`batch`]es ([`RoutedBatch`]) destinations receive.
//! * [`destination`]: the [`Destination`] trait every target implements (S3 archive, Kinesis
//!   forward, Elasticsearch, Fluentd) and its per-record [`DeliveryReport`].
//! * [`archive`], [`forward`], [`dead_letter`]: the S3 archive, Kinesis forward and dead
//!   letter; [`store`]: the [`ObjectStore`] trait with S3, in-memory and local implementations;
//!   [`compress`]: their objects' compression (gzip, zstd or none) on every core.
//! * [`pipeline`]: [`Pipeline::process`] decodes a Lambda Kinesis event, classifies, routes,
//!   delivers and dead-letters, and returns a [`Report`] and the `batchItemFailures` answer.
//! * [`search`], [`fluent`], [`retention`]: Elasticsearch / OpenSearch and Fluentd delivery,
//!   index retention.
//!
//! # Quickstart
//!
//! In `Cargo.toml` (the `tokio` line is for the example's `main`; a Lambda function adds the
//! `lambda` feature, see below):
//!
//! ```toml
//! [dependencies]
//! logging-core = "0.1"
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! Archive a Kinesis batch by `log_type` and dead-letter what is not a log record. The
//! pipeline is built from [`ObjectStore`]s: [`MemoryStore`] here and in your tests,
//! `store::s3::S3Store::new(aws_sdk_s3::Client::new(&sdk_config), bucket)` (feature `aws`)
//! in production.
//!
//! ```
//! use std::sync::Arc;
//!
//! use logging_core::{
//!     ArchiveConfig, DeadLetter, DeadLetterConfig, MemoryStore, ObjectStore, Pipeline,
//!     S3Archive, SchemaConfig, TypeFilter,
//! };
//!
//! /// The function's pipeline: every type archived under `logs/`, failures under `failed/`.
//! fn pipeline(logs: Arc<dyn ObjectStore>, failed: Arc<dyn ObjectStore>) -> Pipeline {
//!     let archive = ArchiveConfig { prefix: "logs".into(), ..ArchiveConfig::default() };
//!     let dead_letter = DeadLetterConfig { prefix: "failed".into(), ..DeadLetterConfig::default() };
//!     Pipeline::builder(SchemaConfig::default()) // `log_type`, `log_id`, `time`, UTC
//!         .route(TypeFilter::all(), S3Archive::builder(logs, archive))
//!         .dead_letter(DeadLetter::builder(failed, dead_letter))
//!         .build()
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // A Lambda Kinesis event: a log record, and a payload that is not JSON.
//!     let event = br#"{"Records":[
//!       {"kinesis":{"sequenceNumber":"1","partitionKey":"a","data":"eyJsb2dfdHlwZSI6ImFwcCIsImxvZ19pZCI6ImExIiwidGltZSI6IjIwMjAtMDMtMTRUMTI6MDA6MDBaIiwibXNnIjoiaGVsbG8ifQ=="}},
//!       {"kinesis":{"sequenceNumber":"2","partitionKey":"b","data":"bm90IGpzb24="}}]}"#;
//!
//!     let logs = Arc::new(MemoryStore::new());
//!     let failed = Arc::new(MemoryStore::new());
//!     let out = pipeline(logs.clone(), failed.clone()).process(event).await?;
//!
//!     // Every payload has exactly one outcome, and nothing is left for Lambda to replay.
//!     assert_eq!((out.report.delivered, out.report.invalid.unknown_type), (1, 1));
//!     assert_eq!(out.report.invalid_codes["unknown_type/not_json"], 1);
//!     assert_eq!(serde_json::to_string(&out.response)?, r#"{"batchItemFailures":[]}"#);
//!     // One gzip NDJSON object per type, at a key derived from the batch: a replay overwrites.
//!     let keys: Vec<String> = logs.snapshot().into_keys().collect();
//!     assert_eq!(keys, ["logs/app/2020-03/14/2020-03-14-12:00:00-a1.gz"]);
//!     assert_eq!(failed.put_count(), 1); // the dead letter: a JSON envelope with the reason
//!     Ok(())
//! }
//! ```
//!
//! In a Lambda function (features `aws` and `lambda`), serve it:
//! `logging_core::lambda::serve(pipeline).await` answers every invocation with the partial
//! batch response (`ReportBatchItemFailures` on the event source mapping) before the
//! function's deadline. The crate's examples (`kinesis_to_s3`, `kinesis_forward`,
//! `kinesis_to_es`, `kinesis_to_fluent`) are complete functions configured by the original
//! modules' environment variables.
//!
//! # Cargo features
//!
//! | feature | default | what it enables |
//! | --- | --- | --- |
//! | `aws` | yes | [`store::s3::S3Store`] on `aws-sdk-s3`, and `kinesis-utils`' client on `aws-sdk-kinesis` for [`KinesisForward`] |
//! | `search` | yes | the Elasticsearch / OpenSearch HTTP client, `search::http::HttpSearch` (reqwest + rustls, basic auth or SigV4); the bulk engine, [`search::SearchDestination`] and [`search::MemorySearch`] build without it |
//! | `libdeflate` | yes | gzip archive and dead-letter objects with libdeflate, about twice as fast as zlib at level 6, and gzip records inflated with it (`kinesis-utils/libdeflate`); without it flate2 on zlib-rs does both (levels 0–12 are accepted either way; without it 10–12 compress as 9) |
//! | `zstd` | yes | zstd archive and dead-letter objects ([`compress::Compression::Zstd`], keys ending `.zst`) with the reference C library; without it, asking for zstd is a configuration error |
//! | `fluent-tls` | no | TLS for the Fluentd forward client (tokio-rustls, Mozilla roots) |
//! | `lambda` | no | `lambda::serve`, the Lambda handler on `lambda_runtime`: each invocation is processed from the raw bytes the runtime received (no second parse; a record whose data is not base64 is dead-lettered), before its deadline; `lambda::handle` is the same handler without the network |
//! | `lambda-events` | no | `Pipeline::process_event` and `Pipeline::process_event_until` on `aws_lambda_events`' `KinesisEvent`, returning its `KinesisEventResponse` |
//!
//! `default-features = false` gives a build without the AWS SDK, reqwest or C libraries: the
//! schema, routing, pipeline, in-memory and local stores and the Fluentd client stay.
//!
//! # Stability
//!
//! The crate follows semantic versioning (while at `0.x`, a minor release may break, a patch
//! release does not) and builds on Rust 1.94 or newer: see the
//! [versioning policy](https://github.com/baikonur-oss/baikonur-rs/blob/main/docs/versioning.md).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod archive;
pub mod batch;
pub mod classify;
pub mod compress;
pub mod dead_letter;
pub mod destination;
pub mod forward;
mod json_scan;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub mod lambda;
pub mod naming;
mod parallel;
pub mod pipeline;
pub mod record;
pub mod routing;
pub mod schema;
pub mod store;
pub mod timestamp;

pub mod fluent;
pub mod retention;
// Not feature-gated: retention and the bulk engine are pure; only `search::http` needs the
// `search` feature (reqwest). Do not gate this module.
pub mod search;

pub use archive::{ArchiveConfig, S3Archive, S3ArchiveBuilder};
pub use batch::{RoutedBatch, TypeGroup};
pub use classify::{Classified, FailureReason, Record};
pub use dead_letter::{
    DeadLetter, DeadLetterBuilder, DeadLetterConfig, DeadLetterFormat, DeadLetterGroups, Envelope,
};
pub use destination::{
    Deadline, DeliveryReport, DeliveryStatus, Destination, IntoDestination, RetryPolicy,
};
pub use forward::{ForwardConfig, KinesisForward};
pub use pipeline::{
    BatchResponse, InvalidCounts, LogTypeCounts, Pipeline, PipelineBuilder, PipelineError,
    Processed, Report,
};
pub use record::{FieldValue, LogRecord, ParseError};
pub use routing::{Router, TypeFilter};
pub use schema::{KeyDates, SchemaConfig, TimeZone, UnparseableTimestamp};
pub use store::{LocalDirStore, MemoryStore, ObjectStore, StoreError};
