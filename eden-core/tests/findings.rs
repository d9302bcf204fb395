//! What a new user ran into, each fixed: failed rollouts, waits that run out, references with
//! parts a preview must not copy, honest error classes, region mismatches, a malformed
//! endpoints document, the short reference ARN and digest image URIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eden_core::cloud::{
    CloudError, CloudResult, DeploymentAlarms, DnsApi, DnsRecord, DocumentStore, ManagedEbsVolume,
    PutMode, RecordChange, ServiceConnect, ServiceConnectService, ServiceRegistry, StateStore,
    StoredDocument, VolumeConfiguration,
};
use eden_core::http_api::{ApiHandler, ApiKeys, ApiRequest};
use eden_core::instrument::Instrumentation;
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::remote::RemoteProfiles;
use eden_core::{
    Action, CreateOptions, DeleteOptions, Environment, Error, ErrorClass, NameError, Profile,
    ResourceKind,
};

const V1: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";

fn eden(cloud: eden_core::Cloud) -> Environment {
    Environment::new(cloud).with_poll_interval(Duration::from_millis(1))
}

async fn setup(options: MemoryOptions) -> (Profile, Arc<MemoryCloud>) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, options);
    memory.ensure_table("eden").await.unwrap();
    (profile, memory)
}

#[tokio::test]
async fn a_failed_rollout_fails_with_the_service_events_and_rolls_back() {
    let (profile, memory) = setup(MemoryOptions::default().fail_rollouts(true)).await;
    let before = memory.inventory();
    let err = eden(memory.cloud())
        .create(
            &profile,
            "a",
            V1,
            &CreateOptions::default().wait_stable(Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    let Error::RolloutFailed { events, reason, .. } = &err else {
        panic!("{err}");
    };
    assert!(reason.contains("circuit breaker"), "{err}");
    assert!(events[0].contains("deployment failed"), "{err}");
    assert!(err.to_string().contains("tasks failed to start"), "{err}");
    assert_eq!(memory.inventory(), before, "rolled back, nothing published");
}

#[tokio::test]
async fn a_wait_that_runs_out_returns_what_was_done_and_a_later_create_publishes() {
    let (profile, memory) = setup(MemoryOptions::default().stabilize_polls(1_000_000)).await;
    let eden = eden(memory.cloud());
    let err = eden
        .create(
            &profile,
            "a",
            V1,
            &CreateOptions::default().wait_stable(Duration::from_millis(30)),
        )
        .await
        .unwrap_err();
    let Error::Timeout {
        outcome: Some(outcome),
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(err.class(), ErrorClass::Timeout);
    let action = |k| outcome.resource(k).unwrap().action;
    assert_eq!(action(ResourceKind::Service), Action::Created);
    assert_eq!(action(ResourceKind::DnsRecord), Action::Deferred);
    assert_eq!(action(ResourceKind::EndpointsEntry), Action::Deferred);
    // Kept, unpublished, listed as creating, and not leased.
    let inv = memory.inventory();
    assert!(inv.services.contains(&"main/web-a".to_owned()));
    assert!(!inv.records.iter().any(|r| r.starts_with("api-a.")));
    let listed = eden.list(None).await.unwrap();
    assert_eq!(listed[0].status, eden_core::EnvironmentStatus::Creating);
    assert_eq!(eden.lease_holder("default", "a").await.unwrap(), None);
    // The next create, without waiting, publishes it.
    let out = eden
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.resource(ResourceKind::DnsRecord).unwrap().action,
        Action::Created
    );
    assert_eq!(
        eden.list(None).await.unwrap()[0].status,
        eden_core::EnvironmentStatus::Ready
    );
}

#[tokio::test]
async fn parts_of_the_reference_a_preview_must_not_copy_are_refused_by_name() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    memory.edit_service("main", "web", |s| {
        s.spec.service_registries = vec![ServiceRegistry {
            registry_arn: Some(
                "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-1".into(),
            ),
            ..ServiceRegistry::default()
        }];
        s.spec.service_connect = Some(ServiceConnect {
            enabled: true,
            namespace: Some("dev".into()),
            services: vec![ServiceConnectService {
                port_name: "http".into(),
                discovery_name: Some("web".into()),
                client_aliases: vec![(80, Some("web".into()))],
            }],
            log_configuration: None,
        });
        s.spec.volume_configurations = vec![VolumeConfiguration {
            name: "data".into(),
            managed_ebs_volume: Some(ManagedEbsVolume {
                role_arn: "arn:aws:iam::123456789012:role/ecs-ebs".into(),
                size_in_gib: Some(20),
                ..ManagedEbsVolume::default()
            }),
        }];
        if let Some(d) = &mut s.spec.deployment_configuration {
            d.alarms = Some(DeploymentAlarms {
                alarm_names: vec!["web-5xx".into()],
                enable: true,
                rollback: true,
            });
        }
        s.unmodelled = vec!["VPC Lattice configurations".into()];
    });
    let before = memory.inventory();
    let eden = eden(memory.cloud());
    let err = eden
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    for part in [
        "service registries",
        "Service Connect services web",
        "VPC Lattice configurations",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert_eq!(memory.inventory(), before);
    // Left out on request, and said so; what can be copied is.
    let out = eden
        .create(
            &profile,
            "a",
            V1,
            &CreateOptions::default().leave_out_uncopyable(true),
        )
        .await
        .unwrap();
    let note = out
        .resource(ResourceKind::Service)
        .unwrap()
        .note
        .clone()
        .unwrap();
    assert!(note.contains("left out: service registries"), "{note}");
    let svc = memory.peek_service("main", "web-a").unwrap();
    assert!(svc.spec.service_registries.is_empty());
    let sc = svc.spec.service_connect.unwrap();
    assert_eq!(
        (sc.enabled, sc.namespace.as_deref(), sc.services.len()),
        (true, Some("dev"), 0),
        "a Service Connect client"
    );
    assert_eq!(svc.spec.volume_configurations[0].name, "data");
    assert_eq!(
        svc.spec
            .deployment_configuration
            .unwrap()
            .alarms
            .unwrap()
            .alarm_names,
        ["web-5xx"]
    );
}

/// A document store that denies everything, as S3 does without the permissions (and for a
/// missing key without s3:ListBucket).
struct Denied;

#[async_trait]
impl DocumentStore for Denied {
    async fn get(&self, _: &str, _: &str) -> CloudResult<Option<StoredDocument>> {
        Err(CloudError::new("AccessDenied", "Access Denied").with_status(Some(403)))
    }
    async fn put(&self, _: &str, _: &str, _: Vec<u8>, _: PutMode) -> CloudResult<String> {
        Err(CloudError::new("AccessDenied", "Access Denied").with_status(Some(403)))
    }
}

#[tokio::test]
async fn configuration_errors_are_client_errors_naming_the_profile_key() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    // A cluster that does not exist.
    let mut config = profile.to_config();
    config.insert("target_cluster".into(), "nope".into());
    let wrong = Profile::from_config("wrong", &config).unwrap();
    let before = memory.inventory();
    let err = eden(memory.cloud())
        .create(&wrong, "a", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    assert_eq!(err.profile_key(), Some("target_cluster"), "{err}");
    assert!(
        err.to_string().contains("check profile key target_cluster"),
        "{err}"
    );
    assert!(!err.is_cloud_failure());
    assert_eq!(memory.inventory(), before);

    // Through the HTTP API: 400 and 403 naming the key, never 502.
    RemoteProfiles::new(memory.cloud())
        .push(&wrong)
        .await
        .unwrap();
    let api = ApiHandler::new(memory.cloud(), ApiKeys::new(["k"]));
    let request = |profile: &str| {
        ApiRequest::new("GET", "/api/v1/create")
            .header("x-api-key", "k")
            .query("profile", profile)
            .query("name", "a")
            .query("image_uri", V1)
    };
    let r = api.handle(&request("wrong")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["profile_key"], "target_cluster");
    assert_eq!(r.body["aws_error_code"], "ClusterNotFoundException");

    let mut denied = memory.cloud();
    denied.documents = Arc::new(Denied);
    RemoteProfiles::new(memory.cloud())
        .push(&profile)
        .await
        .unwrap();
    let api = ApiHandler::new(denied.clone(), ApiKeys::new(["k"]));
    let r = api.handle(&request("default")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["profile_key"], "endpoint_s3_key");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("s3:ListBucket"), "{message}");
    let err = eden(denied)
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::AccessDenied);
}

