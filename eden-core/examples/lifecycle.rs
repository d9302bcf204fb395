//! Create, redeploy, list and delete a preview environment on the in-memory cloud, printing
//! what was done to each resource and how many sequential round trips it took.
//!
//! `cargo run -p eden-core --example lifecycle`

use std::time::Duration;

use eden_core::instrument::Instrumentation;
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::{CreateOptions, DeleteOptions, Environment, Outcome, Profile};

fn print(title: &str, outcome: &Outcome, inst: &Instrumentation) {
    println!(
        "{title} ({} calls, {} sequential round trips):",
        inst.calls().len(),
        inst.sequential_round_trips()
    );
    for r in &outcome.resources {
        println!("  {r}");
    }
    inst.reset();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), eden_core::Error> {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    // 10 ms per call, so the round trips show in the timings.
    let inst = Instrumentation::new(Duration::from_millis(10));
    let eden = Environment::new(memory.cloud().instrumented(&inst));
    let v1 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
    let v2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";

    let plan = eden
        .create(
            &profile,
            "feature-1",
            v1,
            &CreateOptions::default().dry_run(true),
        )
        .await?;
    print("plan", &plan, &inst);
    let created = eden
        .create(&profile, "feature-1", v1, &CreateOptions::default())
        .await?;
    print("create", &created, &inst);
    let deployed = eden
        .create(&profile, "feature-1", v2, &CreateOptions::default())
        .await?;
    print("deploy", &deployed, &inst);
    for env in eden.list(None).await? {
        println!("listed: {}/{} -> {}", env.profile, env.name, env.endpoint);
    }
    inst.reset();
    let deleted = eden
        .delete(&profile, "feature-1", &DeleteOptions::default())
        .await?;
    print("delete", &deleted, &inst);
    Ok(())
}
