//! Every memory access of the AVX-512 backends: whole 64-byte blocks, masked prefixes, and
//! masked appends to a `Vec`. These and the calls into `#[target_feature]` functions (in
//! the parent module) are the backends' only `unsafe` operations; the rest is register
//! arithmetic, which is safe inside functions that have the features.

use std::arch::x86_64::*;

/// The lowest `n` bits (all 64 from `n` = 64 on).
#[inline]
pub(super) fn below(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// 64 bytes as one vector, the first in lane 0.
#[target_feature(enable = "avx512f")]
pub(super) fn load(block: &[u8; 64]) -> __m512i {
    // SAFETY: the pointer is valid for reading 64 bytes (the array), the load needs no
    // alignment, and this function has AVX-512F.
    unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
}

/// The first `min(bytes.len(), 64)` bytes, zeros after.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn load_prefix(bytes: &[u8]) -> __m512i {
    let mask = below(bytes.len());
    // SAFETY: only the bytes whose mask bit is set are read, and those are within `bytes`;
    // a masked load suppresses faults on the others. No alignment is needed, and this
    // function has AVX-512BW.
    unsafe { _mm512_maskz_loadu_epi8(mask, bytes.as_ptr().cast()) }
}

/// Appends the first `n` (at most 64) bytes of `v` to `out`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) fn append(out: &mut Vec<u8>, v: __m512i, n: usize) {
    let n = n.min(64);
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve` made room for `n` more bytes, and the store writes the first `n`
    // bytes only (a masked store neither writes nor faults on the others), starting at the
    // end of the initialised part; after it, `len + n` bytes are initialised.
    unsafe {
        _mm512_mask_storeu_epi8(out.as_mut_ptr().add(len).cast(), below(n), v);
        out.set_len(len + n);
    }
}
