//! Runs a Lambda Kinesis event through the pipeline on the local machine: records are archived
//! into a local directory, forwarded (KPL-aggregated) to an in-memory Kinesis stream, and
//! failures dead-lettered into the same directory. Prints the report and the object keys.
//!
//! ```text
//! cargo run -p logging-core --example local_pipeline [EVENT_JSON] [OUTPUT_DIR]
//! ```
//!
//! `EVENT_JSON` defaults to the bundled sample (plain JSON, gzip CloudWatch Logs and KPL
//! records), `OUTPUT_DIR` to `target/local_pipeline`.

use std::path::PathBuf;
use std::sync::Arc;

use kinesis_utils::memory::InMemoryKinesis;
use logging_core::dead_letter::{DeadLetter, DeadLetterConfig};
use logging_core::forward::{ForwardConfig, KinesisForward};
use logging_core::store::{LocalDirStore, ObjectStore};
use logging_core::{ArchiveConfig, Pipeline, S3Archive, SchemaConfig, TypeFilter};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../kinesis-utils/examples/data/sample_event.json"
);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let event_path = args
        .next()
        .map_or_else(|| PathBuf::from(SAMPLE), PathBuf::from);
    let out_dir = args.next().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/local_pipeline"
            ))
        },
        PathBuf::from,
    );
    let event = std::fs::read(&event_path)
        .map_err(|e| format!("reading the event {}: {e}", event_path.display()))?;

    let store = Arc::new(LocalDirStore::new(&out_dir));
    let archive = S3Archive::builder(
        store.clone(),
        ArchiveConfig {
            prefix: "archive".into(),
            ..ArchiveConfig::default()
        },
    );
    let kinesis = Arc::new(InMemoryKinesis::new());
    let stream = kinesis.create_stream("forwarded", 2)?;
    let forward = KinesisForward::new(
        kinesis.clone(),
        ForwardConfig {
            stream: "forwarded".into(),
            aggregate: true,
            ..ForwardConfig::default()
        },
    )?;
    let dead_letter = DeadLetter::builder(
        store.clone(),
        DeadLetterConfig {
            prefix: "failed".into(),
            ..DeadLetterConfig::default()
        },
    );
    // The schema is given once: the archive and the dead letter take their zone and the
    // unknown-type prefix from it.
    let pipeline = Pipeline::builder(SchemaConfig::default())
        .route(TypeFilter::all(), archive)
        .route(TypeFilter::all(), forward)
        .dead_letter(dead_letter)
        .build();

    let out = pipeline.process(&event).await?;
    println!("event: {}", event_path.display());
    println!("report:\n{}", serde_json::to_string_pretty(&out.report)?);
    println!("lambda response: {}", serde_json::to_string(&out.response)?);
    println!("objects in {}:", store.location());
    for key in store.list("").await? {
        println!("  {key}");
    }
    println!(
        "Kinesis records in stream \"forwarded\": {}",
        kinesis.records(&stream)?.len()
    );
    Ok(())
}
