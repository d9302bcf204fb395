//! eden changes only what the environment it works on created, survives interrupted runs,
//! and is safe under concurrency by construction (the lease is part of create and delete):
//!
//! * collisions: names of the reference service, another profile's host, and resources with
//!   the derived names that eden did not create are refused by create and delete alike, and
//!   nothing changes (a full inventory before and after is equal);
//! * a create that crashed after any of its calls is finished by a later create, or undone by
//!   a later delete, within the lease bound;
//! * concurrent creates of one name leave one environment; the journal reports what existed
//!   as reused, and a rollback never removes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eden_core::cloud::{
    AliasTarget, AttrValue, CloudResult, CreateRule, CreateTargetGroup, DnsApi, DnsRecord,
    DocumentStore, EcsApi, Item, Listener, LoadBalancer, LoadBalancerApi, Page, PutMode,
    RecordChange, RegisterTaskDefinition, Rule, StateStore, Tag, TargetGroup, WriteCondition,
};
use eden_core::instrument::{Fault, Instrumentation};
use eden_core::memory::{Inventory, MemoryCloud, MemoryOptions};
use eden_core::{
    Action, Cloud, CreateOptions, DeleteOptions, EndpointsDocument, Environment, Error,
    ForeignOwner, LeaseOptions, Profile, ResourceKind,
};

const V1: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
const V2: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/50dc6c495c0c9188/443";
const REF_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-reference/0000000000000001";
const HOST: &str = "api-x.dev.example.com";

fn eden(cloud: Cloud) -> Environment {
    Environment::new(cloud).with_poll_interval(Duration::from_millis(1))
}

/// A seeded cloud whose endpoints document holds another team's entry, and the state table.
async fn setup() -> (Profile, Arc<MemoryCloud>) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    memory
        .put(
            &profile.endpoint_s3_bucket_name,
            &profile.endpoint_s3_key,
            br#"{"environments": [{"env": "dev", "name": "other-x", "api_endpoint": "x.example.com"}]}"#
                .to_vec(),
            PutMode::Create,
        )
        .await
        .unwrap();
    memory.ensure_table("eden").await.unwrap();
    (profile, memory)
}

fn not_owned(e: &Error) -> (ResourceKind, ForeignOwner) {
    match e.root() {
        Error::NotOwned { kind, owner, .. } => (*kind, owner.clone()),
        other => panic!("not a NotOwned: {other}"),
    }
}

/// Create and delete of `name` both refuse, with an error `check` accepts, and change nothing.
async fn both_refuse(
    memory: &Arc<MemoryCloud>,
    profile: &Profile,
    name: &str,
    check: impl Fn(&Error),
) {
    let before: Inventory = memory.inventory();
    let eden = eden(memory.cloud());
    let err = eden
        .create(profile, name, V1, &CreateOptions::default())
        .await
        .expect_err("create must refuse");
    check(&err);
    assert_eq!(
        memory.inventory(),
        before,
        "create changed something: {err}"
    );
    let err = eden
        .delete(profile, name, &DeleteOptions::default())
        .await
        .expect_err("delete must refuse");
    check(&err);
    assert_eq!(
        memory.inventory(),
        before,
        "delete changed something: {err}"
    );
    // The plans say the same.
    let plan = eden
        .create(profile, name, V1, &CreateOptions::default().dry_run(true))
        .await;
    assert!(plan.is_err(), "the plan of create must refuse too");
    let plan = eden
        .delete(profile, name, &DeleteOptions::default().dry_run(true))
        .await;
    assert!(plan.is_err(), "the plan of delete must refuse too");
}

