//! An event source mapping for a Kinesis stream, simulated the way Lambda runs one:
//!
//! * one poller per shard reads with `GetShardIterator` (`TRIM_HORIZON`) and `GetRecords`, and
//!   invokes the function synchronously, one batch at a time, so order within a shard holds;
//! * a batch closes at `batch_size` records, when the batching window has passed since its
//!   first record arrived, or before the invocation payload would pass 6 MB;
//! * each event is built as Lambda builds it: `kinesisSchemaVersion`, `partitionKey`,
//!   `sequenceNumber`, `data` (base64), `approximateArrivalTimestamp` (float seconds),
//!   `eventSource`, `eventVersion`, `eventID` (`shardId-…:seq`), `eventName`,
//!   `invokeIdentityArn`, `awsRegion`, `eventSourceARN`;
//! * with `ReportBatchItemFailures`, an empty or absent `batchItemFailures` is success; a list
//!   checkpoints before its lowest sequence number and replays from there; an empty, null,
//!   misnamed or unknown `itemIdentifier` fails the whole batch;
//! * a function error (error response, timeout) retries the same batch, or with
//!   `BisectBatchOnFunctionError` splits it in two (splits do not count as retries);
//!   after `MaximumRetryAttempts` the batch is discarded (Lambda would send its metadata to
//!   the on-failure destination) and the checkpoint moves past it.
//!
//! Everything is recorded: every invocation with its records and outcome, and every
//! checkpoint, so that tests can assert on them and print them when they fail.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::watch;

use crate::runtime_api::{Outcome, RuntimeApi};

/// The largest synchronous invocation payload (6 MB as Lambda counts it).
pub const MAX_EVENT_BYTES: usize = 6_291_456;

/// The settings of an event source mapping that this simulator honours.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    /// `BatchSize`: most records per invocation (Lambda's default is 100).
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`, as a duration (default zero).
    pub batching_window: Duration,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`; `None` retries until the records expire (Lambda's -1).
    pub maximum_retry_attempts: Option<u32>,
    /// `FunctionResponseTypes: ["ReportBatchItemFailures"]`.
    pub report_batch_item_failures: bool,
    /// How long an idle poller waits before the next `GetRecords` (Lambda: about a second).
    pub poll_interval: Duration,
    /// The invocation payload limit.
    pub max_event_bytes: usize,
    /// Records whose data starts with these bytes are written into the event as they are,
    /// not base64-encoded: a corrupted event, which Lambda itself never sends, for testing
    /// that a handler dead-letters such a record instead of failing the invocation.
    pub unencoded_prefix: Option<Vec<u8>>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            batching_window: Duration::ZERO,
            bisect_on_error: false,
            maximum_retry_attempts: None,
            report_batch_item_failures: true,
            poll_interval: Duration::from_millis(100),
            max_event_bytes: MAX_EVENT_BYTES,
            unencoded_prefix: None,
        }
    }
}

/// One record as read from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// `shardId-000000000000`.
    pub shard_id: String,
    /// As the stream gave it.
    pub sequence_number: String,
    /// As the producer gave it.
    pub partition_key: String,
    /// The record's bytes.
    pub data: Bytes,
    /// Arrival time, Unix seconds with millisecond precision.
    pub arrival: f64,
}

/// Compares two Kinesis sequence numbers (decimal strings without leading zeros).
pub fn cmp_seq(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Why a batch was closed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `batch_size` records were waiting.
    Size,
    /// The batching window passed.
    Window,
    /// One more record would pass the payload limit.
    Payload,
    /// A retry of the same batch after a function error.
    Retry,
    /// One half of a bisected batch.
    Bisect,
}

/// How Lambda read the function's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The whole batch succeeded.
    Success,
    /// `batchItemFailures` named these sequence numbers; replay from the lowest.
    Partial {
        /// The lowest one.
        from: String,
        /// All named, as sent.
        named: Vec<String>,
    },
    /// The function failed (error response, timeout, no runtime).
    FunctionError(String),
    /// The response could not be read as a batch response; the whole batch failed.
    InvalidResponse(String),
}

