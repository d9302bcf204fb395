//! Compressed `_bulk` answers: inflating arbitrary bytes as a gzip answer (bounded) and then
//! reading them must not panic, and nothing inflates past the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_core::search::{BulkReply, decode_answer};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = decode_answer(Some("gzip"), bytes::Bytes::copy_from_slice(data), LIMIT) {
        assert!(body.len() <= LIMIT);
        let _ = BulkReply::parse(&body);
    }
});
