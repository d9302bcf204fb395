//! Archive compression read back by independent readers: Python's `gzip` and `zstandard`
//! (the test command installs `zstandard`). Bodies of many chunks, compressed on several
//! threads, must read back whole, and gzip level 6 must stay readable by zlib's own reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::num::NonZeroUsize;
use std::process::{Command, Stdio};

use logging_core::compress::{Compression, Compressor, chunk_ends};

/// NDJSON log lines, `n` of them, deterministic.
fn body(n: usize) -> Vec<u8> {
    let mut x: u64 = 17;
    let mut out = Vec::new();
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let words = ["request", "served", "cache", "miss", "日本語"];
        let message: Vec<&str> = (0..(x >> 60) as usize)
            .map(|k| words[(x >> (k * 3)) as usize % words.len()])
            .collect();
        writeln!(
            out,
            "{{\"log_type\":\"app\",\"log_id\":\"{x:016x}\",\"n\":{i},\"message\":\"{}\"}}",
            message.join(" ")
        )
        .unwrap();
    }
    out
}

/// What the Python reader `module` makes of `compressed`: the decompressed bytes.
fn python_reads(module: &str, compressed: &[u8]) -> Vec<u8> {
    let script = match module {
        "gzip" => {
            "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"
        }
        // read_across_frames: an object is several frames, as `zstd -d` reads them.
        "zstandard" => {
            "import io, sys, zstandard\n\
             r = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(sys.stdin.buffer.read()), read_across_frames=True)\n\
             sys.stdout.buffer.write(r.read())"
        }
        other => panic!("{other}"),
    };
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent-reader tests (scripts/test installs its modules)");
    let mut stdin = child.stdin.take().unwrap();
    let input = compressed.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "python3 {module} failed (is it installed? scripts/test installs zstandard): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn python_reads_chunked_gzip_and_zstd_written_on_several_threads() {
    let plain = body(40_000);
    let chunk = NonZeroUsize::new(128 * 1024).unwrap();
    assert!(
        chunk_ends(&plain, chunk).len() >= 8,
        "{} bytes",
        plain.len()
    );
    let mut cases = vec![
        ("gzip", Compression::gzip(1).unwrap()),
        ("gzip", Compression::default()),
        ("gzip", Compression::gzip(12).unwrap()),
    ];
    if cfg!(feature = "zstd") {
        for level in [-3, 1, 3, 9] {
            cases.push(("zstandard", Compression::zstd(level).unwrap()));
        }
    }
    for (reader, compression) in cases {
        let compressor = Compressor::new(compression)
            .with_threads(NonZeroUsize::new(4).unwrap())
            .with_chunk_size(Some(chunk));
        let bodies = compressor.compress_all(vec![plain.clone(), b"{\"one\":1}\n".to_vec()]);
        let many = bodies[0].as_ref().unwrap();
        let one = bodies[1].as_ref().unwrap();
        assert_eq!(python_reads(reader, many), plain, "{compression}");
        assert_eq!(python_reads(reader, one), b"{\"one\":1}\n", "{compression}");
        // Whole (one member or frame), as with chunking off.
        let whole = compressor.with_chunk_size(None).compress(&plain).unwrap();
        assert_eq!(python_reads(reader, &whole), plain, "{compression}");
    }
}

#[test]
#[cfg(feature = "zstd")]
fn zstd_frames_carry_their_size_and_a_checksum() {
    // Python's zstandard reports each frame's header: the content size is there (readers can
    // size their buffers) and the checksum flag is set (readers verify the content).
    let plain = body(5_000);
    let zst = Compressor::new(Compression::zstd(3).unwrap())
        .with_chunk_size(None)
        .compress(&plain)
        .unwrap();
    let script = "import sys, zstandard\n\
                  p = zstandard.get_frame_parameters(sys.stdin.buffer.read())\n\
                  print(p.content_size, p.has_checksum)";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&zst).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} True", plain.len())
    );
    // A damaged byte inside the frame is refused by the checksum or the decoder, not read back
    // as other bytes.
    let mut bad = zst.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x55;
    assert!(!zstd::stream::decode_all(&bad[..]).is_ok_and(|back| back == plain));
}
