//! The Elasticsearch / OpenSearch [`Destination`] (original kinesis-to-es): each routed record
//! becomes one Bulk API `index` action into its daily index, through [`deliver_bulk`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use kinesis_utils::Origin;
use serde::Deserialize;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::bulk::{BulkConfig, BulkItem, ItemOutcome, deliver_bulk};
use super::index::{IndexNameError, IndexNamer, validate_index_name};
use super::{SearchApi, doc_id_from_log_id};
use crate::batch::RoutedBatch;
use crate::classify::Record;
use crate::destination::{DeliveryReport, Destination, IntoDestination};
use crate::naming::key_local_time;
use crate::schema::{KeyDates, SchemaConfig, TimeZone};

/// Where a document's `_id` comes from.
///
/// With an id, a batch that Lambda replays after a partial failure (or a whole batch
/// replayed from the stream) overwrites the documents it already indexed instead of
/// duplicating them. That is the default.
///
/// An explicit id costs the cluster a lookup per document (it must find whether the id
/// exists), which documents with cluster-assigned ids skip; [`DocIdMode::None`] is the
/// choice for append-only indices that prefer that speed to idempotent replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocIdMode {
    /// No `_id`: the cluster assigns one (the original module's behaviour). Replays duplicate.
    None,
    /// The record's `log_id` ([`doc_id_from_log_id`]: as is up to 512 bytes, else hashed);
    /// a record without one gets the [`DocIdMode::Origin`] id. Records sharing a `log_id`
    /// share a document.
    LogId,
    /// The default: [`origin_doc_id`], a hash of where the record came from (the Kinesis
    /// record's shard and sequence number, its KPL sub-sequence, its CloudWatch Logs event
    /// id). The same record gets the same id on every replay, and two records of a stream
    /// never share one.
    #[default]
    Origin,
}

/// The `_id` of a record from where it came from, the same on every replay; two records of
/// a stream never share one.
///
/// For what Lambda hands over, the id spells the origin out: the shard number, `-`, the
/// sequence number, then `.` and the KPL sub-sequence and `_` and the CloudWatch Logs event id
/// when there are any (`3-4959…8898`, `3-4959…8898.12_3595…0042`). Every part is digits, so
/// the separators keep distinct origins apart, an operator can read the Kinesis record back
/// from a document, and the ids of a shard share long prefixes, which the cluster's id
/// lookups and compression favour. Anything else (no `eventID`, non-numeric parts, an id
/// over 256 bytes) gets `h` and the URL-safe base64 of a SHA-256 over every part,
/// length-prefixed (the partition key standing in for the shard without an `eventID`): a
/// letter first, so it never equals a spelled-out id.
///
/// `None` when the origin names no Kinesis record (no `eventID` and no sequence number, as
/// an [`Origin::default`]): such records would all share one id and overwrite each other,
/// so they are indexed without one.
///
/// ```
/// use kinesis_utils::{CwlOrigin, Origin};
/// use logging_core::search::origin_doc_id;
///
/// let seq = "49590338271490256608559692538361571095921575989136588898";
/// let record = Origin::new(seq).with_event_id(&format!("shardId-000000000003:{seq}"));
/// assert_eq!(origin_doc_id(&record).unwrap(), format!("3-{seq}"));
/// let user = record.clone().with_sub_sequence(12);
/// assert_eq!(origin_doc_id(&user).unwrap(), format!("3-{seq}.12"));
/// let event = record.with_cwl(CwlOrigin::new("3595", "/ecs/app", "web/1", 1_584_154_800_000));
/// assert_eq!(origin_doc_id(&event).unwrap(), format!("3-{seq}_3595"));
/// // Built by hand, without Lambda's event id: hashed.
/// let other = origin_doc_id(&Origin::new("7").with_partition_key("k")).unwrap();
/// assert!(other.starts_with('h') && other.len() == 44);
/// assert_eq!(origin_doc_id(&Origin::default()), None);
/// ```
pub fn origin_doc_id(origin: &Origin) -> Option<String> {
    if let Some(id) = spelled_out_id(origin) {
        return Some(id);
    }
    origin_digest(origin).map(|d| {
        let mut id = String::with_capacity(44);
        id.push('h');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(d, &mut id);
        id
    })
}

