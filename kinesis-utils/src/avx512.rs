//! The memory accesses of the crate's AVX-512 code paths, in one place: they are its only
//! `unsafe` operations besides the run-time dispatch into `#[target_feature]` functions.
//! Everything else in those paths is register arithmetic, which is safe to call inside them.

use crate::cwl_scan::Unescaped;
use std::arch::x86_64::*;

/// Whether the CPU has AVX-512F (the foundation every AVX-512 path needs).
pub(crate) fn has_f() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether the CPU has AVX-512F and BW (the byte-wise masks and compares). Each is detected
/// on its own: CPUID reports them separately, and a masked virtual CPU could report one alone.
pub(crate) fn has_bw() -> bool {
    has_f() && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Whether the CPU has AVX-512F, BW and VBMI (byte permutes across the whole vector).
pub(crate) fn has_vbmi() -> bool {
    has_bw() && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// Whether the CPU has AVX-512F, BW, VBMI and VBMI2 (byte compress).
pub(crate) fn has_vbmi2() -> bool {
    has_vbmi() && std::arch::is_x86_feature_detected!("avx512vbmi2")
}

/// The lowest `n` bits (all 64 from `n` = 64 on).
pub(crate) fn below(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// 64 bytes as one vector, the first in lane 0.
#[target_feature(enable = "avx512f")]
pub(crate) fn load(block: &[u8; 64]) -> __m512i {
    #[allow(unsafe_code)]
    // SAFETY: the pointer is valid for reading 64 bytes (the array), the load needs no
    // alignment, and this function has AVX-512F.
    unsafe {
        _mm512_loadu_si512(block.as_ptr().cast())
    }
}

/// The first `min(bytes.len(), 64)` bytes, zeros after.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn load_prefix(bytes: &[u8]) -> __m512i {
    let mask = below(bytes.len());
    #[allow(unsafe_code)]
    // SAFETY: only the bytes whose mask bit is set are read, and those are within `bytes`;
    // a masked load suppresses faults on the others. No alignment is needed, and this
    // function has AVX-512BW.
    unsafe {
        _mm512_maskz_loadu_epi8(mask, bytes.as_ptr().cast())
    }
}

/// Appends the first `n` (at most 64) bytes of `v` to `out`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn append(out: &mut Vec<u8>, v: __m512i, n: usize) {
    let n = n.min(64);
    out.reserve(n);
    let len = out.len();
    #[allow(unsafe_code)]
    // SAFETY: `reserve` made room for `n` more bytes, and the store writes the first `n`
    // bytes only (a masked store neither writes nor faults on the others), starting at the
    // end of the initialised part; after it, `len + n` bytes are initialised.
    unsafe {
        _mm512_mask_storeu_epi8(out.as_mut_ptr().add(len).cast(), below(n), v);
        out.set_len(len + n);
    }
}

/// The first `"`, `\` or control byte in `text` (see `json_cursor::find_special`), 64 bytes
/// per step with three compares: one pass, where memchr2 and a separate control check took
/// two.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn find_special(text: &[u8]) -> Option<usize> {
    let quote = _mm512_set1_epi8(b'"' as i8);
    let backslash = _mm512_set1_epi8(b'\\' as i8);
    let space = _mm512_set1_epi8(0x20);
    let mut pos = 0;
    while let Some(rest) = text.get(pos..).filter(|r| !r.is_empty()) {
        let v = load_prefix(rest);
        let hits = (_mm512_cmpeq_epi8_mask(v, quote)
            | _mm512_cmpeq_epi8_mask(v, backslash)
            | _mm512_cmplt_epu8_mask(v, space))
            & below(rest.len());
        if hits != 0 {
            return Some(pos + hits.trailing_zeros() as usize);
        }
        pos += 64;
    }
    None
}

/// What each escaped byte stands for ([`crate::cwl_scan::escaped_byte`]), zero for the bytes
/// that are no such escape; in two halves for `vpermi2b`.
const fn escapes(half: usize) -> [u8; 64] {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = match crate::cwl_scan::escaped_byte((half * 64 + i) as u8) {
            Some(b) => b,
            None => 0,
        };
        i += 1;
    }
    t
}
static ESCAPES_LOW: [u8; 64] = escapes(0);
static ESCAPES_HIGH: [u8; 64] = escapes(1);

/// Unescapes the JSON string content at the start of `s` onto `out`, 64 bytes per step:
/// the escaped bytes are translated in place and the backslashes squeezed out with one
/// byte compress. Blocks with two backslashes side by side (an escaped backslash, whose
/// pairing needs the run's parity) are left to the caller, as is the end of `s` without a
/// closing quote.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2")]
pub(crate) fn unescape(s: &[u8], out: &mut Vec<u8>) -> Unescaped {
    let quote = _mm512_set1_epi8(b'"' as i8);
    let backslash = _mm512_set1_epi8(b'\\' as i8);
    let (low, high) = (load(&ESCAPES_LOW), load(&ESCAPES_HIGH));
    let mut pos = 0;
    loop {
        let rest = s.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Unescaped::Stopped(pos);
        }
        let valid = below(rest.len());
        let v = load_prefix(rest);
        let slashes = _mm512_cmpeq_epi8_mask(v, backslash) & valid;
        if slashes & (slashes << 1) != 0 {
            return Unescaped::Stopped(pos);
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
                Unescaped::End(pos)
            } else {
                Unescaped::Stopped(pos)
            };
        }
        let region = below(end);
        let escaped = escaped & region;
        let meaning = _mm512_permutex2var_epi8(low, v, high);
        let bad = _mm512_cmpeq_epi8_mask(meaning, _mm512_setzero_si512()) | _mm512_movepi8_mask(v);
        if escaped & bad != 0 {
            return Unescaped::Invalid;
        }
        let keep = region & !slashes;
        let bytes = _mm512_maskz_compress_epi8(keep, _mm512_mask_mov_epi8(v, escaped, meaning));
        append(out, bytes, keep.count_ones() as usize);
        pos += end;
        if closing != 0 {
            return Unescaped::End(pos);
        }
    }
}
