//! gzip detection and decompression with a bound on the decompressed size.
//!
//! Kinesis records from CloudWatch Logs subscriptions (and from some producers) are gzip
//! members. A small corrupt or hostile record can claim to expand to gigabytes, so:
//!
//! * the output is capped: past the cap decompression stops and the record is reported as
//!   too large ([`GzipError::TooLarge`]);
//! * the output buffer is sized up front from the trailer's `ISIZE` only up to what the
//!   input can inflate to (deflate's largest ratio is about 1032:1, [`MAX_RATIO`]), so a
//!   20-byte record reserves at most about 20 KiB whatever its trailer says;
//! * every reservation is fallible: an allocation the allocator refuses is a
//!   [`GzipError::OutOfMemory`] for that record, not an abort of the process.

/// The gzip magic bytes (`1F 8B`) every gzip member starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Default bound on the decompressed size of one record: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// The most bytes one byte of deflate data inflates to, rounded up: a 258-byte match takes
/// at least two bits, and a stream carries a few bytes of framing besides.
pub const MAX_RATIO: usize = 1032;

/// Why a gzip record could not be decompressed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GzipError {
    /// The stream is not valid gzip (bad header, bad deflate data, bad CRC, truncated).
    #[error("gzip data is corrupt: {message}")]
    Corrupt {
        /// What the decompressor reported.
        message: String,
    },
    /// The decompressed data would exceed the configured bound.
    #[error("gzip data decompresses to more than {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// The allocator refused room for the decompressed data.
    #[error("no memory for {bytes} bytes of decompressed gzip data")]
    OutOfMemory {
        /// The size of the buffer that could not be allocated.
        bytes: usize,
    },
}

/// Whether `data` starts with the gzip magic bytes.
///
/// ```
/// assert!(kinesis_utils::gzip::is_gzip(&[0x1f, 0x8b, 8, 0]));
/// assert!(!kinesis_utils::gzip::is_gzip(b"{\"log_type\":\"a\"}"));
/// ```
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&GZIP_MAGIC)
}

