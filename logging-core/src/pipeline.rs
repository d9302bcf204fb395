//! The Lambda pipeline: decode, classify, route, deliver, dead-letter, and answer Lambda
//! with the batch item failures.
//!
//! Every decoded item ends in exactly one outcome of the [`Report`]:
//! `delivered` (every destination it was routed to stored it), `filtered`, `control`,
//! `invalid` (by reason, dead-lettered), `rejected` (a destination refused it; dead-lettered),
//! or `retry` (a delivery or its dead-lettering failed transiently after retries). Lambda is
//! told the lowest sequence number among the `retry` items, and replays from there; an
//! empty answer means every item reached an outcome.
//!
//! A replay must not store a record twice. For a destination that writes each `log_type`
//! group as one object keyed by its first record (the S3 archive,
//! [`Destination::groups_are_objects`](crate::Destination::groups_are_objects)), the answer
//! moves back to the first record of any stored group that holds a record at or after the
//! lowest `retry` item: the replay then writes that group again, whole, under the same key,
//! instead of writing its later records a second time under a new key.
//!
//! # The Lambda deadline
//!
//! Destinations retry (bulk requests of 30 s, 5 attempts; Fluentd acks of 30 s, 5 attempts;
//! ...), and their budget can outlive the function: Lambda would then kill the invocation and
//! replay the whole batch. [`Pipeline::process_until`] (and `process_event_until`, with the
//! `lambda-events` feature)
//! take the invocation's [`Deadline`] (`Deadline::from_epoch_millis(context.deadline)` in a
//! `lambda_runtime` handler) and answer in time: deliveries and the dead-lettering of failures
//! must end by the deadline minus the safety margin ([`PipelineBuilder::deadline_margin`],
//! default 2 s, at most a quarter of the time left); what has not, is *cut*: its records are
//! `retry`, so the answer names the lowest sequence number among them, and
//! [`DestinationSummary::cut`] / [`DeadLetterSummary::cut`] say how many. Rejections found in
//! time are dead-lettered in the rest of the margin. The first invocation whose time left is
//! shorter than [`Pipeline::retry_budget`] logs a warning.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kinesis_utils::decode::{EventError, cmp_sequence_numbers};
use kinesis_utils::{DecodedBatch, Decoder, DecoderConfig};
use serde::{Deserialize, Serialize};

use crate::classify::{Classified, Failure, FailureReason, Record};
use crate::dead_letter::{DeadLetter, DeadLetterBuilder, DeadLetterEntry, DeadLetterReport};
use crate::destination::{
    CUT_AT_DEADLINE, Deadline, DeliveryReport, DeliveryStatus, IntoDestination, join_all,
};
use crate::parallel::awake::KeepAwake;
use crate::routing::{Mark, Router, TypeFilter};
use crate::schema::SchemaConfig;

/// Counts of invalid items per reason: items that are no valid log record. Each is
/// dead-lettered with its reason (or logged, without a dead letter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InvalidCounts {
    /// Not JSON, not an object, or `log_type` missing / not a string / unsafe.
    pub unknown_type: usize,
    /// Timestamp required but missing.
    pub no_timestamp: usize,
    /// Timestamp present but unparseable.
    pub bad_timestamp: usize,
    /// The Kinesis record could not be decoded (bad base64, corrupt gzip or KPL aggregate,
    /// a CloudWatch Logs message that is not one).
    pub undecodable: usize,
}

impl InvalidCounts {
    /// The sum over the reasons.
    pub fn total(&self) -> usize {
        self.unknown_type + self.no_timestamp + self.bad_timestamp + self.undecodable
    }

    fn add(&mut self, reason: FailureReason) {
        match reason {
            FailureReason::UnknownType => self.unknown_type += 1,
            FailureReason::NoTimestamp => self.no_timestamp += 1,
            FailureReason::BadTimestamp => self.bad_timestamp += 1,
            FailureReason::Undecodable => self.undecodable += 1,
            // Rejections have their own count in the report.
            FailureReason::Rejected => {}
        }
    }
}

/// The outcomes of one `log_type`'s valid records ([`Report::log_types`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogTypeCounts {
    /// Records at least one route accepted: `delivered + rejected + retry`.
    pub routed: usize,
    /// Routed records every destination stored.
    pub delivered: usize,
    /// Routed records a destination refused (dead-lettered).
    pub rejected: usize,
    /// Routed records left for Lambda to replay.
    pub retry: usize,
    /// Records no route accepts.
    pub filtered: usize,
}

/// What one destination did with the records routed to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DestinationSummary {
    /// The destination's name.
    pub name: String,
    /// Records stored.
    pub delivered: usize,
    /// Records refused permanently (dead-lettered).
    pub rejected: usize,
    /// Records not stored: they failed transiently after retries, or the deadline came first.
    /// Lambda replays them.
    pub retry: usize,
    /// Of `retry`: records not stored because the deadline came first.
    pub cut: usize,
    /// What it wrote (object keys, streams).
    pub artifacts: Vec<String>,
}

/// What the dead letter did with the invalid and rejected items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterSummary {
    /// Entries written.
    pub written: usize,
    /// Entries not written (failed transiently after retries, or the deadline came first):
    /// their items are `retry` in the report, and Lambda replays them.
    pub retry: usize,
    /// Of `retry`: entries not written because the deadline came first.
    pub cut: usize,
    /// Entries that had nowhere to go because no dead letter is configured (logged).
    pub not_configured: usize,
    /// The keys written.
    pub objects: Vec<String>,
}

