//! The world: everything the in-memory cloud holds, the reference resources a profile names
//! ([`MemoryCloud::seed`]), and the [`Inventory`] tests compare.

use std::collections::BTreeMap;

use super::{MemoryCloud, last_segment};
use crate::cloud::{
    AttrValue, ContainerImage, Deployment, DnsRecord, ImageDetails, Item, Listener, LoadBalancer,
    Rule, Service, ServiceLoadBalancer, ServiceSpec, StoredDocument, Tag, TargetGroup,
    TargetGroupSpec, TaskDefinition,
};
use crate::profile::Profile;

#[derive(Debug, Clone)]
pub(super) struct MemService {
    pub(super) service: Service,
    pub(super) polls_left: u32,
}

#[derive(Debug, Clone)]
pub(super) struct MemRule {
    pub(super) listener: String,
    pub(super) rule: Rule,
    pub(super) tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub(super) struct MemTargetGroup {
    pub(super) group: TargetGroup,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) tags: Vec<Tag>,
}

/// Records of a zone by `(name, type)`.
pub(super) type Records = BTreeMap<(String, String), DnsRecord>;

#[derive(Debug, Default)]
pub(super) struct World {
    pub(super) counter: u64,
    pub(super) clusters: std::collections::BTreeSet<String>,
    pub(super) services: BTreeMap<(String, String), MemService>,
    pub(super) task_definitions: BTreeMap<String, BTreeMap<i32, TaskDefinition>>,
    pub(super) last_revision: BTreeMap<String, i32>,
    pub(super) load_balancers: BTreeMap<String, LoadBalancer>,
    pub(super) listeners: BTreeMap<String, (String, Listener)>,
    pub(super) rules: BTreeMap<String, MemRule>,
    pub(super) target_groups: BTreeMap<String, MemTargetGroup>,
    pub(super) zones: BTreeMap<String, (String, Records)>,
    pub(super) images: BTreeMap<(String, String, String), Vec<ImageDetails>>,
    pub(super) buckets: BTreeMap<String, BTreeMap<String, StoredDocument>>,
    pub(super) tables: BTreeMap<String, BTreeMap<(String, String), Item>>,
    /// Tables with aws-eden-cli 0.1.5's layout (hash key `env_name`, items keyed
    /// `(env_name, "")`): scans work, keyed calls fail as DynamoDB fails them.
    pub(super) legacy_tables: std::collections::BTreeSet<String>,
}

impl World {
    pub(super) fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// Everything that exists in the in-memory cloud, as sorted text, for tests to compare.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// `cluster/name` of services neither DRAINING nor INACTIVE.
    pub services: Vec<String>,
    /// `cluster/name -> task definition` of those services.
    pub deployments: Vec<String>,
    /// `family:revision STATUS` of every task definition not deleted.
    pub task_definitions: Vec<String>,
    /// Target group names.
    pub target_groups: Vec<String>,
    /// `priority host -> target group name` of every non-default rule.
    pub rules: Vec<String>,
    /// `name TYPE = alias or values` of every record.
    pub records: Vec<String>,
    /// `bucket/key` with the JSON content.
    pub documents: Vec<String>,
    /// `table type/name` of every item.
    pub items: Vec<String>,
    /// `table type/name` with every attribute, of every item.
    pub item_details: Vec<String>,
    /// `resource key=value,...` of every tagged target group, rule, live service and task
    /// definition.
    pub tags: Vec<String>,
}

