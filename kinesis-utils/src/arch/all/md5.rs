//! MD5 of many messages at once, one per lane of `wide::u32x4` vectors (SSE2 on x86-64,
//! NEON on arm64).
//!
//! One MD5 is a chain of dependent steps, so a single digest leaves most of a CPU's vector
//! units idle. Here messages are hashed side by side: lane `l` of group `l / 4` holds message
//! `l`'s state, and messages of any lengths are scheduled onto lanes as earlier ones finish
//! (the [`Scheduler`], which the AVX-512 backend shares). Below [`MIN_MESSAGES`] messages
//! the lanes would mostly run empty, and each message is hashed by the `md-5` crate, which is
//! also the reference the tests hold every backend to.
//!
//! # Groups of four lanes
//!
//! A step is about ten vector instructions per group, without a rotate or a three-input
//! logic instruction, and each group's steps form one dependent chain. Two groups (eight
//! lanes) leave the CPU waiting on those chains; three give it enough independent work to
//! keep its vector units busy, at the cost of idle lanes when there are few messages.
//! [`digests`] picks one, two or three groups from the number of messages ([`groups_for`]).

use wide::u32x4;

/// Four lanes: one vector.
type Q = u32x4;

#[inline(always)]
fn f(x: Q, y: Q, z: Q) -> Q {
    z ^ (x & (y ^ z))
}

#[inline(always)]
fn g(x: Q, y: Q, z: Q) -> Q {
    y ^ (z & (x ^ y))
}

#[inline(always)]
fn h(x: Q, y: Q, z: Q) -> Q {
    x ^ y ^ z
}

#[inline(always)]
fn i(x: Q, y: Q, z: Q) -> Q {
    y ^ (x | !z)
}

/// `a = b + rotl(a + fun(b, c, d) + m + k, s)` in every lane of every group. The groups'
/// chains are independent, so the CPU overlaps them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<const R: usize>(
    fun: fn(Q, Q, Q) -> Q,
    a: &mut [Q; R],
    b: &[Q; R],
    c: &[Q; R],
    d: &[Q; R],
    m: &[Q; R],
    k: u32,
    s: u32,
) {
    let k = Q::splat(k);
    for r in 0..R {
        let t = a[r] + fun(b[r], c[r], d[r]) + m[r] + k;
        a[r] = b[r] + ((t << s) | (t >> (32 - s)));
    }
}

/// One 64-byte block per lane, given as its sixteen little-endian words.
fn compress<const R: usize>(state: &mut [[Q; R]; 4], m: &[[Q; R]; 16]) {
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
        for (s, x) in s.iter_mut().zip(x) {
            *s += x;
        }
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
    match groups_for(messages.len()) {
        1 => digests_in_lanes::<1, 4>(messages),
        2 => digests_in_lanes::<2, 8>(messages),
        _ => digests_in_lanes::<3, 12>(messages),
    }
}

/// How many groups of four lanes hash `n` messages fastest: one, two or three.
///
/// Per lane and block, two groups take about three fifths of the time of one, and three
/// groups five sixths of the time of two (measured on x86-64 with SSE2). But a round of
/// blocks costs the same whether its lanes are busy or not. The estimate takes messages of
/// equal length, which fill the lanes in whole rounds: four messages are one round of one
/// group; nine are one round of three groups against two of two groups; sixteen are two
/// rounds either way, and two groups' rounds are the cheaper; from about two dozen messages
/// on, the cheaper lanes of three groups win. Ties go to fewer groups.
pub(crate) fn groups_for(n: usize) -> usize {
    const PER_LANE: [usize; 3] = [10, 6, 5];
    (1..=3)
        .min_by_key(|&groups| n.div_ceil(4 * groups) * 4 * groups * PER_LANE[groups - 1])
        .unwrap_or(2)
}

