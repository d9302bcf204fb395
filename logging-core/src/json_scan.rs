//! A fast path for [`crate::LogRecord`] parsing: validate a JSON object and find the text of
//! three top-level fields.
//!
//! serde_json handles every byte of a payload through its general machinery; log lines are
//! mostly long strings, which this scanner crosses eight bytes at a time (then `memchr2`). It
//! accepts a subset of JSON, already known to be UTF-8: an object root, keys without escapes,
//! string escapes other than `\u`, nesting at most [`MAX_DEPTH`] deep. On anything else it
//! gives up (`None`) and the caller parses with serde_json, which accepts all of JSON and
//! reports errors. Where it succeeds, serde_json would give the same fields; a differential
//! proptest and the `log_record` fuzz target hold it to that.

/// Where the scanner gives up rather than recurse further.
const MAX_DEPTH: u32 = 64;

/// The JSON text of each wanted field's value (last occurrence wins, as in serde_json).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub values: [Option<&'a str>; 3],
}

/// Scans `text` (UTF-8) as a JSON object, returning the value text of each of `keys`; a key
/// that equals several of them fills the first.
pub(crate) fn scan_object<'a>(text: &'a str, keys: [&str; 3]) -> Option<Fields<'a>> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.expect(b'{')?;
    let mut fields = Fields::default();
    if !s.eat(b'}') {
        loop {
            let key = s.key()?;
            s.expect(b':')?;
            s.ws();
            let start = s.i;
            s.skip_value(1)?;
            // The first matching name only, as the serde path decides (names may coincide).
            if let Some(slot) = keys.iter().position(|want| key == want.as_bytes()) {
                fields.values[slot] = Some(text.get(start..s.i)?);
            }
            if !s.eat(b',') {
                s.expect(b'}')?;
                break;
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(fields)
}

/// Position of the first `"`, `\` or control byte: eight bytes at a time for the first 32
/// (most keys and values are shorter), then memchr2 and a vectorised control check.
fn find_special(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_le_bytes([0x20; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    // High bit of each byte below `n`; the lowest set one is exact (borrows only run upward).
    let below = |x: u64, n: u64| x.wrapping_sub(n) & !x & HIGHS;
    let mut offset = 0;
    while offset < 32 {
        let Some(chunk) = text.get(offset..offset + 8) else {
            let tail = text.get(offset..)?;
            return Some(
                offset
                    + tail
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?,
            );
        };
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = below(w ^ QUOTES, ONES) | below(w ^ BACKSLASHES, ONES) | below(w, SPACES);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = text.get(offset..)?;
    let len = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    let clean = rest.get(..len)?;
    if has_control(clean) {
        return Some(offset + clean.iter().position(|&c| c < 0x20)?);
    }
    (len < rest.len()).then_some(offset + len)
}

/// Whether any byte is a control character, which JSON strings may not hold raw.
fn has_control(text: &[u8]) -> bool {
    // A branch-free fold, so that it vectorises.
    text.iter().fold(false, |bad, &c| bad | (c < 0x20))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// A key: a string without escapes, returned as its bytes.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.i;
        let len = find_special(self.b.get(start..)?)?;
        let key = self.b.get(start..start + len)?;
        if self.b.get(start + len) != Some(&b'"') {
            return None;
        }
        self.i = start + len + 1;
        Some(key)
    }

    /// A string, just after its opening quote; escapes other than `\u` are allowed.
    fn string_rest(&mut self) -> Option<()> {
        loop {
            self.i += find_special(self.b.get(self.i..)?)?;
            match self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => match self.b.get(self.i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            self.digits1()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            self.digits1()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn digits1(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// Skips one value; the caller has skipped the whitespace before it.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                self.string_rest()
            }
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.key()?;
                    self.expect(b':')?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b'}');
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 3] = ["log_type", "log_id", "time"];

    #[test]
    fn finds_value_text_of_top_level_fields_only() {
        // A raw tab inside a string is a control character: serde_json must judge that line.
        assert_eq!(scan_object("{\"m\":\"a\tb\"}", KEYS), None);
        let f = scan_object(
            r#" { "x" : {"log_type":"inner"}, "log_type" : "a\"b\\n" , "log_id":-1.5e+3,
               "time":[1,{"a":null}], "m":"日本\t"} "#,
            KEYS,
        )
        .unwrap();
        assert_eq!(
            f.values,
            [
                Some(r#""a\"b\\n""#),
                Some("-1.5e+3"),
                Some(r#"[1,{"a":null}]"#)
            ]
        );
        let f = scan_object(r#"{"log_type":"a","log_type":"b"}"#, KEYS).unwrap();
        assert_eq!(f.values[0], Some(r#""b""#));
        let f = scan_object(r#"{"t":"a","x":"b"}"#, ["t", "x", "x"]).unwrap();
        assert_eq!(f.values, [Some(r#""a""#), Some(r#""b""#), None]);
        assert_eq!(scan_object("{}", KEYS).unwrap().values, [None; 3]);
    }

    #[test]
    fn gives_up_on_what_serde_must_judge() {
        for text in [
            r#"{"log_type":"\u0041"}"#,
            r#"{"log_\u0074ype":"a"}"#,
            r#"{"a":"b\x"}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"[1]"#,
            r#""s""#,
            r#"{"a":"#,
            r#"{"a":"b"#,
            "",
        ] {
            assert_eq!(scan_object(text, KEYS), None, "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(scan_object(&deep, KEYS), None);
    }

    #[test]
    fn finds_quotes_backslashes_and_control_bytes_at_every_position() {
        for len in 0..80 {
            for at in 0..len {
                for c in [b'"', b'\\', 0, 0x1f] {
                    let mut text = vec![b'a'; len];
                    text[at] = c;
                    text[len - 1] = if at + 1 < len { b'\\' } else { c };
                    assert_eq!(find_special(&text), Some(at), "{len} {at} {c}");
                }
            }
            // Bytes next to the special ones, and UTF-8, never match.
            let plain: Vec<u8> = [b'#', b'!', b'[', b']', 0x20, 0x7f, 0xe6, 0x97]
                .into_iter()
                .cycle()
                .take(len)
                .collect();
            assert_eq!(find_special(&plain), None);
        }
    }
}
