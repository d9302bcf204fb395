//! The S3 archive destination (original kinesis-to-s3): one NDJSON object per `log_type`
//! group per batch, gzip (default), zstd or plain, at a deterministic key.

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::batch::{RoutedBatch, TypeGroup};
use crate::compress::{Compression, Compressor, DEFAULT_CHUNK_SIZE};
use crate::destination::{
    Deadline, DeliveryReport, Destination, IntoDestination, RetryPolicy, Stopped, join_all,
};
use crate::naming::{file_id, key_local_time, object_key_local, with_extension, write_record_line};
use crate::schema::{KeyDates, SchemaConfig, TimeZone};
use crate::store::{ObjectStore, StoreError};

/// How the archive ([`ArchiveConfig`]) writes its NDJSON objects. Deserializable (missing
/// fields take defaults), e.g. from TOML:
///
/// ```
/// # #[cfg(feature = "zstd")] {
/// use logging_core::ArchiveConfig;
/// use logging_core::compress::Compression;
/// let config: ArchiveConfig =
///     serde_json::from_str(r#"{"prefix": "logs", "compression": "zstd(3)"}"#).unwrap();
/// assert_eq!(config.compression, Compression::zstd(3).unwrap());
/// // Or built:
/// let built = ArchiveConfig::default().with_compression(Compression::zstd(3).unwrap());
/// assert_eq!(built.compressor().compression(), config.compression);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// Key prefix (`LOG_S3_PREFIX` for the archive, `FAILED_LOG_S3_PREFIX` for the dead
    /// letter); empty for none.
    pub prefix: String,
    /// How objects are compressed (default `gzip(6)`; the original wrote gzip level 9): keys
    /// end in `.gz`, `.zst` for [`Compression::Zstd`], `.ndjson` for [`Compression::None`].
    /// Written `"gzip(6)"`, `"zstd(3)"` or `"none"` in configuration text.
    pub compression: Compression,
    /// The most threads compressing a batch's objects, the calling one included (default
    /// `None`: every core the process may use, [`std::thread::available_parallelism`], which
    /// also bounds a larger number; on AWS Lambda no more than the whole vCPUs the function's
    /// memory buys, 1,769 MB each, rounded to the nearest); 1 compresses on one thread.
    pub compression_threads: Option<NonZeroUsize>,
    /// Objects larger than this are cut at line breaks and compressed in chunks side by side,
    /// concatenated gzip members or zstd frames, which every reader reads as one body (default
    /// 256 KiB, [`DEFAULT_CHUNK_SIZE`]). The bytes do not depend on the threads. `None`
    /// compresses each object whole, one member or frame, as before this setting existed.
    pub compression_chunk_size: Option<NonZeroUsize>,
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
            compression: Compression::default(),
            compression_threads: None,
            compression_chunk_size: Some(DEFAULT_CHUNK_SIZE),
            retry: RetryPolicy::default(),
            max_concurrent_puts: 8,
            key_dates: KeyDates::RecordOffset,
        }
    }
}

impl ObjectsConfig {
    /// With this compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// With at most this many compression threads.
    pub fn with_compression_threads(mut self, threads: NonZeroUsize) -> Self {
        self.compression_threads = Some(threads);
        self
    }

    /// With this chunk size (`None`: objects compressed whole).
    pub fn with_compression_chunk_size(mut self, chunk_size: Option<NonZeroUsize>) -> Self {
        self.compression_chunk_size = chunk_size;
        self
    }

    /// The [`Compressor`] these settings make.
    pub fn compressor(&self) -> Compressor {
        Compressor::configured(
            self.compression,
            self.compression_threads,
            self.compression_chunk_size,
        )
    }
}

/// Configuration of an [`S3Archive`].
pub type ArchiveConfig = ObjectsConfig;

/// One object of the archive, ready to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    /// The key.
    pub key: String,
    /// The body: NDJSON, compressed as configured.
    pub body: Vec<u8>,
}

