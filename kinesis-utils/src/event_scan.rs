//! A fast path for reading Lambda Kinesis event JSON in its usual shape.
//!
//! serde_json spends most of a batch's decoding time scanning and UTF-8-checking the long
//! base64 `data` strings. This scanner finds a `data` string's end with `memchr` and lets the
//! base64 decoder be its validator (only base64's alphabet can then be inside). It accepts a
//! strict subset of JSON: strings without escapes, control or non-ASCII bytes, fields at most
//! once, nesting at most [`MAX_DEPTH`] deep. On anything else it gives up (`None`) without
//! reporting why, and the caller starts again with serde_json, which accepts all of JSON and
//! reports errors. Whatever this scanner accepts, serde_json accepts with the same result; the
//! differential tests and the `event_json` fuzz target check exactly that.

/// Where the scanner gives up, rather than recurse further.
const MAX_DEPTH: u32 = 64;

/// What one record carries, borrowed from the event.
pub(crate) struct ScannedRecord<'a> {
    pub event_id: Option<&'a [u8]>,
    pub sequence_number: &'a [u8],
    pub partition_key: &'a [u8],
    /// `approximateArrivalTimestamp`'s number text, when given and not null.
    pub arrival: Option<&'a [u8]>,
    /// The `data` string's contents, not yet known to be base64.
    pub data: &'a [u8],
}

/// Scans `event`, handing each record to `sink` in order. `sink` returns `None` to give up
/// (for example on data that is not base64, so that serde_json's path reports it).
pub(crate) fn scan<'a>(
    event: &'a [u8],
    sink: &mut impl FnMut(ScannedRecord<'a>) -> Option<()>,
) -> Option<()> {
    let mut s = Scanner {
        b: event,
        i: 0,
        seen: [&[]; 16],
        seen_keys: [&[]; 16],
    };
    s.expect(b'{')?;
    let mut seen = false;
    if !s.eat(b'}') {
        loop {
            let key = s.string()?;
            s.expect(b':')?;
            if key == b"Records" && !seen {
                seen = true;
                s.records(sink)?;
            } else {
                s.skip_value(1)?;
            }
            if !s.eat(b',') {
                s.expect(b'}')?;
                break;
            }
        }
    }
    s.ws();
    (seen && s.i == s.b.len()).then_some(())
}

/// Position of the first `"`. Keys and most values are short, where eight bytes at a time
/// beat memchr's set-up; long strings (base64 data) go to memchr.
fn find_quote(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    let mut offset = 0;
    while offset < 32 {
        let Some(chunk) = text.get(offset..offset + 8) else {
            let tail = text.get(offset..)?;
            return Some(offset + tail.iter().position(|&c| c == b'"')?);
        };
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ QUOTES;
        // The lowest high bit set marks the first zero byte of `x` exactly.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    Some(offset + memchr::memchr(b'"', text.get(offset..)?)?)
}

/// `text.starts_with(prefix)` for the short tokens the scanner remembers, eight bytes at a time
/// inline rather than through a `memcmp` call.
fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    let Some(head) = text.get(..prefix.len()) else {
        return false;
    };
    let (a, b) = (head.chunks_exact(8), prefix.chunks_exact(8));
    let (ra, rb) = (a.remainder(), b.remainder());
    let word = |c: &[u8]| {
        let mut w = [0; 8];
        w.copy_from_slice(c);
        u64::from_ne_bytes(w)
    };
    a.zip(b).all(|(x, y)| word(x) == word(y)) && ra.iter().zip(rb).all(|(x, y)| x == y)
}

