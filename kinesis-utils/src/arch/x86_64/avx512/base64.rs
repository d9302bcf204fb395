//! base64 `data` strings decoded 64 characters per step with AVX-512 VBMI.
//!
//! One pass decodes each block of 64 characters (a `vpermi2b` table lookup, two
//! multiply-adds and a byte permute) until the first byte outside base64's alphabet. For
//! canonical data that byte is the padding or the closing quote, so the last block is
//! finished in registers too. Anything else (no padding where it is due, stray bytes,
//! escapes) is left to the portable decoder from the block where it appears.

use super::memory::{append, below, load, load_prefix};
use crate::arch::all;
use std::arch::x86_64::*;

/// Each ASCII byte's base64 value, `0x80` for bytes outside the alphabet (the padding `=`
/// and the closing quote among them), in two halves for `vpermi2b`.
const fn table(half: usize) -> [u8; 64] {
    let mut t = [0x80u8; 64];
    let mut i = 0;
    while i < 64 {
        let c = (half * 64 + i) as u8;
        t[i] = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => 0x80,
        };
        i += 1;
    }
    t
}
static LOW: [u8; 64] = table(0);
static HIGH: [u8; 64] = table(1);

/// Where each output byte comes from after the multiply-adds: the three low bytes of every
/// 32-bit lane, most significant first, packed into 48 bytes.
static PACK: [u8; 64] = {
    let mut p = [0u8; 64];
    let mut i = 0;
    while i < 16 {
        p[3 * i] = (4 * i + 2) as u8;
        p[3 * i + 1] = (4 * i + 1) as u8;
        p[3 * i + 2] = (4 * i) as u8;
        i += 1;
    }
    p
};

/// Base64 values of 64 characters, and the bytes that are not base64 (as a bit mask).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn translate(input: __m512i, low: __m512i, high: __m512i) -> (__m512i, u64) {
    // The low seven bits pick the table entry; bytes of 0x80 and over are refused by their
    // own high bit.
    let values = _mm512_permutex2var_epi8(low, input, high);
    (values, _mm512_movepi8_mask(_mm512_or_si512(values, input)))
}

/// Sixteen groups of four 6-bit values to their 48 bytes (at the start of the vector).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn pack(values: __m512i, order: __m512i) -> __m512i {
    let pairs = _mm512_maddubs_epi16(values, _mm512_set1_epi32(0x0140_0140));
    let groups = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x0001_1000));
    _mm512_permutexvar_epi8(order, groups)
}

/// `arch::decode_base64_string` on AVX-512 VBMI.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) fn decode_json_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    let (low, high, order) = (load(&LOW), load(&HIGH), load(&PACK));
    let mut pos = 0;
    while let Some(block) = src.get(pos..pos + 64).and_then(|b| b.first_chunk::<64>()) {
        let (values, bad) = translate(load(block), low, high);
        if bad != 0 {
            break;
        }
        append(out, pack(values, order), 48);
        pos += 64;
    }
    // The block that ends the string: `p` base64 characters, then (for canonical data) the
    // padding that completes the last group of four, then the quote.
    let rest = src.get(pos..).unwrap_or_default();
    let (values, bad) = translate(load_prefix(rest), low, high);
    let p = (bad | !below(rest.len())).trailing_zeros() as usize;
    let quote = match rest.get(p..).unwrap_or_default() {
        [b'"', ..] if p.is_multiple_of(4) => Some(p),
        [b'=', b'"', ..] if p % 4 == 3 => Some(p + 1),
        [b'=', b'=', b'"', ..] if p % 4 == 2 => Some(p + 2),
        _ => None,
    };
    if let Some(quote) = quote {
        let bytes = pack(_mm512_maskz_mov_epi8(below(p), values), order);
        let n = p / 4 * 3 + [0, 0, 1, 2][p % 4];
        // The bits the padding leaves over must be zero (the byte after the last one).
        if _mm512_mask_test_epi8_mask(below(n + 1) & !below(n), bytes, bytes) == 0 {
            append(out, bytes, n);
            return Some(pos + quote);
        }
    }
    all::base64::finish(src, pos, out, start)
}
