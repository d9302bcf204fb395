//! CloudWatch Logs subscription messages.
//!
//! A subscription filter that targets a Kinesis stream writes gzip-compressed JSON envelopes:
//!
//! ```json
//! {"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/app","logStream":"s1",
//!  "subscriptionFilters":["f"],"logEvents":[{"id":"3595…","timestamp":1584187200000,"message":"…"}]}
//! ```
//!
//! `CONTROL_MESSAGE` envelopes are sent when the subscription is created and carry no logs.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One event of a `DATA_MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEvent<'a> {
    /// The event id CloudWatch Logs assigned.
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    /// Ingestion timestamp, milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The log line; borrowed from the envelope when it has no JSON escapes.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// A `DATA_MESSAGE` event whose message is kept as bytes (unescaped, not UTF-8 checked): what
/// the decoder uses, since payloads are bytes and are validated downstream anyway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawLogEvent<'a> {
    /// The event id CloudWatch Logs assigned.
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    /// Ingestion timestamp, milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The log line's bytes; borrowed from the envelope when it has no JSON escapes.
    #[serde(borrow)]
    pub message: RawBytes<'a>,
}

/// The bytes of a JSON string, unescaped but not UTF-8 checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBytes<'a>(pub Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for RawBytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawBytes<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawBytes(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        d.deserialize_bytes(V(std::marker::PhantomData))
    }
}

/// A parsed subscription envelope, with events of type `E` ([`LogEvent`] by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CwlMessage<'a, E = LogEvent<'a>> {
    /// Log events.
    Data {
        /// Account id that owns the log group.
        owner: Cow<'a, str>,
        /// Source log group.
        log_group: Cow<'a, str>,
        /// Source log stream.
        log_stream: Cow<'a, str>,
        /// The events, in order.
        events: Vec<E>,
    },
    /// A control message (subscription set-up check); it carries no logs.
    Control,
}

/// Why a subscription envelope could not be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CwlError {
    /// The envelope has a `messageType` this crate does not know.
    #[error("unknown CloudWatch Logs messageType {message_type:?}")]
    UnknownMessageType {
        /// The value found.
        message_type: String,
    },
    /// A `DATA_MESSAGE` whose `logEvents` are missing or malformed.
    #[error("malformed CloudWatch Logs DATA_MESSAGE: {message}")]
    Malformed {
        /// What was wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct Envelope<'a, E> {
    #[serde(rename = "messageType", borrow)]
    message_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    owner: Cow<'a, str>,
    #[serde(rename = "logGroup", borrow, default)]
    log_group: Cow<'a, str>,
    #[serde(rename = "logStream", borrow, default)]
    log_stream: Cow<'a, str>,
    #[serde(rename = "logEvents", default = "Option::default")]
    log_events: Option<Vec<E>>,
}

#[derive(Deserialize)]
struct LooseEnvelope<'a> {
    #[serde(rename = "messageType", borrow)]
    message_type: Option<Cow<'a, str>>,
    #[serde(rename = "logEvents", borrow, default)]
    log_events: Option<&'a RawValue>,
}

/// Parses `json` as a subscription envelope.
///
/// Returns `Ok(None)` when `json` is not an envelope at all (not JSON, not an object, or no
/// `messageType`): the caller treats it as an ordinary payload.
///
/// ```
/// use kinesis_utils::cwl::{parse, CwlMessage};
/// let msg = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",
///   "logEvents":[{"id":"e1","timestamp":1,"message":"plain text"}]}"#;
/// match parse(msg).unwrap() {
///     Some(CwlMessage::Data { events, .. }) => assert_eq!(events[0].message, "plain text"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(parse(br#"{"messageType":"CONTROL_MESSAGE"}"#).unwrap(), Some(CwlMessage::Control));
/// assert!(parse(br#"{"messageType":"NEW"}"#).is_err());
/// assert_eq!(parse(b"{\"log_type\":\"x\"}").unwrap(), None);
/// ```
pub fn parse(json: &[u8]) -> Result<Option<CwlMessage<'_>>, CwlError> {
    parse_as(json)
}

/// [`parse`] with the events deserialized as `E`, e.g. [`RawLogEvent`].
pub fn parse_as<'a, E: Deserialize<'a>>(
    json: &'a [u8],
) -> Result<Option<CwlMessage<'a, E>>, CwlError> {
    // Fast path: one pass over a well-formed envelope.
    match serde_json::from_slice::<Envelope<'a, E>>(json) {
        Ok(env) => classify(env.message_type, |message_type| match message_type {
            "DATA_MESSAGE" => match env.log_events {
                Some(events) => Ok(CwlMessage::Data {
                    owner: env.owner,
                    log_group: env.log_group,
                    log_stream: env.log_stream,
                    events,
                }),
                None => Err(CwlError::Malformed {
                    message: "logEvents is missing".into(),
                }),
            },
            _ => Err(CwlError::Malformed {
                message: String::new(),
            }),
        }),
        // Slow path: tell "not an envelope" apart from "an envelope with bad fields".
        Err(first) => match serde_json::from_slice::<LooseEnvelope<'_>>(json) {
            Err(_) => Ok(None),
            Ok(loose) => classify(loose.message_type, |_| {
                let _ = loose.log_events;
                Err(CwlError::Malformed {
                    message: first.to_string(),
                })
            }),
        },
    }
}

fn classify<'a, E>(
    message_type: Option<Cow<'_, str>>,
    data: impl FnOnce(&str) -> Result<CwlMessage<'a, E>, CwlError>,
) -> Result<Option<CwlMessage<'a, E>>, CwlError> {
    match message_type.as_deref() {
        None => Ok(None),
        Some("CONTROL_MESSAGE") => Ok(Some(CwlMessage::Control)),
        Some(t @ "DATA_MESSAGE") => data(t).map(Some),
        Some(other) => Err(CwlError::UnknownMessageType {
            message_type: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_when_unescaped_owned_when_escaped() {
        let json = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],
            "logEvents":[{"id":"1","timestamp":5,"message":"abc"},{"id":"2","timestamp":6,"message":"{\"a\":\"\u00e9\"}"}]}"#;
        let Some(CwlMessage::Data {
            events, log_group, ..
        }) = parse(json).unwrap()
        else {
            panic!("not data")
        };
        assert_eq!(log_group, "g");
        assert!(matches!(events[0].message, Cow::Borrowed("abc")));
        assert_eq!(events[1].message, "{\"a\":\"é\"}");
        assert_eq!(events[1].timestamp, 6);
    }

    #[test]
    fn malformed_and_unknown() {
        assert!(matches!(
            parse(br#"{"messageType":"DATA_MESSAGE"}"#),
            Err(CwlError::Malformed { .. })
        ));
        assert!(matches!(
            parse(br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":1}]}"#),
            Err(CwlError::Malformed { .. })
        ));
        assert!(matches!(
            parse(br#"{"messageType":"DATA_MESSAGE","logEvents":{}}"#),
            Err(CwlError::Malformed { .. })
        ));
        assert_eq!(
            parse(br#"{"messageType":"SOMETHING","logEvents":5}"#),
            Err(CwlError::UnknownMessageType {
                message_type: "SOMETHING".into()
            })
        );
        assert_eq!(parse(b"[1,2]"), Ok(None));
        assert_eq!(parse(b"not json"), Ok(None));
        assert_eq!(parse(br#"{"messageType":5}"#), Ok(None));
    }
}
