//! The AVX-512 backends, chosen at run time.
//!
//! This is the one module of the crate where `unsafe` is allowed, besides the libdeflate
//! binding. Its soundness rests on two rules, both kept inside this folder:
//!
//! * A `#[target_feature]` function is called only through a token (`Avx512F`,
//!   `Avx512Bw`, `Avx512Vbmi`, `Avx512Vbmi2`). Only CPU detection creates a token, and only
//!   when the CPU and the operating system support every feature the token's functions
//!   enable.
//! * Memory is read and written only through the `memory` module: whole 64-byte arrays,
//!   masked loads of a slice's first bytes, and masked stores into a `Vec`'s reserved spare
//!   capacity.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU8, Ordering};

use crate::arch::all::unescape::StringContent;

mod base64;
mod find;
mod md5;
mod memory;
mod unescape;

const KNOWN: u8 = 1;
const F: u8 = 1 << 1;
const BW: u8 = 1 << 2;
const VBMI: u8 = 1 << 3;
const VBMI2: u8 = 1 << 4;

/// The features detected, as bits; 0 before the first detection. Written only by [`detect`].
static FEATURES: AtomicU8 = AtomicU8::new(0);

#[inline]
fn features() -> u8 {
    match FEATURES.load(Ordering::Relaxed) {
        0 => detect(),
        f => f,
    }
}

/// Each feature counts only with the ones before it, the way the tokens use them. CPUID
/// reports them separately, and a virtual CPU may mask any one of them.
#[cold]
fn detect() -> u8 {
    let mut f = KNOWN;
    if std::arch::is_x86_feature_detected!("avx512f") {
        f |= F;
        if std::arch::is_x86_feature_detected!("avx512bw") {
            f |= BW;
            if std::arch::is_x86_feature_detected!("avx512vbmi") {
                f |= VBMI;
                if std::arch::is_x86_feature_detected!("avx512vbmi2") {
                    f |= VBMI2;
                }
            }
        }
    }
    FEATURES.store(f, Ordering::Relaxed);
    f
}

/// Proof that the CPU has AVX-512F.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512F(());

/// Proof that the CPU has AVX-512F and BW.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Bw(());

/// Proof that the CPU has AVX-512F, BW and VBMI.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Vbmi(());

/// Proof that the CPU has AVX-512F, BW, VBMI and VBMI2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Vbmi2(());

impl Avx512F {
    /// The token, if the CPU has the features.
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        (features() & F != 0).then_some(Self(()))
    }

    /// The MD5 digest of every message, on sixteen lanes.
    pub(crate) fn md5_digests(self, messages: &[&[u8]]) -> Vec<[u8; 16]> {
        // SAFETY: this token exists only when the CPU has AVX-512F.
        unsafe { md5::digests(messages) }
    }
}

impl Avx512Bw {
    /// The token, if the CPU has the features.
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        (features() & BW != 0).then_some(Self(()))
    }

    /// The first `"`, `\` or control byte in `text`.
    pub(crate) fn find_special(self, text: &[u8]) -> Option<usize> {
        // SAFETY: this token exists only when the CPU has AVX-512F and BW.
        unsafe { find::find_special(text) }
    }
}

impl Avx512Vbmi {
    /// The token, if the CPU has the features.
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        (features() & VBMI != 0).then_some(Self(()))
    }

    /// `arch::decode_base64_string`.
    pub(crate) fn decode_base64_string(self, src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        // SAFETY: this token exists only when the CPU has AVX-512F, BW and VBMI.
        unsafe { base64::decode_json_string(src, out) }
    }
}

impl Avx512Vbmi2 {
    /// The token, if the CPU has the features.
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        (features() & VBMI2 != 0).then_some(Self(()))
    }

    /// `arch::unescape_string`.
    pub(crate) fn unescape_string<'a>(
        self,
        s: &'a [u8],
        arena: &mut Vec<u8>,
    ) -> Option<(StringContent<'a>, usize)> {
        // SAFETY: this token exists only when the CPU has AVX-512F, BW, VBMI and VBMI2.
        unsafe { unescape::unescape_string(s, arena) }
    }
}
