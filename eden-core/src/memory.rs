//! An in-memory cloud implementing every trait of [`crate::api`], behaving like AWS where eden
//! depends on it: target group name rules and `DuplicateTargetGroupName` (and the existing
//! group, tags untouched, for identical settings), `PriorityInUse`, `ResourceInUse` when
//! deleting a target group a rule uses, `TooManyRules` / `TooManyTargetGroups` past 100 per
//! load balancer, tags on every resource read back as AWS returns them, Route 53 change
//! batches that apply all or nothing (`CREATE` of an existing record and `DELETE` of a
//! different one fail), S3 ETag conditions (412), DRAINING then INACTIVE services, failed
//! rollouts with service events, pagination (`DescribeRules` and
//! `DescribeTargetGroups` pages, of 400 by default), DynamoDB condition and update expressions.
//!
//! Latency and injected failures are added by wrapping it, see [`crate::instrument`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::api::{
    AttrValue, ChangeAction, CloudError, CloudResult, ContainerImage, CreateRule, CreateService,
    CreateTargetGroup, Deployment, DnsApi, DnsRecord, DocumentStore, EcsApi, ImageDetails,
    ImageRegistry, Item, ItemCondition, ItemUpdate, Listener, LoadBalancer, LoadBalancerApi, Page,
    PutMode, RecordChange, RegisterTaskDefinition, Rule, Service, ServiceLoadBalancer, ServiceSpec,
    StateStore, StoredDocument, Tag, TargetGroup, TargetGroupSpec, TaskDefinition,
    TaskDefinitionStatus, WriteCondition, codes, schema,
};
use crate::image::{EcrImage, ImageSelector};
use crate::profile::Profile;
use crate::{Cloud, names};

/// Behaviour knobs of the in-memory cloud.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Describes of a deleted service that still answer DRAINING before it is INACTIVE.
    pub draining_polls: u32,
    /// Describes of a new deployment before its rollout is COMPLETED.
    pub stabilize_polls: u32,
    /// `DescribeRules` page size (eden asks AWS for pages of 400; AWS's default is smaller).
    pub rules_page_size: usize,
    /// Non-default rules per load balancer (AWS default quota: 100).
    pub max_rules_per_alb: usize,
    /// Target groups per load balancer (AWS: 100, not adjustable).
    pub max_target_groups_per_alb: usize,
    /// Items per DynamoDB query/scan page.
    pub state_page_size: usize,
    /// `DescribeTargetGroups` page size (AWS: at most 400).
    pub target_groups_page_size: usize,
    /// Every new deployment's rollout ends `FAILED` (as with a deployment circuit breaker
    /// when tasks keep failing), with a service event saying why.
    pub fail_rollouts: bool,
}

impl MemoryOptions {
    /// Sets [`MemoryOptions::draining_polls`].
    pub fn draining_polls(mut self, value: u32) -> Self {
        self.draining_polls = value;
        self
    }

    /// Sets [`MemoryOptions::stabilize_polls`].
    pub fn stabilize_polls(mut self, value: u32) -> Self {
        self.stabilize_polls = value;
        self
    }

    /// Sets [`MemoryOptions::rules_page_size`].
    pub fn rules_page_size(mut self, value: usize) -> Self {
        self.rules_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::max_rules_per_alb`].
    pub fn max_rules_per_alb(mut self, value: usize) -> Self {
        self.max_rules_per_alb = value;
        self
    }

    /// Sets [`MemoryOptions::max_target_groups_per_alb`].
    pub fn max_target_groups_per_alb(mut self, value: usize) -> Self {
        self.max_target_groups_per_alb = value;
        self
    }

    /// Sets [`MemoryOptions::state_page_size`].
    pub fn state_page_size(mut self, value: usize) -> Self {
        self.state_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::target_groups_page_size`].
    pub fn target_groups_page_size(mut self, value: usize) -> Self {
        self.target_groups_page_size = value;
        self
    }

    /// Sets [`MemoryOptions::fail_rollouts`].
    pub fn fail_rollouts(mut self, value: bool) -> Self {
        self.fail_rollouts = value;
        self
    }
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            draining_polls: 1,
            stabilize_polls: 0,
            rules_page_size: 400,
            max_rules_per_alb: 100,
            max_target_groups_per_alb: 100,
            state_page_size: 100,
            target_groups_page_size: 400,
            fail_rollouts: false,
        }
    }
}

#[derive(Debug, Clone)]
struct MemService {
    service: Service,
    polls_left: u32,
}

