//! The Kinesis forward destination (original kinesis-forward): PutRecords of the original
//! records to another stream through `kinesis-utils`, optionally KPL-aggregated.

use std::collections::HashMap;
use std::ops::Range;

use async_trait::async_trait;
use kinesis_utils::kpl::{AggregatedRecord, Aggregator, DEFAULT_MAX_AGGREGATED_BYTES, UserRecord};
use kinesis_utils::put::{RecordOutcome, random_partition_key};
use kinesis_utils::{KinesisApi, PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget};
use serde::Deserialize;

use crate::batch::RoutedBatch;
use crate::classify::Record;
use crate::destination::{DeliveryReport, Destination};
use crate::record::LogRecord;

/// Bytes of one Kinesis PUT payload unit, the unit of PUT billing: a record (data and
/// partition key) costs one unit per started 25 KB. Counted as 25,000 bytes, the stricter
/// reading of "25 KB": what fills whole units of 25,000 bytes fills whole units of 25 KiB.
pub const PUT_PAYLOAD_UNIT_BYTES: usize = 25_000;

/// The PUT payload units of one record of `bytes` (data and partition key): at least one.
///
/// ```
/// use logging_core::forward::put_payload_units;
/// assert_eq!(put_payload_units(5_000), 1);
/// assert_eq!(put_payload_units(45_000), 2);
/// assert_eq!(put_payload_units(50_001), 3);
/// ```
pub fn put_payload_units(bytes: usize) -> usize {
    bytes.div_ceil(PUT_PAYLOAD_UNIT_BYTES).max(1)
}

/// The most bytes an aggregate is filled to under a bound of `max_bytes`: whole PUT payload
/// units (51,200 fills to 50,000, two units, rather than paying a third unit for 1,200 bytes),
/// or the bound itself below one unit.
fn aggregate_fill(max_bytes: usize) -> usize {
    if max_bytes < PUT_PAYLOAD_UNIT_BYTES {
        max_bytes
    } else {
        max_bytes / PUT_PAYLOAD_UNIT_BYTES * PUT_PAYLOAD_UNIT_BYTES
    }
}

/// Smallest allowed [`ForwardConfig::aggregate_max_bytes`], the KPL's.
pub const MIN_AGGREGATE_BYTES: usize = 64;

/// Configuration of a [`KinesisForward`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// The target stream name or ARN (`TARGET_STREAM_NAME`).
    pub stream: String,
    /// Field whose value is the partition key; `None` (default) for a random key per record,
    /// as the original module did. A record without a usable value gets a random key.
    pub partition_key_field: Option<String>,
    /// Pack the forwarded records into KPL aggregated records (default false).
    ///
    /// Each aggregate has its own partition key, which every record in it carries, so that a
    /// batch spreads over the shards and a KCL consumer (which drops user records whose key
    /// hashes outside its shard) reads them all: a random key per aggregate, or with
    /// [`ForwardConfig::partition_key_field`] the field's value, aggregates then holding the
    /// records of one value each. A record too large for an aggregate is sent alone, as the
    /// KPL sends it.
    pub aggregate: bool,
    /// Most bytes of one aggregate, its partition key included (default 51,200: the KPL's
    /// `AggregationMaxSize`; from 64 up to `put.max_record_bytes`). Aggregates are filled
    /// to whole PUT payload units under it ([`PUT_PAYLOAD_UNIT_BYTES`]), so that they cost
    /// what the same records cost in 1 MiB aggregates, within a few percent.
    pub aggregate_max_bytes: usize,
    /// Batching, limits and retries (`KINESIS_MAX_RETRIES` is `put.max_attempts - 1`).
    pub put: PutRecordsConfig,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            stream: String::new(),
            partition_key_field: None,
            aggregate: false,
            aggregate_max_bytes: DEFAULT_MAX_AGGREGATED_BYTES,
            put: PutRecordsConfig::default(),
        }
    }
}

/// A configuration the destination cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardConfigError {
    /// No target stream.
    #[error("Kinesis forward: no target stream configured")]
    NoStream,
    /// Limits outside what the service allows.
    #[error("Kinesis forward to {stream}: {source}")]
    Put {
        /// The stream.
        stream: String,
        /// The problem.
        #[source]
        source: kinesis_utils::put::PutConfigError,
    },
    /// An aggregate size no aggregate could be sent with.
    #[error(
        "Kinesis forward to {stream}: aggregate_max_bytes {size} is outside {MIN_AGGREGATE_BYTES}..={max} (the stream's record size)"
    )]
    AggregateSize {
        /// The stream.
        stream: String,
        /// The configured size.
        size: usize,
        /// The record size limit.
        max: usize,
    },
}

