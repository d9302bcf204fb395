//! The Fluentd / Fluent Bit [`Destination`] (original kinesis-to-fluent): each routed record
//! becomes one forward-protocol event tagged `{log_type}.{fluent_tag}`, sent by a
//! [`FluentClient`].

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;

use super::{FluentClient, FluentConfig, FluentError, FluentEvent, FluentOutcome, tag_for};
use std::sync::Arc;

use crate::batch::RoutedBatch;
use crate::destination::{DeliveryReport, Destination, IntoDestination};
use crate::naming::key_time;
use crate::schema::{SchemaConfig, TimeZone};

/// Which time an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTimeMode {
    /// The instant the record's timestamp denotes (default).
    #[default]
    Instant,
    /// The timestamp's wall-clock time as written, read in the configured zone: what the
    /// original module sent (Python's `time.mktime` of the parsed time's fields, in the
    /// function's `TZ`). The same as [`EventTimeMode::Instant`] when records are written in
    /// the zone's offset; hours apart when they are not.
    WallClock,
}

/// Configuration of a [`FluentDestination`]. Deserializable; missing fields take defaults.
///
/// ```
/// use logging_core::fluent::FluentDestinationConfig;
///
/// let cfg: FluentDestinationConfig =
///     serde_json::from_str(r#"{"tag":"kinesis","client":{"host":"fluentd","port":24225}}"#)
///         .unwrap();
/// assert_eq!((cfg.client.host.as_str(), cfg.client.port), ("fluentd", 24225));
/// assert!(cfg.client.require_ack);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FluentDestinationConfig {
    /// The tag after the log type (`LOG_FLUENT_TAG`): events are tagged
    /// `{log_type}.{tag}`, or just `{log_type}` when empty (default).
    pub tag: String,
    /// The forward client (server, framing, acks, retries, TLS, handshake).
    pub client: FluentConfig,
    /// Which time events carry (default: the instant); [`EventTimeMode::WallClock`] reads
    /// the wall-clock time in the schema's zone.
    pub event_time: EventTimeMode,
}

/// Forwards routed records to Fluentd / Fluent Bit over the forward protocol.
///
/// Each record is one event: tag `{log_type}.{fluent_tag}` (see [`tag_for`]), the record's
/// JSON object as the record (or `{"message": <text>}` with
/// [`RecordFormat::MessageText`](super::RecordFormat::MessageText)), and the record's
/// timestamp as EventTime (nanoseconds kept). A record without a timestamp (only when the
/// schema does not require one) takes its CloudWatch Logs event time, else the time of
/// delivery.
///
/// Per record: **Delivered** when the server acknowledged its chunk (or, with
/// `require_ack = false`, when the chunk was written); **Rejected** when it cannot be sent at
/// all (timestamp outside EventTime's 1970..2106, not a JSON object); **Failed** when its
/// chunk was still unacknowledged after the client's attempts. Resent chunks keep their id,
/// so a server that deduplicates by chunk sees each at most once; others may see a record
/// twice (at-least-once).
///
/// ```
/// use logging_core::fluent::{
///     FluentClient, FluentConfig, FluentDestination, FluentDestinationBuilder,
///     FluentDestinationConfig,
/// };
/// use logging_core::{Destination, Pipeline, SchemaConfig, TypeFilter};
///
/// let cfg: FluentDestinationConfig =
///     serde_json::from_str(r#"{"tag":"kinesis","client":{"host":"127.0.0.1"}}"#).unwrap();
/// let fluent = FluentDestinationBuilder::from_config(cfg).unwrap();
/// let _pipeline = Pipeline::builder(SchemaConfig::default())
///     .route(TypeFilter::all(), fluent)
///     .build();
///
/// // Instant event times need nothing of the schema: a destination as it is.
/// let client = FluentClient::new(FluentConfig::default()).unwrap();
/// let fluent = FluentDestination::new(client, "kinesis");
/// assert_eq!(fluent.name(), "fluent:localhost:24224");
/// assert_eq!(fluent.tag("nginx"), "nginx.kinesis");
/// ```
#[derive(Debug, Clone)]
pub struct FluentDestination {
    client: FluentClient,
    fluent_tag: String,
    name: String,
    event_time: (EventTimeMode, TimeZone),
}

/// A [`FluentDestination`] waiting for the schema, whose zone [`EventTimeMode::WallClock`]
/// reads times in: hand it to
/// [`PipelineBuilder::route`](crate::pipeline::PipelineBuilder::route), which builds it with the
/// pipeline's schema, or build it yourself with [`FluentDestinationBuilder::build`].
#[derive(Debug, Clone)]
pub struct FluentDestinationBuilder {
    client: FluentClient,
    fluent_tag: String,
    event_time: EventTimeMode,
}