/// Archives each `log_type` group of a batch as one object
/// `{prefix}/{log_type}/{%Y-%m}/{%d}/{%Y-%m-%d-%H:%M:%S}-{first_log_id}.gz` (`.zst` with zstd,
/// `.ndjson` uncompressed, see [`ObjectsConfig::compression`]): NDJSON of the original records (see [`write_record_line`]), dates from the group's first timestamp as
/// written (in its own offset, as the original module; [`KeyDates::Zone`] converts to the
/// zone instead). The same batch gives the same keys and bytes, so a retry overwrites.
pub struct S3Archive {
    store: Arc<dyn ObjectStore>,
    config: ArchiveConfig,
    compressor: Compressor,
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

/// An [`S3Archive`] waiting for the schema: hand it to
/// [`PipelineBuilder::route`](crate::pipeline::PipelineBuilder::route), which builds it with the
/// pipeline's schema, or build it yourself with [`S3ArchiveBuilder::build`].
#[derive(Debug)]
pub struct S3ArchiveBuilder {
    store: Arc<dyn ObjectStore>,
    config: ArchiveConfig,
}

impl S3ArchiveBuilder {
    /// The archive, dating keys in `schema`'s zone (groups without a timestamp, and every
    /// group with [`KeyDates::Zone`]).
    pub fn build(self, schema: &SchemaConfig) -> S3Archive {
        S3Archive::with_zone(self.store, self.config, schema.time_zone)
    }
}

impl IntoDestination for S3ArchiveBuilder {
    fn into_destination(self, schema: &SchemaConfig) -> Arc<dyn Destination> {
        Arc::new(self.build(schema))
    }
}

impl S3Archive {
    /// An archive writing to `store`, built with the schema of the pipeline it is routed in
    /// (see [`S3ArchiveBuilder`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use logging_core::{ArchiveConfig, MemoryStore, Pipeline, S3Archive, SchemaConfig, TypeFilter};
    /// let store = Arc::new(MemoryStore::new());
    /// let pipeline = Pipeline::builder(SchemaConfig::default())
    ///     .route(TypeFilter::all(), S3Archive::builder(store, ArchiveConfig::default()))
    ///     .build();
    /// # let _ = pipeline;
    /// ```
    pub fn builder(store: Arc<dyn ObjectStore>, config: ArchiveConfig) -> S3ArchiveBuilder {
        S3ArchiveBuilder { store, config }
    }

