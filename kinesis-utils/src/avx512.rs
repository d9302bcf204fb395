//! The memory accesses of the crate's AVX-512 code paths, in one place: they are its only
//! `unsafe` operations besides the run-time dispatch into `#[target_feature]` functions.
//! Everything else in those paths is register arithmetic, which is safe to call inside them.

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