#[tokio::test]
async fn the_reference_service_is_refused_before_any_call() {
    // As seen in a trial: name_prefix dev01 and environment `api` make `dev01-api`, the
    // reference service's own name (and its task definition family).
    let mut config = Profile::example().to_config();
    config.insert("name_prefix".into(), "dev01".into());
    config.insert(
        "reference_service_arn".into(),
        "arn:aws:ecs:us-east-1:123456789012:service/main/dev01-api".into(),
    );
    let profile = Profile::from_config("default", &config).unwrap();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let before = memory.inventory();
    let inst = Instrumentation::new(Duration::ZERO);
    let eden = eden(memory.cloud().instrumented(&inst));
    for result in [
        eden.create(&profile, "api", V1, &CreateOptions::default())
            .await,
        eden.delete(&profile, "api", &DeleteOptions::default())
            .await,
        eden.create(&profile, "api", V1, &CreateOptions::default().dry_run(true))
            .await,
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::ReferenceCollision {
                    what: "ECS service",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("dev01-api"), "{err}");
    }
    assert!(inst.calls().is_empty(), "{:?}", inst.calls());
    assert_eq!(memory.inventory(), before);
    assert_eq!(
        memory.peek_service("main", "dev01-api").unwrap().status,
        "ACTIVE"
    );
}

