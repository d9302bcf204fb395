//! A validating JSON cursor for fast paths that give up rather than explain.
//!
//! The decoder's event scanner and `logging-core`'s log-line scanner read the common shapes of
//! their input faster than a general parser by accepting only a strict subset of JSON. A
//! [`Cursor`] method returns `None` as soon as the input leaves that subset (or is not JSON);
//! the caller then parses with serde_json, which accepts all of JSON and reports errors. So a
//! fast path built on it never decides anything serde_json would decide differently, as long
//! as what it accepts is valid JSON with the same meaning, which is what the methods check.
//!
//! ```
//! use kinesis_utils::json_cursor::{Cursor, Escaped, Plain};
//!
//! let mut c = Cursor::new(br#" {"a": [1, -2.5e3, true, {"b": null}], "c": "x\"y"} "#);
//! assert!(c.skip_value(Escaped, 1).is_some());
//! assert!(c.at_end());
//!
//! // `Plain` strings refuse escapes: the caller's slower path must judge them.
//! let mut c = Cursor::new(br#"{"c": "x\"y"}"#);
//! assert!(c.skip_value(Plain, 1).is_none());
//! // Not JSON at all.
//! assert!(Cursor::new(b"[01]").skip_value(Escaped, 1).is_none());
//! ```

/// How deep [`Cursor::skip_value`] recurses before it gives up.
pub const MAX_DEPTH: u32 = 64;

/// Which strings a cursor accepts: [`Plain`] or [`Escaped`]. A type rather than a value, so
/// that each scanner gets its own copy of the loops with the choice made at compile time.
pub trait Strings: Copy {
    /// Whether string values may hold escapes (other than `\u`) and any non-control byte.
    const ESCAPED: bool;
}

/// Printable ASCII without escapes, in keys and values: a string's bytes are its value, and
/// UTF-8 whatever the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain;

impl Strings for Plain {
    const ESCAPED: bool = false;
}

/// Values with any bytes but control characters and with the escapes other than `\u`; keys
/// without escapes. For input already known to be UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped;

impl Strings for Escaped {
    const ESCAPED: bool = true;
}

/// A position in JSON bytes; see the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Whether whitespace skipped so far held a line break.
    line_break: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            line_break: false,
        }
    }

    /// The offset of the cursor in the input.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The input from the cursor on.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// The input between `start` and the cursor (empty if `start` is past it).
    #[inline]
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    /// The input between two offsets (`None` unless `start <= end <= len`).
    #[inline]
    pub fn between(&self, start: usize, end: usize) -> Option<&'a [u8]> {
        self.bytes.get(start..end)
    }

    /// Moves the cursor to `pos` (at most the end), for example back to where a speculative
    /// read started.
    #[inline]
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.bytes.len());
    }

    /// Moves the cursor `n` bytes on (at most to the end), for a token the caller has already
    /// recognised in [`Cursor::rest`].
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.bytes.len());
    }

    /// Skips JSON whitespace.
    #[inline]
    pub fn skip_whitespace(&mut self) {
        let start = self.pos;
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        // Compact JSON has no whitespace: keep the usual case to one comparison.
        if self.pos != start {
            self.note_whitespace(start);
        }
    }

    #[cold]
    fn note_whitespace(&mut self, start: usize) {
        let crossed = self.bytes.get(start..self.pos).unwrap_or_default();
        self.line_break |= crossed.iter().any(|&b| b == b'\n' || b == b'\r');
    }

    /// Whether the whitespace skipped so far held a `\n` or `\r` (the only place valid JSON
    /// has raw line breaks), for writers of one-line records.
    pub fn saw_line_break(&self) -> bool {
        self.line_break
    }

    /// Notes a line break in bytes the caller moved over itself.
    pub fn note_line_break(&mut self) {
        self.line_break = true;
    }

    /// Whether only whitespace is left.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.pos == self.bytes.len()
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace and consumes `c` if it comes next.
    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// [`Cursor::eat`], giving up if `c` does not come next.
    #[inline]
    pub fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// Consumes `word` (`true`, `false`, `null`) if it comes next, with no whitespace skipped.
    #[inline]
    pub fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(word.len())?;
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A number as JSON's grammar has it, with no whitespace skipped before it.
    pub fn number(&mut self) -> Option<()> {
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match *self.bytes.get(self.pos)? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.digits1()?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            self.digits1()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn digits1(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    /// `null` (as `None`) or a number's text.
    pub fn null_or_number(&mut self) -> Option<Option<&'a [u8]>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let start = self.pos;
        self.number()?;
        Some(Some(self.since(start)))
    }

    /// A string's bytes up to the first `"`, unchecked: the caller validates them (a `\"`
    /// inside ends it early, so an escape always leaves a trailing backslash behind).
    pub fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = self.rest();
        let len = crate::arch::find_quote(rest)?;
        self.pos += len + 1;
        rest.get(..len)
    }

    /// A [`Plain`] string's bytes, which are also its value.
    pub fn plain_string(&mut self) -> Option<&'a [u8]> {
        let text = self.raw_string()?;
        // A branch-free fold, so that it vectorises.
        #[allow(clippy::manual_range_contains)]
        let bad = text.iter().fold(false, |bad, &c| {
            bad | (c < 0x20) | (c >= 0x80) | (c == b'\\')
        });
        (!bad).then_some(text)
    }

    /// An object key's bytes (never with escapes).
    pub fn key<S: Strings>(&mut self, _: S) -> Option<&'a [u8]> {
        match S::ESCAPED {
            false => self.plain_string(),
            true => {
                self.expect(b'"')?;
                let rest = self.rest();
                let len = find_special(rest)?;
                if rest.get(len) != Some(&b'"') {
                    return None;
                }
                self.pos += len + 1;
                rest.get(..len)
            }
        }
    }

    /// Skips a string value.
    pub fn skip_string<S: Strings>(&mut self, _: S) -> Option<()> {
        match S::ESCAPED {
            false => self.plain_string().map(drop),
            true => {
                self.expect(b'"')?;
                loop {
                    self.pos += find_special(self.rest())?;
                    match self.bytes.get(self.pos)? {
                        b'"' => {
                            self.pos += 1;
                            return Some(());
                        }
                        b'\\' => {
                            crate::json_escape::escaped_byte(*self.bytes.get(self.pos + 1)?)?;
                            self.pos += 2;
                        }
                        _ => return None,
                    }
                }
            }
        }
    }

    /// Skips one value of any type, `depth` levels into the document.
    pub fn skip_value<S: Strings>(&mut self, strings: S, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(strings),
            b'{' => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.key(strings)?;
                    self.expect(b':')?;
                    self.skip_value(strings, depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b'}');
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(strings, depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b']');
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
}

