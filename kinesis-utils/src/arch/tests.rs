//! The differential harness: every backend this CPU has, against the portable one and against
//! the reference crates, over every length and every position.
//!
//! Each input is copied into an exact-size allocation (`Box<[u8]>`), so that it ends where its
//! allocation ends. Under AddressSanitizer (`scripts/asan`), a backend that reads a byte too
//! far fails here, even when the read would not fault on a real page.

use std::fmt::Debug;

use proptest::prelude::*;

use super::backends;
use super::{Level, detected, force_portable, forced, selected};

/// `bytes` in an allocation of exactly its size.
fn exact(bytes: &[u8]) -> Box<[u8]> {
    bytes.to_vec().into_boxed_slice()
}

/// Asserts that every run gives the first run's (the portable backend's) answer, and that
/// answer is `want`.
fn agree<T: PartialEq + Debug>(runs: &[backends::Run<T>], want: &T, input: &dyn Debug) {
    for (name, got) in runs {
        assert_eq!(got, want, "{name} on {input:?}");
    }
}

/// Which backends a routine must have on this CPU: a vector backend whose features the
/// machine has is never skipped.
fn expected_backends(needs: Level, vector: &[&str]) -> usize {
    if cfg!(target_arch = "x86_64") && detected() >= needs {
        vector.len()
    } else {
        0
    }
}

