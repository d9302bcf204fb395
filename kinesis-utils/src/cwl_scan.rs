//! A fast path for CloudWatch Logs subscription envelopes in their usual shape.
//!
//! Most of an envelope is its events' `message` strings, and a JSON log line inside one has
//! an escaped quote every few bytes. serde_json finds each with a library call and copies the
//! pieces twice (into its scratch buffer, then into the arena); this scanner finds quotes and
//! backslashes sixteen bytes at a time and copies each piece once, straight into the arena.
//! With AVX-512 VBMI2 (chosen at run time) it unescapes 64 bytes per step instead: escaped
//! bytes translated in place, backslashes squeezed out with one byte compress; a block with
//! an escaped backslash goes back to the pieces loop.
//!
//! It accepts a strict subset of JSON ([`Plain`] keys and metadata, fields at most once,
//! message escapes other than `\u`). On anything else it gives up (`None`) without saying
//! why, and [`crate::cwl::parse_into`] starts again with serde_json, which accepts all of JSON
//! and reports errors. Whatever this scanner accepts, serde_json reads the same way, arena
//! bytes included; a differential proptest and the `gzip_cwl` fuzz target check exactly that.

use std::borrow::Cow;

use wide::u8x16;

use crate::cwl::{ArenaEnvelope, ArenaLogEvent, MessageRef};
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
                    let (m, used) = unescape(c.rest(), arena)?;
                    c.advance(used);
                    message = Some(m);
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

/// Offset of the first `"` or `\` in `s` at or after `from`.
#[inline]
fn find_quote_or_backslash(s: &[u8], from: usize) -> Option<usize> {
    let (quote, backslash) = (u8x16::splat(b'"'), u8x16::splat(b'\\'));
    let mut at = from;
    while let Some(chunk) = s.get(at..at + 16) {
        let mut lanes = [0u8; 16];
        lanes.copy_from_slice(chunk);
        let v = u8x16::new(lanes);
        let hits = (v.simd_eq(quote) | v.simd_eq(backslash)).to_bitmask();
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize);
        }
        at += 16;
    }
    let tail = s.get(at..)?;
    Some(at + tail.iter().position(|&b| b == b'"' || b == b'\\')?)
}

/// Where a vector unescaper (`crate::avx512::unescape`) stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unescaped {
    /// At the closing quote, at this position; everything before it is unescaped.
    End(usize),
    /// Everything before this position is unescaped; the caller goes on from here.
    Stopped(usize),
    /// An escape the message reader does not take (`\u`, or no escape at all).
    Invalid,
}

/// What the byte after a backslash stands for, for the escapes a message may hold (`\"`,
/// `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`; not `\u`).
pub(crate) const fn escaped_byte(c: u8) -> Option<u8> {
    Some(match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

/// Reads a message string's content (`s` starts after its opening quote) as serde_json's raw
/// bytes do: any byte but `"` and `\` as it is, escapes other than `\u` decoded. Without
/// escapes it is borrowed, as serde borrows it; with escapes it goes into `arena`. Returns
/// the message and the bytes used, closing quote included.
pub(crate) fn unescape<'a>(s: &'a [u8], arena: &mut Vec<u8>) -> Option<(MessageRef<'a>, usize)> {
    #[cfg(target_arch = "x86_64")]
    if crate::avx512::has_vbmi2() {
        return unescape_with(s, arena, |s, arena| {
            #[allow(unsafe_code)]
            // SAFETY: the only requirement of a `#[target_feature]` function is that the CPU
            // has the features, which `has_vbmi2` detected.
            unsafe {
                crate::avx512::unescape(s, arena)
            }
        });
    }
    unescape_portable(s, arena)
}

/// [`unescape`] sixteen bytes at a time, one copy per piece between escapes.
fn unescape_portable<'a>(s: &'a [u8], arena: &mut Vec<u8>) -> Option<(MessageRef<'a>, usize)> {
    unescape_with(s, arena, |_, _| Unescaped::Stopped(0))
}

