//! Deterministic generators of realistic Lambda Kinesis batches for the benches and tests.
