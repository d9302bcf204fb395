//! The dry-run plan is made by the same decisions as the run: on any starting state (fresh,
//! deployed, half-made by a run that died, draining, colliding with someone else's
//! resources), what the plan says equals what create (and delete) then does, refusals
//! included, and the plan changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use eden_core::cloud::{
    AliasTarget, CreateRule, CreateTargetGroup, DnsApi, DnsRecord, DocumentStore, LoadBalancerApi,
    PutMode, StateStore,
};
use eden_core::instrument::{Fault, Instrumentation};
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::{
    Action, CreateOptions, DeleteOptions, Environment, Error, LeaseOptions, Outcome, Profile,
    ResourceKind,
};
use proptest::prelude::*;

const REF_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-reference/0000000000000001";
const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/50dc6c495c0c9188/443";

/// Someone else's resource in the way.
#[derive(Debug, Clone, Copy)]
enum Foreign {
    None,
    TargetGroup,
    Rule,
    Record,
    Entry,
}

#[derive(Debug, Clone)]
struct Start {
    /// Deployed once before.
    deployed: bool,
    /// A create died after this many calls (0: none).
    crashed_after: usize,
    /// Deleted, its service still DRAINING.
    draining: bool,
    foreign: Foreign,
    image: &'static str,
    name: &'static str,
    /// Other environments first (rule priorities).
    others: u8,
}

fn start() -> impl Strategy<Value = Start> {
    (
        any::<bool>(),
        prop_oneof![Just(0usize), 1usize..26],
        any::<bool>(),
        prop_oneof![
            4 => Just(Foreign::None),
            1 => Just(Foreign::TargetGroup),
            1 => Just(Foreign::Rule),
            1 => Just(Foreign::Record),
            1 => Just(Foreign::Entry),
        ],
        prop_oneof![
            Just("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"),
            Just("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2"),
            Just("nginx:1.27"),
            Just("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:missing"),
        ],
        prop_oneof![4 => Just("a"), 1 => Just("reference")],
        0u8..3,
    )
        .prop_map(
            |(deployed, crashed_after, draining, foreign, image, name, others)| Start {
                deployed,
                crashed_after,
                draining,
                foreign,
                image,
                name,
                others,
            },
        )
}

const V1: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";

fn eden(memory: &Arc<MemoryCloud>) -> Environment {
    Environment::new(memory.cloud())
        .with_poll_interval(Duration::from_millis(1))
        .with_lease(
            LeaseOptions::default()
                .ttl(Duration::from_millis(50))
                .poll(Duration::from_millis(5)),
        )
}