/// The outcome of one invocation: every decoded item counted exactly once.
///
/// The words mean one thing throughout: an *item* is what decoding a record gives (a log
/// payload, a CloudWatch Logs control message, or an undecodable record); *delivered* means
/// stored by a destination; *invalid* means no valid log record (dead-lettered with its
/// reason); *rejected* means refused permanently by a destination (dead-lettered); *retry*
/// means left for Lambda to replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Kinesis records in the batch.
    pub records: usize,
    /// Decoded items: payloads (a KPL aggregate or a CloudWatch Logs message gives several),
    /// control messages and undecodable records. The sum of the outcome counts
    /// (`delivered + filtered + control + invalid + rejected + retry`).
    pub items: usize,
    /// Bytes of the decoded payloads.
    pub payload_bytes: usize,
    /// Valid records delivered to every destination they were routed to.
    pub delivered: usize,
    /// Valid records no route accepts.
    pub filtered: usize,
    /// CloudWatch Logs control messages.
    pub control: usize,
    /// Invalid items, per reason (dead-lettered).
    pub invalid: InvalidCounts,
    /// Valid records a destination refused (dead-lettered).
    pub rejected: usize,
    /// Items left for Lambda to replay: a delivery or dead-lettering failed transiently, or
    /// the deadline came first.
    pub retry: usize,
    /// Invalid items per `reason/code` (`unknown_type/not_json`, `undecodable/corrupt_gzip`,
    /// `undecodable/bad_base64`, ...).
    pub invalid_codes: BTreeMap<String, usize>,
    /// Valid records per `log_type`: routed (and how that ended) or filtered.
    pub log_types: BTreeMap<String, LogTypeCounts>,
    /// Per destination, in route order.
    pub destinations: Vec<DestinationSummary>,
    /// The dead letter.
    pub dead_letter: DeadLetterSummary,
    /// The sequence number reported to Lambda, if any: Lambda replays the batch from there.
    pub batch_item_failure: Option<String>,
}

impl Report {
    /// The sum of every outcome count; equals [`Report::items`].
    pub fn outcome_total(&self) -> usize {
        self.delivered
            + self.filtered
            + self.control
            + self.invalid.total()
            + self.rejected
            + self.retry
    }
}

/// One failed item for Lambda (`{"itemIdentifier": "<sequence number>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The Kinesis sequence number from which Lambda replays.
    pub item_identifier: String,
}

/// The answer to Lambda (`ReportBatchItemFailures`), serialised like
/// `aws_lambda_events::event::streams::KinesisEventResponse`; convert with `From` under the
/// `lambda-events` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// Empty on success; otherwise one item: the lowest sequence number to replay from.
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[cfg(feature = "lambda-events")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda-events")))]
impl From<BatchResponse> for aws_lambda_events::event::streams::KinesisEventResponse {
    fn from(r: BatchResponse) -> Self {
        // #[non_exhaustive]: built through Default.
        let mut out = Self::default();
        out.set_failures(r.batch_item_failures.into_iter().map(|f| f.item_identifier));
        out
    }
}

/// The result of [`Pipeline::process`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Processed {
    /// The counts.
    pub report: Report,
    /// The answer for Lambda.
    pub response: BatchResponse,
}

/// The whole event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Not Lambda Kinesis event JSON: no record can be attributed, so the invocation fails and
    /// Lambda retries the batch.
    #[error("pipeline: decoding the Lambda event failed: {0}")]
    Event(#[from] EventError),
}

/// The pipeline: a decoder, the schema, the routes and the dead letter.
///
/// ```
/// use std::sync::Arc;
/// use base64::Engine as _;
/// use logging_core::pipeline::Pipeline;
/// use logging_core::{ArchiveConfig, DeadLetter, DeadLetterConfig, MemoryStore, S3Archive, SchemaConfig, TypeFilter};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let archive_store = Arc::new(MemoryStore::new());
/// let failed_store = Arc::new(MemoryStore::new());
/// // The schema is given once; the archive and the dead letter take their zone and the
/// // unknown-type prefix from it.
/// let pipeline = Pipeline::builder(SchemaConfig::default())
///     .route(TypeFilter::all(), S3Archive::builder(archive_store.clone(), ArchiveConfig::default()))
///     .dead_letter(DeadLetter::builder(failed_store.clone(), DeadLetterConfig::default()))
///     .build();
///
/// let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
/// let event = format!(
///     r#"{{"Records":[
///         {{"kinesis":{{"data":"{}","partitionKey":"k","sequenceNumber":"100"}}}},
///         {{"kinesis":{{"data":"{}","partitionKey":"k","sequenceNumber":"101"}}}}]}}"#,
///     b64(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T12:00:00Z"}"#),
///     b64("not json"),
/// );
/// let out = pipeline.process(event.as_bytes()).await.unwrap();
/// assert_eq!((out.report.delivered, out.report.invalid.unknown_type), (1, 1));
/// assert!(out.response.batch_item_failures.is_empty());
/// assert_eq!(archive_store.list("").await.unwrap(),
///     ["app/2020-03/14/2020-03-14-12:00:00-a1.gz"]);
/// assert_eq!(failed_store.list("unknown/unknown_type/").await.unwrap().len(), 1);
/// # });
/// # use logging_core::ObjectStore as _;
/// ```
pub struct Pipeline {
    decoder: Decoder,
    schema: SchemaConfig,
    router: Router,
    dead_letter: Option<DeadLetter>,
    deadline_margin: Duration,
    budget_warned: AtomicBool,
    pub(crate) threads: NonZeroUsize,
}

/// The default of [`PipelineBuilder::deadline_margin`].
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("schema", &self.schema)
            .field("routes", &self.router.routes().len())
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}

/// Where a payload stands while the batch is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Control,
    Failed(FailureReason),
    Filtered,
    /// Routed; flags gathered over its destinations.
    Routed {
        rejected: bool,
        failed: bool,
    },
    Retry,
}

