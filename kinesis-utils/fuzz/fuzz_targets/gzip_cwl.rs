//! Bounded gzip decompression and CloudWatch Logs envelope parsing of arbitrary bytes,
//! directly and through the record decoder; the envelope fast path against serde_json.
#![no_main]

use std::io::Read;

use bytes::Bytes;
use kinesis_utils::decode::{Decoder, DecoderConfig, Origin};
use kinesis_utils::{cwl, gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The one-shot inflater against flate2's multi-member reader: same bytes, same verdict.
    for limit in [1 << 20, 100] {
        let got = gzip::gunzip_bounded(data, limit);
        let mut want = Vec::new();
        let read = flate2::bufread::MultiGzDecoder::new(data)
            .take(limit as u64 + 1)
            .read_to_end(&mut want);
        match (got, read) {
            (Ok(plain), Ok(_)) => {
                assert!(plain.len() <= limit);
                assert_eq!(plain, want);
            }
            (Err(gzip::GzipError::TooLarge { .. }), Ok(_)) => assert!(want.len() > limit),
            (Err(gzip::GzipError::Corrupt { .. }), Err(_)) => {}
            (got, read) => panic!("{got:?} vs {read:?} ({} bytes read)", want.len()),
        }
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
    let origin = Origin::new("1").with_partition_key("p");
    for input in [Bytes::copy_from_slice(data), Bytes::from(gz)] {
        let mut out = Vec::new();
        decoder.decode_data(input, origin.clone(), &mut out);
        assert!(!out.is_empty());
    }
});
