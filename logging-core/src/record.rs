//! [`LogRecord`]: one payload validated as a JSON object, with the three schema fields borrowed.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::json_scan::{self, KeyMemo};
use crate::schema::SchemaConfig;
use crate::timestamp::{self, BadTimestamp};

/// A log record: the original bytes of a JSON object and its three schema fields.
///
/// Parsing validates the whole payload as JSON but copies nothing: field values borrow from
/// the payload (a string with escapes is the only value ever unescaped into a new buffer), and
/// outputs write [`LogRecord::raw`], the original bytes, unchanged.
///
/// ```
/// use logging_core::LogRecord;
///
/// let raw = br#"{"log_type":"nginx","log_id":"a1","time":"2020-03-14T12:00:00Z","x":[1,2.50]}"#;
/// let rec = LogRecord::parse(raw).unwrap();
/// assert_eq!(rec.log_type().and_then(|v| v.as_str()), Some("nginx"));
/// assert_eq!(rec.log_id().and_then(|v| v.as_text()), Some("a1"));
/// let t = rec.timestamp(chrono_tz::UTC).unwrap().unwrap();
/// assert_eq!(t.to_rfc3339(), "2020-03-14T12:00:00+00:00");
/// assert_eq!(rec.raw(), raw); // the original bytes, "2.50" and all
///
/// assert!(LogRecord::parse(b"[1, 2]").is_err()); // not an object
/// assert!(LogRecord::parse(b"{\"a\":1").is_err()); // not JSON
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord<'a> {
    raw: &'a [u8],
    line_break: bool,
    log_type: Option<FieldValue<'a>>,
    log_id: Option<FieldValue<'a>>,
    timestamp: Option<FieldValue<'a>>,
}

/// The value of one schema field, borrowed from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// A JSON string, unescaped (borrowed unless it contained escapes).
    String(Cow<'a, str>),
    /// A JSON number, as its literal text.
    Number(&'a str),
    /// Any other JSON value (`null`, `true`, an array or object), as its JSON text.
    Other(&'a str),
}

impl<'a> FieldValue<'a> {
    /// The string, if the value is a JSON string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string or the number's literal text; `None` for other values.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::String(s) => Some(s),
            FieldValue::Number(n) => Some(n),
            FieldValue::Other(_) => None,
        }
    }

    /// The JSON type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            FieldValue::String(_) => "string",
            FieldValue::Number(_) => "number",
            FieldValue::Other(t) => match t.as_bytes().first() {
                Some(b'n') => "null",
                Some(b't' | b'f') => "boolean",
                Some(b'[') => "array",
                _ => "object",
            },
        }
    }

    /// The value from its JSON text (as found in the payload, already validated).
    fn from_text(text: &'a str) -> Result<Self, serde_json::Error> {
        Ok(match text.as_bytes().first() {
            Some(b'"') => {
                let inner = &text[1..text.len() - 1];
                if !has_backslash(inner.as_bytes()) {
                    FieldValue::String(Cow::Borrowed(inner))
                } else {
                    FieldValue::String(Cow::Owned(serde_json::from_str(text)?))
                }
            }
            Some(b'-' | b'0'..=b'9') => FieldValue::Number(text),
            _ => FieldValue::Other(text),
        })
    }
}

/// Whether `s` holds a `\`: inline for the short values of the schema fields, where a
/// `memchr` call costs more than the scan.
#[inline]
fn has_backslash(s: &[u8]) -> bool {
    if s.len() > 64 {
        return memchr::memchr(b'\\', s).is_some();
    }
    // A branch-free fold, so that it vectorises.
    s.iter().fold(false, |found, &c| found | (c == b'\\'))
}

/// Why a payload is not a log record.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The payload is not valid JSON (the error says where).
    #[error("payload is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The payload is JSON but its root is not an object.
    #[error("payload is JSON but its root is {0}, not an object")]
    NotObject(&'static str),
    /// The payload is not UTF-8 text, so not JSON either.
    #[error("payload is not JSON: not UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
}

