//! The Baikonur common log schema, routing, destinations and a Kinesis Lambda pipeline that
//! loses nothing (SPEC 1.1 to 1.5).
//!
//! * [`schema`]: [`SchemaConfig`] (key names, unknown prefix, time zone) and `log_type` rules.
//! * [`record`]: [`LogRecord::parse`] validates a payload as a JSON object and borrows the
//!   three schema fields without re-serialising; [`timestamp`] parses their timestamps.
//! * [`classify`]: one outcome per payload ([`FailureReason`]).
//! * [`routing`]: [`Router::route`] groups records by route and `log_type`, with fan-out.
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
//! # Cargo features
//!
//! * `aws` (default): [`store::s3::S3Store`] on `aws-sdk-s3`, and `kinesis-utils`' AWS client.
//! * `search` (default): the Elasticsearch / OpenSearch HTTP client (reqwest + rustls, basic
//!   auth or SigV4).
//! * `libdeflate` (default): gzip archive and dead-letter objects with libdeflate, about twice
//!   as fast as zlib at level 6 (levels 0–12), and inflate gzip records with it
//!   (`kinesis-utils/libdeflate`); without it, flate2 on zlib-rs (levels 0–9) for both.
//! * `zstd` (default): zstd archive and dead-letter objects ([`compress::Compression::Zstd`],
//!   keys ending `.zst`) with the reference C library; without it, asking for zstd is a
//!   configuration error.
//! * `fluent-tls`: TLS for the Fluentd forward client (tokio-rustls, Mozilla roots).
//! * `lambda`: `lambda::serve`, the Lambda handler on `lambda_runtime`: it
//!   processes each invocation from the raw bytes the runtime received (no second parse, a
//!   bad-base64 record is dead-lettered), and `lambda::handle`, the same handler without the
//!   network.
//! * `lambda-events`: `Pipeline::process_event` on `aws_lambda_events` types (a
//!   `KinesisEvent` cannot hold a record whose data is not base64; the raw path can).

pub mod archive;
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
pub use routing::{RoutedBatch, Router, TypeFilter, TypeGroup};
pub use schema::{KeyDates, SchemaConfig, TimeZone, UnparseableTimestamp};
pub use store::{LocalDirStore, MemoryStore, ObjectStore, StoreError};
