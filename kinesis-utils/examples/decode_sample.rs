//! Decodes a Lambda Kinesis event and prints what it found.
//!
//! ```text
//! cargo run -p kinesis-utils --example decode_sample [-- path/to/event.json]
//! ```
//!
//! Without a path it decodes the bundled sample (plain JSON, gzip CloudWatch Logs, KPL).

use std::process::ExitCode;

use kinesis_utils::{Decoded, Decoder};

const SAMPLE: &[u8] = include_bytes!("data/sample_event.json");

fn main() -> ExitCode {
    let event = match std::env::args_os().nth(1) {
        Some(path) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.to_string_lossy());
                return ExitCode::FAILURE;
            }
        },
        None => SAMPLE.to_vec(),
    };
    let batch = match Decoder::default().decode_event_json(&event) {
        Ok(batch) => batch,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for item in &batch.items {
        let o = item.origin();
        let mut at = format!("record {} seq {}", o.record_index(), o.sequence_number());
        if let Some(sub) = o.sub_sequence() {
            at.push_str(&format!(" kpl#{sub}"));
        }
        if let Some(cwl) = o.cwl() {
            at.push_str(&format!(" cwl {} {}", cwl.log_group(), cwl.event_id()));
        }
        match item {
            Decoded::Payload(p) => println!("{at}: payload {}", String::from_utf8_lossy(&p.data)),
            Decoded::Control(_) => println!("{at}: CloudWatch Logs control message"),
            Decoded::Failed(f) => println!("{at}: FAILED ({}) {}", f.error.reason(), f.error),
        }
    }
    println!(
        "{} records -> {} payloads ({} bytes), {} control, {} failed",
        batch.records.len(),
        batch.payloads().count(),
        batch.payload_bytes(),
        batch.control_count(),
        batch.failures().count()
    );
    ExitCode::SUCCESS
}