#[tokio::test]
async fn the_reference_target_group_is_refused() {
    // The seeded reference target group is `web-reference`: environment `reference` would
    // derive it.
    let (profile, memory) = setup().await;
    both_refuse(&memory, &profile, "reference", |e| {
        assert!(
            matches!(
                e,
                Error::ReferenceCollision {
                    what: "target group",
                    ..
                }
            ),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn another_profiles_host_is_refused() {
    // Profile `clash` shares the host prefix of the example profile (`api`): environment
    // `shared` of either has host api-shared.dev.example.com.
    let (profile, memory) = setup().await;
    let mut config = profile.to_config();
    config.insert("name_prefix".into(), "clash".into());
    config.insert("endpoint_update_key".into(), "clash_endpoint".into());
    let clash = Profile::from_config("clash", &config).unwrap();
    eden(memory.cloud())
        .create(&profile, "shared", V1, &CreateOptions::default())
        .await
        .unwrap();
    both_refuse(&memory, &clash, "shared", |e| {
        let (kind, owner) = not_owned(e);
        assert!(
            matches!(kind, ResourceKind::DnsRecord | ResourceKind::ListenerRule),
            "{e}"
        );
        assert!(
            matches!(&owner, ForeignOwner::Eden(o) if o.profile == "default" && o.environment == "shared"),
            "{e}"
        );
    })
    .await;
    // The owner's environment is untouched, and still deletes.
    eden(memory.cloud())
        .delete(&profile, "shared", &DeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_untagged_target_group_with_the_derived_name_is_refused() {
    let (profile, memory) = setup().await;
    let reference = memory.describe_target_group(REF_TG).await.unwrap().unwrap();
    memory
        .create_target_group(CreateTargetGroup {
            name: "web-x".into(),
            spec: reference.spec,
            tags: vec![Tag::new("team", "data")],
        })
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(
            not_owned(e),
            (ResourceKind::TargetGroup, ForeignOwner::Unrecorded),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_untagged_rule_for_the_host_is_refused() {
    let (profile, memory) = setup().await;
    memory
        .create_rule(CreateRule {
            listener_arn: LISTENER.into(),
            priority: 40,
            host: HOST.into(),
            target_group_arn: REF_TG.into(),
            tags: vec![],
        })
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(
            not_owned(e),
            (ResourceKind::ListenerRule, ForeignOwner::Unrecorded),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_untagged_dns_record_is_refused() {
    let (profile, memory) = setup().await;
    memory
        .upsert_record(
            &profile.dynamic_zone_id,
            &DnsRecord {
                name: HOST.into(),
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
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(
            not_owned(e),
            (ResourceKind::DnsRecord, ForeignOwner::Unrecorded),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_txt_record_of_external_dns_is_refused() {
    let (profile, memory) = setup().await;
    memory
        .upsert_record(
            &profile.dynamic_zone_id,
            &DnsRecord {
                name: HOST.into(),
                record_type: "TXT".into(),
                ttl: Some(300),
                values: vec![
                    "\"heritage=external-dns,external-dns/owner=k8s,external-dns/resource=ingress/x\""
                        .into(),
                ],
                ..DnsRecord::default()
            },
        )
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        let (kind, owner) = not_owned(e);
        assert_eq!(kind, ResourceKind::DnsRecord);
        assert!(
            matches!(&owner, ForeignOwner::Other(t) if t.contains("external-dns")),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_endpoints_entry_without_owner_is_refused() {
    let (profile, memory) = setup().await;
    let doc = br#"{"environments": [{"env": "dev", "name": "servicename-dev-x", "api_endpoint": "hand-made.example.com"}]}"#;
    let etag = memory
        .get(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
        .await
        .unwrap()
        .unwrap()
        .etag;
    memory
        .put(
            &profile.endpoint_s3_bucket_name,
            &profile.endpoint_s3_key,
            doc.to_vec(),
            PutMode::Update(etag),
        )
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(
            not_owned(e),
            (ResourceKind::EndpointsEntry, ForeignOwner::Unrecorded),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_untagged_service_and_family_are_refused() {
    let (profile, memory) = setup().await;
    // A service and family named like the environment, made by hand.
    let td = memory
        .register_task_definition(RegisterTaskDefinition {
            base: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1".into(),
            family: "web-x".into(),
            images: vec![],
            tags: vec![],
        })
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(not_owned(e).0, ResourceKind::TaskDefinition, "{e}");
    })
    .await;
    let mut spec = memory.peek_service("main", "web").unwrap().spec;
    spec.task_definition = td.arn;
    spec.propagate_tags = None;
    memory
        .create_service(eden_core::cloud::CreateService {
            cluster: "main".into(),
            name: "web-x".into(),
            spec,
            tags: vec![],
        })
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        let (kind, owner) = not_owned(e);
        assert!(
            matches!(kind, ResourceKind::Service | ResourceKind::TaskDefinition),
            "{e}"
        );
        assert_eq!(owner, ForeignOwner::Unrecorded);
    })
    .await;
}

#[tokio::test]
async fn a_state_item_eden_did_not_write_is_refused() {
    let (profile, memory) = setup().await;
    let item = Item::from([
        ("type".into(), AttrValue::S("default".into())),
        ("name".into(), AttrValue::S("x".into())),
        ("endpoint".into(), AttrValue::S("legacy.example.com".into())),
        ("last_updated".into(), AttrValue::N("1".into())),
        ("kind".into(), AttrValue::S("environment".into())),
    ]);
    memory
        .put_item("eden", item, WriteCondition::None)
        .await
        .unwrap();
    both_refuse(&memory, &profile, "x", |e| {
        assert_eq!(
            not_owned(e),
            (ResourceKind::StateItem, ForeignOwner::Unrecorded),
            "{e}"
        );
    })
    .await;
}

// ------------------------------------------------------------------ interrupted runs

const TTL: Duration = Duration::from_millis(300);

fn leased(cloud: Cloud) -> Environment {
    eden(cloud).with_lease(
        LeaseOptions::default()
            .ttl(TTL)
            .wait(Duration::from_secs(5))
            .poll(Duration::from_millis(10)),
    )
}

/// The calls of a clean create.
async fn create_calls(profile: &Profile) -> usize {
    let (_, memory) = setup().await;
    let inst = Instrumentation::new(Duration::ZERO);
    leased(memory.cloud().instrumented(&inst))
        .create(profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    inst.calls().len()
}

/// A create that lost the cloud after `k` calls (a crash, as the cloud sees it).
async fn crash_after(memory: &Arc<MemoryCloud>, profile: &Profile, k: usize) {
    let inst = Instrumentation::new(Duration::ZERO);
    inst.inject(Fault::From(k));
    let crashed = leased(memory.cloud().instrumented(&inst))
        .create(profile, "a", V1, &CreateOptions::default())
        .await;
    assert!(crashed.is_err(), "crash after {k} calls");
}

/// What one environment `a` consists of, without run ids and revisions.
fn one_environment(memory: &MemoryCloud, profile: &Profile) {
    let inv = memory.inventory();
    assert!(inv.services.contains(&"main/web-a".to_owned()), "{inv:#?}");
    assert_eq!(
        inv.target_groups.iter().filter(|t| *t == "web-a").count(),
        1
    );
    assert_eq!(
        inv.rules
            .iter()
            .filter(|r| r.contains("api-a.dev.example.com"))
            .count(),
        1,
        "{inv:#?}"
    );
    for kind in ["A", "TXT"] {
        assert_eq!(
            inv.records
                .iter()
                .filter(|r| r.starts_with(&format!("api-a.dev.example.com {kind} ")))
                .count(),
            1,
            "{inv:#?}"
        );
    }
    let doc = memory
        .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
        .unwrap();
    let doc = EndpointsDocument::parse(Some(&doc)).unwrap();
    assert_eq!(
        doc.get("dev", "servicename-dev-a", "api_endpoint"),
        Some("api-a.dev.example.com")
    );
    assert!(
        inv.item_details
            .iter()
            .any(|i| i.starts_with("eden default/a ")
                && i.contains("status=\"ready\"")
                && !i.contains("lease_until")),
        "{inv:#?}"
    );
}

#[tokio::test]
async fn a_crashed_create_is_finished_by_the_next_create_within_the_lease_bound() {
    let profile = Profile::example();
    let calls = create_calls(&profile).await;
    assert!(calls >= 20, "{calls}");
    for k in 1..calls {
        let (_, memory) = setup().await;
        crash_after(&memory, &profile, k).await;
        let started = Instant::now();
        let out = leased(memory.cloud())
            .create(&profile, "a", V2, &CreateOptions::default())
            .await;
        let took = started.elapsed();
        assert!(out.is_ok(), "crash after {k} calls: {out:?}");
        assert!(
            took < TTL + Duration::from_secs(1),
            "crash after {k}: {took:?}"
        );
        one_environment(&memory, &profile);
        let svc = memory.peek_service("main", "web-a").unwrap();
        let td = memory
            .peek_task_definition(
                "web-a",
                svc.spec
                    .task_definition
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(td.containers[0].image, V2, "crash after {k}");
    }
}

#[tokio::test]
async fn a_crashed_create_is_undone_by_the_next_delete_within_the_lease_bound() {
    let profile = Profile::example();
    let calls = create_calls(&profile).await;
    for k in 1..=calls {
        let (_, memory) = setup().await;
        let baseline = memory.inventory();
        if k < calls {
            crash_after(&memory, &profile, k).await;
        } else {
            leased(memory.cloud())
                .create(&profile, "a", V1, &CreateOptions::default())
                .await
                .unwrap();
        }
        let started = Instant::now();
        let out = leased(memory.cloud())
            .delete(&profile, "a", &DeleteOptions::default())
            .await;
        let took = started.elapsed();
        assert!(out.is_ok(), "crash after {k}: {out:?}");
        assert!(
            took < TTL + Duration::from_secs(1),
            "crash after {k}: {took:?}"
        );
        assert_eq!(memory.inventory(), baseline, "crash after {k} calls");
    }
}

#[tokio::test]
async fn state_is_written_first_and_publishing_comes_last() {
    let (profile, memory) = setup().await;
    let inst = Instrumentation::new(Duration::from_millis(2));
    leased(memory.cloud().instrumented(&inst))
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    let calls = inst.calls();
    let first = |op: &str| calls.iter().find(|c| c.op == op).unwrap().start;
    let last_write = |op: &str| calls.iter().rev().find(|c| c.op == op).unwrap();
    // The lease (and `creating`) is the first write.
    assert_eq!(calls[0].op, "dynamodb.update_item");
    let service = first("ecs.create_service");
    for publish in ["dns.change_records", "s3.put"] {
        assert!(
            first(publish) >= last_write("ecs.create_service").end,
            "{publish}"
        );
    }
    assert!(last_write("dynamodb.update_item").start > service);
}

// ------------------------------------------------------------------ concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_of_one_name_leave_one_environment() {
    let (profile, memory) = setup().await;
    let inst = Instrumentation::new(Duration::from_millis(1));
    let eden = Arc::new(
        eden(memory.cloud().instrumented(&inst)).with_lease(
            LeaseOptions::default()
                .wait(Duration::from_secs(60))
                .poll(Duration::from_millis(5)),
        ),
    );
    let mut handles = Vec::new();
    for i in 0..20 {
        let eden = eden.clone();
        let profile = profile.clone();
        handles.push(tokio::spawn(async move {
            let image = if i % 2 == 0 { V1 } else { V2 };
            eden.create(&profile, "a", image, &CreateOptions::default())
                .await
        }));
    }
    let mut created = 0;
    for h in handles {
        let out = h.await.unwrap().unwrap();
        if out.resource(ResourceKind::Service).unwrap().action == Action::Created {
            created += 1;
        }
    }
    assert_eq!(
        created, 1,
        "one created the service, the others deployed to it"
    );
    one_environment(&memory, &profile);
    assert_eq!(eden.list(None).await.unwrap().len(), 1);
}

// ------------------------------------------------------------------ the journal

/// A load balancer API whose listing of target groups misses one name, as a listing taken
/// just before another run created it would.
struct Racing {
    inner: Arc<MemoryCloud>,
    hide: String,
}

#[async_trait]
impl LoadBalancerApi for Racing {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        self.inner.describe_load_balancer(arn).await
    }
    async fn describe_listeners(&self, lb: &str) -> CloudResult<Vec<Listener>> {
        self.inner.describe_listeners(lb).await
    }
    async fn describe_rules(&self, l: &str, m: Option<String>) -> CloudResult<Page<Rule>> {
        self.inner.describe_rules(l, m).await
    }
    async fn create_rule(&self, r: CreateRule) -> CloudResult<Rule> {
        self.inner.create_rule(r).await
    }
    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.inner.delete_rule(arn).await
    }
    async fn describe_target_group_by_name(&self, n: &str) -> CloudResult<Option<TargetGroup>> {
        self.inner.describe_target_group_by_name(n).await
    }
    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        self.inner.describe_target_group(arn).await
    }
    async fn list_target_groups(&self, m: Option<String>) -> CloudResult<Page<TargetGroup>> {
        let mut page = self.inner.list_target_groups(m).await?;
        page.items.retain(|t| t.name != self.hide);
        Ok(page)
    }
    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        self.inner.describe_tags(arns).await
    }
    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        self.inner.target_group_attributes(arn).await
    }
    async fn create_target_group(&self, r: CreateTargetGroup) -> CloudResult<TargetGroup> {
        self.inner.create_target_group(r).await
    }
    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        a: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.inner.modify_target_group_attributes(arn, a).await
    }
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.inner.delete_target_group(arn).await
    }
}

/// A DNS API whose first lookups miss records, as lookups taken just before another run wrote
/// them would.
struct LateDns {
    inner: Arc<MemoryCloud>,
    misses: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl DnsApi for LateDns {
    async fn hosted_zone_name(&self, zone: &str) -> CloudResult<String> {
        self.inner.hosted_zone_name(zone).await
    }
    async fn find_record(&self, z: &str, n: &str, t: &str) -> CloudResult<Option<DnsRecord>> {
        if self
            .misses
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |m| m.checked_sub(1),
            )
            .is_ok()
        {
            return Ok(None);
        }
        self.inner.find_record(z, n, t).await
    }
    async fn change_records(&self, zone: &str, changes: &[RecordChange]) -> CloudResult<()> {
        self.inner.change_records(zone, changes).await
    }
}

/// The environment's resources made by an earlier run of the same environment (say one that
/// died), and a copy of the target group's tags.
async fn earlier_run(memory: &Arc<MemoryCloud>, profile: &Profile) -> Vec<Tag> {
    let eden = eden(memory.cloud());
    eden.create(profile, "x", V1, &CreateOptions::default())
        .await
        .unwrap();
    let tg = memory
        .describe_target_group_by_name("web-x")
        .await
        .unwrap()
        .unwrap();
    memory
        .describe_tags(std::slice::from_ref(&tg.arn))
        .await
        .unwrap()[&tg.arn]
        .clone()
}

#[tokio::test]
async fn a_target_group_create_answered_with_an_existing_one_is_reused_and_kept() {
    let (profile, memory) = setup().await;
    // An earlier run made the group (and the rest); take it all away but the group.
    let tags = earlier_run(&memory, &profile).await;
    let inst = Instrumentation::new(Duration::ZERO);
    let mut cloud = memory.cloud().instrumented(&inst);
    cloud.elb = Arc::new(Racing {
        inner: memory.clone(),
        hide: "web-x".into(),
    });
    // The service fails: everything this run made is rolled back, the group stays.
    inst.inject(Fault::Op {
        op: "ecs.update_service".into(),
        nth: 0,
    });
    let before = memory.inventory();
    let err = eden(cloud)
        .create(&profile, "x", V2, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cloud { .. }), "{err}");
    assert_eq!(memory.inventory(), before);
    let tg = memory
        .describe_target_group_by_name("web-x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        memory
            .describe_tags(std::slice::from_ref(&tg.arn))
            .await
            .unwrap()[&tg.arn],
        tags
    );
    // And when it works, it is reported as reused, not created.
    let mut cloud = memory.cloud();
    cloud.elb = Arc::new(Racing {
        inner: memory.clone(),
        hide: "web-x".into(),
    });
    let out = eden(cloud)
        .create(&profile, "x", V2, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.resource(ResourceKind::TargetGroup).unwrap().action,
        Action::Reused
    );
}

#[tokio::test]
async fn a_foreign_target_group_answered_by_create_is_refused_and_kept() {
    let (profile, memory) = setup().await;
    let reference = memory.describe_target_group(REF_TG).await.unwrap().unwrap();
    let theirs = vec![
        Tag::new("eden:profile", "other"),
        Tag::new("eden:environment", "x"),
        Tag::new("eden:run", "someone-else"),
    ];
    memory
        .create_target_group(CreateTargetGroup {
            name: "web-x".into(),
            spec: reference.spec,
            tags: theirs.clone(),
        })
        .await
        .unwrap();
    let before = memory.inventory();
    let mut cloud = memory.cloud();
    cloud.elb = Arc::new(Racing {
        inner: memory.clone(),
        hide: "web-x".into(),
    });
    let err = eden(cloud)
        .create(&profile, "x", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(not_owned(&err).0, ResourceKind::TargetGroup, "{err}");
    assert_eq!(memory.inventory(), before, "{err}");
}

#[tokio::test]
async fn a_dns_record_that_existed_before_the_write_is_reused_and_kept() {
    let (profile, memory) = setup().await;
    earlier_run(&memory, &profile).await;
    let records = |m: &MemoryCloud| {
        m.inventory()
            .records
            .into_iter()
            .filter(|r| r.starts_with(HOST))
            .collect::<Vec<_>>()
    };
    let existing = records(&memory);
    assert_eq!(existing.len(), 2);
    let inst = Instrumentation::new(Duration::ZERO);
    let mut cloud = memory.cloud().instrumented(&inst);
    // The reads miss the record; the write finds it (CREATE fails), reads again, and reuses.
    cloud.dns = Arc::new(LateDns {
        inner: memory.clone(),
        misses: 2.into(),
    });
    inst.inject(Fault::Op {
        op: "s3.put".into(),
        nth: 0,
    });
    let err = eden(cloud.clone())
        .create(&profile, "x", V2, &CreateOptions::default())
        .await;
    // The endpoints entry was there already (no put), so nothing failed.
    let out = err.unwrap();
    assert_eq!(
        out.resource(ResourceKind::DnsRecord).unwrap().action,
        Action::Reused
    );
    assert_eq!(records(&memory), existing);
    // A failure after publishing rolls back; the record that existed stays.
    let inst = Instrumentation::new(Duration::ZERO);
    let mut cloud = memory.cloud().instrumented(&inst);
    cloud.dns = Arc::new(LateDns {
        inner: memory.clone(),
        misses: 2.into(),
    });
    inst.inject(Fault::Op {
        op: "dynamodb.update_item".into(),
        nth: 1,
    });
    let err = eden(cloud)
        .create(&profile, "x", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err.root(), Error::Cloud { .. }), "{err}");
    assert_eq!(records(&memory), existing, "{err}");
}

#[tokio::test]
async fn the_state_item_records_status_run_and_resources() {
    let (profile, memory) = setup().await;
    let eden = eden(memory.cloud());
    let out = eden
        .create(&profile, "x", V1, &CreateOptions::default())
        .await
        .unwrap();
    let item = memory
        .get_item("eden", "default", "x")
        .await
        .unwrap()
        .unwrap();
    let s = |k: &str| item.get(k).and_then(AttrValue::as_s).unwrap_or_default();
    assert_eq!(s("status"), "ready");
    assert_eq!(Some(s("run")), out.run.as_deref());
    assert!(s("target_group_arn").contains(":targetgroup/web-x/"));
    assert!(s("rule_arn").contains(":listener-rule/"));
    assert!(!item.contains_key("lease_until"));
    let listed = eden.list(Some("default")).await.unwrap();
    assert_eq!(listed[0].status, eden_core::EnvironmentStatus::Ready);
    // Every resource it created carries the owner and the run.
    let inv = memory.inventory();
    let run = out.run.unwrap();
    for resource in ["web-x ", "api-x.dev.example.com ", "web-x:1 "] {
        let tags = inv.tags.iter().find(|t| t.starts_with(resource)).unwrap();
        assert!(
            tags.contains("eden:profile=default")
                && tags.contains("eden:environment=x")
                && tags.contains(&format!("eden:run={run}")),
            "{tags}"
        );
    }
    assert!(
        inv.records
            .iter()
            .any(|r| r.starts_with("api-x.dev.example.com TXT") && r.contains(&run))
    );
    let doc = memory
        .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
        .unwrap();
    let doc = EndpointsDocument::parse(Some(&doc)).unwrap();
    let owner = doc
        .owner("dev", "servicename-dev-x", "api_endpoint")
        .unwrap()
        .unwrap();
    assert_eq!(
        (owner.profile.as_str(), owner.environment.as_str()),
        ("default", "x")
    );
}

// ------------------------------------------------------------------ leases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_renews_its_lease_while_it_waits_for_a_stable_service() {
    let profile = Profile::example();
    let memory =
        MemoryCloud::with_reference(&profile, MemoryOptions::default().stabilize_polls(40));
    memory.ensure_table("eden").await.unwrap();
    let ttl = Duration::from_millis(120);
    let holder = eden(memory.cloud())
        .with_poll_interval(Duration::from_millis(10))
        .with_lease(LeaseOptions::default().ttl(ttl));
    let other =
        eden(memory.cloud()).with_lease(LeaseOptions::default().ttl(ttl).wait(Duration::ZERO));
    let create = tokio::spawn({
        let profile = profile.clone();
        async move {
            holder
                .create(
                    &profile,
                    "a",
                    V1,
                    &CreateOptions::default().wait_stable(Duration::from_secs(10)),
                )
                .await
        }
    });
    // Well past the lease's length, the holder still has it: it renews every third of it.
    tokio::time::sleep(ttl * 3).await;
    let err = other
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    let out = create.await.unwrap().unwrap();
    assert_eq!(
        out.resource(ResourceKind::Service).unwrap().action,
        Action::Created
    );
    one_environment(&memory, &profile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_lease_stops_its_holder_without_rollback_and_the_next_run_finishes() {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(
        &profile,
        MemoryOptions::default().stabilize_polls(1_000_000),
    );
    memory.ensure_table("eden").await.unwrap();
    let ttl = Duration::from_millis(150);
    let holder = eden(memory.cloud())
        .with_poll_interval(Duration::from_millis(10))
        .with_lease(LeaseOptions::default().ttl(ttl));
    let create = tokio::spawn({
        let profile = profile.clone();
        async move {
            holder
                .create(
                    &profile,
                    "a",
                    V1,
                    &CreateOptions::default().wait_stable(Duration::from_secs(30)),
                )
                .await
        }
    });
    tokio::time::sleep(ttl).await;
    let admin = eden(memory.cloud());
    let holder_info = admin.lease_holder("default", "a").await.unwrap().unwrap();
    assert_eq!(holder_info.operation, "create");
    let broken = admin.break_lease("default", "a").await.unwrap().unwrap();
    assert_eq!(broken.run, holder_info.run);
    let err = create.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    // Not rolled back: the service it made is still there, and the next create finishes it.
    assert!(
        memory
            .inventory()
            .services
            .contains(&"main/web-a".to_owned())
    );
    let memory_fast = memory.clone();
    memory_fast.edit_service("main", "web-a", |s| {
        for d in &mut s.deployments {
            d.rollout_state = Some("COMPLETED".into());
        }
    });
    let out = leased(memory.cloud())
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.resource(ResourceKind::Service).unwrap().action,
        Action::Updated
    );
    assert_eq!(
        out.resource(ResourceKind::TargetGroup).unwrap().action,
        Action::Reused
    );
    one_environment(&memory, &profile);
}
