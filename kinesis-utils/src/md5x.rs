//! MD5 of many messages at once, one per SIMD lane.
//!
//! One MD5 is a chain of dependent steps, so a single digest runs far below what the CPU's
//! vector units could do; KPL decoding checks one digest per aggregated record, which made it
//! half of that decoding's time. Here messages are hashed side by side, lane `l` of each
//! vector holding message `l`'s state, and messages of any lengths are scheduled onto lanes
//! as earlier ones finish. Two back ends share the scheduling: sixteen lanes of AVX-512,
//! chosen at run time when the CPU has it (the call is `unsafe`, and the block loads are
//! `crate::avx512`'s), and eight lanes of `wide::u32x8` in safe Rust otherwise. The `md-5`
//! crate remains the reference the tests compare both against.

/// Messages hashed side by side.
const LANES: usize = 8;

type V = wide::u32x8;

#[inline(always)]
fn f(x: V, y: V, z: V) -> V {
    z ^ (x & (y ^ z))
}

#[inline(always)]
fn g(x: V, y: V, z: V) -> V {
    y ^ (z & (x ^ y))
}

#[inline(always)]
fn h(x: V, y: V, z: V) -> V {
    x ^ y ^ z
}

#[inline(always)]
fn i(x: V, y: V, z: V) -> V {
    y ^ (x | !z)
}

/// `a = b + rotl(a + fun(b, c, d) + m + k, s)` in every lane.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step(fun: fn(V, V, V) -> V, a: &mut V, b: &V, c: &V, d: &V, m: &V, k: u32, s: u32) {
    let t = *a + fun(*b, *c, *d) + *m + V::splat(k);
    *a = *b + ((t << s) | (t >> (32 - s)));
}

