//! eden on the AWS SDK implementations against a moto server: create, list, redeploy and
//! delete, checking every resource through the SDK after each step.
//!
//! The test command starts moto and exports `BAIKONUR_MOTO_ENDPOINT`; without it this test
//! fails (it never skips silently).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "aws")]

use std::time::Duration;

use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use aws_types::SdkConfig;
use eden_core::{
    Action, CreateOptions, DeleteOptions, EndpointsDocument, Environment, Profile, ResourceKind,
};

mod support;

use support::{sdk_config, setup, unique};

fn eden(config: &SdkConfig, table: &str) -> Environment {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    Environment::new(eden_core::aws::cloud_with_s3(config, s3))
        .with_table(table)
        .with_poll_interval(Duration::from_millis(50))
}

async fn record_exists(config: &SdkConfig, zone_id: &str, host: &str) -> bool {
    let r53 = aws_sdk_route53::Client::new(config);
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .any(|r| r.name().trim_end_matches('.') == host && r.r#type().as_str() == "A")
}

async fn family_revisions(config: &SdkConfig, family: &str) -> Vec<String> {
    let client = aws_sdk_ecs::Client::new(config);
    let mut all = Vec::new();
    for status in [
        ecs::TaskDefinitionStatus::Active,
        ecs::TaskDefinitionStatus::Inactive,
    ] {
        let out = client
            .list_task_definitions()
            .family_prefix(family)
            .status(status)
            .send()
            .await
            .unwrap();
        all.extend(out.task_definition_arns().iter().cloned());
    }
    all
}

async fn host_rules(config: &SdkConfig, listener: &str, host: &str) -> Vec<elb::Rule> {
    let client = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let out = client
        .describe_rules()
        .listener_arn(listener)
        .send()
        .await
        .unwrap();
    out.rules()
        .iter()
        .filter(|r| {
            r.conditions().iter().any(|c| {
                c.values().iter().any(|v| v == host)
                    || c.host_header_config()
                        .is_some_and(|h| h.values().iter().any(|v| v == host))
            })
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_redeploy_delete_on_moto() {
    let config = sdk_config().await;
    let id = unique();
    let w = setup(&config, &id).await;
    let p = &w.profile;
    let table = format!("eden-{id}");
    let eden = eden(&config, &table);
    let ecs_client = aws_sdk_ecs::Client::new(&config);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let family = format!("pr{id}-one");
    let host = format!("api-one.{id}.example.com");

    // Create.
    let created = eden
        .create(
            p,
            "one",
            &w.image_v1,
            &CreateOptions::default().wait_stable(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(created.host.as_deref(), Some(host.as_str()));
    assert_eq!(
        created.resource(ResourceKind::Image).unwrap().action,
        Action::Checked
    );
    for r in &created.resources {
        assert!(matches!(r.action, Action::Created | Action::Checked), "{r}");
    }
    let td = ecs_client
        .describe_task_definition()
        .task_definition(format!("{family}:1"))
        .include(ecs::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let def = td.task_definition().unwrap();
    assert_eq!(
        def.container_definitions()[0].image(),
        Some(w.image_v1.as_str())
    );
    assert_eq!(def.container_definitions()[1].name(), Some("sidecar"));
    assert_eq!(def.cpu(), Some("256"));
    assert_eq!(def.network_mode(), Some(&ecs::NetworkMode::Awsvpc));
    assert!(def.execution_role_arn().is_some());
    assert!(
        td.tags()
            .iter()
            .any(|t| t.key() == Some("eden:environment") && t.value() == Some("one"))
    );
    assert!(td.tags().iter().any(|t| t.key() == Some("team")));

    let tg = elbv2
        .describe_target_groups()
        .names(&family)
        .send()
        .await
        .unwrap();
    let tg = &tg.target_groups()[0];
    assert_eq!(tg.port(), Some(8080));
    assert_eq!(tg.health_check_path(), Some("/health"));
    let tg_arn = tg.target_group_arn().unwrap().to_owned();
    let attrs = elbv2
        .describe_target_group_attributes()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .unwrap();
    assert!(attrs.attributes().iter().any(|a| a.key()
        == Some("deregistration_delay.timeout_seconds")
        && a.value() == Some("30")));
    let tags = elbv2
        .describe_tags()
        .resource_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_descriptions()[0]
            .tags()
            .iter()
            .any(|t| t.key() == Some("eden:profile") && t.value() == Some("moto"))
    );

    let rules = host_rules(&config, &w.listener, &host).await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].priority(), Some("1"));

    let svc = ecs_client
        .describe_services()
        .cluster(&p.target_cluster)
        .services(&family)
        .send()
        .await
        .unwrap();
    let svc = &svc.services()[0];
    assert_eq!(svc.status(), Some("ACTIVE"));
    assert!(
        svc.task_definition()
            .unwrap()
            .ends_with(&format!("{family}:1"))
    );
    assert_eq!(
        svc.load_balancers()[0].target_group_arn(),
        Some(tg_arn.as_str())
    );
    assert_eq!(svc.launch_type(), Some(&ecs::LaunchType::Fargate));

    assert!(record_exists(&config, &w.zone_id, &host).await);
    let doc = s3
        .get_object()
        .bucket(&p.endpoint_s3_bucket_name)
        .key(&p.endpoint_s3_key)
        .send()
        .await
        .unwrap();
    let doc = doc.body.collect().await.unwrap().into_bytes();
    let doc = EndpointsDocument::parse(Some(&doc)).unwrap();
    assert_eq!(
        doc.get("dev", "svc-dev-one", "api_endpoint"),
        Some(host.as_str())
    );

    // Every resource records its owner and the run that created it.
    let run = created.run.clone().unwrap();
    let owned = |tags: Vec<(String, String)>, what: &str| {
        let get = |k: &str| {
            tags.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("eden:profile"), Some("moto"), "{what}: {tags:?}");
        assert_eq!(get("eden:environment"), Some("one"), "{what}: {tags:?}");
        assert_eq!(get("eden:run"), Some(run.as_str()), "{what}: {tags:?}");
    };
    let pairs = |tags: &[aws_sdk_elasticloadbalancingv2::types::Tag]| {
        tags.iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let rule_arn = rules[0].rule_arn().unwrap().to_owned();
    let described = elbv2
        .describe_tags()
        .resource_arns(&tg_arn)
        .resource_arns(&rule_arn)
        .send()
        .await
        .unwrap();
    for d in described.tag_descriptions() {
        owned(pairs(d.tags()), d.resource_arn().unwrap());
    }
    let svc = ecs_client
        .describe_services()
        .cluster(&p.target_cluster)
        .services(&family)
        .include(ecs::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    owned(
        svc.services()[0]
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        "service",
    );
    let txt = aws_sdk_route53::Client::new(&config)
        .list_resource_record_sets()
        .hosted_zone_id(&w.zone_id)
        .start_record_name(&host)
        .start_record_type(aws_sdk_route53::types::RrType::Txt)
        .send()
        .await
        .unwrap();
    let txt = txt
        .resource_record_sets()
        .iter()
        .find(|r| r.name().trim_end_matches('.') == host && r.r#type().as_str() == "TXT")
        .expect("an ownership TXT record beside the alias");
    let value = txt.resource_records()[0].value();
    assert!(
        value.starts_with("\"heritage=eden,eden/profile=moto,eden/environment=one,eden/run=")
            && value.contains(&run),
        "{value}"
    );
    let item = ddb
        .get_item()
        .table_name(&table)
        .key(
            "type",
            aws_sdk_dynamodb::types::AttributeValue::S("moto".into()),
        )
        .key(
            "name",
            aws_sdk_dynamodb::types::AttributeValue::S("one".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    let s = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(s("status"), "ready");
    assert_eq!(s("run"), run);
    assert_eq!(s("target_group_arn"), tg_arn);
    assert!(!item.contains_key("lease_until"), "the lease is released");
    let owner = doc
        .owner("dev", "svc-dev-one", "api_endpoint")
        .unwrap()
        .unwrap();
    assert_eq!(
        (owner.profile.as_str(), owner.run.as_deref()),
        ("moto", Some(run.as_str()))
    );

    // List.
    let listed = eden.list(Some("moto")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].endpoint, host);
    assert_eq!(eden.list(None).await.unwrap().len(), 1);

    // Redeploy with a new image: converges on the same resources, a new revision.
    let deployed = eden
        .create(p, "one", &w.image_v2, &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        deployed.resource(ResourceKind::Service).unwrap().action,
        Action::Updated
    );
    assert_eq!(
        deployed.resource(ResourceKind::TargetGroup).unwrap().action,
        Action::Reused
    );
    assert_eq!(
        deployed
            .resource(ResourceKind::ListenerRule)
            .unwrap()
            .action,
        Action::Reused
    );
    assert_eq!(
        deployed.resource(ResourceKind::DnsRecord).unwrap().action,
        Action::Reused
    );
    let svc = ecs_client
        .describe_services()
        .cluster(&p.target_cluster)
        .services(&family)
        .send()
        .await
        .unwrap();
    let td_arn = svc.services()[0].task_definition().unwrap().to_owned();
    assert!(td_arn.ends_with(&format!("{family}:2")), "{td_arn}");
    let td = ecs_client
        .describe_task_definition()
        .task_definition(&td_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        td.task_definition().unwrap().container_definitions()[0].image(),
        Some(w.image_v2.as_str())
    );
    assert_eq!(host_rules(&config, &w.listener, &host).await.len(), 1);

    // A missing image is refused before anything changes.
    let missing = w.image_v1.replace(":v1", ":nope");
    let err = eden
        .create(p, "two", &missing, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, eden_core::Error::ImageNotFound { .. }),
        "{err}"
    );

    // Delete.
    let deleted = eden
        .delete(p, "one", &DeleteOptions::default())
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
        assert_eq!(
            deleted.resource(kind).unwrap().action,
            Action::Deleted,
            "{kind}: {deleted:?}"
        );
    }
    assert!(
        family_revisions(&config, &family).await.is_empty(),
        "task definitions deregistered and deleted"
    );
    assert!(
        elbv2
            .describe_target_groups()
            .names(&family)
            .send()
            .await
            .is_err(),
        "target group gone"
    );
    assert!(
        host_rules(&config, &w.listener, &host).await.is_empty(),
        "rule gone"
    );
    let svc = ecs_client
        .describe_services()
        .cluster(&p.target_cluster)
        .services(&family)
        .send()
        .await
        .unwrap();
    assert!(
        svc.services().iter().all(|s| s.status() != Some("ACTIVE")),
        "service gone"
    );
    assert!(
        !record_exists(&config, &w.zone_id, &host).await,
        "record gone"
    );
    let doc = s3
        .get_object()
        .bucket(&p.endpoint_s3_bucket_name)
        .key(&p.endpoint_s3_key)
        .send()
        .await
        .unwrap();
    let doc =
        EndpointsDocument::parse(Some(&doc.body.collect().await.unwrap().into_bytes())).unwrap();
    assert!(doc.environments.is_empty(), "endpoints entry gone");
    let item = ddb
        .get_item()
        .table_name(&table)
        .key(
            "type",
            aws_sdk_dynamodb::types::AttributeValue::S("moto".into()),
        )
        .key(
            "name",
            aws_sdk_dynamodb::types::AttributeValue::S("one".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(item.item().is_none(), "state item gone");
    assert!(eden.list(None).await.unwrap().is_empty());

    // A second delete finds everything already gone.
    let again = eden
        .delete(p, "one", &DeleteOptions::default())
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

/// eden reads a listener's rules in pages of 400 (an ALB listener holds at most 100 rules), so
/// a listener far past the in-memory cloud's smallest pages is read in one call, on AWS and in
/// memory with its default options. The rest of what the load balancer must do is held by the
/// `elb` conformance suite (tests/conformance.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listeners_rules_come_in_one_page() {
    use eden_core::cloud::{CreateRule, CreateTargetGroup, TargetGroupSpec};
    let config = sdk_config().await;
    let id = unique();
    let w = setup(&config, &id).await;
    let aws_cloud = eden_core::aws::cloud(&config);
    let example = Profile::example();
    let memory = eden_core::memory::MemoryCloud::with_reference(&example, Default::default());
    let memory_cloud = memory.cloud();
    let memory_listener = format!(
        "{}:listener/app/shared/50dc6c495c0c9188/443",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    );
    for (name, cloud, profile, listener) in [
        ("aws", &aws_cloud, &w.profile, w.listener.as_str()),
        ("memory", &memory_cloud, &example, memory_listener.as_str()),
    ] {
        let elb = &cloud.elb;
        let lb = elb
            .describe_load_balancer(&profile.master_alb_arn.arn)
            .await
            .unwrap();
        let tg = elb
            .create_target_group(CreateTargetGroup {
                name: format!("page-{id}"),
                spec: TargetGroupSpec {
                    protocol: Some("HTTP".into()),
                    port: Some(80),
                    vpc_id: Some(lb.vpc_id.clone()),
                    target_type: Some("ip".into()),
                    ..TargetGroupSpec::default()
                },
                tags: vec![],
            })
            .await
            .unwrap();
        let mut rules = Vec::new();
        for i in 0..55 {
            rules.push(
                elb.create_rule(CreateRule {
                    listener_arn: listener.to_owned(),
                    priority: 100 + i,
                    host: format!("h{i}.example.com"),
                    target_group_arn: tg.arn.clone(),
                    tags: vec![],
                })
                .await
                .unwrap(),
            );
        }
        let first = elb.describe_rules(listener, None).await.unwrap();
        assert!(first.next.is_none(), "{name}: one page");
        assert!(
            first.items.iter().any(|r| r.priority.is_none()),
            "{name}: the default rule"
        );
        let ours = first
            .items
            .iter()
            .filter(|r| r.target_group_arns.contains(&tg.arn))
            .count();
        assert_eq!(ours, 55, "{name}");
        assert!(
            first.items.iter().any(|r| r.hosts == ["h54.example.com"]),
            "{name}: hosts read back"
        );
        for r in &rules {
            elb.delete_rule(&r.arn).await.unwrap();
        }
        elb.delete_target_group(&tg.arn).await.unwrap();
    }
}
