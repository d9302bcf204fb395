//! MD5 of sixteen messages at once in AVX-512 registers. Besides more lanes per register
//! than the portable backend's four, AVX-512 has a rotate and a three-input logic
//! instruction, so one MD5 step is six instructions for sixteen lanes instead of about ten
//! for four. The lanes are scheduled by the portable backend's `Scheduler`.

use super::memory::load;
use crate::arch::all::md5::{INIT, Scheduler};
use std::arch::x86_64::*;

const N: usize = 16;

/// `a = b + rotl(a + fun(b, c, d) + m + k, s)` in every lane; `fun` is given by its
/// `vpternlogd` truth table.
macro_rules! step {
    ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:literal, $s:literal) => {
        let t = _mm512_add_epi32(
            _mm512_add_epi32($a, _mm512_ternarylogic_epi32::<$fun>($b, $c, $d)),
            _mm512_add_epi32($m, _mm512_set1_epi32($k as u32 as i32)),
        );
        $a = _mm512_add_epi32($b, _mm512_rol_epi32::<$s>(t));
    };
}

// The four round functions as truth tables over (x, y, z).
const F: i32 = 0xca; // x ? y : z
const G: i32 = 0xe4; // z ? x : y
const H: i32 = 0x96; // x ^ y ^ z
const I: i32 = 0x39; // y ^ (x | !z)

#[target_feature(enable = "avx512f")]
fn compress(state: &mut [__m512i; 4], m: &[__m512i; 16]) {
    let [mut a, mut b, mut c, mut d] = *state;
    step!(F, a, b, c, d, m[0], 0xd76aa478, 7);
    step!(F, d, a, b, c, m[1], 0xe8c7b756, 12);
    step!(F, c, d, a, b, m[2], 0x242070db, 17);
    step!(F, b, c, d, a, m[3], 0xc1bdceee, 22);
    step!(F, a, b, c, d, m[4], 0xf57c0faf, 7);
    step!(F, d, a, b, c, m[5], 0x4787c62a, 12);
    step!(F, c, d, a, b, m[6], 0xa8304613, 17);
    step!(F, b, c, d, a, m[7], 0xfd469501, 22);
    step!(F, a, b, c, d, m[8], 0x698098d8, 7);
    step!(F, d, a, b, c, m[9], 0x8b44f7af, 12);
    step!(F, c, d, a, b, m[10], 0xffff5bb1, 17);
    step!(F, b, c, d, a, m[11], 0x895cd7be, 22);
    step!(F, a, b, c, d, m[12], 0x6b901122, 7);
    step!(F, d, a, b, c, m[13], 0xfd987193, 12);
    step!(F, c, d, a, b, m[14], 0xa679438e, 17);
    step!(F, b, c, d, a, m[15], 0x49b40821, 22);
    step!(G, a, b, c, d, m[1], 0xf61e2562, 5);
    step!(G, d, a, b, c, m[6], 0xc040b340, 9);
    step!(G, c, d, a, b, m[11], 0x265e5a51, 14);
    step!(G, b, c, d, a, m[0], 0xe9b6c7aa, 20);
    step!(G, a, b, c, d, m[5], 0xd62f105d, 5);
    step!(G, d, a, b, c, m[10], 0x02441453, 9);
    step!(G, c, d, a, b, m[15], 0xd8a1e681, 14);
    step!(G, b, c, d, a, m[4], 0xe7d3fbc8, 20);
    step!(G, a, b, c, d, m[9], 0x21e1cde6, 5);
    step!(G, d, a, b, c, m[14], 0xc33707d6, 9);
    step!(G, c, d, a, b, m[3], 0xf4d50d87, 14);
    step!(G, b, c, d, a, m[8], 0x455a14ed, 20);
    step!(G, a, b, c, d, m[13], 0xa9e3e905, 5);
    step!(G, d, a, b, c, m[2], 0xfcefa3f8, 9);
    step!(G, c, d, a, b, m[7], 0x676f02d9, 14);
    step!(G, b, c, d, a, m[12], 0x8d2a4c8a, 20);
    step!(H, a, b, c, d, m[5], 0xfffa3942, 4);
    step!(H, d, a, b, c, m[8], 0x8771f681, 11);
    step!(H, c, d, a, b, m[11], 0x6d9d6122, 16);
    step!(H, b, c, d, a, m[14], 0xfde5380c, 23);
    step!(H, a, b, c, d, m[1], 0xa4beea44, 4);
    step!(H, d, a, b, c, m[4], 0x4bdecfa9, 11);
    step!(H, c, d, a, b, m[7], 0xf6bb4b60, 16);
    step!(H, b, c, d, a, m[10], 0xbebfbc70, 23);
    step!(H, a, b, c, d, m[13], 0x289b7ec6, 4);
    step!(H, d, a, b, c, m[0], 0xeaa127fa, 11);
    step!(H, c, d, a, b, m[3], 0xd4ef3085, 16);
    step!(H, b, c, d, a, m[6], 0x04881d05, 23);
    step!(H, a, b, c, d, m[9], 0xd9d4d039, 4);
    step!(H, d, a, b, c, m[12], 0xe6db99e5, 11);
    step!(H, c, d, a, b, m[15], 0x1fa27cf8, 16);
    step!(H, b, c, d, a, m[2], 0xc4ac5665, 23);
    step!(I, a, b, c, d, m[0], 0xf4292244, 6);
    step!(I, d, a, b, c, m[7], 0x432aff97, 10);
    step!(I, c, d, a, b, m[14], 0xab9423a7, 15);
    step!(I, b, c, d, a, m[5], 0xfc93a039, 21);
    step!(I, a, b, c, d, m[12], 0x655b59c3, 6);
    step!(I, d, a, b, c, m[3], 0x8f0ccc92, 10);
    step!(I, c, d, a, b, m[10], 0xffeff47d, 15);
    step!(I, b, c, d, a, m[1], 0x85845dd1, 21);
    step!(I, a, b, c, d, m[8], 0x6fa87e4f, 6);
    step!(I, d, a, b, c, m[15], 0xfe2ce6e0, 10);
    step!(I, c, d, a, b, m[6], 0xa3014314, 15);
    step!(I, b, c, d, a, m[13], 0x4e0811a1, 21);
    step!(I, a, b, c, d, m[4], 0xf7537e82, 6);
    step!(I, d, a, b, c, m[11], 0xbd3af235, 10);
    step!(I, c, d, a, b, m[2], 0x2ad7d2bb, 15);
    step!(I, b, c, d, a, m[9], 0xeb86d391, 21);
    for (s, x) in state.iter_mut().zip([a, b, c, d]) {
        *s = _mm512_add_epi32(*s, x);
    }
}

