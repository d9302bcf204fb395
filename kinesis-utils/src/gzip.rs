//! gzip detection and decompression with a bound on the decompressed size.
//!
//! Kinesis records from CloudWatch Logs subscriptions (and from some producers) are gzip
//! members. A small corrupt or hostile record can claim to expand to gigabytes, so the output
//! is capped: past the cap decompression stops and the record is reported as too large,
//! instead of allocating without bound.

use std::io::Read;

use flate2::bufread::MultiGzDecoder;

/// The gzip magic bytes (`1F 8B`) every gzip member starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Default bound on the decompressed size of one record: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

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
/// The output buffer is sized from the last member's `ISIZE` trailer when it is plausible,
/// so the usual single-member record is decompressed with one allocation.
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
    let hint = size_hint(data).min(limit);
    let mut out = Vec::with_capacity(hint.saturating_add(1));
    // Read one byte past the bound so "exactly at the bound" and "over it" differ.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    // `bufread` over the slice itself: no intermediate copy of the compressed bytes.
    let mut reader = MultiGzDecoder::new(data).take(cap);
    reader
        .read_to_end(&mut out)
        .map_err(|e| GzipError::Corrupt {
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(GzipError::TooLarge { limit });
    }
    Ok(out)
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

    #[test]
    fn multi_member() {
        let mut z = gz(b"one ");
        z.extend(gz(b"two"));
        assert_eq!(gunzip_bounded(&z, 1024).unwrap(), b"one two");
    }
}
