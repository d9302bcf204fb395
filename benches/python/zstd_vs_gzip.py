#!/usr/bin/env python3
"""Sizes of zstd and zlib on the benches' log lines, whole and as the archive writes them.

    pip install zstandard
    cargo run -p baikonur-benches --example write_batches
    python3 benches/python/zstd_vs_gzip.py target/bench-events/plain_10k-mixed.json

Reads a plain batch's Lambda event (one log line per Kinesis record) and prints, for zlib
level 6 and zstd levels 1 to 5 (the C libraries through Python's bindings, independent of
the Rust crates): the size of all the lines as one body compressed whole; of the archive's
per-`log_type` bodies each compressed whole; and of those bodies cut into 256 KiB chunks at
line breaks, each compressed on its own, as the archive writes them by default. Then, for
zstd, a sweep of its own parameters (strategy, minimum match, hash and search logs) on the
per-type bodies, with the speed of each against level 1 (medians of three; on a shared
machine only these ratios mean something).
"""
import base64
import json
import statistics
import sys
import time
import zlib

import zstandard

CHUNK = 256 * 1024


def chunks(body):
    """The archive's cutting: about equal chunks of at most CHUNK bytes, ending at line breaks."""
    n = max(1, -(-len(body) // CHUNK))
    start, out = 0, []
    for i in range(n - 1):
        share = min(CHUNK, -(-(len(body) - start) // (n - i)))
        at = body.find(b"\n", start + share)
        if at < 0 or at + 1 - start > CHUNK:
            at = body.rfind(b"\n", start, start + share)
        if at < 0:
            break
        out.append(body[start : at + 1])
        start = at + 1
    out.append(body[start:])
    return out


def timed(compress, bodies, runs=3):
    times, size = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        size = sum(len(compress(b)) for b in bodies)
        times.append(time.perf_counter() - t)
    return size, statistics.median(times)


def main(path):
    event = json.load(open(path))
    lines = [base64.b64decode(r["kinesis"]["data"]) + b"\n" for r in event["Records"]]
    body = b"".join(lines)
    groups = {}
    for line in lines:
        try:
            log_type = json.loads(line).get("log_type")
        except ValueError:
            log_type = None
        groups.setdefault(log_type, []).append(line)
    per_type = [b"".join(v) for v in groups.values()]
    chunked = [c for b in per_type for c in chunks(b)]
    print(f"{len(lines)} lines, {len(body)} bytes, {len(per_type)} per-type bodies")
    print("compressor | one body whole | per type whole | per type, 256 KiB chunks")
    compressors = [("zlib 6", lambda b: zlib.compress(b, 6))]
    for level in range(1, 6):
        compressors.append((f"zstd {level}", zstandard.ZstdCompressor(level=level).compress))
    for name, compress in compressors:
        sizes = [sum(len(compress(b)) for b in bodies) for bodies in ([body], per_type, chunked)]
        print(f"{name} | " + " | ".join(f"{s:,}" for s in sizes))

    level1, t1 = timed(zstandard.ZstdCompressor(level=1).compress, per_type)
    print(f"\nzstd parameters on the per-type bodies (zstd 1: {level1:,} bytes)")
    print("strategy | min match | hash log | search log | bytes | speed against zstd 1")
    for strategy in (1, 2, 3, 4):
        for min_match in (4, 5, 6, 7):
            for search_log in (1,) if strategy <= 2 else (1, 2, 3):
                params = zstandard.ZstdCompressionParameters.from_level(
                    1,
                    window_log=20,
                    chain_log=16,
                    hash_log=16,
                    strategy=strategy,
                    min_match=min_match,
                    search_log=search_log,
                )
                c = zstandard.ZstdCompressor(compression_params=params)
                size, t = timed(c.compress, per_type)
                print(f"{strategy} | {min_match} | 16 | {search_log} | {size:,} | {t1 / t:.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench-events/plain_10k-mixed.json")
