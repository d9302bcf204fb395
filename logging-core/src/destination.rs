//! The [`Destination`] trait every delivery target implements, and its [`DeliveryReport`].
//!
//! # Writing a destination
//!
//! The pipeline calls [`Destination::deliver`] once per invocation with the records routed to
//! it (a [`RoutedBatch`]: records grouped by `log_type`, each record at a *slot*
//! `0..batch.len()`), concurrently with the other destinations. The destination answers with a
//! [`DeliveryReport`] that says, for every slot, one of:
//!
//! * [`DeliveryStatus::Delivered`]: the record is stored; nothing more to do.
//! * [`DeliveryStatus::Rejected`]: the target refused *this record* permanently (e.g. an
//!   Elasticsearch 400 mapping error). The pipeline writes it to the dead letter with the
//!   reason and counts it as `rejected`; Lambda does not replay it.
//! * [`DeliveryStatus::Failed`]: delivery failed transiently *after the destination's own
//!   retries* (throttling, 5xx, network). The pipeline reports the record's sequence number in
//!   `batchItemFailures`, so Lambda replays from there.
//!
//! Rules that keep the pipeline lossless:
//!
//! * Never panic and never return early without a status: build the report with
//!   [`DeliveryReport::new`] (every slot starts as failed, "not reported") and mark what
//!   happened; a slot left unmarked is a transient failure, never a silent success.
//! * Retry transient errors inside `deliver` (bounded, with backoff); the pipeline does not.
//! * Write the record bytes unchanged ([`Record::data`](crate::classify::Record::data)); do
//!   not re-serialise. Build one buffer per output object, not one per record.
//! * Make outputs idempotent where the target allows (deterministic keys or ids), since Lambda
//!   replays records after a partial failure.
//!
//! # Deadlines
//!
//! A Lambda invocation has a deadline. [`Pipeline::process_until`](crate::Pipeline::process_until)
//! stops waiting for a destination at the deadline (minus a safety margin) and counts what it
//! did not report as failed, so that Lambda replays those records instead of the function
//! timing out. A destination can do better by overriding [`Destination::deliver_until`]: stop
//! retrying before the deadline and say exactly which records it stored (mark the others with
//! [`DeliveryReport::cut`]). [`Destination::retry_budget`] states the longest a delivery can
//! take with every retry, so that the pipeline can warn when it exceeds the time left.
//!
//! ```
//! use async_trait::async_trait;
//! use logging_core::destination::{Destination, DeliveryReport};
//! use logging_core::routing::RoutedBatch;
//!
//! /// Accepts records of up to 1 KiB; refuses larger ones.
//! struct Small;
//!
//! #[async_trait]
//! impl Destination for Small {
//!     fn name(&self) -> &str {
//!         "small"
//!     }
//!     async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
//!         let mut report = DeliveryReport::new(batch);
//!         for (slot, _group, record) in batch.iter() {
//!             if record.data.len() <= 1024 {
//!                 report.deliver(slot);
//!             } else {
//!                 report.reject(slot, "record larger than 1 KiB");
//!             }
//!         }
//!         report
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use crate::batch::RoutedBatch;
use crate::schema::SchemaConfig;

/// A delivery target: S3 archive, Kinesis forward, Elasticsearch, Fluentd, ...
///
/// See the [module documentation](self) for the contract.
#[async_trait]
pub trait Destination: Send + Sync {
    /// A short name for reports, logs and dead-letter envelopes (e.g. `s3://bucket/prefix`).
    fn name(&self) -> &str;

    /// Delivers the batch and says what happened to every record (slot).
    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport;

    /// Delivers the batch, finishing by `deadline`. The default calls
    /// [`Destination::deliver`]; the pipeline stops waiting at the deadline either way and
    /// counts every slot as failed (cut) when it has to. Override it to stop retrying in time
    /// and report exactly what was stored, marking the rest [`DeliveryReport::cut`].
    async fn deliver_until(&self, batch: &RoutedBatch<'_>, deadline: Deadline) -> DeliveryReport {
        let _ = deadline;
        self.deliver(batch).await
    }

    /// The longest one [`Destination::deliver`] call can take with every attempt and backoff
    /// (attempts × per-attempt timeouts + backoffs), when the destination can tell; `None`
    /// (the default) when it cannot.
    fn retry_budget(&self) -> Option<Duration> {
        None
    }

