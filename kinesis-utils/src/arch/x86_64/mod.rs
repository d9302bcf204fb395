//! Backends for x86-64 CPUs.

pub(crate) mod avx512;
