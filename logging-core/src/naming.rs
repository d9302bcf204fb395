//! Object keys and bodies shared by the S3 archive and the dead letter.

use std::io::{self, Write};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use kinesis_utils::Origin;

use crate::compress::{Compression, Compressor};
use crate::schema::{KeyDates, TimeZone, is_safe_name_part};

/// The object key `{prefix}/{group}/{%Y-%m}/{%d}/{%Y-%m-%d-%H:%M:%S}-{id}.gz`, the
/// dates taken in `zone`. An empty prefix adds no leading `/`; slashes around it are trimmed.
///
/// ```
/// use logging_core::naming::object_key;
/// use logging_core::TimeZone;
/// let t = chrono::DateTime::parse_from_rfc3339("2020-03-14T20:00:00Z").unwrap().to_utc();
/// let tokyo: TimeZone = "Asia/Tokyo".parse().unwrap();
/// assert_eq!(
///     object_key("logs/", "nginx", t, tokyo, "abc"),
///     "logs/nginx/2020-03/15/2020-03-15-05:00:00-abc.gz"
/// );
/// ```
pub fn object_key(
    prefix: &str,
    group: &str,
    time: DateTime<Utc>,
    zone: TimeZone,
    id: &str,
) -> String {
    object_key_local(
        prefix,
        group,
        time.with_timezone(&zone.tz()).naive_local(),
        id,
    )
}

/// [`object_key`] with the dates and time of `local` as they are (see [`key_local_time`]).
/// An empty `group` adds no folder.
///
/// ```
/// use logging_core::naming::object_key_local;
/// let t = chrono::DateTime::parse_from_rfc3339("2020-03-14T23:30:00+09:00").unwrap();
/// assert_eq!(
///     object_key_local("logs", "nginx", t.naive_local(), "abc"),
///     "logs/nginx/2020-03/14/2020-03-14-23:30:00-abc.gz"
/// );
/// ```
pub fn object_key_local(prefix: &str, group: &str, local: NaiveDateTime, id: &str) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(prefix.len() + group.len() + id.len() + 48);
    for part in [prefix.trim_matches('/'), group.trim_matches('/')] {
        if !part.is_empty() {
            key.push_str(part);
            key.push('/');
        }
    }
    // Writing into a String cannot fail.
    let _ = write!(
        key,
        "{}-{id}.gz",
        local.format("%Y-%m/%d/%Y-%m-%d-%H:%M:%S")
    );
    key
}

/// The id used in a file name: the record's own id when it is safe in a key, otherwise
/// [`origin_id`] — the same on every Lambda retry of the batch, so a retry overwrites.
pub fn file_id(log_id: Option<&str>, origin: &Origin) -> String {
    match log_id {
        Some(id) if is_safe_name_part(id) => id.to_owned(),
        _ => origin_id(origin),
    }
}

/// A deterministic id from where a payload came from: Lambda's event id (shard and sequence
/// number) or the sequence number, then the KPL sub-sequence and CloudWatch Logs event id.
pub fn origin_id(origin: &Origin) -> String {
    let mut id = String::with_capacity(96);
    let base = origin.event_id().unwrap_or(origin.sequence_number());
    id.extend(base.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '-'
        }
    }));
    if let Some(sub) = origin.sub_sequence() {
        id.push('-');
        id.push_str(&sub.to_string());
    }
    if let Some(cwl) = origin.cwl() {
        id.push('-');
        id.extend(cwl.event_id().chars().filter(|c| c.is_ascii_alphanumeric()));
    }
    if id.is_empty() {
        id.push_str("record");
    }
    id
}

/// The time for a group's key: its first timestamp, else the first record's CloudWatch Logs
/// timestamp, else its Kinesis arrival time, all of which are the same when Lambda replays the
/// batch; `now` only for an event that carries none of them.
pub fn key_time(
    first: Option<DateTime<Utc>>,
    origin: &Origin,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    first
        .or_else(|| {
            origin
                .cwl()
                .and_then(|c| DateTime::from_timestamp_millis(c.timestamp_ms()))
        })
        .or_else(|| {
            origin
                .arrival_ms()
                .and_then(DateTime::from_timestamp_millis)
        })
        .unwrap_or(now)
}

