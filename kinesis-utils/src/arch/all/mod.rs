//! The portable code: safe Rust on every CPU, and the reference the vector backends are held
//! to.

pub(crate) mod base64;
pub(crate) mod find;
pub(crate) mod md5;
pub(crate) mod unescape;