    fn with_zone(store: Arc<dyn ObjectStore>, config: ArchiveConfig, zone: TimeZone) -> Self {
        let prefix = config.prefix.trim_matches('/');
        let name = if prefix.is_empty() {
            format!("archive:{}", store.location())
        } else {
            format!("archive:{}/{prefix}", store.location())
        };
        Self {
            store,
            compressor: config.compressor(),
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
        let mut plain = Vec::with_capacity(group.records.iter().map(|r| r.data.len() + 1).sum());
        for r in &group.records {
            write_record_line(&mut plain, r)?;
        }
        Ok(ArchiveObject {
            key: self.key(group, now)?,
            body: self
                .compressor
                .compress_all(vec![plain])
                .pop()
                .unwrap_or_else(|| Err(std::io::Error::other("no compressed body")))?,
        })
    }

    /// Encodes every group of `batch` (as [`S3Archive::encode`] each), reading the records
    /// once in input order, which is how they lie in memory, and compressing the objects side
    /// by side.
    pub fn encode_batch(
        &self,
        batch: &RoutedBatch<'_>,
        now: DateTime<Utc>,
    ) -> Vec<std::io::Result<ArchiveObject>> {
        let (keys, plains) = self.plain_batch(batch, now);
        Self::objects(keys, self.compressor.compress_all(plains))
    }

    /// The keys and plain bodies of `batch`'s groups.
    fn plain_batch(
        &self,
        batch: &RoutedBatch<'_>,
        now: DateTime<Utc>,
    ) -> (Vec<std::io::Result<String>>, Vec<Vec<u8>>) {
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
        let keys = batch.groups.iter().map(|g| self.key(g, now)).collect();
        (keys, plains)
    }

    fn objects(
        keys: Vec<std::io::Result<String>>,
        bodies: Vec<std::io::Result<Vec<u8>>>,
    ) -> Vec<std::io::Result<ArchiveObject>> {
        keys.into_iter()
            .zip(bodies)
            .map(|(key, body)| {
                Ok(ArchiveObject {
                    key: key?,
                    body: body?,
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
        let key = object_key_local(&self.config.prefix, group.log_type, time, &id);
        Ok(with_extension(key, self.config.compression))
    }

    async fn put(
        &self,
        object: ArchiveObject,
        deadline: Deadline,
    ) -> Result<String, Stopped<StoreError>> {
        let content_type = self.config.compression.content_type();
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

    /// Each group is one object keyed by its first record.
    fn groups_are_objects(&self) -> bool {
        true
    }

    async fn deliver_until(&self, batch: &RoutedBatch<'_>, deadline: Deadline) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        let now = Utc::now();
        type Put<'f> =
            Pin<Box<dyn Future<Output = Result<String, Stopped<StoreError>>> + Send + 'f>>;
        let mut puts: Vec<(std::ops::Range<usize>, Put<'_>)> =
            Vec::with_capacity(batch.groups.len());
        // On a multi-thread runtime other deliveries keep going while this compresses.
        let (keys, plains) = self.plain_batch(batch, now);
        let objects = Self::objects(keys, self.compressor.compress_all_async(plains).await);
        for (group, object) in batch.groups.iter().zip(objects) {
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
        let archive = S3Archive::with_zone(
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
        let plain = S3Archive::with_zone(
            store.clone(),
            ArchiveConfig {
                prefix: "plain".into(),
                compression: Compression::None,
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
            let archive = S3Archive::with_zone(
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

    /// zstd objects end in `.zst`, carry `application/zstd` and read back; a large group is
    /// cut into chunks, and the bytes are the same on one thread or several and through the
    /// synchronous and asynchronous paths.
    #[cfg(feature = "zstd")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zstd_objects_and_chunked_objects_on_any_threads() {
        let o = origin("4950");
        let datas: Vec<Bytes> = (0..6000)
            .map(|i| Bytes::from(format!("{{\"n\":{i},\"m\":\"{}\"}}", "x y ".repeat(i % 40))))
            .collect();
        let records: Vec<Record<'_>> = datas
            .iter()
            .enumerate()
            .map(|(i, d)| Record {
                index: i,
                data: d,
                log_type: Cow::Borrowed(if i % 3 == 0 { "web" } else { "db" }),
                log_id: Some(Cow::Owned(format!("id{i}"))),
                timestamp: DateTime::from_timestamp(1_584_187_200, 0).map(|t| t.fixed_offset()),
                origin: &o,
                line_break: false,
            })
            .collect();
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batch = &router.route(&records)[0];
        let want: Vec<Vec<u8>> = batch
            .groups
            .iter()
            .map(|g| {
                g.records
                    .iter()
                    .flat_map(|r| [r.data, &b"\n"[..]].concat())
                    .collect()
            })
            .collect();
        let chunk = NonZeroUsize::new(16 * 1024);
        let now = Utc::now();
        let mut bodies = Vec::new();
        for threads in [1, 2, 4] {
            let store = Arc::new(MemoryStore::new());
            let config = ArchiveConfig::default()
                .with_compression(Compression::zstd(3).unwrap())
                .with_compression_threads(NonZeroUsize::new(threads).unwrap())
                .with_compression_chunk_size(chunk);
            let archive = S3Archive::with_zone(store.clone(), config, TimeZone::UTC);
            assert_eq!(archive.deliver(batch).await.counts(), (6000, 0, 0));
            let stored = store.snapshot();
            let keys: Vec<&String> = stored.keys().collect();
            assert_eq!(
                keys,
                [
                    "db/2020-03/14/2020-03-14-12:00:00-id1.zst",
                    "web/2020-03/14/2020-03-14-12:00:00-id0.zst"
                ]
            );
            for ((group, object), plain) in
                batch.groups.iter().zip(stored.values().rev()).zip(&want)
            {
                assert_eq!(object.content_type, "application/zstd");
                assert_eq!(&zstd::stream::decode_all(&object.body[..]).unwrap(), plain);
                // The synchronous encoding gives the same bytes.
                let one = archive.encode(group, now).unwrap();
                assert_eq!(one.body, object.body);
                // Several frames: the group is larger than the chunk size.
                assert!(plain.len() > 4 * 16 * 1024, "{}", plain.len());
            }
            bodies.push(stored.into_values().map(|o| o.body).collect::<Vec<_>>());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
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
        let archive = S3Archive::with_zone(
            store.clone(),
            ArchiveConfig {
                retry,
                ..ArchiveConfig::default()
            },
            TimeZone::UTC,
        );
        // Retries that cannot end before the deadline stop early: the group is cut. A finite
        // fault count tells how many puts were tried.
        const ARMED: u32 = 1_000;
        store.fail_puts("a/", ARMED);
        let slow = S3Archive::with_zone(
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
        // The full schedule is 10 attempts with 1.8 s of waits; stopping at the deadline means
        // fewer attempts and well under that time, even on a loaded machine.
        let tried = ARMED - store.faults()[0].remaining;
        assert!((1..10).contains(&tried), "{tried} puts tried");
        assert!(started.elapsed() < std::time::Duration::from_millis(1_500));
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