/// Rows (one lane's block each) to columns (one message word of every lane each), in
/// registers: 32-bit and 64-bit interleaves within 128-bit lanes, then a 4x4 transpose
/// of the 128-bit lanes.
#[target_feature(enable = "avx512f")]
fn transpose(r: [__m512i; N]) -> [__m512i; 16] {
    let t: [__m512i; N] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i & 1 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    // u[4i + j], 128-bit lane k: word 4k + j of rows 4i..4i + 4.
    let u: [__m512i; N] = std::array::from_fn(|n| {
        let (i, j) = (n / 4, n % 4);
        let (a, b) = (t[4 * i + j / 2], t[4 * i + j / 2 + 2]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    let mut out = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let (u0, u1, u2, u3) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let v0 = _mm512_shuffle_i32x4::<0x44>(u0, u1);
        let v1 = _mm512_shuffle_i32x4::<0xee>(u0, u1);
        let v2 = _mm512_shuffle_i32x4::<0x44>(u2, u3);
        let v3 = _mm512_shuffle_i32x4::<0xee>(u2, u3);
        out[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        out[4 + j] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
        out[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        out[12 + j] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
    }
    out
}

/// Lane `l` of `v`.
#[target_feature(enable = "avx512f")]
fn lane(v: __m512i, l: usize) -> u32 {
    _mm512_cvtsi512_si32(_mm512_permutexvar_epi32(_mm512_set1_epi32(l as i32), v)) as u32
}

/// `arch::md5_digests` on sixteen AVX-512 lanes.
#[target_feature(enable = "avx512f")]
pub(super) fn digests(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    let mut lanes = Scheduler::<N>::new(messages);
    let init = INIT.map(|x| _mm512_set1_epi32(x as i32));
    let mut state = init;
    while let Some(fresh) = lanes.refill() {
        for (s, i) in state.iter_mut().zip(init) {
            *s = _mm512_mask_mov_epi32(*s, fresh as u16, i);
        }
        let m = transpose(std::array::from_fn(|l| load(lanes.block(l))));
        compress(&mut state, &m);
        let ended = lanes.ending();
        for l in (0..N).filter(|l| ended & (1 << l) != 0) {
            let mut digest = [0u8; 16];
            for (w, s) in state.iter().enumerate() {
                digest[w * 4..w * 4 + 4].copy_from_slice(&lane(*s, l).to_le_bytes());
            }
            lanes.finish(l, digest);
        }
        lanes.advance();
    }
    lanes.out
}