/// The wall-clock time a key or index name is dated with: the first timestamp under `dates`
/// (its own offset, or converted to `zone`); without one, the [`key_time`] fallbacks
/// (CloudWatch Logs time, Kinesis arrival time, `now`) in `zone`.
pub fn key_local_time(
    first: Option<DateTime<FixedOffset>>,
    origin: &Origin,
    now: DateTime<Utc>,
    zone: TimeZone,
    dates: KeyDates,
) -> NaiveDateTime {
    match first {
        Some(t) => dates.local(t, zone),
        None => key_time(None, origin, now)
            .with_timezone(&zone.tz())
            .naive_local(),
    }
}

/// Writes one record as one NDJSON line: outer whitespace trimmed, and line breaks between
/// JSON tokens (pretty-printed payloads) turned into spaces so the record stays on one line.
/// A JSON string cannot hold a raw line break, so nothing inside a value changes; a compact
/// payload is written byte for byte.
pub fn write_line<W: Write + ?Sized>(out: &mut W, data: &[u8]) -> io::Result<()> {
    let line = data.trim_ascii();
    if memchr::memchr2(b'\n', b'\r', line).is_none() {
        out.write_all(line)?;
    } else {
        let mut rest = line;
        while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
            out.write_all(&rest[..i])?;
            out.write_all(b" ")?;
            rest = &rest[i + 1..];
        }
        out.write_all(rest)?;
    }
    out.write_all(b"\n")
}

/// [`write_line`] for a classified record: one known to hold no raw line break
/// ([`crate::classify::Record::line_break`] `false`) is only trimmed, without a search for
/// line breaks.
pub fn write_record_line<W: Write + ?Sized>(
    out: &mut W,
    record: &crate::classify::Record<'_>,
) -> io::Result<()> {
    if record.line_break {
        return write_line(out, record.data);
    }
    out.write_all(record.data.trim_ascii())?;
    out.write_all(b"\n")
}

/// The NDJSON line a payload becomes (see [`write_line`]); for tests and tools.
pub fn ndjson_line(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    // Writing into a Vec cannot fail.
    let _ = write_line(&mut v, data);
    v
}

/// Builds an object body from lines, compressed as `compression` says (see [`finish_body`]).
/// The plain buffer is allocated once with a capacity estimate (`raw_len` = uncompressed
/// size).
pub fn build_body<I, F>(
    raw_len: usize,
    compression: Compression,
    lines: I,
    mut write: F,
) -> io::Result<Vec<u8>>
where
    I: IntoIterator,
    F: FnMut(&mut Vec<u8>, I::Item) -> io::Result<()>,
{
    let mut plain = Vec::with_capacity(raw_len);
    for item in lines {
        write(&mut plain, item)?;
    }
    finish_body(plain, compression)
}

/// The object body for gathered `plain` lines: as they are for [`Compression::None`], else
/// compressed as the archive does by default ([`Compressor::new`]: chunks of
/// [`DEFAULT_CHUNK_SIZE`](crate::compress::DEFAULT_CHUNK_SIZE) on every core). The same lines
/// always give the same bytes.
pub fn finish_body(plain: Vec<u8>, compression: Compression) -> io::Result<Vec<u8>> {
    Compressor::new(compression)
        .compress_all(vec![plain])
        .pop()
        .unwrap_or_else(|| Err(io::Error::other("no body")))
}

/// `key` (from [`object_key`] or [`object_key_local`], ending `.gz`) with the extension of
/// `compression` instead: `.gz`, `.zst` or `.ndjson`.
///
/// ```
/// use logging_core::compress::Compression;
/// use logging_core::naming::with_extension;
/// # #[cfg(feature = "zstd")] // zstd levels exist with the `zstd` feature only
/// assert_eq!(with_extension("a/b-1.gz".into(), Compression::zstd(3).unwrap()), "a/b-1.zst");
/// assert_eq!(with_extension("a/b-1.gz".into(), Compression::None), "a/b-1.ndjson");
/// ```
pub fn with_extension(mut key: String, compression: Compression) -> String {
    if let Some(stem) = key.strip_suffix(".gz") {
        key.truncate(stem.len());
        key.push('.');
        key.push_str(compression.extension());
    }
    key
}