impl ParseError {
    /// Short code: `not_json` or `not_object`.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::NotJson(_) | ParseError::NotUtf8(_) => "not_json",
            ParseError::NotObject(_) => "not_object",
        }
    }
}

/// The key names to pick out, borrowed from a [`SchemaConfig`].
#[derive(Clone, Copy)]
struct Keys<'k> {
    log_type: &'k str,
    log_id: &'k str,
    timestamp: &'k str,
}

impl<'a> LogRecord<'a> {
    /// Parses a payload with the default key names (`log_type`, `log_id`, `time`).
    pub fn parse(raw: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_keys(
            raw,
            Keys {
                log_type: "log_type",
                log_id: "log_id",
                timestamp: "time",
            },
        )
    }

    /// Parses a payload with the key names of `schema`.
    pub fn parse_with(raw: &'a [u8], schema: &SchemaConfig) -> Result<Self, ParseError> {
        Self::parse_keys(
            raw,
            Keys {
                log_type: &schema.log_type_field,
                log_id: &schema.log_id_field,
                timestamp: &schema.timestamp_field,
            },
        )
    }

    fn parse_keys(raw: &'a [u8], keys: Keys<'_>) -> Result<Self, ParseError> {
        Self::parse_keys_with(raw, keys, true)
    }

    /// [`LogRecord::parse`] on serde_json alone, for differential fuzzing.
    #[cfg(fuzzing)]
    pub fn parse_serde_only(raw: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_keys_with(
            raw,
            Keys {
                log_type: "log_type",
                log_id: "log_id",
                timestamp: "time",
            },
            false,
        )
    }

    /// [`LogRecord::parse_with`], remembering the key layout of the lines before in `memo`
    /// (one memo per schema).
    pub(crate) fn parse_with_memo(
        raw: &'a [u8],
        schema: &SchemaConfig,
        memo: &mut KeyMemo,
    ) -> Result<Self, ParseError> {
        let keys = Keys {
            log_type: &schema.log_type_field,
            log_id: &schema.log_id_field,
            timestamp: &schema.timestamp_field,
        };
        Self::parse_keys_memo(raw, keys, true, Some(memo))
    }

    fn parse_keys_with(raw: &'a [u8], keys: Keys<'_>, try_fast: bool) -> Result<Self, ParseError> {
        Self::parse_keys_memo(raw, keys, try_fast, None)
    }

    fn parse_keys_memo(
        raw: &'a [u8],
        keys: Keys<'_>,
        try_fast: bool,
        memo: Option<&mut KeyMemo>,
    ) -> Result<Self, ParseError> {
        // serde_json skips strings it ignores without checking their UTF-8; checking the
        // whole payload first (fast on ASCII) makes the validation complete.
        let text = match simdutf8::basic::from_utf8(raw) {
            Ok(text) => text,
            // The slower std check only to report where the invalid byte is.
            Err(_) => std::str::from_utf8(raw).map_err(ParseError::NotUtf8)?,
        };
        let field = |v: Option<&'a str>| {
            v.map(FieldValue::from_text)
                .transpose()
                .map_err(ParseError::NotJson)
        };
        if try_fast
            && let Some(found) =
                json_scan::scan_object(text, [keys.log_type, keys.log_id, keys.timestamp], memo)
        {
            let [log_type, log_id, timestamp] = found.values;
            return Ok(LogRecord {
                raw,
                line_break: found.line_break,
                log_type: field(log_type)?,
                log_id: field(log_id)?,
                timestamp: field(timestamp)?,
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let root = RootSeed { keys }
            .deserialize(&mut de)
            .map_err(ParseError::NotJson)?;
        de.end().map_err(ParseError::NotJson)?;
        match root {
            Root::Object(f) => Ok(LogRecord {
                raw,
                // Valid JSON has raw line breaks only between tokens.
                line_break: memchr::memchr2(b'\n', b'\r', raw).is_some(),
                log_type: field(f.log_type.map(RawValue::get))?,
                log_id: field(f.log_id.map(RawValue::get))?,
                timestamp: field(f.timestamp.map(RawValue::get))?,
            }),
            Root::Other(kind) => Err(ParseError::NotObject(kind)),
        }
    }

    /// The value of one top-level field of a JSON object payload, or `None` when the payload is
    /// not a JSON object or has no such field (a second, single-key parse: for options such as
    /// a partition-key field that are not one of the three schema fields).
    pub fn extract_field(raw: &'a [u8], key: &str) -> Option<FieldValue<'a>> {
        let keys = Keys {
            log_type: key,
            log_id: key,
            timestamp: key,
        };
        Self::parse_keys(raw, keys).ok()?.log_type
    }

    /// The original payload bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the payload has a raw line break (`\n` or `\r`): valid JSON has them only
    /// between tokens, as in a pretty-printed payload, which an NDJSON line must join up
    /// ([`crate::naming::write_line`]).
    pub fn has_line_break(&self) -> bool {
        self.line_break
    }

    /// The type field, if present.
    pub fn log_type(&self) -> Option<&FieldValue<'a>> {
        self.log_type.as_ref()
    }

    /// The id field, if present.
    pub fn log_id(&self) -> Option<&FieldValue<'a>> {
        self.log_id.as_ref()
    }

    /// The timestamp field as found, if present.
    pub fn timestamp_value(&self) -> Option<&FieldValue<'a>> {
        self.timestamp.as_ref()
    }