/// Builds a [`Pipeline`] ([`Pipeline::builder`]): the schema is given once, and the routes'
/// destinations and the dead letter take what they derive from it (zone, unknown-type prefix)
/// from here, so that they cannot disagree with it or with each other.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PipelineBuilder {
    schema: SchemaConfig,
    decoder: DecoderConfig,
    router: Router,
    dead_letter: Option<DeadLetter>,
    deadline_margin: Duration,
    threads: NonZeroUsize,
}

impl PipelineBuilder {
    /// Adds a route: the records whose `log_type` `filter` accepts go to `destination`, a
    /// [`Destination`](crate::Destination) or the builder of one that takes settings from the schema
    /// ([`IntoDestination`]). A record goes to every route that accepts it, in route order.
    pub fn route(mut self, filter: TypeFilter, destination: impl IntoDestination) -> Self {
        let destination = destination.into_destination(&self.schema);
        self.router.push(filter, destination);
        self
    }

    /// Sets the dead letter, built with the schema. Without one, failed and rejected payloads
    /// are counted and logged (at `warn`, with reason and origin) but stored nowhere.
    pub fn dead_letter(mut self, dead_letter: DeadLetterBuilder) -> Self {
        self.dead_letter = Some(dead_letter.build(&self.schema));
        self
    }

    /// Replaces the decoder configuration.
    pub fn decoder(mut self, config: DecoderConfig) -> Self {
        self.decoder = config;
        self
    }

    /// Sets the safety margin kept before the deadline of [`Pipeline::process_until`]
    /// (default 2 s, [`DEFAULT_DEADLINE_MARGIN`]): deliveries must end that long before the
    /// deadline, and the rest of the margin dead-letters rejections and answers. It is capped
    /// at a quarter of the time left.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// Decodes and classifies a batch on at most `threads` threads, the calling one included:
    /// the records' decompression, KPL deaggregation and CloudWatch Logs parsing, then the
    /// payloads' classification, are cut into contiguous parts of about equal work, one per
    /// thread, and the results are the sequential ones, in order. 1 works on the calling
    /// thread; batches under 128 KB always do. Never more than the cores the process may
    /// use, whatever is asked.
    ///
    /// The default is every core, except on AWS Lambda (where `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`
    /// is set): CPU time there is one vCPU's worth per 1,769 MB of memory, so the default is
    /// that share rounded to the nearest whole number, at least one. One thread below
    /// 2,654 MB, where a function may see two cores but gets less than one and a half
    /// vCPUs' time; two up to 4,422 MB; six at 10,240 MB.
    ///
    /// The archive's and dead letter's compression threads are set on them
    /// ([`ObjectsConfig::compression_threads`](crate::archive::ObjectsConfig::compression_threads)).
    ///
    /// With more than one, the worker threads stay awake while a batch is in flight: between
    /// its parallel phases (decoding, classification, compression) a worker waits for the
    /// next one for up to a millisecond, yielding its core to any other thread, instead of
    /// going to sleep, which on Lambda's virtual machines delays its waking by 0.1 to 0.4
    /// ms. Between batches the workers sleep and use no CPU.
    pub fn threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads.min(crate::parallel::available_threads());
        self
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaConfig {
        &self.schema
    }

    /// The pipeline.
    pub fn build(self) -> Pipeline {
        Pipeline {
            decoder: Decoder::new(self.decoder),
            schema: self.schema,
            router: self.router,
            dead_letter: self.dead_letter,
            deadline_margin: self.deadline_margin,
            budget_warned: AtomicBool::new(false),
            threads: self.threads,
        }
    }
}

impl Pipeline {
    /// A builder for a pipeline that reads records with `schema`: add routes and a dead
    /// letter, then [`PipelineBuilder::build`]. With none, every valid record is filtered and
    /// failures are only logged.
    pub fn builder(schema: SchemaConfig) -> PipelineBuilder {
        PipelineBuilder {
            schema,
            decoder: DecoderConfig::default(),
            router: Router::new(),
            dead_letter: None,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
            threads: crate::parallel::default_threads(),
        }
    }

    /// The safety margin before the deadline.
    pub fn deadline_margin(&self) -> Duration {
        self.deadline_margin
    }