#[test]
fn detection_follows_the_cpu() {
    #[cfg(target_arch = "x86_64")]
    let cpu = {
        use std::arch::is_x86_feature_detected as has;
        if !has!("avx512f") {
            Level::Portable
        } else if !has!("avx512bw") {
            Level::Avx512F
        } else if !has!("avx512vbmi") {
            Level::Avx512Bw
        } else if !has!("avx512vbmi2") {
            Level::Avx512Vbmi
        } else {
            Level::Avx512Vbmi2
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let cpu = Level::Portable;
    assert_eq!(detected(), cpu);
    eprintln!("CPU: {cpu:?}; dispatch: {:?}", selected());

    let env = std::env::var_os(super::PORTABLE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    let was_forced = forced();
    if env || cfg!(kinesis_utils_portable) {
        assert!(
            was_forced,
            "the portable path was asked for but is not forced"
        );
    }
    assert_eq!(selected(), if was_forced { Level::Portable } else { cpu });
    force_portable(true);
    assert_eq!(selected(), Level::Portable);
    // Leave a forced run forced: the other tests run meanwhile.
    if !was_forced {
        force_portable(false);
        assert_eq!(selected(), cpu);
    }

    // Every backend the CPU has is in the harness's lists.
    assert_eq!(
        backends::find_special(b"").len(),
        1 + expected_backends(Level::Avx512Bw, &["avx512bw", "whole text"])
    );
    assert_eq!(
        backends::decode_base64_string(b"", b"").len(),
        1 + expected_backends(Level::Avx512Vbmi, &["avx512vbmi"])
    );
    assert_eq!(
        backends::unescape_string(b"", b"").len(),
        1 + expected_backends(Level::Avx512Vbmi2, &["avx512vbmi2"])
    );
    assert_eq!(
        backends::md5_digests(&[]).len(),
        // The dispatch within the portable backend, then each group count.
        4 + expected_backends(Level::Avx512F, &["avx512f"])
    );
}

mod find_special {
    use super::*;

    fn reference(text: &[u8]) -> Option<usize> {
        text.iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
    }

    fn check(text: &[u8]) {
        let text = exact(text);
        let want = reference(&text);
        agree(&backends::find_special(&text), &want, &text);
        assert_eq!(super::super::find_special(&text), want, "dispatched");
    }

    #[test]
    fn every_length_and_position() {
        // Bytes next to the special ones, and UTF-8, never match.
        let filler: Vec<u8> = [b'#', b'!', b'[', b']', 0x20, 0x7f, 0xe6, 0x97, 0xff]
            .into_iter()
            .cycle()
            .take(300)
            .collect();
        for len in 0..=200 {
            check(&filler[..len]);
            for at in 0..len {
                for c in [b'"', b'\\', 0, 0x1f] {
                    let mut text = filler[..len].to_vec();
                    text[at] = c;
                    check(&text);
                    // A second special byte after it must not win.
                    if at + 1 < len {
                        text[len - 1] = b'"';
                        check(&text);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_text(text in proptest::collection::vec(
            prop_oneof![30 => 0x20u8..0x7f, 1 => any::<u8>()], 0..300)) {
            check(&text);
        }
    }

    #[test]
    fn quotes_alone() {
        for len in 0..100 {
            for at in 0..len {
                let mut text = vec![b'a'; len];
                text[at] = b'"';
                if at + 1 < len {
                    text[len - 1] = b'"';
                }
                assert_eq!(
                    super::super::find_quote(&exact(&text)),
                    Some(at),
                    "{len} {at}"
                );
            }
            assert_eq!(super::super::find_quote(&exact(&vec![b'"' ^ 1; len])), None);
        }
    }
}

mod base64_string {
    use super::*;
    use base64::Engine as _;

    const PRIOR: &[u8] = b"earlier";

    /// The first quote, and base64-simd on what precedes it.
    fn reference(src: &[u8]) -> (Option<usize>, Vec<u8>) {
        let mut out = PRIOR.to_vec();
        let Some(end) = src.iter().position(|&c| c == b'"') else {
            return (None, out);
        };
        match base64_simd::STANDARD.decode_to_vec(&src[..end]) {
            Ok(bytes) => {
                out.extend_from_slice(&bytes);
                (Some(end), out)
            }
            Err(_) => (None, out),
        }
    }

    fn check(src: &[u8]) {
        let src = exact(src);
        let want = reference(&src);
        agree(&backends::decode_base64_string(&src, PRIOR), &want, &src);
        let mut out = PRIOR.to_vec();
        let got = super::super::decode_base64_string(&src, &mut out);
        assert_eq!((got, out), want, "dispatched");
    }

    #[test]
    fn every_length_and_position() {
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..=200usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let text = engine.encode(&bytes);
            // Ending at the allocation's end with the quote, with more JSON after it, and
            // without any quote.
            for suffix in ["\"", "\",\"x\":1}", ""] {
                check(format!("{text}{suffix}").as_bytes());
            }
            // A byte that ends or breaks the string at every position.
            for at in 0..text.len() {
                for c in [b'"', b'=', b'\\', b'!', 0x80] {
                    let mut src = text.clone().into_bytes();
                    src[at] = c;
                    check(&src);
                    src.push(b'"');
                    check(&src);
                }
            }
            // Unpadded and over-padded.
            check(format!("{}\"", text.trim_end_matches('=')).as_bytes());
            check(format!("{text}=\"").as_bytes());
        }
    }

    #[test]
    fn set_bits_after_the_padding_are_refused() {
        // "QQ==" is "A"; "QR==" carries a set bit the padding drops.
        for src in ["QR==\"", "QUJ=\"", "QUI=\"", "QQ==\""] {
            check(src.as_bytes());
        }
        let mut out = Vec::new();
        assert_eq!(
            super::super::decode_base64_string(b"QR==\"", &mut out),
            None
        );
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
        fn random_strings(src in base64ish()) {
            check(&src);
        }
    }
}

mod unescape_string {
    use super::*;

    const PRIOR: &[u8] = b"earlier";

    /// What serde_json reads the string as (`s` holds the content, the closing quote and
    /// anything after it), refusing `\u` escapes as the unescapers do.
    fn reference(s: &[u8]) -> backends::Unescaped {
        let mut at = 0;
        loop {
            match *s.get(at)? {
                b'"' => break,
                b'\\' => {
                    if *s.get(at + 1)? == b'u' {
                        return None;
                    }
                    at += 2;
                }
                _ => at += 1,
            }
        }
        let content = &s[..at];
        let quoted = [&b"\""[..], content, b"\""].concat();
        let text: String = serde_json::from_slice(&quoted).ok()?;
        Some((text.into_bytes(), content.contains(&b'\\'), at + 1))
    }

    fn check(s: &[u8]) {
        let s = exact(s);
        let runs = backends::unescape_string(&s, PRIOR);
        let want = &runs[0].1;
        agree(&runs, want, &String::from_utf8_lossy(&s));
        // The portable backend against serde_json, where serde_json can judge: valid UTF-8
        // without raw control bytes (serde refuses those; the unescapers keep them).
        if std::str::from_utf8(&s).is_ok() && !s.iter().any(|&c| c < 0x20) {
            assert_eq!(
                want,
                &reference(&s),
                "serde_json on {:?}",
                String::from_utf8_lossy(&s)
            );
        }
        let mut arena = PRIOR.to_vec();
        let got = super::super::unescape_string(&s, &mut arena).map(|(c, used)| match c {
            super::super::StringContent::Borrowed(b) => (b.to_vec(), false, used),
            super::super::StringContent::Unescaped(r) => (arena[r].to_vec(), true, used),
        });
        assert_eq!(&got, want, "dispatched");
    }

    #[test]
    fn every_length_and_position() {
        let filler: Vec<u8> = "ab{}:,é x".bytes().cycle().take(200).collect();
        for len in 0..=150 {
            let body = &filler[..len];
            for tail in [&b"\""[..], b"\",\"next\"", b""] {
                let mut s = body.to_vec();
                s.extend_from_slice(tail);
                check(&s);
            }
            // An escape (or a broken one) at every position, the string closed at the end
            // of the allocation, left open, or closed early by the escape itself.
            for at in 0..=len {
                for escape in [
                    &br"\n"[..],
                    br"\\",
                    br#"\""#,
                    br"\/",
                    br"\t",
                    br"\u0041",
                    br"\x",
                    b"\\",
                ] {
                    let mut s = body[..at].to_vec();
                    s.extend_from_slice(escape);
                    s.extend_from_slice(&body[at..]);
                    check(&s);
                    s.push(b'"');
                    check(&s);
                }
            }
        }
    }

    #[test]
    fn pieces_of_every_length_around_the_sixteen_and_sixty_four_byte_steps() {
        // Escapes at every distance from each other and from the end.
        for gap in 0..140 {
            for tail in (0..70).step_by(if gap < 40 { 1 } else { 7 }) {
                let piece = "é".repeat(gap / 2) + &"x".repeat(gap % 2);
                for body in [
                    format!(r#"\"{piece}\n{piece}\\{}"#, "y".repeat(tail)),
                    format!(r#"{piece}\"{}\t\/{piece}\""#, "y".repeat(tail)),
                ] {
                    let quoted = format!("\"{body}\"");
                    let want: String = serde_json::from_str(&quoted).unwrap_or_default();
                    let input = format!("{body}\",\"next\"");
                    let runs = backends::unescape_string(input.as_bytes(), PRIOR);
                    agree(
                        &runs,
                        &Some((want.into_bytes(), true, body.len() + 1)),
                        &quoted,
                    );
                }
            }
        }
    }

    #[test]
    fn borrows_without_escapes_and_refuses_what_it_cannot_read() {
        let runs = backends::unescape_string(br#"abc" x"#, PRIOR);
        agree(&runs, &Some((b"abc".to_vec(), false, 4)), &"abc");
        // Control bytes pass through, as in serde_json's raw bytes.
        let runs = backends::unescape_string(b"a\tb\"", PRIOR);
        agree(&runs, &Some((b"a\tb".to_vec(), false, 4)), &"tab");
        for bad in [r#"\u0041""#, r#"\x""#, r#"abc"#, r#"abc\"#, "\\"] {
            agree(
                &backends::unescape_string(bad.as_bytes(), PRIOR),
                &None,
                &bad,
            );
        }
    }

    proptest! {
        #[test]
        fn random_strings(
            parts in proptest::collection::vec(
                prop_oneof![
                    8 => "[a-z {}:,é]{0,20}",
                    4 => proptest::sample::select(vec![
                        r#"\""#, r#"\\"#, r#"\/"#, r#"\n"#, r#"\t"#, r#"\b"#, r#"\f"#, r#"\r"#,
                    ]).prop_map(str::to_owned),
                    1 => proptest::sample::select(vec![
                        r#"\u0041"#, r#"\x"#, "\\", "\"", "\t",
                    ]).prop_map(str::to_owned),
                ],
                0..40,
            )
        ) {
            let s = parts.concat();
            check(s.as_bytes());
            check(format!("{s}\" tail").as_bytes());
        }
    }
}

mod md5 {
    use super::*;
    use ::md5::{Digest, Md5};

    fn check(messages: &[&[u8]]) {
        let want: Vec<[u8; 16]> = messages.iter().map(|m| Md5::digest(m).into()).collect();
        agree(&backends::md5_digests(messages), &want, &messages.len());
        assert_eq!(super::super::md5_digests(messages), want, "dispatched");
    }

    #[test]
    fn every_length_in_every_lane() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        // Seventeen messages of consecutive lengths from `n`: every lane of the four-,
        // eight-, twelve- and sixteen-lane backends gets every length, and lanes are refilled
        // mid-way.
        for n in 0..=260 {
            let boxes: Vec<Box<[u8]>> = (n..n + 17).map(|len| exact(&data[..len])).collect();
            let messages: Vec<&[u8]> = boxes.iter().map(|b| &b[..]).collect();
            check(&messages);
            check(&messages[..1]);
            check(&messages[..2]);
            check(&messages[..3]);
        }
        check(&[]);
        assert_eq!(
            super::super::md5_digests(&[b"abc"])[0],
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
    }

    #[test]
    fn long_messages_start_and_end_in_the_middle_of_runs() {
        // KPL aggregates are kilobytes long: lanes run many blocks straight from the
        // messages and are refilled while the others are mid-message.
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let lens = [
            9000, 64, 8999, 128, 7000, 1, 0, 12_345, 4096, 4095, 4097, 55, 56, 63,
        ];
        let boxes: Vec<Box<[u8]>> = (0..40)
            .map(|i| exact(&data[i..i + lens[i % lens.len()] + i * 13]))
            .collect();
        let messages: Vec<&[u8]> = boxes.iter().map(|b| &b[..]).collect();
        for n in [3, 8, 9, 16, 17, 40] {
            check(&messages[..n]);
        }
    }

    proptest! {
        #[test]
        fn random_messages(messages in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..40)) {
            let boxes: Vec<Box<[u8]>> = messages.iter().map(|m| exact(m)).collect();
            let refs: Vec<&[u8]> = boxes.iter().map(|b| &b[..]).collect();
            check(&refs);
        }
    }
}
