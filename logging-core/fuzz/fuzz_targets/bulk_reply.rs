//! `_bulk` answers from a cluster: parsing arbitrary bytes must not panic, and a parsed
//! answer has one result per element of `items`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_core::search::BulkReply;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = BulkReply::parse(data) {
        // The parser skips fields it ignores without checking their UTF-8 (serde_json's
        // fast path), so it may accept what a full `Value` parse refuses: compare only then.
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        let items = value.get("items").and_then(|v| v.as_array()).map_or(0, Vec::len);
        assert_eq!(reply.items.len(), items);
    }
});
