//! Every vector backend this CPU has against the portable one, on arbitrary bytes: the JSON
//! string scanner, the unescaper, the base64 data-string decoder and the MD5 lanes (the
//! input split into messages at each `0xff`). The input is copied into an allocation of
//! exactly its size, so that a read past its end is caught under AddressSanitizer.
#![no_main]

use kinesis_utils::arch::backends;
use libfuzzer_sys::fuzz_target;

fn agree<T: PartialEq + std::fmt::Debug>(what: &str, runs: &[backends::Run<T>]) {
    let (_, want) = &runs[0];
    for (name, got) in &runs[1..] {
        assert_eq!(got, want, "{what}: {name}");
    }
}

fuzz_target!(|data: &[u8]| {
    let data: Box<[u8]> = data.into();
    agree("find_special", &backends::find_special(&data));
    agree("unescape_string", &backends::unescape_string(&data, b"prior"));
    agree(
        "decode_base64_string",
        &backends::decode_base64_string(&data, b"prior"),
    );
    let messages: Vec<Box<[u8]>> = data.split(|&b| b == 0xff).map(Box::from).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    agree("md5_digests", &backends::md5_digests(&refs));
});
