//! Finding the bytes that end or interrupt a JSON string: `"`, and for
//! [`find_special`] also `\` and the control bytes.
//!
//! Most keys and values are short. For them, eight bytes at a time in a `u64` beat the
//! set-up of a library call. So the first [`HEAD`] bytes are scanned that way, and only the
//! rest of a longer string goes to a longer scanner: memchr for a quote alone; for the
//! special bytes, two `wide::u8x16` vectors per step (SSE2 on x86-64, NEON on arm64), or an
//! AVX-512 backend where the CPU has one.

use wide::u8x16;

/// How many bytes are scanned eight at a time before a longer scanner takes over.
pub(crate) const HEAD: usize = 32;

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
const SPACES: u64 = u64::from_le_bytes([0x20; 8]);

/// The high bit of each byte of `x` that is below `n` (`n` repeated in every byte). Only the
/// lowest set bit is exact: a borrow starts only at a real match and only runs upward.
#[inline]
fn below(x: u64, n: u64) -> u64 {
    x.wrapping_sub(n) & !x & HIGHS
}

/// Eight bytes as a little-endian `u64` (`chunk` is eight bytes long).
#[inline]
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Whether `c` must be escaped in a JSON string.
#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The position of the first `"` in `text`: eight bytes at a time for the first [`HEAD`],
/// then memchr.
#[inline]
pub(crate) fn find_quote(text: &[u8]) -> Option<usize> {
    let mut offset = 0;
    while offset < HEAD {
        let Some(chunk) = text.get(offset..offset + 8) else {
            let tail = text.get(offset..)?;
            return Some(offset + tail.iter().position(|&c| c == b'"')?);
        };
        let hits = below(word(chunk) ^ QUOTES, ONES);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    Some(offset + memchr::memchr(b'"', text.get(offset..)?)?)
}

/// What the first [`HEAD`] bytes of a text say about its first special byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// It is at this position.
    Found(usize),
    /// The text is at most [`HEAD`] bytes long and has none.
    Absent,
    /// The first [`HEAD`] bytes have none, and there are more.
    Longer,
}

/// [`find_special`] in the first [`HEAD`] bytes, eight at a time.
#[inline]
pub(crate) fn find_special_head(text: &[u8]) -> Head {
    let mut offset = 0;
    while offset < HEAD {
        let Some(chunk) = text.get(offset..offset + 8) else {
            let tail = text.get(offset..).unwrap_or_default();
            return match tail.iter().position(|&c| is_special(c)) {
                Some(at) => Head::Found(offset + at),
                None => Head::Absent,
            };
        };
        let w = word(chunk);
        let hits = below(w ^ QUOTES, ONES) | below(w ^ BACKSLASHES, ONES) | below(w, SPACES);
        if hits != 0 {
            return Head::Found(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if text.len() > HEAD {
        Head::Longer
    } else {
        Head::Absent
    }
}

/// The first special byte of `rest` (a text past its head), 32 bytes per step in two
/// `u8x16` vectors (SSE2 on x86-64, NEON on arm64): the three tests in one pass.
pub(crate) fn find_special_tail(rest: &[u8]) -> Option<usize> {
    let (two, space, backslash) = (u8x16::splat(2), u8x16::splat(0x20), u8x16::splat(b'\\'));
    // A byte is special when it is a backslash, or when flipping its bit 1 leaves it at most
    // 0x20: that maps the control bytes onto themselves and the quote (0x22) alone onto 0x20.
    let special = |v: u8x16| {
        let flipped = v ^ two;
        flipped.min(space).simd_eq(flipped) | v.simd_eq(backslash)
    };
    let load = |chunk: &[u8]| {
        let mut lanes = [0u8; 16];
        lanes.copy_from_slice(chunk);
        u8x16::new(lanes)
    };
    let mut at = 0;
    while let Some(chunk) = rest.get(at..at + 32) {
        let (low, high) = chunk.split_at(16);
        let (low, high) = (special(load(low)), special(load(high)));
        if (low | high).any() {
            let mask = low.to_bitmask() | (high.to_bitmask() << 16);
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 32;
    }
    let tail = rest.get(at..)?;
    Some(at + tail.iter().position(|&c| is_special(c))?)
}

/// The first special byte of `text`, all on the portable path.
#[cfg(any(test, fuzzing))]
pub(crate) fn find_special(text: &[u8]) -> Option<usize> {
    match find_special_head(text) {
        Head::Found(at) => Some(at),
        Head::Absent => None,
        Head::Longer => find_special_tail(text.get(HEAD..)?).map(|at| at + HEAD),
    }
}
