//! The moto reference world both eden-core moto tests clone from: SDK configuration pointed at
//! moto, and a VPC, ALB with HTTPS listener, reference target group, cluster, task definition
//! and service, hosted zone, ECR images and endpoints bucket, built with the SDK.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use aws_types::SdkConfig;
use aws_types::region::Region;
use eden_core::{Cloud, Profile};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The AWS implementations on moto, with path-style S3.
pub fn cloud(config: &SdkConfig) -> Cloud {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    eden_core::aws::cloud_with_s3(config, s3)
}

pub async fn sdk_config() -> SdkConfig {
    let endpoint = std::env::var("BAIKONUR_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BAIKONUR_MOTO_ENDPOINT is not set: run this test through the test command, which \
             starts `MOTO_ECS_SERVICE_RUNNING=10 moto_server` and exports \
             BAIKONUR_MOTO_ENDPOINT=http://127.0.0.1:PORT"
        )
    });
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await
}

pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", nanos % 0xffff_ffff)
}

pub fn manifest(seed: u8) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:{}"}},"layers":[]}}"#,
        format!("{seed:02x}").repeat(32)
    )
}

pub struct World {
    pub profile: Profile,
    pub listener: String,
    pub zone_id: String,
    pub image_v1: String,
    pub image_v2: String,
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub load_balancer: String,
    /// The load balancer's DNS name and canonical hosted zone id.
    pub load_balancer_dns: (String, String),
    pub zone_name: String,
    pub bucket: String,
}

/// The reference setup eden clones from, built with the SDK.
pub async fn setup(config: &SdkConfig, id: &str) -> World {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(config);
    let ecs_client = aws_sdk_ecs::Client::new(config);
    let r53 = aws_sdk_route53::Client::new(config);
    let ecr = aws_sdk_ecr::Client::new(config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );

    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.0.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_owned());
    }
    let sg = ec2
        .create_security_group()
        .group_name(format!("eden-{id}"))
        .description("eden test")
        .vpc_id(&vpc_id)
        .send()
        .await
        .unwrap();
    let sg = sg.group_id().unwrap().to_owned();
    let lb = elbv2
        .create_load_balancer()
        .name(format!("eden-{id}"))
        .set_subnets(Some(subnets.clone()))
        .r#type(elb::LoadBalancerTypeEnum::Application)
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let lb_dns = (
        lb.load_balancers()[0].dns_name().unwrap().to_owned(),
        lb.load_balancers()[0]
            .canonical_hosted_zone_id()
            .unwrap()
            .to_owned(),
    );
    let tg = elbv2
        .create_target_group()
        .name(format!("ref-{id}"))
        .protocol(elb::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc_id)
        .target_type(elb::TargetTypeEnum::Ip)
        .health_check_path("/health")
        .send()
        .await
        .unwrap();
    let ref_tg = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
    elbv2
        .modify_target_group_attributes()
        .target_group_arn(&ref_tg)
        .attributes(
            elb::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("30")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // An IAM server certificate ARN: moto checks ACM certificates but not IAM ones.
    let listener = elbv2
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(elb::ProtocolEnum::Https)
        .port(443)
        .certificates(
            elb::Certificate::builder()
                .certificate_arn(format!("arn:aws:iam::{ACCOUNT}:server-certificate/eden"))
                .build(),
        )
        .default_actions(
            elb::Action::builder()
                .r#type(elb::ActionTypeEnum::Forward)
                .target_group_arn(&ref_tg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let listener = listener.listeners()[0].listener_arn().unwrap().to_owned();

    ecr.create_repository()
        .repository_name(format!("web-{id}"))
        .send()
        .await
        .unwrap();
    for (tag, seed) in [("v1", 1), ("v2", 2)] {
        ecr.put_image()
            .repository_name(format!("web-{id}"))
            .image_manifest(manifest(seed))
            .image_tag(tag)
            .send()
            .await
            .unwrap();
    }
    let image = |tag: &str| format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web-{id}:{tag}");

    let cluster = format!("cluster-{id}");
    ecs_client
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let td = ecs_client
        .register_task_definition()
        .family(format!("ref-{id}"))
        .network_mode(ecs::NetworkMode::Awsvpc)
        .requires_compatibilities(ecs::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/exec"))
        .container_definitions(
            ecs::ContainerDefinition::builder()
                .name("app")
                .image(image("v1"))
                .essential(true)
                .port_mappings(ecs::PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .container_definitions(
            ecs::ContainerDefinition::builder()
                .name("sidecar")
                .image("public.ecr.aws/nginx/nginx:latest")
                .build(),
        )
        .tags(ecs::Tag::builder().key("team").value("web").build())
        .send()
        .await
        .unwrap();
    let td_arn = td
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    let svc = ecs_client
        .create_service()
        .cluster(&cluster)
        .service_name(format!("ref-{id}"))
        .task_definition(&td_arn)
        .desired_count(1)
        .launch_type(ecs::LaunchType::Fargate)
        .load_balancers(
            ecs::LoadBalancer::builder()
                .target_group_arn(&ref_tg)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .network_configuration(
            ecs::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    ecs::AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets.clone()))
                        .security_groups(&sg)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let svc_arn = svc.service().unwrap().service_arn().unwrap().to_owned();

    let zone = r53
        .create_hosted_zone()
        .name(format!("{id}.example.com"))
        .caller_reference(id)
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();

    let bucket = format!("endpoints-{id}");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let mut c = BTreeMap::new();
    for (k, v) in [
        ("name_prefix", format!("pr{id}")),
        ("reference_service_arn", svc_arn),
        ("target_cluster", cluster.clone()),
        ("domain_name_prefix", "api".to_owned()),
        ("master_alb_arn", lb_arn.clone()),
        ("dynamic_zone_id", zone_id.clone()),
        ("endpoint_s3_bucket_name", bucket.clone()),
        ("endpoint_s3_key", "endpoints.json".to_owned()),
        ("endpoint_name_prefix", "svc-dev".to_owned()),
        ("endpoint_update_key", "api_endpoint".to_owned()),
        ("endpoint_env_type", "dev".to_owned()),
    ] {
        c.insert(k.to_owned(), v);
    }
    let profile = Profile::from_config("moto", &c).expect("valid profile");
    World {
        profile,
        listener,
        zone_id,
        image_v1: image("v1"),
        image_v2: image("v2"),
        cluster,
        task_definition: td_arn,
        subnets,
        security_group: sg,
        load_balancer: lb_arn,
        load_balancer_dns: lb_dns,
        zone_name: format!("{id}.example.com"),
        bucket,
    }
}