#[derive(Debug, Clone)]
struct MemRule {
    listener: String,
    rule: Rule,
    tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
struct MemTargetGroup {
    group: TargetGroup,
    attributes: BTreeMap<String, String>,
    tags: Vec<Tag>,
}

/// Records of a zone by `(name, type)`.
type Records = BTreeMap<(String, String), DnsRecord>;

#[derive(Debug, Default)]
struct World {
    counter: u64,
    clusters: std::collections::BTreeSet<String>,
    services: BTreeMap<(String, String), MemService>,
    task_definitions: BTreeMap<String, BTreeMap<i32, TaskDefinition>>,
    last_revision: BTreeMap<String, i32>,
    load_balancers: BTreeMap<String, LoadBalancer>,
    listeners: BTreeMap<String, (String, Listener)>,
    rules: BTreeMap<String, MemRule>,
    target_groups: BTreeMap<String, MemTargetGroup>,
    zones: BTreeMap<String, (String, Records)>,
    images: BTreeMap<(String, String, String), Vec<ImageDetails>>,
    buckets: BTreeMap<String, BTreeMap<String, StoredDocument>>,
    tables: BTreeMap<String, BTreeMap<(String, String), Item>>,
}

impl World {
    fn next_id(&mut self) -> u64 {
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

/// The in-memory cloud. Cheap to share: wrap it in an `Arc` and use [`MemoryCloud::cloud`].
#[derive(Debug, Default)]
pub struct MemoryCloud {
    world: Mutex<World>,
    options: MemoryOptions,
    account: String,
    region: String,
}

fn err<T>(code: &str, message: impl Into<String>) -> CloudResult<T> {
    Err(CloudError::new(code, message))
}

fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

impl MemoryCloud {
    /// An empty cloud in account `123456789012`, region `us-east-1`.
    pub fn new(options: MemoryOptions) -> Self {
        Self {
            world: Mutex::new(World::default()),
            options,
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    /// A cloud holding the reference resources `profile` names (see [`MemoryCloud::seed`]),
    /// in the profile's account and region.
    pub fn with_reference(profile: &Profile, options: MemoryOptions) -> Arc<Self> {
        let mut cloud = Self::new(options);
        cloud.account = profile.master_alb_arn.account.clone();
        cloud.region = profile.master_alb_arn.region.clone();
        let cloud = Arc::new(cloud);
        cloud.seed(profile);
        cloud
    }

    /// The six traits, all served by this cloud (in its region).
    pub fn cloud(self: &Arc<Self>) -> Cloud {
        Cloud::from_one(self.clone()).with_region(self.region.clone())
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

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
                        health_check: crate::api::HealthCheck {
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
            capacity_provider_strategy: vec![crate::api::CapacityProviderItem {
                capacity_provider: "FARGATE_SPOT".into(),
                weight: 1,
                base: 0,
            }],
            platform_version: Some("LATEST".into()),
            network_configuration: Some(crate::api::NetworkConfiguration {
                subnets: vec!["subnet-1".into(), "subnet-2".into()],
                security_groups: vec!["sg-1".into()],
                assign_public_ip: Some("DISABLED".into()),
            }),
            load_balancers: vec![ServiceLoadBalancer {
                target_group_arn: Some(ref_tg),
                container_name: Some("app".into()),
                container_port: Some(8080),
            }],
            deployment_configuration: Some(crate::api::DeploymentConfiguration {
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

    /// Adds an image to a repository (creating the repository).
    pub fn put_image(&self, image: &EcrImage, digest: &str) {
        let mut w = self.lock();
        let images = w
            .images
            .entry((
                image.registry_id.clone(),
                image.region.clone(),
                image.repository.clone(),
            ))
            .or_default();
        let tags = match &image.selector {
            ImageSelector::Tag(t) => vec![t.clone()],
            ImageSelector::Digest(_) => vec![],
        };
        images.push(ImageDetails {
            digest: digest.to_owned(),
            tags,
        });
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

    /// A listener's non-default rules, sorted by priority.
    pub fn rules_of(&self, listener_arn: &str) -> Vec<Rule> {
        let w = self.lock();
        let mut rules: Vec<Rule> = w
            .rules
            .values()
            .filter(|r| r.listener == listener_arn)
            .map(|r| r.rule.clone())
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    /// The object's bytes, if any.
    pub fn document(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let w = self.lock();
        w.buckets.get(bucket)?.get(key).map(|d| d.bytes.clone())
    }

    /// A service as stored, without advancing its DRAINING countdown.
    pub fn peek_service(&self, cluster: &str, name: &str) -> Option<Service> {
        let w = self.lock();
        w.services
            .get(&(last_segment(cluster).to_owned(), name.to_owned()))
            .map(|s| s.service.clone())
    }

    /// Changes a stored service (for tests: a reference with Service Connect, registries...);
    /// false when there is no such service.
    pub fn edit_service(&self, cluster: &str, name: &str, edit: impl FnOnce(&mut Service)) -> bool {
        let mut w = self.lock();
        match w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        {
            Some(s) => {
                edit(&mut s.service);
                true
            }
            None => false,
        }
    }

    /// A task definition as stored (for tests checking what was copied).
    pub fn peek_task_definition(&self, family: &str, revision: i32) -> Option<TaskDefinition> {
        let w = self.lock();
        w.task_definitions.get(family)?.get(&revision).cloned()
    }

    /// Sets a state item's `last_updated` (to test the expiry sweep).
    pub fn set_last_updated(&self, table: &str, hash: &str, range: &str, epoch: i64) -> bool {
        let mut w = self.lock();
        let Some(item) = w
            .tables
            .get_mut(table)
            .and_then(|t| t.get_mut(&(hash.to_owned(), range.to_owned())))
        else {
            return false;
        };
        item.insert(schema::LAST_UPDATED.into(), AttrValue::N(epoch.to_string()));
        true
    }

    fn cluster(w: &World, cluster: &str) -> CloudResult<()> {
        if w.clusters.contains(last_segment(cluster)) {
            Ok(())
        } else {
            err("ClusterNotFoundException", "Cluster not found.")
        }
    }

    /// Adds an (empty) ECS cluster.
    pub fn put_cluster(&self, name: &str) {
        self.lock().clusters.insert(name.to_owned());
    }

    fn alb_of_listener(w: &World, listener: &str) -> Option<String> {
        w.listeners.get(listener).map(|(lb, _)| lb.clone())
    }

    fn target_group_lbs(w: &World, tg_arn: &str) -> Vec<String> {
        let mut lbs: Vec<String> = w
            .rules
            .values()
            .filter(|r| r.rule.target_group_arns.iter().any(|t| t == tg_arn))
            .filter_map(|r| Self::alb_of_listener(w, &r.listener))
            .collect();
        lbs.sort();
        lbs.dedup();
        lbs
    }

    fn with_lbs(w: &World, tg: &MemTargetGroup) -> TargetGroup {
        let mut group = tg.group.clone();
        group.load_balancer_arns = Self::target_group_lbs(w, &group.arn);
        group
    }
}

fn valid_target_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > names::MAX_TARGET_GROUP_NAME_LEN {
        return Err(format!(
            "Target group name '{name}' cannot be longer than '32' characters"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        ));
    }
    if name.starts_with("internal-") {
        return Err("Target group name cannot begin with 'internal-'".into());
    }
    Ok(())
}

fn paginate<T: Clone>(items: &[T], next: Option<String>, size: usize) -> CloudResult<Page<T>> {
    let start = match next {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| CloudError::new("ValidationError", "invalid pagination token"))?,
    };
    let end = (start + size.max(1)).min(items.len());
    Ok(Page {
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        next: (end < items.len()).then(|| end.to_string()),
    })
}

#[async_trait]
impl EcsApi for MemoryCloud {
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>> {
        let mut w = self.lock();
        Self::cluster(&w, cluster)?;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return Ok(None);
        };
        if s.service.status == "DRAINING" {
            if s.polls_left == 0 {
                s.service.status = "INACTIVE".into();
            } else {
                s.polls_left -= 1;
            }
        } else if s.service.status == "ACTIVE" {
            let in_progress = s
                .service
                .deployments
                .first()
                .is_some_and(|d| d.rollout_state.as_deref() == Some("IN_PROGRESS"));
            if s.polls_left > 0 {
                s.polls_left -= 1;
            } else if in_progress && self.options.fail_rollouts {
                let name = s.service.name.clone();
                if let Some(d) = s.service.deployments.first_mut() {
                    d.rollout_state = Some("FAILED".into());
                    d.failed_tasks = 3;
                    d.rollout_state_reason =
                        Some("ECS deployment circuit breaker: tasks failed to start.".into());
                }
                s.service.events.insert(
                    0,
                    crate::api::ServiceEvent {
                        created_at: Some(chrono::Utc::now().to_rfc3339()),
                        message: format!(
                            "(service {name}) deployment failed: tasks failed to start."
                        ),
                    },
                );
            } else if in_progress
                || (s.service.deployments.len() > 1 && !s.service.rollout_failed())
            {
                for d in &mut s.service.deployments {
                    d.rollout_state = Some("COMPLETED".into());
                    d.running_count = d.desired_count;
                }
                s.service.deployments.truncate(1);
                s.service.running_count = s.service.spec.desired_count;
                let name = s.service.name.clone();
                s.service.events.insert(
                    0,
                    crate::api::ServiceEvent {
                        created_at: Some(chrono::Utc::now().to_rfc3339()),
                        message: format!("(service {name}) has reached a steady state."),
                    },
                );
            }
        }
        Ok(Some(s.service.clone()))
    }

    async fn create_service(&self, request: CreateService) -> CloudResult<Service> {
        let mut w = self.lock();
        Self::cluster(&w, &request.cluster)?;
        let cluster = last_segment(&request.cluster).to_owned();
        let key = (cluster.clone(), request.name.clone());
        if let Some(existing) = w.services.get(&key) {
            match existing.service.status.as_str() {
                "ACTIVE" => {
                    return err(
                        "InvalidParameterException",
                        "Creation of service was not idempotent.",
                    );
                }
                "DRAINING" => {
                    return err(
                        "InvalidParameterException",
                        "Unable to Start a service that is still Draining.",
                    );
                }
                _ => {}
            }
        }
        names::check_ecs_name("service name", &request.name)
            .map_err(|e| CloudError::new("InvalidParameterException", e.to_string()))?;
        let spec = &request.spec;
        if spec.propagate_tags.as_deref() == Some("NONE") {
            return err(
                "InvalidParameterException",
                "Invalid value for propagateTags: NONE",
            );
        }
        if spec.launch_type.is_some() && !spec.capacity_provider_strategy.is_empty() {
            return err(
                "InvalidParameterException",
                "Specifying both a launch type and capacity provider strategy is not supported.",
            );
        }
        let td_ok = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .any(|t| t.arn == spec.task_definition && t.status == "ACTIVE");
        if !td_ok {
            return err(
                "ClientException",
                format!("TaskDefinition not found: {}", spec.task_definition),
            );
        }
        for lb in &spec.load_balancers {
            let Some(tg) = &lb.target_group_arn else {
                continue;
            };
            if !w.target_groups.contains_key(tg) {
                return err(
                    "InvalidParameterException",
                    format!(
                        "Unable to assume role and validate the specified targetGroupArn: {tg}"
                    ),
                );
            }
            if Self::target_group_lbs(&w, tg).is_empty() {
                return err(
                    "InvalidParameterException",
                    format!(
                        "The target group with targetGroupArn {tg} does not have an associated load balancer."
                    ),
                );
            }
        }
        let arn = format!(
            "arn:aws:ecs:{}:{}:service/{cluster}/{}",
            self.region, self.account, request.name
        );
        let service = Service {
            arn,
            name: request.name.clone(),
            cluster_arn: format!(
                "arn:aws:ecs:{}:{}:cluster/{cluster}",
                self.region, self.account
            ),
            status: "ACTIVE".into(),
            running_count: 0,
            deployments: vec![Deployment {
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: spec.task_definition.clone(),
                desired_count: spec.desired_count,
                ..Deployment::default()
            }],
            spec: request.spec,
            tags: request.tags,
            ..Service::default()
        };
        w.services.insert(
            key,
            MemService {
                service: service.clone(),
                polls_left: self.options.stabilize_polls,
            },
        );
        Ok(service)
    }

    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
        _force_new_deployment: bool,
    ) -> CloudResult<Service> {
        let mut w = self.lock();
        let exists = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .any(|t| t.arn == task_definition && t.status == "ACTIVE");
        if !exists {
            return err(
                "ClientException",
                format!("TaskDefinition not found: {task_definition}"),
            );
        }
        let stabilize = self.options.stabilize_polls;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return err("ServiceNotFoundException", "Service not found.");
        };
        if s.service.status != "ACTIVE" {
            return err("ServiceNotActiveException", "Service was not ACTIVE.");
        }
        s.service.spec.task_definition = task_definition.to_owned();
        for d in &mut s.service.deployments {
            d.status = "ACTIVE".into();
        }
        s.service.deployments.insert(
            0,
            Deployment {
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: task_definition.to_owned(),
                desired_count: s.service.spec.desired_count,
                ..Deployment::default()
            },
        );
        s.polls_left = stabilize;
        Ok(s.service.clone())
    }

    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service> {
        let mut w = self.lock();
        let draining = self.options.draining_polls;
        let Some(s) = w
            .services
            .get_mut(&(last_segment(cluster).to_owned(), name.to_owned()))
        else {
            return err("ServiceNotFoundException", "Service not found.");
        };
        if s.service.status != "ACTIVE" {
            return err("ServiceNotActiveException", "Service was not ACTIVE.");
        }
        if s.service.spec.desired_count > 0 && !force {
            return err(
                "InvalidParameterException",
                "The service cannot be stopped while it is scaled above 0.",
            );
        }
        s.service.status = if draining == 0 {
            "INACTIVE"
        } else {
            "DRAINING"
        }
        .into();
        s.service.spec.desired_count = 0;
        s.polls_left = draining.saturating_sub(1);
        Ok(s.service.clone())
    }

    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        let w = self.lock();
        w.task_definitions
            .values()
            .flat_map(|r| r.values())
            .find(|t| t.arn == arn || format!("{}:{}", t.family, t.revision) == last_segment(arn))
            .cloned()
            .ok_or_else(|| {
                CloudError::new("ClientException", "Unable to describe task definition.")
            })
    }

    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>> {
        let w = self.lock();
        Ok(w.task_definitions
            .get(family)
            .and_then(|revs| revs.values().rev().find(|t| t.status == "ACTIVE").cloned()))
    }

    async fn register_task_definition(
        &self,
        request: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition> {
        let mut w = self.lock();
        names::check_ecs_name("family", &request.family)
            .map_err(|e| CloudError::new("ClientException", e.to_string()))?;
        let Some(base) = w
            .task_definitions
            .values()
            .flat_map(|r| r.values())
            .find(|t| t.arn == request.base)
            .cloned()
        else {
            return err("ClientException", "Unable to describe task definition.");
        };
        let mut def = base;
        for image in &request.images {
            let Some(c) = def.containers.iter_mut().find(|c| c.name == image.name) else {
                return err(
                    "ClientException",
                    format!("container {} not found in {}", image.name, request.base),
                );
            };
            c.image = image.image.clone();
        }
        for tag in request.tags {
            def.tags.retain(|t| t.key != tag.key);
            def.tags.push(tag);
        }
        let revision = w.last_revision.get(&request.family).copied().unwrap_or(0) + 1;
        w.last_revision.insert(request.family.clone(), revision);
        def.arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{}:{revision}",
            self.region, self.account, request.family
        );
        def.family = request.family.clone();
        def.revision = revision;
        def.status = "ACTIVE".into();
        w.task_definitions
            .entry(request.family)
            .or_default()
            .insert(revision, def.clone());
        Ok(def)
    }

    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>> {
        let w = self.lock();
        let want = match status {
            TaskDefinitionStatus::Active => "ACTIVE",
            TaskDefinitionStatus::Inactive => "INACTIVE",
        };
        Ok(w.task_definitions
            .get(family)
            .map(|revs| {
                revs.values()
                    .filter(|t| t.status == want)
                    .map(|t| t.arn.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        let mut w = self.lock();
        let found = w
            .task_definitions
            .values_mut()
            .flat_map(|r| r.values_mut())
            .find(|t| t.arn == arn);
        match found {
            Some(t) => {
                t.status = "INACTIVE".into();
                Ok(())
            }
            None => err(
                "ClientException",
                "The specified task definition does not exist.",
            ),
        }
    }

    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        if arns.is_empty() || arns.len() > 10 {
            return err(
                "InvalidParameterException",
                "between 1 and 10 task definitions per call",
            );
        }
        let mut w = self.lock();
        let mut failures = Vec::new();
        for arn in arns {
            let mut status = None;
            for revs in w.task_definitions.values_mut() {
                if let Some((rev, t)) = revs.iter().find(|(_, t)| &t.arn == arn) {
                    status = Some(t.status.clone());
                    if t.status == "INACTIVE" {
                        let rev = *rev;
                        revs.remove(&rev);
                    }
                    break;
                }
            }
            match status.as_deref() {
                Some("INACTIVE") => {}
                Some(_) => failures.push((arn.clone(), "The specified task definition is still in ACTIVE status. Deregister the target task definition first.".into())),
                None => failures.push((arn.clone(), "The specified task definition does not exist.".into())),
            }
        }
        Ok(failures)
    }
}

#[async_trait]
impl LoadBalancerApi for MemoryCloud {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let w = self.lock();
        w.load_balancers.get(arn).cloned().ok_or_else(|| {
            CloudError::new(
                "LoadBalancerNotFound",
                format!("Load balancer '{arn}' not found"),
            )
        })
    }

    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        let w = self.lock();
        if !w.load_balancers.contains_key(load_balancer_arn) {
            return err(
                "LoadBalancerNotFound",
                "One or more load balancers not found",
            );
        }
        Ok(w.listeners
            .values()
            .filter(|(lb, _)| lb == load_balancer_arn)
            .map(|(_, l)| l.clone())
            .collect())
    }

    async fn describe_rules(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> CloudResult<Page<Rule>> {
        let w = self.lock();
        if !w.listeners.contains_key(listener_arn) {
            return err("ListenerNotFound", "One or more listeners not found");
        }
        let mut rules: Vec<Rule> = w
            .rules
            .values()
            .filter(|r| r.listener == listener_arn)
            .map(|r| r.rule.clone())
            .collect();
        rules.sort_by_key(|r| r.priority);
        // The default rule comes last, as in AWS.
        rules.push(Rule {
            arn: format!("{listener_arn}/default"),
            priority: None,
            hosts: vec![],
            target_group_arns: vec![],
        });
        paginate(&rules, marker, self.options.rules_page_size)
    }

    async fn create_rule(&self, request: CreateRule) -> CloudResult<Rule> {
        let mut w = self.lock();
        let Some(alb) = Self::alb_of_listener(&w, &request.listener_arn) else {
            return err("ListenerNotFound", "One or more listeners not found");
        };
        if !(1..=50_000).contains(&request.priority) {
            return err("ValidationError", "Priority must be between 1 and 50000");
        }
        if !w.target_groups.contains_key(&request.target_group_arn) {
            return err("TargetGroupNotFound", "One or more target groups not found");
        }
        if w.rules.values().any(|r| {
            r.listener == request.listener_arn && r.rule.priority == Some(request.priority)
        }) {
            return err(
                codes::PRIORITY_IN_USE,
                format!("Priority '{}' is currently in use", request.priority),
            );
        }
        let alb_rules: Vec<&MemRule> = w
            .rules
            .values()
            .filter(|r| Self::alb_of_listener(&w, &r.listener).as_deref() == Some(alb.as_str()))
            .collect();
        if alb_rules.len() >= self.options.max_rules_per_alb {
            return err(
                codes::TOO_MANY_RULES,
                "The maximum number of rules for the load balancer has been reached",
            );
        }
        let mut groups: Vec<&String> = alb_rules
            .iter()
            .flat_map(|r| &r.rule.target_group_arns)
            .collect();
        groups.push(&request.target_group_arn);
        groups.sort();
        groups.dedup();
        if groups.len() > self.options.max_target_groups_per_alb {
            return err(
                codes::TOO_MANY_TARGET_GROUPS,
                "The maximum number of target groups for the load balancer has been reached",
            );
        }
        let id = w.next_id();
        let arn = format!(
            "{}/{id:016x}",
            request
                .listener_arn
                .replacen(":listener/", ":listener-rule/", 1)
        );
        let rule = Rule {
            arn: arn.clone(),
            priority: Some(request.priority),
            hosts: vec![request.host],
            target_group_arns: vec![request.target_group_arn],
        };
        w.rules.insert(
            arn,
            MemRule {
                listener: request.listener_arn,
                rule: rule.clone(),
                tags: request.tags,
            },
        );
        Ok(rule)
    }

    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        let mut w = self.lock();
        match w.rules.remove(arn) {
            Some(_) => Ok(()),
            None => err("RuleNotFound", "One or more rules not found"),
        }
    }

    async fn describe_target_group_by_name(&self, name: &str) -> CloudResult<Option<TargetGroup>> {
        let w = self.lock();
        Ok(w.target_groups
            .values()
            .find(|t| t.group.name == name)
            .map(|t| Self::with_lbs(&w, t)))
    }

    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        let w = self.lock();
        Ok(w.target_groups.get(arn).map(|t| Self::with_lbs(&w, t)))
    }

    async fn list_target_groups(&self, marker: Option<String>) -> CloudResult<Page<TargetGroup>> {
        let w = self.lock();
        let groups: Vec<TargetGroup> = w
            .target_groups
            .values()
            .map(|t| Self::with_lbs(&w, t))
            .collect();
        paginate(&groups, marker, self.options.target_groups_page_size)
    }

    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        if arns.len() > 20 {
            return err(
                "ValidationError",
                "DescribeTags takes at most 20 resource ARNs",
            );
        }
        let w = self.lock();
        let mut out = BTreeMap::new();
        for arn in arns {
            let tags = if let Some(t) = w.target_groups.get(arn) {
                t.tags.clone()
            } else if let Some(r) = w.rules.get(arn) {
                r.tags.clone()
            } else if w.load_balancers.contains_key(arn) {
                Vec::new()
            } else if arn.contains(":targetgroup/") {
                return err(
                    "TargetGroupNotFound",
                    format!("Target group '{arn}' not found"),
                );
            } else if arn.contains(":listener-rule/") {
                return err("RuleNotFound", format!("Rule '{arn}' not found"));
            } else {
                return err("LoadBalancerNotFound", format!("'{arn}' not found"));
            };
            out.insert(arn.clone(), tags);
        }
        Ok(out)
    }

    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        let w = self.lock();
        w.target_groups
            .get(arn)
            .map(|t| t.attributes.clone())
            .ok_or_else(|| {
                CloudError::new("TargetGroupNotFound", "One or more target groups not found")
            })
    }

    async fn create_target_group(&self, request: CreateTargetGroup) -> CloudResult<TargetGroup> {
        let mut w = self.lock();
        valid_target_group_name(&request.name)
            .map_err(|m| CloudError::new("ValidationError", m))?;
        if let Some(existing) = w
            .target_groups
            .values()
            .find(|t| t.group.name == request.name)
        {
            // AWS answers the existing group when the settings are identical (its tags are
            // left as they are).
            if existing.group.spec == request.spec {
                return Ok(Self::with_lbs(&w, existing));
            }
            return err(
                codes::DUPLICATE_TARGET_GROUP_NAME,
                "A target group with the same name exists, but with different settings",
            );
        }
        let id = w.next_id();
        let arn = format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}/{id:016x}",
            self.region, self.account, request.name
        );
        let group = TargetGroup {
            arn: arn.clone(),
            name: request.name,
            spec: request.spec,
            load_balancer_arns: vec![],
        };
        w.target_groups.insert(
            arn,
            MemTargetGroup {
                group: group.clone(),
                attributes: BTreeMap::from([(
                    "deregistration_delay.timeout_seconds".to_owned(),
                    "300".to_owned(),
                )]),
                tags: request.tags,
            },
        );
        Ok(group)
    }

    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        let mut w = self.lock();
        let Some(t) = w.target_groups.get_mut(arn) else {
            return err("TargetGroupNotFound", "One or more target groups not found");
        };
        t.attributes
            .extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        let mut w = self.lock();
        if !w.target_groups.contains_key(arn) {
            return err("TargetGroupNotFound", "One or more target groups not found");
        }
        if !Self::target_group_lbs(&w, arn).is_empty() {
            return err(
                codes::RESOURCE_IN_USE,
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            );
        }
        w.target_groups.remove(arn);
        Ok(())
    }
}