/// Forwards records to a Kinesis stream, unchanged (each record's original bytes is one
/// Kinesis record, or one user record of a KPL aggregate).
///
/// Per record: delivered when the service stored it (or its aggregate); failed transiently
/// when it was still refused after the batcher's retries; rejected when it can never fit
/// (larger than the stream's record limit).
pub struct KinesisForward<A> {
    batcher: PutRecordsBatcher<A>,
    stream: StreamTarget,
    config: ForwardConfig,
    name: String,
}

impl<A> std::fmt::Debug for KinesisForward<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisForward")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

impl<A: KinesisApi> KinesisForward<A> {
    /// A forwarder through `api`.
    pub fn new(api: A, config: ForwardConfig) -> Result<Self, ForwardConfigError> {
        if config.stream.trim().is_empty() {
            return Err(ForwardConfigError::NoStream);
        }
        let stream = StreamTarget::from(config.stream.clone());
        let batcher = PutRecordsBatcher::new(api, config.put.clone()).map_err(|source| {
            ForwardConfigError::Put {
                stream: config.stream.clone(),
                source,
            }
        })?;
        let max = batcher.config().max_record_bytes;
        if config.aggregate && !(MIN_AGGREGATE_BYTES..=max).contains(&config.aggregate_max_bytes) {
            return Err(ForwardConfigError::AggregateSize {
                stream: config.stream.clone(),
                size: config.aggregate_max_bytes,
                max,
            });
        }
        let name = format!("kinesis:{}", stream.stream_name());
        Ok(Self {
            batcher,
            stream,
            config,
            name,
        })
    }

    /// The target stream.
    pub fn stream(&self) -> &StreamTarget {
        &self.stream
    }

    /// The configured field's value as a partition key, when the record has a usable one.
    fn field_key(&self, record: &Record<'_>) -> Option<String> {
        let field = self.config.partition_key_field.as_ref()?;
        // Only the configured field is looked up again; the bytes were validated already.
        let value = LogRecord::extract_field(record.data, field);
        match value.as_ref().and_then(|v| v.as_text()) {
            Some(v) if !v.is_empty() => Some(v.chars().take(256).collect()),
            _ => None,
        }
    }

    fn partition_key(&self, record: &Record<'_>) -> String {
        self.field_key(record).unwrap_or_else(random_partition_key)
    }

    /// The Kinesis records `batch` becomes, before any call: what
    /// [`Destination::deliver`] puts.
    pub fn plan(&self, batch: &RoutedBatch<'_>) -> ForwardPlan {
        let limit = self.batcher.config().max_record_bytes;
        let mut plan = ForwardPlan::with_capacity(batch.len());
        let push_plain = |plan: &mut ForwardPlan, slot: usize, entry: PutEntry| {
            let size = entry.aws_size();
            if size > limit {
                plan.rejected.push((
                    slot,
                    format!(
                        "{}: record of {size} bytes (data + partition key) is over the stream's record limit of {limit} bytes",
                        self.name
                    ),
                ));
            } else {
                plan.push(entry, &[slot], false);
            }
        };
        if !self.config.aggregate {
            for (slot, _, record) in batch.iter() {
                let entry = PutEntry::new(record.data.clone(), self.partition_key(record));
                push_plain(&mut plan, slot, entry);
            }
            return plan;
        }
        let fill = aggregate_fill(self.config.aggregate_max_bytes);
        // Aggregates being filled: the one for random keys, and one per field value.
        let mut open: Vec<Open> = Vec::new();
        let mut by_value: HashMap<String, usize> = HashMap::new();
        let mut random: Option<usize> = None;
        for (slot, _, record) in batch.iter() {
            let value = self.field_key(record);
            let at = match &value {
                Some(v) => match by_value.get(v) {
                    Some(&at) => at,
                    None => {
                        open.push(Open::new(fill, v.clone()));
                        by_value.insert(v.clone(), open.len() - 1);
                        open.len() - 1
                    }
                },
                None => *random.get_or_insert_with(|| {
                    open.push(Open::new(fill, random_partition_key()));
                    open.len() - 1
                }),
            };
            let current = &mut open[at];
            if current.add(record, slot, &mut plan) {
                continue;
            }
            if !current.agg.is_empty() {
                // Full: send it, and fill the next one, under a new random key.
                current.flush_into(&mut plan);
                if value.is_none() {
                    current.key = random_partition_key();
                }
                if current.add(record, slot, &mut plan) {
                    continue;
                }
            }
            // Too large for any aggregate: alone and plain, as the KPL sends it.
            let key = value.unwrap_or_else(random_partition_key);
            push_plain(&mut plan, slot, PutEntry::new(record.data.clone(), key));
        }
        for mut current in open {
            current.flush_into(&mut plan);
        }
        plan
    }

