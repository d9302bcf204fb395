//! The crate's SIMD code in one place, and with it every `unsafe` line except the libdeflate
//! binding's.
//!
//! The layout follows memchr's:
//!
//! * `all`: the portable code. It is safe Rust: scalar loops, eight bytes at a time in a
//!   `u64`, and `wide` vectors, which compile to SSE2, AVX2 or NEON. It runs on every CPU
//!   without the extensions below, arm64 (Graviton) included, and it is the reference that
//!   every other backend is tested against.
//! * `x86_64/avx512`: the AVX-512 backends. This is the only module where `unsafe` is
//!   allowed. Its `#[target_feature]` functions are reached only through tokens, and only CPU
//!   detection creates a token.
//! * this module: the dispatch. Each call picks a backend from the CPU's features (detected
//!   once, then cached) unless the portable path is forced.
//!
//! # Contract
//!
//! Every backend of a routine gives exactly what the portable one gives, for every input:
//! the same result and the same output bytes. It reads nothing past the end of its input
//! and writes nothing past what it reports. One differential harness checks this for every
//! backend the CPU has. It covers every length and every position, on inputs that end
//! exactly where their allocation ends, and it runs under AddressSanitizer too.
//!
//! # Forcing the portable path
//!
//! Every CPU gives the same results, so the choice of backend only changes speed. To test or
//! measure the portable path on a machine that has AVX-512, do one of these:
//!
//! * build with `RUSTFLAGS="--cfg kinesis_utils_portable"`. Detection then always answers
//!   "no", and [`force_portable`] cannot undo it.
//! * set the environment variable `KINESIS_UTILS_PORTABLE` to anything but empty or `0`.
//!   It is read once, at the first dispatch.
//! * call [`force_portable`]: it takes effect at the next call, in every thread.
//!
//! ```
//! use kinesis_utils::arch::{self, Level};
//!
//! println!("this CPU: {:?}, in use: {:?}", arch::detected(), arch::selected());
//! arch::force_portable(true);
//! assert_eq!(arch::selected(), Level::Portable);
//! arch::force_portable(false); // follow the CPU again
//! assert!(arch::selected() <= arch::detected());
//! ```

use std::sync::atomic::{AtomicU8, Ordering};

mod all;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod backends;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86_64")]
use x86_64::avx512::{Avx512Bw, Avx512F, Avx512Vbmi, Avx512Vbmi2};

pub(crate) use all::find::find_quote;
pub(crate) use all::unescape::StringContent;

/// The vector extensions the crate's routines use, from none to the most. Each level
/// includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// None: the portable code, on every CPU (arm64 included).
    Portable,
    /// AVX-512F: KPL digests on sixteen MD5 lanes.
    Avx512F,
    /// Also AVX-512BW: JSON strings scanned 64 bytes per step.
    Avx512Bw,
    /// Also AVX-512 VBMI: base64 `data` strings decoded 64 characters per step.
    Avx512Vbmi,
    /// Also AVX-512 VBMI2: CloudWatch Logs messages unescaped 64 bytes per step.
    Avx512Vbmi2,
}

/// The environment variable that forces the portable path (see the [module](self) docs).
pub const PORTABLE_ENV: &str = "KINESIS_UTILS_PORTABLE";

/// The highest [`Level`] this CPU (and its operating system) supports, whether or not the
/// portable path is forced.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if Avx512Vbmi2::new().is_some() {
            return Level::Avx512Vbmi2;
        }
        if Avx512Vbmi::new().is_some() {
            return Level::Avx512Vbmi;
        }
        if Avx512Bw::new().is_some() {
            return Level::Avx512Bw;
        }
        if Avx512F::new().is_some() {
            return Level::Avx512F;
        }
    }
    Level::Portable
}

/// The [`Level`] the dispatch uses now: [`detected`], or [`Level::Portable`] when forced.
pub fn selected() -> Level {
    if forced() {
        Level::Portable
    } else {
        detected()
    }
}