impl FluentDestinationBuilder {
    /// A destination with a new client for `config.client`.
    pub fn from_config(config: FluentDestinationConfig) -> Result<Self, FluentError> {
        Ok(
            FluentDestination::builder(FluentClient::new(config.client)?, config.tag)
                .event_time(config.event_time),
        )
    }

    /// Sets which time events carry.
    pub fn event_time(mut self, mode: EventTimeMode) -> Self {
        self.event_time = mode;
        self
    }

    /// The destination, reading wall-clock times in `schema`'s zone.
    pub fn build(self, schema: &SchemaConfig) -> FluentDestination {
        let mut d = FluentDestination::new(self.client, self.fluent_tag);
        d.event_time = (self.event_time, schema.time_zone);
        d
    }
}

impl IntoDestination for FluentDestinationBuilder {
    fn into_destination(self, schema: &SchemaConfig) -> Arc<dyn Destination> {
        Arc::new(self.build(schema))
    }
}

impl FluentDestination {
    /// A destination sending through `client`, tagging events `{log_type}.{fluent_tag}`,
    /// with [`EventTimeMode::Instant`] event times; [`FluentDestination::builder`] for the
    /// other modes.
    pub fn new(client: FluentClient, fluent_tag: impl Into<String>) -> Self {
        let name = format!("fluent:{}:{}", client.config().host, client.config().port);
        Self {
            client,
            fluent_tag: fluent_tag.into(),
            name,
            event_time: (EventTimeMode::Instant, TimeZone::UTC),
        }
    }

    /// A destination sending through `client`, tagging events `{log_type}.{fluent_tag}`,
    /// built with the schema of the pipeline it is routed in (see
    /// [`FluentDestinationBuilder`]).
    pub fn builder(
        client: FluentClient,
        fluent_tag: impl Into<String>,
    ) -> FluentDestinationBuilder {
        FluentDestinationBuilder {
            client,
            fluent_tag: fluent_tag.into(),
            event_time: EventTimeMode::Instant,
        }
    }

    /// The event time of a record stamped `t` under this destination's [`EventTimeMode`].
    pub fn event_time(&self, t: DateTime<FixedOffset>) -> DateTime<Utc> {
        match self.event_time {
            (EventTimeMode::Instant, _) => t.to_utc(),
            (EventTimeMode::WallClock, zone) => {
                crate::timestamp::localize(t.naive_local(), zone.tz())
            }
        }
    }

    /// The client.
    pub fn client(&self) -> &FluentClient {
        &self.client
    }

    /// The tag of events of `log_type`.
    pub fn tag(&self, log_type: &str) -> String {
        if self.fluent_tag.is_empty() {
            log_type.to_owned()
        } else {
            tag_for(log_type, &self.fluent_tag)
        }
    }
}

#[async_trait]
impl Destination for FluentDestination {
    fn name(&self) -> &str {
        &self.name
    }

    /// `max_attempts` connections, each waiting up to the connect, write and ack timeouts,
    /// plus the largest backoffs.
    fn retry_budget(&self) -> Option<std::time::Duration> {
        let c = self.client.config();
        let attempts = c.max_attempts.max(1);
        let attempt = c.connect_timeout_ms + c.write_timeout_ms + c.ack_timeout_ms;
        let backoffs: u64 = (1..attempts)
            .map(|a| {
                c.initial_backoff_ms
                    .saturating_mul(1u64 << a.saturating_sub(1).min(30))
                    .min(c.max_backoff_ms)
            })
            .sum();
        Some(std::time::Duration::from_millis(
            attempt.saturating_mul(u64::from(attempts)) + backoffs,
        ))
    }

