//! Daily index names `{index_prefix}-{log_type}-{%Y%m%d}` and their validation.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

/// Characters Elasticsearch and OpenSearch refuse anywhere in an index name.
const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':', ' '];

/// Longest index name the cluster accepts, in bytes.
pub const MAX_INDEX_NAME_BYTES: usize = 255;

/// An index name the cluster would refuse, with the rule it breaks.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid index name {name:?}: {reason}")]
pub struct IndexNameError {
    /// The offending name.
    pub name: String,
    /// Which rule it breaks.
    pub reason: String,
}

/// Checks the Elasticsearch / OpenSearch index name rules: not empty, not `.` or `..`,
/// lowercase, none of `\ / * ? " < > | , # :` or space, not starting with `-`, `_` or `+`,
/// at most 255 bytes.
pub fn validate_index_name(name: &str) -> Result<(), IndexNameError> {
    let fail = |reason: String| {
        Err(IndexNameError {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("empty".to_owned());
    }
    if name == "." || name == ".." {
        return fail("`.` and `..` are reserved".to_owned());
    }
    if name.len() > MAX_INDEX_NAME_BYTES {
        return fail(format!(
            "{} bytes, more than {MAX_INDEX_NAME_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().next().filter(|c| matches!(c, '-' | '_' | '+')) {
        return fail(format!("starts with {c:?}"));
    }
    for c in name.chars() {
        if FORBIDDEN.contains(&c) {
            return fail(format!("contains {c:?}"));
        }
        if c.is_uppercase() {
            return fail(format!("contains uppercase {c:?}"));
        }
    }
    Ok(())
}

/// Builds daily index names from each record's own timestamp, dated in a configured zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNamer {
    prefix: String,
    tz: Tz,
}

impl IndexNamer {
    /// A namer for `{prefix}-{log_type}-{%Y%m%d}` with dates taken in `tz`.
    pub fn new(prefix: impl Into<String>, tz: Tz) -> Self {
        Self {
            prefix: prefix.into(),
            tz,
        }
    }

    /// The index for a record of `log_type` stamped `time`, validated.
    ///
    /// A `log_type` that cannot form a valid name (uppercase, forbidden characters, too
    /// long) is an error carrying the reason, so the record is dead-lettered instead of
    /// being sent to a cluster that would refuse the whole request.
    pub fn index_name(
        &self,
        log_type: &str,
        time: DateTime<Utc>,
    ) -> Result<String, IndexNameError> {
        let mut name = String::with_capacity(self.prefix.len() + log_type.len() + 10);
        self.write_index_name(&mut name, log_type, time)?;
        Ok(name)
    }

    /// Like [`IndexNamer::index_name`], appending to `out` (cleared first) to reuse its
    /// allocation in a loop.
    pub fn write_index_name(
        &self,
        out: &mut String,
        log_type: &str,
        time: DateTime<Utc>,
    ) -> Result<(), IndexNameError> {
        self.write_index_name_on(out, log_type, time.with_timezone(&self.tz).date_naive())
    }

    /// The index for a record of `log_type` dated `date` (already taken in whichever zone or
    /// offset applies), appended to `out` (cleared first), validated.
    pub fn write_index_name_on(
        &self,
        out: &mut String,
        log_type: &str,
        date: NaiveDate,
    ) -> Result<(), IndexNameError> {
        out.clear();
        out.push_str(&self.prefix);
        out.push('-');
        out.push_str(log_type);
        out.push('-');
        push_yyyymmdd(out, date.year(), date.month(), date.day());
        validate_index_name(out)
    }
}

/// Appends `%Y%m%d` without going through chrono's formatter (hot path).
fn push_yyyymmdd(out: &mut String, year: i32, month: u32, day: u32) {
    if (0..=9999).contains(&year) {
        let y = year as u32;
        for d in [
            y / 1000,
            y / 100 % 10,
            y / 10 % 10,
            y % 10,
            month / 10,
            month % 10,
            day / 10,
            day % 10,
        ] {
            out.push(char::from(b'0' + d as u8));
        }
    } else {
        // Out of chrono's common range: let the formatter handle sign and width.
        out.push_str(&format!("{year:04}{month:02}{day:02}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_use_the_configured_zone() {
        let t = Utc.with_ymd_and_hms(2020, 3, 14, 20, 0, 0).unwrap();
        let utc = IndexNamer::new("logs", chrono_tz::UTC);
        let tokyo = IndexNamer::new("logs", chrono_tz::Asia::Tokyo);
        assert_eq!(utc.index_name("nginx", t).unwrap(), "logs-nginx-20200314");
        assert_eq!(tokyo.index_name("nginx", t).unwrap(), "logs-nginx-20200315");
    }

    #[test]
    fn validation_rules() {
        for bad in [
            "", ".", "..", "-a", "_a", "+a", "Abc", "a b", "a\\b", "a/b", "a*b", "a?b", "a\"b",
            "a<b", "a>b", "a|b", "a,b", "a#b", "a:b", "aÉ",
        ] {
            assert!(validate_index_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "logs-nginx-20200314", "a.b", "日本語", "a-_+b"] {
            assert!(validate_index_name(good).is_ok(), "{good:?} refused");
        }
        assert!(validate_index_name(&"a".repeat(255)).is_ok());
        let err = validate_index_name(&"a".repeat(256)).unwrap_err();
        assert!(err.reason.contains("256"));
    }

    #[test]
    fn bad_log_type_is_an_error_with_reason() {
        let t = Utc.with_ymd_and_hms(2020, 3, 14, 0, 0, 0).unwrap();
        let err = IndexNamer::new("logs", chrono_tz::UTC)
            .index_name("Nginx", t)
            .unwrap_err();
        assert_eq!(err.name, "logs-Nginx-20200314");
        assert!(err.reason.contains("uppercase"));
    }
}
