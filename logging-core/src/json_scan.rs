//! A fast path for [`crate::LogRecord`] parsing: validate a JSON object and find the text of
//! three top-level fields.
//!
//! serde_json handles every byte of a payload through its general machinery; log lines are
//! mostly long strings, which a [`Cursor`] crosses eight bytes at a time (then `memchr2`). It
//! accepts a subset of JSON, already known to be UTF-8: an object root, keys without escapes,
//! string escapes other than `\u`, bounded nesting ([`Escaped`]). On anything else it
//! gives up (`None`) and the caller parses with serde_json, which accepts all of JSON and
//! reports errors. Where it succeeds, serde_json would give the same fields; a differential
//! proptest and the `log_record` fuzz target hold it to that.

use kinesis_utils::json_cursor::{Cursor, Escaped, starts_with};

/// The JSON text of each wanted field's value (last occurrence wins, as in serde_json).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub values: [Option<&'a str>; 3],
    /// Whether the text has a raw line break (between tokens: strings cannot hold one).
    pub line_break: bool,
}

/// The key of each field position of the lines scanned before, for one set of wanted keys:
/// a producer writes every line with the same keys in the same order, so the next line's key
/// at a position is usually recognised by one comparison of its bytes.
#[derive(Debug, Default)]
pub(crate) struct KeyMemo {
    /// Per position: the key token as it appeared (opening quote through the colon), the
    /// slot of the wanted key it names, and whether the token holds a line break.
    fields: Vec<(Vec<u8>, Option<usize>, bool)>,
}

/// Memos remember this many field positions; later fields are scanned as usual.
const MEMO_FIELDS: usize = 16;

/// Scans `text` (UTF-8) as a JSON object, returning the value text of each of `keys`; a key
/// that equals several of them fills the first. `memo` must only ever be used with the same
/// `keys`.
pub(crate) fn scan_object<'a>(
    text: &'a str,
    keys: [&str; 3],
    mut memo: Option<&mut KeyMemo>,
) -> Option<Fields<'a>> {
    let mut c = Cursor::new(text.as_bytes());
    c.expect(b'{')?;
    let mut fields = Fields::default();
    if !c.eat(b'}') {
        for position in 0usize.. {
            c.skip_whitespace();
            // The same token bytes are the same key, so the same slot: what a scan would find.
            let remembered = memo
                .as_deref()
                .and_then(|m| m.fields.get(position))
                .filter(|(token, ..)| starts_with(c.rest(), token))
                .map(|(token, slot, line_break)| (token.len(), *slot, *line_break));
            let slot = match remembered {
                Some((len, slot, line_break)) => {
                    c.advance(len);
                    if line_break {
                        c.note_line_break();
                    }
                    slot
                }
                None => {
                    let start = c.position();
                    let key = c.key(Escaped)?;
                    c.expect(b':')?;
                    // The first matching name only, as the serde path decides (names may
                    // coincide).
                    let slot = keys.iter().position(|want| same(key, want.as_bytes()));
                    if let Some(m) = memo.as_deref_mut()
                        && position < MEMO_FIELDS
                    {
                        m.remember(position, c.since(start), slot);
                    }
                    slot
                }
            };
            c.skip_whitespace();
            let start = c.position();
            c.skip_value(Escaped, 1)?;
            if let Some(slot) = slot {
                fields.values[slot] = Some(text.get(start..c.position())?);
            }
            if !c.eat(b',') {
                c.expect(b'}')?;
                break;
            }
        }
    }
    if !c.at_end() {
        return None;
    }
    fields.line_break = c.saw_line_break();
    Some(fields)
}

impl KeyMemo {
    fn remember(&mut self, position: usize, token: &[u8], slot: Option<usize>) {
        if self.fields.len() < position {
            // Positions before this one were not remembered (their line gave up early).
            return;
        }
        let line_break = memchr::memchr2(b'\n', b'\r', token).is_some();
        if let Some(field) = self.fields.get_mut(position) {
            field.0.clear();
            field.0.extend_from_slice(token);
            field.1 = slot;
            field.2 = line_break;
        } else {
            self.fields.push((token.to_vec(), slot, line_break));
        }
    }
}

