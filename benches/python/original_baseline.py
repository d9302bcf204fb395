#!/usr/bin/env python3
"""Times the original Python modules on the benches' generated batches, for comparison.

    pip install amazon-kinesis-utils
    cargo run -p baikonur-benches --example write_batches
    python3 benches/python/original_baseline.py target/bench-events

For each event file it measures, on one core, the same two jobs the Rust benches measure:
  decode:   amazon_kinesis_utils.kinesis.parse_records (KPL, base64, gzip, CloudWatch Logs)
  pipeline: the kinesis-to-s3 module's work per batch: parse_records, json.loads,
            baikonur_logging.parse_payload_to_log_dict, and save_json_logs_to_s3 with a client
            that discards the upload (so only CPU is timed), gzip level 9 as the module used.
Throughput is in MB/s (10^6 bytes) of log payload produced, as in the Rust benches.
"""
import glob
import json
import os
import sys
import time

from amazon_kinesis_utils import baikonur_logging, kinesis


class DiscardingS3:
    def upload_fileobj(self, fileobj, bucket, key):
        fileobj.read()


def decode(records):
    return [p for p in kinesis.parse_records(records)]


def pipeline(records):
    log_dict, failed_dict = {}, {}
    for payload in kinesis.parse_records(records):
        try:
            obj = json.loads(payload)
        except ValueError:
            continue  # the original dropped non-JSON payloads silently
        baikonur_logging.parse_payload_to_log_dict(
            obj, log_dict, failed_dict, "log_id", "time", "log_type", "unknown")
    client = DiscardingS3()
    baikonur_logging.save_json_logs_to_s3(client, log_dict, key_prefix="bucket")
    baikonur_logging.save_json_logs_to_s3(client, failed_dict, key_prefix="bucket")


def best_of(fn, arg, seconds=3.0):
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t = time.perf_counter()
        fn(arg)
        d = time.perf_counter() - t
        best, spent = min(best, d), spent + d
    return best


def main(directory):
    import logging
    logging.disable(logging.CRITICAL)
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path, "rb") as f:
            event = json.load(f)
        records = event["Records"]
        payload_bytes = sum(len(p.encode()) for p in decode(records))
        for name, fn in (("decode", decode), ("pipeline", pipeline)):
            t = best_of(fn, records)
            print("%-28s %-8s %8.1f ms %8.1f MB/s" % (
                os.path.basename(path), name, t * 1e3, payload_bytes / t / 1e6))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench-events")
