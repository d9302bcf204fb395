//! eden on the AWS SDK implementations against moto never touches what it did not create:
//! the reference service, its task definition family and target group, and a target group with
//! the environment's name made by someone else, each checked through the SDK afterwards.
//!
//! The test command starts moto and exports `BAIKONUR_MOTO_ENDPOINT`; without it these tests
//! fail (they never skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "aws")]

use std::time::Duration;

use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use eden_core::{
    CreateOptions, DeleteOptions, Environment, Error, ForeignOwner, Profile, ResourceKind,
};

mod support;

use support::{cloud, sdk_config, setup, unique};

async fn revisions(client: &aws_sdk_ecs::Client, family: &str) -> Vec<String> {
    let out = client
        .list_task_definitions()
        .family_prefix(family)
        .status(ecs::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    out.task_definition_arns().to_vec()
}

async fn service_status(client: &aws_sdk_ecs::Client, cluster: &str, name: &str) -> String {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .unwrap();
    out.services()[0].status().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_service_family_and_target_group_are_never_touched_on_moto() {
    let config = sdk_config().await;
    let id = unique();
    let w = setup(&config, &id).await;
    let table = format!("eden-ref-{id}");
    let eden = Environment::new(cloud(&config))
        .with_table(&table)
        .with_poll_interval(Duration::from_millis(50));
    let ecs_client = aws_sdk_ecs::Client::new(&config);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let reference = format!("ref-{id}");
    let cluster = w.profile.target_cluster.clone();
    let family_before = revisions(&ecs_client, &reference).await;
    assert_eq!(family_before.len(), 1);

    // As in the trial: a name_prefix and environment that make the reference's own name.
    let mut keys = w.profile.to_config();
    keys.insert("name_prefix".into(), "ref".into());
    let clash = Profile::from_config("moto", &keys).unwrap();
    for err in [
        eden.create(&clash, &id, &w.image_v2, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&clash, &id, &DeleteOptions::default())
            .await
            .unwrap_err(),
    ] {
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
    }

    // A reference whose family is named otherwise: found when the reference is read.
    let td = format!("{reference}:1");
    let other = ecs_client
        .create_service()
        .cluster(&cluster)
        .service_name(format!("svc2-{id}"))
        .task_definition(&td)
        .desired_count(1)
        .send()
        .await
        .unwrap();
    keys.insert(
        "reference_service_arn".into(),
        other.service().unwrap().service_arn().unwrap().to_owned(),
    );
    let by_family = Profile::from_config("moto", &keys).unwrap();
    for err in [
        eden.create(&by_family, &id, &w.image_v2, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&by_family, &id, &DeleteOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::ReferenceCollision {
                    what: "task definition family",
                    ..
                }
            ),
            "{err}"
        );
    }

    // Nothing changed: the reference is ACTIVE, on its revision, its family whole, its target
    // group there, and no environment was recorded.
    assert_eq!(
        service_status(&ecs_client, &cluster, &reference).await,
        "ACTIVE"
    );
    let svc = ecs_client
        .describe_services()
        .cluster(&cluster)
        .services(&reference)
        .send()
        .await
        .unwrap();
    assert!(svc.services()[0].task_definition().unwrap().ends_with(&td));
    assert_eq!(revisions(&ecs_client, &reference).await, family_before);
    assert!(
        elbv2
            .describe_target_groups()
            .names(&reference)
            .send()
            .await
            .is_ok()
    );
    assert!(eden.list(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_group_made_by_someone_else_is_refused_on_moto() {
    let config = sdk_config().await;
    let id = unique();
    let w = setup(&config, &id).await;
    let table = format!("eden-tg-{id}");
    let eden = Environment::new(cloud(&config))
        .with_table(&table)
        .with_poll_interval(Duration::from_millis(50));
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let lb = elbv2
        .describe_load_balancers()
        .load_balancer_arns(&w.profile.master_alb_arn.arn)
        .send()
        .await
        .unwrap();
    let vpc = lb.load_balancers()[0].vpc_id().unwrap().to_owned();
    let name = format!("pr{id}-theirs");
    let theirs = elbv2
        .create_target_group()
        .name(&name)
        .protocol(elb::ProtocolEnum::Http)
        .port(9000)
        .vpc_id(vpc)
        .target_type(elb::TargetTypeEnum::Ip)
        .tags(elb::Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();
    let arn = theirs.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    for err in [
        eden.create(&w.profile, "theirs", &w.image_v1, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&w.profile, "theirs", &DeleteOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::NotOwned { kind: ResourceKind::TargetGroup, owner: ForeignOwner::Unrecorded, resource } if *resource == arn),
            "{err}"
        );
    }
    // Still there, with its own tags only; no rule, service or record was made.
    let tags = elbv2
        .describe_tags()
        .resource_arns(&arn)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .filter_map(|t| t.key())
        .collect();
    assert_eq!(keys, ["team"]);
    let rules = elbv2
        .describe_rules()
        .listener_arn(&w.listener)
        .send()
        .await
        .unwrap();
    assert!(rules.rules().iter().all(|r| r.is_default() == Some(true)));
    assert!(eden.list(None).await.unwrap().is_empty());
}