/// Longest spelled-out id; longer origins are hashed.
const MAX_SPELLED_OUT_ID: usize = 256;

/// The spelled-out id of an origin in Lambda's shape: `eventID` `shardId-{12 digits}:{seq}`
/// with `seq` the sequence number, all digits, and a CloudWatch Logs event id of digits.
fn spelled_out_id(origin: &Origin) -> Option<String> {
    let sequence = origin.sequence_number();
    let rest = origin.event_id()?.strip_prefix("shardId-")?;
    let (shard, seq) = rest.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if shard.len() != 12 || !digits(shard) || seq != sequence || !digits(seq) {
        return None;
    }
    let cwl = origin.cwl().map(|c| c.event_id());
    if cwl.is_some_and(|c| !digits(c)) {
        return None;
    }
    // The shard number without its zero padding (always 12 digits, so nothing is lost).
    let shard = shard.trim_start_matches('0');
    let shard = if shard.is_empty() { "0" } else { shard };
    let sub = origin.sub_sequence().map(|s| s.to_string());
    let len = shard.len()
        + 1
        + seq.len()
        + sub.as_ref().map_or(0, |s| s.len() + 1)
        + cwl.map_or(0, |c| c.len() + 1);
    if len > MAX_SPELLED_OUT_ID {
        return None;
    }
    let mut id = String::with_capacity(len);
    id.push_str(shard);
    id.push('-');
    id.push_str(seq);
    if let Some(sub) = sub {
        id.push('.');
        id.push_str(&sub);
    }
    if let Some(cwl) = cwl {
        id.push('_');
        id.push_str(cwl);
    }
    Some(id)
}

/// The SHA-256 behind [`origin_doc_id`].
fn origin_digest(origin: &Origin) -> Option<[u8; 32]> {
    let event_id = origin.event_id();
    let sequence = origin.sequence_number();
    if event_id.is_none() && sequence.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    let mut field = |tag: u8, bytes: &[u8]| {
        h.update([tag]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    match event_id {
        Some(id) => field(1, id.as_bytes()),
        // Sequence numbers are unique per partition key within a shard.
        None => field(2, origin.partition_key().as_bytes()),
    }
    field(3, sequence.as_bytes());
    if let Some(sub) = origin.sub_sequence() {
        field(5, &sub.to_le_bytes());
    }
    if let Some(cwl) = origin.cwl() {
        field(6, cwl.event_id().as_bytes());
    }
    Some(h.finalize().into())
}

/// Configuration of a [`SearchDestination`]. Deserializable; missing fields take defaults.
///
/// ```
/// use logging_core::search::{DocIdMode, SearchDestinationConfig};
///
/// let cfg: SearchDestinationConfig =
///     serde_json::from_str(r#"{"index_prefix":"logs","doc_id":"log_id"}"#).unwrap();
/// assert_eq!(cfg.doc_id, DocIdMode::LogId);
/// assert_eq!(cfg.bulk.max_actions, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchDestinationConfig {
    /// First part of `{index_prefix}-{log_type}-{%Y%m%d}` (`INDEX_NAME_PREFIX`; required,
    /// default empty, which [`SearchDestination::builder`] refuses).
    pub index_prefix: String,
    /// Where `_id` comes from (default: [`DocIdMode::Origin`], so that replays overwrite;
    /// the original module sent none).
    pub doc_id: DocIdMode,
    /// How index dates are taken from a record's timestamp (default: as written, in the
    /// record's own offset, as the original module's `strftime`; see [`KeyDates`]).
    pub index_dates: KeyDates,
    /// Chunk limits and retries of the Bulk API.
    pub bulk: BulkConfig,
}

impl Default for SearchDestinationConfig {
    fn default() -> Self {
        Self {
            index_prefix: String::new(),
            doc_id: DocIdMode::Origin,
            index_dates: KeyDates::RecordOffset,
            bulk: BulkConfig::default(),
        }
    }
}

/// A configuration [`SearchDestination::builder`] cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchConfigError {
    /// No index prefix.
    #[error("search destination: no index prefix configured (INDEX_NAME_PREFIX)")]
    NoPrefix,
    /// The prefix cannot start a valid index name.
    #[error("search destination: index prefix {prefix:?} cannot form index names: {source}")]
    BadPrefix {
        /// The prefix.
        prefix: String,
        /// Which rule a name built from it breaks.
        #[source]
        source: IndexNameError,
    },
}

