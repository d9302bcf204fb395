//! The conformance suites, one per cloud trait, against the in-memory cloud (with pages small
//! enough that every listing spans several) and against the AWS implementations on moto (with
//! the quirks `Quirks::moto` documents), and through the `Instrumented` wrapper. A behaviour the
//! in-memory cloud and AWS disagree on fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use eden_core::Profile;
use eden_core::cloud::{AliasTarget, Cloud, LoadBalancerApi, NetworkConfiguration};
use eden_core::conformance::{self, Fixture, Quirks};
use eden_core::image::{EcrImage, ImageSelector};
use eden_core::memory::{MemoryCloud, MemoryOptions};

mod support;

/// The in-memory cloud seeded from the example profile, and its fixture.
async fn memory() -> (Arc<MemoryCloud>, Fixture) {
    let profile = Profile::example();
    let options = MemoryOptions::default()
        .rules_page_size(5)
        .target_groups_page_size(2)
        .state_page_size(3);
    let memory = MemoryCloud::with_reference(&profile, options);
    let reference = &profile.reference_service_arn;
    let service = memory
        .peek_service(&reference.cluster, &reference.service)
        .unwrap();
    let alb = &profile.master_alb_arn;
    let lb = memory.describe_load_balancer(&alb.arn).await.unwrap();
    let listener = memory
        .describe_listeners(&alb.arn)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.port == 443)
        .unwrap();
    let fixture = Fixture {
        unique: "m1".into(),
        cluster: profile.target_cluster.clone(),
        task_definition: service.spec.task_definition.clone(),
        container: "app".into(),
        network: service.spec.network_configuration.clone(),
        launch_type: Some("FARGATE".into()),
        load_balancer: alb.arn.clone(),
        listener: listener.arn,
        zone_id: profile.dynamic_zone_id.clone(),
        zone_name: "dev.example.com".into(),
        alias: AliasTarget {
            dns_name: lb.dns_name,
            hosted_zone_id: lb.canonical_hosted_zone_id,
            evaluate_target_health: false,
        },
        image: EcrImage {
            registry_id: reference.account.clone(),
            region: reference.region.clone(),
            repository: "web".into(),
            selector: ImageSelector::Tag("v1".into()),
        },
        bucket: profile.endpoint_s3_bucket_name.clone(),
        poll: Duration::ZERO,
        quirks: Quirks::none(),
    };
    (memory, fixture)
}

/// The AWS implementations on moto, a fresh reference world, and its fixture.
async fn moto() -> (Cloud, Fixture) {
    let config = support::sdk_config().await;
    let id = support::unique();
    let w = support::setup(&config, &id).await;
    let fixture = Fixture {
        unique: id.clone(),
        cluster: w.cluster.clone(),
        task_definition: w.task_definition.clone(),
        container: "app".into(),
        network: Some(NetworkConfiguration {
            subnets: w.subnets.clone(),
            security_groups: vec![w.security_group.clone()],
            assign_public_ip: None,
        }),
        launch_type: Some("FARGATE".into()),
        load_balancer: w.load_balancer.clone(),
        listener: w.listener.clone(),
        zone_id: w.zone_id.clone(),
        zone_name: w.zone_name.clone(),
        alias: AliasTarget {
            dns_name: w.load_balancer_dns.0.clone(),
            hosted_zone_id: w.load_balancer_dns.1.clone(),
            evaluate_target_health: false,
        },
        image: EcrImage {
            registry_id: support::ACCOUNT.into(),
            region: support::REGION.into(),
            repository: format!("web-{id}"),
            selector: ImageSelector::Tag("v1".into()),
        },
        bucket: w.bucket.clone(),
        poll: Duration::from_millis(100),
        quirks: Quirks::moto(),
    };
    (support::cloud(&config), fixture)
}

#[tokio::test]
async fn memory_ecs() {
    let (memory, f) = memory().await;
    conformance::ecs(&*memory, &f).await;
}

#[tokio::test]
async fn memory_elb() {
    let (memory, f) = memory().await;
    conformance::elb(&*memory, &f).await;
}

#[tokio::test]
async fn memory_route53() {
    let (memory, f) = memory().await;
    conformance::route53(&*memory, &f).await;
}

#[tokio::test]
async fn memory_ecr() {
    let (memory, f) = memory().await;
    conformance::ecr(&*memory, &f).await;
}

#[tokio::test]
async fn memory_s3() {
    let (memory, f) = memory().await;
    conformance::s3(&*memory, &f).await;
}

#[tokio::test]
async fn memory_dynamodb() {
    let (memory, f) = memory().await;
    conformance::dynamodb(&*memory, &f).await;
}

/// The `Instrumented` wrapper (latency, faults, call log) is an implementation of every trait
/// too: around the in-memory cloud, with no latency and no faults, it passes every suite, and
/// its log holds each call.
#[tokio::test]
async fn instrumented_memory_all_suites() {
    use eden_core::instrument::Instrumentation;
    let (memory, f) = memory().await;
    let inst = Instrumentation::new(Duration::ZERO);
    let cloud = memory.cloud().instrumented(&inst);
    conformance::ecs(&*cloud.ecs, &f).await;
    conformance::elb(&*cloud.elb, &f).await;
    conformance::route53(&*cloud.dns, &f).await;
    conformance::ecr(&*cloud.images, &f).await;
    conformance::s3(&*cloud.documents, &f).await;
    conformance::dynamodb(&*cloud.state, &f).await;
    let calls = inst.calls();
    for system in ["ecs.", "elb.", "dns.", "ecr.", "s3.", "dynamodb."] {
        assert!(
            calls.iter().any(|c| c.op.starts_with(system)),
            "no {system} call logged"
        );
    }
    assert!(
        calls.iter().any(|c| c.failed),
        "the refusals are logged as failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_ecs() {
    let (cloud, f) = moto().await;
    conformance::ecs(&*cloud.ecs, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_elb() {
    let (cloud, f) = moto().await;
    conformance::elb(&*cloud.elb, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_route53() {
    let (cloud, f) = moto().await;
    conformance::route53(&*cloud.dns, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_ecr() {
    let (cloud, f) = moto().await;
    conformance::ecr(&*cloud.images, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_s3() {
    let (cloud, f) = moto().await;
    conformance::s3(&*cloud.documents, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_dynamodb() {
    let (cloud, f) = moto().await;
    conformance::dynamodb(&*cloud.state, &f).await;
}