async fn build(start: &Start) -> (Profile, Arc<MemoryCloud>) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(
        &profile,
        MemoryOptions::default().draining_polls(if start.draining { 1000 } else { 0 }),
    );
    memory.ensure_table("eden").await.unwrap();
    let e = eden(&memory);
    for i in 0..start.others {
        e.create(&profile, &format!("o{i}"), V1, &CreateOptions::default())
            .await
            .unwrap();
    }
    if start.deployed || start.draining {
        e.create(&profile, start.name, V1, &CreateOptions::default())
            .await
            .ok();
    }
    if start.draining {
        e.delete(&profile, start.name, &DeleteOptions::default())
            .await
            .ok();
    }
    if start.crashed_after > 0 {
        let inst = Instrumentation::new(Duration::ZERO);
        inst.inject(Fault::From(start.crashed_after));
        let crashed = Environment::new(memory.cloud().instrumented(&inst)).with_lease(
            LeaseOptions::default()
                .ttl(Duration::from_millis(50))
                .wait(Duration::ZERO),
        );
        crashed
            .create(&profile, start.name, V1, &CreateOptions::default())
            .await
            .ok();
        // Let its lease expire.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let host = format!("api-{}.dev.example.com", start.name);
    match start.foreign {
        Foreign::None => {}
        Foreign::TargetGroup => {
            let spec = memory
                .describe_target_group(REF_TG)
                .await
                .unwrap()
                .unwrap()
                .spec;
            memory
                .create_target_group(CreateTargetGroup {
                    name: format!("web-{}", start.name),
                    spec,
                    tags: vec![],
                })
                .await
                .ok();
        }
        Foreign::Rule => {
            memory
                .create_rule(CreateRule {
                    listener_arn: LISTENER.into(),
                    priority: 900,
                    host,
                    target_group_arn: REF_TG.into(),
                    tags: vec![],
                })
                .await
                .ok();
        }
        Foreign::Record => {
            memory
                .upsert_record(
                    &profile.dynamic_zone_id,
                    &DnsRecord {
                        name: host,
                        record_type: "A".into(),
                        alias: Some(AliasTarget {
                            dns_name: "elsewhere.example.net".into(),
                            hosted_zone_id: "Z1".into(),
                            evaluate_target_health: false,
                        }),
                        ..DnsRecord::default()
                    },
                )
                .await
                .unwrap();
        }
        Foreign::Entry => {
            let doc = format!(
                r#"{{"environments": [{{"env": "dev", "name": "servicename-dev-{}", "api_endpoint": "by-hand"}}]}}"#,
                start.name
            );
            let current = memory
                .get(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
                .await
                .unwrap();
            let mode = match current {
                Some(d) => PutMode::Update(d.etag),
                None => PutMode::Create,
            };
            memory
                .put(
                    &profile.endpoint_s3_bucket_name,
                    &profile.endpoint_s3_key,
                    doc.into_bytes(),
                    mode,
                )
                .await
                .unwrap();
        }
    }
    (profile, memory)
}

/// What an outcome says, without ids (ARNs hold counters) and with the rule's priority.
fn summary(outcome: &Outcome) -> Vec<(ResourceKind, Action, Option<String>)> {
    outcome
        .resources
        .iter()
        .map(|r| {
            let note = r
                .note
                .clone()
                .filter(|n| r.kind == ResourceKind::ListenerRule && n.starts_with("priority"));
            (r.kind, r.action, note)
        })
        .collect()
}

/// What an error says, without the run-specific parts.
fn class(e: &Error) -> String {
    match e.root() {
        Error::NotOwned { kind, owner, .. } => format!("not owned: {kind} ({owner})"),
        other => {
            let text = format!("{other:?}");
            text.split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_owned()
        }
    }
}

fn same(plan: &Result<Outcome, Error>, run: &Result<Outcome, Error>) -> Result<(), TestCaseError> {
    match (plan, run) {
        (Ok(p), Ok(r)) => {
            prop_assert!(p.dry_run && !r.dry_run);
            prop_assert_eq!(summary(p), summary(r));
        }
        (Err(p), Err(r)) => prop_assert_eq!(class(p), class(r)),
        (p, r) => prop_assert!(false, "plan {:?} but run {:?}", p, r),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_plan_is_what_create_does(start in start()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (profile, memory) = build(&start).await;
            let e = eden(&memory);
            let before = memory.inventory();
            let options = CreateOptions::default();
            let plan = e.create(&profile, start.name, start.image, &options.clone().dry_run(true)).await;
            prop_assert_eq!(memory.inventory(), before, "the plan changed something");
            let run = e.create(&profile, start.name, start.image, &options).await;
            same(&plan, &run)
        })?;
    }

    #[test]
    fn the_plan_is_what_delete_does(start in start()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (profile, memory) = build(&start).await;
            let e = eden(&memory);
            let before = memory.inventory();
            let plan = e.delete(&profile, start.name, &DeleteOptions::default().dry_run(true)).await;
            prop_assert_eq!(memory.inventory(), before, "the plan changed something");
            let run = e.delete(&profile, start.name, &DeleteOptions::default()).await;
            same(&plan, &run)
        })?;
    }
}
