//! KPL deaggregation of arbitrary bytes: with and without the magic prefix, and as a well-formed
//! envelope (magic + bytes + their MD5) so that the protobuf decoder sees them. Whatever comes
//! out must re-aggregate to records that deaggregate to the same user records, and a batch of
//! such records decoded from event JSON (digests checked side by side, in SIMD lanes) must give
//! the same items as decoding each record on its own (digest checked by md-5).
#![no_main]

use base64::Engine as _;
use bytes::Bytes;
use kinesis_utils::kpl::{aggregate_all, deaggregate, MAGIC};
use kinesis_utils::{Decoder, Origin};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|data: &[u8]| {
    let mut with_magic = MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    let mut enveloped = with_magic.clone();
    enveloped.extend_from_slice(&Md5::digest(data));
    let inputs = [Bytes::copy_from_slice(data), Bytes::from(with_magic), Bytes::from(enveloped)];
    for input in &inputs {
        if let Some(users) = deaggregate(input) {
            if let Ok(aggs) = aggregate_all(users.clone(), usize::MAX) {
                let back: Vec<_> = aggs.iter().flat_map(|a| deaggregate(&a.data).unwrap_or_default()).collect();
                assert_eq!(back, users);
            }
        }
    }

    // The same records in one event, more of them than lanes, so that lanes are refilled.
    let records: Vec<&Bytes> = inputs.iter().cycle().take(20).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut event = String::from("{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            event.push(',');
        }
        event.push_str(&format!(
            "{{\"kinesis\":{{\"sequenceNumber\":\"{i}\",\"partitionKey\":\"p\",\"data\":\"{}\"}}}}",
            b64.encode(r)
        ));
    }
    event.push_str("]}");
    let decoder = Decoder::default();
    let batch = decoder.decode_event_json(event.as_bytes()).expect("valid event");
    let mut one_by_one = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let origin = Origin::new(&i.to_string())
            .with_record_index(i)
            .with_partition_key("p");
        decoder.decode_data((*r).clone(), origin, &mut one_by_one);
    }
    assert_eq!(batch.items, one_by_one);
});