    /// Whether the destination writes each `log_type` group of a batch as one object keyed by
    /// the group's first record (as [`S3Archive`](crate::S3Archive) does). The default is
    /// `false`.
    ///
    /// Then a replay must start at or before the first record of every group it touches:
    /// started in the middle of a stored group, the replay would write the group's later
    /// records again under another key, and they would be stored twice. When this is `true`,
    /// the pipeline moves the sequence number it answers Lambda with back to the first record
    /// of any stored group that holds a record at or after it (repeated until no group
    /// straddles it), so that a replay only overwrites whole objects under the same keys.
    fn groups_are_objects(&self) -> bool {
        false
    }
}

/// What [`PipelineBuilder::route`](crate::pipeline::PipelineBuilder::route) takes: a
/// destination, or the builder of one that takes settings from the pipeline's schema.
///
/// The schema is handed over once, to [`Pipeline::builder`](crate::Pipeline::builder), and
/// the pipeline builds every destination that needs it from it, so that a destination can
/// never date or name its outputs in another zone than the one the records were read in.
/// The builders of the crate's destinations that need the schema:
///
/// * [`S3Archive::builder`](crate::S3Archive::builder): the zone of key dates;
/// * [`SearchDestination::builder`](crate::search::SearchDestination::builder): the zone of
///   index dates;
/// * [`FluentDestination::builder`](crate::fluent::FluentDestination::builder): the zone of
///   wall-clock event times;
/// * [`DeadLetter::builder`](crate::DeadLetter::builder) (for
///   [`PipelineBuilder::dead_letter`](crate::pipeline::PipelineBuilder::dead_letter)): the
///   unknown-type prefix and the zone.
///
/// Any [`Destination`] that needs nothing of the schema ([`KinesisForward`](crate::KinesisForward),
/// your own) is taken as it is, by value or in an [`Arc`]. A destination of your own that does
/// need it implements this trait on its builder:
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use logging_core::destination::{DeliveryReport, Destination, IntoDestination};
/// use logging_core::routing::RoutedBatch;
/// use logging_core::{Pipeline, SchemaConfig, TimeZone, TypeFilter};
///
/// struct Stamped { zone: TimeZone }
///
/// #[async_trait]
/// impl Destination for Stamped {
///     fn name(&self) -> &str { "stamped" }
///     async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
///         DeliveryReport::all_delivered(batch)
///     }
/// }
///
/// /// Builds a `Stamped` in the pipeline's zone.
/// struct StampedBuilder;
///
/// impl IntoDestination for StampedBuilder {
///     fn into_destination(self, schema: &SchemaConfig) -> Arc<dyn Destination> {
///         Arc::new(Stamped { zone: schema.time_zone })
///     }
/// }
///
/// let pipeline = Pipeline::builder(SchemaConfig::default())
///     .route(TypeFilter::all(), StampedBuilder)
///     .build();
/// assert_eq!(pipeline.router().routes().len(), 1);
/// ```
pub trait IntoDestination {
    /// The destination, built with the pipeline's schema.
    fn into_destination(self, schema: &SchemaConfig) -> Arc<dyn Destination>;
}

impl<D: Destination + 'static> IntoDestination for D {
    fn into_destination(self, _schema: &SchemaConfig) -> Arc<dyn Destination> {
        Arc::new(self)
    }
}

impl<D: Destination + 'static> IntoDestination for Arc<D> {
    fn into_destination(self, _schema: &SchemaConfig) -> Arc<dyn Destination> {
        self
    }
}

impl IntoDestination for Arc<dyn Destination> {
    fn into_destination(self, _schema: &SchemaConfig) -> Arc<dyn Destination> {
        self
    }
}

