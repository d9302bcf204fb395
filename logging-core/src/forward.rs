//! The Kinesis forward destination (original kinesis-forward): PutRecords of the original
//! records to another stream through `kinesis-utils`, optionally KPL-aggregated.

use std::ops::Range;

use async_trait::async_trait;
use kinesis_utils::kpl::{Aggregator, UserRecord};
use kinesis_utils::put::{RecordOutcome, random_partition_key};
use kinesis_utils::{KinesisApi, PutEntry, PutRecordsBatcher, PutRecordsConfig, StreamTarget};
use serde::Deserialize;

use crate::classify::Record;
use crate::destination::{DeliveryReport, Destination};
use crate::record::LogRecord;
use crate::routing::RoutedBatch;

/// Configuration of a [`KinesisForward`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// The target stream name or ARN (`TARGET_STREAM_NAME`).
    pub stream: String,
    /// Field whose value is the partition key; `None` (default) for a random key per record,
    /// as the original module did. A record without a usable value gets a random key.
    pub partition_key_field: Option<String>,
    /// Pack the forwarded records into KPL aggregated records (default false).
    pub aggregate: bool,
    /// Batching, limits and retries (`KINESIS_MAX_RETRIES` is `put.max_attempts - 1`).
    pub put: PutRecordsConfig,
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

    fn partition_key(&self, record: &Record<'_>) -> String {
        let Some(field) = &self.config.partition_key_field else {
            return random_partition_key();
        };
        // Only the configured field is looked up again; the bytes were validated already.
        let value = LogRecord::extract_field(record.data, field);
        match value.as_ref().and_then(|v| v.as_text()) {
            Some(v) if !v.is_empty() => v.chars().take(256).collect(),
            _ => random_partition_key(),
        }
    }
}

/// Which slots a Kinesis entry carries: a range of `slots` in the owner list.
struct Entries {
    entries: Vec<PutEntry>,
    owners: Vec<Range<usize>>,
    slots: Vec<usize>,
}

impl Entries {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            owners: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, entry: PutEntry, slots: &[usize]) {
        let start = self.slots.len();
        self.slots.extend_from_slice(slots);
        self.owners.push(start..self.slots.len());
        self.entries.push(entry);
    }
}

#[async_trait]
impl<A: KinesisApi> Destination for KinesisForward<A> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        let limit = self.batcher.config().max_record_bytes;
        let mut out = Entries::with_capacity(batch.len());
        let too_large = |size: usize| {
            format!(
                "{}: record of {size} bytes (data + partition key) is over the stream's record limit of {limit} bytes",
                self.name
            )
        };
        if self.config.aggregate {
            let mut agg = Aggregator::new(limit);
            let mut pending: Vec<usize> = Vec::new();
            for (slot, _, record) in batch.iter() {
                let user = UserRecord::new(record.data.clone(), self.partition_key(record));
                match agg.add(user) {
                    Ok(None) => pending.push(slot),
                    Ok(Some(done)) => {
                        let rest = pending.split_off(done.user_records.min(pending.len()));
                        let entry = PutEntry {
                            data: done.data,
                            partition_key: done.partition_key,
                            explicit_hash_key: done.explicit_hash_key,
                        };
                        out.push(entry, &pending);
                        pending = rest;
                        pending.push(slot);
                    }
                    // Too large for any aggregate: alone and plain it is larger still.
                    Err(e) => report.reject(slot, too_large(e.size)),
                }
            }
            if let Some(done) = agg.flush() {
                let entry = PutEntry {
                    data: done.data,
                    partition_key: done.partition_key,
                    explicit_hash_key: done.explicit_hash_key,
                };
                out.push(entry, &pending);
            }
        } else {
            for (slot, _, record) in batch.iter() {
                let entry = PutEntry::new(record.data.clone(), self.partition_key(record));
                if entry.aws_size() > limit {
                    report.reject(slot, too_large(entry.aws_size()));
                } else {
                    out.push(entry, &[slot]);
                }
            }
        }
        if out.entries.is_empty() {
            return report;
        }
        let Entries {
            entries,
            owners,
            slots,
        } = out;
        let count = entries.len();
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
                    "{} ({} of {count} Kinesis records accepted)",
                    self.name,
                    outcome.accepted_count()
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
}