/// Indexes routed records into Elasticsearch / OpenSearch, one document per record, into
/// `{index_prefix}-{log_type}-{%Y%m%d}` dated from the record's *own* timestamp, as written
/// (or converted to the schema's zone with [`KeyDates::Zone`]).
///
/// The record's original bytes are the `_source` (line breaks between JSON tokens become
/// spaces; nothing else changes). Per record:
///
/// * **Delivered** when the cluster answered 2xx for its item;
/// * **Rejected** (`"{error type}: {reason}"`, e.g. `mapper_parsing_exception: ...`) when
///   its item was refused permanently (4xx other than 429, or 413 alone), or when its
///   `log_type` cannot form a valid index name (`invalid_index_name: ...`; nothing is sent);
/// * **Failed** when it was still answered 429 / 5xx, or the request failed, after the
///   [`BulkConfig`] retries.
///
/// A record without a timestamp (only when the schema does not require one) is dated by its
/// CloudWatch Logs event time, else by the time of delivery.
///
/// Works with any [`SearchApi`] behind an [`Arc`]: a concrete type or `Arc<dyn SearchApi>`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use base64::Engine as _;
/// use logging_core::search::{DocIdMode, MemorySearch, SearchDestination, SearchDestinationConfig};
/// use logging_core::{Pipeline, SchemaConfig, TypeFilter};
///
/// let cluster = Arc::new(MemorySearch::new());
/// let es = SearchDestination::builder(
///     cluster.clone(),
///     SearchDestinationConfig {
///         index_prefix: "logs".into(),
///         doc_id: DocIdMode::LogId,
///         ..SearchDestinationConfig::default()
///     },
/// )
/// .unwrap();
/// let pipeline = Pipeline::builder(SchemaConfig::default())
///     .route(TypeFilter::all(), es)
///     .build();
///
/// let data = base64::engine::general_purpose::STANDARD
///     .encode(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00Z"}"#);
/// let event = format!(
///     r#"{{"Records":[{{"kinesis":{{"data":"{data}","partitionKey":"k","sequenceNumber":"1"}}}}]}}"#
/// );
/// let out = pipeline.process(event.as_bytes()).await.unwrap();
/// assert_eq!(out.report.delivered, 1);
/// assert!(out.response.batch_item_failures.is_empty());
/// let docs = cluster.documents("logs-app-20200314");
/// assert_eq!(docs[0].0, "a1");
/// # });
/// ```
pub struct SearchDestination<S: ?Sized = dyn SearchApi> {
    api: Arc<S>,
    namer: IndexNamer,
    config: SearchDestinationConfig,
    zone: TimeZone,
    name: String,
}

/// A [`SearchDestination`] waiting for the schema: hand it to
/// [`PipelineBuilder::route`](crate::pipeline::PipelineBuilder::route), which builds it with the
/// pipeline's schema, or build it yourself with [`SearchDestinationBuilder::build`].
pub struct SearchDestinationBuilder<S: ?Sized = dyn SearchApi> {
    api: Arc<S>,
    config: SearchDestinationConfig,
}

impl<S: ?Sized> fmt::Debug for SearchDestinationBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchDestinationBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: SearchApi + ?Sized> SearchDestinationBuilder<S> {
    /// The destination, dating indices in `schema`'s zone (records without a timestamp, and
    /// every record with [`KeyDates::Zone`]).
    pub fn build(self, schema: &SchemaConfig) -> SearchDestination<S> {
        let config = self.config;
        SearchDestination {
            api: self.api,
            namer: IndexNamer::new(config.index_prefix.clone(), schema.time_zone.tz()),
            name: format!("search:{}", config.index_prefix),
            zone: schema.time_zone,
            config,
        }
    }
}

impl<S: SearchApi + ?Sized + 'static> IntoDestination for SearchDestinationBuilder<S> {
    fn into_destination(self, schema: &SchemaConfig) -> Arc<dyn Destination> {
        Arc::new(self.build(schema))
    }
}