/// One invocation, as recorded.
#[derive(Debug, Clone)]
pub struct InvocationRecord {
    /// 1-based, in the order invocations started over the whole mapping.
    pub n: usize,
    /// Since the mapping started.
    pub at: Duration,
    /// The shard.
    pub shard_id: String,
    /// The Runtime API request id.
    pub request_id: String,
    /// The sequence numbers, in order.
    pub sequence_numbers: Vec<String>,
    /// Event size.
    pub event_bytes: usize,
    /// Why it was sent.
    pub trigger: Trigger,
    /// 1 for a first attempt, counting up for retries of the same first record.
    pub attempt: u32,
    /// How it ended.
    pub outcome: BatchOutcome,
    /// How long the invocation took.
    pub duration: Duration,
    /// The response or error body (first 300 bytes).
    pub answer: String,
}

/// A checkpoint: every record of the shard up to and including this sequence number is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Since the mapping started.
    pub at: Duration,
    /// The shard.
    pub shard_id: String,
    /// The last finished record.
    pub sequence_number: String,
    /// The invocation that moved it (or whose failure made the mapping discard the batch).
    pub invocation: usize,
}

/// Records given up after the retries ran out.
#[derive(Debug, Clone, PartialEq)]
pub struct Discarded {
    /// The shard.
    pub shard_id: String,
    /// Their sequence numbers.
    pub sequence_numbers: Vec<String>,
    /// The last outcome.
    pub reason: String,
}

/// Everything the mapping did.
#[derive(Debug, Clone, Default)]
pub struct MappingLog {
    /// Invocations in start order.
    pub invocations: Vec<InvocationRecord>,
    /// Checkpoints in the order they were taken.
    pub checkpoints: Vec<Checkpoint>,
    /// Batches discarded after `MaximumRetryAttempts`.
    pub discarded: Vec<Discarded>,
    /// Read errors (`GetRecords` and the like), retried.
    pub read_errors: Vec<String>,
    /// Shards whose poller finished.
    pub finished_shards: Vec<String>,
}

impl MappingLog {
    /// The log as text, one invocation per line, for failure reports.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for i in &self.invocations {
            let first = i
                .sequence_numbers
                .first()
                .map(String::as_str)
                .unwrap_or("-");
            let last = i.sequence_numbers.last().map(String::as_str).unwrap_or("-");
            let _ = writeln!(
                out,
                "#{:<4} {:>8.3}s {} seq {}..{} ({} records, {} bytes) {:?} attempt {} -> {:?} in {:.3}s; answer {}",
                i.n,
                i.at.as_secs_f64(),
                i.shard_id,
                first,
                last,
                i.sequence_numbers.len(),
                i.event_bytes,
                i.trigger,
                i.attempt,
                i.outcome,
                i.duration.as_secs_f64(),
                i.answer
            );
        }
        for c in &self.checkpoints {
            let _ = writeln!(
                out,
                "checkpoint {:>8.3}s {} {} (invocation #{})",
                c.at.as_secs_f64(),
                c.shard_id,
                c.sequence_number,
                c.invocation
            );
        }
        for d in &self.discarded {
            let _ = writeln!(
                out,
                "DISCARDED {} {} records {:?}: {}",
                d.shard_id,
                d.sequence_numbers.len(),
                d.sequence_numbers,
                d.reason
            );
        }
        for e in &self.read_errors {
            let _ = writeln!(out, "read error: {e}");
        }
        let _ = writeln!(out, "finished shards: {:?}", self.finished_shards);
        out
    }
}

/// The stream a mapping reads and how Lambda names it in events.
#[derive(Debug, Clone)]
pub struct Source {
    /// A Kinesis client (pointed at moto).
    pub client: aws_sdk_kinesis::Client,
    /// The stream name.
    pub stream_name: String,
    /// The stream ARN (`eventSourceARN`).
    pub stream_arn: String,
    /// `awsRegion`.
    pub region: String,
    /// `invokeIdentityArn`: the function's execution role.
    pub invoke_identity_arn: String,
}