    /// The timestamp as an instant: `Ok(None)` when absent, an error when present but not
    /// parseable (a string in a supported format or an epoch number). Naive times use `zone`.
    pub fn timestamp(&self, zone: Tz) -> Result<Option<DateTime<Utc>>, BadTimestamp> {
        match &self.timestamp {
            None => Ok(None),
            Some(FieldValue::String(s)) => timestamp::parse_str(s, zone).map(Some),
            Some(FieldValue::Number(n)) => timestamp::parse_epoch(n).map(Some),
            Some(FieldValue::Other(_)) => Err(BadTimestamp),
        }
    }

    /// [`LogRecord::timestamp`] with the UTC offset it was written with (see
    /// [`timestamp::parse_str_with_offset`]); an epoch number, which has none, takes `zone`'s.
    pub fn timestamp_with_offset(
        &self,
        zone: Tz,
    ) -> Result<Option<DateTime<FixedOffset>>, BadTimestamp> {
        match &self.timestamp {
            None => Ok(None),
            Some(FieldValue::String(s)) => timestamp::parse_str_with_offset(s, zone).map(Some),
            Some(FieldValue::Number(n)) => {
                timestamp::parse_epoch(n).map(|t| Some(t.with_timezone(&zone).fixed_offset()))
            }
            Some(FieldValue::Other(_)) => Err(BadTimestamp),
        }
    }
}

/// The three fields found in an object, last occurrence wins (as in `serde_json::Value`).
#[derive(Default)]
struct Found<'a> {
    log_type: Option<&'a RawValue>,
    log_id: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
}

