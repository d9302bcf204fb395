//! The S3 archive destination (original kinesis-to-s3): one gzip NDJSON object per `log_type`
//! group per batch, at a deterministic key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::destination::{Deadline, DeliveryReport, Destination, RetryPolicy, Stopped, join_all};
use crate::naming::{
    build_body, file_id, finish_body, key_local_time, object_key_local, write_record_line,
};
use crate::routing::{RoutedBatch, TypeGroup};
use crate::schema::{KeyDates, TimeZone};
use crate::store::{ObjectStore, StoreError};

/// How a writer of gzip NDJSON objects puts them: the archive ([`ArchiveConfig`]) and the
/// dead letter ([`DeadLetterConfig`](crate::dead_letter::DeadLetterConfig)) share it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// Key prefix (`LOG_S3_PREFIX` for the archive, `FAILED_LOG_S3_PREFIX` for the dead
    /// letter); empty for none.
    pub prefix: String,
    /// gzip level (default 6; the original used 9): 0 to 12 with the `libdeflate` feature, 0
    /// to 9 without it, higher clamped ([`MAX_GZIP_LEVEL`](crate::naming::MAX_GZIP_LEVEL)).
    /// `None` writes plain NDJSON objects whose keys end in `.ndjson` instead of `.gz`.
    pub gzip_level: Option<u32>,
    /// Retries of a failed put.
    pub retry: RetryPolicy,
    /// Puts in flight at once (default 8).
    pub max_concurrent_puts: usize,
    /// How key dates are taken from the first timestamp (default: as written, in the
    /// record's own offset, as the original modules did; see [`KeyDates`]).
    pub key_dates: KeyDates,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            gzip_level: Some(6),
            retry: RetryPolicy::default(),
            max_concurrent_puts: 8,
            key_dates: KeyDates::RecordOffset,
        }
    }
}

/// Configuration of an [`S3Archive`].
pub type ArchiveConfig = ObjectsConfig;

/// One object of the archive, ready to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    /// The key.
    pub key: String,
    /// The body (gzip NDJSON, or plain NDJSON without gzip).
    pub body: Vec<u8>,
}

/// Archives each `log_type` group of a batch as one object
/// `{prefix}/{log_type}/{%Y-%m}/{%d}/{%Y-%m-%d-%H:%M:%S}-{first_log_id}.gz`: NDJSON of the
/// original records (see [`write_record_line`]), dates from the group's first timestamp as
/// written (in its own offset, as the original module; [`KeyDates::Zone`] converts to the
/// zone instead). The same batch gives the same keys and bytes, so a retry overwrites.
pub struct S3Archive {
    store: Arc<dyn ObjectStore>,
    config: ArchiveConfig,
    zone: TimeZone,
    name: String,
}

impl std::fmt::Debug for S3Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Archive")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("zone", &self.zone)
            .finish()
    }
}