fn record_key(name: &str, record_type: &str) -> (String, String) {
    (
        name.trim_end_matches('.').to_ascii_lowercase(),
        record_type.to_owned(),
    )
}

#[async_trait]
impl DnsApi for MemoryCloud {
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String> {
        let w = self.lock();
        w.zones.get(zone_id).map(|(n, _)| n.clone()).ok_or_else(|| {
            CloudError::new(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })
    }

    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>> {
        let w = self.lock();
        let Some((_, records)) = w.zones.get(zone_id) else {
            return err(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            );
        };
        Ok(records.get(&record_key(name, record_type)).cloned())
    }

    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        let mut w = self.lock();
        let Some((zone, records)) = w.zones.get_mut(zone_id) else {
            return err(
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            );
        };
        // All or nothing: apply to a copy, keep it only when every change applied.
        let mut next = records.clone();
        for change in changes {
            let record = &change.record;
            let key = record_key(&record.name, &record.record_type);
            if !(key.0 == *zone || key.0.ends_with(&format!(".{zone}"))) {
                return err(
                    codes::INVALID_CHANGE_BATCH,
                    format!(
                        "RRSet with DNS name {} is not permitted in zone {zone}",
                        key.0
                    ),
                );
            }
            if record.record_type == "TXT"
                && record
                    .values
                    .iter()
                    .any(|v| v.len() > 255 + 2 || !v.starts_with('"'))
            {
                return err(
                    "InvalidChangeBatch",
                    "Invalid Resource Record: FATAL problem: TXT value must be quoted and at most 255 characters",
                );
            }
            match change.action {
                ChangeAction::Create | ChangeAction::Upsert => {
                    if change.action == ChangeAction::Create && next.contains_key(&key) {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to create resource record set [name='{}.', type='{}'] but it already exists",
                                key.0, key.1
                            ),
                        );
                    }
                    let mut stored = record.clone();
                    stored.name = key.0.clone();
                    next.insert(key, stored);
                }
                ChangeAction::Delete => match next.get(&key) {
                    Some(r)
                        if r.alias == record.alias
                            && r.values == record.values
                            && (r.alias.is_some() || r.ttl == record.ttl) =>
                    {
                        next.remove(&key);
                    }
                    Some(_) => {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to delete resource record set [name='{}.', type='{}'] but the values provided do not match the current values",
                                key.0, key.1
                            ),
                        );
                    }
                    None => {
                        return err(
                            codes::INVALID_CHANGE_BATCH,
                            format!(
                                "Tried to delete resource record set [name='{}.', type='{}'] but it was not found",
                                key.0, key.1
                            ),
                        );
                    }
                },
            }
        }
        *records = next;
        Ok(())
    }
}

