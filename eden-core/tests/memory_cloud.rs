//! Create, deploy, delete and list on the in-memory cloud: convergence, rollback, partial
//! states, concurrency and the load balancer's limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use eden_core::cloud::{DocumentStore, PutMode, StateStore};
use eden_core::instrument::{Fault, Instrumentation};
use eden_core::memory::{Inventory, MemoryCloud, MemoryOptions};
use eden_core::{
    Action, CreateOptions, DeleteOptions, EndpointsDocument, Environment, Error, Profile,
    ResourceKind,
};

const V1: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
const V2: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
const OTHER_ENTRY: &str =
    r#"{"environments": [{"env": "dev", "name": "other-x", "api_endpoint": "x.example.com"}]}"#;

/// A seeded cloud with an endpoints document holding someone else's entry.
async fn setup(options: MemoryOptions) -> (Profile, Arc<MemoryCloud>) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, options);
    memory
        .put(
            &profile.endpoint_s3_bucket_name,
            &profile.endpoint_s3_key,
            OTHER_ENTRY.as_bytes().to_vec(),
            PutMode::Create,
        )
        .await
        .unwrap();
    (profile, memory)
}

fn eden(cloud: eden_core::Cloud) -> Environment {
    Environment::new(cloud).with_poll_interval(Duration::from_millis(1))
}

fn action(outcome: &eden_core::Outcome, kind: ResourceKind) -> Action {
    outcome
        .resource(kind)
        .unwrap_or_else(|| panic!("{kind} missing"))
        .action
}

/// Only the state table's existence differs from a fresh cloud; nothing eden names remains.
fn assert_clean(before: &Inventory, after: &Inventory) {
    assert_eq!(before, after);
}

