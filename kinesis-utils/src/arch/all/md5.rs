//! MD5 of many messages at once, one per lane of `wide::u32x8` vectors (SSE2 or AVX2 on
//! x86-64, NEON on arm64).
//!
//! One MD5 is a chain of dependent steps, so a single digest leaves most of a CPU's vector
//! units idle. Here messages are hashed side by side: lane `l` of each vector holds message
//! `l`'s state, and messages of any lengths are scheduled onto lanes as earlier ones finish
//! (the [`Scheduler`], which the AVX-512 backend shares). Below [`MIN_MESSAGES`] messages
//! the lanes would mostly run empty, and each message is hashed by the `md-5` crate, which is
//! also the reference the tests hold every backend to.

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

pub(crate) const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

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
pub(crate) struct Scheduler<'m, const N: usize> {
    messages: &'m [&'m [u8]],
    /// Longest first, so that lanes run out of work together rather than one straggler
    /// finishing a long message alone.
    queue: std::vec::IntoIter<usize>,
    lanes: [Option<Lane>; N],
    pub(crate) out: Vec<[u8; 16]>,
}

impl<'m, const N: usize> Scheduler<'m, N> {
    pub(crate) fn new(messages: &'m [&'m [u8]]) -> Self {
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
    pub(crate) fn refill(&mut self) -> Option<u32> {
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
    pub(crate) fn block(&self, l: usize) -> &[u8; 64] {
        match &self.lanes[l] {
            Some(lane) => lane.block(self.messages[lane.message]),
            None => &[0; 64],
        }
    }

    /// After a block: the lanes whose message just ended (bit `l` for lane `l`); each needs
    /// [`Scheduler::finish`] before the next refill.
    pub(crate) fn ending(&self) -> u32 {
        let mut ended = 0;
        for (l, lane) in self.lanes.iter().enumerate() {
            if lane.as_ref().is_some_and(Lane::is_last_block) {
                ended |= 1 << l;
            }
        }
        ended
    }

    /// Stores lane `l`'s digest and frees the lane.
    pub(crate) fn finish(&mut self, l: usize, digest: [u8; 16]) {
        if let Some(lane) = self.lanes[l].take() {
            self.out[lane.message] = digest;
        }
    }

    /// Moves every busy lane to its next block.
    pub(crate) fn advance(&mut self) {
        self.advance_by(1);
    }

    /// Moves every busy lane `n` blocks on.
    pub(crate) fn advance_by(&mut self, n: usize) {
        for lane in self.lanes.iter_mut().flatten() {
            lane.block += n;
        }
    }

    /// How many blocks every busy lane can take from its message's own bytes before it needs
    /// its tail: no lane starts or ends a message meanwhile (0 when one is at its tail).
    pub(crate) fn steady(&self) -> usize {
        self.lanes
            .iter()
            .flatten()
            .map(|lane| lane.full_blocks.saturating_sub(lane.block))
            .min()
            .unwrap_or(0)
    }

    /// Lane `l`'s message bytes from its next block on (empty when the lane is idle).
    pub(crate) fn rest(&self, l: usize) -> &'m [u8] {
        match &self.lanes[l] {
            Some(lane) => self.messages[lane.message]
                .get(lane.block * 64..)
                .unwrap_or_default(),
            None => &[],
        }
    }
}

/// Below this many messages the lanes would mostly run empty: one scalar MD5 each is faster.
pub(crate) const MIN_MESSAGES: usize = 3;

/// The MD5 digest of every message, in order.
pub(crate) fn digests(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    if messages.len() < MIN_MESSAGES {
        return messages
            .iter()
            .map(|m| <md5::Md5 as md5::Digest>::digest(m).into())
            .collect();
    }
    digests_in_lanes(messages)
}

/// The sixteen little-endian words of each lane's 64-byte block, as vectors.
///
/// Each block is loaded as four vectors of four words and each group of four lanes is
/// transposed with shuffles: gathered word by word instead, through the stack, the words
/// cost about a quarter as much as the rounds themselves.
#[inline(always)]
fn words(blocks: &[&[u8; 64]; LANES]) -> [V; 16] {
    const { assert!(LANES == 8, "two groups of four lanes") };
    let quad = |l: usize, q: usize| -> wide::u32x4 {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&blocks[l][16 * q..16 * q + 16]);
        let v: wide::u32x4 = wide::bytemuck::cast(bytes);
        if cfg!(target_endian = "little") {
            v
        } else {
            wide::u32x4::new(v.to_array().map(u32::from_le))
        }
    };
    let mut out = [V::ZERO; 16];
    for q in 0..4 {
        let low = wide::u32x4::transpose(std::array::from_fn(|l| quad(l, q)));
        let high = wide::u32x4::transpose(std::array::from_fn(|l| quad(4 + l, q)));
        for w in 0..4 {
            let (l, h) = (low[w].to_array(), high[w].to_array());
            out[4 * q + w] = V::new([l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]);
        }
    }
    out
}

/// [`digests`] on `wide` vectors of [`LANES`] lanes, whatever the number of messages.
///
/// The state stays in vectors from block to block; lanes that start a message are reset
/// with a mask. While no lane starts or ends a message (almost every block of long
/// messages) the blocks are read straight from the messages, without the scheduler.
pub(crate) fn digests_in_lanes(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    const ZERO: [u8; 64] = [0; 64];
    let mut lanes = Scheduler::<LANES>::new(messages);
    let init = INIT.map(V::splat);
    let mut state = init;
    while let Some(fresh) = lanes.refill() {
        if fresh != 0 {
            let reset = V::new(std::array::from_fn(|l| {
                if fresh & (1 << l) != 0 { u32::MAX } else { 0 }
            }));
            for (s, i) in state.iter_mut().zip(init) {
                *s = (i & reset) | (*s & !reset);
            }
        }
        let steady = lanes.steady();
        if steady > 0 {
            let rests: [&[u8]; LANES] = std::array::from_fn(|l| lanes.rest(l));
            for block in 0..steady {
                let blocks: [&[u8; 64]; LANES] = rests.map(|r| {
                    r.get(block * 64..block * 64 + 64)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or(&ZERO)
                });
                compress(&mut state, &words(&blocks));
            }
            lanes.advance_by(steady);
        }
        // One block with the scheduler: a tail, an end, or a lane left idle.
        let blocks: [&[u8; 64]; LANES] = std::array::from_fn(|l| lanes.block(l));
        compress(&mut state, &words(&blocks));
        let ended = lanes.ending();
        if ended != 0 {
            let words = state.map(|v| v.to_array());
            for l in (0..LANES).filter(|l| ended & (1 << l) != 0) {
                let mut digest = [0u8; 16];
                for (w, s) in words.iter().enumerate() {
                    digest[w * 4..w * 4 + 4].copy_from_slice(&s[l].to_le_bytes());
                }
                lanes.finish(l, digest);
            }
        }
        lanes.advance();
    }
    lanes.out
}