/// Forces the portable path on (`true`) or lets the dispatch follow the CPU again (`false`),
/// from the next call on, in every thread. It overrides [`PORTABLE_ENV`], but not a build
/// with `--cfg kinesis_utils_portable`. The results are the same either way.
pub fn force_portable(on: bool) {
    FORCED.store(if on { YES } else { NO }, Ordering::Relaxed);
}

const UNREAD: u8 = 0;
const NO: u8 = 1;
const YES: u8 = 2;
static FORCED: AtomicU8 = AtomicU8::new(UNREAD);

/// Whether the portable path is forced.
#[inline]
fn forced() -> bool {
    if cfg!(kinesis_utils_portable) {
        return true;
    }
    match FORCED.load(Ordering::Relaxed) {
        NO => false,
        YES => true,
        _ => read_env(),
    }
}

#[cold]
fn read_env() -> bool {
    let on = std::env::var_os(PORTABLE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    // A `force_portable` call made meanwhile wins over the environment.
    match FORCED.compare_exchange(
        UNREAD,
        if on { YES } else { NO },
        Ordering::Relaxed,
        Ordering::Relaxed,
    ) {
        Ok(_) => on,
        Err(now) => now == YES,
    }
}

/// The first `"`, `\` or control byte in `text`, the bytes a JSON string must escape.
#[inline]
pub(crate) fn find_special(text: &[u8]) -> Option<usize> {
    use all::find::{HEAD, Head, find_special_head};
    match find_special_head(text) {
        Head::Found(at) => Some(at),
        Head::Absent => None,
        Head::Longer => find_special_tail(text.get(HEAD..)?).map(|at| at + HEAD),
    }
}

/// [`find_special`] past the first [`all::find::HEAD`] bytes, where vectors pay off.
fn find_special_tail(rest: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if !forced()
        && let Some(bw) = Avx512Bw::new()
    {
        return bw.find_special(rest);
    }
    all::find::find_special_tail(rest)
}

/// Decodes the JSON string content at the start of `src` (just after its opening quote) as
/// canonical padded base64, appending the bytes to `out`.
///
/// `Some(n)`: `src[n]` is the first `"` in `src`, and `out` gained exactly what
/// `base64_simd::STANDARD` decodes `src[..n]` to. `None`: there is no `"`, or the content is
/// not canonical base64; `out` is as it was, and the caller takes its general path (which
/// reports the error, or accepts unpadded data and escapes).
#[inline]
pub(crate) fn decode_base64_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if !forced()
        && let Some(vbmi) = Avx512Vbmi::new()
    {
        return vbmi.decode_base64_string(src, out);
    }
    all::base64::decode_json_string(src, out)
}

/// Reads a JSON string's content (`s` starts after its opening quote) as serde_json's raw
/// bytes do: any byte but `"` and `\` as it is, and the escapes other than `\u` decoded.
/// Without escapes the content is borrowed; with escapes it is unescaped onto `arena`.
/// Returns the content and the bytes used, closing quote included, or `None` for a `\u`
/// escape, an invalid escape or no closing quote (the arena may then hold partial output).
#[inline]
pub(crate) fn unescape_string<'a>(
    s: &'a [u8],
    arena: &mut Vec<u8>,
) -> Option<(StringContent<'a>, usize)> {
    #[cfg(target_arch = "x86_64")]
    if !forced()
        && let Some(vbmi2) = Avx512Vbmi2::new()
    {
        return vbmi2.unescape_string(s, arena);
    }
    all::unescape::unescape_string(s, arena)
}

/// The MD5 digest of every message, in order, with the messages hashed side by side.
pub(crate) fn md5_digests(messages: &[&[u8]]) -> Vec<[u8; 16]> {
    #[cfg(target_arch = "x86_64")]
    if messages.len() >= all::md5::MIN_MESSAGES
        && !forced()
        && let Some(f) = Avx512F::new()
    {
        return f.md5_digests(messages);
    }
    all::md5::digests(messages)
}