/// One 64-byte block per lane, given as its sixteen little-endian words.
fn compress(state: &mut [V; 4], m: &[V; 16]) {
    let [mut a, mut b, mut c, mut d] = *state;
    step(f, &mut a, &b, &c, &d, &m[0], 0xd76aa478, 7);
    step(f, &mut d, &a, &b, &c, &m[1], 0xe8c7b756, 12);
    step(f, &mut c, &d, &a, &b, &m[2], 0x242070db, 17);
    step(f, &mut b, &c, &d, &a, &m[3], 0xc1bdceee, 22);
    step(f, &mut a, &b, &c, &d, &m[4], 0xf57c0faf, 7);
    step(f, &mut d, &a, &b, &c, &m[5], 0x4787c62a, 12);
    step(f, &mut c, &d, &a, &b, &m[6], 0xa8304613, 17);
    step(f, &mut b, &c, &d, &a, &m[7], 0xfd469501, 22);
    step(f, &mut a, &b, &c, &d, &m[8], 0x698098d8, 7);
    step(f, &mut d, &a, &b, &c, &m[9], 0x8b44f7af, 12);
    step(f, &mut c, &d, &a, &b, &m[10], 0xffff5bb1, 17);
    step(f, &mut b, &c, &d, &a, &m[11], 0x895cd7be, 22);
    step(f, &mut a, &b, &c, &d, &m[12], 0x6b901122, 7);
    step(f, &mut d, &a, &b, &c, &m[13], 0xfd987193, 12);
    step(f, &mut c, &d, &a, &b, &m[14], 0xa679438e, 17);
    step(f, &mut b, &c, &d, &a, &m[15], 0x49b40821, 22);
    step(g, &mut a, &b, &c, &d, &m[1], 0xf61e2562, 5);
    step(g, &mut d, &a, &b, &c, &m[6], 0xc040b340, 9);
    step(g, &mut c, &d, &a, &b, &m[11], 0x265e5a51, 14);
    step(g, &mut b, &c, &d, &a, &m[0], 0xe9b6c7aa, 20);
    step(g, &mut a, &b, &c, &d, &m[5], 0xd62f105d, 5);
    step(g, &mut d, &a, &b, &c, &m[10], 0x02441453, 9);
    step(g, &mut c, &d, &a, &b, &m[15], 0xd8a1e681, 14);
    step(g, &mut b, &c, &d, &a, &m[4], 0xe7d3fbc8, 20);
    step(g, &mut a, &b, &c, &d, &m[9], 0x21e1cde6, 5);
    step(g, &mut d, &a, &b, &c, &m[14], 0xc33707d6, 9);
    step(g, &mut c, &d, &a, &b, &m[3], 0xf4d50d87, 14);
    step(g, &mut b, &c, &d, &a, &m[8], 0x455a14ed, 20);
    step(g, &mut a, &b, &c, &d, &m[13], 0xa9e3e905, 5);
    step(g, &mut d, &a, &b, &c, &m[2], 0xfcefa3f8, 9);
    step(g, &mut c, &d, &a, &b, &m[7], 0x676f02d9, 14);
    step(g, &mut b, &c, &d, &a, &m[12], 0x8d2a4c8a, 20);
    step(h, &mut a, &b, &c, &d, &m[5], 0xfffa3942, 4);
    step(h, &mut d, &a, &b, &c, &m[8], 0x8771f681, 11);
    step(h, &mut c, &d, &a, &b, &m[11], 0x6d9d6122, 16);
    step(h, &mut b, &c, &d, &a, &m[14], 0xfde5380c, 23);
    step(h, &mut a, &b, &c, &d, &m[1], 0xa4beea44, 4);
    step(h, &mut d, &a, &b, &c, &m[4], 0x4bdecfa9, 11);
    step(h, &mut c, &d, &a, &b, &m[7], 0xf6bb4b60, 16);
    step(h, &mut b, &c, &d, &a, &m[10], 0xbebfbc70, 23);
    step(h, &mut a, &b, &c, &d, &m[13], 0x289b7ec6, 4);
    step(h, &mut d, &a, &b, &c, &m[0], 0xeaa127fa, 11);
    step(h, &mut c, &d, &a, &b, &m[3], 0xd4ef3085, 16);
    step(h, &mut b, &c, &d, &a, &m[6], 0x04881d05, 23);
    step(h, &mut a, &b, &c, &d, &m[9], 0xd9d4d039, 4);
    step(h, &mut d, &a, &b, &c, &m[12], 0xe6db99e5, 11);
    step(h, &mut c, &d, &a, &b, &m[15], 0x1fa27cf8, 16);
    step(h, &mut b, &c, &d, &a, &m[2], 0xc4ac5665, 23);
    step(i, &mut a, &b, &c, &d, &m[0], 0xf4292244, 6);
    step(i, &mut d, &a, &b, &c, &m[7], 0x432aff97, 10);
    step(i, &mut c, &d, &a, &b, &m[14], 0xab9423a7, 15);
    step(i, &mut b, &c, &d, &a, &m[5], 0xfc93a039, 21);
    step(i, &mut a, &b, &c, &d, &m[12], 0x655b59c3, 6);
    step(i, &mut d, &a, &b, &c, &m[3], 0x8f0ccc92, 10);
    step(i, &mut c, &d, &a, &b, &m[10], 0xffeff47d, 15);
    step(i, &mut b, &c, &d, &a, &m[1], 0x85845dd1, 21);
    step(i, &mut a, &b, &c, &d, &m[8], 0x6fa87e4f, 6);
    step(i, &mut d, &a, &b, &c, &m[15], 0xfe2ce6e0, 10);
    step(i, &mut c, &d, &a, &b, &m[6], 0xa3014314, 15);
    step(i, &mut b, &c, &d, &a, &m[13], 0x4e0811a1, 21);
    step(i, &mut a, &b, &c, &d, &m[4], 0xf7537e82, 6);
    step(i, &mut d, &a, &b, &c, &m[11], 0xbd3af235, 10);
    step(i, &mut c, &d, &a, &b, &m[2], 0x2ad7d2bb, 15);
    step(i, &mut b, &c, &d, &a, &m[9], 0xeb86d391, 21);
    for (s, x) in state.iter_mut().zip([a, b, c, d]) {
        *s += x;
    }
}