impl MemoryCloud {
    /// Seeds what a profile refers to: the shared ALB with an HTTPS:443 and an HTTP:80 listener,
    /// the reference target group with a rule (priority 1) and attributes, the reference and
    /// target clusters, the reference cluster's service and its task definition (container `app`, port 8080, capacity provider
    /// strategy), the hosted zone `dev.example.com`, ECR images `web:v1` and `web:v2` in the
    /// profile's region, and the endpoints bucket (without the document).
    pub fn seed(&self, profile: &Profile) {
        let mut w = self.lock();
        let alb = &profile.master_alb_arn;
        let prefix = format!(
            "arn:aws:elasticloadbalancing:{}:{}",
            alb.region, alb.account
        );
        w.load_balancers.insert(
            alb.arn.clone(),
            LoadBalancer {
                arn: alb.arn.clone(),
                dns_name: format!("{}-{}.{}.elb.amazonaws.com", alb.name, alb.id, alb.region),
                canonical_hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
                vpc_id: "vpc-0example".into(),
            },
        );
        for (port, protocol) in [(443, "HTTPS"), (80, "HTTP")] {
            let arn = format!("{prefix}:listener/app/{}/{}/{port}", alb.name, alb.id);
            w.listeners.insert(
                arn.clone(),
                (
                    alb.arn.clone(),
                    Listener {
                        arn,
                        protocol: protocol.into(),
                        port,
                    },
                ),
            );
        }
        let ref_tg_name = format!("{}-reference", profile.name_prefix);
        let ref_tg = format!("{prefix}:targetgroup/{ref_tg_name}/0000000000000001");
        w.target_groups.insert(
            ref_tg.clone(),
            MemTargetGroup {
                group: TargetGroup {
                    arn: ref_tg.clone(),
                    name: ref_tg_name,
                    spec: TargetGroupSpec {
                        protocol: Some("HTTP".into()),
                        protocol_version: Some("HTTP1".into()),
                        port: Some(8080),
                        vpc_id: Some("vpc-0example".into()),
                        ip_address_type: Some("ipv4".into()),
                        target_type: Some("ip".into()),
                        health_check: crate::cloud::HealthCheck {
                            enabled: Some(true),
                            protocol: Some("HTTP".into()),
                            port: Some("traffic-port".into()),
                            path: Some("/health".into()),
                            interval_seconds: Some(15),
                            timeout_seconds: Some(5),
                            healthy_threshold: Some(2),
                            unhealthy_threshold: Some(3),
                            matcher_http_code: Some("200-299".into()),
                            matcher_grpc_code: None,
                        },
                    },
                    load_balancer_arns: vec![],
                },
                attributes: [("deregistration_delay.timeout_seconds", "30")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                tags: vec![Tag::new("team", "web")],
            },
        );
        let https = format!("{prefix}:listener/app/{}/{}/443", alb.name, alb.id);
        let rule_arn = format!(
            "{prefix}:listener-rule/app/{}/{}/443/reference",
            alb.name, alb.id
        );
        w.rules.insert(
            rule_arn.clone(),
            MemRule {
                listener: https,
                rule: Rule {
                    arn: rule_arn,
                    priority: Some(1),
                    hosts: vec!["reference.dev.example.com".into()],
                    target_group_arns: vec![ref_tg.clone()],
                },
                tags: vec![],
            },
        );
        let svc = &profile.reference_service_arn;
        let family = svc.service.clone();
        let td_arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:1",
            svc.region, svc.account
        );
        let image = format!(
            "{}.dkr.ecr.{}.amazonaws.com/web:v1",
            svc.account, svc.region
        );
        w.task_definitions
            .entry(family.clone())
            .or_default()
            .insert(
                1,
                TaskDefinition {
                    arn: td_arn.clone(),
                    family: family.clone(),
                    revision: 1,
                    status: "ACTIVE".into(),
                    containers: vec![
                        ContainerImage {
                            name: "app".into(),
                            image,
                        },
                        ContainerImage {
                            name: "log-router".into(),
                            image: "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
                                .into(),
                        },
                    ],
                    network_mode: Some("awsvpc".into()),
                    task_role_arn: Some(format!("arn:aws:iam::{}:role/web-task", svc.account)),
                    execution_role_arn: Some(format!("arn:aws:iam::{}:role/web-exec", svc.account)),
                    cpu: Some("256".into()),
                    memory: Some("512".into()),
                    requires_compatibilities: vec!["FARGATE".into()],
                    tags: vec![Tag::new("team", "web")],
                },
            );
        w.last_revision.insert(family, 1);
        let spec = ServiceSpec {
            task_definition: td_arn.clone(),
            desired_count: 1,
            launch_type: None,
            capacity_provider_strategy: vec![crate::cloud::CapacityProviderItem {
                capacity_provider: "FARGATE_SPOT".into(),
                weight: 1,
                base: 0,
            }],
            platform_version: Some("LATEST".into()),
            network_configuration: Some(crate::cloud::NetworkConfiguration {
                subnets: vec!["subnet-1".into(), "subnet-2".into()],
                security_groups: vec!["sg-1".into()],
                assign_public_ip: Some("DISABLED".into()),
            }),
            load_balancers: vec![ServiceLoadBalancer {
                target_group_arn: Some(ref_tg),
                container_name: Some("app".into()),
                container_port: Some(8080),
            }],
            deployment_configuration: Some(crate::cloud::DeploymentConfiguration {
                maximum_percent: Some(200),
                minimum_healthy_percent: Some(100),
                circuit_breaker: Some((true, true)),
                alarms: None,
            }),
            health_check_grace_period_seconds: Some(30),
            enable_execute_command: true,
            propagate_tags: Some("NONE".into()),
            scheduling_strategy: Some("REPLICA".into()),
            ..ServiceSpec::default()
        };
        let service = Service {
            arn: svc.arn.clone(),
            name: svc.service.clone(),
            cluster_arn: svc.cluster_arn(),
            status: "ACTIVE".into(),
            running_count: 1,
            deployments: vec![Deployment {
                status: "PRIMARY".into(),
                rollout_state: Some("COMPLETED".into()),
                task_definition: td_arn,
                desired_count: 1,
                running_count: 1,
                ..Deployment::default()
            }],
            spec,
            ..Service::default()
        };
        w.services.insert(
            (svc.cluster.clone(), svc.service.clone()),
            MemService {
                service,
                polls_left: 0,
            },
        );
        w.clusters.insert(svc.cluster.clone());
        w.clusters
            .insert(last_segment(&profile.target_cluster).to_owned());
        w.zones.insert(
            profile.dynamic_zone_id.clone(),
            ("dev.example.com".into(), BTreeMap::new()),
        );
        w.images.insert(
            (svc.account.clone(), svc.region.clone(), "web".into()),
            vec![
                ImageDetails {
                    digest: format!("sha256:{}", "1".repeat(64)),
                    tags: vec!["v1".into()],
                },
                ImageDetails {
                    digest: format!("sha256:{}", "2".repeat(64)),
                    tags: vec!["v2".into()],
                },
            ],
        );
        w.buckets
            .entry(profile.endpoint_s3_bucket_name.clone())
            .or_default();
    }

