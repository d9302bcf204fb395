//! Bounded gzip decompression and CloudWatch Logs envelope parsing of arbitrary bytes,
//! directly and through the record decoder; the envelope fast path against serde_json.
#![no_main]

use bytes::Bytes;
use kinesis_utils::decode::{Decoder, DecoderConfig, Origin};
use kinesis_utils::{cwl, gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(plain) = gzip::gunzip_bounded(data, 1 << 20) {
        assert!(plain.len() <= 1 << 20);
    }
    let _ = cwl::parse(data);
    // The envelope fast path reads exactly as serde_json does, arena included.
    let (mut fast_arena, mut serde_arena) = (Vec::new(), Vec::new());
    let fast = format!("{:?}", cwl::parse_into(data, &mut fast_arena));
    let serde = format!("{:?}", cwl::parse_into_serde_only(data, &mut serde_arena));
    assert_eq!((fast, fast_arena), (serde, serde_arena));
    let mut gz = gzip::GZIP_MAGIC.to_vec();
    gz.extend_from_slice(data);
    let decoder = Decoder::new(DecoderConfig::default().max_decompressed_bytes(1 << 20));
    let origin = Origin {
        sequence_number: "1".into(),
        partition_key: "p".into(),
        ..Origin::default()
    };
    for input in [Bytes::copy_from_slice(data), Bytes::from(gz)] {
        let mut out = Vec::new();
        decoder.decode_data(input, origin.clone(), &mut out);
        assert!(!out.is_empty());
    }
});