/// Decompresses every gzip member in `data`, refusing output larger than `limit` bytes.
///
/// The output buffer is sized from the last member's `ISIZE` trailer, at most the bound and
/// at most what `data` can inflate to, so the usual single-member record is inflated in one
/// call into one allocation (and then zlib keeps no window copy). Allocations are fallible:
/// a refused one is [`GzipError::OutOfMemory`].
///
/// ```
/// use std::io::Write;
/// let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// enc.write_all(b"hello").unwrap();
/// let gz = enc.finish().unwrap();
/// assert_eq!(kinesis_utils::gzip::gunzip_bounded(&gz, 1024).unwrap(), b"hello");
/// assert!(kinesis_utils::gzip::gunzip_bounded(&gz, 4).is_err());
/// ```
pub fn gunzip_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let hint = size_hint(data)
        .min(limit)
        .min(data.len().saturating_mul(MAX_RATIO));
    let mut out = Vec::new();
    reserve(&mut out, hint.saturating_add(1))?;
    let mut rest = data;
    loop {
        let body = rest.get(header_len(rest)?..).unwrap_or_default();
        let member_start = out.len();
        let used = inflate_member(body, &mut out, limit)?;
        let trailer = body
            .get(used..used.saturating_add(8))
            .ok_or_else(|| corrupt("truncated gzip trailer"))?;
        let (crc, size) = trailer.split_at(4);
        let member = out.get(member_start..).unwrap_or_default();
        let mut sum = flate2::Crc::new();
        sum.update(member);
        if crc != sum.sum().to_le_bytes() {
            return Err(corrupt("gzip CRC32 does not match the data"));
        }
        // ISIZE is the length modulo 2^32.
        if size != (member.len() as u32).to_le_bytes() {
            return Err(corrupt("gzip ISIZE does not match the data"));
        }
        rest = body.get(used + 8..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

/// Room for `n` more bytes, or [`GzipError::OutOfMemory`].
fn reserve(out: &mut Vec<u8>, n: usize) -> Result<(), GzipError> {
    out.try_reserve_exact(n)
        .map_err(|_| GzipError::OutOfMemory {
            bytes: out.len().saturating_add(n),
        })
}

fn corrupt(message: impl Into<String>) -> GzipError {
    GzipError::Corrupt {
        message: message.into(),
    }
}

/// The length of the gzip member header at the start of `m` (RFC 1952 2.3), checked as
/// flate2 checks it: magic, deflate method, no reserved flag, header CRC16 when present.
fn header_len(m: &[u8]) -> Result<usize, GzipError> {
    const FHCRC: u8 = 1 << 1;
    const FEXTRA: u8 = 1 << 2;
    const FNAME: u8 = 1 << 3;
    const FCOMMENT: u8 = 1 << 4;
    const FRESERVED: u8 = 0b1110_0000;
    let truncated = || corrupt("truncated gzip header");
    let fixed = m.get(..10).ok_or_else(truncated)?;
    if fixed.get(..3) != Some(&[0x1f, 0x8b, 8][..]) {
        return Err(corrupt("invalid gzip header"));
    }
    let flags = fixed.get(3).copied().unwrap_or_default();
    if flags & FRESERVED != 0 {
        return Err(corrupt("gzip header has reserved flags set"));
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = m.get(at..at + 2).ok_or_else(truncated)?;
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let text = m.get(at..).ok_or_else(truncated)?;
            at += memchr::memchr(0, text).ok_or_else(truncated)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        let covered = m.get(..at).ok_or_else(truncated)?;
        let stored = m.get(at..at + 2).ok_or_else(truncated)?;
        let mut sum = flate2::Crc::new();
        sum.update(covered);
        if stored != &sum.sum().to_le_bytes()[..2] {
            return Err(corrupt("gzip header CRC16 does not match"));
        }
        at += 2;
    }
    if at > m.len() {
        return Err(truncated());
    }
    Ok(at)
}

/// Inflates the raw deflate stream at the start of `body` onto `out`, never past `limit`
/// bytes in all; returns how many bytes of `body` the stream used.
fn inflate_member(body: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize, GzipError> {
    #[cfg(feature = "libdeflate")]
    if let Some(used) = libdeflate::inflate_into_spare(body, out, limit) {
        return Ok(used);
    }
    inflate_member_zlib(body, out, limit)
}

/// libdeflate inflates a whole stream in one call, but only into a buffer it fits in. The
/// output buffer is sized from the trailer's `ISIZE`, which is right for the usual
/// single-member record: then this one call does the work, and says where the stream ended,
/// so the member's trailer is checked where it really is. Whatever else happens (no room,
/// corrupt data) is left to zlib-rs from the start of the member, so error messages and the
/// size bound stay zlib-rs's. The `gzip_cwl` fuzz target and the proptests hold the result to
/// flate2's `MultiGzDecoder`. Each thread keeps one decompressor (about 10 KiB of tables) for
/// all its members.
#[cfg(feature = "libdeflate")]
mod libdeflate;

/// [`inflate_member`] on zlib-rs, growing `out` as needed.
fn inflate_member_zlib(body: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize, GzipError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut inflate = Decompress::new(false);
    loop {
        if out.len() > limit {
            return Err(GzipError::TooLarge { limit });
        }
        if out.len() == out.capacity() {
            // Room for one byte past the bound, so "at the bound" and "over it" differ.
            let room = (limit - out.len() + 1).min(out.len().max(32 << 10));
            reserve(out, room)?;
        }
        let used = usize::try_from(inflate.total_in()).unwrap_or(usize::MAX);
        let before = (used, out.len());
        let input = body.get(used..).unwrap_or_default();
        let status = inflate
            .decompress_vec(input, out, FlushDecompress::Finish)
            .map_err(|e| corrupt(format!("deflate data is invalid: {e}")))?;
        if out.len() > limit {
            return Err(GzipError::TooLarge { limit });
        }
        let used = usize::try_from(inflate.total_in()).unwrap_or(usize::MAX);
        match status {
            Status::StreamEnd => return Ok(used),
            Status::Ok | Status::BufError => {
                if (used, out.len()) == before && out.len() < out.capacity() {
                    return Err(corrupt("truncated deflate data"));
                }
            }
        }
    }
}

/// The uncompressed size recorded in the trailer (mod 2^32); only a hint.
fn size_hint(data: &[u8]) -> usize {
    match data.len().checked_sub(4).and_then(|at| data.get(at..)) {
        Some(&[a, b, c, d]) if data.len() >= 18 => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Just;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip_and_exact_bound() {
        let data = vec![b'x'; 10_000];
        let z = gz(&data);
        assert_eq!(gunzip_bounded(&z, 10_000).unwrap(), data);
        assert_eq!(
            gunzip_bounded(&z, 9_999),
            Err(GzipError::TooLarge { limit: 9_999 })
        );
    }

    #[test]
    fn bomb_is_refused_without_full_allocation() {
        // 64 MiB of zeros compresses to well under 1 MiB; a 1 MiB bound must stop early.
        let z = gz(&vec![0u8; 64 << 20]);
        assert!(z.len() < 1 << 20);
        assert_eq!(
            gunzip_bounded(&z, 1 << 20),
            Err(GzipError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn lying_trailer_does_not_over_allocate_or_fail() {
        let mut z = gz(b"abc");
        let n = z.len();
        z[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        // ISIZE mismatch is a corrupt stream for flate2; the point is no huge allocation.
        assert!(gunzip_bounded(&z, 1024).is_err());
    }

    #[test]
    fn corrupt_and_truncated() {
        let z = gz(b"hello world hello world");
        assert!(matches!(
            gunzip_bounded(&z[..z.len() - 6], 1024),
            Err(GzipError::Corrupt { .. })
        ));
        let mut bad = z.clone();
        bad[12] ^= 0xff;
        assert!(gunzip_bounded(&bad, 1024).is_err());
        assert!(matches!(
            gunzip_bounded(&GZIP_MAGIC, 1024),
            Err(GzipError::Corrupt { .. })
        ));
    }

    /// flate2's multi-member reader: what [`gunzip_bounded`] must agree with.
    fn reference(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
        use std::io::Read;
        let mut out = Vec::new();
        let cap = u64::try_from(limit).unwrap().saturating_add(1);
        flate2::bufread::MultiGzDecoder::new(data)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(e.to_string()))?;
        if out.len() > limit {
            return Err(GzipError::TooLarge { limit });
        }
        Ok(out)
    }

    /// One gzip member with the given header flags (FHCRC, FEXTRA, FNAME, FCOMMENT).
    fn member(data: &[u8], flags: u8, level: u32) -> Vec<u8> {
        let mut m = vec![0x1f, 0x8b, 8, flags & 0b1_1110, 1, 2, 3, 4, 0, 3];
        if flags & 4 != 0 {
            m.extend([3, 0, b'x', b'y', b'z']);
        }
        if flags & 8 != 0 {
            m.extend(b"name\0");
        }
        if flags & 16 != 0 {
            m.extend(b"comment\0");
        }
        if flags & 2 != 0 {
            let mut c = flate2::Crc::new();
            c.update(&m);
            m.extend(&c.sum().to_le_bytes()[..2]);
        }
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(data).unwrap();
        m.extend(enc.finish().unwrap());
        let mut c = flate2::Crc::new();
        c.update(data);
        m.extend(c.sum().to_le_bytes());
        m.extend((data.len() as u32).to_le_bytes());
        m
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// The one-shot inflater and flate2's reader agree on output, and on the kind of
        /// error, for every member layout, bound, flipped byte, cut and trailing junk.
        #[test]
        fn one_shot_agrees_with_flate2_reader(
            members in proptest::collection::vec(
                (proptest::collection::vec(proptest::prelude::prop_oneof![
                    Just(b'a'), Just(b'b'), proptest::prelude::any::<u8>()], 0..1500),
                 proptest::prelude::any::<u8>(), 0u32..10),
                1..4),
            limit in proptest::prelude::prop_oneof![Just(1usize << 20), 0usize..4000],
            flip in proptest::option::weighted(0.3, (proptest::prelude::any::<proptest::sample::Index>(), 1u8..)),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
            junk in proptest::option::weighted(0.1, proptest::collection::vec(proptest::prelude::any::<u8>(), 1..12)),
        ) {
            let mut gz: Vec<u8> = members.iter().flat_map(|(d, f, l)| member(d, *f, *l)).collect();
            if let Some((at, x)) = flip {
                let i = at.index(gz.len());
                gz[i] ^= x;
            }
            if let Some(at) = cut {
                gz.truncate(at.index(gz.len() + 1));
            }
            if let Some(j) = junk {
                gz.extend(j);
            }
            let (got, want) = (gunzip_bounded(&gz, limit), reference(&gz, limit));
            match (&got, &want) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(
                    std::mem::discriminant(a), std::mem::discriminant(b), "{:?} vs {:?}", a, b),
                _ => proptest::prop_assert!(false, "{:?} vs {:?}", got.map(|v| v.len()), want.map(|v| v.len())),
            }
        }
    }

    #[test]
    fn multi_member() {
        let mut z = gz(b"one ");
        z.extend(gz(b"two"));
        assert_eq!(gunzip_bounded(&z, 1024).unwrap(), b"one two");
    }
}
