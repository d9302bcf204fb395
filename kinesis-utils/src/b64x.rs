//! A Lambda event's base64 `data` strings decoded straight from the event JSON.
//!
//! The fast event scanner used to find a `data` string's closing quote with `memchr` and then
//! hand the string to `base64-simd`: two passes over the largest part of the event, and a
//! call overhead that dominated for records of a few hundred bytes. With AVX-512 VBMI
//! (chosen at run time), one pass decodes 64 characters at a time and stops at the first
//! byte outside base64's alphabet, which for canonical data is the padding or the closing
//! quote; the last block is finished in registers too. Anything unusual (no padding where
//! it is due, stray bytes, escapes) goes to the portable path, `memchr` and `base64-simd`,
//! which is also the path of every other CPU and the reference the tests hold the vector
//! path to. The vector path's memory accesses are `crate::avx512`'s; the only `unsafe` here
//! is the dispatching call.

/// Decodes the JSON string content at the start of `src` (the bytes just after its opening
/// quote) as canonical padded base64, appending the bytes to `out`.
///
/// `Some(n)`: `src[n]` is the first `"` in `src`, and `out` gained exactly what
/// `base64_simd::STANDARD` decodes `src[..n]` to. `None`: there is no `"`, or `base64-simd`
/// refuses the content; `out` is as it was, and the caller takes its general path (which
/// reports the error, or accepts unpadded data and escapes).
pub(crate) fn decode_json_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        #[allow(unsafe_code)]
        // SAFETY: the only requirement of a `#[target_feature]` function is that the CPU has
        // the features, which `available` detected.
        return unsafe { avx512::decode_json_string(src, out) };
    }
    portable(src, out)
}

/// [`decode_json_string`] with `memchr` and `base64-simd`, from `src[from..]` on (`out`
/// already holding the decoded `src[..from]`, a whole number of 4-character groups, as of
/// `start`).
fn finish(src: &[u8], from: usize, out: &mut Vec<u8>, start: usize) -> Option<usize> {
    let rest = src.get(from..)?;
    let Some(end) = memchr::memchr(b'"', rest) else {
        out.truncate(start);
        return None;
    };
    match base64_simd::STANDARD.decode_append(rest.get(..end)?, out) {
        Ok(()) => Some(from + end),
        Err(_) => {
            out.truncate(start);
            None
        }
    }
}

fn portable(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    finish(src, 0, out, start)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::avx512::{append, below, load, load_prefix};
    use std::arch::x86_64::*;

    /// Whether this CPU has what the vector path needs.
    pub(super) fn available() -> bool {
        crate::avx512::has_vbmi()
    }

    /// Each ASCII byte's base64 value, `0x80` for bytes outside the alphabet (the padding
    /// `=` and the closing quote among them), in two halves for `vpermi2b`.
    const fn table(half: usize) -> [u8; 64] {
        let mut t = [0x80u8; 64];
        let mut i = 0;
        while i < 64 {
            let c = (half * 64 + i) as u8;
            t[i] = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => 0x80,
            };
            i += 1;
        }
        t
    }
    static LOW: [u8; 64] = table(0);
    static HIGH: [u8; 64] = table(1);

    /// Where each output byte comes from after the multiply-adds: the three low bytes of
    /// every 32-bit lane, most significant first, packed into 48 bytes.
    static PACK: [u8; 64] = {
        let mut p = [0u8; 64];
        let mut i = 0;
        while i < 16 {
            p[3 * i] = (4 * i + 2) as u8;
            p[3 * i + 1] = (4 * i + 1) as u8;
            p[3 * i + 2] = (4 * i) as u8;
            i += 1;
        }
        p
    };

    /// Base64 values of 64 characters, and the bytes that are not base64 (as a bit mask).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn translate(input: __m512i, low: __m512i, high: __m512i) -> (__m512i, u64) {
        // The low seven bits pick the table entry; bytes of 0x80 and over are refused by
        // their own high bit.
        let values = _mm512_permutex2var_epi8(low, input, high);
        (values, _mm512_movepi8_mask(_mm512_or_si512(values, input)))
    }

    /// Sixteen groups of four 6-bit values to their 48 bytes (at the start of the vector).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn pack(values: __m512i, order: __m512i) -> __m512i {
        let pairs = _mm512_maddubs_epi16(values, _mm512_set1_epi32(0x0140_0140));
        let groups = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x0001_1000));
        _mm512_permutexvar_epi8(order, groups)
    }

    /// [`super::decode_json_string`] on AVX-512 VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) fn decode_json_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let start = out.len();
        let (low, high, order) = (load(&LOW), load(&HIGH), load(&PACK));
        let mut pos = 0;
        while let Some(block) = src.get(pos..pos + 64).and_then(|b| b.first_chunk::<64>()) {
            let (values, bad) = translate(load(block), low, high);
            if bad != 0 {
                break;
            }
            append(out, pack(values, order), 48);
            pos += 64;
        }
        // The block that ends the string: `p` base64 characters, then (for canonical
        // data) the padding that completes the last group of four, then the quote.
        let rest = src.get(pos..).unwrap_or_default();
        let (values, bad) = translate(load_prefix(rest), low, high);
        let p = (bad | !below(rest.len())).trailing_zeros() as usize;
        let quote = match rest.get(p..).unwrap_or_default() {
            [b'"', ..] if p.is_multiple_of(4) => Some(p),
            [b'=', b'"', ..] if p % 4 == 3 => Some(p + 1),
            [b'=', b'=', b'"', ..] if p % 4 == 2 => Some(p + 2),
            _ => None,
        };
        if let Some(quote) = quote {
            let bytes = pack(_mm512_maskz_mov_epi8(below(p), values), order);
            let n = p / 4 * 3 + [0, 0, 1, 2][p % 4];
            // The bits the padding leaves over must be zero (the byte after the last one).
            if _mm512_mask_test_epi8_mask(below(n + 1) & !below(n), bytes, bytes) == 0 {
                append(out, bytes, n);
                return Some(pos + quote);
            }
        }
        super::finish(src, pos, out, start)
    }
}

