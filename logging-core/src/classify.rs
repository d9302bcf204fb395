//! Classification of every decoded payload into exactly one outcome.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use kinesis_utils::{Decoded, Origin};
use serde::Serialize;

use crate::json_scan::KeyMemo;
use crate::record::{FieldValue, LogRecord};
use crate::schema::{SchemaConfig, UnparseableTimestamp, validate_log_type};

/// Why a payload goes to the dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Not JSON, not an object, or `log_type` missing, not a string or unsafe.
    UnknownType,
    /// A timestamp is required but missing.
    NoTimestamp,
    /// The timestamp is present but not parseable.
    BadTimestamp,
    /// The Kinesis record could not be decoded (base64, gzip, CloudWatch Logs envelope).
    Undecodable,
    /// A destination refused the record permanently.
    Rejected,
}

impl FailureReason {
    /// The reason as written in reports, dead-letter groups and envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::UnknownType => "unknown_type",
            FailureReason::NoTimestamp => "no_timestamp",
            FailureReason::BadTimestamp => "bad_timestamp",
            FailureReason::Undecodable => "undecodable",
            FailureReason::Rejected => "rejected",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload that is a valid log record: what routing and destinations work on.
///
/// Everything is borrowed from the decoded batch; nothing is re-serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Position of the payload in the decoded batch ([`kinesis_utils::DecodedBatch::items`]).
    pub index: usize,
    /// The original payload bytes (a cheap-to-clone [`Bytes`] handle).
    pub data: &'a Bytes,
    /// The validated `log_type`.
    pub log_type: Cow<'a, str>,
    /// The id as text (a JSON string or number); `None` when absent or of another type.
    pub log_id: Option<Cow<'a, str>>,
    /// The parsed timestamp, with the UTC offset it was written with (a naive timestamp or
    /// an epoch number carries the schema zone's); `None` only when absent and not required.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// Where the payload came from.
    pub origin: &'a Origin,
    /// Whether the payload may hold a raw line break (between JSON tokens, as in a
    /// pretty-printed payload; see [`LogRecord::has_line_break`]). `false` lets one-line
    /// writers skip looking for them ([`crate::naming::write_record_line`]); `true` is always
    /// safe.
    pub line_break: bool,
}

/// A payload that failed classification (or decoding): it goes to the dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<'a> {
    /// Position of the payload in the decoded batch.
    pub index: usize,
    /// Why it failed.
    pub reason: FailureReason,
    /// A short stable code refining the reason (`not_json`, `missing`, `corrupt_gzip`, ...).
    pub code: &'static str,
    /// A human-readable explanation.
    pub detail: String,
    /// The `log_type`, for the reasons that know it (`no_timestamp`, `bad_timestamp`).
    pub log_type: Option<Cow<'a, str>>,
    /// The payload bytes (for `undecodable`, the bytes at the step that failed).
    pub data: &'a Bytes,
    /// Where the payload came from.
    pub origin: &'a Origin,
}

/// The classification of one decoded item.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified<'a> {
    /// A valid record, to be routed (or filtered).
    Valid(Record<'a>),
    /// A CloudWatch Logs control message.
    Control(&'a Origin),
    /// A failure, for the dead letter.
    Failed(Failure<'a>),
}

/// Classifies one decoded item (at position `index` of the batch) under `schema`.
///
/// ```
/// use logging_core::classify::{classify, Classified, FailureReason};
/// use logging_core::SchemaConfig;
/// use kinesis_utils::{Decoded, Origin, Payload};
/// let origin = Origin::new("1");
/// let item = Decoded::Payload(Payload { data: r#"{"log_type":"app"}"#.into(), origin });
/// match classify(0, &item, &SchemaConfig::default()) {
///     Classified::Failed(f) => assert_eq!(f.reason, FailureReason::NoTimestamp),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn classify<'a>(index: usize, item: &'a Decoded, schema: &SchemaConfig) -> Classified<'a> {
    classify_memo(index, item, schema, None)
}

/// Classifies the items of a batch one after the other, as [`classify`] does each, and
/// faster: it remembers the key layout of the lines before (producers write every line with
/// the same keys in the same order), so a line's keys are mostly recognised by comparing
/// their bytes rather than scanned. What the pipeline uses.
///
/// ```
/// use logging_core::classify::{Classified, Classifier};
/// use logging_core::SchemaConfig;
/// use kinesis_utils::{Decoded, Origin, Payload};
/// let schema = SchemaConfig::default();
/// let mut classifier = Classifier::new(&schema);
/// let origin = Origin::new("1");
/// for (i, line) in [r#"{"log_type":"a","time":1584154800}"#, r#"{"log_type":"b","time":1584154801}"#].iter().enumerate() {
///     let item = Decoded::Payload(Payload { data: line.as_bytes().to_vec().into(), origin: origin.clone() });
///     assert!(matches!(classifier.classify(i, &item), Classified::Valid(_)));
/// }
/// ```
#[derive(Debug)]
pub struct Classifier<'s> {
    schema: &'s SchemaConfig,
    memo: KeyMemo,
}