/// When an invocation must have answered: the Lambda deadline.
///
/// ```
/// use std::time::Duration;
/// use logging_core::Deadline;
/// // In a Lambda handler: Deadline::from_epoch_millis(event.context.deadline)
/// let d = Deadline::after(Duration::from_secs(60));
/// assert!(d.remaining() <= Duration::from_secs(60));
/// assert!(d.remaining() > Duration::from_secs(59));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    /// The deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Self(tokio::time::Instant::now() + d)
    }

    /// The deadline at a wall-clock time (already passed: now).
    pub fn at(t: SystemTime) -> Self {
        Self::after(t.duration_since(SystemTime::now()).unwrap_or_default())
    }

    /// The deadline as milliseconds since the Unix epoch: `lambda_runtime::Context::deadline`.
    pub fn from_epoch_millis(ms: u64) -> Self {
        Self::at(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The deadline at a tokio instant.
    pub fn from_instant(at: tokio::time::Instant) -> Self {
        Self(at)
    }

    /// The tokio instant (for `tokio::time::timeout_at`).
    pub fn instant(self) -> tokio::time::Instant {
        self.0
    }

    /// Time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// `d` earlier, but not before now.
    pub fn minus(self, d: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self(self.0.checked_sub(d).map_or(now, |t| t.max(now)))
    }

    /// No deadline: far enough ahead never to matter (a year).
    pub fn none() -> Self {
        Self::after(Duration::from_secs(365 * 24 * 3600))
    }
}

/// The reason of slots cut at the deadline (see [`DeliveryReport::cut`]).
pub const CUT_AT_DEADLINE: &str = "cut at the deadline: not delivered in the invocation's time";

impl fmt::Debug for dyn Destination + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.name())
    }
}

/// What happened to one record at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Stored.
    Delivered,
    /// Refused permanently, with the destination's reason: goes to the dead letter.
    Rejected(Arc<str>),
    /// Failed transiently after retries, with the last error: Lambda replays it.
    Failed(Arc<str>),
}

impl DeliveryStatus {
    /// Whether the record failed because the deadline came first.
    pub fn is_cut(&self) -> bool {
        matches!(self, DeliveryStatus::Failed(e) if e.starts_with(CUT_AT_DEADLINE))
    }
}

/// The result of [`Destination::deliver`]: a status per slot of the batch, and the names of
/// what was written (object keys, stream names) for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    statuses: Vec<DeliveryStatus>,
    /// What the destination wrote (object keys, `stream:<name>`), for reports and tools.
    pub artifacts: Vec<String>,
}

const NOT_REPORTED: &str = "destination did not report this record";

impl DeliveryReport {
    /// A report for `batch` with every slot failed ("not reported") until marked otherwise.
    pub fn new(batch: &RoutedBatch<'_>) -> Self {
        Self::with_len(batch.len())
    }

    /// A report for `len` slots, every slot failed ("not reported") until marked otherwise.
    pub fn with_len(len: usize) -> Self {
        let not_reported: Arc<str> = Arc::from(NOT_REPORTED);
        Self {
            statuses: vec![DeliveryStatus::Failed(not_reported); len],
            artifacts: Vec::new(),
        }
    }

    /// A report with every slot delivered.
    pub fn all_delivered(batch: &RoutedBatch<'_>) -> Self {
        Self {
            statuses: vec![DeliveryStatus::Delivered; batch.len()],
            artifacts: Vec::new(),
        }
    }

    /// A report with every slot failed transiently with `error`.
    pub fn all_failed(batch: &RoutedBatch<'_>, error: impl fmt::Display) -> Self {
        let error: Arc<str> = Arc::from(error.to_string());
        Self {
            statuses: vec![DeliveryStatus::Failed(error); batch.len()],
            artifacts: Vec::new(),
        }
    }

    /// Sets the status of `slot`; a slot outside the batch is ignored (and logged).
    pub fn set(&mut self, slot: usize, status: DeliveryStatus) {
        match self.statuses.get_mut(slot) {
            Some(s) => *s = status,
            None => tracing::error!(
                slot,
                len = self.statuses.len(),
                "delivery status for a slot outside the batch"
            ),
        }
    }

    /// Marks `slot` delivered.
    pub fn deliver(&mut self, slot: usize) {
        self.set(slot, DeliveryStatus::Delivered);
    }

    /// Marks `slots` delivered.
    pub fn deliver_range(&mut self, slots: std::ops::Range<usize>) {
        for slot in slots {
            self.deliver(slot);
        }
    }

    /// Marks `slot` rejected permanently with `reason`.
    pub fn reject(&mut self, slot: usize, reason: impl Into<Arc<str>>) {
        self.set(slot, DeliveryStatus::Rejected(reason.into()));
    }

    /// Marks `slot` failed transiently with `error`.
    pub fn fail(&mut self, slot: usize, error: impl Into<Arc<str>>) {
        self.set(slot, DeliveryStatus::Failed(error.into()));
    }

    /// Marks `slot` failed because the deadline came first ([`CUT_AT_DEADLINE`]); Lambda
    /// replays it.
    pub fn cut(&mut self, slot: usize) {
        self.set(slot, DeliveryStatus::Failed(Arc::from(CUT_AT_DEADLINE)));
    }