/// The last sequence number the producers wrote to each shard; the mapping ends when every
/// shard's checkpoint reaches it.
pub type Targets = HashMap<String, String>;

/// An event source mapping from a stream to a function's Runtime API.
pub struct EventSourceMapping {
    source: Source,
    config: MappingConfig,
    function: Arc<RuntimeApi>,
    log: Arc<Mutex<MappingLog>>,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventSourceMapping {
    /// A mapping from `source` to `function`.
    pub fn new(source: Source, config: MappingConfig, function: Arc<RuntimeApi>) -> Arc<Self> {
        Arc::new(Self {
            source,
            config,
            function,
            log: Arc::new(Mutex::new(MappingLog::default())),
            started: Instant::now(),
        })
    }

    /// What happened so far (also while running, e.g. after a timeout).
    pub fn log(&self) -> MappingLog {
        lock(&self.log).clone()
    }

    /// Runs one poller per shard until `targets` is known and every shard's checkpoint has
    /// reached its target. Returns the log; read errors are retried, never fatal.
    pub async fn run(self: &Arc<Self>, targets: watch::Receiver<Option<Targets>>) -> MappingLog {
        let shards = loop {
            match self
                .source
                .client
                .list_shards()
                .stream_name(&self.source.stream_name)
                .send()
                .await
            {
                Ok(out) => {
                    break out
                        .shards()
                        .iter()
                        .map(|s| s.shard_id().to_owned())
                        .collect::<Vec<_>>();
                }
                Err(e) => {
                    self.read_error(format!("ListShards: {e:?}"));
                    tokio::time::sleep(self.config.poll_interval).await;
                }
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for shard in shards {
            let me = self.clone();
            let targets = targets.clone();
            tasks.spawn(async move { me.poll_shard(shard, targets).await });
        }
        while tasks.join_next().await.is_some() {}
        self.log()
    }

    fn read_error(&self, e: String) {
        lock(&self.log).read_errors.push(e);
    }

    async fn iterator(&self, shard: &str, after: Option<&str>) -> String {
        loop {
            let mut req = self
                .source
                .client
                .get_shard_iterator()
                .stream_name(&self.source.stream_name)
                .shard_id(shard);
            req = match after {
                Some(seq) => req
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(seq),
                None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            match req.send().await {
                Ok(out) => {
                    if let Some(it) = out.shard_iterator() {
                        return it.to_owned();
                    }
                    self.read_error(format!("GetShardIterator {shard}: no iterator"));
                }
                Err(e) => self.read_error(format!("GetShardIterator {shard}: {e:?}")),
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    async fn poll_shard(self: Arc<Self>, shard: String, targets: watch::Receiver<Option<Targets>>) {
        let mut reader = ShardReader {
            iterator: None,
            last_read: None,
            closed: false,
        };
        let mut state = ShardState {
            shard: shard.clone(),
            buffer: VecDeque::new(),
            exact: VecDeque::new(),
            checkpoint: None,
            retry: None,
        };
        loop {
            if let Some(batch) = state.exact.pop_front() {
                let trigger = batch.1;
                self.process(&mut state, batch.0, trigger).await;
                continue;
            }
            if state.buffer.is_empty() {
                if self.done(&state, &targets) {
                    break;
                }
                let got = self.fetch(&mut reader, &mut state).await;
                if got == 0 {
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
            }
            // Gather until the batch is full, too big, or the window has passed.
            let opened = Instant::now();
            let trigger = loop {
                if state.buffer.len() >= self.config.batch_size {
                    break Trigger::Size;
                }
                if event_size(state.buffer.iter()) >= self.config.max_event_bytes {
                    break Trigger::Payload;
                }
                let waited = opened.elapsed();
                if waited >= self.config.batching_window {
                    break Trigger::Window;
                }
                if self.fetch(&mut reader, &mut state).await == 0 {
                    let left = self.config.batching_window.saturating_sub(opened.elapsed());
                    tokio::time::sleep(left.min(self.config.poll_interval)).await;
                }
            };
            let mut batch = Vec::new();
            let mut size = EVENT_OVERHEAD;
            while let Some(r) = state.buffer.front() {
                let more = record_size(r);
                if batch.len() >= self.config.batch_size
                    || (!batch.is_empty() && size + more > self.config.max_event_bytes)
                {
                    break;
                }
                size += more;
                if let Some(r) = state.buffer.pop_front() {
                    batch.push(r);
                }
            }
            self.process(&mut state, batch, trigger).await;
        }
        lock(&self.log).finished_shards.push(shard);
    }

    fn done(&self, state: &ShardState, targets: &watch::Receiver<Option<Targets>>) -> bool {
        let targets = targets.borrow();
        let Some(targets) = targets.as_ref() else {
            return false;
        };
        match targets.get(&state.shard) {
            // Nothing was written to this shard.
            None => true,
            Some(target) => state
                .checkpoint
                .as_deref()
                .is_some_and(|c| cmp_seq(c, target).is_ge()),
        }
    }

    /// One `GetRecords` call; returns how many records were added to the buffer.
    async fn fetch(&self, reader: &mut ShardReader, state: &mut ShardState) -> usize {
        if reader.closed {
            return 0;
        }
        let iterator = match reader.iterator.take() {
            Some(it) => it,
            None => {
                self.iterator(&state.shard, reader.last_read.as_deref())
                    .await
            }
        };
        let limit = self.config.batch_size.clamp(1, 10_000) as i32;
        match self
            .source
            .client
            .get_records()
            .shard_iterator(&iterator)
            .limit(limit)
            .send()
            .await
        {
            Ok(out) => {
                let n = out.records().len();
                for r in out.records() {
                    let arrival = r
                        .approximate_arrival_timestamp()
                        .map(|t| t.secs() as f64 + f64::from(t.subsec_nanos() / 1_000_000) / 1e3)
                        .unwrap_or_default();
                    state.buffer.push_back(StreamRecord {
                        shard_id: state.shard.clone(),
                        sequence_number: r.sequence_number().to_owned(),
                        partition_key: r.partition_key().to_owned(),
                        data: Bytes::copy_from_slice(r.data().as_ref()),
                        arrival,
                    });
                }
                if let Some(last) = out.records().last() {
                    reader.last_read = Some(last.sequence_number().to_owned());
                }
                match out.next_shard_iterator() {
                    Some(next) => reader.iterator = Some(next.to_owned()),
                    None => reader.closed = true,
                }
                n
            }
            Err(e) => {
                // A fresh iterator after the last record read on the next call.
                self.read_error(format!("GetRecords {}: {e:?}", state.shard));
                0
            }
        }
    }

    fn checkpoint(&self, state: &mut ShardState, seq: &str, invocation: usize) {
        if state
            .checkpoint
            .as_deref()
            .is_some_and(|c| cmp_seq(c, seq).is_ge())
        {
            return;
        }
        state.checkpoint = Some(seq.to_owned());
        lock(&self.log).checkpoints.push(Checkpoint {
            at: self.started.elapsed(),
            shard_id: state.shard.clone(),
            sequence_number: seq.to_owned(),
            invocation,
        });
    }

    /// Counts a failed attempt at the batch starting with `first`; true when the retries
    /// are used up.
    fn exhausted(&self, state: &mut ShardState, first: &str) -> bool {
        let attempts = match &mut state.retry {
            Some((seq, n)) if seq == first => {
                *n += 1;
                *n
            }
            _ => {
                state.retry = Some((first.to_owned(), 1));
                1
            }
        };
        self.config
            .maximum_retry_attempts
            .is_some_and(|max| attempts > max)
    }

    fn attempt_of(&self, state: &ShardState, first: &str) -> u32 {
        match &state.retry {
            Some((seq, n)) if seq == first => n + 1,
            _ => 1,
        }
    }

    fn discard(&self, state: &mut ShardState, batch: &[StreamRecord], reason: String, n: usize) {
        lock(&self.log).discarded.push(Discarded {
            shard_id: state.shard.clone(),
            sequence_numbers: batch.iter().map(|r| r.sequence_number.clone()).collect(),
            reason,
        });
        state.retry = None;
        if let Some(last) = batch.last() {
            self.checkpoint(state, &last.sequence_number, n);
        }
    }

    async fn process(&self, state: &mut ShardState, batch: Vec<StreamRecord>, trigger: Trigger) {
        let Some(first) = batch.first().map(|r| r.sequence_number.clone()) else {
            return;
        };
        let event = build_event(
            &self.source,
            &batch,
            self.config.unencoded_prefix.as_deref(),
        );
        let attempt = self.attempt_of(state, &first);
        let n = {
            let mut log = lock(&self.log);
            let n = log.invocations.len() + 1;
            log.invocations.push(InvocationRecord {
                n,
                at: self.started.elapsed(),
                shard_id: state.shard.clone(),
                request_id: String::new(),
                sequence_numbers: batch.iter().map(|r| r.sequence_number.clone()).collect(),
                event_bytes: event.len(),
                trigger,
                attempt,
                outcome: BatchOutcome::FunctionError("running".into()),
                duration: Duration::ZERO,
                answer: String::new(),
            });
            n
        };
        let invoked = self.function.invoke(event).await;
        let (outcome, answer) = match &invoked.outcome {
            Outcome::Response(body) => (self.read_response(body, &batch), clip(body)),
            Outcome::Error {
                error_type, body, ..
            } => (BatchOutcome::FunctionError(error_type.clone()), clip(body)),
            Outcome::TimedOut => (
                BatchOutcome::FunctionError("Task timed out".into()),
                String::new(),
            ),
            Outcome::NotPickedUp => (
                BatchOutcome::FunctionError("no runtime took the event".into()),
                String::new(),
            ),
        };
        {
            let mut log = lock(&self.log);
            if let Some(rec) = log.invocations.get_mut(n - 1) {
                rec.request_id = invoked.request_id.clone();
                rec.outcome = outcome.clone();
                rec.duration = invoked.duration;
                rec.answer = answer;
            }
        }
        match outcome {
            BatchOutcome::Success => {
                state.retry = None;
                if let Some(last) = batch.last() {
                    self.checkpoint(state, &last.sequence_number, n);
                }
            }
            BatchOutcome::Partial { from, .. } => {
                let at = batch
                    .iter()
                    .position(|r| r.sequence_number == from)
                    .unwrap_or(0);
                if let Some(before) = at.checked_sub(1).and_then(|i| batch.get(i)) {
                    self.checkpoint(state, &before.sequence_number, n);
                }
                let rest: Vec<StreamRecord> = batch.get(at..).unwrap_or_default().to_vec();
                if self.exhausted(state, &from) {
                    self.discard(
                        state,
                        &rest,
                        format!("partial failure from {from}, retries used up"),
                        n,
                    );
                } else if trigger == Trigger::Bisect || !state.exact.is_empty() {
                    // Inside a bisection the remainder stays a batch of its own.
                    state.exact.push_front((rest, Trigger::Bisect));
                } else {
                    for r in rest.into_iter().rev() {
                        state.buffer.push_front(r);
                    }
                }
            }
            BatchOutcome::FunctionError(why) | BatchOutcome::InvalidResponse(why) => {
                if self.config.bisect_on_error && batch.len() > 1 {
                    let mut left = batch;
                    let right = left.split_off(left.len() / 2);
                    state.exact.push_front((right, Trigger::Bisect));
                    state.exact.push_front((left, Trigger::Bisect));
                } else if self.exhausted(state, &first) {
                    self.discard(state, &batch, why, n);
                } else {
                    state.exact.push_front((batch, Trigger::Retry));
                }
            }
        }
    }

    /// Reads a response as Lambda reads a partial batch response.
    fn read_response(&self, body: &[u8], batch: &[StreamRecord]) -> BatchOutcome {
        if !self.config.report_batch_item_failures {
            return BatchOutcome::Success;
        }
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return BatchOutcome::InvalidResponse(format!("not JSON: {e}")),
        };
        let failures = match &value {
            serde_json::Value::Null => return BatchOutcome::Success,
            serde_json::Value::Object(map) => match map.get("batchItemFailures") {
                None | Some(serde_json::Value::Null) => return BatchOutcome::Success,
                Some(serde_json::Value::Array(items)) => items,
                Some(other) => {
                    return BatchOutcome::InvalidResponse(format!(
                        "batchItemFailures is not a list: {other}"
                    ));
                }
            },
            other => return BatchOutcome::InvalidResponse(format!("not an object: {other}")),
        };
        if failures.is_empty() {
            return BatchOutcome::Success;
        }
        let mut named = Vec::new();
        for item in failures {
            let Some(id) = item.get("itemIdentifier").and_then(|v| v.as_str()) else {
                return BatchOutcome::InvalidResponse(format!("bad item {item}"));
            };
            if id.is_empty() || !batch.iter().any(|r| r.sequence_number == id) {
                return BatchOutcome::InvalidResponse(format!(
                    "itemIdentifier {id:?} is not in the batch"
                ));
            }
            named.push(id.to_owned());
        }
        let from = named
            .iter()
            .min_by(|a, b| cmp_seq(a, b))
            .cloned()
            .unwrap_or_default();
        BatchOutcome::Partial { from, named }
    }
}

fn clip(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

struct ShardReader {
    iterator: Option<String>,
    last_read: Option<String>,
    closed: bool,
}

struct ShardState {
    shard: String,
    /// Records read and not yet sent, in order.
    buffer: VecDeque<StreamRecord>,
    /// Batches to send exactly as they are (retries and bisected halves), before the buffer.
    exact: VecDeque<(Vec<StreamRecord>, Trigger)>,
    checkpoint: Option<String>,
    /// (first sequence number of the failing batch, failed attempts).
    retry: Option<(String, u32)>,
}

const EVENT_OVERHEAD: usize = 16;

fn record_size(r: &StreamRecord) -> usize {
    // base64 of the data plus the fixed fields (well over their real size).
    r.data.len().div_ceil(3) * 4 + 600
}

fn event_size<'a>(records: impl Iterator<Item = &'a StreamRecord>) -> usize {
    EVENT_OVERHEAD + records.map(record_size).sum::<usize>()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The Lambda event for `records`, byte for byte in Lambda's field order. Data starting with
/// `unencoded_prefix` is written as text instead of base64 (see
/// [`MappingConfig::unencoded_prefix`]).
pub fn build_event(
    source: &Source,
    records: &[StreamRecord],
    unencoded_prefix: Option<&[u8]>,
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::with_capacity(event_size(records.iter()));
    out.push_str("{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"kinesis\":{{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":{},\"sequenceNumber\":{},\"data\":{},\"approximateArrivalTimestamp\":{:.3}}},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":{},\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":{},\"awsRegion\":{},\"eventSourceARN\":{}}}",
            json_str(&r.partition_key),
            json_str(&r.sequence_number),
            match unencoded_prefix {
                Some(p) if r.data.starts_with(p) => json_str(&String::from_utf8_lossy(&r.data)),
                _ => format!("\"{}\"", b64.encode(&r.data)),
            },
            r.arrival,
            json_str(&format!("{}:{}", r.shard_id, r.sequence_number)),
            json_str(&source.invoke_identity_arn),
            json_str(&source.region),
            json_str(&source.stream_arn),
        );
    }
    out.push_str("]}");
    out.into_bytes()
}
