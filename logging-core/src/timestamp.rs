//! Timestamp parsing for the schema's timestamp field.
//!
//! Accepted forms: RFC 3339 / ISO 8601 with `T` or a space, `-` or `/` date separators,
//! optional seconds, any fraction (`.` or `,`; digits past nanoseconds are ignored), offset
//! `Z`, `UTC`, `GMT`, `+09:00`, `+0900`, `+09` or none; date only; RFC 2822; Apache/nginx
//! common log format (`14/Mar/2020:12:00:00 +0900`); and JSON numbers as Unix epoch seconds
//! or milliseconds (a magnitude of 10^11 or more is milliseconds, i.e. from 1973 on in ms,
//! up to the year 5138 in seconds). A naive timestamp is read in the configured zone.
//!
//! The ISO forms, by far the most common, are parsed by hand without allocating; the rarer
//! forms fall back to chrono's parsers.

use chrono::{
    DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

/// A timestamp value that could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp is not in a supported format")]
pub struct BadTimestamp;

/// Parses a timestamp given as a JSON string (already unescaped). Naive values are read in `zone`.
///
/// ```
/// use logging_core::timestamp::parse_str;
/// let t = parse_str("2020-03-14 21:00:00+0900", chrono_tz::UTC).unwrap();
/// assert_eq!(t.to_rfc3339(), "2020-03-14T12:00:00+00:00");
/// ```
pub fn parse_str(text: &str, zone: Tz) -> Result<DateTime<Utc>, BadTimestamp> {
    parse_str_with_offset(text, zone).map(|t| t.to_utc())
}

/// Parses a timestamp given as a JSON string, keeping the UTC offset it was written with
/// (`Z`, `UTC` and `GMT` are `+00:00`). A naive value is read in `zone` and carries the zone's
/// offset at that time, so its wall-clock time is the one written (in a daylight-saving gap,
/// the offset from before the transition).
///
/// The wall-clock time as written is what the original modules put into S3 keys and index
/// names (Python's `strftime` on the parsed value).
///
/// ```
/// use logging_core::timestamp::parse_str_with_offset;
/// let t = parse_str_with_offset("2020-03-14T21:00:00+09:00", chrono_tz::UTC).unwrap();
/// assert_eq!(t.to_rfc3339(), "2020-03-14T21:00:00+09:00");
/// let naive = parse_str_with_offset("2020-03-14 21:00:00", chrono_tz::Asia::Tokyo).unwrap();
/// assert_eq!(naive.to_rfc3339(), "2020-03-14T21:00:00+09:00");
/// ```
pub fn parse_str_with_offset(text: &str, zone: Tz) -> Result<DateTime<FixedOffset>, BadTimestamp> {
    let text = text.trim();
    if let Some(t) = parse_iso(text.as_bytes(), zone) {
        return Ok(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Ok(t);
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%d/%b/%Y:%H:%M:%S %z") {
        return Ok(t);
    }
    Err(BadTimestamp)
}

/// Parses a JSON number (its literal text) as Unix epoch seconds, or milliseconds when its
/// magnitude is 10^11 or more.
///
/// ```
/// use logging_core::timestamp::parse_epoch;
/// assert_eq!(parse_epoch("1584187200").unwrap(), parse_epoch("1584187200000").unwrap());
/// ```
pub fn parse_epoch(number: &str) -> Result<DateTime<Utc>, BadTimestamp> {
    const MS_THRESHOLD: u64 = 100_000_000_000;
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let plain = !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit());
    if !plain {
        // Exponent notation: rare enough for a float to do.
        let f: f64 = number.parse().map_err(|_| BadTimestamp)?;
        if !f.is_finite() || f.abs() >= 1e18 {
            return Err(BadTimestamp);
        }
        let ms = if f.abs() >= MS_THRESHOLD as f64 {
            f
        } else {
            f * 1000.0
        };
        return DateTime::from_timestamp_millis(ms.round() as i64).ok_or(BadTimestamp);
    }
    // Exact decimal arithmetic in nanoseconds, so "1584187200.123" is exactly .123.
    let whole: u64 = int_part.parse().map_err(|_| BadTimestamp)?;
    let unit: i128 = if whole >= MS_THRESHOLD {
        1_000_000
    } else {
        1_000_000_000
    };
    let mut frac: i128 = 0;
    let mut scale = unit;
    for d in frac_part.bytes().take(9) {
        scale /= 10;
        frac += i128::from(d - b'0') * scale;
    }
    let mut nanos = i128::from(whole) * unit + frac;
    if negative {
        nanos = -nanos;
    }
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| BadTimestamp)?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| BadTimestamp)?;
    DateTime::from_timestamp(secs, sub).ok_or(BadTimestamp)
}

