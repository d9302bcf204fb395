//! Every backend of each routine that this CPU can run, the portable one first, each by
//! name. For the differential harness (the `tests` module) and the fuzz targets.
//!
//! Which backends run depends on the CPU only. Forcing the portable path changes the
//! dispatch, not this list, so a run with the portable path forced still tests the vector
//! backends the machine has.

use super::all;
#[cfg(target_arch = "x86_64")]
use super::x86_64::avx512::{Avx512Bw, Avx512F, Avx512Vbmi, Avx512Vbmi2};

/// One backend's answer.
pub type Run<T> = (&'static str, T);

/// The first `"`, `\` or control byte of `text`, on every backend.
pub fn find_special(text: &[u8]) -> Vec<Run<Option<usize>>> {
    #[allow(unused_mut)]
    let mut runs = vec![("portable", all::find::find_special(text))];
    #[cfg(target_arch = "x86_64")]
    if let Some(bw) = Avx512Bw::new() {
        use all::find::{HEAD, Head, find_special_head};
        let found = match find_special_head(text) {
            Head::Found(at) => Some(at),
            Head::Absent => None,
            Head::Longer => text
                .get(HEAD..)
                .and_then(|rest| bw.find_special(rest))
                .map(|at| at + HEAD),
        };
        runs.push(("avx512bw", found));
        // The backend alone from the start of the text, not just past its head.
        runs.push(("avx512bw, whole text", bw.find_special(text)));
    }
    runs
}

/// A base64 `data` string decoded onto a copy of `prior`, on every backend: where the string
/// ends and the output.
pub fn decode_base64_string(src: &[u8], prior: &[u8]) -> Vec<Run<(Option<usize>, Vec<u8>)>> {
    let mut out = prior.to_vec();
    let found = all::base64::decode_json_string(src, &mut out);
    #[allow(unused_mut)]
    let mut runs = vec![("portable", (found, out))];
    #[cfg(target_arch = "x86_64")]
    if let Some(vbmi) = Avx512Vbmi::new() {
        let mut out = prior.to_vec();
        let found = vbmi.decode_base64_string(src, &mut out);
        runs.push(("avx512vbmi", (found, out)));
    }
    runs
}

/// What an unescaper made of a string: its content, whether it had escapes, the bytes it
/// used; `None` when it refused.
pub type Unescaped = Option<(Vec<u8>, bool, usize)>;

/// A JSON string's content unescaped after `prior` in an arena, on every backend. An
/// unescaped content must sit at the end of the arena, right after `prior`.
pub fn unescape_string(s: &[u8], prior: &[u8]) -> Vec<Run<Unescaped>> {
    fn run(
        s: &[u8],
        prior: &[u8],
        f: impl for<'a> FnOnce(
            &'a [u8],
            &mut Vec<u8>,
        ) -> Option<(all::unescape::StringContent<'a>, usize)>,
    ) -> Unescaped {
        let mut arena = prior.to_vec();
        let (content, used) = f(s, &mut arena)?;
        Some(match content {
            all::unescape::StringContent::Borrowed(b) => {
                assert_eq!(arena, prior, "a borrowed string wrote to the arena");
                (b.to_vec(), false, used)
            }
            all::unescape::StringContent::Unescaped(r) => {
                assert_eq!((r.start, r.end), (prior.len(), arena.len()), "arena range");
                assert_eq!(arena.get(..prior.len()), Some(prior), "arena prefix");
                (arena.get(r).unwrap_or_default().to_vec(), true, used)
            }
        })
    }
    #[allow(unused_mut)]
    let mut runs = vec![("portable", run(s, prior, all::unescape::unescape_string))];
    #[cfg(target_arch = "x86_64")]
    if let Some(vbmi2) = Avx512Vbmi2::new() {
        runs.push((
            "avx512vbmi2",
            run(s, prior, |s, arena| vbmi2.unescape_string(s, arena)),
        ));
    }
    runs
}

/// The MD5 digests of `messages`, on every backend, lanes used whatever the count.
pub fn md5_digests(messages: &[&[u8]]) -> Vec<Run<Vec<[u8; 16]>>> {
    #[allow(unused_mut)]
    let mut runs = vec![
        ("portable", all::md5::digests(messages)),
        (
            "portable, 4 lanes",
            all::md5::digests_in_lanes::<1, 4>(messages),
        ),
        (
            "portable, 8 lanes",
            all::md5::digests_in_lanes::<2, 8>(messages),
        ),
        (
            "portable, 12 lanes",
            all::md5::digests_in_lanes::<3, 12>(messages),
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    if let Some(f) = Avx512F::new() {
        runs.push(("avx512f", f.md5_digests(messages)));
    }
    runs
}