const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// A message being hashed in a lane: which one, and how far.
struct Lane {
    message: usize,
    block: usize,
    full_blocks: usize,
    /// The last one or two blocks: the message's remainder, the padding and the length.
    tail: [u8; 128],
    tail_blocks: usize,
}

impl Lane {
    fn new(message: usize, bytes: &[u8]) -> Self {
        let full_blocks = bytes.len() / 64;
        let rest = bytes.get(full_blocks * 64..).unwrap_or_default();
        let tail_blocks = if rest.len() < 56 { 1 } else { 2 };
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let bits = (bytes.len() as u64).wrapping_mul(8);
        let end = tail_blocks * 64;
        tail[end - 8..end].copy_from_slice(&bits.to_le_bytes());
        Self {
            message,
            block: 0,
            full_blocks,
            tail,
            tail_blocks,
        }
    }

    fn block<'a>(&'a self, bytes: &'a [u8]) -> &'a [u8; 64] {
        if self.block < self.full_blocks {
            bytes.get(self.block * 64..(self.block + 1) * 64)
        } else {
            let t = self.block - self.full_blocks;
            self.tail.get(t * 64..(t + 1) * 64)
        }
        .and_then(|b| b.try_into().ok())
        .unwrap_or(&[0; 64])
    }

    fn is_last_block(&self) -> bool {
        self.block + 1 == self.full_blocks + self.tail_blocks
    }
}

/// Which message each of `N` lanes works on, shared by the vector back ends: they differ
/// only in how they hold the state and run [`compress`].
struct Scheduler<'m, const N: usize> {
    messages: &'m [&'m [u8]],
    /// Longest first, so that lanes run out of work together rather than one straggler
    /// finishing a long message alone.
    queue: std::vec::IntoIter<usize>,
    lanes: [Option<Lane>; N],
    out: Vec<[u8; 16]>,
}

impl<'m, const N: usize> Scheduler<'m, N> {
    fn new(messages: &'m [&'m [u8]]) -> Self {
        let mut order: Vec<usize> = (0..messages.len()).collect();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(messages[i].len()));
        Self {
            messages,
            queue: order.into_iter(),
            lanes: std::array::from_fn(|_| None),
            out: vec![[0u8; 16]; messages.len()],
        }
    }

    /// Gives idle lanes their next message; returns the lanes that start one (bit `l` for
    /// lane `l`), whose state must be reset, or `None` when every message is done.
    fn refill(&mut self) -> Option<u32> {
        let mut fresh = 0;
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            if lane.is_none()
                && let Some(next) = self.queue.next()
            {
                *lane = Some(Lane::new(next, self.messages[next]));
                fresh |= 1 << l;
            }
        }
        self.lanes.iter().any(Option::is_some).then_some(fresh)
    }

    /// Lane `l`'s next block (zeros when the lane is idle).
    fn block(&self, l: usize) -> &[u8; 64] {
        match &self.lanes[l] {
            Some(lane) => lane.block(self.messages[lane.message]),
            None => &[0; 64],
        }
    }

    /// After a block: the lanes whose message just ended (bit `l` for lane `l`); each needs
    /// [`Scheduler::finish`] before the next refill.
    fn ending(&self) -> u32 {
        let mut ended = 0;
        for (l, lane) in self.lanes.iter().enumerate() {
            if lane.as_ref().is_some_and(Lane::is_last_block) {
                ended |= 1 << l;
            }
        }
        ended
    }

    /// Stores lane `l`'s digest and frees the lane.
    fn finish(&mut self, l: usize, digest: [u8; 16]) {
        if let Some(lane) = self.lanes[l].take() {
            self.out[lane.message] = digest;
        }
    }

    /// Moves every busy lane to its next block.
    fn advance(&mut self) {
        for lane in self.lanes.iter_mut().flatten() {
            lane.block += 1;
        }
    }
}

/// Below this many messages the lanes would mostly run empty: one scalar MD5 each is faster.
const MIN_MESSAGES: usize = 3;

