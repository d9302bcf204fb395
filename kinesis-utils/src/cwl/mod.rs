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

mod arena;
mod scan;

use arena::ArenaEnvelopeSeed;
pub use arena::{ArenaLogEvent, MessageRef};

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

/// [`parse`] with the events deserialized as `E`.
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

/// [`parse`], with escaped messages unescaped into `arena` (one allocation per envelope
/// instead of one per event). What the decoder uses.
///
/// ```
/// use kinesis_utils::cwl::{parse_into, CwlMessage, MessageRef};
/// let json = br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":2,"message":"a\"b"}]}"#;
/// let mut arena = Vec::new();
/// let Some(CwlMessage::Data { events, .. }) = parse_into(json, &mut arena).unwrap() else { panic!() };
/// let MessageRef::Arena(range) = events[0].message.clone() else { panic!() };
/// assert_eq!(&arena[range], b"a\"b");
/// ```
pub fn parse_into<'a>(
    json: &'a [u8],
    arena: &mut Vec<u8>,
) -> Result<Option<CwlMessage<'a, ArenaLogEvent<'a>>>, CwlError> {
    parse_into_with(json, arena, true)
}

/// [`parse_into`] on serde_json alone, for differential fuzzing.
#[cfg(fuzzing)]
pub fn parse_into_serde_only<'a>(
    json: &'a [u8],
    arena: &mut Vec<u8>,
) -> Result<Option<CwlMessage<'a, ArenaLogEvent<'a>>>, CwlError> {
    parse_into_with(json, arena, false)
}

fn parse_into_with<'a>(
    json: &'a [u8],
    arena: &mut Vec<u8>,
    try_fast: bool,
) -> Result<Option<CwlMessage<'a, ArenaLogEvent<'a>>>, CwlError> {
    let start = arena.len();
    let fast = if try_fast {
        let env = scan::scan(json, arena);
        if env.is_none() {
            arena.truncate(start);
        }
        env
    } else {
        None
    };
    let parsed = match fast {
        Some(env) => Ok(env),
        None => {
            let mut de = serde_json::Deserializer::from_slice(json);
            serde::de::DeserializeSeed::deserialize(
                ArenaEnvelopeSeed { arena: &mut *arena },
                &mut de,
            )
            .and_then(|env| de.end().map(|()| env))
        }
    };
    match parsed {
        Ok(env) => classify(env.message_type, |_| match env.log_events {
            Some(events) => Ok(CwlMessage::Data {
                owner: env.owner,
                log_group: env.log_group,
                log_stream: env.log_stream,
                events,
            }),
            None => Err(CwlError::Malformed {
                message: "logEvents is missing".into(),
            }),
        }),
        Err(first) => {
            arena.truncate(start);
            match serde_json::from_slice::<LooseEnvelope<'_>>(json) {
                Err(_) => Ok(None),
                Ok(loose) => classify(loose.message_type, |_| {
                    Err(CwlError::Malformed {
                        message: first.to_string(),
                    })
                }),
            }
        }
    }
}

#[cfg(test)]
mod arena_tests {
    use super::*;
    use proptest::prelude::*;

    fn resolve<'a>(m: &MessageRef<'a>, arena: &'a [u8]) -> &'a [u8] {
        match m {
            MessageRef::Borrowed(b) => b,
            MessageRef::Arena(r) => &arena[r.clone()],
        }
    }

