//! Lambda handler replacing the original kinesis-to-fluent function: forwards the records of
//! a Kinesis batch to Fluentd / Fluent Bit over the forward protocol (tag
//! `{log_type}.{LOG_FLUENT_TAG}`, EventTime from the record's timestamp, acknowledged chunks)
//! and dead-letters failures and rejections to S3.
//!
//! Environment: `LOG_FLUENT_SINK_ENDPOINT` (required; `host:port`, port 24224 when left out),
//! `LOG_FLUENT_TAG` (default: none, the tag is the log type), `FLUENT_SHARED_KEY` with
//! `FLUENT_SELF_HOSTNAME` (the `<security>` handshake), `FLUENT_TLS` (`true`; needs the
//! `fluent-tls` feature), `LOG_TYPE_FIELD`, `LOG_ID_FIELD`, `LOG_TIMESTAMP_FIELD`,
//! `LOG_TYPE_UNKNOWN_PREFIX`, `LOG_TYPE_WHITELIST` (comma separated), `FAILED_LOG_S3_BUCKET`
//! (without it failures are only logged), `FAILED_LOG_S3_PREFIX`, `LOG_TIMEZONE` (else `TZ`).
//!
//! Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.

#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::Error;
use logging_core::fluent::{
    EventTimeMode, FluentAuth, FluentConfig, FluentDestination, FluentDestinationConfig,
};
use logging_core::{Pipeline, TimeZone};

/// Reads the destination's configuration through `get` (the environment in `main`, a map in
/// tests).
fn fluent_config(get: impl Fn(&str) -> Option<String>) -> Result<FluentDestinationConfig, String> {
    let endpoint = get("LOG_FLUENT_SINK_ENDPOINT")
        .ok_or("environment variable LOG_FLUENT_SINK_ENDPOINT is required")?;
    let (host, port) = split_endpoint(endpoint.trim())?;
    let auth = get("FLUENT_SHARED_KEY").map(|shared_key| FluentAuth {
        shared_key,
        self_hostname: get("FLUENT_SELF_HOSTNAME").unwrap_or_else(|| "lambda".to_owned()),
        username: String::new(),
        password: String::new(),
    });
    let event_time = match get("LOG_FLUENT_EVENT_TIME").as_deref() {
        None | Some("wall_clock") => EventTimeMode::WallClock,
        Some("instant") => EventTimeMode::Instant,
        Some(other) => {
            return Err(format!(
                "LOG_FLUENT_EVENT_TIME={other:?}: use wall_clock (the original module's event \
                 times) or instant"
            ));
        }
    };
    Ok(FluentDestinationConfig {
        tag: get("LOG_FLUENT_TAG").unwrap_or_default(),
        event_time,
        time_zone: TimeZone::UTC,
        client: FluentConfig {
            host,
            port,
            tls: get("FLUENT_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            auth,
            ..FluentConfig::default()
        },
    })
}

/// `host:port`, `host`, `[v6]:port` or `[v6]` into host and port (default 24224).
fn split_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let bad = || format!("LOG_FLUENT_SINK_ENDPOINT={endpoint:?} is not host:port");
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

fn build(sdk: &aws_config::SdkConfig) -> Result<Pipeline, String> {
    let schema = env::schema()?;
    let config = FluentDestinationConfig {
        time_zone: schema.time_zone,
        ..fluent_config(env::var)?
    };
    let fluent = FluentDestination::from_config(config).map_err(|e| e.to_string())?;
    let mut pipeline = Pipeline::new(schema.clone()).with_route(env::whitelist(), Arc::new(fluent));
    if let Some(bucket) = env::var("FAILED_LOG_S3_BUCKET") {
        pipeline = pipeline.with_dead_letter(env::dead_letter(sdk, bucket, &schema));
    }
    Ok(pipeline)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    // Configuration errors stop the cold start with a message, not a panic.
    env::serve(build(&sdk)?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<FluentDestinationConfig, String> {
        fluent_config(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn endpoint_tag_and_auth() {
        let c = read(&[
            ("LOG_FLUENT_SINK_ENDPOINT", "fluentd.internal:24225"),
            ("LOG_FLUENT_TAG", "kinesis"),
            ("FLUENT_SHARED_KEY", "secret"),
        ])
        .unwrap();
        assert_eq!(
            (c.client.host.as_str(), c.client.port),
            ("fluentd.internal", 24225)
        );
        assert_eq!(c.tag, "kinesis");
        assert_eq!(c.client.auth.unwrap().self_hostname, "lambda");
        assert!(c.client.require_ack);
        let c = read(&[("LOG_FLUENT_SINK_ENDPOINT", "[::1]")]).unwrap();
        assert_eq!((c.client.host.as_str(), c.client.port), ("::1", 24224));
        assert!(c.tag.is_empty() && c.client.auth.is_none());
    }

    #[test]
    fn bad_endpoints_are_errors() {
        assert!(read(&[]).unwrap_err().contains("LOG_FLUENT_SINK_ENDPOINT"));
        for bad in ["host:port", ":24224", "[::1", "h:99999"] {
            assert!(read(&[("LOG_FLUENT_SINK_ENDPOINT", bad)]).is_err(), "{bad}");
        }
    }
}
