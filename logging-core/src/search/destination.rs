//! The Elasticsearch / OpenSearch [`Destination`] (original kinesis-to-es): each routed record
//! becomes one Bulk API `index` action into its daily index, through [`deliver_bulk`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use kinesis_utils::Origin;
use serde::Deserialize;

use super::bulk::{BulkConfig, BulkItem, ItemOutcome, deliver_bulk, derive_doc_id};
use super::index::{IndexNameError, IndexNamer, validate_index_name};
use super::{SearchApi, doc_id_from_log_id};
use crate::classify::Record;
use crate::destination::{DeliveryReport, Destination};
use crate::naming::key_local_time;
use crate::routing::RoutedBatch;
use crate::schema::{KeyDates, TimeZone};

/// Where a document's `_id` comes from.
///
/// With an id, a batch that Lambda replays after a partial failure overwrites the documents
/// it already indexed instead of duplicating them (SPEC 1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocIdMode {
    /// No `_id`: the cluster assigns one (the original module's behaviour). Replays duplicate.
    #[default]
    None,
    /// The record's `log_id` ([`doc_id_from_log_id`]: as is up to 512 bytes, else hashed);
    /// a record without one gets the [`DocIdMode::Origin`] id.
    LogId,
    /// A hash of where the payload came from (shard and sequence number, KPL sub-sequence,
    /// CloudWatch Logs event id): the same on every replay of the batch.
    Origin,
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
    /// default empty, which [`SearchDestination::new`] refuses).
    pub index_prefix: String,
    /// Where `_id` comes from (default: none, as the original module).
    pub doc_id: DocIdMode,
    /// Zone of the index dates of records without a timestamp, and of every record with
    /// [`KeyDates::Zone`] (default `UTC`; use the schema's zone).
    pub time_zone: TimeZone,
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
            doc_id: DocIdMode::None,
            time_zone: TimeZone::UTC,
            index_dates: KeyDates::RecordOffset,
            bulk: BulkConfig::default(),
        }
    }
}

/// A configuration [`SearchDestination::new`] cannot work with.
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
/// (or converted to the configured zone with [`KeyDates::Zone`]).
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
/// let es = SearchDestination::new(
///     cluster.clone(),
///     SearchDestinationConfig {
///         index_prefix: "logs".into(),
///         doc_id: DocIdMode::LogId,
///         ..SearchDestinationConfig::default()
///     },
/// )
/// .unwrap();
/// let pipeline = Pipeline::new(SchemaConfig::default()).with_route(TypeFilter::all(), Arc::new(es));
///
/// let data = base64::engine::general_purpose::STANDARD
///     .encode(r#"{"log_type":"app","log_id":"a1","time":"2020-03-14T23:30:00Z"}"#);
/// let event = format!(
///     r#"{{"Records":[{{"kinesis":{{"data":"{data}","partitionKey":"k","sequenceNumber":"1"}}}}]}}"#
/// );
/// let out = pipeline.process(event.as_bytes()).await.unwrap();
/// assert_eq!(out.report.routed, 1);
/// assert!(out.response.batch_item_failures.is_empty());
/// let docs = cluster.documents("logs-app-20200314");
/// assert_eq!(docs[0].0, "a1");
/// # });
/// ```
pub struct SearchDestination<S: ?Sized = dyn SearchApi> {
    api: Arc<S>,
    namer: IndexNamer,
    config: SearchDestinationConfig,
    name: String,
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
    /// A destination indexing through `api`. Fails when the index prefix is empty or cannot
    /// start a valid index name (e.g. uppercase), so that misconfiguration shows at start-up
    /// rather than as every record rejected.
    pub fn new(api: Arc<S>, config: SearchDestinationConfig) -> Result<Self, SearchConfigError> {
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
        Ok(Self {
            api,
            namer: IndexNamer::new(config.index_prefix.clone(), config.time_zone.tz()),
            name: format!("search:{}", config.index_prefix),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SearchDestinationConfig {
        &self.config
    }

    /// The `_id` this destination gives `record`, per [`DocIdMode`].
    pub fn doc_id(&self, record: &Record<'_>) -> Option<String> {
        match self.config.doc_id {
            DocIdMode::None => None,
            DocIdMode::LogId => Some(match record.log_id.as_deref() {
                Some(id) if !id.is_empty() => doc_id_from_log_id(id),
                _ => derive_doc_id(&origin_key(record.origin)),
            }),
            DocIdMode::Origin => Some(derive_doc_id(&origin_key(record.origin))),
        }
    }
}

/// The unsanitised origin (`{event id or sequence}/{sub-sequence}/{CWL event id}`): hashed,
/// so no character needs replacing and distinct origins stay distinct.
fn origin_key(origin: &Origin) -> String {
    let base = origin.event_id().unwrap_or(origin.sequence_number());
    let sub = origin
        .sub_sequence()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let cwl = origin.cwl().map_or("", |c| c.event_id());
    format!("{base}/{sub}/{cwl}")
}

#[async_trait]
impl<S: SearchApi + ?Sized> Destination for SearchDestination<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        if batch.is_empty() {
            return report;
        }
        let now = Utc::now();
        let (zone, dates) = (self.config.time_zone, self.config.index_dates);
        let mut items: Vec<BulkItem<'_>> = Vec::with_capacity(batch.len());
        for group in &batch.groups {
            // Records of a group share the type and mostly the day: name each day once.
            let mut last: Option<(NaiveDate, String)> = None;
            let mut name_buf = String::new();
            for (i, record) in group.records.iter().enumerate() {
                let slot = group.start + i;
                let date = key_local_time(record.timestamp, record.origin, now, zone, dates).date();
                let index = match &last {
                    Some((d, name)) if *d == date => name.clone(),
                    _ => match self
                        .namer
                        .write_index_name_on(&mut name_buf, group.log_type, date)
                    {
                        Ok(()) => {
                            last = Some((date, name_buf.clone()));
                            name_buf.clone()
                        }
                        Err(e) => {
                            report.reject(slot, format!("invalid_index_name: {e}"));
                            continue;
                        }
                    },
                };
                items.push(BulkItem {
                    key: slot,
                    index,
                    id: self.doc_id(record),
                    source: record.data,
                });
            }
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

    fn config(doc_id: DocIdMode) -> SearchDestinationConfig {
        SearchDestinationConfig {
            index_prefix: "logs".into(),
            doc_id,
            time_zone: "Asia/Tokyo".parse().unwrap(),
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
            r#"{"index_prefix":"x","doc_id":"origin","time_zone":"Asia/Tokyo","bulk":{"max_actions":7}}"#,
        )
        .unwrap();
        assert_eq!(cfg.doc_id, DocIdMode::Origin);
        assert_eq!(cfg.bulk.max_actions, 7);
        assert_eq!(cfg.bulk.max_attempts, 5);
        assert!(serde_json::from_str::<SearchDestinationConfig>(r#"{"typo":1}"#).is_err());
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
        assert_eq!(next_day[0].0, derive_doc_id(&origin_key(&fx.origins[1])));
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
            let es = SearchDestination::new(api.clone(), cfg).unwrap();
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
        assert_eq!(
            id(DocIdMode::Origin),
            Some(derive_doc_id(&origin_key(&fx.origins[0])))
        );
        let o = origin("5").with_sub_sequence(1);
        let p = origin("5").with_sub_sequence(2);
        assert_ne!(origin_key(&o), origin_key(&p));
    }
}