#[tokio::test]
async fn full_lifecycle() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let baseline = memory.inventory();
    let eden = eden(memory.cloud());

    let created = eden
        .create(&profile, "feature-1", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        created.host.as_deref(),
        Some("api-feature-1.dev.example.com")
    );
    for kind in [
        ResourceKind::TaskDefinition,
        ResourceKind::TargetGroup,
        ResourceKind::ListenerRule,
        ResourceKind::Service,
        ResourceKind::DnsRecord,
        ResourceKind::EndpointsEntry,
        ResourceKind::StateItem,
    ] {
        assert_eq!(action(&created, kind), Action::Created, "{kind}");
    }
    assert_eq!(action(&created, ResourceKind::Image), Action::Checked);
    let rule = created.resource(ResourceKind::ListenerRule).unwrap();
    assert_eq!(
        rule.note.as_deref(),
        Some("priority 2"),
        "lowest free priority"
    );

    let inv = memory.inventory();
    assert_eq!(inv.services, ["main/web", "main/web-feature-1"]);
    assert!(
        inv.task_definitions
            .contains(&"web-feature-1:1 ACTIVE".to_owned())
    );
    assert!(
        inv.rules
            .contains(&"2 api-feature-1.dev.example.com -> web-feature-1".to_owned())
    );
    assert!(
        inv.records
            .iter()
            .any(|r| r.starts_with("api-feature-1.dev.example.com A = alias "))
    );
    assert!(
        inv.records
            .iter()
            .any(|r| r.starts_with("api-feature-1.dev.example.com TXT = \"heritage=eden,"))
    );

    // The clone copies the reference (capacity provider strategy, never propagateTags NONE).
    let svc = memory.peek_service("main", "web-feature-1").unwrap();
    assert_eq!(svc.spec.capacity_provider_strategy.len(), 1);
    assert_eq!(svc.spec.launch_type, None);
    assert_eq!(svc.spec.propagate_tags, None);
    assert!(svc.spec.enable_execute_command);
    assert_eq!(
        svc.spec
            .network_configuration
            .as_ref()
            .unwrap()
            .subnets
            .len(),
        2
    );
    assert!(
        svc.tags
            .iter()
            .any(|t| t.key == "eden:environment" && t.value == "feature-1")
    );
    let td = memory.peek_task_definition("web-feature-1", 1).unwrap();
    assert_eq!(td.containers[0].image, V1);
    assert_eq!(
        td.containers[1].name, "log-router",
        "other containers untouched"
    );
    assert_eq!(
        td.task_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/web-task")
    );
    assert!(
        td.tags.iter().any(|t| t.key == "team"),
        "reference tags copied"
    );
    assert!(td.tags.iter().any(|t| t.key == "eden:profile"));

    let doc = memory
        .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
        .unwrap();
    let doc = EndpointsDocument::parse(Some(&doc)).unwrap();
    assert_eq!(
        doc.get("dev", "servicename-dev-feature-1", "api_endpoint"),
        Some("api-feature-1.dev.example.com")
    );
    assert_eq!(
        doc.get("dev", "other-x", "api_endpoint"),
        Some("x.example.com")
    );

    let listed = eden.list(Some("default")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].endpoint, "api-feature-1.dev.example.com");
    assert_eq!(eden.list(None).await.unwrap(), listed);
    assert!(eden.list(Some("other")).await.unwrap().is_empty());

    // Deploy a new image to the existing environment.
    let deployed = eden
        .create(&profile, "feature-1", V2, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(action(&deployed, ResourceKind::Service), Action::Updated);
    assert_eq!(action(&deployed, ResourceKind::TargetGroup), Action::Reused);
    assert_eq!(
        action(&deployed, ResourceKind::ListenerRule),
        Action::Reused
    );
    assert_eq!(action(&deployed, ResourceKind::DnsRecord), Action::Reused);
    assert_eq!(
        action(&deployed, ResourceKind::EndpointsEntry),
        Action::Reused
    );
    assert_eq!(action(&deployed, ResourceKind::StateItem), Action::Updated);
    let svc = memory.peek_service("main", "web-feature-1").unwrap();
    assert!(svc.spec.task_definition.ends_with("web-feature-1:2"));

    let deleted = eden
        .delete(&profile, "feature-1", &DeleteOptions::default())
        .await
        .unwrap();
    for kind in [
        ResourceKind::TargetGroup,
        ResourceKind::ListenerRule,
        ResourceKind::Service,
        ResourceKind::DnsRecord,
        ResourceKind::EndpointsEntry,
        ResourceKind::StateItem,
    ] {
        assert_eq!(action(&deleted, kind), Action::Deleted, "{kind}");
    }
    let tds = deleted
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::TaskDefinition)
        .count();
    assert_eq!(tds, 2, "both revisions deleted");
    assert_clean(&baseline, &memory.inventory());
    assert!(eden.list(None).await.unwrap().is_empty());

    // Deleting again finds everything already gone.
    let again = eden
        .delete(&profile, "feature-1", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(
        again
            .resources
            .iter()
            .all(|r| r.action == Action::AlreadyAbsent),
        "{again:?}"
    );
}

#[tokio::test]
async fn create_twice_converges() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let eden = eden(memory.cloud());
    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    let first = memory.inventory();
    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    let second = memory.inventory();
    assert_eq!(first.rules, second.rules);
    assert_eq!(first.target_groups, second.target_groups);
    assert_eq!(first.services, second.services);
    assert_eq!(first.records, second.records);
    assert_eq!(first.documents, second.documents);
    assert_eq!(first.items, second.items);
    assert_eq!(
        second.task_definitions.len(),
        first.task_definitions.len() + 1,
        "one new revision"
    );
}

#[tokio::test]
async fn missing_endpoints_document_is_created_and_tolerated_on_delete() {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let eden = eden(memory.cloud());
    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert!(
        memory
            .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
            .is_some()
    );

    let fresh = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let out = eden_core::Environment::new(fresh.cloud())
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        action(&out, ResourceKind::EndpointsEntry),
        Action::AlreadyAbsent
    );
}