impl<S: ?Sized> fmt::Debug for SearchDestination<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchDestination")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: SearchApi + ?Sized> SearchDestination<S> {
    /// A destination indexing through `api`, built with the schema of the pipeline it is
    /// routed in (see [`SearchDestinationBuilder`]). Fails when the index prefix is empty or
    /// cannot start a valid index name (e.g. uppercase), so that misconfiguration shows at
    /// start-up rather than as every record rejected.
    pub fn builder(
        api: Arc<S>,
        config: SearchDestinationConfig,
    ) -> Result<SearchDestinationBuilder<S>, SearchConfigError> {
        if config.index_prefix.is_empty() {
            return Err(SearchConfigError::NoPrefix);
        }
        // A name with the shortest log_type shows whether the prefix itself breaks a rule.
        validate_index_name(&format!("{}-a-20200101", config.index_prefix)).map_err(|source| {
            SearchConfigError::BadPrefix {
                prefix: config.index_prefix.clone(),
                source,
            }
        })?;
        Ok(SearchDestinationBuilder { api, config })
    }

    /// The configuration.
    pub fn config(&self) -> &SearchDestinationConfig {
        &self.config
    }

    /// The `_id` this destination gives `record`, per [`DocIdMode`]. Within one delivery,
    /// a record whose origin id another record of the batch already has is indexed without
    /// one instead (see [`Destination::deliver`]).
    pub fn doc_id(&self, record: &Record<'_>) -> Option<String> {
        match self.config.doc_id {
            DocIdMode::None => None,
            DocIdMode::LogId => match record.log_id.as_deref() {
                Some(id) if !id.is_empty() => Some(doc_id_from_log_id(id)),
                _ => origin_doc_id(record.origin),
            },
            DocIdMode::Origin => origin_doc_id(record.origin),
        }
    }
}

/// Ids derived from origins within one delivery: a second record with the same origin (only
/// possible with origins built by hand) would overwrite the first, so it gets no id.
#[derive(Default)]
struct OriginIds {
    /// A 64-bit hash of each id; a rare false match only costs a record its id (a replay may
    /// then duplicate it, never lose it).
    seen: std::collections::HashSet<u64, std::hash::BuildHasherDefault<PrefixHasher>>,
    shared: usize,
}

impl OriginIds {
    fn id(&mut self, origin: &Origin) -> Option<String> {
        let id = origin_doc_id(origin)?;
        if self.seen.insert(fold_hash(id.as_bytes())) {
            Some(id)
        } else {
            self.shared += 1;
            None
        }
    }
}

/// A quick 64-bit hash of a short id (8 bytes per multiply).
fn fold_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// Takes a `u64` hash as it is.
#[derive(Default)]
struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[async_trait]
impl<S: SearchApi + ?Sized> Destination for SearchDestination<S> {
    fn name(&self) -> &str {
        &self.name
    }