#[tokio::test]
async fn a_region_mismatch_is_named_before_any_call() {
    let mut config = Profile::example().to_config();
    for key in ["reference_service_arn", "master_alb_arn"] {
        let arn = config[key].replace("us-east-1", "eu-west-1");
        config.insert(key.into(), arn);
    }
    let profile = Profile::from_config("eu", &config).unwrap();
    let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
    let inst = Instrumentation::new(Duration::ZERO);
    let eden = eden(memory.cloud().instrumented(&inst));
    for err in [
        eden.create(&profile, "a", V1, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&profile, "a", &DeleteOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::RegionMismatch { profile_key: "reference_service_arn", profile_region, client_region }
                if profile_region == "eu-west-1" && client_region == "us-east-1"),
            "{err}"
        );
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
    }
    assert!(inst.calls().is_empty());
}

#[tokio::test]
async fn a_malformed_endpoints_document_is_refused_before_anything_is_written() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    memory
        .put(
            &profile.endpoint_s3_bucket_name,
            &profile.endpoint_s3_key,
            b"{\"environments\": {}}".to_vec(),
            PutMode::Create,
        )
        .await
        .unwrap();
    let before = memory.inventory();
    let inst = Instrumentation::new(Duration::ZERO);
    let eden = eden(memory.cloud().instrumented(&inst));
    let err = eden
        .create(&profile, "a", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Document { .. }), "{err}");
    assert_eq!(memory.inventory(), before);
    // Only the lease was written (and given back): no resource was touched.
    let writes: Vec<&str> = inst
        .calls()
        .iter()
        .map(|c| c.op)
        .filter(|op| {
            !op.contains("describe")
                && !op.contains("list")
                && !op.contains("get")
                && !op.contains("find")
                && !op.contains("hosted_zone")
        })
        .collect();
    assert_eq!(writes, ["dynamodb.update_item", "dynamodb.delete_item"]);
    let err = eden
        .delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Document { .. }), "{err}");
    assert_eq!(memory.inventory(), before);
}

