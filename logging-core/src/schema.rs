//! The common log schema: which keys carry the type, id and timestamp, and what a valid type is.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

/// Names of the three schema keys and how records without them are treated.
///
/// Defaults equal the original Python modules: `log_type`, `log_id`, `time`, failed
/// payloads under `unknown`, a timestamp required, naive timestamps read in UTC.
///
/// Deserializes from any serde format; missing fields take their defaults:
///
/// ```
/// use logging_core::SchemaConfig;
///
/// let cfg: SchemaConfig = serde_json::from_str(r#"{"time_zone": "Asia/Tokyo"}"#).unwrap();
/// assert_eq!(cfg.log_type_field, "log_type");
/// assert_eq!(cfg.time_zone.name(), "Asia/Tokyo");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaConfig {
    /// Key of the type identifier (`LOG_TYPE_FIELD`, default `log_type`).
    pub log_type_field: String,
    /// Key of the unique id (`LOG_ID_FIELD`, default `log_id`).
    pub log_id_field: String,
    /// Key of the timestamp (`LOG_TIMESTAMP_FIELD`, default `time`).
    pub timestamp_field: String,
    /// Prefix of the dead-letter groups (`LOG_TYPE_UNKNOWN_PREFIX`, default `unknown`).
    pub unknown_prefix: String,
    /// Whether a record without a timestamp is a failure (`no_timestamp`); default `true`.
    pub timestamp_required: bool,
    /// What a timestamp that is present but cannot be parsed does (default: the record fails
    /// as `bad_timestamp`).
    pub unparseable_timestamp: UnparseableTimestamp,
    /// Zone for naive timestamps and for the dates in object keys and index names.
    pub time_zone: TimeZone,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            log_type_field: "log_type".to_owned(),
            log_id_field: "log_id".to_owned(),
            timestamp_field: "time".to_owned(),
            unknown_prefix: "unknown".to_owned(),
            timestamp_required: true,
            unparseable_timestamp: UnparseableTimestamp::Fail,
            time_zone: TimeZone::UTC,
        }
    }
}

/// What a record does whose timestamp is present but cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnparseableTimestamp {
    /// It fails as `bad_timestamp` and goes to the dead letter (default).
    #[default]
    Fail,
    /// It is routed as a record without a usable timestamp: dated like one without a
    /// timestamp (CloudWatch Logs or arrival time), its bytes unchanged. For destinations that
    /// need no date of the record (Kinesis forward), or where the original modules kept such
    /// records with the others (kinesis-to-s3, kinesis-to-fluent, kinesis-forward read the
    /// timestamp with python-dateutil, which accepts forms this parser does not).
    Ignore,
}

/// An IANA time zone (`UTC`, `Asia/Tokyo`, ...), deserialized from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(pub Tz);

impl TimeZone {
    /// Coordinated Universal Time, the default.
    pub const UTC: TimeZone = TimeZone(Tz::UTC);

