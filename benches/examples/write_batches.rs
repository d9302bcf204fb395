//! Writes the benches' generated Lambda events to files, so that other tools (the Python
//! baseline in `benches/python/original_baseline.py`, or `BENCH_EVENT_FILE`) see the same bytes.
//!
//! ```text
//! cargo run -p baikonur-benches --example write_batches [-- target/bench-events]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use baikonur_benches::{FaultMix, standard_batches};

fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "target/bench-events".into()),
    );
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (mix_name, mix) in [("clean", FaultMix::NONE), ("mixed", FaultMix::PIPELINE)] {
        for (name, batch) in standard_batches(mix) {
            let path = dir.join(format!("{name}-{mix_name}.json"));
            if let Err(e) = std::fs::write(&path, &batch.event_json) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!(
                "{}: {} records, {} payloads, {} payload bytes",
                path.display(),
                batch.records,
                batch.payloads,
                batch.payload_bytes
            );
        }
    }
    ExitCode::SUCCESS
}