/// Position of the first `"`, `\` or control byte (what a JSON string must escape), on the
/// fastest path the CPU has (see [`crate::arch`]).
///
/// ```
/// use kinesis_utils::json_cursor::find_special;
/// assert_eq!(find_special(br#"abc"d"#), Some(3));
/// assert_eq!(find_special(b"a\tb"), Some(1));
/// assert_eq!(find_special(b"plain text"), None);
/// ```
#[inline]
pub fn find_special(text: &[u8]) -> Option<usize> {
    crate::arch::find_special(text)
}

/// Eight bytes as a little-endian `u64` (`chunk` is eight bytes long).
#[inline]
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// `text.starts_with(prefix)` for short tokens, eight bytes at a time inline rather than
/// through a `memcmp` call.
#[inline]
pub fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    let Some(head) = text.get(..prefix.len()) else {
        return false;
    };
    let mut at = 0;
    while let (Some(a), Some(b)) = (head.get(at..at + 8), prefix.get(at..at + 8)) {
        if word(a) != word(b) {
            return false;
        }
        at += 8;
    }
    let (a, b) = (
        head.get(at..).unwrap_or_default(),
        prefix.get(at..).unwrap_or_default(),
    );
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips<S: Strings>(text: &str, strings: S) -> bool {
        let mut c = Cursor::new(text.as_bytes());
        c.skip_value(strings, 1).is_some() && c.at_end()
    }

    #[test]
    fn values_of_every_type() {
        for text in [
            r#" {"a" : [1, -0.5, 2E+3, true, false, null, {}, [], ""]} "#,
            r#"-0"#,
            r#""abc""#,
        ] {
            assert!(skips(text, Plain), "{text}");
            assert!(skips(text, Escaped), "{text}");
        }
        // Escapes and non-ASCII: only where escaped strings are allowed.
        for text in [r#""a\"b\\c\/\n""#, r#"{"k":"日本"}"#] {
            assert!(!skips(text, Plain), "{text}");
            assert!(skips(text, Escaped), "{text}");
        }
    }

    #[test]
    fn gives_up_on_what_a_full_parser_must_judge() {
        for text in [
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[",
            "\"abc",
            "\"a\\u0041\"",
            "\"a\\x\"",
            "\"a\tb\"",
            "{\"k\\n\":1}",
            "",
        ] {
            assert!(!skips(text, Escaped), "{text:?}");
            assert!(!skips(text, Plain), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(!skips(&deep, Escaped));
        let ok = format!("{}{}", "[".repeat(60), "]".repeat(60));
        assert!(skips(&ok, Escaped));
    }

    #[test]
    fn prefix_comparison() {
        let text = b"\"arn:aws:kinesis:ap-northeast-1:1:stream/logs\",";
        for n in 0..text.len() {
            assert!(starts_with(text, &text[..n]));
            let mut other = text[..n].to_vec();
            if let Some(last) = other.last_mut() {
                *last ^= 1;
                assert!(!starts_with(text, &other), "{n}");
            }
        }
        assert!(!starts_with(b"ab", b"abc"));
    }

    #[test]
    fn cursor_positions() {
        let mut c = Cursor::new(b" null , 12.5e1]");
        assert_eq!(c.null_or_number(), Some(None));
        assert!(c.eat(b','));
        let start = c.position() + 1;
        assert_eq!(c.null_or_number(), Some(Some(&b"12.5e1"[..])));
        assert_eq!(c.since(start), b"12.5e1");
        assert_eq!(c.rest(), b"]");
        c.advance(99);
        assert!(c.at_end());
    }
}