impl<'s> Classifier<'s> {
    /// A classifier for `schema`, remembering nothing yet.
    pub fn new(schema: &'s SchemaConfig) -> Self {
        Self {
            schema,
            memo: KeyMemo::default(),
        }
    }

    /// Classifies one decoded item (at position `index` of the batch), as [`classify`].
    pub fn classify<'a>(&mut self, index: usize, item: &'a Decoded) -> Classified<'a> {
        classify_memo(index, item, self.schema, Some(&mut self.memo))
    }
}

fn classify_memo<'a>(
    index: usize,
    item: &'a Decoded,
    schema: &SchemaConfig,
    memo: Option<&mut KeyMemo>,
) -> Classified<'a> {
    match item {
        Decoded::Control(origin) => Classified::Control(origin),
        Decoded::Failed(f) => Classified::Failed(Failure {
            index,
            reason: FailureReason::Undecodable,
            code: f.error.reason(),
            detail: f.error.to_string(),
            log_type: None,
            data: &f.raw,
            origin: &f.origin,
        }),
        Decoded::Payload(p) => classify_payload(index, &p.data, &p.origin, schema, memo),
    }
}

fn classify_payload<'a>(
    index: usize,
    data: &'a Bytes,
    origin: &'a Origin,
    schema: &SchemaConfig,
    memo: Option<&mut KeyMemo>,
) -> Classified<'a> {
    let fail = |reason, code, detail: String, log_type| {
        Classified::Failed(Failure {
            index,
            reason,
            code,
            detail,
            log_type,
            data,
            origin,
        })
    };
    let parsed = match memo {
        Some(memo) => LogRecord::parse_with_memo(data, schema, memo),
        None => LogRecord::parse_with(data, schema),
    };
    let record = match parsed {
        Ok(r) => r,
        Err(e) => return fail(FailureReason::UnknownType, e.code(), e.to_string(), None),
    };
    let field = &schema.log_type_field;
    let log_type = match record.log_type() {
        // Without a timestamp either, the original kinesis-to-s3 filed it apart
        // (`unknown_type_no_timestamp`); the code keeps that distinction.
        None if record.timestamp_value().is_none() => {
            return fail(
                FailureReason::UnknownType,
                "missing_no_timestamp",
                format!("{field:?} and {:?} are missing", schema.timestamp_field),
                None,
            );
        }
        None => {
            return fail(
                FailureReason::UnknownType,
                "missing",
                format!("{field:?} is missing"),
                None,
            );
        }
        Some(FieldValue::String(s)) => s.clone(),
        Some(other) => {
            return fail(
                FailureReason::UnknownType,
                "not_a_string",
                format!("{field:?} is a {}, not a string", other.kind()),
                None,
            );
        }
    };
    if let Err(e) = validate_log_type(&log_type) {
        return fail(FailureReason::UnknownType, "unsafe", e.to_string(), None);
    }
    let timestamp = match record.timestamp_with_offset(schema.time_zone.tz()) {
        Ok(Some(t)) => Some(t),
        Ok(None) if schema.timestamp_required => {
            let detail = format!("{:?} is missing", schema.timestamp_field);
            return fail(
                FailureReason::NoTimestamp,
                "missing",
                detail,
                Some(log_type),
            );
        }
        Ok(None) => None,
        Err(_) if schema.unparseable_timestamp == UnparseableTimestamp::Ignore => None,
        Err(e) => {
            let shown = record
                .timestamp_value()
                .map(|v| match v {
                    FieldValue::String(s) => format!("{s:?}"),
                    FieldValue::Number(n) | FieldValue::Other(n) => (*n).to_owned(),
                })
                .unwrap_or_default();
            let detail = format!("{:?} {shown}: {e}", schema.timestamp_field);
            return fail(
                FailureReason::BadTimestamp,
                "unparseable",
                detail,
                Some(log_type),
            );
        }
    };
    let log_id = match record.log_id() {
        Some(FieldValue::String(s)) => Some(s.clone()),
        Some(FieldValue::Number(n)) => Some(Cow::Borrowed(*n)),
        _ => None,
    };
    Classified::Valid(Record {
        index,
        data,
        log_type,
        log_id,
        timestamp,
        origin,
        line_break: record.has_line_break(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kinesis_utils::Payload;

    pub(crate) fn origin(seq: &str) -> Origin {
        Origin::new(seq).with_partition_key("pk")
    }

    fn payload(s: &str) -> Decoded {
        Decoded::Payload(Payload {
            data: Bytes::copy_from_slice(s.as_bytes()),
            origin: origin("1"),
        })
    }

    type Verdict = Result<(), (FailureReason, &'static str)>;

    fn reason_of(item: &Decoded, schema: &SchemaConfig) -> Verdict {
        match classify(0, item, schema) {
            Classified::Valid(_) => Ok(()),
            Classified::Control(_) => Err((FailureReason::Rejected, "control")),
            Classified::Failed(f) => Err((f.reason, f.code)),
        }
    }

    #[test]
    fn the_table_of_spec_1_2() {
        let s = SchemaConfig::default();
        use FailureReason::*;
        let cases: &[(&str, Verdict)] = &[
            (r#"{"log_type":"a","time":"2020-03-14"}"#, Ok(())),
            (r#"{"log_type":"a","time":1584187200}"#, Ok(())),
            ("not json", Err((UnknownType, "not_json"))),
            ("[1]", Err((UnknownType, "not_object"))),
            (r#"{"time":"2020-03-14"}"#, Err((UnknownType, "missing"))),
            (r#"{"msg":"x"}"#, Err((UnknownType, "missing_no_timestamp"))),
            (
                r#"{"log_type":1,"time":"2020-03-14"}"#,
                Err((UnknownType, "not_a_string")),
            ),
            (
                r#"{"log_type":"a/b","time":"2020-03-14"}"#,
                Err((UnknownType, "unsafe")),
            ),
            (r#"{"log_type":""}"#, Err((UnknownType, "unsafe"))),
            (r#"{"log_type":"a"}"#, Err((NoTimestamp, "missing"))),
            (
                r#"{"log_type":"a","time":"soon"}"#,
                Err((BadTimestamp, "unparseable")),
            ),
            (
                r#"{"log_type":"a","time":null}"#,
                Err((BadTimestamp, "unparseable")),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(reason_of(&payload(raw), &s), *want, "{raw}");
        }
        let lax = SchemaConfig {
            timestamp_required: false,
            ..SchemaConfig::default()
        };
        assert_eq!(reason_of(&payload(r#"{"log_type":"a"}"#), &lax), Ok(()));
        // Ignoring unparseable timestamps routes the record without one, in both modes.
        for timestamp_required in [true, false] {
            let ignore = SchemaConfig {
                timestamp_required,
                unparseable_timestamp: UnparseableTimestamp::Ignore,
                ..SchemaConfig::default()
            };
            let item = payload(r#"{"log_type":"a","time":"March 14th"}"#);
            let Classified::Valid(r) = classify(0, &item, &ignore) else {
                panic!("not valid")
            };
            assert_eq!(r.timestamp, None);
            assert_eq!(
                reason_of(&payload(r#"{"log_type":"a"}"#), &ignore).is_ok(),
                !timestamp_required
            );
        }
        assert_eq!(
            reason_of(&Decoded::Control(origin("1")), &s),
            Err((Rejected, "control"))
        );
    }

    #[test]
    fn valid_records_borrow_fields() {
        let s = SchemaConfig::default();
        let item = payload(r#"{"log_type":"app","log_id":42,"time":"2020-03-14T12:00:00Z"}"#);
        let Classified::Valid(r) = classify(7, &item, &s) else {
            panic!("not valid")
        };
        assert_eq!(r.index, 7);
        assert_eq!(r.log_type, "app");
        assert!(matches!(r.log_type, Cow::Borrowed(_)));
        assert_eq!(r.log_id.as_deref(), Some("42"));
        assert_eq!(r.timestamp.unwrap().timestamp(), 1_584_187_200);
        let item = payload(r#"{"log_type":"app","log_id":{},"time":"2020-03-14"}"#);
        let Classified::Valid(r) = classify(0, &item, &s) else {
            panic!("not valid")
        };
        assert_eq!(r.log_id, None);
    }

    #[test]
    fn failures_keep_the_type_when_known() {
        let s = SchemaConfig::default();
        let item = payload(r#"{"log_type":"app","time":"later"}"#);
        let Classified::Failed(f) = classify(3, &item, &s) else {
            panic!("not failed")
        };
        assert_eq!(f.log_type.as_deref(), Some("app"));
        assert!(f.detail.contains("later"), "{}", f.detail);
        assert_eq!(f.index, 3);
    }
}