    /// The IANA name of the zone.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The `chrono-tz` zone.
    pub fn tz(&self) -> Tz {
        self.0
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self::UTC
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown time zone name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema config: unknown IANA time zone {0:?}")]
pub struct UnknownTimeZone(pub String);

impl FromStr for TimeZone {
    type Err = UnknownTimeZone;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // The TZ environment variable may carry a leading ':' (glibc syntax).
        let s = s.strip_prefix(':').unwrap_or(s);
        Tz::from_str(s)
            .map(TimeZone)
            .map_err(|_| UnknownTimeZone(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How the dates and times in object keys and index names are taken from a record's timestamp.
///
/// The original modules formatted each timestamp as it was written: a record stamped
/// `2020-03-14T23:30:00+09:00` went into the folder `2020-03/14` and the index `…-20200314`,
/// whatever the function's `TZ`. [`KeyDates::RecordOffset`] (the default) keeps that layout,
/// so the keys of a migrated function line up with the existing objects and indices.
/// [`KeyDates::Zone`] converts every timestamp to one zone first: one calendar for every
/// producer, at the price of a layout that differs from the original's for records written in
/// another offset (their folders, index dates and key times move).
///
/// Either way, timestamps without an offset (naive ones, read in the schema's zone, and epoch
/// numbers) and records without a timestamp (keyed by their CloudWatch Logs or arrival time)
/// are dated in the zone.
///
/// ```
/// use logging_core::{KeyDates, TimeZone};
/// let t = chrono::DateTime::parse_from_rfc3339("2020-03-14T23:30:00+09:00").unwrap();
/// let utc = TimeZone::UTC;
/// assert_eq!(KeyDates::RecordOffset.local(t, utc).to_string(), "2020-03-14 23:30:00");
/// assert_eq!(KeyDates::Zone.local(t, utc).to_string(), "2020-03-14 14:30:00");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDates {
    /// The wall-clock time as written in the record, in its own offset (the original's).
    #[default]
    RecordOffset,
    /// The instant converted to the configured zone.
    Zone,
}

impl KeyDates {
    /// The wall-clock time of `t` under this rule, `zone` being the configured zone.
    pub fn local(self, t: DateTime<FixedOffset>, zone: TimeZone) -> NaiveDateTime {
        match self {
            KeyDates::RecordOffset => t.naive_local(),
            KeyDates::Zone => t.with_timezone(&zone.tz()).naive_local(),
        }
    }
}

/// The longest accepted `log_type`, in bytes (an index name is at most 255 bytes).
pub const MAX_LOG_TYPE_LEN: usize = 255;

/// Why a `log_type` value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogTypeError {
    /// The value is the empty string.
    #[error("log_type is empty")]
    Empty,
    /// The value is longer than [`MAX_LOG_TYPE_LEN`] bytes.
    #[error("log_type is longer than 255 bytes")]
    TooLong,
    /// The value holds a byte outside `a-z 0-9 _ - .`.
    #[error("log_type contains {0:?}, allowed are a-z 0-9 _ - .")]
    BadChar(char),
    /// The value starts with `-`, `_`, `.` or is `..`-like, which index names or keys refuse.
    #[error("log_type starts with {0:?}")]
    BadStart(char),
}

/// Checks that `log_type` is safe as one S3 key segment and as part of an index name:
/// 1 to 255 bytes of lowercase ASCII letters, digits, `_`, `-` and `.`, not starting with
/// `-`, `_` or `.`. An unsafe value is a failure, never rewritten.
///
/// ```
/// use logging_core::schema::validate_log_type;
/// assert!(validate_log_type("nginx.access_log-2").is_ok());
/// assert!(validate_log_type("../etc").is_err());
/// assert!(validate_log_type("Nginx").is_err());
/// ```
pub fn validate_log_type(value: &str) -> Result<(), LogTypeError> {
    let bytes = value.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(LogTypeError::Empty);
    };
    if bytes.len() > MAX_LOG_TYPE_LEN {
        return Err(LogTypeError::TooLong);
    }
    if matches!(first, b'-' | b'_' | b'.') {
        return Err(LogTypeError::BadStart(first as char));
    }
    for c in value.chars() {
        if !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.') {
            return Err(LogTypeError::BadChar(c));
        }
    }
    Ok(())
}

/// Whether `value` can be used as-is in an object name: 1 to 255 bytes of ASCII letters,
/// digits, `_`, `-`, `.` and `:`, not starting with `.` (so never `.` or `..`).
pub(crate) fn is_safe_name_part(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 255
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_modules() {
        let cfg = SchemaConfig::default();
        assert_eq!(cfg.log_type_field, "log_type");
        assert_eq!(cfg.log_id_field, "log_id");
        assert_eq!(cfg.timestamp_field, "time");
        assert_eq!(cfg.unknown_prefix, "unknown");
        assert!(cfg.timestamp_required);
        assert_eq!(cfg.time_zone, TimeZone::UTC);
        let empty: SchemaConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, cfg);
    }

    #[test]
    fn config_deserializes_and_rejects_bad_zones() {
        let cfg: SchemaConfig = serde_json::from_str(
            r#"{"log_type_field":"type","timestamp_required":false,"time_zone":"Asia/Tokyo"}"#,
        )
        .unwrap();
        assert_eq!(cfg.log_type_field, "type");
        assert!(!cfg.timestamp_required);
        assert_eq!(cfg.time_zone.tz(), chrono_tz::Asia::Tokyo);
        let err = serde_json::from_str::<SchemaConfig>(r#"{"time_zone":"Mars/Base"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Base"), "{err}");
        assert!(serde_json::from_str::<SchemaConfig>(r#"{"typo":1}"#).is_err());
        assert_eq!(":UTC".parse::<TimeZone>().unwrap(), TimeZone::UTC);
    }

    #[test]
    fn log_type_safety() {
        for ok in ["a", "nginx", "app.access-log_2", "0", &"x".repeat(255)] {
            assert_eq!(validate_log_type(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_log_type(""), Err(LogTypeError::Empty));
        assert_eq!(
            validate_log_type(&"x".repeat(256)),
            Err(LogTypeError::TooLong)
        );
        assert_eq!(validate_log_type("a/b"), Err(LogTypeError::BadChar('/')));
        assert_eq!(validate_log_type("a b"), Err(LogTypeError::BadChar(' ')));
        assert_eq!(validate_log_type("Ab"), Err(LogTypeError::BadChar('A')));
        assert_eq!(validate_log_type("é"), Err(LogTypeError::BadChar('é')));
        assert_eq!(validate_log_type(".."), Err(LogTypeError::BadStart('.')));
        assert_eq!(validate_log_type("-a"), Err(LogTypeError::BadStart('-')));
        assert_eq!(validate_log_type("_a"), Err(LogTypeError::BadStart('_')));
        for bad in [":", "*", "?", "\"", "<", ">", "|", ",", "#", "\\", "+"] {
            assert!(validate_log_type(&format!("a{bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_parts() {
        assert!(is_safe_name_part("abc-01:02.x"));
        assert!(is_safe_name_part("ID_9"));
        assert!(!is_safe_name_part(""));
        assert!(!is_safe_name_part(".."));
        assert!(!is_safe_name_part("a/b"));
        assert!(!is_safe_name_part("a b"));
    }
}