    /// Everything that exists, for comparisons in tests.
    pub fn inventory(&self) -> Inventory {
        let w = self.lock();
        let tg_name = |arn: &String| {
            w.target_groups
                .get(arn)
                .map_or_else(|| format!("<missing {arn}>"), |t| t.group.name.clone())
        };
        let tag_text = |resource: &str, tags: &[Tag]| {
            let mut pairs: Vec<String> = tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect();
            pairs.sort();
            format!("{resource} {}", pairs.join(","))
        };
        let live = |s: &&MemService| s.service.status == "ACTIVE";
        let mut tags: Vec<String> = Vec::new();
        tags.extend(
            w.target_groups
                .values()
                .filter(|t| !t.tags.is_empty())
                .map(|t| tag_text(&t.group.name, &t.tags)),
        );
        tags.extend(
            w.rules
                .values()
                .filter(|r| !r.tags.is_empty())
                .map(|r| tag_text(&r.rule.hosts.join(","), &r.tags)),
        );
        tags.extend(
            w.services
                .values()
                .filter(live)
                .filter(|s| !s.service.tags.is_empty())
                .map(|s| tag_text(&s.service.name, &s.service.tags)),
        );
        tags.extend(
            w.task_definitions
                .values()
                .flat_map(|revs| revs.values())
                .filter(|t| !t.tags.is_empty())
                .map(|t| tag_text(&format!("{}:{}", t.family, t.revision), &t.tags)),
        );
        tags.sort();
        let mut inv = Inventory {
            services: w
                .services
                .iter()
                .filter(|(_, s)| live(s))
                .map(|((c, n), _)| format!("{c}/{n}"))
                .collect(),
            deployments: w
                .services
                .iter()
                .filter(|(_, s)| live(s))
                .map(|((c, n), s)| format!("{c}/{n} -> {}", s.service.spec.task_definition))
                .collect(),
            task_definitions: w
                .task_definitions
                .values()
                .flat_map(|revs| revs.values())
                .map(|t| format!("{}:{} {}", t.family, t.revision, t.status))
                .collect(),
            target_groups: w
                .target_groups
                .values()
                .map(|t| t.group.name.clone())
                .collect(),
            rules: w
                .rules
                .values()
                .map(|r| {
                    format!(
                        "{} {} -> {}",
                        r.rule.priority.unwrap_or(0),
                        r.rule.hosts.join(","),
                        r.rule
                            .target_group_arns
                            .iter()
                            .map(tg_name)
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })
                .collect(),
            records: w
                .zones
                .values()
                .flat_map(|(_, records)| records.iter())
                .map(|((n, t), r)| {
                    let content = match &r.alias {
                        Some(a) => format!("alias {} {}", a.dns_name, a.hosted_zone_id),
                        None => r.values.join(" "),
                    };
                    format!("{n} {t} = {content}")
                })
                .collect(),
            documents: w
                .buckets
                .iter()
                .flat_map(|(b, objects)| {
                    objects.iter().map(move |(k, d)| {
                        let content = serde_json::from_slice::<serde_json::Value>(&d.bytes)
                            .map_or_else(
                                |_| String::from_utf8_lossy(&d.bytes).into_owned(),
                                |v| v.to_string(),
                            );
                        format!("{b}/{k}: {content}")
                    })
                })
                .collect(),
            items: w
                .tables
                .iter()
                .flat_map(|(t, items)| items.keys().map(move |(h, r)| format!("{t} {h}/{r}")))
                .collect(),
            item_details: w
                .tables
                .iter()
                .flat_map(|(t, items)| {
                    items.iter().map(move |((h, r), item)| {
                        let attrs: Vec<String> = item
                            .iter()
                            .map(|(k, v)| match v {
                                AttrValue::S(s) => format!("{k}={s:?}"),
                                AttrValue::N(n) => format!("{k}={n}"),
                            })
                            .collect();
                        format!("{t} {h}/{r} {}", attrs.join(" "))
                    })
                })
                .collect(),
            tags,
        };
        inv.rules.sort();
        inv.target_groups.sort();
        inv
    }
}