    /// The most threads decoding and classifying a batch ([`PipelineBuilder::threads`]).
    pub fn threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// The longest a batch can take with every retry of its destinations (they run
    /// concurrently: the largest budget among them) and of the dead letter (rejections are
    /// written after the deliveries), from what they can tell
    /// ([`Destination::retry_budget`](crate::Destination::retry_budget)); `None` when none can.
    pub fn retry_budget(&self) -> Option<Duration> {
        let deliveries = self
            .router
            .routes()
            .iter()
            .filter_map(|r| r.destination.retry_budget())
            .max();
        let dead_letter = self.dead_letter.as_ref().map(DeadLetter::retry_budget);
        match (deliveries, dead_letter) {
            (None, None) => None,
            (d, l) => Some(d.unwrap_or_default() + l.unwrap_or_default()),
        }
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaConfig {
        &self.schema
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Processes a raw Lambda Kinesis event (the JSON bytes the runtime hands over), with no
    /// deadline.
    pub async fn process(&self, event_json: &[u8]) -> Result<Processed, PipelineError> {
        self.process_until(event_json, Deadline::none()).await
    }

    /// [`Pipeline::process`], answering before `deadline` (see the
    /// [module documentation](self#the-lambda-deadline)).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use logging_core::{Deadline, Pipeline, SchemaConfig};
    /// let pipeline = Pipeline::builder(SchemaConfig::default()).build();
    /// // In a lambda_runtime handler: Deadline::from_epoch_millis(event.context.deadline).
    /// let deadline = Deadline::after(Duration::from_secs(60));
    /// let out = pipeline.process_until(br#"{"Records":[]}"#, deadline).await.unwrap();
    /// assert!(out.response.batch_item_failures.is_empty());
    /// # });
    /// ```
    pub async fn process_until(
        &self,
        event_json: &[u8],
        deadline: Deadline,
    ) -> Result<Processed, PipelineError> {
        // From the decoding on: the workers stay awake between the batch's phases.
        let _awake = KeepAwake::new(self.threads);
        let batch = self
            .decoder
            .decode_event_json_on(event_json, &crate::parallel::DecodeOnWorkers(self.threads))?;
        Ok(self.process_batch(&batch, Utc::now(), deadline).await)
    }

    /// Processes a Lambda Kinesis event (taken by value: its data buffers are reused) and
    /// answers with the Lambda response type, for code that already holds a `KinesisEvent`.
    ///
    /// A `KinesisEvent` cannot represent a record whose `data` is not base64: deserializing
    /// such an event fails as a whole, before this is called, and a handler that takes
    /// `LambdaEvent<KinesisEvent>` then fails the invocation, which Lambda retries until the
    /// record expires. Every record that reaches this method is dead-lettered or delivered on
    /// its own, as in [`Pipeline::process`]. Serve the raw invocation bytes instead (the
    /// default: `logging_core::lambda::serve` with the `lambda` feature, or
    /// [`Pipeline::process_until`] on the body): there a bad-base64 record is one
    /// dead-lettered record (`undecodable/bad_base64`), and the event is parsed once instead
    /// of twice.
    #[cfg(feature = "lambda-events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda-events")))]
    pub async fn process_event(
        &self,
        event: aws_lambda_events::event::kinesis::KinesisEvent,
    ) -> (
        Report,
        aws_lambda_events::event::streams::KinesisEventResponse,
    ) {
        self.process_event_until(event, Deadline::none()).await
    }

    /// [`Pipeline::process_event`], answering before `deadline`
    /// (`Deadline::from_epoch_millis(event.context.deadline)`). Like it, it never sees a
    /// record whose `data` is not base64 (see there); the raw path does.
    #[cfg(feature = "lambda-events")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lambda-events")))]
    pub async fn process_event_until(
        &self,
        event: aws_lambda_events::event::kinesis::KinesisEvent,
        deadline: Deadline,
    ) -> (
        Report,
        aws_lambda_events::event::streams::KinesisEventResponse,
    ) {
        let _awake = KeepAwake::new(self.threads);
        let batch = self.decoder.decode_event(event);
        let out = self.process_batch(&batch, Utc::now(), deadline).await;
        (out.report, out.response.into())
    }

    /// Processes an already decoded batch, with no deadline. `now` dates archive and
    /// dead-letter objects only when an entry has no time of its own (record timestamp,
    /// CloudWatch Logs timestamp or Kinesis arrival time) and the batch carries no timestamp
    /// at all.
    pub async fn process_decoded(&self, batch: &DecodedBatch, now: DateTime<Utc>) -> Processed {
        self.process_decoded_until(batch, now, Deadline::none())
            .await
    }

    /// Warns once when the time left is shorter than the retry budget.
    fn check_budget(&self, left: Duration) {
        if let Some(budget) = self.retry_budget()
            && budget > left
            && !self.budget_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                retry_budget_ms = budget.as_millis() as u64,
                time_left_ms = left.as_millis() as u64,
                "the destinations' retry budget exceeds the invocation's time: deliveries still \
                 retrying near the deadline are cut and their records reported for retry"
            );
        }
    }