    /// A JSON string token: mostly valid (escaped by serde_json), sometimes raw text that
    /// is invalid JSON or leaves the fast path (`\u`, bad escapes, control bytes).
    fn string_token() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z0-9 ./_-]{0,20}".prop_map(|s| format!("\"{s}\"")),
            12 => "[a-z\"\\\\/\t\n\u{8}\u{c}\r\u{7f}é日 {}:,]{0,40}"
                .prop_map(|s| serde_json::to_string(&s).unwrap()),
            1 => "[a-z\\\\/\"]{0,10}".prop_map(|s| format!("\"{s}\"")),
            1 => Just(r#""a\/b\u0041\ud800""#.to_string()),
            1 => Just(r#""x\qy""#.to_string()),
            1 => "[a-z]{0,5}".prop_map(|s| format!("\"{s}\tz\"")),
        ]
    }

    fn value_token() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => string_token(),
            1 => prop_oneof![
                Just("1"), Just("-0"), Just("1.5"), Just("2e3"), Just("9223372036854775807"),
                Just("9223372036854775808"), Just("-9223372036854775809"), Just("01"),
                Just("null"), Just("true"), Just("[1,{\"a\":[]}]"), Just("{}"),
            ].prop_map(String::from),
        ]
    }

    fn object(fields: Vec<(String, String)>, ws: &str) -> String {
        let parts: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
            .collect();
        format!("{{{}{ws}}}", parts.join(","))
    }

    fn event_token() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            Just("id"),
            Just("timestamp"),
            Just("message"),
            Just("message"),
            Just("x"),
        ];
        let typical = ("[0-9]{1,20}", 0i64..2_000_000_000_000, string_token())
            .prop_map(|(id, ts, m)| format!(r#"{{"id":"{id}","timestamp":{ts},"message":{m}}}"#));
        prop_oneof![
            4 => typical,
            1 => (proptest::collection::vec((field, value_token()), 0..5), prop_oneof![Just(""), Just(" \n")])
                .prop_map(|(f, ws)| object(f.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ws)),
        ]
    }

    fn envelope() -> impl Strategy<Value = Vec<u8>> {
        let events = proptest::collection::vec(event_token(), 0..6)
            .prop_map(|e| format!("[{}]", e.join(",")))
            .boxed();
        let message_type = prop_oneof![
            4 => Just("\"DATA_MESSAGE\""),
            1 => Just("\"CONTROL_MESSAGE\""),
            1 => Just("\"OTHER\""),
            1 => Just("null"),
        ]
        .prop_map(String::from)
        .boxed();
        let field = prop_oneof![
            2 => message_type.clone().prop_map(|v| ("messageType".to_string(), v)),
            1 => (prop_oneof![Just("owner"), Just("logGroup"), Just("logStream"), Just("x")], value_token())
                .prop_map(|(k, v)| (k.to_string(), v)),
            2 => events.clone().prop_map(|v| ("logEvents".to_string(), v)),
        ];
        let meta = "[a-zA-Z0-9/_.-]{0,12}";
        let typical = (message_type.clone(), meta, meta, meta, events.clone()).prop_map(
            |(t, g, st, o, e)| {
                [
                    ("messageType", t),
                    ("owner", format!("\"{o}\"")),
                    ("logGroup", format!("\"{g}\"")),
                    ("logStream", format!("\"{st}\"")),
                    ("subscriptionFilters", r#"["f"]"#.to_string()),
                    ("logEvents", e),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Vec<_>>()
            },
        );
        let fields = prop_oneof![3 => typical, 1 => proptest::collection::vec(field, 0..6)];
        (
            fields,
            prop_oneof![Just(""), Just(" "), Just("\r\n\t")],
            proptest::option::weighted(0.15, (any::<prop::sample::Index>(), any::<u8>())),
            proptest::option::weighted(0.1, any::<prop::sample::Index>()),
        )
            .prop_map(|(fields, ws, flip, cut)| {
                let mut json = object(fields, ws).into_bytes();
                if let Some((at, b)) = flip {
                    let i = at.index(json.len());
                    json[i] = b;
                }
                if let Some(at) = cut {
                    json.truncate(at.index(json.len() + 1));
                }
                json
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The fast scanner and serde_json read every envelope the same way, arena included.
        #[test]
        fn fast_scan_agrees_with_serde(json in envelope()) {
            let run = |fast: bool| {
                let mut arena = b"before".to_vec();
                let r = parse_into_with(&json, &mut arena, fast);
                format!("{r:?} {arena:?}")
            };
            prop_assert_eq!(run(true), run(false), "{}", String::from_utf8_lossy(&json));
        }
    }

    proptest! {
        /// The arena parser agrees with the plain one on every envelope, valid or not.
        #[test]
        fn arena_parse_agrees_with_parse(
            messages in proptest::collection::vec("\\PC{0,40}", 0..6),
            message_type in prop_oneof![Just("DATA_MESSAGE"), Just("CONTROL_MESSAGE"), Just("OTHER")],
            drop_events: bool,
        ) {
            let events: Vec<_> = messages.iter().enumerate()
                .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": i, "message": m}))
                .collect();
            let mut env = serde_json::json!({"messageType": message_type, "owner": "o", "logGroup": "g", "logStream": "s"});
            if !drop_events {
                env["logEvents"] = serde_json::Value::Array(events);
            }
            let json = serde_json::to_vec(&env).unwrap();
            let mut arena = Vec::new();
            let a = parse_into(&json, &mut arena);
            let b = parse(&json);
            match (a, b) {
                (Ok(Some(CwlMessage::Data { events: ea, log_group, .. })), Ok(Some(CwlMessage::Data { events: eb, .. }))) => {
                    prop_assert_eq!(log_group, "g");
                    prop_assert_eq!(ea.len(), eb.len());
                    for (x, y) in ea.iter().zip(&eb) {
                        prop_assert_eq!(resolve(&x.message, &arena), y.message.as_bytes());
                        prop_assert_eq!(&x.id, &y.id);
                    }
                }
                (Ok(Some(CwlMessage::Control)), Ok(Some(CwlMessage::Control))) => {}
                (Err(x), Err(y)) => prop_assert_eq!(std::mem::discriminant(&x), std::mem::discriminant(&y)),
                (x, y) => prop_assert!(false, "disagree: {:?} vs {:?}", x.map(|_| ()), y.map(|_| ())),
            }
        }
    }
}
