//! kinesis-to-fluent: configuration and pipeline, shared by the `kinesis_to_fluent` example
//! and the compatibility tests.
//!
//! Compatible with the original terraform-aws-lambda-kinesis-to-fluent module (v0.1.0: `TZ`,
//! `LOG_ID_FIELD`, `LOG_TYPE_FIELD`, `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TIMESTAMP_FIELD`,
//! `LOG_TYPE_WHITELIST`, `LOG_FLUENT_SINK_ENDPOINT`, `LOG_FLUENT_TAG`,
//! `FAILED_LOG_S3_BUCKET`, `FAILED_LOG_S3_PREFIX`; the module's commits before v0.1.0 named
//! the endpoint `LOG_FLUENT_TARGET_URL`): events tagged `{log_type}.{LOG_FLUENT_TAG}`, holding
//! `{"message": "<the record's JSON>"}`, timed as the original timed them.

use std::sync::Arc;

use logging_core::dead_letter::{DeadLetter, DeadLetterGroups};
use logging_core::fluent::{
    EventTimeMode, FluentAuth, FluentConfig, FluentDestinationBuilder, FluentDestinationConfig,
    ForwardMode, RecordFormat,
};
use logging_core::{ObjectStore, Pipeline, UnparseableTimestamp};

use crate::env::{self, Common, DeadLetterDefaults, DeadLetterSettings, Get};

/// Everything the function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Schema, zone, whitelist.
    pub common: Common,
    /// Server, tag, record format, event time, acks, TLS, handshake.
    pub fluent: FluentDestinationConfig,
    /// Where failures and rejections go, when `FAILED_LOG_S3_BUCKET` is set.
    pub dead_letter: Option<DeadLetterSettings>,
}

/// Reads [`Settings`]:
///
/// * `LOG_FLUENT_SINK_ENDPOINT` (required; a host name or IP as in the original, port 24224,
///   or `host:port`); `LOG_FLUENT_TARGET_URL`, its name before v0.1.0, is read the same way
///   (both set to different values is refused);
/// * `LOG_FLUENT_TAG` (the tag after the log type; empty: the log type alone);
/// * `LOG_FLUENT_RECORD_FORMAT`: `message` (default: `{"message": "<JSON text>"}`, what the
///   original sent) or `object` (the record's fields as the event);
/// * `LOG_FLUENT_EVENT_TIME`: `wall_clock` (default: the timestamp's wall-clock time read in
///   the zone, what the original sent) or `instant` (the instant the timestamp denotes);
/// * `FLUENT_REQUIRE_ACK` (default `true`: wait for the server's ack of each chunk; `false`
///   for servers that never answer one), `FLUENT_SHARED_KEY` with `FLUENT_SELF_HOSTNAME` (the
///   `<security>` handshake), `FLUENT_TLS` (needs the `fluent-tls` feature);
/// * `LOG_FLUENT_COMPRESSED`: `none` (default) or `gzip` (CompressedPackedForward, gzip level
///   1: about a quarter of the bytes on the wire);
/// * the schema variables and `TZ` / `LOG_TIMEZONE` (see [`env::common`]); a record without a
///   timestamp is a failure, one whose timestamp cannot be parsed is sent with its Kinesis
///   arrival time (the original sent the time of sending);
/// * `FAILED_LOG_S3_BUCKET` (without it, failures are counted and logged),
///   `FAILED_LOG_S3_PREFIX`, `FAILED_LOG_S3_LAYOUT` (default `folders`; the original kept no
///   failures), `FAILED_LOG_FORMAT` (`envelope` or `raw`).
pub fn settings(get: Get<'_>) -> Result<Settings, String> {
    let common = env::common(get, true, UnparseableTimestamp::Ignore)?;
    let endpoint = match (
        env::var(get, "LOG_FLUENT_SINK_ENDPOINT"),
        env::var(get, "LOG_FLUENT_TARGET_URL"),
    ) {
        (Some(a), Some(b)) if a.trim() != b.trim() => {
            return Err(format!(
                "LOG_FLUENT_SINK_ENDPOINT={a:?} and LOG_FLUENT_TARGET_URL={b:?} differ: \
                 LOG_FLUENT_TARGET_URL is the older name of the same setting; unset it"
            ));
        }
        (Some(e), _) => e,
        (None, Some(e)) => e,
        (None, None) => {
            return Err(
                "environment variable LOG_FLUENT_SINK_ENDPOINT is required: the \
                        Fluentd host (host or host:port)"
                    .into(),
            );
        }
    };
    let (host, port) = split_endpoint(endpoint.trim())?;
    let auth = env::var(get, "FLUENT_SHARED_KEY").map(|shared_key| FluentAuth {
        shared_key,
        self_hostname: env::var(get, "FLUENT_SELF_HOSTNAME").unwrap_or_else(|| "lambda".into()),
        username: String::new(),
        password: String::new(),
    });
    let fluent = FluentDestinationConfig {
        tag: get("LOG_FLUENT_TAG").unwrap_or_default().trim().to_owned(),
        event_time: env::choice(
            get,
            "LOG_FLUENT_EVENT_TIME",
            &[
                ("wall_clock", EventTimeMode::WallClock),
                ("instant", EventTimeMode::Instant),
            ],
            EventTimeMode::WallClock,
        )?,
        client: FluentConfig {
            host,
            port,
            record_format: env::choice(
                get,
                "LOG_FLUENT_RECORD_FORMAT",
                &[
                    ("message", RecordFormat::MessageText),
                    ("object", RecordFormat::Object),
                ],
                RecordFormat::MessageText,
            )?,
            require_ack: env::flag(get, "FLUENT_REQUIRE_ACK", true)?,
            tls: env::flag(get, "FLUENT_TLS", false)?,
            mode: env::choice(
                get,
                "LOG_FLUENT_COMPRESSED",
                &[
                    ("none", ForwardMode::PackedForward),
                    ("gzip", ForwardMode::CompressedPackedForward),
                ],
                ForwardMode::PackedForward,
            )?,
            auth,
            ..FluentConfig::default()
        },
    };
    let dead_letter = env::dead_letter(
        get,
        DeadLetterDefaults {
            bucket: None,
            prefix: "",
            groups: DeadLetterGroups::Folders,
            original_prefix: false,
        },
        common.dates,
    )?;
    Ok(Settings {
        common,
        fluent,
        dead_letter,
    })
}

