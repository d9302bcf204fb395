//! What a Fluent forward server sends back (HELO, PONG, `{"ack": ...}`) as arbitrary bytes:
//! the client's msgpack reader and handshake must return an error, never panic or hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = runtime().block_on(logging_core::fluent::fuzz_server_bytes(data));
});
