//! Whole Lambda event JSON from arbitrary bytes, and arbitrary record data inside a valid
//! event: an error or a batch that accounts for every record, never a panic. The fast event
//! scanner and the serde_json path must give the same result for every input, and so must
//! the fast scanner with its first pass cut in two (as on several threads).
#![no_main]

use kinesis_utils::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoder = Decoder::default();
    let show = |r: Result<kinesis_utils::DecodedBatch, kinesis_utils::decode::EventError>| match r {
        Ok(b) => format!("{b:?}"),
        Err(e) => format!("error: {e}"),
    };
    let whole = show(decoder.decode_event_json(data));
    assert_eq!(whole, show(decoder.decode_event_json_serde_only(data)));
    // The first pass cut in two, as on several threads: just after a comma past the middle
    // (where a record may start), and at the middle itself.
    let middle = data.len() / 2;
    let after_comma = data[middle..].iter().position(|&c| c == b',').map(|i| middle + i + 1);
    for stop in after_comma.into_iter().chain([middle]) {
        assert_eq!(whole, show(decoder.decode_event_json_cut_at(data, stop)), "stop {stop}");
    }
    // Use the bytes as record data too, split in up to four records, base64 by hand.
    let chunks: Vec<&[u8]> = data.chunks(data.len().div_ceil(4).max(1)).collect();
    let mut event = String::from("{\"Records\":[");
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            event.push(',');
        }
        event.push_str(&format!(
            "{{\"kinesis\":{{\"sequenceNumber\":\"{i}\",\"partitionKey\":\"p\",\"data\":\"{}\"}}}}",
            b64(c)
        ));
    }
    event.push_str("]}");
    let batch = decoder.decode_event_json(event.as_bytes()).expect("valid event");
    assert_eq!(batch.records.len(), chunks.len());
});

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