    /// [`Pipeline::process_decoded`], answering before `deadline`.
    pub async fn process_decoded_until(
        &self,
        batch: &DecodedBatch,
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Processed {
        let _awake = KeepAwake::new(self.threads);
        self.process_batch(batch, now, deadline).await
    }

    /// [`Pipeline::process_decoded_until`], in a [`KeepAwake`] of the caller's.
    async fn process_batch(
        &self,
        batch: &DecodedBatch,
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Processed {
        let left = deadline.remaining();
        self.check_budget(left);
        let margin = self.deadline_margin.min(left / 4);
        // Destinations aim for `soft`; the pipeline stops waiting at `hard`; rejections are
        // dead-lettered by `last`.
        let soft = deadline.minus(margin);
        let hard = deadline.minus(margin / 2);
        let last = deadline.minus(margin / 4);
        let mut report = Report {
            records: batch.records.len(),
            items: batch.items.len(),
            ..Report::default()
        };
        let mut states: Vec<State> = Vec::with_capacity(batch.items.len());
        let mut records: Vec<Record<'_>> = Vec::with_capacity(batch.items.len());
        // Routing's view of each type, taken while the record's bytes are in cache.
        let mut marks: Vec<Mark> = Vec::with_capacity(batch.items.len());
        let mut failures: Vec<Failure<'_>> = Vec::new();
        // Counted by (reason, code) and named once at the end: a few distinct pairs, many
        // failures.
        let mut codes: Vec<((FailureReason, &'static str), usize)> = Vec::new();
        let mut filtered_types: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        // Classified on up to `threads` threads, in contiguous parts, and taken here in input
        // order: the sequential result.
        let take = |payload_bytes, classified, mark: Option<Mark>| {
            report.payload_bytes += payload_bytes;
            match classified {
                Classified::Control(_) => states.push(State::Control),
                Classified::Failed(f) => {
                    states.push(State::Failed(f.reason));
                    match codes.iter_mut().find(|(k, _)| *k == (f.reason, f.code)) {
                        Some((_, n)) => *n += 1,
                        None => codes.push(((f.reason, f.code), 1)),
                    }
                    failures.push(f);
                }
                Classified::Valid(r) => {
                    let mark = mark.unwrap_or_else(|| self.router.mark(&r.log_type));
                    if mark.any {
                        states.push(State::Routed {
                            rejected: false,
                            failed: false,
                        });
                        records.push(r);
                        marks.push(mark);
                    } else {
                        states.push(State::Filtered);
                        filtered_types.push(r.log_type);
                    }
                }
            }
        };
        crate::parallel::classify(&batch.items, &self.schema, &self.router, self.threads, take);

        for ((reason, code), n) in codes {
            *report
                .invalid_codes
                .entry(format!("{reason}/{code}"))
                .or_default() += n;
        }

        // Dead-letter and archive groups are dated by their first entry's own times (record
        // timestamp, CloudWatch Logs timestamp, Kinesis arrival time), the same in any replay.
        // Only an event without arrival times (made by hand) falls back to this: the batch's
        // first record timestamp (or CloudWatch Logs timestamp), `now` when it has no time.
        let now = records
            .iter()
            .find_map(|r| r.timestamp.map(|t| t.to_utc()))
            .or_else(|| {
                batch.items.iter().find_map(|i| {
                    i.origin()
                        .cwl()
                        .and_then(|c| DateTime::from_timestamp_millis(c.timestamp_ms()))
                })
            })
            .unwrap_or(now);

        // Deliveries and the dead-lettering of classification failures are independent: run
        // them together. Rejections are dead-lettered afterwards (their groups differ).
        let batches = self.router.route_marked(&records, &marks);
        let deliveries = batches
            .iter()
            .filter_map(|b| self.router.routes().get(b.route))
            .zip(&batches)
            .map(|(route, b)| -> std::pin::Pin<Box<dyn Future<Output = DeliveryReport> + Send + '_>> {
                let delivery = route.destination.deliver_until(b, soft);
                let len = b.len();
                Box::pin(async move {
                    match tokio::time::timeout_at(hard.instant(), delivery).await {
                        Ok(report) => report,
                        Err(_) => {
                            let mut report = DeliveryReport::with_len(len);
                            for slot in 0..len {
                                report.cut(slot);
                            }
                            report
                        }
                    }
                })
            })
            .collect();
        let failure_entries: Vec<DeadLetterEntry<'_>> = failures
            .iter()
            .map(|f| DeadLetterEntry {
                reason: f.reason,
                code: f.code,
                detail: &f.detail,
                log_type: f.log_type.as_deref(),
                destination: None,
                timestamp: None,
                data: f.data,
                origin: f.origin,
            })
            .collect();
        // The dead letter first: when its objects are too small to share among the threads,
        // a worker compresses them while this thread starts the deliveries.
        let (failure_dl, delivery_reports) = tokio::join!(
            self.dead_letter(&failure_entries, now, soft, hard),
            join_all(deliveries)
        );

        let mut rejections: Vec<DeadLetterEntry<'_>> = Vec::new();
        let mut rejected_payloads: Vec<usize> = Vec::new();
        for (b, delivery) in batches.iter().zip(&delivery_reports) {
            let name = self
                .router
                .routes()
                .get(b.route)
                .map(|r| r.destination.name())
                .unwrap_or("?");
            if delivery.len() != b.len() {
                tracing::error!(
                    destination = name,
                    expected = b.len(),
                    got = delivery.len(),
                    "destination reported a different number of records; missing ones count as failed"
                );
            }
            let mut summary = DestinationSummary {
                name: name.to_owned(),
                artifacts: delivery.artifacts.clone(),
                cut: delivery.cut_count(),
                ..DestinationSummary::default()
            };
            if summary.cut > 0 {
                tracing::warn!(
                    destination = name,
                    cut = summary.cut,
                    "deliveries cut at the deadline; Lambda will replay them"
                );
            }
            for (slot, _, record) in b.iter() {
                let Some(State::Routed { rejected, failed }) = states.get_mut(record.index) else {
                    continue;
                };
                match delivery.status(slot) {
                    Some(DeliveryStatus::Delivered) => summary.delivered += 1,
                    Some(DeliveryStatus::Rejected(reason)) => {
                        summary.rejected += 1;
                        *rejected = true;
                        rejections.push(DeadLetterEntry {
                            reason: FailureReason::Rejected,
                            code: "rejected",
                            detail: reason,
                            log_type: Some(&record.log_type),
                            destination: Some(name),
                            timestamp: record.timestamp,
                            data: record.data,
                            origin: record.origin,
                        });
                        rejected_payloads.push(record.index);
                    }
                    Some(DeliveryStatus::Failed(error)) => {
                        summary.retry += 1;
                        *failed = true;
                        tracing::warn!(destination = name, sequence_number = %record.origin.sequence_number(),
                            error = %error, "delivery failed after retries; Lambda will replay");
                    }
                    None => {
                        summary.retry += 1;
                        *failed = true;
                    }
                }
            }
            report.destinations.push(summary);
        }
        let rejection_dl = if rejections.is_empty() {
            None
        } else {
            Some(
                self.dead_letter(&rejections, now, last, deadline.minus(margin / 8))
                    .await,
            )
        };

        // Failed dead-lettering turns the payload into a retry.
        let failure_payloads: Vec<usize> = failures.iter().map(|f| f.index).collect();
        for (entries, dl) in [
            (&failure_payloads, Some(&failure_dl)),
            (&rejected_payloads, rejection_dl.as_ref()),
        ] {
            let Some(dl) = dl else { continue };
            report.dead_letter.written += dl.written;
            report.dead_letter.retry += dl.failed;
            report.dead_letter.cut += dl.cut;
            report.dead_letter.not_configured += dl.not_configured;
            report
                .dead_letter
                .objects
                .extend(dl.objects.iter().cloned());
            for (&payload, error) in entries.iter().zip(&dl.errors) {
                if error.is_some()
                    && let Some(s) = states.get_mut(payload)
                {
                    *s = State::Retry;
                }
            }
        }

        let mut lowest: Option<&str> = None;
        for (i, state) in states.iter().enumerate() {
            let retry = match *state {
                State::Control => {
                    report.control += 1;
                    false
                }
                State::Filtered => {
                    report.filtered += 1;
                    false
                }
                State::Failed(FailureReason::Rejected) => {
                    report.rejected += 1;
                    false
                }
                State::Failed(reason) => {
                    report.invalid.add(reason);
                    false
                }
                State::Routed { failed: true, .. } | State::Retry => {
                    report.retry += 1;
                    true
                }
                State::Routed { rejected: true, .. } => {
                    report.rejected += 1;
                    false
                }
                State::Routed { .. } => {
                    report.delivered += 1;
                    false
                }
            };
            if retry && let Some(item) = batch.items.get(i) {
                let seq: &str = item.origin().sequence_number();
                if lowest.is_none_or(|l| cmp_sequence_numbers(seq, l).is_lt()) {
                    lowest = Some(seq);
                }
            }
        }
        // A replay must not start inside a stored group of a destination that writes each
        // group as one object keyed by its first record: it would store the group's later
        // records again under another key. Move back to the first record of every such group
        // that straddles the start, until none does.
        if let Some(mut start) = lowest {
            loop {
                let mut moved = false;
                for b in &batches {
                    let whole = self
                        .router
                        .routes()
                        .get(b.route)
                        .is_some_and(|r| r.destination.groups_are_objects());
                    if !whole {
                        continue;
                    }
                    for g in &b.groups {
                        let (Some(first), Some(last)) = (g.records.first(), g.records.last())
                        else {
                            continue;
                        };
                        let first = first.origin.sequence_number();
                        if cmp_sequence_numbers(first, start).is_lt()
                            && cmp_sequence_numbers(last.origin.sequence_number(), start).is_ge()
                        {
                            start = first;
                            moved = true;
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
            lowest = Some(start);
        }
        let mut response = BatchResponse::default();
        if let Some(seq) = lowest {
            report.batch_item_failure = Some(seq.to_owned());
            response.batch_item_failures.push(BatchItemFailure {
                item_identifier: seq.to_owned(),
            });
        }
        // Tallied by routing's marks (integer compares; a map lookup per record, string
        // compares, cost more than the rest of the report), then named in order.
        let mut tally: Vec<(Mark, &str, LogTypeCounts)> = Vec::new();
        let mut last: Option<usize> = None;
        for (r, mark) in records.iter().zip(&marks) {
            let is = |i: &usize| {
                tally
                    .get(*i)
                    .is_some_and(|(m, t, _)| m.same_type(t, mark, &r.log_type))
            };
            let i = match last.filter(is) {
                Some(i) => i,
                None => match (0..tally.len()).find(is) {
                    Some(i) => i,
                    None => {
                        tally.push((*mark, r.log_type.as_ref(), LogTypeCounts::default()));
                        tally.len() - 1
                    }
                },
            };
            last = Some(i);
            let Some((_, _, c)) = tally.get_mut(i) else {
                continue;
            };
            c.routed += 1;
            match states.get(r.index) {
                Some(State::Routed { failed: true, .. } | State::Retry) => c.retry += 1,
                Some(State::Routed { rejected: true, .. }) => c.rejected += 1,
                Some(State::Routed { .. }) => c.delivered += 1,
                _ => {}
            }
        }
        let mut log_types: BTreeMap<&str, LogTypeCounts> =
            tally.into_iter().map(|(_, t, c)| (t, c)).collect();
        for t in &filtered_types {
            log_types.entry(t).or_default().filtered += 1;
        }
        report.log_types = log_types
            .into_iter()
            .map(|(t, c)| (t.to_owned(), c))
            .collect();
        debug_assert_eq!(report.outcome_total(), report.items);
        tracing::debug!(
            records = report.records,
            items = report.items,
            delivered = report.delivered,
            filtered = report.filtered,
            control = report.control,
            invalid = report.invalid.total(),
            rejected = report.rejected,
            retry = report.retry,
            batch_item_failure = report.batch_item_failure.as_deref(),
            "batch processed"
        );
        Processed { report, response }
    }

    /// Dead-letters `entries`, aiming to finish by `soft` and giving up at `hard`.
    async fn dead_letter(
        &self,
        entries: &[DeadLetterEntry<'_>],
        now: DateTime<Utc>,
        soft: Deadline,
        hard: Deadline,
    ) -> DlOutcome {
        if entries.is_empty() {
            return DlOutcome::default();
        }
        match &self.dead_letter {
            Some(dl) => {
                let write = dl.write_until(entries, now, soft);
                match tokio::time::timeout_at(hard.instant(), write).await {
                    Ok(report) => DlOutcome::from(report),
                    Err(_) => {
                        let cut: Arc<str> = Arc::from(CUT_AT_DEADLINE);
                        DlOutcome {
                            errors: vec![Some(cut); entries.len()],
                            failed: entries.len(),
                            cut: entries.len(),
                            ..DlOutcome::default()
                        }
                    }
                }
            }
            None => {
                for e in entries {
                    tracing::warn!(
                        reason = e.reason.as_str(),
                        code = e.code,
                        detail = e.detail,
                        destination = e.destination,
                        sequence_number = %e.origin.sequence_number(),
                        sub_sequence = e.origin.sub_sequence(),
                        payload = %String::from_utf8_lossy(&e.data[..e.data.len().min(512)]),
                        "no dead letter configured: payload counted and logged only"
                    );
                }
                DlOutcome {
                    not_configured: entries.len(),
                    errors: vec![None; entries.len()],
                    ..DlOutcome::default()
                }
            }
        }
    }
}

/// Dead-letter results with the not-configured case.
#[derive(Debug, Default)]
struct DlOutcome {
    errors: Vec<Option<Arc<str>>>,
    objects: Vec<String>,
    written: usize,
    failed: usize,
    cut: usize,
    not_configured: usize,
}

impl From<DeadLetterReport> for DlOutcome {
    fn from(r: DeadLetterReport) -> Self {
        Self {
            written: r.written(),
            failed: r.failed(),
            cut: r.cut(),
            errors: r.errors,
            objects: r.objects,
            not_configured: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RoutedBatch;
    use crate::destination::{DeliveryReport, Destination};
    use async_trait::async_trait;
    use base64::Engine as _;

    fn event(payloads: &[&str]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let records: Vec<_> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({"kinesis": {"data": b64.encode(p), "partitionKey": "k",
                    "sequenceNumber": (90 + i * 5).to_string(), "approximateArrivalTimestamp": 1.0},
                    "eventID": format!("shardId-0:{}", 90 + i * 5)})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()
    }

    /// Reports only its first slot: the rest must count as failed, never as delivered.
    struct Forgetful;

    #[async_trait]
    impl Destination for Forgetful {
        fn name(&self) -> &str {
            "forgetful"
        }
        async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
            let mut r = DeliveryReport::with_len(1.min(batch.len()));
            r.deliver(0);
            r
        }
    }

    const OK1: &str = r#"{"log_type":"a","time":"2020-03-14"}"#;

    /// Groups with no timestamp (and the dead letter's non-JSON lines) are keyed by the Kinesis
    /// arrival time, so a replay of the batch, at any later time, writes the same keys.
    #[tokio::test]
    async fn untimed_groups_replay_onto_the_same_keys() {
        use crate::{ArchiveConfig, DeadLetterConfig, MemoryStore, ObjectStore, S3Archive};
        let schema = SchemaConfig {
            timestamp_required: false,
            ..SchemaConfig::default()
        };
        let archive_store = Arc::new(MemoryStore::new());
        let failed_store = Arc::new(MemoryStore::new());
        let p = Pipeline::builder(schema)
            .route(
                TypeFilter::all(),
                S3Archive::builder(archive_store.clone(), ArchiveConfig::default()),
            )
            .dead_letter(DeadLetter::builder(
                failed_store.clone(),
                DeadLetterConfig::default(),
            ))
            .build();
        // `event` sets approximateArrivalTimestamp to 1.0: 1970-01-01T00:00:01Z.
        let e = event(&[r#"{"log_type":"a"}"#, "not json"]);
        let mut runs = Vec::new();
        for _ in 0..2 {
            let out = p.process(&e).await.unwrap();
            assert_eq!(
                (out.report.delivered, out.report.invalid.unknown_type),
                (1, 1)
            );
            runs.push((
                archive_store.list("").await.unwrap(),
                failed_store.list("").await.unwrap(),
            ));
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        assert_eq!(runs[0], runs[1]);
        assert_eq!(runs[0].0.len(), 1);
        assert!(
            runs[0].0[0].starts_with("a/1970-01/01/1970-01-01-00:00:01-"),
            "{:?}",
            runs[0]
        );
        assert_eq!(runs[0].1.len(), 1);
        assert!(
            runs[0].1[0].contains("/1970-01/01/1970-01-01-00:00:01-"),
            "{:?}",
            runs[0]
        );
    }

    /// Fails every record transiently.
    struct Down;

    #[async_trait]
    impl Destination for Down {
        fn name(&self) -> &str {
            "down"
        }
        async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
            DeliveryReport::all_failed(batch, "503")
        }
    }

    /// A record of type `b` fails between two archived records of type `a`: the answer moves
    /// back to the first record of the stored `a` group, and the replay from there overwrites
    /// that object under its key instead of writing its second line under a new one.
    #[tokio::test]
    async fn a_replay_never_starts_inside_a_stored_archive_group() {
        use crate::{ArchiveConfig, MemoryStore, ObjectStore, S3Archive};
        let store = Arc::new(MemoryStore::new());
        let p = Pipeline::builder(SchemaConfig::default())
            .route(
                TypeFilter::all(),
                S3Archive::builder(store.clone(), ArchiveConfig::default()),
            )
            .route(TypeFilter::only(["b"]), Down)
            .build();
        const A1: &str = r#"{"log_type":"a","log_id":"1","time":"2020-03-14T00:00:00Z"}"#;
        const B: &str = r#"{"log_type":"b","log_id":"2","time":"2020-03-14T00:00:01Z"}"#;
        const A2: &str = r#"{"log_type":"a","log_id":"3","time":"2020-03-14T00:00:02Z"}"#;
        const C: &str = r#"{"log_type":"c","log_id":"4","time":"2020-03-14T00:00:03Z"}"#;
        // Sequence numbers 90, 95, 100, 105.
        let out = p.process(&event(&[A1, B, A2, C])).await.unwrap();
        let r = &out.report;
        assert_eq!((r.delivered, r.retry), (3, 1), "{r:?}");
        assert_eq!(r.batch_item_failure.as_deref(), Some("90"));
        assert_eq!(
            r.log_types.get("a"),
            Some(&LogTypeCounts {
                routed: 2,
                delivered: 2,
                ..LogTypeCounts::default()
            })
        );
        assert_eq!(r.log_types.get("b").map(|c| c.retry), Some(1));
        let keys = store.list("").await.unwrap();
        // The replay from 90 is the same batch: the same three objects, overwritten.
        let again = p.process(&event(&[A1, B, A2, C])).await.unwrap();
        assert_eq!(again.report.batch_item_failure.as_deref(), Some("90"));
        assert_eq!(store.list("").await.unwrap(), keys);
        assert_eq!(keys.len(), 3, "{keys:?}");

        // Without a group straddling it, the answer stays the lowest failed record: `c`
        // starts after 95 and `a` ends before it.
        let out = p.process(&event(&[A1, B, C])).await.unwrap();
        assert_eq!(out.report.batch_item_failure.as_deref(), Some("95"));
    }

    /// Never answers.
    struct Stuck;

    #[async_trait]
    impl Destination for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }
        async fn deliver(&self, _batch: &RoutedBatch<'_>) -> DeliveryReport {
            std::future::pending().await
        }
        fn retry_budget(&self) -> Option<Duration> {
            Some(Duration::from_secs(150))
        }
    }

    /// A destination that cannot finish in time is cut before the deadline: its records are
    /// retried from the lowest sequence number, what was delivered elsewhere stays delivered,
    /// failures are still dead-lettered, and the answer comes before the deadline.
    #[tokio::test]
    async fn deliveries_are_cut_before_the_deadline() {
        use crate::{DeadLetterConfig, MemoryStore, ObjectStore};
        let store = Arc::new(MemoryStore::new());
        let p = Pipeline::builder(SchemaConfig::default())
            .route(TypeFilter::only(["a"]), Stuck)
            .route(TypeFilter::only(["b"]), Forgetful)
            .dead_letter(DeadLetter::builder(
                store.clone(),
                DeadLetterConfig::default(),
            ))
            .deadline_margin(Duration::from_millis(400))
            .build();
        assert_eq!(
            p.retry_budget(),
            Some(Duration::from_secs(150) + DeadLetterConfig::default().retry.budget())
        );
        const OK_B: &str = r#"{"log_type":"b","time":"2020-03-14"}"#;
        let started = tokio::time::Instant::now();
        let deadline = Deadline::after(Duration::from_millis(1600));
        let out = p
            .process_until(&event(&[OK_B, OK1, "x", OK1]), deadline)
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1600), "{took:?}");
        assert!(took >= Duration::from_millis(1100), "{took:?}");
        let r = &out.report;
        assert_eq!(
            (r.delivered, r.retry, r.invalid.unknown_type),
            (1, 2, 1),
            "{r:?}"
        );
        assert_eq!(r.destinations[0].name, "stuck");
        assert_eq!((r.destinations[0].cut, r.destinations[0].retry), (2, 2));
        assert_eq!(r.destinations[1].cut, 0);
        // Sequence numbers 90, 95, 100, 105: the stuck records are 95 and 105.
        assert_eq!(r.batch_item_failure.as_deref(), Some("95"));
        assert_eq!(r.dead_letter.written, 1);
        assert_eq!(store.list("").await.unwrap().len(), 1);
        assert_eq!(r.outcome_total(), r.items);
    }

    /// A deadline already too close: every routed record is retried, nothing hangs.
    #[tokio::test]
    async fn a_passed_deadline_retries_everything_at_once() {
        let p = Pipeline::builder(SchemaConfig::default())
            .route(TypeFilter::all(), Stuck)
            .build();
        let out = p
            .process_until(&event(&[OK1, OK1]), Deadline::after(Duration::ZERO))
            .await
            .unwrap();
        assert_eq!((out.report.retry, out.report.destinations[0].cut), (2, 2));
        assert_eq!(out.report.batch_item_failure.as_deref(), Some("90"));
    }

    #[tokio::test]
    async fn unreported_slots_are_retried_from_the_lowest_sequence_number() {
        let p = Pipeline::builder(SchemaConfig::default())
            .route(TypeFilter::all(), Forgetful)
            .build();
        let out = p.process(&event(&[OK1, "x", OK1, OK1])).await.unwrap();
        let r = &out.report;
        assert_eq!((r.delivered, r.retry, r.invalid.unknown_type), (1, 2, 1));
        // Sequence numbers 90, 95, 100, 105: "100" < "95" as text but not as a number.
        assert_eq!(r.batch_item_failure.as_deref(), Some("100"));
        assert_eq!(out.response.batch_item_failures[0].item_identifier, "100");
        // Without a dead letter, failures are counted and logged, not retried.
        assert_eq!(r.dead_letter.not_configured, 1);
        assert_eq!(r.invalid_codes.get("unknown_type/not_json"), Some(&1));
        assert_eq!(r.outcome_total(), r.items);
        let json = serde_json::to_string(&out.response).unwrap();
        assert_eq!(json, r#"{"batchItemFailures":[{"itemIdentifier":"100"}]}"#);
    }

    #[tokio::test]
    async fn filtered_and_malformed_events() {
        let p = Pipeline::builder(SchemaConfig::default())
            .route(TypeFilter::only(["b"]), Forgetful)
            .build();
        let out = p.process(&event(&[OK1])).await.unwrap();
        assert_eq!((out.report.filtered, out.report.delivered), (1, 0));
        assert!(out.response.batch_item_failures.is_empty());
        let err = p.process(b"{\"nope\":1}").await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("pipeline: decoding the Lambda event failed"),
            "{err}"
        );
        let empty = p.process(br#"{"Records":[]}"#).await.unwrap();
        assert_eq!(empty.report, Report::default());
    }

    #[cfg(feature = "lambda-events")]
    #[tokio::test]
    async fn lambda_event_types() {
        use aws_lambda_events::event::kinesis::KinesisEvent;
        let p = Pipeline::builder(SchemaConfig::default())
            .route(TypeFilter::all(), Forgetful)
            .build();
        let ev: KinesisEvent = serde_json::from_slice(&event(&[OK1, OK1])).unwrap();
        let (report, response) = p.process_event(ev).await;
        assert_eq!(report.retry, 1);
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("95")
        );
    }
}
