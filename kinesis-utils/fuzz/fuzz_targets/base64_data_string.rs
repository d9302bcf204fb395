//! A `data` string's contents and what follows them, from arbitrary bytes: every backend of
//! the data-string decoder this CPU has (AVX-512 VBMI and the portable one) must agree on
//! where the string ends, on whether it is canonical base64 and on the bytes, and leave the
//! output as it was when they refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prior = b"prior";
    let runs = kinesis_utils::arch::backends::decode_base64_string(data, prior);
    let (_, want) = &runs[0];
    if want.0.is_none() {
        assert_eq!(want.1, prior);
    }
    for (name, got) in &runs[1..] {
        assert_eq!(got, want, "{name}");
    }
});
