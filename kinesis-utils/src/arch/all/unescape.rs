//! JSON string content read as serde_json's raw bytes read it: sixteen bytes at a time to the
//! next quote or backslash, with one copy per piece between escapes.

use std::ops::Range;

use wide::u8x16;

use crate::json_escape::escaped_byte;

/// A JSON string's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StringContent<'a> {
    /// Borrowed from the input: it had no escapes.
    Borrowed(&'a [u8]),
    /// Unescaped onto the caller's buffer, at this range.
    Unescaped(Range<usize>),
}

/// The offset of the first `"` or `\` in `s` at or after `from`.
#[inline]
pub(crate) fn find_quote_or_backslash(s: &[u8], from: usize) -> Option<usize> {
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

/// `arch::unescape_string` on the portable path.
pub(crate) fn unescape_string<'a>(
    s: &'a [u8],
    arena: &mut Vec<u8>,
) -> Option<(StringContent<'a>, usize)> {
    let at = find_quote_or_backslash(s, 0)?;
    if s.get(at) == Some(&b'"') {
        return Some((StringContent::Borrowed(s.get(..at)?), at + 1));
    }
    resume(s, arena, arena.len(), 0, at)
}

/// Unescapes `s` from `piece` on, for a caller that has unescaped `s[..piece]` onto `arena`
/// from `start`; `at` is the first quote or backslash at or after `piece`.
pub(crate) fn resume<'a>(
    s: &'a [u8],
    arena: &mut Vec<u8>,
    start: usize,
    mut piece: usize,
    mut at: usize,
) -> Option<(StringContent<'a>, usize)> {
    loop {
        arena.extend_from_slice(s.get(piece..at)?);
        if s.get(at) == Some(&b'"') {
            return Some((StringContent::Unescaped(start..arena.len()), at + 1));
        }
        arena.push(escaped_byte(*s.get(at + 1)?)?);
        piece = at + 2;
        at = find_quote_or_backslash(s, piece)?;
    }
}