/// Key equality inline (keys are short) instead of a `memcmp` call per key.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 3] = ["log_type", "log_id", "time"];

    #[test]
    fn line_breaks_are_seen_in_remembered_keys_too() {
        let mut memo = KeyMemo::default();
        let compact = r#"{"log_type":"a","m":"x"}"#;
        // The only line break is between a key and its colon: inside the token a memo keeps.
        let broken = "{\"log_type\"\r:\"a\",\"m\":\"x\"}";
        let line_break =
            |text, memo: &mut KeyMemo| scan_object(text, KEYS, Some(memo)).map(|f| f.line_break);
        assert_eq!(line_break(compact, &mut memo), Some(false));
        assert_eq!(line_break(broken, &mut memo), Some(true));
        assert_eq!(
            line_break(broken, &mut memo),
            Some(true),
            "through the memo"
        );
        assert_eq!(line_break(compact, &mut memo), Some(false));
        let pretty = "{\n  \"log_type\": \"a\"\n}\n";
        assert_eq!(
            scan_object(pretty, KEYS, None).map(|f| f.line_break),
            Some(true)
        );
    }

    #[test]
    fn finds_value_text_of_top_level_fields_only() {
        // A raw tab inside a string is a control character: serde_json must judge that line.
        assert_eq!(scan_object("{\"m\":\"a\tb\"}", KEYS, None), None);
        let f = scan_object(
            r#" { "x" : {"log_type":"inner"}, "log_type" : "a\"b\\n" , "log_id":-1.5e+3,
               "time":[1,{"a":null}], "m":"日本\t"} "#,
            KEYS,
            None,
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
        let f = scan_object(r#"{"log_type":"a","log_type":"b"}"#, KEYS, None).unwrap();
        assert_eq!(f.values[0], Some(r#""b""#));
        let f = scan_object(r#"{"t":"a","x":"b"}"#, ["t", "x", "x"], None).unwrap();
        assert_eq!(f.values, [Some(r#""a""#), Some(r#""b""#), None]);
        assert_eq!(scan_object("{}", KEYS, None).unwrap().values, [None; 3]);
    }

    #[test]
    fn a_memo_recognises_the_same_keys_and_nothing_else() {
        fn scan<'a>(memo: &mut KeyMemo, line: &'a str) -> Option<[Option<&'a str>; 3]> {
            scan_object(line, KEYS, Some(memo)).map(|f| f.values)
        }
        let mut memo = KeyMemo::default();
        assert_eq!(
            scan(&mut memo, r#"{"log_type":"a", "x":1,"time":"t"}"#),
            Some([Some(r#""a""#), None, Some(r#""t""#)])
        );
        assert_eq!(memo.fields.len(), 3);
        // Same layout, other values: found through the memo.
        assert_eq!(
            scan(&mut memo, r#"{"log_type":"b", "x":[2],"time":3}"#),
            Some([Some(r#""b""#), None, Some("3")])
        );
        // A key that only starts like the remembered one, or lacks its colon, is scanned.
        assert_eq!(
            scan(&mut memo, r#"{"log_type" : "c","x":1}"#).map(|v| v[0]),
            Some(Some(r#""c""#))
        );
        assert_eq!(scan(&mut memo, r#"{"log_typ":"c"}"#), Some([None; 3]));
        assert_eq!(scan(&mut memo, r#"{"log_type"x"c"}"#), None);
        assert_eq!(scan(&mut memo, r#"{"log_type""c"}"#), None);
        // Other keys at a remembered position take it over.
        assert_eq!(
            scan(&mut memo, r#"{"time":"u","log_id":"i"}"#),
            Some([None, Some(r#""i""#), Some(r#""u""#)])
        );
        assert_eq!(
            scan(&mut memo, r#"{"time":"v","log_id":"j"}"#),
            Some([None, Some(r#""j""#), Some(r#""v""#)])
        );
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
            assert_eq!(scan_object(text, KEYS, None), None, "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(scan_object(&deep, KEYS, None), None);
    }
}