/// [`unescape`], with `vector` unescaping as much as it can first (from the start of `s`):
/// the pieces loop goes on from where it stopped.
fn unescape_with<'a>(
    s: &'a [u8],
    arena: &mut Vec<u8>,
    vector: impl FnOnce(&[u8], &mut Vec<u8>) -> Unescaped,
) -> Option<(MessageRef<'a>, usize)> {
    let mut at = find_quote_or_backslash(s, 0)?;
    if s.get(at) == Some(&b'"') {
        return Some((MessageRef::Borrowed(s.get(..at)?), at + 1));
    }
    let start = arena.len();
    let mut piece = match vector(s, arena) {
        Unescaped::End(end) => return Some((MessageRef::Arena(start..arena.len()), end + 1)),
        Unescaped::Invalid => return None,
        Unescaped::Stopped(at) => at,
    };
    if piece > 0 {
        at = find_quote_or_backslash(s, piece)?;
    }
    loop {
        arena.extend_from_slice(s.get(piece..at)?);
        if s.get(at) == Some(&b'"') {
            return Some((MessageRef::Arena(start..arena.len()), at + 1));
        }
        arena.push(escaped_byte(*s.get(at + 1)?)?);
        piece = at + 2;
        at = find_quote_or_backslash(s, piece)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Unescaper = for<'a> fn(&'a [u8], &mut Vec<u8>) -> Option<(MessageRef<'a>, usize)>;

    /// The dispatched unescaper, the portable one, and the vector one when the CPU has it.
    fn unescapers() -> Vec<(&'static str, Unescaper)> {
        #[allow(unused_mut)]
        let mut all: Vec<(&'static str, Unescaper)> =
            vec![("dispatched", unescape), ("portable", unescape_portable)];
        #[cfg(target_arch = "x86_64")]
        if crate::avx512::has_vbmi2() {
            all.push(("avx512", |s, arena| {
                unescape_with(s, arena, |s, arena| {
                    #[allow(unsafe_code)]
                    // SAFETY: the CPU has the features, checked above.
                    unsafe {
                        crate::avx512::unescape(s, arena)
                    }
                })
            }));
        }
        all
    }

    fn message_with(f: Unescaper, s: &str) -> Option<(Vec<u8>, bool, usize)> {
        let mut arena = b"prefix".to_vec();
        let (m, used) = f(s.as_bytes(), &mut arena)?;
        Some(match m {
            MessageRef::Borrowed(b) => (b.to_vec(), false, used),
            MessageRef::Arena(r) => {
                assert_eq!(r.start, 6);
                (arena[r].to_vec(), true, used)
            }
        })
    }

    /// What every unescaper reads, once they are known to agree.
    fn message(s: &str) -> Option<(Vec<u8>, bool, usize)> {
        let all = unescapers();
        let want = message_with(all[0].1, s);
        for (name, f) in &all[1..] {
            assert_eq!(message_with(*f, s), want, "{name} on {s:?}");
        }
        want
    }

    #[test]
    fn unescapes_in_one_copy_and_borrows_when_it_can() {
        assert_eq!(message(r#"abc" x"#), Some((b"abc".to_vec(), false, 4)));
        assert_eq!(message(r#"" x"#), Some((b"".to_vec(), false, 1)));
        let long = format!(
            r#"{{\"log_type\":\"a\",\"m\":\"{}\n\t\/\b\f\r\\\"}}"#,
            "x".repeat(40)
        );
        let (m, escaped, used) = message(&format!("{long}\",")).unwrap();
        assert!(escaped);
        assert_eq!(used, long.len() + 1);
        let want = format!(
            "{{\"log_type\":\"a\",\"m\":\"{}\n\t/\u{8}\u{c}\r\\\"}}",
            "x".repeat(40)
        );
        assert_eq!(m, want.as_bytes());
        // Control bytes pass through, as in serde_json's raw bytes.
        assert_eq!(message("a\tb\""), Some((b"a\tb".to_vec(), false, 4)));
        for bad in [r#"\u0041""#, r#"\x""#, r#"abc"#, r#"abc\"#, "\\"] {
            assert_eq!(message(bad), None, "{bad}");
        }
    }

    #[test]
    fn pieces_of_every_length_around_the_sixteen_and_sixty_four_byte_scans() {
        // Escapes at every distance from each other and from the end, after other messages
        // in the arena: the result is serde_json's, at the arena's end, on every unescaper.
        for (name, f) in unescapers() {
            for gap in 0..140 {
                for tail in (0..70).step_by(if gap < 40 { 1 } else { 7 }) {
                    let piece = "é".repeat(gap / 2) + &"x".repeat(gap % 2);
                    for body in [
                        format!(r#"\"{piece}\n{piece}\\{}"#, "y".repeat(tail)),
                        format!(r#"{piece}\"{}\t\/{piece}\""#, "y".repeat(tail)),
                    ] {
                        let quoted = format!("\"{body}\"");
                        let want: String = serde_json::from_str(&quoted).unwrap();
                        let mut arena = b"earlier".to_vec();
                        let input = format!("{body}\",\"next\"");
                        let got = f(input.as_bytes(), &mut arena);
                        assert_eq!(
                            got,
                            Some((MessageRef::Arena(7..7 + want.len()), body.len() + 1)),
                            "{name}"
                        );
                        assert_eq!(&arena[7..], want.as_bytes(), "{name}: {quoted}");
                    }
                }
            }
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn unescapers_agree_with_each_other(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => "[a-z {}:,é]{0,20}",
                    4 => proptest::sample::select(vec![
                        r#"\""#, r#"\\"#, r#"\/"#, r#"\n"#, r#"\t"#, r#"\b"#, r#"\f"#, r#"\r"#,
                    ]).prop_map(str::to_owned),
                    1 => proptest::sample::select(vec![
                        r#"\u0041"#, r#"\x"#, "\\", "\"", "\t",
                    ]).prop_map(str::to_owned),
                ],
                0..40,
            )
        ) {
            let s = parts.concat();
            message(&s);
            message(&format!("{s}\" tail"));
        }
    }

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