enum Root<'a> {
    Object(Found<'a>),
    Other(&'static str),
}

struct RootSeed<'k> {
    keys: Keys<'k>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = Root<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = Root<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Found::default();
        while let Some(key) = map.next_key_seed(KeySeed { keys: self.keys })? {
            match key {
                Key::LogType => found.log_type = Some(map.next_value()?),
                Key::LogId => found.log_id = Some(map.next_value()?),
                Key::Timestamp => found.timestamp = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Root::Object(found))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Root::Other("an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Root::Other("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Root::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Root::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Root::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Root::Other("a number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Root::Other("null"))
    }
}

enum Key {
    LogType,
    LogId,
    Timestamp,
    Other,
}

struct KeySeed<'k> {
    keys: Keys<'k>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    // Called with a borrowed or scratch-buffer key alike: compare without allocating.
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(if key == self.keys.log_type {
            Key::LogType
        } else if key == self.keys.log_id {
            Key::LogId
        } else if key == self.keys.timestamp {
            Key::Timestamp
        } else {
            Key::Other
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_fields_and_keeps_bytes() {
        let raw = br#" {"time": 1584187200, "log_id": 12.50, "log_type": "a\u0062c", "x": {"log_type": "inner"}} "#;
        let rec = LogRecord::parse(raw).unwrap();
        assert_eq!(rec.raw(), raw);
        assert_eq!(
            rec.log_type(),
            Some(&FieldValue::String(Cow::Owned("abc".into())))
        );
        assert_eq!(rec.log_id(), Some(&FieldValue::Number("12.50")));
        assert_eq!(rec.log_id().unwrap().as_text(), Some("12.50"));
        assert_eq!(
            rec.timestamp_value(),
            Some(&FieldValue::Number("1584187200"))
        );
        assert!(matches!(
            rec.log_type(),
            Some(FieldValue::String(Cow::Owned(_)))
        ));
        let plain = LogRecord::parse(br#"{"log_type":"abc"}"#).unwrap();
        assert!(matches!(
            plain.log_type(),
            Some(FieldValue::String(Cow::Borrowed("abc")))
        ));
        assert_eq!(plain.log_id(), None);
        assert_eq!(plain.timestamp(chrono_tz::UTC), Ok(None));
    }

    #[test]
    fn other_values_and_duplicates() {
        let rec =
            LogRecord::parse(br#"{"log_type":null,"log_id":[1],"time":true,"log_type":{"a":1}}"#)
                .unwrap();
        assert_eq!(rec.log_type().unwrap().kind(), "object");
        assert_eq!(rec.log_id().unwrap().kind(), "array");
        assert_eq!(rec.log_id().unwrap().as_text(), None);
        assert_eq!(rec.timestamp(chrono_tz::UTC), Err(BadTimestamp));
        let rec = LogRecord::parse(br#"{"log_type":"a","log_type":"b"}"#).unwrap();
        assert_eq!(rec.log_type().unwrap().as_str(), Some("b"));
    }

    #[test]
    fn configured_keys() {
        let schema = SchemaConfig {
            log_type_field: "type".into(),
            log_id_field: "id".into(),
            timestamp_field: "@timestamp".into(),
            ..SchemaConfig::default()
        };
        let rec = LogRecord::parse_with(
            br#"{"log_type":"no","type":"yes","id":"i","@timestamp":"2020-03-14"}"#,
            &schema,
        )
        .unwrap();
        assert_eq!(rec.log_type().unwrap().as_str(), Some("yes"));
        assert_eq!(rec.log_id().unwrap().as_str(), Some("i"));
        assert!(rec.timestamp(chrono_tz::UTC).unwrap().is_some());
        // Escaped keys match too.
        let rec = LogRecord::parse_with(br#"{"\u0074ype":"esc"}"#, &schema).unwrap();
        assert_eq!(rec.log_type().unwrap().as_str(), Some("esc"));
    }

    #[test]
    fn errors() {
        for (raw, code) in [
            (&b""[..], "not_json"),
            (b"{", "not_json"),
            (b"{} x", "not_json"),
            (b"{}{}", "not_json"),
            (b"{\"a\":01}", "not_json"),
            (b"\xff", "not_json"),
            (b"{\"a\":\"\xff\"}", "not_json"),
            (b"[1,{}]", "not_object"),
            (b"\"s\"", "not_object"),
            (b"12", "not_object"),
            (b"null", "not_object"),
            (b"true", "not_object"),
            (b"[1,", "not_json"),
        ] {
            let err = LogRecord::parse(raw).unwrap_err();
            assert_eq!(err.code(), code, "{raw:?}: {err}");
        }
        assert!(LogRecord::parse(b" {}\n").is_ok());
    }

    mod fast_path {
        //! The fast scanner and serde_json must give the same record or the same error.
        use super::*;
        use crate::json_scan::KeyMemo;
        use proptest::prelude::*;

        fn both(raw: &[u8]) -> (String, String) {
            let keys = Keys {
                log_type: "log_type",
                log_id: "log_id",
                timestamp: "time",
            };
            both_with(raw, keys)
        }

        fn both_with(raw: &[u8], keys: Keys<'_>) -> (String, String) {
            (
                format!("{:?}", LogRecord::parse_keys_with(raw, keys, true)),
                format!("{:?}", LogRecord::parse_keys_with(raw, keys, false)),
            )
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[a-z0-9 :.-]{0,10}",
                1 => "[a-z\\\\\"/\u{e5}\u{65e5}\t\n]{0,6}",
                1 => prop_oneof![Just(r"\u0041"), Just(r"\ud800"), Just(r"\x"), Just(r"\/"), Just(r"\b")]
                    .prop_map(String::from),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                text().prop_map(|t| format!("\"{t}\"")),
                "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
                prop_oneof![
                    Just("true"),
                    Just("false"),
                    Just("null"),
                    Just("01"),
                    Just("-"),
                    Just("1e400")
                ]
                .prop_map(String::from),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(" , "))),
                    proptest::collection::vec((key(), inner), 0..4).prop_map(|v| {
                        let v: Vec<String> =
                            v.into_iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                        format!("{{{}}}", v.join(","))
                    }),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("log_type".to_string()),
                Just("log_id".to_string()),
                Just("time".to_string()),
                Just(r"log_\u0074ype".to_string()),
                text(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]
            /// Lines of one key layout, sometimes with a key dropped or two swapped or a byte
            /// flipped, parsed in order with one key memo: each agrees with serde_json.
            #[test]
            fn a_memo_of_earlier_lines_changes_nothing(
                layout in proptest::collection::vec(key(), 1..8),
                lines in proptest::collection::vec(
                    (
                        proptest::collection::vec(value(), 8),
                        prop_oneof![4 => Just(""), 1 => Just(" ")],
                        proptest::option::weighted(0.2, any::<usize>()),
                        proptest::option::weighted(0.2, (any::<usize>(), any::<usize>())),
                        proptest::option::weighted(0.1, (any::<usize>(), any::<u8>())),
                    ),
                    1..10,
                ),
            ) {
                let keys = Keys { log_type: "log_type", log_id: "log_id", timestamp: "time" };
                let mut memo = KeyMemo::default();
                for (values, ws, drop, swap, flip) in lines {
                    let mut fields: Vec<(&String, &String)> = layout.iter().zip(&values).collect();
                    if let Some((a, b)) = swap {
                        let n = fields.len();
                        fields.swap(a % n, b % n);
                    }
                    if let Some(d) = drop {
                        let n = fields.len();
                        fields.remove(d % n);
                    }
                    let parts: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}")).collect();
                    let mut raw = format!("{{{}}}", parts.join(",")).into_bytes();
                    if let Some((at, byte)) = flip {
                        let n = raw.len();
                        raw[at % n] = byte;
                    }
                    let fast = format!(
                        "{:?}",
                        LogRecord::parse_keys_memo(&raw, keys, true, Some(&mut memo))
                    );
                    let serde = format!("{:?}", LogRecord::parse_keys_with(&raw, keys, false));
                    prop_assert_eq!(fast, serde, "{}", String::from_utf8_lossy(&raw));
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            #[test]
            fn agrees_with_serde(
                fields in proptest::collection::vec((key(), value()), 0..6),
                ws in prop_oneof![Just(""), Just(" "), Just("\n\t")],
                flip in any::<Option<(usize, u8)>>(),
            ) {
                let parts: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}")).collect();
                let mut raw = format!("{ws}{{{}{ws}}}{ws}", parts.join(",")).into_bytes();
                if let Some((at, byte)) = flip {
                    let n = raw.len();
                    raw[at % n] = byte;
                }
                let (fast, serde) = both(&raw);
                prop_assert_eq!(fast, serde, "{}", String::from_utf8_lossy(&raw));
                // Configured names may coincide: the first matching field wins on both paths.
                for keys in [
                    Keys { log_type: "log_type", log_id: "time", timestamp: "time" },
                    Keys { log_type: "log_id", log_id: "log_id", timestamp: "log_id" },
                    Keys { log_type: "time", log_id: "log_id", timestamp: "log_type" },
                ] {
                    let (fast, serde) = both_with(&raw, keys);
                    prop_assert_eq!(fast, serde, "{}", String::from_utf8_lossy(&raw));
                }
            }
        }
    }
}