    /// Marks `slots` failed transiently with one shared `error`.
    pub fn fail_range(&mut self, slots: std::ops::Range<usize>, error: impl fmt::Display) {
        let error: Arc<str> = Arc::from(error.to_string());
        for slot in slots {
            self.set(slot, DeliveryStatus::Failed(error.clone()));
        }
    }

    /// The status of `slot`.
    pub fn status(&self, slot: usize) -> Option<&DeliveryStatus> {
        self.statuses.get(slot)
    }

    /// Every slot's status, in slot order.
    pub fn statuses(&self) -> &[DeliveryStatus] {
        &self.statuses
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// Whether the report has no slot.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }

    /// Number of slots cut at the deadline (failed with [`CUT_AT_DEADLINE`]).
    pub fn cut_count(&self) -> usize {
        self.statuses.iter().filter(|s| s.is_cut()).count()
    }

    /// Counts of (delivered, rejected, failed) slots.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for s in &self.statuses {
            match s {
                DeliveryStatus::Delivered => c.0 += 1,
                DeliveryStatus::Rejected(_) => c.1 += 1,
                DeliveryStatus::Failed(_) => c.2 += 1,
            }
        }
        c
    }
}

/// Bounded retries with exponential backoff and full jitter, for destinations that write
/// whole objects (S3 archive, dead letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, at least 1 (default 3).
    pub max_attempts: u32,
    /// Backoff before the first retry (default 100 ms), doubled per retry; in configuration
    /// `initial_backoff_ms`, as in `kinesis_utils::PutRecordsConfig`.
    #[serde(rename = "initial_backoff_ms", with = "millis")]
    pub initial_backoff: Duration,
    /// Upper bound of one backoff (default 2 s); in configuration `max_backoff_ms`.
    #[serde(rename = "max_backoff_ms", with = "millis")]
    pub max_backoff: Duration,
    /// Longest one attempt may take before it counts as failed (default 30 s); in
    /// configuration `attempt_timeout_ms`.
    #[serde(rename = "attempt_timeout_ms", with = "millis")]
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retry: one attempt.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (1-based): full jitter over the exponential bound.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let bound = exp.min(self.max_backoff);
        bound.mul_f64(fastrand::f64())
    }

    /// The longest [`RetryPolicy::run`] can take: every attempt at its timeout plus the
    /// largest backoff before each retry.
    pub fn budget(&self) -> Duration {
        self.budget_with(self.attempt_timeout)
    }

    /// [`RetryPolicy::budget`] when each attempt takes at most `attempt`.
    pub fn budget_with(&self, attempt: Duration) -> Duration {
        let attempts = self.max_attempts.max(1);
        let backoffs = (1..attempts)
            .map(|retry| {
                self.initial_backoff
                    .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
                    .min(self.max_backoff)
            })
            .fold(Duration::ZERO, Duration::saturating_add);
        attempt.saturating_mul(attempts).saturating_add(backoffs)
    }

    /// [`RetryPolicy::run`] with each attempt bounded by [`RetryPolicy::attempt_timeout`],
    /// giving up at `deadline`: no retry whose backoff would end past it, and an attempt still
    /// running at the deadline is abandoned.
    pub async fn run_until<T, E, F, Fut>(
        &self,
        deadline: Deadline,
        mut op: F,
    ) -> Result<T, Stopped<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let mut attempt = 1;
        let mut last: Option<String> = None;
        loop {
            let attempt_end = deadline
                .instant()
                .min(tokio::time::Instant::now() + self.attempt_timeout);
            let error = match tokio::time::timeout_at(attempt_end, op()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => Stopped::Error(e),
                Err(_) if attempt_end >= deadline.instant() => {
                    return Err(Stopped::Deadline(last));
                }
                Err(_) => Stopped::TimedOut(self.attempt_timeout),
            };
            if attempt >= self.max_attempts.max(1) {
                return Err(error);
            }
            let backoff = self.backoff(attempt);
            if backoff >= deadline.remaining() {
                tracing::warn!(attempt, error = %error, "no time left before the deadline to retry");
                return Err(Stopped::Deadline(Some(error.to_string())));
            }
            tracing::warn!(attempt, error = %error, "retrying after a transient failure");
            last = Some(error.to_string());
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// Runs `op` until it succeeds or the attempts are used up; returns the last error.
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt >= self.max_attempts.max(1) => return Err(e),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "retrying after a transient failure");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Why [`RetryPolicy::run_until`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped<E> {
    /// Every attempt failed; the last error.
    Error(E),
    /// The last attempt took longer than the attempt timeout.
    TimedOut(Duration),
    /// The deadline came first; the error of the last finished attempt, if one failed.
    Deadline(Option<String>),
}

impl<E> Stopped<E> {
    /// Whether the deadline stopped the retries.
    pub fn is_deadline(&self) -> bool {
        matches!(self, Stopped::Deadline(_))
    }
}

impl<E: fmt::Display> fmt::Display for Stopped<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Error(e) => e.fmt(f),
            Stopped::TimedOut(t) => write!(f, "attempt timed out after {t:?}"),
            Stopped::Deadline(None) => f.write_str(CUT_AT_DEADLINE),
            Stopped::Deadline(Some(e)) => write!(f, "{CUT_AT_DEADLINE} (last error: {e})"),
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Polls every future concurrently and returns their outputs in order (a dependency-free
/// `join_all` for the handful of destinations of one invocation).
pub(crate) async fn join_all<'a, T>(
    mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>,
) -> Vec<T> {
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut pending = false;
        for (fut, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_defaults_to_failed_not_reported() {
        let mut r = DeliveryReport::with_len(4);
        r.deliver(0);
        r.reject(1, "bad");
        r.deliver_range(3..4);
        r.set(9, DeliveryStatus::Delivered);
        assert_eq!(r.counts(), (2, 1, 1));
        assert_eq!(
            r.status(2),
            Some(&DeliveryStatus::Failed(Arc::from(NOT_REPORTED)))
        );
        r.fail_range(0..2, "boom");
        assert_eq!(r.counts(), (1, 0, 3));
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        for retry in 1..40 {
            assert!(p.backoff(retry) <= p.max_backoff);
        }
        let cfg: RetryPolicy =
            serde_json::from_str(r#"{"max_attempts":5,"initial_backoff_ms":10}"#).unwrap();
        assert_eq!(cfg.initial_backoff, Duration::from_millis(10));
        assert_eq!(cfg.max_attempts, 5);
    }

    #[tokio::test]
    async fn retry_runs_until_success_or_exhaustion() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let r: Result<u32, String> = p
            .run(|| {
                calls += 1;
                let c = calls;
                async move {
                    if c < 3 {
                        Err(format!("fail {c}"))
                    } else {
                        Ok(c)
                    }
                }
            })
            .await;
        assert_eq!(r, Ok(3));
        let mut calls = 0;
        let r: Result<u32, String> = p
            .run(|| {
                calls += 1;
                async { Err("always".to_owned()) }
            })
            .await;
        assert_eq!(r, Err("always".to_owned()));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn run_until_times_out_attempts_and_stops_at_the_deadline() {
        let p = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            attempt_timeout: Duration::from_millis(50),
        };
        assert_eq!(p.budget(), Duration::from_millis(152));
        // Hanging attempts time out, are retried, and the last timeout is the error.
        let mut calls = 0;
        let r: Result<(), Stopped<String>> = p
            .run_until(Deadline::none(), || {
                calls += 1;
                std::future::pending()
            })
            .await;
        assert_eq!(
            (r, calls),
            (Err(Stopped::TimedOut(Duration::from_millis(50))), 3)
        );
        // The deadline comes first.
        let r: Result<(), Stopped<String>> = p
            .run_until(Deadline::after(Duration::from_millis(20)), || {
                std::future::pending()
            })
            .await;
        assert!(r.unwrap_err().is_deadline());
        // No retry when its backoff would end past the deadline.
        let slow = RetryPolicy {
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(10),
            ..p
        };
        let started = tokio::time::Instant::now();
        let r: Result<(), Stopped<String>> = slow
            .run_until(Deadline::after(Duration::from_millis(300)), || async {
                Err("down".to_owned())
            })
            .await;
        // Slept, the backoff alone would take 10 s; half of it leaves room for a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = r.unwrap_err();
        assert_eq!(e, Stopped::Deadline(Some("down".into())));
        assert!(e.to_string().contains("down"), "{e}");
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let futs: Vec<Pin<Box<dyn Future<Output = u32> + Send>>> = vec![
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                1
            }),
            Box::pin(async { 2 }),
        ];
        assert_eq!(join_all(futs).await, [1, 2]);
    }
}