/// Sequence number, partition key, arrival time and data of a record's `kinesis` object.
type KinesisFields<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, &'a [u8]);

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// The last string skipped at each field position of a record (0..8) and of its `kinesis`
    /// object (8..16), quotes included. Records of one batch mostly repeat these values
    /// (`eventSource`, `awsRegion`, ARNs): the same bytes again are the same valid string.
    seen: [&'a [u8]; 16],
    /// The same for keys, quotes included.
    seen_keys: [&'a [u8]; 16],
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace and consumes `c` if it comes next.
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

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// A string of ASCII without escapes or control characters, so also UTF-8.
    fn string(&mut self) -> Option<&'a [u8]> {
        let text = self.raw_string()?;
        // A branch-free fold, so that it vectorises.
        let bad = text.iter().fold(false, |bad, &c| {
            bad | !(0x20..0x80).contains(&c) | (c == b'\\')
        });
        (!bad).then_some(text)
    }

    /// A string's raw contents up to the first quote; the caller validates them.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let len = find_quote(rest)?;
        self.i = start + len + 1;
        rest.get(..len)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A number as JSON's grammar has it.
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

    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
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

    /// The key of the field at `slot` (see `seen_keys`).
    fn field_key(&mut self, slot: usize) -> Option<&'a [u8]> {
        self.ws();
        let cached = self.seen_keys.get(slot).copied().unwrap_or_default();
        if let Some(key) = cached.get(1..cached.len().saturating_sub(1))
            && self.b.get(self.i..).is_some_and(|r| starts_with(r, cached))
        {
            self.i += cached.len();
            return Some(key);
        }
        let start = self.i;
        let key = self.string()?;
        if let Some(seen) = self.seen_keys.get_mut(slot) {
            *seen = self.b.get(start..self.i).unwrap_or_default();
        }
        Some(key)
    }

    /// Skips the value of the field at `slot` (see `seen`).
    fn skip_field_value(&mut self, slot: usize, depth: u32) -> Option<()> {
        self.ws();
        let cached = self.seen.get(slot).copied().unwrap_or_default();
        if !cached.is_empty() && self.b.get(self.i..).is_some_and(|r| starts_with(r, cached)) {
            self.i += cached.len();
            return Some(());
        }
        let start = self.i;
        let is_string = self.b.get(start) == Some(&b'"');
        self.skip_value(depth)?;
        if is_string && let Some(seen) = self.seen.get_mut(slot) {
            *seen = self.b.get(start..self.i).unwrap_or_default();
        }
        Some(())
    }

    fn records(&mut self, sink: &mut impl FnMut(ScannedRecord<'a>) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            sink(self.record()?)?;
            if !self.eat(b',') {
                return self.expect(b']');
            }
        }
    }

    fn record(&mut self) -> Option<ScannedRecord<'a>> {
        self.expect(b'{')?;
        let mut event_id: Option<Option<&'a [u8]>> = None;
        let mut kinesis = None;
        if !self.eat(b'}') {
            for field in 0usize.. {
                let key = self.field_key(field)?;
                self.expect(b':')?;
                match key {
                    b"eventID" if event_id.is_none() => {
                        event_id = Some(if self.peek()? == b'n' {
                            self.literal(b"null")?;
                            None
                        } else {
                            Some(self.string()?)
                        });
                    }
                    b"kinesis" if kinesis.is_none() => kinesis = Some(self.kinesis()?),
                    // serde refuses a field given twice; let it say so.
                    b"eventID" | b"kinesis" => return None,
                    _ => self.skip_field_value(field, 2)?,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        let (sequence_number, partition_key, arrival, data) = kinesis?;
        Some(ScannedRecord {
            event_id: event_id.flatten(),
            sequence_number,
            partition_key,
            arrival,
            data,
        })
    }

    /// A `null` or a number's text; anything else gives up.
    fn null_or_number(&mut self) -> Option<Option<&'a [u8]>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let start = self.i;
        self.number()?;
        Some(Some(self.b.get(start..self.i)?))
    }

    fn kinesis(&mut self) -> Option<KinesisFields<'a>> {
        self.expect(b'{')?;
        let (mut data, mut seq, mut pk, mut arrival) = (None, None, None, None);
        if !self.eat(b'}') {
            for field in 8usize.. {
                let key = self.field_key(field)?;
                self.expect(b':')?;
                match key {
                    b"data" if data.is_none() => data = Some(self.raw_string()?),
                    b"sequenceNumber" if seq.is_none() => seq = Some(self.string()?),
                    b"partitionKey" if pk.is_none() => pk = Some(self.string()?),
                    b"approximateArrivalTimestamp" if arrival.is_none() => {
                        arrival = Some(self.null_or_number()?);
                    }
                    b"data"
                    | b"sequenceNumber"
                    | b"partitionKey"
                    | b"approximateArrivalTimestamp" => {
                        return None;
                    }
                    _ => self.skip_field_value(field, 3)?,
                }
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        Some((seq?, pk.unwrap_or(b""), arrival.flatten(), data?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = (Option<String>, String, String, String);

    fn records(event: &str) -> Option<Vec<Fields>> {
        let mut out = Vec::new();
        scan(event.as_bytes(), &mut |r| {
            out.push((
                match r.event_id {
                    Some(e) => Some(String::from_utf8(e.to_vec()).ok()?),
                    None => None,
                },
                String::from_utf8(r.sequence_number.to_vec()).ok()?,
                String::from_utf8(r.partition_key.to_vec()).ok()?,
                String::from_utf8(r.data.to_vec()).ok()?,
            ));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn reads_the_usual_shape_with_extra_fields_in_any_order() {
        let got = records(
            r#" { "Records" : [ {"kinesis":{"approximateArrivalTimestamp":1.5e9,"data":"QQ==",
              "kinesisSchemaVersion":"1.0","partitionKey":"p","sequenceNumber":"7"},
              "eventID":"shardId-1:7","x":[true,false,null,{"y":[-0.5E+2]}]},
              {"eventID":null,"kinesis":{"sequenceNumber":"8","data":""}} ], "z": {} } "#,
        );
        assert_eq!(
            got,
            Some(vec![
                (
                    Some("shardId-1:7".into()),
                    "7".into(),
                    "p".into(),
                    "QQ==".into()
                ),
                (None, "8".into(), "".into(), "".into()),
            ])
        );
    }

    #[test]
    fn finds_the_first_quote_at_every_position() {
        for len in 0..100 {
            for at in 0..len {
                let mut text = vec![b'a'; len];
                text[at] = b'"';
                if at + 1 < len {
                    text[len - 1] = b'"';
                }
                assert_eq!(find_quote(&text), Some(at), "{len} {at}");
            }
            assert_eq!(find_quote(&vec![0x22 ^ 0x01; len]), None);
        }
        // Bytes that differ from '"' by a borrow must not match.
        assert_eq!(find_quote(b"\x23\x22"), Some(1));
        assert_eq!(find_quote(b"#!\"#"), Some(2));
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
    fn gives_up_on_what_serde_must_judge() {
        for event in [
            r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"sequenceNumber":"\u0031","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"sequenceNumber":"日本","data":""}}]}"#,
            r#"{"Records":[{"kinesis":{"data":""}}]}"#,
            r#"{"Records":[{}]}"#,
            r#"{"Records":[]} x"#,
            r#"{"Records":[],}"#,
            r#"{"Records":[1]}"#,
            r#"{"Records":null}"#,
            r#"{"Other":[]}"#,
            r#"{"Records":[], "n": 01}"#,
            r#"{"Records":[], "n": 1.}"#,
            r#"{"Records":[], "n": tru}"#,
            r#"{"Records":[], "n": "a	b"}"#,
            r#"{"Records":["#,
        ] {
            assert_eq!(records(event), None, "{event}");
        }
        let deep = format!(
            "{{\"Records\":[],\"d\":{}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(records(&deep), None);
        assert_eq!(records(r#"{"Records":[],"Records":1}"#), Some(vec![]));
    }
}