/// The sixteen little-endian words of each lane's 64-byte block, group by group.
///
/// Each block is loaded as four vectors of four words and each group of four lanes is
/// transposed with shuffles: gathered word by word instead, through the stack, the words
/// cost about a quarter as much as the rounds themselves.
#[inline(always)]
fn words<const R: usize, const L: usize>(blocks: &[&[u8; 64]; L]) -> [[Q; R]; 16] {
    const { assert!(L == 4 * R, "four lanes a group") };
    let quad = |block: &[u8; 64], q: usize| -> Q {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&block[16 * q..16 * q + 16]);
        let v: Q = wide::bytemuck::cast(bytes);
        if cfg!(target_endian = "little") {
            v
        } else {
            Q::new(v.to_array().map(u32::from_le))
        }
    };
    let mut out = [[Q::ZERO; R]; 16];
    for (r, group) in blocks.chunks_exact(4).enumerate() {
        for q in 0..4 {
            let t = Q::transpose(std::array::from_fn(|l| quad(group[l], q)));
            for (w, v) in t.into_iter().enumerate() {
                out[4 * q + w][r] = v;
            }
        }
    }
    out
}

/// [`digests`] on `R` groups of four lanes (`L = 4 * R` lanes), whatever the number of
/// messages.
///
/// The state stays in vectors from block to block; lanes that start a message are reset
/// with a mask. While no lane starts or ends a message (almost every block of long
/// messages) the blocks are read straight from the messages, without the scheduler.
pub(crate) fn digests_in_lanes<const R: usize, const L: usize>(
    messages: &[&[u8]],
) -> Vec<[u8; 16]> {
    const ZERO: [u8; 64] = [0; 64];
    const {
        assert!(
            L == 4 * R && L <= 32,
            "four lanes a group, a bit each in a u32"
        )
    };
    let mut lanes = Scheduler::<L>::new(messages);
    let init = INIT.map(|w| [Q::splat(w); R]);
    let mut state = init;
    while let Some(fresh) = lanes.refill() {
        if fresh != 0 {
            for r in 0..R {
                let reset = Q::new(std::array::from_fn(|l| {
                    if fresh & (1 << (4 * r + l)) != 0 {
                        u32::MAX
                    } else {
                        0
                    }
                }));
                for (s, i) in state.iter_mut().zip(init) {
                    s[r] = (i[r] & reset) | (s[r] & !reset);
                }
            }
        }
        let steady = lanes.steady();
        if steady > 0 {
            let rests: [&[u8]; L] = std::array::from_fn(|l| lanes.rest(l));
            for block in 0..steady {
                let blocks: [&[u8; 64]; L] = rests.map(|r| {
                    r.get(block * 64..block * 64 + 64)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or(&ZERO)
                });
                compress(&mut state, &words(&blocks));
            }
            lanes.advance_by(steady);
        }
        // One block with the scheduler: a tail, an end, or a lane left idle.
        let blocks: [&[u8; 64]; L] = std::array::from_fn(|l| lanes.block(l));
        compress(&mut state, &words(&blocks));
        let ended = lanes.ending();
        if ended != 0 {
            let words = state.map(|v| v.map(|q| q.to_array()));
            for l in (0..L).filter(|l| ended & (1 << l) != 0) {
                let mut digest = [0u8; 16];
                for (w, s) in words.iter().enumerate() {
                    digest[w * 4..w * 4 + 4].copy_from_slice(&s[l / 4][l % 4].to_le_bytes());
                }
                lanes.finish(l, digest);
            }
        }
        lanes.advance();
    }
    lanes.out
}

#[cfg(test)]
mod tests {
    use super::groups_for;

    #[test]
    fn groups_follow_the_rounds_the_messages_fill() {
        // One group for a round of four, then two; three once nine fill a round of twelve.
        let picks: Vec<usize> = (3..=17).map(groups_for).collect();
        assert_eq!(picks, [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3]);
        // Large batches: three groups' cheaper lanes, whatever the remainder.
        assert!((41..=600).all(|n| groups_for(n) == 3));
    }
}