#[tokio::test]
async fn image_checks() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let baseline = memory.inventory();
    let eden = eden(memory.cloud());
    let missing = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:nope";
    let err = eden
        .create(&profile, "a", missing, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ImageNotFound { ref code, .. } if code == "ImageNotFoundException"),
        "{err}"
    );
    let err = eden
        .create(
            &profile,
            "a",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v1",
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ImageNotFound { ref code, .. } if code == "RepositoryNotFoundException"),
        "{err}"
    );
    assert_clean(&baseline, &memory.inventory());

    let out = eden
        .create(&profile, "a", "nginx:1.27", &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(action(&out, ResourceKind::Image), Action::Unchecked);
    assert!(matches!(
        eden.create(&profile, "A_b", V1, &CreateOptions::default())
            .await,
        Err(Error::Name(_))
    ));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let baseline = memory.inventory();
    let eden = eden(memory.cloud());
    let plan = eden
        .create(&profile, "a", V1, &CreateOptions::default().dry_run(true))
        .await
        .unwrap();
    assert!(plan.dry_run);
    assert_eq!(action(&plan, ResourceKind::Service), Action::Created);
    assert_eq!(
        plan.resource(ResourceKind::ListenerRule)
            .unwrap()
            .note
            .as_deref(),
        Some("priority 2")
    );
    assert_eq!(memory.inventory(), baseline);

    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    let after = memory.inventory();
    let plan = eden
        .create(&profile, "a", V2, &CreateOptions::default().dry_run(true))
        .await
        .unwrap();
    assert_eq!(action(&plan, ResourceKind::Service), Action::Updated);
    assert_eq!(action(&plan, ResourceKind::TargetGroup), Action::Reused);
    assert_eq!(action(&plan, ResourceKind::DnsRecord), Action::Reused);
    let plan = eden
        .delete(&profile, "a", &DeleteOptions::default().dry_run(true))
        .await
        .unwrap();
    assert_eq!(action(&plan, ResourceKind::Service), Action::Deleted);
    assert_eq!(memory.inventory(), after);
}

fn active_task_definition(memory: &MemoryCloud) -> Option<String> {
    memory
        .peek_service("main", "web-a")
        .filter(|s| s.status == "ACTIVE")
        .map(|s| s.spec.task_definition)
}