impl S3Archive {
    /// An archive writing to `store`; `zone` (use the schema's) dates groups without a
    /// timestamp, and every group with [`KeyDates::Zone`].
    pub fn new(store: Arc<dyn ObjectStore>, config: ArchiveConfig, zone: TimeZone) -> Self {
        let prefix = config.prefix.trim_matches('/');
        let name = if prefix.is_empty() {
            format!("archive:{}", store.location())
        } else {
            format!("archive:{}/{prefix}", store.location())
        };
        Self {
            store,
            config,
            zone,
            name,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ArchiveConfig {
        &self.config
    }

    /// Encodes one group into its object; `now` is the key time of a group with no timestamp,
    /// CloudWatch Logs time or Kinesis arrival time (see [`key_local_time`]).
    pub fn encode(
        &self,
        group: &TypeGroup<'_>,
        now: DateTime<Utc>,
    ) -> std::io::Result<ArchiveObject> {
        let raw_len = group.records.iter().map(|r| r.data.len() + 1).sum();
        let body = build_body(raw_len, self.config.gzip_level, &group.records, |w, r| {
            write_record_line(w, r)
        })?;
        Ok(ArchiveObject {
            key: self.key(group, now)?,
            body,
        })
    }

    /// Encodes every group of `batch` (as [`S3Archive::encode`] each), reading the records
    /// once in input order, which is how they lie in memory.
    pub fn encode_batch(
        &self,
        batch: &RoutedBatch<'_>,
        now: DateTime<Utc>,
    ) -> Vec<std::io::Result<ArchiveObject>> {
        let mut plains: Vec<Vec<u8>> = batch
            .groups
            .iter()
            .map(|g| Vec::with_capacity(g.records.iter().map(|r| r.data.len() + 1).sum()))
            .collect();
        for (g, record) in batch.iter_input_order() {
            if let Some(plain) = plains.get_mut(g) {
                // Writing into a Vec cannot fail.
                let _ = write_record_line(plain, record);
            }
        }
        batch
            .groups
            .iter()
            .zip(plains)
            .map(|(group, plain)| {
                Ok(ArchiveObject {
                    key: self.key(group, now)?,
                    body: finish_body(plain, self.config.gzip_level)?,
                })
            })
            .collect()
    }

    fn key(&self, group: &TypeGroup<'_>, now: DateTime<Utc>) -> std::io::Result<String> {
        let Some(first) = group.records.first() else {
            return Err(std::io::Error::other("empty group"));
        };
        let time = key_local_time(
            group.first_timestamp,
            first.origin,
            now,
            self.zone,
            self.config.key_dates,
        );
        let id = file_id(group.first_id, first.origin);
        let mut key = object_key_local(&self.config.prefix, group.log_type, time, &id);
        if self.config.gzip_level.is_none() {
            key.truncate(key.len() - ".gz".len());
            key.push_str(".ndjson");
        }
        Ok(key)
    }

    async fn put(
        &self,
        object: ArchiveObject,
        deadline: Deadline,
    ) -> Result<String, Stopped<StoreError>> {
        let content_type = if self.config.gzip_level.is_some() {
            "application/gzip"
        } else {
            "application/x-ndjson"
        };
        let body = Bytes::from(object.body);
        let key = object.key;
        self.config
            .retry
            .run_until(deadline, || {
                self.store.put(&key, body.clone(), content_type)
            })
            .await?;
        Ok(key)
    }
}

#[async_trait]
impl Destination for S3Archive {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        self.deliver_until(batch, Deadline::none()).await
    }

    /// The put retry budget ([`RetryPolicy::budget`]): the groups of a batch are put
    /// concurrently (up to `max_concurrent_puts` at once, more than a batch's types usually).
    fn retry_budget(&self) -> Option<std::time::Duration> {
        Some(self.config.retry.budget())
    }

    async fn deliver_until(&self, batch: &RoutedBatch<'_>, deadline: Deadline) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        let now = Utc::now();
        type Put<'f> =
            Pin<Box<dyn Future<Output = Result<String, Stopped<StoreError>>> + Send + 'f>>;
        let mut puts: Vec<(std::ops::Range<usize>, Put<'_>)> =
            Vec::with_capacity(batch.groups.len());
        for (group, object) in batch.groups.iter().zip(self.encode_batch(batch, now)) {
            match object {
                Ok(object) => puts.push((group.slots(), Box::pin(self.put(object, deadline)))),
                Err(e) => {
                    tracing::error!(destination = %self.name, log_type = group.log_type, error = %e, "encoding an archive object failed");
                    report.fail_range(
                        group.slots(),
                        format!("{}: encoding {} failed: {e}", self.name, group.log_type),
                    );
                }
            }
        }
        let chunk = self.config.max_concurrent_puts.max(1);
        while !puts.is_empty() {
            let rest = puts.split_off(chunk.min(puts.len()));
            let (ranges, futures): (Vec<_>, Vec<_>) =
                std::mem::replace(&mut puts, rest).into_iter().unzip();
            for (slots, result) in ranges.into_iter().zip(join_all(futures).await) {
                match result {
                    Ok(key) => {
                        report.deliver_range(slots);
                        report.artifacts.push(key);
                    }
                    Err(e) if e.is_deadline() => {
                        tracing::warn!(destination = %self.name, error = %e, "archive put cut at the deadline");
                        for slot in slots {
                            report.cut(slot);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(destination = %self.name, error = %e, "archive put failed after retries");
                        report.fail_range(slots, &e);
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
    use crate::classify::Record;
    use crate::classify::tests::origin;
    use crate::destination::DeliveryStatus;
    use crate::routing::{Router, TypeFilter};
    use crate::store::{FaultyStore, MemoryStore};
    use std::borrow::Cow;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn one_object_per_type_with_deterministic_keys() {
        let o = origin("4950");
        let datas: Vec<Bytes> = (0..5)
            .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
            .collect();
        let types = ["web", "db", "web", "db", "web"];
        let records: Vec<Record<'_>> = (0..5)
            .map(|i| Record {
                index: i,
                data: &datas[i],
                log_type: Cow::Borrowed(types[i]),
                log_id: if i == 1 {
                    None
                } else {
                    Some(Cow::Owned(format!("id{i}")))
                },
                timestamp: DateTime::from_timestamp(1_584_187_200 + i as i64, 0)
                    .map(|t| t.fixed_offset()),
                origin: &o,
                // Both writers: the payloads have no line breaks either way.
                line_break: i % 2 == 0,
            })
            .collect();
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&records)[0];
        let store = Arc::new(MemoryStore::new());
        let archive = S3Archive::new(
            store.clone(),
            ArchiveConfig {
                prefix: "logs".into(),
                ..ArchiveConfig::default()
            },
            TimeZone::UTC,
        );
        assert_eq!(archive.name(), "archive:memory/logs");
        // The one-pass batch encoding is the group-by-group one.
        let now = Utc::now();
        let objects = archive.encode_batch(batch, now);
        assert_eq!(objects.len(), 2);
        for (group, object) in batch.groups.iter().zip(objects) {
            let (object, one) = (object.unwrap(), archive.encode(group, now).unwrap());
            assert_eq!(
                (object.key, gunzip(&object.body)),
                (one.key, gunzip(&one.body))
            );
        }
        let report = archive.deliver(batch).await;
        assert_eq!(report.counts(), (5, 0, 0));
        let keys: Vec<_> = store.snapshot().into_keys().collect();
        assert_eq!(
            keys,
            [
                "logs/db/2020-03/14/2020-03-14-12:00:01-4950.gz",
                "logs/web/2020-03/14/2020-03-14-12:00:00-id0.gz",
            ]
        );
        assert_eq!(report.artifacts.len(), 2);
        let web = store.snapshot()["logs/web/2020-03/14/2020-03-14-12:00:00-id0.gz"].clone();
        assert_eq!(web.content_type, "application/gzip");
        assert_eq!(gunzip(&web.body), b"{\"n\":0}\n{\"n\":2}\n{\"n\":4}\n");
        // A retry writes the same keys and bytes.
        let before = store.snapshot();
        archive.deliver(batch).await;
        assert_eq!(store.snapshot(), before);
        assert_eq!(store.put_count(), 4);

        // Plain NDJSON when gzip is off.
        let plain = S3Archive::new(
            store.clone(),
            ArchiveConfig {
                prefix: "plain".into(),
                gzip_level: None,
                ..ArchiveConfig::default()
            },
            TimeZone::UTC,
        );
        plain.deliver(batch).await;
        let obj = &store.snapshot()["plain/db/2020-03/14/2020-03-14-12:00:01-4950.ndjson"];
        assert_eq!(obj.body, Bytes::from_static(b"{\"n\":1}\n{\"n\":3}\n"));
    }

    /// Keys are dated as the first timestamp was written (the original's `strftime`), in any
    /// zone; `KeyDates::Zone` converts to the zone.
    #[tokio::test]
    async fn key_dates_follow_the_record_offset_unless_converted() {
        let o = origin("1");
        let d = Bytes::from_static(b"{}");
        let t = DateTime::parse_from_rfc3339("2020-03-15T01:30:00+09:00").unwrap();
        let records = [Record {
            index: 0,
            data: &d,
            log_type: Cow::Borrowed("app"),
            log_id: Some(Cow::Borrowed("i1")),
            timestamp: Some(t),
            origin: &o,
            line_break: false,
        }];
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&records)[0];
        let utc = TimeZone::UTC;
        let ny: TimeZone = "America/New_York".parse().unwrap();
        for (dates, zone, key) in [
            (
                KeyDates::RecordOffset,
                utc,
                "p/app/2020-03/15/2020-03-15-01:30:00-i1.gz",
            ),
            (
                KeyDates::RecordOffset,
                ny,
                "p/app/2020-03/15/2020-03-15-01:30:00-i1.gz",
            ),
            (
                KeyDates::Zone,
                utc,
                "p/app/2020-03/14/2020-03-14-16:30:00-i1.gz",
            ),
            (
                KeyDates::Zone,
                ny,
                "p/app/2020-03/14/2020-03-14-12:30:00-i1.gz",
            ),
        ] {
            let archive = S3Archive::new(
                Arc::new(MemoryStore::new()),
                ArchiveConfig {
                    prefix: "p".into(),
                    key_dates: dates,
                    ..ArchiveConfig::default()
                },
                zone,
            );
            let object = archive.encode(&batch.groups[0], Utc::now()).unwrap();
            assert_eq!(object.key, key, "{dates:?} {zone}");
        }
    }

    #[tokio::test]
    async fn failed_puts_fail_only_their_group_after_retries() {
        let o = origin("1");
        let d = Bytes::from_static(b"{}");
        let records: Vec<Record<'_>> = ["a", "b", "a"]
            .iter()
            .enumerate()
            .map(|(i, t)| Record {
                index: i,
                data: &d,
                log_type: Cow::Borrowed(*t),
                log_id: None,
                timestamp: DateTime::from_timestamp(0, 0).map(|t| t.fixed_offset()),
                origin: &o,
                line_break: false,
            })
            .collect();
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&records)[0];
        let store = Arc::new(FaultyStore::new(MemoryStore::new()));
        let retry = RetryPolicy {
            initial_backoff: std::time::Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let archive = S3Archive::new(
            store.clone(),
            ArchiveConfig {
                retry,
                ..ArchiveConfig::default()
            },
            TimeZone::UTC,
        );
        // Retries that cannot end before the deadline stop early: the group is cut.
        store.fail_puts("a/", u32::MAX);
        let slow = S3Archive::new(
            store.clone(),
            ArchiveConfig {
                retry: RetryPolicy {
                    max_attempts: 10,
                    initial_backoff: std::time::Duration::from_millis(200),
                    max_backoff: std::time::Duration::from_millis(200),
                    ..RetryPolicy::default()
                },
                ..ArchiveConfig::default()
            },
            TimeZone::UTC,
        );
        assert_eq!(
            slow.retry_budget(),
            Some(std::time::Duration::from_secs(300) + std::time::Duration::from_millis(1800))
        );
        let started = std::time::Instant::now();
        let deadline = Deadline::after(std::time::Duration::from_millis(300));
        let report = slow.deliver_until(batch, deadline).await;
        assert!(started.elapsed() < std::time::Duration::from_millis(300));
        assert_eq!((report.counts(), report.cut_count()), ((1, 0, 2), 2));
        assert!(report.status(0).unwrap().is_cut());
        store.clear();
        // Two failures are absorbed by the three attempts.
        store.fail_puts("a/", 2);
        assert_eq!(archive.deliver(batch).await.counts(), (3, 0, 0));
        store.fail_puts("b/", u32::MAX);
        let report = archive.deliver(batch).await;
        assert_eq!(report.counts(), (2, 0, 1));
        match report.status(2) {
            Some(DeliveryStatus::Failed(e)) => assert!(e.contains("injected fault"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