#[async_trait]
impl ImageRegistry for MemoryCloud {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        let w = self.lock();
        let Some(images) = w.images.get(&(
            image.registry_id.clone(),
            image.region.clone(),
            image.repository.clone(),
        )) else {
            return err(
                codes::REPOSITORY_NOT_FOUND,
                format!(
                    "The repository with name '{}' does not exist in the registry with id '{}'",
                    image.repository, image.registry_id
                ),
            );
        };
        images
            .iter()
            .find(|i| match &image.selector {
                ImageSelector::Tag(t) => i.tags.contains(t),
                ImageSelector::Digest(d) => &i.digest == d,
            })
            .cloned()
            .ok_or_else(|| {
                CloudError::new(
                    codes::IMAGE_NOT_FOUND,
                    format!(
                        "The image with imageId {} does not exist within the repository with name '{}'",
                        image.selector, image.repository
                    ),
                )
            })
    }
}

#[async_trait]
impl DocumentStore for MemoryCloud {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        let w = self.lock();
        let Some(objects) = w.buckets.get(bucket) else {
            return err("NoSuchBucket", "The specified bucket does not exist");
        };
        Ok(objects.get(key).cloned())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        let mut w = self.lock();
        let Some(objects) = w.buckets.get_mut(bucket) else {
            return err("NoSuchBucket", "The specified bucket does not exist");
        };
        let current = objects.get(key).map(|d| d.etag.as_str());
        let ok = match (&mode, current) {
            (PutMode::Create, None) => true,
            (PutMode::Update(want), Some(have)) => want == have,
            _ => false,
        };
        if !ok {
            return err(
                codes::PRECONDITION_FAILED,
                "At least one of the pre-conditions you specified did not hold",
            );
        }
        let digest = Sha256::digest(&bytes);
        let etag: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{etag}\"");
        objects.insert(
            key.to_owned(),
            StoredDocument {
                bytes,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }
}