/// Reads a naive local time in `zone`: the earlier instant when ambiguous (DST fall-back),
/// the offset before the transition when the time does not exist (DST spring-forward gap).
pub fn localize(naive: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    localize_with_offset(naive, zone).to_utc()
}

/// [`localize`], keeping the offset used, so that the result's wall-clock time is `naive`.
pub fn localize_with_offset(naive: NaiveDateTime, zone: Tz) -> DateTime<FixedOffset> {
    if let Some(t) = zone.from_local_datetime(&naive).earliest() {
        return t.fixed_offset();
    }
    let before = naive - TimeDelta::hours(3);
    let fixed: FixedOffset = match zone.offset_from_local_datetime(&before).earliest() {
        Some(off) => chrono::Offset::fix(&off),
        None => utc_offset(),
    };
    with_offset(naive, fixed)
}

/// `+00:00`.
fn utc_offset() -> FixedOffset {
    chrono::Offset::fix(&Utc)
}

/// The instant whose wall-clock time at `offset` is `naive`.
fn with_offset(naive: NaiveDateTime, offset: FixedOffset) -> DateTime<FixedOffset> {
    DateTime::from_naive_utc_and_offset(
        naive - TimeDelta::seconds(i64::from(offset.local_minus_utc())),
        offset,
    )
}

/// A byte cursor for the hand-written ISO parser.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &d in s {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
        }
        self.i += n;
        Some(v)
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn rest_eq_ignore_case(&self, s: &str) -> bool {
        self.b
            .get(self.i..)
            .is_some_and(|r| r.eq_ignore_ascii_case(s.as_bytes()))
    }
}