/// Every path this CPU can run on `src`, each appending to a copy of `out`: its name, its
/// result and the output. For the tests and the `b64_string` fuzz target.
#[cfg(any(test, fuzzing))]
pub fn all_paths(src: &[u8], out: &[u8]) -> Vec<(&'static str, Option<usize>, Vec<u8>)> {
    let mut runs = Vec::new();
    let mut o = out.to_vec();
    runs.push(("portable", portable(src, &mut o), o));
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        let mut o = out.to_vec();
        #[allow(unsafe_code)]
        // SAFETY: the CPU has the features, checked just above.
        let r = unsafe { avx512::decode_json_string(src, &mut o) };
        runs.push(("avx512", r, o));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the scanner did before: the first quote, and base64-simd on what precedes it.
    fn reference(src: &[u8], out: &[u8]) -> (Option<usize>, Vec<u8>) {
        let mut o = out.to_vec();
        let Some(end) = src.iter().position(|&c| c == b'"') else {
            return (None, o);
        };
        match base64_simd::STANDARD.decode_to_vec(&src[..end]) {
            Ok(bytes) => {
                o.extend_from_slice(&bytes);
                (Some(end), o)
            }
            Err(_) => (None, o),
        }
    }

    fn check(src: &[u8]) {
        let prior = b"earlier".to_vec();
        let want = reference(src, &prior);
        for (name, got, out) in all_paths(src, &prior) {
            assert_eq!(
                (got, &out),
                (want.0, &want.1),
                "{name} on {:?}",
                String::from_utf8_lossy(src)
            );
        }
    }

    #[test]
    fn decodes_canonical_strings_of_every_length_and_refuses_the_rest() {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let text = engine.encode(&bytes);
            for suffix in [
                "\"",
                "\",\"x\":1}",
                "\"  plus a long tail that is not base64 at all",
            ] {
                let src = format!("{text}{suffix}");
                check(src.as_bytes());
                let mut out = Vec::new();
                assert_eq!(
                    decode_json_string(src.as_bytes(), &mut out),
                    Some(text.len())
                );
                assert_eq!(out, bytes);
            }
            // Unpadded, broken, escaped, or unterminated: refused, `out` untouched.
            let unpadded = text.trim_end_matches('=');
            for src in [
                format!("{unpadded}\""),
                format!("{text}=\""),
                text.clone(),
                format!("\\/{text}\""),
                format!("{}!{}\"", &text[..text.len() / 2], &text[text.len() / 2..]),
            ] {
                check(src.as_bytes());
            }
        }
    }

    #[test]
    fn refuses_set_bits_after_the_padding() {
        // "QQ==" is "A"; "QR==" carries a set bit the padding drops.
        for src in ["QR==\"", "QUJ=\"", "QUI=\"", "QQ==\""] {
            check(src.as_bytes());
        }
        let mut out = Vec::new();
        assert_eq!(decode_json_string(b"QR==\"", &mut out), None);
        assert!(out.is_empty());
    }

    fn base64ish() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        prop_oneof![
            // Canonical base64 of random bytes, then a quote and anything.
            (
                proptest::collection::vec(any::<u8>(), 0..400),
                proptest::collection::vec(any::<u8>(), 0..80)
            )
                .prop_map(|(bytes, tail)| {
                    use base64::Engine as _;
                    let mut s = base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .into_bytes();
                    s.push(b'"');
                    s.extend(tail);
                    s
                }),
            // Mostly alphabet, with padding, quotes, escapes and other bytes strewn in.
            proptest::collection::vec(
                prop_oneof![
                    20 => proptest::sample::select(alphabet.to_vec()),
                    2 => Just(b'='),
                    2 => Just(b'"'),
                    1 => Just(b'\\'),
                    1 => any::<u8>(),
                ],
                0..400
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_path_agrees_with_memchr_and_base64_simd(src in base64ish()) {
            check(&src);
        }
    }
}
