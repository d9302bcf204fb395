//! The Baikonur common log schema, routing, destinations and a Kinesis Lambda pipeline.

pub mod archive;
pub mod classify;
pub mod dead_letter;
pub mod destination;
pub mod forward;
pub mod naming;
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

pub use archive::{ArchiveConfig, S3Archive};
pub use classify::{Classified, FailureReason, Record};
pub use dead_letter::{DeadLetter, DeadLetterConfig, Envelope};
pub use destination::{DeliveryReport, DeliveryStatus, Destination, RetryPolicy};
pub use forward::{ForwardConfig, KinesisForward};
pub use pipeline::{BatchResponse, Pipeline, PipelineError, Processed, Report};
pub use record::{FieldValue, LogRecord, ParseError};
pub use routing::{RoutedBatch, Router, TypeFilter, TypeGroup};
pub use schema::{SchemaConfig, TimeZone};
pub use store::{LocalDirStore, MemoryStore, ObjectStore, StoreError};
