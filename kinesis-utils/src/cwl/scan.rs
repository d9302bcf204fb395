//! A fast path for CloudWatch Logs subscription envelopes in their usual shape.
//!
//! Most of an envelope is its events' `message` strings. This scanner reads each one with
//! `arch::unescape_string`, which borrows a message without escapes and unescapes any other
//! straight into the envelope's arena, one copy per piece.
//!
//! It accepts a strict subset of JSON: [`Plain`] keys and metadata, fields at most once, and
//! message escapes other than `\u`. On anything else it gives up (`None`) without saying
//! why, and `cwl::parse_into` starts again with serde_json, which accepts all of JSON and
//! reports errors. Whatever this scanner accepts, serde_json reads the same way, arena bytes
//! included; a differential proptest and the `gzip_cwl` fuzz target check exactly that.

use std::borrow::Cow;

use super::arena::{ArenaEnvelope, ArenaLogEvent, MessageRef};
use crate::arch::{self, StringContent};
use crate::json_cursor::{Cursor, Plain};

/// Scans `json` as an envelope, unescaping escaped messages into `arena`. On `None` the arena
/// may hold partial output: the caller truncates it.
pub(crate) fn scan<'a>(json: &'a [u8], arena: &mut Vec<u8>) -> Option<ArenaEnvelope<'a>> {
    let mut c = Cursor::new(json);
    let mut env = ArenaEnvelope::empty();
    c.expect(b'{')?;
    if !c.eat(b'}') {
        let mut seen = 0u8;
        loop {
            let key = c.plain_string()?;
            c.expect(b':')?;
            let bit = match key {
                b"messageType" => 1,
                b"owner" => 2,
                b"logGroup" => 4,
                b"logStream" => 8,
                b"logEvents" => 16,
                _ => 0,
            };
            // serde keeps the last of a repeated field: let it decide.
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match bit {
                1 => env.message_type = Some(text(&mut c)?),
                2 => env.owner = text(&mut c)?,
                4 => env.log_group = text(&mut c)?,
                8 => env.log_stream = text(&mut c)?,
                16 => env.log_events = Some(events(&mut c, arena)?),
                _ => c.skip_value(Plain, 1)?,
            }
            if !c.eat(b',') {
                c.expect(b'}')?;
                break;
            }
        }
    }
    c.at_end().then_some(env)
}

/// A [`Plain`] string value, borrowed.
fn text<'a>(c: &mut Cursor<'a>) -> Option<Cow<'a, str>> {
    std::str::from_utf8(c.plain_string()?)
        .ok()
        .map(Cow::Borrowed)
}

fn events<'a>(c: &mut Cursor<'a>, arena: &mut Vec<u8>) -> Option<Vec<ArenaLogEvent<'a>>> {
    c.expect(b'[')?;
    let mut events = Vec::with_capacity(64);
    if c.eat(b']') {
        return Some(events);
    }
    loop {
        events.push(event(c, arena)?);
        if !c.eat(b',') {
            c.expect(b']')?;
            return Some(events);
        }
    }
}

fn event<'a>(c: &mut Cursor<'a>, arena: &mut Vec<u8>) -> Option<ArenaLogEvent<'a>> {
    c.expect(b'{')?;
    let (mut id, mut timestamp, mut message) = (None, None, None);
    if !c.eat(b'}') {
        loop {
            let key = c.plain_string()?;
            c.expect(b':')?;
            match key {
                b"id" if id.is_none() => id = Some(text(c)?),
                b"timestamp" if timestamp.is_none() => timestamp = Some(integer(c)?),
                b"message" if message.is_none() => {
                    c.expect(b'"')?;
                    let (m, used) = arch::unescape_string(c.rest(), arena)?;
                    c.advance(used);
                    message = Some(match m {
                        StringContent::Borrowed(bytes) => MessageRef::Borrowed(bytes),
                        StringContent::Unescaped(range) => MessageRef::Arena(range),
                    });
                }
                b"id" | b"timestamp" | b"message" => return None,
                _ => c.skip_value(Plain, 3)?,
            }
            if !c.eat(b',') {
                c.expect(b'}')?;
                break;
            }
        }
    }
    // The serde path's defaults; a missing message is its error to report.
    Some(ArenaLogEvent {
        id: id.unwrap_or(Cow::Borrowed("")),
        timestamp: timestamp.unwrap_or(0),
        message: message?,
    })
}

/// A JSON integer that fits an `i64` (what serde reads a timestamp as).
fn integer(c: &mut Cursor<'_>) -> Option<i64> {
    c.skip_whitespace();
    let start = c.position();
    c.number()?;
    let digits = c.since(start);
    // serde_json reads `-0` as the float -0.0, which an i64 refuses.
    if digits == b"-0" || digits.iter().any(|&b| matches!(b, b'.' | b'e' | b'E')) {
        return None;
    }
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    // Accumulated negatively, so that i64::MIN fits; any overflow gives up, as serde refuses.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(n) } else { n.checked_neg() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_serde_reads_an_i64() {
        let read = |t: &str| integer(&mut Cursor::new(t.as_bytes()));
        for (text, want) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("1584154800000", Some(1_584_154_800_000)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("-0", None),
            ("1e3", None),
            ("1.0", None),
        ] {
            assert_eq!(read(text), want, "{text}");
            if let Some(n) = want {
                assert_eq!(serde_json::from_str::<i64>(text).ok(), Some(n));
            }
        }
    }

    #[test]
    fn reads_the_usual_shape_and_gives_up_on_the_rest() {
        let json = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",
            "subscriptionFilters":["f"],"logEvents":[{"id":"9","timestamp":5,"message":"a\"b"},
            {"message":"c","x":[1,{"y":null}]}]}"#;
        let mut arena = Vec::new();
        let env = scan(json, &mut arena).unwrap();
        assert_eq!(env.message_type.as_deref(), Some("DATA_MESSAGE"));
        assert_eq!(
            (&*env.owner, &*env.log_group, &*env.log_stream),
            ("1", "g", "s")
        );
        let events = env.log_events.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!((&*events[0].id, events[0].timestamp), ("9", 5));
        assert_eq!(events[0].message, MessageRef::Arena(0..3));
        assert_eq!(arena, b"a\"b");
        assert_eq!((&*events[1].id, events[1].timestamp), ("", 0));
        assert_eq!(events[1].message, MessageRef::Borrowed(b"c"));
        for bad in [
            r#"{"logEvents":[{"id":"1"}]}"#,
            r#"{"logEvents":[{"message":"a","message":"b"}]}"#,
            r#"{"owner":"a","owner":"b"}"#,
            r#"{"logEvents":[{"message":"a","timestamp":1.5}]}"#,
            r#"{"logEvents":[{"message":"a","timestamp":-0}]}"#,
            r#"{"logEvents":[{"message":"a","timestamp":9223372036854775808}]}"#,
            r#"{"logEvents":null}"#,
            r#"{"messageType":null}"#,
            r#"{"logGroup":"\u0067"}"#,
            r#"{"logGroup":"日本"}"#,
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"[]"#,
        ] {
            assert!(scan(bad.as_bytes(), &mut Vec::new()).is_none(), "{bad}");
        }
    }
}