#[tokio::test]
async fn the_short_reference_arn_and_digest_images_work() {
    let mut config = Profile::example().to_config();
    config.insert(
        "reference_service_arn".into(),
        "arn:aws:ecs:us-east-1:123456789012:service/web".into(),
    );
    let profile = Profile::from_config("default", &config).unwrap();
    assert_eq!(profile.reference_service_arn.cluster, "main");
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let eden = eden(memory.cloud());
    let digest = format!("sha256:{}", "2".repeat(64));
    for image in [
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2@{digest}"),
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{digest}"),
    ] {
        let out = eden
            .create(&profile, "a", &image, &CreateOptions::default())
            .await
            .unwrap();
        let checked = out.resource(ResourceKind::Image).unwrap();
        assert_eq!(checked.action, Action::Checked, "{image}");
        assert_eq!(checked.note.as_deref(), Some(digest.as_str()));
    }
    eden.delete(&profile, "a", &DeleteOptions::default())
        .await
        .unwrap();
}

/// The in-memory Route 53 with the profile's zone answering a long name (66 characters): a
/// host under it can be a valid DNS name and still too long for an ALB host condition.
struct LongZone(Arc<MemoryCloud>);

const LONG_ZONE: &str = "previews-of-the-checkout-service.eu-central-1.internal.example.com";

#[async_trait]
impl DnsApi for LongZone {
    async fn hosted_zone_name(&self, _: &str) -> CloudResult<String> {
        Ok(LONG_ZONE.to_owned())
    }
    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>> {
        self.0.find_record(zone_id, name, record_type).await
    }
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        self.0.change_records(zone_id, changes).await
    }
}

#[tokio::test]
async fn a_host_too_long_for_an_alb_host_condition_is_refused_before_anything_is_written() {
    let (profile, memory) = setup(MemoryOptions::default()).await;
    let mut cloud = memory.cloud();
    cloud.dns = Arc::new(LongZone(memory.clone()));
    let eden = eden(cloud);
    let before = memory.inventory();
    // `api-` + 59 characters (a 63-character label) + `.` + the zone: a valid DNS name of
    // 130 characters, over the 128 an ALB host condition holds.
    let name = "x".repeat(59);
    assert!(4 + 59 + 1 + LONG_ZONE.len() > 128);
    for dry_run in [true, false] {
        let e = eden
            .create(
                &profile,
                &name,
                V1,
                &CreateOptions::default().dry_run(dry_run),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Name(NameError::TooLong { max: 128, .. })),
            "dry run {dry_run}: {e:?}"
        );
        assert!(e.to_string().contains("ALB host condition"), "{e}");
        assert_eq!(e.class(), ErrorClass::Invalid);
        assert_eq!(
            memory.inventory(),
            before,
            "dry run {dry_run}: nothing written"
        );
    }
    // A host within the limit under the same zone gets past the check.
    let short = eden
        .create(&profile, "x", V1, &CreateOptions::default().dry_run(true))
        .await;
    assert!(
        !matches!(short, Err(Error::Name(_))),
        "a short host is not refused by name: {short:?}"
    );
}