/// The MD5 digest of every message, in order.
pub(crate) fn digests(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    if messages.len() < MIN_MESSAGES {
        return messages
            .iter()
            .map(|m| <md5::Md5 as md5::Digest>::digest(m).into())
            .collect();
    }
    #[cfg(target_arch = "x86_64")]
    if crate::avx512::has_f() {
        #[allow(unsafe_code)]
        // SAFETY: the only requirement of a `#[target_feature]` function is that the CPU has
        // the feature, which was detected just above.
        return unsafe { avx512::digests(messages) };
    }
    digests_wide(messages)
}

/// [`digests`] on `wide` vectors of [`LANES`] lanes: SSE2 or AVX2, whichever the build
/// targets.
fn digests_wide(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    let mut lanes = Scheduler::<LANES>::new(messages);
    let mut state = [[0u32; LANES]; 4];
    while let Some(fresh) = lanes.refill() {
        for l in (0..LANES).filter(|l| fresh & (1 << l) != 0) {
            for (s, init) in state.iter_mut().zip(INIT) {
                s[l] = init;
            }
        }
        let blocks: [&[u8; 64]; LANES] = std::array::from_fn(|l| lanes.block(l));
        let m: [V; 16] =
            std::array::from_fn(|w| {
                V::new(blocks.map(|b| {
                    u32::from_le_bytes([b[4 * w], b[4 * w + 1], b[4 * w + 2], b[4 * w + 3]])
                }))
            });
        let mut vectors = state.map(V::new);
        compress(&mut vectors, &m);
        state = vectors.map(|v| v.to_array());
        let ended = lanes.ending();
        for l in (0..LANES).filter(|l| ended & (1 << l) != 0) {
            let mut digest = [0u8; 16];
            for (w, s) in state.iter().enumerate() {
                digest[w * 4..w * 4 + 4].copy_from_slice(&s[l].to_le_bytes());
            }
            lanes.finish(l, digest);
        }
        lanes.advance();
    }
    lanes.out
}

/// Sixteen lanes in AVX-512 registers, chosen at run time. Besides twice the lanes, AVX-512
/// has a rotate and a three-input logic instruction, so one MD5 step is six instructions
/// instead of about ten per half.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{INIT, Scheduler};
    use crate::avx512::load;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use proptest::prelude::*;

    fn reference(m: &[u8]) -> [u8; 16] {
        Md5::digest(m).into()
    }

    /// The digests of every back end this CPU can run, each with its name.
    fn every_backend(messages: &[&[u8]]) -> Vec<(&'static str, Vec<[u8; 16]>)> {
        #[allow(unused_mut)]
        let mut all = vec![
            ("dispatched", digests(messages)),
            ("wide", digests_wide(messages)),
        ];
        #[cfg(target_arch = "x86_64")]
        if crate::avx512::has_f() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX-512F, checked just above.
            all.push(("avx512", unsafe { avx512::digests(messages) }));
        }
        all
    }

    #[test]
    fn every_padding_edge_in_every_lane() {
        // Lengths around the block and padding boundaries, more messages than lanes so that
        // lanes are refilled mid-way.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let lens = [
            0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200, 999, 3, 64, 0,
        ];
        // Twice over, so that both the 8-lane and the 16-lane back ends refill lanes.
        let messages: Vec<&[u8]> = lens.iter().chain(&lens).map(|&n| &data[..n]).collect();
        for (backend, got) in every_backend(&messages) {
            assert_eq!(got.len(), messages.len(), "{backend}");
            for (m, d) in messages.iter().zip(&got) {
                assert_eq!(*d, reference(m), "{backend}, length {}", m.len());
            }
        }
        assert_eq!(
            digests(&[b"abc"])[0],
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
        assert!(digests(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn matches_md5_crate(messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40)) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let want: Vec<[u8; 16]> = refs.iter().map(|m| reference(m)).collect();
            for (backend, got) in every_backend(&refs) {
                prop_assert_eq!(&got, &want, "{}", backend);
            }
        }
    }
}