    async fn deliver(&self, batch: &RoutedBatch<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::new(batch);
        if batch.is_empty() {
            return report;
        }
        let now = Utc::now();
        let mut events = Vec::with_capacity(batch.len());
        for group in &batch.groups {
            let tag = self.tag(group.log_type);
            for (i, record) in group.records.iter().enumerate() {
                events.push(FluentEvent {
                    key: group.start + i,
                    tag: tag.clone(),
                    time: match record.timestamp {
                        Some(t) => self.event_time(t),
                        None => key_time(None, record.origin, now),
                    },
                    record_json: record.data,
                });
            }
        }
        let sent = self.client.deliver(&events).await;
        for (slot, outcome) in &sent.outcomes {
            match outcome {
                FluentOutcome::Delivered => report.deliver(*slot),
                FluentOutcome::Rejected { reason } => report.reject(*slot, reason.as_str()),
                FluentOutcome::Failed { reason } => {
                    report.fail(*slot, format!("{}: {reason}", self.name));
                }
            }
        }
        report.artifacts.push(format!(
            "{} ({} of {} events acknowledged, {} chunks of {} bytes sent on {} new connections)",
            self.name,
            sent.delivered(),
            events.len(),
            sent.chunks_sent,
            sent.bytes_sent,
            sent.connections
        ));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Record, tests::origin};
    use crate::destination::DeliveryStatus;
    use crate::routing::{Router, TypeFilter};
    use bytes::Bytes;
    use chrono::TimeZone as _;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn tags_and_names() {
        let client = FluentClient::new(FluentConfig::default()).unwrap();
        let d = FluentDestination::new(client.clone(), "kinesis");
        assert_eq!(d.tag("nginx"), "nginx.kinesis");
        assert_eq!(d.name(), "fluent:localhost:24224");
        assert_eq!(FluentDestination::new(client, "").tag("nginx"), "nginx");
        assert!(serde_json::from_str::<FluentDestinationConfig>(r#"{"typo":1}"#).is_err());
    }

    /// Without acks a written chunk counts as delivered: check the mapping and the tags on
    /// the wire, and that an out-of-range time is rejected without being sent.
    #[tokio::test]
    async fn maps_outcomes_and_tags() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let client = FluentClient::new(FluentConfig {
            host: "127.0.0.1".into(),
            port,
            require_ack: false,
            ..FluentConfig::default()
        })
        .unwrap();
        let dest = FluentDestination::new(client, "k");
        let data = [
            Bytes::from_static(br#"{"a":1}"#),
            Bytes::from_static(br#"{"b":2}"#),
        ];
        let (o1, o2) = (origin("1"), origin("2"));
        let old: DateTime<Utc> = Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap();
        let recs = [
            Record {
                index: 0,
                data: &data[0],
                log_type: "app".into(),
                log_id: None,
                timestamp: None,
                origin: &o1,
                line_break: false,
            },
            Record {
                index: 1,
                data: &data[1],
                log_type: "web".into(),
                log_id: None,
                timestamp: Some(old.fixed_offset()),
                origin: &o2,
                line_break: false,
            },
        ];
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        let report = dest.deliver(&batches[0]).await;
        drop(dest);
        assert_eq!(report.statuses()[0], DeliveryStatus::Delivered);
        assert!(
            matches!(&report.statuses()[1], DeliveryStatus::Rejected(r) if r.contains("EventTime")),
            "{:?}",
            report.statuses()[1]
        );
        let wire = server.await.unwrap();
        assert!(wire.windows(5).any(|w| w == b"app.k"));
        assert!(!wire.windows(5).any(|w| w == b"web.k"));
    }

    #[test]
    fn event_time_is_the_instant_or_the_wall_clock_in_the_zone() {
        let client = FluentClient::new(FluentConfig::default()).unwrap();
        let t = DateTime::parse_from_rfc3339("2020-03-14T21:00:00+09:00").unwrap();
        let instant = FluentDestination::new(client.clone(), "k");
        assert_eq!(instant.event_time(t), t.to_utc());
        let wall_clock = |zone: TimeZone| {
            FluentDestination::builder(client.clone(), "k")
                .event_time(EventTimeMode::WallClock)
                .build(&SchemaConfig {
                    time_zone: zone,
                    ..SchemaConfig::default()
                })
        };
        // The original's time.mktime of 21:00 in TZ=UTC: nine hours after the instant.
        let utc = wall_clock(TimeZone::UTC);
        assert_eq!(utc.event_time(t).to_rfc3339(), "2020-03-14T21:00:00+00:00");
        let tokyo = wall_clock("Asia/Tokyo".parse().unwrap());
        assert_eq!(tokyo.event_time(t), t.to_utc());
    }

    #[tokio::test]
    async fn unreachable_server_fails_transiently() {
        // Bind then drop: the port is (almost certainly) closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = FluentClient::new(FluentConfig {
            host: "127.0.0.1".into(),
            port,
            max_attempts: 2,
            initial_backoff_ms: 0,
            max_backoff_ms: 0,
            ..FluentConfig::default()
        })
        .unwrap();
        let dest = FluentDestination::new(client, "k");
        let data = Bytes::from_static(br#"{"a":1}"#);
        let o = origin("1");
        let recs = [Record {
            index: 0,
            data: &data,
            log_type: "app".into(),
            log_id: None,
            timestamp: Some(Utc::now().fixed_offset()),
            origin: &o,
            line_break: false,
        }];
        let router = Router::new().with_route(TypeFilter::all(), ());
        let batches = router.route(&recs);
        let report = dest.deliver(&batches[0]).await;
        assert!(
            matches!(&report.statuses()[0], DeliveryStatus::Failed(r) if r.contains("connect")),
            "{:?}",
            report.statuses()[0]
        );
    }
}