/// `host:port`, `host`, `[v6]:port` or `[v6]` into host and port (default 24224). A URL is
/// refused: the original passed the value to fluent-logger as a host name, so none worked.
pub fn split_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!("LOG_FLUENT_SINK_ENDPOINT={endpoint:?} is not a host name, IP address or host:port")
    };
    if endpoint.contains("://") {
        return Err(format!(
            "{}: the original module passed it to fluent-logger as a host name, so a URL never \
             worked; set the host (and :port)",
            bad()
        ));
    }
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match endpoint.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (endpoint, None),
        }
    };
    let port = match port {
        None => 24224,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// The pipeline: one Fluentd route (the whitelist), and the dead letter in the store `store`
/// opens for its bucket.
pub fn pipeline(
    s: &Settings,
    store: &dyn Fn(&str) -> Arc<dyn ObjectStore>,
) -> Result<Pipeline, String> {
    let fluent =
        FluentDestinationBuilder::from_config(s.fluent.clone()).map_err(|e| e.to_string())?;
    let mut pipeline =
        Pipeline::builder(s.common.schema.clone()).route(s.common.whitelist.clone(), fluent);
    if let Some(dl) = &s.dead_letter {
        pipeline = pipeline.dead_letter(DeadLetter::builder(store(&dl.bucket), dl.config.clone()));
    }
    Ok(pipeline.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        settings(&move |k: &str| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn endpoint_tag_and_auth() {
        let c = read(&[
            ("LOG_FLUENT_SINK_ENDPOINT", "fluentd.internal:24225"),
            ("LOG_FLUENT_TAG", "kinesis"),
            ("FLUENT_SHARED_KEY", "secret"),
        ])
        .unwrap()
        .fluent;
        assert_eq!(
            (c.client.host.as_str(), c.client.port),
            ("fluentd.internal", 24225)
        );
        assert_eq!(c.tag, "kinesis");
        assert_eq!(c.client.auth.unwrap().self_hostname, "lambda");
        assert!(c.client.require_ack);
        assert_eq!(c.client.record_format, RecordFormat::MessageText);
        assert_eq!(c.event_time, EventTimeMode::WallClock);
        assert_eq!(c.client.mode, ForwardMode::PackedForward);
        let c = read(&[("LOG_FLUENT_SINK_ENDPOINT", "[::1]")])
            .unwrap()
            .fluent;
        assert_eq!((c.client.host.as_str(), c.client.port), ("::1", 24224));
        assert!(c.tag.is_empty() && c.client.auth.is_none());
        let c = read(&[
            ("LOG_FLUENT_TARGET_URL", "10.0.0.5"),
            ("LOG_FLUENT_RECORD_FORMAT", "object"),
            ("LOG_FLUENT_EVENT_TIME", "instant"),
            ("FLUENT_REQUIRE_ACK", "false"),
            ("LOG_FLUENT_COMPRESSED", "gzip"),
        ])
        .unwrap()
        .fluent;
        assert_eq!(c.client.mode, ForwardMode::CompressedPackedForward);
        assert_eq!((c.client.host.as_str(), c.client.port), ("10.0.0.5", 24224));
        assert_eq!(c.client.record_format, RecordFormat::Object);
        assert_eq!(c.event_time, EventTimeMode::Instant);
        assert!(!c.client.require_ack);
    }

    #[test]
    fn bad_endpoints_are_errors() {
        assert!(read(&[]).unwrap_err().contains("LOG_FLUENT_SINK_ENDPOINT"));
        for bad in ["host:port", ":24224", "[::1", "h:99999", "tcp://h:24224"] {
            assert!(read(&[("LOG_FLUENT_SINK_ENDPOINT", bad)]).is_err(), "{bad}");
        }
        let e = read(&[
            ("LOG_FLUENT_SINK_ENDPOINT", "a"),
            ("LOG_FLUENT_TARGET_URL", "b"),
        ])
        .unwrap_err();
        assert!(e.contains("LOG_FLUENT_TARGET_URL"), "{e}");
        assert!(
            read(&[
                ("LOG_FLUENT_SINK_ENDPOINT", "a"),
                ("LOG_FLUENT_RECORD_FORMAT", "map")
            ])
            .is_err()
        );
        let e = read(&[
            ("LOG_FLUENT_SINK_ENDPOINT", "a"),
            ("LOG_FLUENT_COMPRESSED", "zstd"),
        ])
        .unwrap_err();
        assert!(e.contains("LOG_FLUENT_COMPRESSED"), "{e}");
    }
}
