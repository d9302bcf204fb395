//! JSON strings unescaped 64 bytes per step with AVX-512 VBMI2: the escaped bytes are
//! translated in place by a table and the backslashes squeezed out with one byte compress.
//!
//! A block with two backslashes side by side (an escaped backslash, whose pairing needs the
//! run's parity) goes back to the portable loop, which goes on from there; so does the end
//! of a text without a closing quote.

use super::memory::{append, below, load, load_prefix};
use crate::arch::all::unescape::{StringContent, find_quote_or_backslash, resume};
use crate::json_escape::escaped_byte;
use std::arch::x86_64::*;

/// What each escaped byte stands for, zero for the bytes that are no such escape; in two
/// halves for `vpermi2b`.
const fn escapes(half: usize) -> [u8; 64] {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = match escaped_byte((half * 64 + i) as u8) {
            Some(b) => b,
            None => 0,
        };
        i += 1;
    }
    t
}
static ESCAPES_LOW: [u8; 64] = escapes(0);
static ESCAPES_HIGH: [u8; 64] = escapes(1);

/// Where the vector loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// At the closing quote, at this position; everything before it is unescaped.
    Closed(usize),
    /// Everything before this position is unescaped; the portable loop goes on from here.
    Stopped(usize),
    /// An escape JSON strings may not hold here (`\u`, or no escape at all).
    Invalid,
}

/// `arch::unescape_string` on AVX-512 VBMI2.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2")]
pub(super) fn unescape_string<'a>(
    s: &'a [u8],
    arena: &mut Vec<u8>,
) -> Option<(StringContent<'a>, usize)> {
    let at = find_quote_or_backslash(s, 0)?;
    if s.get(at) == Some(&b'"') {
        return Some((StringContent::Borrowed(s.get(..at)?), at + 1));
    }
    let start = arena.len();
    match blocks(s, arena) {
        Progress::Closed(end) => Some((StringContent::Unescaped(start..arena.len()), end + 1)),
        Progress::Invalid => None,
        Progress::Stopped(0) => resume(s, arena, start, 0, at),
        Progress::Stopped(piece) => {
            let at = find_quote_or_backslash(s, piece)?;
            resume(s, arena, start, piece, at)
        }
    }
}

/// Unescapes the start of `s` onto `out`, 64 bytes per step, as far as it can.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2")]
fn blocks(s: &[u8], out: &mut Vec<u8>) -> Progress {
    let quote = _mm512_set1_epi8(b'"' as i8);
    let backslash = _mm512_set1_epi8(b'\\' as i8);
    let (low, high) = (load(&ESCAPES_LOW), load(&ESCAPES_HIGH));
    let mut pos = 0;
    loop {
        let rest = s.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Progress::Stopped(pos);
        }
        let valid = below(rest.len());
        let v = load_prefix(rest);
        let slashes = _mm512_cmpeq_epi8_mask(v, backslash) & valid;
        if slashes & (slashes << 1) != 0 {
            return Progress::Stopped(pos);
        }
        // No two backslashes touch, so each escapes the byte after it.
        let escaped = slashes << 1;
        let closing = _mm512_cmpeq_epi8_mask(v, quote) & valid & !escaped;
        let end = if closing != 0 {
            closing.trailing_zeros() as usize
        } else {
            // A backslash in the last byte escapes a byte of the next step: leave it to it.
            let n = rest.len().min(64);
            n - usize::from(slashes & (1u64 << (n - 1)) != 0)
        };
        if end == 0 {
            return if closing != 0 {
                Progress::Closed(pos)
            } else {
                Progress::Stopped(pos)
            };
        }
        let region = below(end);
        let escaped = escaped & region;
        let meaning = _mm512_permutex2var_epi8(low, v, high);
        let bad = _mm512_cmpeq_epi8_mask(meaning, _mm512_setzero_si512()) | _mm512_movepi8_mask(v);
        if escaped & bad != 0 {
            return Progress::Invalid;
        }
        let keep = region & !slashes;
        let bytes = _mm512_maskz_compress_epi8(keep, _mm512_mask_mov_epi8(v, escaped, meaning));
        append(out, bytes, keep.count_ones() as usize);
        pos += end;
        if closing != 0 {
            return Progress::Closed(pos);
        }
    }
}