    /// The PutRecords calls `plan` takes when nothing is retried.
    pub fn put_calls(&self, plan: &ForwardPlan) -> usize {
        self.batcher.config().batches(&plan.entries).len()
    }
}

/// An aggregate being filled: its key and the slots of its records.
struct Open {
    agg: Aggregator,
    key: String,
    slots: Vec<usize>,
}

impl Open {
    fn new(fill: usize, key: String) -> Self {
        Self {
            agg: Aggregator::new(fill),
            key,
            slots: Vec::new(),
        }
    }

    /// Adds `record` under this aggregate's key when it fits.
    fn add(&mut self, record: &Record<'_>, slot: usize, plan: &mut ForwardPlan) -> bool {
        let user = UserRecord::new(record.data.clone(), self.key.clone());
        if !self.agg.fits(&user) {
            return false;
        }
        match self.agg.add(user) {
            Ok(None) => {}
            // Not after `fits`; were it to happen, the finished aggregate is still sent.
            Ok(Some(done)) => {
                plan.push_aggregate(done, &self.slots);
                self.slots.clear();
            }
            Err(_) => return false,
        }
        self.slots.push(slot);
        true
    }

    fn flush_into(&mut self, plan: &mut ForwardPlan) {
        if let Some(done) = self.agg.flush() {
            plan.push_aggregate(done, &self.slots);
        }
        self.slots.clear();
    }
}

/// The Kinesis records a routed batch becomes ([`KinesisForward::plan`]): each carries one
/// record, or an aggregate of several, by their slots in the batch.
#[derive(Debug, Clone, Default)]
pub struct ForwardPlan {
    entries: Vec<PutEntry>,
    owners: Vec<Range<usize>>,
    slots: Vec<usize>,
    aggregates: usize,
    rejected: Vec<(usize, String)>,
}

impl ForwardPlan {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            owners: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
            aggregates: 0,
            rejected: Vec::new(),
        }
    }

    fn push(&mut self, entry: PutEntry, slots: &[usize], aggregate: bool) {
        let start = self.slots.len();
        self.slots.extend_from_slice(slots);
        self.owners.push(start..self.slots.len());
        self.entries.push(entry);
        self.aggregates += usize::from(aggregate);
    }

    fn push_aggregate(&mut self, done: AggregatedRecord, slots: &[usize]) {
        let entry = PutEntry {
            data: done.data,
            partition_key: done.partition_key,
            explicit_hash_key: done.explicit_hash_key,
        };
        self.push(entry, slots, true);
    }

    /// The Kinesis records to put, in order.
    pub fn entries(&self) -> &[PutEntry] {
        &self.entries
    }

    /// The batch slots entry `index` carries.
    pub fn slots(&self, index: usize) -> &[usize] {
        self.owners
            .get(index)
            .and_then(|r| self.slots.get(r.clone()))
            .unwrap_or_default()
    }

    /// How many entries are KPL aggregates.
    pub fn aggregates(&self) -> usize {
        self.aggregates
    }

    /// Slots that can never be sent (larger than the stream's record size), with the reason.
    pub fn rejected(&self) -> &[(usize, String)] {
        &self.rejected
    }

    /// Data and partition key bytes of all entries.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(PutEntry::aws_size).sum()
    }

    /// The PUT payload units the entries cost ([`put_payload_units`] of each).
    pub fn put_payload_units(&self) -> usize {
        self.entries
            .iter()
            .map(|e| put_payload_units(e.aws_size()))
            .sum()
    }
}

