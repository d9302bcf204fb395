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

use kinesis_utils::json_cursor::{Cursor, Escaped};

/// The JSON text of each wanted field's value (last occurrence wins, as in serde_json).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub values: [Option<&'a str>; 3],
}

/// Scans `text` (UTF-8) as a JSON object, returning the value text of each of `keys`; a key
/// that equals several of them fills the first.
pub(crate) fn scan_object<'a>(text: &'a str, keys: [&str; 3]) -> Option<Fields<'a>> {
    let mut c = Cursor::new(text.as_bytes());
    c.expect(b'{')?;
    let mut fields = Fields::default();
    if !c.eat(b'}') {
        loop {
            let key = c.key(Escaped)?;
            c.expect(b':')?;
            c.skip_whitespace();
            let start = c.position();
            c.skip_value(Escaped, 1)?;
            // The first matching name only, as the serde path decides (names may coincide).
            if let Some(slot) = keys.iter().position(|want| same(key, want.as_bytes())) {
                fields.values[slot] = Some(text.get(start..c.position())?);
            }
            if !c.eat(b',') {
                c.expect(b'}')?;
                break;
            }
        }
    }
    c.at_end().then_some(fields)
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
}