fn item_key(item: &Item) -> CloudResult<(String, String)> {
    let get = |k: &str| {
        item.get(k)
            .and_then(AttrValue::as_s)
            .map(str::to_owned)
            .ok_or_else(|| {
                CloudError::new("ValidationException", format!("missing key attribute {k}"))
            })
    };
    Ok((get(schema::HASH_KEY)?, get(schema::RANGE_KEY)?))
}

fn check_condition(exists: bool, condition: WriteCondition) -> CloudResult<()> {
    match (condition, exists) {
        (WriteCondition::NotExists, true) | (WriteCondition::Exists, false) => err(
            codes::CONDITIONAL_CHECK_FAILED,
            "The conditional request failed",
        ),
        _ => Ok(()),
    }
}

impl MemoryCloud {
    fn table<'a>(
        w: &'a mut World,
        table: &str,
    ) -> CloudResult<&'a mut BTreeMap<(String, String), Item>> {
        w.tables.get_mut(table).ok_or_else(|| {
            CloudError::new("ResourceNotFoundException", "Requested resource not found")
        })
    }
}

#[async_trait]
impl StateStore for MemoryCloud {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        let mut w = self.lock();
        if w.tables.contains_key(table) {
            return Ok(false);
        }
        w.tables.insert(table.to_owned(), BTreeMap::new());
        Ok(true)
    }

    async fn put_item(
        &self,
        table: &str,
        item: Item,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let key = item_key(&item)?;
        let t = Self::table(&mut w, table)?;
        check_condition(t.contains_key(&key), condition)?;
        Ok(t.insert(key, item))
    }

    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        Ok(t.get(&(hash.to_owned(), range.to_owned())).cloned())
    }

    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        check_condition(t.contains_key(&key), condition)?;
        Ok(t.remove(&key))
    }

    async fn query(
        &self,
        table: &str,
        hash: &str,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let items: Vec<Item> = t
            .iter()
            .filter(|((h, _), _)| h == hash)
            .map(|(_, i)| i.clone())
            .collect();
        paginate(&items, next, self.options.state_page_size)
    }

    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let mut items: Vec<Item> = t
            .values()
            .filter(|i| i.get(schema::KIND).and_then(AttrValue::as_s) == Some(kind))
            .filter(|i| {
                let updated = i.get(schema::LAST_UPDATED).and_then(AttrValue::as_i64);
                match (before, updated) {
                    (None, Some(_)) => true,
                    (Some(b), Some(u)) => u < b,
                    (_, None) => false,
                }
            })
            .cloned()
            .collect();
        items.sort_by_key(|i| i.get(schema::LAST_UPDATED).and_then(AttrValue::as_i64));
        paginate(&items, next, self.options.state_page_size)
    }

    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let items: Vec<Item> = t.values().cloned().collect();
        paginate(&items, next, self.options.state_page_size)
    }

    // Atomic under the world lock, like a DynamoDB condition expression.
    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let key = item_key(&item)?;
        let t = Self::table(&mut w, table)?;
        if !condition.holds(t.get(&key)) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        Ok(t.insert(key, item))
    }

    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        let current = t.get(&key);
        if !condition.holds(current) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        let next = update.apply(hash, range, current);
        Ok(t.insert(key, next))
    }

    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        let mut w = self.lock();
        let t = Self::table(&mut w, table)?;
        let key = (hash.to_owned(), range.to_owned());
        if !condition.holds(t.get(&key)) {
            return err(
                codes::CONDITIONAL_CHECK_FAILED,
                "The conditional request failed",
            );
        }
        Ok(t.remove(&key))
    }
}
