//! KPL deaggregation of arbitrary bytes, with and without the magic prefix; whatever comes
//! out must re-aggregate to records that deaggregate to the same user records.
#![no_main]

use bytes::Bytes;
use kinesis_utils::kpl::{aggregate_all, deaggregate, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut with_magic = MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    for input in [Bytes::copy_from_slice(data), Bytes::from(with_magic)] {
        if let Some(users) = deaggregate(&input) {
            if let Ok(aggs) = aggregate_all(users.clone(), usize::MAX) {
                let back: Vec<_> = aggs.iter().flat_map(|a| deaggregate(&a.data).unwrap_or_default()).collect();
                assert_eq!(back, users);
            }
        }
    }
});