fn parse_iso(b: &[u8], zone: Tz) -> Option<DateTime<FixedOffset>> {
    let mut c = Cur { b, i: 0 };
    let year = c.digits(4)?;
    let sep = c.peek().filter(|s| matches!(s, b'-' | b'/'))?;
    c.i += 1;
    let month = c.digits(2)?;
    if !c.eat(sep) {
        return None;
    }
    let day = c.digits(2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if c.done() {
        return Some(localize_with_offset(date.and_time(NaiveTime::MIN), zone));
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let mut second = 0;
    let mut nano = 0;
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            while c.peek().is_some_and(|d| d.is_ascii_digit()) {
                let k = c.i - start;
                if k < 9 {
                    nano = nano * 10 + u32::from(b[c.i] - b'0');
                }
                c.i += 1;
            }
            let k = c.i - start;
            if k == 0 {
                return None;
            }
            for _ in k..9 {
                nano *= 10;
            }
        }
    }
    // A leap second (:60) is kept as chrono's leap-second representation of :59.
    if second == 60 {
        second = 59;
        nano += 1_000_000_000;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nano)?;
    let naive = date.and_time(time);
    while c.eat(b' ') {}
    if c.done() {
        return Some(localize_with_offset(naive, zone));
    }
    if c.rest_eq_ignore_case("z") || c.rest_eq_ignore_case("utc") || c.rest_eq_ignore_case("gmt") {
        return Some(with_offset(naive, utc_offset()));
    }
    let sign: i32 = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let oh = c.digits(2)?;
    let om = if c.done() {
        0
    } else {
        c.eat(b':');
        c.digits(2)?
    };
    if !c.done() || oh > 23 || om > 59 {
        return None;
    }
    let offset = sign * i32::try_from(oh * 3600 + om * 60).ok()?;
    Some(with_offset(naive, FixedOffset::east_opt(offset)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe, UTC};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn iso_forms() {
        let noon = utc("2020-03-14T12:00:00Z");
        for s in [
            "2020-03-14T12:00:00Z",
            "2020-03-14T12:00:00z",
            "2020-03-14 12:00:00Z",
            "2020-03-14T12:00:00+00:00",
            "2020-03-14T21:00:00+09:00",
            "2020-03-14T21:00:00+0900",
            "2020-03-14T21:00:00+09",
            "2020-03-14 21:00:00 +0900",
            "2020-03-14T12:00:00 UTC",
            "2020-03-14T12:00:00GMT",
            "2020-03-14T12:00",
            "2020-03-14T12:00:00",
            "2020/03/14 12:00:00",
            "  2020-03-14T12:00:00Z\n",
            "2020-03-14T07:00:00-05:00",
        ] {
            assert_eq!(parse_str(s, UTC), Ok(noon), "{s}");
        }
    }

    #[test]
    fn fractions_of_any_length() {
        let base = utc("2020-03-14T12:00:00Z");
        let cases = [
            ("2020-03-14T12:00:00.1Z", 100_000_000),
            ("2020-03-14T12:00:00.123Z", 123_000_000),
            ("2020-03-14T12:00:00,123456Z", 123_456_000),
            ("2020-03-14 12:00:00.123456789+00:00", 123_456_789),
            ("2020-03-14T12:00:00.1234567891234Z", 123_456_789),
        ];
        for (s, ns) in cases {
            assert_eq!(
                parse_str(s, UTC),
                Ok(base + TimeDelta::nanoseconds(ns)),
                "{s}"
            );
        }
        assert!(parse_str("2020-03-14T12:00:00.Z", UTC).is_err());
    }

    #[test]
    fn date_only_and_naive_times_use_the_zone() {
        assert_eq!(
            parse_str("2020-03-14", UTC),
            Ok(utc("2020-03-14T00:00:00Z"))
        );
        assert_eq!(
            parse_str("2020-03-14", Asia::Tokyo),
            Ok(utc("2020-03-13T15:00:00Z"))
        );
        assert_eq!(
            parse_str("2020-03-14 08:30:00", Asia::Tokyo),
            Ok(utc("2020-03-13T23:30:00Z"))
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            parse_str("2020-03-14T08:30:00Z", Asia::Tokyo),
            Ok(utc("2020-03-14T08:30:00Z"))
        );
    }

    #[test]
    fn edge_cases() {
        // Leap day, valid and invalid.
        assert_eq!(
            parse_str("2020-02-29T23:59:59Z", UTC),
            Ok(utc("2020-02-29T23:59:59Z"))
        );
        assert!(parse_str("2019-02-29T00:00:00Z", UTC).is_err());
        // Offsets crossing midnight and the year, both directions.
        assert_eq!(
            parse_str("2020-01-01T08:00:00+09:00", UTC),
            Ok(utc("2019-12-31T23:00:00Z"))
        );
        assert_eq!(
            parse_str("2019-12-31T20:00:00-05:00", UTC),
            Ok(utc("2020-01-01T01:00:00Z"))
        );
        assert_eq!(
            parse_str("2020-03-01T00:30:00+0100", UTC),
            Ok(utc("2020-02-29T23:30:00Z"))
        );
        assert_eq!(
            parse_str("2020-02-28T23:30:00-0930", UTC),
            Ok(utc("2020-02-29T09:00:00Z"))
        );
        // Leap second.
        let t = parse_str("2016-12-31T23:59:60Z", UTC).unwrap();
        assert_eq!(t.timestamp(), utc("2016-12-31T23:59:59Z").timestamp());
        // Out-of-range fields.
        for bad in [
            "2020-13-01",
            "2020-00-10",
            "2020-03-32",
            "2020-03-14T24:00:00Z",
            "2020-03-14T12:60:00Z",
            "2020-03-14T12:00:00+24:00",
            "2020-03-14T12:00:00+09:60",
            "2020-03-14T12:00:00+9",
            "2020-03-14T12:00:00 PST8",
            "2020-03-14X12:00:00",
            "2020-03/14",
            "",
            "yesterday",
            "2020",
        ] {
            assert!(parse_str(bad, UTC).is_err(), "{bad}");
        }
    }

    #[test]
    fn dst_gaps_and_overlaps() {
        // 2021-03-28 02:30 does not exist in Berlin: read with the winter offset (+01:00).
        assert_eq!(
            parse_str("2021-03-28 02:30:00", Europe::Berlin),
            Ok(utc("2021-03-28T01:30:00Z"))
        );
        // 2021-10-31 02:30 exists twice: the earlier (summer, +02:00) instant.
        assert_eq!(
            parse_str("2021-10-31 02:30:00", Europe::Berlin),
            Ok(utc("2021-10-31T00:30:00Z"))
        );
        assert_eq!(
            parse_str("2021-11-07 01:30:00", America::New_York),
            Ok(utc("2021-11-07T05:30:00Z"))
        );
    }

    #[test]
    fn rfc2822_and_clf() {
        let noon = utc("2020-03-14T12:00:00Z");
        assert_eq!(parse_str("Sat, 14 Mar 2020 12:00:00 +0000", UTC), Ok(noon));
        assert_eq!(parse_str("Sat, 14 Mar 2020 12:00:00 GMT", UTC), Ok(noon));
        assert_eq!(parse_str("14 Mar 2020 21:00:00 +0900", UTC), Ok(noon));
        assert_eq!(parse_str("Sat, 14 Mar 2020 07:00:00 -0500", UTC), Ok(noon));
        assert_eq!(parse_str("14/Mar/2020:21:00:00 +0900", UTC), Ok(noon));
        assert_eq!(parse_str("14/Mar/2020:07:00:00 -0500", UTC), Ok(noon));
        assert_eq!(
            parse_str("01/Mar/2020:08:00:00 +0900", UTC),
            Ok(utc("2020-02-29T23:00:00Z"))
        );
        assert!(parse_str("14/Foo/2020:12:00:00 +0900", UTC).is_err());
    }

    #[test]
    fn offsets_are_kept_as_written() {
        let cases = [
            (
                "2020-03-14T21:00:00+09:00",
                UTC,
                "2020-03-14T21:00:00+09:00",
            ),
            (
                "2020-03-14T21:00:00+0900",
                Asia::Tokyo,
                "2020-03-14T21:00:00+09:00",
            ),
            ("2020-03-14T07:00:00-05", UTC, "2020-03-14T07:00:00-05:00"),
            (
                "2020-03-14T12:00:00Z",
                Asia::Tokyo,
                "2020-03-14T12:00:00+00:00",
            ),
            (
                "2020-03-14T12:00:00 GMT",
                Asia::Tokyo,
                "2020-03-14T12:00:00+00:00",
            ),
            // Naive: the zone's offset, so the wall-clock time is the one written.
            (
                "2020-03-14 21:00:00",
                Asia::Tokyo,
                "2020-03-14T21:00:00+09:00",
            ),
            ("2020-03-14", America::New_York, "2020-03-14T00:00:00-04:00"),
            (
                "2021-03-28 02:30:00",
                Europe::Berlin,
                "2021-03-28T02:30:00+01:00",
            ),
            (
                "14/Mar/2020:21:00:00 +0900",
                UTC,
                "2020-03-14T21:00:00+09:00",
            ),
            (
                "Sat, 14 Mar 2020 07:00:00 -0500",
                UTC,
                "2020-03-14T07:00:00-05:00",
            ),
        ];
        for (text, zone, want) in cases {
            let t = parse_str_with_offset(text, zone).unwrap();
            assert_eq!(t.to_rfc3339(), want, "{text}");
            assert_eq!(Ok(t.to_utc()), parse_str(text, zone), "{text}");
        }
    }

    #[test]
    fn epoch_numbers() {
        let noon = utc("2020-03-14T12:00:00Z");
        assert_eq!(parse_epoch("1584187200"), Ok(noon));
        assert_eq!(parse_epoch("1584187200000"), Ok(noon));
        assert_eq!(
            parse_epoch("1584187200.5"),
            Ok(noon + TimeDelta::milliseconds(500))
        );
        assert_eq!(
            parse_epoch("1584187200123.0"),
            Ok(noon + TimeDelta::milliseconds(123))
        );
        assert_eq!(parse_epoch("1.5841872e9"), Ok(noon));
        assert_eq!(parse_epoch("0"), Ok(utc("1970-01-01T00:00:00Z")));
        assert_eq!(parse_epoch("-86400"), Ok(utc("1969-12-31T00:00:00Z")));
        // 99_999_999_999 s is still seconds (year 5138); 10^11 is milliseconds (1973).
        assert_eq!(parse_epoch("100000000000"), Ok(utc("1973-03-03T09:46:40Z")));
        assert!(parse_epoch("99999999999").unwrap().timestamp() == 99_999_999_999);
        assert!(parse_epoch("1e300").is_err());
        assert!(parse_epoch("9223372036854775807").is_err());
        assert!(parse_epoch("abc").is_err());
        assert!(parse_epoch("1.").is_ok());
        assert!(parse_epoch("1x").is_err());
        assert_eq!(parse_epoch("-1.5"), Ok(utc("1969-12-31T23:59:58.5Z")));
        assert_eq!(
            parse_epoch("1584187200123E0"),
            Ok(noon + TimeDelta::milliseconds(123))
        );
    }
}
