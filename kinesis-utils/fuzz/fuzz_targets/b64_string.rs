//! A `data` string's contents and what follows them, from arbitrary bytes: every decoding
//! path this CPU has (AVX-512 VBMI and the portable one) must agree on where the string
//! ends, on whether it is canonical base64 and on the bytes, and leave the output as it was
//! when they refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prior = b"prior";
    let paths = kinesis_utils::b64x::all_paths(data, prior);
    let (_, want, want_out) = &paths[0];
    if want.is_none() {
        assert_eq!(want_out, prior);
    }
    for (name, got, out) in &paths[1..] {
        assert_eq!((got, out), (want, want_out), "{name}");
    }
});