#[async_trait]
impl<A: KinesisApi> Destination for KinesisForward<A> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        let plan = self.plan(batch);
        for (slot, reason) in &plan.rejected {
            report.reject(*slot, reason.as_str());
        }
        if plan.entries.is_empty() {
            return report;
        }
        let (count, units, aggregates) = (
            plan.entries.len(),
            plan.put_payload_units(),
            plan.aggregates,
        );
        let ForwardPlan {
            entries,
            owners,
            slots,
            ..
        } = plan;
        match self.batcher.put_all(&self.stream, entries).await {
            Ok(outcome) => {
                for (i, owner) in owners.iter().enumerate() {
                    let owned = &slots[owner.clone()];
                    match outcome.get(i) {
                        Some(RecordOutcome::Accepted { .. }) => {
                            owned.iter().for_each(|&s| report.deliver(s));
                        }
                        Some(RecordOutcome::Failed {
                            error_code,
                            error_message,
                            attempts,
                            ..
                        }) => {
                            let msg = format!(
                                "{}: PutRecords failed after {attempts} attempts: {error_code}: {error_message}",
                                self.name
                            );
                            let msg: std::sync::Arc<str> = msg.into();
                            owned.iter().for_each(|&s| report.fail(s, msg.clone()));
                        }
                        // Not reported by the batcher: stays failed ("not reported").
                        None => {}
                    }
                }
                report.artifacts.push(format!(
                    "{} ({} of {count} Kinesis records accepted, {aggregates} of them KPL aggregates; {units} PUT payload units; {} PutRecords calls)",
                    self.name,
                    outcome.accepted_count(),
                    outcome.requests()
                ));
            }
            // Entries were checked above, so this is unexpected: replay rather than lose.
            Err(e) => {
                tracing::error!(destination = %self.name, error = %e, "PutRecords refused the batch");
                for owner in owners {
                    for &s in &slots[owner] {
                        report.fail(s, e.to_string());
                    }
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::origin;
    use crate::destination::DeliveryStatus;
    use crate::routing::{Router, TypeFilter};
    use bytes::Bytes;
    use kinesis_utils::memory::{EntryFault, FaultyKinesis, InMemoryKinesis};
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Duration;

    fn records<'a>(datas: &'a [Bytes], o: &'a kinesis_utils::Origin) -> Vec<Record<'a>> {
        datas
            .iter()
            .enumerate()
            .map(|(i, d)| Record {
                index: i,
                data: d,
                log_type: Cow::Borrowed(if i % 2 == 0 { "a" } else { "b" }),
                log_id: None,
                timestamp: None,
                origin: o,
                line_break: true,
            })
            .collect()
    }

    fn fast() -> PutRecordsConfig {
        PutRecordsConfig::default().with_backoff(Duration::from_millis(1), Duration::from_millis(2))
    }

    #[tokio::test]
    async fn forwards_bytes_unchanged_with_keys_from_a_field() {
        let kinesis = Arc::new(InMemoryKinesis::new());
        let stream = kinesis.create_stream("out", 2).unwrap();
        let datas: Vec<Bytes> = (0..10)
            .map(|i| Bytes::from(format!("{{\"user\":\"u{}\", \"n\" : {i}}}", i % 3)))
            .collect();
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let fwd = KinesisForward::new(
            kinesis.clone(),
            ForwardConfig {
                stream: "out".into(),
                partition_key_field: Some("user".into()),
                put: fast(),
                ..ForwardConfig::default()
            },
        )
        .unwrap();
        assert_eq!(fwd.name(), "kinesis:out");
        let report = fwd.deliver(batch).await;
        assert_eq!(report.counts(), (10, 0, 0));
        let stored = kinesis.records(&stream).unwrap();
        let mut got: Vec<_> = stored
            .iter()
            .map(|r| (r.data.clone(), r.partition_key.clone()))
            .collect();
        got.sort();
        let mut want: Vec<_> = (0..10)
            .map(|i| (datas[i].clone(), format!("u{}", i % 3)))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn aggregates_and_reports_partial_failures_per_record() {
        let kinesis = FaultyKinesis::new(InMemoryKinesis::new());
        let stream = kinesis.inner().create_stream("agg", 1).unwrap();
        // Every entry but the first one ever seen fails, always: retries cannot help.
        let mut first: Option<Bytes> = None;
        kinesis.fail_entries(move |call| {
            let first = first.get_or_insert_with(|| call.entry.data.clone());
            (*first != call.entry.data).then(EntryFault::throttled)
        });
        let datas: Vec<Bytes> = (0..6)
            .map(|i| Bytes::from(vec![b'x'; 300_000 + i]))
            .collect();
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let fwd = KinesisForward::new(
            &kinesis,
            ForwardConfig {
                stream: "agg".into(),
                aggregate: true,
                aggregate_max_bytes: 1024 * 1024,
                put: fast().with_max_attempts(2),
                ..ForwardConfig::default()
            },
        )
        .unwrap();
        let report = fwd.deliver(batch).await;
        // 6 records of ~300 kB: 3 per 1 MiB aggregate, 2 aggregates; the second fails.
        assert_eq!(report.counts(), (3, 0, 3));
        let stored = kinesis.inner().records(&stream).unwrap();
        assert_eq!(stored.len(), 1);
        let users = kinesis_utils::kpl::deaggregate(&stored[0].data).unwrap();
        assert_eq!(users.len(), 3);
        let delivered: Vec<_> = (0..6)
            .filter(|&s| report.status(s) == Some(&DeliveryStatus::Delivered))
            .collect();
        // Slots are grouped by type: a = records 0,2,4 (slots 0..3), b = 1,3,5 (slots 3..6).
        assert_eq!(delivered, [0, 1, 2]);
        assert_eq!(users[0].data, datas[0]);
        match report.status(4) {
            Some(DeliveryStatus::Failed(e)) => {
                assert!(e.contains("ProvisionedThroughputExceeded"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn oversized_records_are_rejected_not_retried() {
        let kinesis = InMemoryKinesis::new();
        kinesis.create_stream("s", 1).unwrap();
        let datas = vec![
            Bytes::from(vec![b'x'; 2 * 1024 * 1024]),
            Bytes::from_static(b"{}"),
        ];
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        for aggregate in [false, true] {
            let fwd = KinesisForward::new(
                &kinesis,
                ForwardConfig {
                    stream: "s".into(),
                    aggregate,
                    ..ForwardConfig::default()
                },
            )
            .unwrap();
            let report = fwd.deliver(batch).await;
            assert_eq!(report.counts(), (1, 1, 0), "aggregate={aggregate}");
        }
        assert!(matches!(
            KinesisForward::new(&kinesis, ForwardConfig::default()),
            Err(ForwardConfigError::NoStream)
        ));
    }

    /// Log lines of 300 to 600 bytes, some with a `user` field.
    fn lines(n: usize, seed: u64) -> Vec<Bytes> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|i| {
                let user = if i % 10 == 9 {
                    String::new()
                } else {
                    format!("\"user\":\"u{}\",", rng.usize(0..5))
                };
                let pad = "x".repeat(rng.usize(250..550));
                Bytes::from(format!("{{{user}\"n\":{i},\"msg\":\"{pad}\"}}"))
            })
            .collect()
    }

    fn kpl() -> ForwardConfig {
        ForwardConfig {
            aggregate: true,
            ..ForwardConfig::default()
        }
    }

    fn forwarder<A: KinesisApi>(api: A, config: ForwardConfig) -> KinesisForward<A> {
        KinesisForward::new(
            api,
            ForwardConfig {
                stream: "out".into(),
                put: fast(),
                ..config
            },
        )
        .unwrap()
    }

    /// Every user record of the stream, with the partition key its aggregate was put under.
    fn stored_users(
        kinesis: &InMemoryKinesis,
        stream: &StreamTarget,
    ) -> Vec<(String, String, Bytes)> {
        let mut out = Vec::new();
        for r in kinesis.records(stream).unwrap() {
            match kinesis_utils::kpl::deaggregate(&r.data) {
                Some(users) => {
                    for u in users {
                        assert_eq!(u.partition_key, r.partition_key, "one key per aggregate");
                        out.push((r.shard_id.clone(), r.partition_key.clone(), u.data));
                    }
                }
                None => out.push((r.shard_id.clone(), r.partition_key.clone(), r.data)),
            }
        }
        out
    }

    #[tokio::test]
    async fn aggregates_are_kpl_sized_and_spread_over_the_shards() {
        let kinesis = InMemoryKinesis::new();
        let stream = kinesis.create_stream("out", 8).unwrap();
        let datas = lines(2_000, 1);
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let fwd = forwarder(&kinesis, kpl());
        let plan = fwd.plan(batch);
        assert_eq!(plan.aggregates(), plan.entries().len());
        assert!(plan.entries().iter().all(|e| e.aws_size() <= 50_000));
        let keys: std::collections::BTreeSet<_> =
            plan.entries().iter().map(|e| &e.partition_key).collect();
        assert_eq!(keys.len(), plan.entries().len(), "a key of its own each");
        let report = fwd.deliver(batch).await;
        assert_eq!(report.counts(), (2_000, 0, 0));
        let users = stored_users(&kinesis, &stream);
        let shards: std::collections::BTreeSet<_> = users.iter().map(|u| &u.0).collect();
        assert!(
            shards.len() >= 5,
            "{} aggregates on {shards:?}",
            plan.entries().len()
        );
        // Every record once, in batch order (one aggregate after the other).
        let sent: Vec<&Bytes> = users.iter().map(|u| &u.2).collect();
        let expected: Vec<&Bytes> = batch.iter().map(|(_, _, r)| r.data).collect();
        assert_eq!(sent, expected);
        assert!(
            report.artifacts[0].contains("PUT payload units"),
            "{:?}",
            report.artifacts
        );
    }

    #[tokio::test]
    async fn field_keys_aggregate_by_value() {
        let kinesis = InMemoryKinesis::new();
        let stream = kinesis.create_stream("out", 4).unwrap();
        let datas = lines(1_000, 2);
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let fwd = forwarder(
            &kinesis,
            ForwardConfig {
                partition_key_field: Some("user".into()),
                ..kpl()
            },
        );
        assert_eq!(fwd.deliver(batch).await.counts(), (1_000, 0, 0));
        let users = stored_users(&kinesis, &stream);
        assert_eq!(users.len(), 1_000);
        for (_, key, data) in &users {
            let text = std::str::from_utf8(data).unwrap();
            match text.split("\"user\":\"").nth(1) {
                // Records of one value share its aggregates, under that key.
                Some(rest) => assert_eq!(rest.split('"').next(), Some(key.as_str())),
                // Records without the field go in aggregates under random keys.
                None => assert_eq!(key.len(), 20),
            }
        }
        // Within a value, records keep their order.
        for value in ["u0", "u3"] {
            let got: Vec<&Bytes> = users
                .iter()
                .filter(|u| u.1 == value)
                .map(|u| &u.2)
                .collect();
            let want: Vec<&Bytes> = batch
                .iter()
                .map(|(_, _, r)| r.data)
                .filter(|d| {
                    d.windows(value.len() + 9)
                        .any(|w| w == format!("\"user\":\"{value}\"").as_bytes())
                })
                .collect();
            assert_eq!(got, want, "{value}");
        }
    }

    #[tokio::test]
    async fn records_too_large_for_an_aggregate_are_sent_alone() {
        let kinesis = InMemoryKinesis::new();
        let stream = kinesis.create_stream("out", 2).unwrap();
        let mut datas = lines(20, 3);
        datas[5] = Bytes::from(format!("{{\"big\":\"{}\"}}", "y".repeat(60_000)));
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let fwd = forwarder(&kinesis, kpl());
        let plan = fwd.plan(batch);
        assert_eq!(plan.entries().len(), 3, "a, the big one alone, b");
        assert_eq!(plan.aggregates(), 2);
        assert_eq!(fwd.deliver(batch).await.counts(), (20, 0, 0));
        let stored = kinesis.records(&stream).unwrap();
        assert!(
            stored.iter().any(|r| r.data == datas[5]),
            "plain, as the KPL sends it"
        );
    }

    /// What aggregation saves, and that KPL-sized aggregates cost what 1 MiB ones do.
    #[test]
    fn put_payload_units_of_kpl_sized_aggregates() {
        let datas = lines(10_000, 4);
        let o = origin("1");
        let recs = records(&datas, &o);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&recs)[0];
        let kinesis = InMemoryKinesis::new();
        let plan = |aggregate, aggregate_max_bytes| {
            let fwd = forwarder(
                &kinesis,
                ForwardConfig {
                    aggregate,
                    aggregate_max_bytes,
                    ..ForwardConfig::default()
                },
            );
            let plan = fwd.plan(batch);
            (
                plan.put_payload_units(),
                fwd.put_calls(&plan),
                plan.entries().len(),
            )
        };
        let plain = plan(false, DEFAULT_MAX_AGGREGATED_BYTES);
        let mib = plan(true, 1024 * 1024);
        let kpl = plan(true, DEFAULT_MAX_AGGREGATED_BYTES);
        assert_eq!(plain, (10_000, 20, 10_000));
        assert!(
            kpl.0 * 100 <= mib.0 * 105,
            "KPL size {kpl:?} against 1 MiB {mib:?}"
        );
        assert!(
            kpl.2 > 10 * mib.2,
            "spread over many more records: {kpl:?} {mib:?}"
        );
        assert_eq!(kpl.1, 1);
    }

    #[test]
    fn aggregate_sizes_are_checked() {
        for size in [10, 2 * 1024 * 1024] {
            let err = KinesisForward::new(
                InMemoryKinesis::new(),
                ForwardConfig {
                    stream: "s".into(),
                    aggregate: true,
                    aggregate_max_bytes: size,
                    ..ForwardConfig::default()
                },
            )
            .unwrap_err();
            assert!(
                matches!(err, ForwardConfigError::AggregateSize { .. }),
                "{err}"
            );
        }
        assert_eq!(aggregate_fill(51_200), 50_000);
        assert_eq!(aggregate_fill(1024 * 1024), 1_025_000);
        assert_eq!(aggregate_fill(10_000), 10_000);
    }

    proptest::proptest! {
        /// Every record is in exactly one entry (or refused as larger than a record), in
        /// order; aggregates stay within the fill size and carry their key on every record.
        #[test]
        fn plans_carry_every_record_once(
            sizes in proptest::collection::vec(0usize..3_000, 1..80),
            max in 64usize..=6_000,
            keyed in proptest::bool::ANY,
        ) {
            let datas: Vec<Bytes> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| Bytes::from(format!("{{\"k\":\"v{}\",\"p\":\"{}\"}}", i % 3, "z".repeat(n))))
                .collect();
            let o = origin("1");
            let recs = records(&datas, &o);
            let router = Router::new().with_route(TypeFilter::all(), ());
            let batch = &router.route(&recs)[0];
            let kinesis = InMemoryKinesis::new();
            let fwd = KinesisForward::new(
                &kinesis,
                ForwardConfig {
                    stream: "s".into(),
                    aggregate: true,
                    aggregate_max_bytes: max,
                    partition_key_field: keyed.then(|| "k".to_owned()),
                    put: PutRecordsConfig::default().with_max_record_bytes(6_000),
                },
            )
            .unwrap();
            let plan = fwd.plan(batch);
            let mut seen = vec![0usize; batch.len()];
            for (i, entry) in plan.entries().iter().enumerate() {
                let slots = plan.slots(i);
                proptest::prop_assert!(entry.aws_size() <= 6_000);
                match kinesis_utils::kpl::deaggregate(&entry.data) {
                    Some(users) => {
                        proptest::prop_assert!(entry.aws_size() <= aggregate_fill(max));
                        proptest::prop_assert_eq!(users.len(), slots.len());
                        for (u, &slot) in users.iter().zip(slots) {
                            proptest::prop_assert_eq!(&u.partition_key, &entry.partition_key);
                            proptest::prop_assert_eq!(&u.data, batch.iter().nth(slot).unwrap().2.data);
                        }
                    }
                    None => {
                        proptest::prop_assert_eq!(slots.len(), 1);
                        proptest::prop_assert_eq!(&entry.data, batch.iter().nth(slots[0]).unwrap().2.data);
                    }
                }
                if keyed {
                    let value = format!("\"k\":\"{}\"", entry.partition_key);
                    for &slot in slots {
                        let data = batch.iter().nth(slot).unwrap().2.data;
                        proptest::prop_assert!(data.windows(value.len()).any(|w| w == value.as_bytes()));
                    }
                }
                for &slot in slots {
                    seen[slot] += 1;
                }
            }
            for (slot, _) in plan.rejected() {
                seen[*slot] += 1;
                proptest::prop_assert!(batch.iter().nth(*slot).unwrap().2.data.len() > 5_900);
            }
            proptest::prop_assert!(seen.iter().all(|&n| n == 1), "{:?}", seen);
        }
    }
}