/// The calls a clean create makes, to inject failures at each.
async fn count_create_calls(profile: &Profile) -> usize {
    let (_, memory) = setup(MemoryOptions::default()).await;
    let inst = Instrumentation::new(Duration::ZERO);
    eden(memory.cloud().instrumented(&inst))
        .create(profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    inst.calls().len()
}

#[tokio::test]
async fn failure_at_every_call_of_create_rolls_back_to_what_existed() {
    let profile = Profile::example();
    let calls = count_create_calls(&profile).await;
    assert!(calls >= 15, "{calls}");
    for k in 0..calls {
        // Fresh environment, and a redeploy over an existing one.
        for existing in [false, true] {
            let (_, memory) = setup(MemoryOptions::default()).await;
            if existing {
                eden(memory.cloud())
                    .create(&profile, "a", V1, &CreateOptions::default())
                    .await
                    .unwrap();
            }
            let before = memory.inventory();
            let service_before = active_task_definition(&memory);
            let inst = Instrumentation::new(Duration::ZERO);
            inst.inject(Fault::Call(k));
            let result = eden(memory.cloud().instrumented(&inst))
                .create(&profile, "a", V2, &CreateOptions::default())
                .await;
            let failed_op = inst.calls().iter().find(|c| c.failed).map(|c| c.op);
            match result {
                Err(e) => {
                    assert!(
                        !matches!(e, Error::RollbackIncomplete { .. }),
                        "call {k}: {e}"
                    );
                    assert_eq!(
                        memory.inventory(),
                        before,
                        "call {k} ({failed_op:?}) existing={existing}: {e}"
                    );
                    let service_after = active_task_definition(&memory);
                    assert_eq!(service_before, service_after, "call {k}: service restored");
                }
                // A redeploy makes fewer calls than a fresh create.
                Ok(_) => assert!(
                    existing && failed_op.is_none(),
                    "call {k} did not fail the create"
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_share_one_alb() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    // Latency makes the creates interleave at every call.
    let inst = Instrumentation::new(Duration::from_millis(2));
    let eden = Arc::new(eden(memory.cloud().instrumented(&inst)));
    let mut handles = Vec::new();
    for i in 0..20 {
        let eden = eden.clone();
        let profile = profile.clone();
        handles.push(tokio::spawn(async move {
            eden.create(&profile, &format!("env-{i}"), V1, &CreateOptions::default())
                .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let listener = format!(
        "{}:listener/app/shared/50dc6c495c0c9188/443",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    );
    let rules = memory.rules_of(&listener);
    assert_eq!(rules.len(), 21, "reference rule + 20");
    let mut priorities: Vec<i32> = rules.iter().filter_map(|r| r.priority).collect();
    priorities.dedup();
    assert_eq!(priorities.len(), 21, "distinct priorities");
    let doc = memory
        .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
        .unwrap();
    let doc = EndpointsDocument::parse(Some(&doc)).unwrap();
    assert_eq!(
        doc.environments.len(),
        21,
        "20 entries and the other one, none lost"
    );
    assert_eq!(eden.list(Some("default")).await.unwrap().len(), 20);
}

#[tokio::test]
async fn alb_full_is_its_own_error_and_rolls_back() {
    // Rules come in pages of 50 here, to follow the pages.
    let (profile, memory) = setup(MemoryOptions::default().rules_page_size(50)).await;
    let eden = eden(memory.cloud());
    let mut full = None;
    for i in 0..101 {
        match eden
            .create(&profile, &format!("e{i}"), V1, &CreateOptions::default())
            .await
        {
            Ok(_) => assert!(full.is_none(), "a create succeeded after the ALB was full"),
            Err(Error::AlbFull { code, .. }) => {
                full.get_or_insert(i);
                assert_eq!(code, "TooManyRules");
            }
            Err(e) => panic!("e{i}: {e}"),
        }
    }
    // 100 rules: the reference service's and 99 environments.
    assert_eq!(full, Some(99));
    let inv = memory.inventory();
    assert_eq!(inv.rules.len(), 100);
    assert_eq!(
        inv.target_groups.len(),
        100,
        "the failed creates' target groups were removed"
    );
    assert!(
        !inv.services
            .iter()
            .any(|s| s.ends_with("-e99") || s.ends_with("-e100"))
    );
    // Rules span pages of 50: delete one on the second page, and its priority is reused.
    eden.delete(&profile, "e80", &DeleteOptions::default())
        .await
        .unwrap();
    let out = eden
        .create(&profile, "again", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.resource(ResourceKind::ListenerRule)
            .unwrap()
            .note
            .as_deref(),
        Some("priority 82")
    );
}

#[tokio::test]
async fn draining_service_is_waited_for() {
    let options = MemoryOptions::default().draining_polls(3);
    let (profile, memory) = setup(options).await;
    let eden = eden(memory.cloud());
    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    eden.delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        memory.peek_service("main", "web-a").unwrap().status,
        "DRAINING"
    );
    let out = eden
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(action(&out, ResourceKind::Service), Action::Created);
    assert_eq!(
        memory.peek_service("main", "web-a").unwrap().status,
        "ACTIVE"
    );

    // A wait that runs out of time fails the create and rolls it back.
    eden.delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    let baseline = memory.inventory();
    let slow = CreateOptions::default().draining_timeout(Duration::ZERO);
    let err = eden.create(&profile, "a", V1, &slow).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(memory.inventory(), baseline);
}

#[tokio::test]
async fn wait_for_stable_service() {
    let options = MemoryOptions::default().stabilize_polls(3);
    let (profile, memory) = setup(options).await;
    let eden = eden(memory.cloud());
    let wait = CreateOptions::default().wait_stable(Duration::from_secs(5));
    eden.create(&profile, "a", V1, &wait).await.unwrap();
    let options = MemoryOptions::default().stabilize_polls(1_000_000);
    let (profile, memory) = setup(options).await;
    let eden = crate::eden(memory.cloud());
    let wait = CreateOptions::default().wait_stable(Duration::from_millis(20));
    let err = eden.create(&profile, "a", V1, &wait).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(
        eden.list(None).await.unwrap().len(),
        1,
        "a slow service is kept"
    );
}

#[tokio::test]
async fn profiles_share_endpoint_entries() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let mut config = profile.to_config();
    config.insert("name_prefix".into(), "admin".into());
    config.insert("domain_name_prefix".into(), "admin".into());
    config.insert("endpoint_update_key".into(), "admin_endpoint".into());
    let admin = Profile::from_config("admin", &config).unwrap();
    let eden = eden(memory.cloud());
    eden.create(&profile, "x", V1, &CreateOptions::default())
        .await
        .unwrap();
    eden.create(&admin, "x", V1, &CreateOptions::default())
        .await
        .unwrap();
    let read = || {
        EndpointsDocument::parse(Some(
            &memory
                .document(&profile.endpoint_s3_bucket_name, &profile.endpoint_s3_key)
                .unwrap(),
        ))
        .unwrap()
    };
    let doc = read();
    assert_eq!(
        doc.get("dev", "servicename-dev-x", "api_endpoint"),
        Some("api-x.dev.example.com")
    );
    assert_eq!(
        doc.get("dev", "servicename-dev-x", "admin_endpoint"),
        Some("admin-x.dev.example.com")
    );
    let out = eden
        .delete(&profile, "x", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.resource(ResourceKind::EndpointsEntry)
            .unwrap()
            .note
            .as_deref(),
        Some("entry kept for other profiles' keys")
    );
    let doc = read();
    assert_eq!(doc.get("dev", "servicename-dev-x", "api_endpoint"), None);
    assert_eq!(
        doc.get("dev", "servicename-dev-x", "admin_endpoint"),
        Some("admin-x.dev.example.com")
    );
    eden.delete(&admin, "x", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(read().environments.len(), 1);
    assert_eq!(eden.list(None).await.unwrap().len(), 0);
}

#[tokio::test]
async fn expiry_sweep_and_pagination() {
    let options = MemoryOptions::default().state_page_size(2);
    let (profile, memory) = setup(options).await;
    let eden = eden(memory.cloud());
    let now = 1_800_000_000;
    for (i, age) in [10, 100_000, 200_000, 5].iter().enumerate() {
        let opts = CreateOptions::default().now(now - age);
        eden.create(&profile, &format!("e{i}"), V1, &opts)
            .await
            .unwrap();
    }
    assert_eq!(
        eden.list(None).await.unwrap().len(),
        4,
        "pages of 2 followed"
    );
    let report = eden
        .sweep(&profile, Duration::from_secs(86_400), Some(now))
        .await
        .unwrap();
    assert!(report.failed.is_empty());
    let mut gone: Vec<String> = report
        .deleted
        .iter()
        .map(|o| o.names.env.to_string())
        .collect();
    gone.sort();
    assert_eq!(gone, ["e1", "e2"]);
    let left: Vec<String> = eden
        .list(Some("default"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(left, ["e0", "e3"]);
}

#[tokio::test]
async fn profiles_in_the_state_table() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let eden = eden(memory.cloud());
    assert_eq!(eden.pull_profile("default").await.unwrap(), None);
    eden.push_profile(&profile).await.unwrap();
    assert_eq!(
        eden.pull_profile("default").await.unwrap(),
        Some(profile.clone())
    );
    assert_eq!(eden.list_profiles().await.unwrap(), ["default"]);
    assert!(
        eden.list(None).await.unwrap().is_empty(),
        "profiles are not environments"
    );
    assert!(eden.remove_profile("default").await.unwrap());
    assert!(!eden.remove_profile("default").await.unwrap());
}

#[tokio::test]
async fn critical_path_is_five_round_trips() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    // The state table exists (the first create in an account also creates it).
    memory.ensure_table("eden").await.unwrap();
    let inst = Instrumentation::new(Duration::from_millis(5));
    let eden = eden(memory.cloud().instrumented(&inst));
    eden.create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    let create = inst.sequential_round_trips();
    inst.reset();
    eden.create(&profile, "a", V2, &CreateOptions::default())
        .await
        .unwrap();
    let deploy = inst.sequential_round_trips();
    inst.reset();
    eden.delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    let delete = inst.sequential_round_trips();
    assert!(create <= 5, "create: {create} sequential round trips");
    assert!(deploy <= 5, "deploy: {deploy}");
    assert!(delete <= 5, "delete: {delete}");
}

#[tokio::test]
async fn long_names_get_short_target_groups_and_clean_up() {
    let profile = Profile::example();
    let mut config = profile.to_config();
    config.insert("name_prefix".into(), "a_very_long_service_name".into());
    let long = Profile::from_config("default", &config).unwrap();
    let memory = MemoryCloud::with_reference(&long, MemoryOptions::default());
    let baseline = memory.inventory();
    let eden = eden(memory.cloud());
    let out = eden
        .create(&long, "feature-branch-1", V1, &CreateOptions::default())
        .await
        .unwrap();
    let tg = &out.names.target_group;
    assert_eq!(tg.len(), 32, "{tg}");
    assert!(tg.starts_with("a-very-long-service-nam-"), "{tg}");
    assert!(memory.inventory().target_groups.contains(tg));
    eden.delete(&long, "feature-branch-1", &DeleteOptions::default())
        .await
        .unwrap();
    // The endpoints file this create made stays, empty.
    let mut after = memory.inventory();
    assert_eq!(
        after.documents,
        ["eden-endpoints/endpoints.json: {\"environments\":[]}"]
    );
    after.documents.clear();
    assert_eq!(after, baseline);
}

#[tokio::test]
async fn too_many_target_groups_is_alb_full_too() {
    let options = MemoryOptions::default().max_target_groups_per_alb(3);
    let (profile, memory) = setup(options).await;
    let eden = eden(memory.cloud());
    for name in ["a", "b"] {
        eden.create(&profile, name, V1, &CreateOptions::default())
            .await
            .unwrap();
    }
    let before = memory.inventory();
    let err = eden
        .create(&profile, "c", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlbFull { ref code, .. } if code == "TooManyTargetGroups"),
        "{err}"
    );
    assert!(err.to_string().contains("about 99 environments"), "{err}");
    assert_eq!(memory.inventory(), before);
}

#[tokio::test]
async fn a_failed_rollback_is_reported_with_what_is_left() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let inst = Instrumentation::new(Duration::ZERO);
    // The service fails, and so does removing the rule again.
    inst.inject(Fault::Op {
        op: "ecs.create_service".into(),
        nth: 0,
    });
    inst.inject(Fault::Op {
        op: "elb.delete_rule".into(),
        nth: 0,
    });
    let err = eden(memory.cloud().instrumented(&inst))
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    let Error::RollbackIncomplete { cause, leftover } = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(
            **cause,
            Error::Cloud {
                step: eden_core::Step::Service,
                ..
            }
        ),
        "{cause}"
    );
    // The rule, and the target group its rule still uses.
    assert_eq!(leftover.len(), 2, "{leftover:?}");
    assert!(leftover[0].starts_with("rule "), "{leftover:?}");
    assert!(leftover[1].contains("ResourceInUse"), "{leftover:?}");
    // Delete cleans up both.
    eden(memory.cloud())
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(memory.inventory().target_groups.len() == 1);
}

#[tokio::test]
async fn delete_removes_every_revision_ten_per_call() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let baseline = memory.inventory();
    let plain = eden(memory.cloud());
    for _ in 0..12 {
        plain
            .create(&profile, "a", V2, &CreateOptions::default())
            .await
            .unwrap();
    }
    let inst = Instrumentation::new(Duration::ZERO);
    let out = eden(memory.cloud().instrumented(&inst))
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
    let deleted = out
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::TaskDefinition && r.action == Action::Deleted)
        .count();
    assert_eq!(deleted, 12);
    let calls = inst.calls();
    let count = |op: &str| calls.iter().filter(|c| c.op == op).count();
    assert_eq!(count("ecs.deregister_task_definition"), 12);
    assert_eq!(count("ecs.delete_task_definitions"), 2, "10 + 2");
    assert_eq!(memory.inventory(), baseline);
}