    /// `max_attempts` requests at the client's timeout plus the largest backoffs, when the
    /// client has a timeout (per chunk; a batch is one chunk up to 500 records / 5 MB).
    fn retry_budget(&self) -> Option<std::time::Duration> {
        let timeout = self.api.request_timeout()?;
        let bulk = &self.config.bulk;
        let attempts = bulk.max_attempts.max(1);
        let backoffs: u64 = (1..attempts)
            .map(|a| {
                bulk.initial_backoff_ms
                    .saturating_mul(1u64 << a.saturating_sub(1).min(30))
                    .min(bulk.max_backoff_ms)
            })
            .sum();
        Some(timeout * attempts + std::time::Duration::from_millis(backoffs))
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        if batch.is_empty() {
            return report;
        }
        let now = Utc::now();
        let (zone, dates) = (self.zone, self.config.index_dates);
        let mut origin_ids = OriginIds::default();
        if self.config.doc_id != DocIdMode::None {
            origin_ids.seen.reserve(batch.len());
        }
        let mut items: Vec<BulkItem<'_>> = Vec::with_capacity(batch.len());
        // In input order: records, and their origins' rows, lie so in memory, which reading
        // group by group scatters when types are interleaved; the bodies follow the stream.
        let mut taken = vec![0usize; batch.groups.len()];
        // Per group, the last day named: records of a type are mostly of one day.
        let mut last: Vec<Option<(NaiveDate, String)>> = vec![None; batch.groups.len()];
        let mut name_buf = String::new();
        for (g, record) in batch.iter_input_order() {
            let (Some(group), Some(taken), Some(last)) =
                (batch.groups.get(g), taken.get_mut(g), last.get_mut(g))
            else {
                continue;
            };
            let slot = group.start + *taken;
            *taken += 1;
            let date = key_local_time(record.timestamp, record.origin, now, zone, dates).date();
            let index = match last {
                Some((d, name)) if *d == date => name.clone(),
                _ => match self
                    .namer
                    .write_index_name_on(&mut name_buf, group.log_type, date)
                {
                    Ok(()) => {
                        *last = Some((date, name_buf.clone()));
                        name_buf.clone()
                    }
                    Err(e) => {
                        report.reject(slot, format!("invalid_index_name: {e}"));
                        continue;
                    }
                },
            };
            let id = match (self.config.doc_id, record.log_id.as_deref()) {
                (DocIdMode::None, _) => None,
                (DocIdMode::LogId, Some(id)) if !id.is_empty() => Some(doc_id_from_log_id(id)),
                _ => origin_ids.id(record.origin),
            };
            items.push(BulkItem {
                key: slot,
                index,
                id,
                source: record.data,
            });
        }
        if origin_ids.shared > 0 {
            tracing::warn!(
                destination = %self.name,
                records = origin_ids.shared,
                "records share their origin with another record of the batch: indexed without _id"
            );
        }
        if items.is_empty() {
            return report;
        }
        let bulk = deliver_bulk(&*self.api, &items, &self.config.bulk).await;
        let mut indices = BTreeSet::new();
        // deliver_bulk reports in input order, so outcomes line up with `items`.
        for (item, (slot, outcome)) in items.iter().zip(&bulk.outcomes) {
            match outcome {
                ItemOutcome::Delivered => {
                    report.deliver(*slot);
                    indices.insert(item.index.as_str());
                }
                ItemOutcome::Rejected {
                    status,
                    error_type,
                    reason,
                } => {
                    let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                    report.reject(*slot, format!("{error_type}: {reason}{status}"));
                }
                ItemOutcome::Failed { reason } => {
                    report.fail(*slot, format!("{}: {reason}", self.name));
                }
            }
        }
        report
            .artifacts
            .extend(indices.into_iter().map(str::to_owned));
        report.artifacts.push(format!(
            "{} ({} of {} documents indexed in {} bulk requests)",
            self.name,
            bulk.delivered(),
            items.len(),
            bulk.requests
        ));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::origin;
    use crate::destination::DeliveryStatus;
    use crate::routing::{Router, TypeFilter};
    use crate::search::{MemorySearch, SearchError};
    use bytes::Bytes;
    use chrono::{DateTime, TimeZone as _};
    use proptest::prelude::*;

    impl<S: SearchApi + ?Sized> SearchDestination<S> {
        /// The tests' destinations date indices in Asia/Tokyo.
        fn new(api: Arc<S>, config: SearchDestinationConfig) -> Result<Self, SearchConfigError> {
            let schema = SchemaConfig {
                time_zone: "Asia/Tokyo".parse().unwrap(),
                ..SchemaConfig::default()
            };
            Ok(Self::builder(api, config)?.build(&schema))
        }
    }

    fn config(doc_id: DocIdMode) -> SearchDestinationConfig {
        SearchDestinationConfig {
            index_prefix: "logs".into(),
            doc_id,
            index_dates: KeyDates::Zone,
            bulk: BulkConfig {
                initial_backoff_ms: 0,
                max_backoff_ms: 0,
                max_attempts: 2,
                ..BulkConfig::default()
            },
        }
    }

    struct Fixture {
        data: Vec<Bytes>,
        origins: Vec<Origin>,
    }

    impl Fixture {
        fn new(n: usize) -> Self {
            Self {
                data: (0..n)
                    .map(|i| Bytes::from(format!("{{\"n\":{i},\n\"s\":\"x\"}}")))
                    .collect(),
                origins: (0..n).map(|i| origin(&(100 + i).to_string())).collect(),
            }
        }

        /// Records of `types[i]`, stamped `times[i]`, with id `ids[i]`.
        fn records<'a>(
            &'a self,
            types: &[&'a str],
            times: &[Option<DateTime<Utc>>],
            ids: &[Option<&'a str>],
        ) -> Vec<Record<'a>> {
            (0..types.len())
                .map(|i| Record {
                    index: i,
                    data: &self.data[i],
                    log_type: types[i].into(),
                    log_id: ids[i].map(Into::into),
                    timestamp: times[i].map(|t| t.fixed_offset()),
                    origin: &self.origins[i],
                    line_break: true,
                })
                .collect()
        }
    }

    fn at(d: u32, h: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2020, 3, d, h, 0, 0).unwrap())
    }

    #[test]
    fn config_is_checked() {
        let api = Arc::new(MemorySearch::new());
        let err = SearchDestination::new(api.clone(), SearchDestinationConfig::default());
        assert_eq!(err.unwrap_err(), SearchConfigError::NoPrefix);
        let bad = SearchDestinationConfig {
            index_prefix: "Logs".into(),
            ..SearchDestinationConfig::default()
        };
        let err = SearchDestination::new(api, bad).unwrap_err();
        assert!(err.to_string().contains("uppercase"), "{err}");
        let cfg: SearchDestinationConfig = serde_json::from_str(
            r#"{"index_prefix":"x","doc_id":"origin","bulk":{"max_actions":7}}"#,
        )
        .unwrap();
        assert_eq!(cfg.doc_id, DocIdMode::Origin);
        assert_eq!(cfg.bulk.max_actions, 7);
        assert_eq!(cfg.bulk.max_attempts, 5);
        assert!(serde_json::from_str::<SearchDestinationConfig>(r#"{"typo":1}"#).is_err());
        // The zone is the pipeline's schema's, not the destination's.
        assert!(serde_json::from_str::<SearchDestinationConfig>(r#"{"time_zone":"UTC"}"#).is_err());
    }

    #[tokio::test]
    async fn indexes_each_record_by_its_own_date_in_the_zone() {
        let api = Arc::new(MemorySearch::new());
        let es = SearchDestination::new(api.clone(), config(DocIdMode::LogId)).unwrap();
        let fx = Fixture::new(3);
        // 14th 12:00 UTC is the 14th in Tokyo; 14th 16:00 UTC is already the 15th there.
        let recs = fx.records(
            &["app", "app", "web"],
            &[at(14, 12), at(14, 16), at(14, 12)],
            &[Some("a1"), None, Some("w1")],
        );
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        let report = es.deliver(&batches[0]).await;
        assert_eq!(report.counts(), (3, 0, 0));
        assert_eq!(api.documents("logs-app-20200314")[0].0, "a1");
        let next_day = api.documents("logs-app-20200315");
        // No log_id: the id derived from the origin, byte for byte source (newline -> space).
        assert_eq!(Some(next_day[0].0.clone()), origin_doc_id(&fx.origins[1]));
        assert_eq!(next_day[0].1, b"{\"n\":1, \"s\":\"x\"}");
        assert_eq!(api.documents("logs-web-20200314").len(), 1);
        assert!(report.artifacts.iter().any(|a| a == "logs-app-20200315"));
        assert!(report.artifacts.last().unwrap().contains("3 of 3"));
    }

    /// The default dates each record as written, in its own offset, as the original module
    /// did; `KeyDates::Zone` converts.
    #[tokio::test]
    async fn index_dates_follow_the_record_offset_unless_converted() {
        let data = Bytes::from_static(br#"{"n":1}"#);
        let o = origin("1");
        let t = DateTime::parse_from_rfc3339("2020-03-15T01:00:00+09:00").unwrap();
        let recs = [Record {
            index: 0,
            data: &data,
            log_type: "app".into(),
            log_id: None,
            timestamp: Some(t),
            origin: &o,
            line_break: false,
        }];
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        for (dates, index) in [
            (KeyDates::RecordOffset, "logs-app-20200315"),
            (KeyDates::Zone, "logs-app-20200314"),
        ] {
            let api = Arc::new(MemorySearch::new());
            let cfg = SearchDestinationConfig {
                index_prefix: "logs".into(),
                index_dates: dates,
                ..SearchDestinationConfig::default()
            };
            // The schema's zone is UTC.
            let es = SearchDestination::builder(api.clone(), cfg)
                .unwrap()
                .build(&SchemaConfig::default());
            assert_eq!(es.deliver(&batches[0]).await.counts(), (1, 0, 0));
            assert_eq!(api.list_indices().await.unwrap(), [index], "{dates:?}");
        }
    }

    #[tokio::test]
    async fn outcomes_map_to_delivered_rejected_failed() {
        let api = Arc::new(MemorySearch::new());
        let es = SearchDestination::new(api.clone(), config(DocIdMode::LogId)).unwrap();
        api.script_item("bad", [400]);
        api.script_item("busy", [429]); // then 201 on the retry
        api.script_item("down", [503, 503]);
        let long = "t".repeat(250);
        let fx = Fixture::new(5);
        let recs = fx.records(
            &["app", "app", "app", "app", &long],
            &[at(1, 0), at(1, 0), at(1, 0), at(1, 0), at(1, 0)],
            &[
                Some("ok"),
                Some("bad"),
                Some("busy"),
                Some("down"),
                Some("l"),
            ],
        );
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        let report = es.deliver(&batches[0]).await;
        let s = report.statuses();
        assert_eq!(s[0], DeliveryStatus::Delivered);
        assert!(
            matches!(&s[1], DeliveryStatus::Rejected(r) if r.starts_with("mapper_parsing_exception: ") && r.contains("HTTP 400")),
            "{:?}",
            s[1]
        );
        assert_eq!(s[2], DeliveryStatus::Delivered);
        assert!(matches!(&s[3], DeliveryStatus::Failed(r) if r.contains("503")));
        assert!(
            matches!(&s[4], DeliveryStatus::Rejected(r) if r.starts_with("invalid_index_name: ")),
            "{:?}",
            s[4]
        );
        // The long type was never sent: 1 request + 1 retry of busy/down.
        assert_eq!(api.bulk_requests(), 2);
    }

    #[tokio::test]
    async fn whole_request_failures_fail_every_slot_and_dyn_api_works() {
        let mem = Arc::new(MemorySearch::new());
        for _ in 0..2 {
            mem.push_failure(SearchError::Status {
                operation: "bulk",
                resource: "_bulk".into(),
                status: 502,
                body: "bad gateway".into(),
            });
        }
        let api: Arc<dyn SearchApi> = mem.clone();
        let es: SearchDestination = SearchDestination::new(api, config(DocIdMode::None)).unwrap();
        let fx = Fixture::new(2);
        let recs = fx.records(&["a", "b"], &[at(1, 0), None], &[None, None]);
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        let report = es.deliver(&batches[0]).await;
        assert_eq!(report.counts(), (0, 0, 2));
        assert!(matches!(&report.statuses()[0], DeliveryStatus::Failed(r) if r.contains("502")));
    }

    #[test]
    fn doc_ids_follow_the_mode() {
        let fx = Fixture::new(1);
        let long = "x".repeat(600);
        let recs = fx.records(&["a"], &[at(1, 0)], &[Some(&long)]);
        let api = Arc::new(MemorySearch::new());
        let id = |mode| {
            SearchDestination::new(api.clone(), config(mode))
                .unwrap()
                .doc_id(&recs[0])
        };
        assert_eq!(id(DocIdMode::None), None);
        assert_eq!(id(DocIdMode::LogId).unwrap().len(), 43);
        assert_eq!(id(DocIdMode::Origin), origin_doc_id(&fx.origins[0]));
        assert!(id(DocIdMode::Origin).is_some());
        assert_eq!(SearchDestinationConfig::default().doc_id, DocIdMode::Origin);
        let o = origin("5").with_sub_sequence(1);
        let p = origin("5").with_sub_sequence(2);
        assert_ne!(origin_doc_id(&o), origin_doc_id(&p));
    }

    /// The default: a replayed batch overwrites its documents; records whose origin names
    /// nothing, or repeats another record's, get no id rather than overwriting each other.
    #[tokio::test]
    async fn replays_overwrite_and_shared_origins_never_do() {
        let api = Arc::new(MemorySearch::new());
        let es = SearchDestination::new(
            api.clone(),
            SearchDestinationConfig {
                index_prefix: "logs".into(),
                ..SearchDestinationConfig::default()
            },
        )
        .unwrap();
        let data: Vec<Bytes> = (0..5)
            .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
            .collect();
        let origins = [
            origin("1"),
            origin("1").with_sub_sequence(0),
            origin("1").with_sub_sequence(0), // the same as the one before
            Origin::default(),                // names no record
            Origin::default(),
        ];
        let recs: Vec<Record<'_>> = (0..5)
            .map(|i| Record {
                index: i,
                data: &data[i],
                log_type: "app".into(),
                log_id: None,
                timestamp: at(1, 0).map(|t| t.fixed_offset()),
                origin: &origins[i],
                line_break: false,
            })
            .collect();
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        for _ in 0..2 {
            assert_eq!(es.deliver(&batches[0]).await.counts(), (5, 0, 0));
        }
        let docs = api.documents("logs-app-20200301");
        let with_id: Vec<&str> = docs
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| !id.starts_with("auto-"))
            .collect();
        // Two ids, overwritten by the replay; the three records without one, twice each.
        assert_eq!(with_id.len(), 2, "{docs:?}");
        assert_eq!(docs.len(), 2 + 3 * 2);
        let sources: std::collections::BTreeSet<&[u8]> =
            docs.iter().map(|(_, s)| s.as_slice()).collect();
        assert_eq!(sources.len(), 5, "no record lost to another's id");
    }

    fn origin_parts() -> impl Strategy<Value = OriginParts> {
        (
            proptest::option::of((0u8..4, "[0-9]{1,3}|[0-9]{250,256}")),
            proptest::option::of("[0-9]{0,3}|x[0-9]|[0-9]{300}"),
            "[a-c]{0,2}",
            proptest::option::of(0u32..3),
            proptest::option::of("[0-9]{0,3}"),
        )
            .prop_map(|(event, seq, pk, sub, cwl)| {
                // Mostly Lambda's shape: the event id ends with the sequence number.
                let seq = match (&event, seq) {
                    (Some((_, s)), None) => s.clone(),
                    (_, Some(other)) => other,
                    (None, None) => String::new(),
                };
                let event = event.map(|(shard, s)| format!("shardId-00000000000{shard}:{s}"));
                (event, seq, pk, sub, cwl)
            })
    }

    type OriginParts = (Option<String>, String, String, Option<u32>, Option<String>);

    fn build((event, seq, pk, sub, cwl): &OriginParts) -> Origin {
        let mut o = Origin::new(seq).with_partition_key(pk);
        if let Some(e) = event {
            o = o.with_event_id(e);
        }
        if let Some(s) = sub {
            o = o.with_sub_sequence(*s);
        }
        if let Some(c) = cwl {
            o = o.with_cwl(kinesis_utils::CwlOrigin::new(c, "g", "s", 0));
        }
        o
    }

    /// What tells records apart: the event id (else the partition key), the sequence number,
    /// the sub-sequence and the CloudWatch Logs event id.
    fn identity((event, seq, pk, sub, cwl): &OriginParts) -> Option<String> {
        if event.is_none() && seq.is_empty() {
            return None;
        }
        let who = match event {
            Some(e) => format!("e{e}"),
            None => format!("p{pk}"),
        };
        Some(format!("{who}|{seq}|{sub:?}|{cwl:?}"))
    }

    proptest! {
        /// Two origins get the same id exactly when they name the same record.
        #[test]
        fn origin_ids_are_equal_exactly_for_the_same_record(a in origin_parts(), b in origin_parts()) {
            let (ida, idb) = (origin_doc_id(&build(&a)), origin_doc_id(&build(&b)));
            prop_assert_eq!(ida.is_some(), identity(&a).is_some());
            prop_assert_eq!(ida == idb, identity(&a) == identity(&b));
            prop_assert_eq!(origin_doc_id(&build(&a)), ida.clone());
            if let Some(id) = ida {
                // Short, URL-safe, spelled out exactly for Lambda's shape.
                prop_assert!(id.len() <= 256);
                prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
                let spelled_len = 2 + a.1.len()
                    + a.3.map_or(0, |s| 1 + s.to_string().len())
                    + a.4.as_ref().map_or(0, |c| 1 + c.len());
                let lambda = a.0.as_ref().is_some_and(|e| e.ends_with(&format!(":{}", a.1)))
                    && a.4.as_ref().is_none_or(|c| !c.is_empty())
                    && spelled_len <= 256;
                prop_assert_eq!(!id.starts_with('h'), lambda, "{}", id);
            }
        }
    }
}