pub(crate) use crate::compress::gzip;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::origin;
    use kinesis_utils::decode::CwlOrigin;
    use std::io::Read;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn keys() {
        let utc = TimeZone::UTC;
        assert_eq!(
            object_key("", "app", t("2020-03-14T01:02:03.9Z"), utc, "x1"),
            "app/2020-03/14/2020-03-14-01:02:03-x1.gz"
        );
        assert_eq!(
            object_key(
                "/a/b/",
                "unknown/app/no_timestamp",
                t("2020-12-31T23:59:59Z"),
                utc,
                "i-d"
            ),
            "a/b/unknown/app/no_timestamp/2020-12/31/2020-12-31-23:59:59-i-d.gz"
        );
        let ny: TimeZone = "America/New_York".parse().unwrap();
        assert_eq!(
            object_key("p", "app", t("2020-03-01T02:00:00Z"), ny, "x"),
            "p/app/2020-02/29/2020-02-29-21:00:00-x.gz"
        );
        assert_eq!(
            object_key("p", "app", t("2020-03-01T02:00:00Z"), utc, "--x"),
            "p/app/2020-03/01/2020-03-01-02:00:00---x.gz"
        );
    }

    #[test]
    fn ids() {
        let o = origin("495");
        assert_eq!(file_id(Some("abc-1"), &o), "abc-1");
        assert_eq!(file_id(Some("a/b"), &o), "495");
        assert_eq!(file_id(None, &o), "495");
        let o = o
            .with_event_id("shardId-000000000001:495")
            .with_sub_sequence(3)
            .with_cwl(CwlOrigin::new("3553", "g", "s", 1_584_187_200_000));
        assert_eq!(origin_id(&o), "shardId-000000000001-495-3-3553");
        let now = t("2021-01-01T00:00:00Z");
        assert_eq!(key_time(None, &o, now), t("2020-03-14T12:00:00Z"));
        assert_eq!(key_time(Some(now), &o, t("1999-01-01T00:00:00Z")), now);
        assert_eq!(key_time(None, &origin("1"), now), now);
        let arrived = origin("1").with_arrival_ms(1_584_187_201_000);
        assert_eq!(key_time(None, &arrived, now), t("2020-03-14T12:00:01Z"));
        let o = o.with_arrival_ms(1_584_187_201_000);
        assert_eq!(
            key_time(None, &o, now),
            t("2020-03-14T12:00:00Z"),
            "CWL first"
        );
    }

    #[test]
    fn lines_and_bodies() {
        assert_eq!(ndjson_line(b"{\"a\":1}"), b"{\"a\":1}\n");
        assert_eq!(ndjson_line(b" {\"a\":\n 1}\r\n"), b"{\"a\":  1}\n");
        let lines: [&[u8]; 2] = [b"{\"a\":1}", b"{\"b\":2}\n"];
        let plain = build_body(20, Compression::None, lines, write_line).unwrap();
        assert_eq!(plain, b"{\"a\":1}\n{\"b\":2}\n");
        let gz = build_body(20, Compression::default(), lines, write_line).unwrap();
        let gz2 = build_body(20, Compression::default(), lines, write_line).unwrap();
        assert_eq!(gz, gz2, "deterministic");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn every_level_gives_gzip_that_decodes_and_higher_levels_are_clamped() {
        let plain: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"log_type\":\"app\",\"n\":{i}}}\n").into_bytes())
            .collect();
        for level in [0, 1, 6, 9, 12, 99] {
            let gz = gzip(&plain, level).unwrap();
            assert_eq!(&gz[..2], &[0x1f, 0x8b], "level {level}");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, plain, "level {level}");
            if level >= 1 {
                assert!(gz.len() < plain.len() / 4, "level {level}: {}", gz.len());
            }
        }
        assert_eq!(gzip(&plain, 12).unwrap(), gzip(&plain, 99).unwrap());
    }
}
