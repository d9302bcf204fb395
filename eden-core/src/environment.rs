//! `Environment::create`, `delete`, `list`, the dry-run plan and the expiry sweep (SPEC 3.3-3.6).
//!
//! Create runs in five rounds of concurrent calls (the critical path):
//!
//! 1. reads: image, reference service, ALB, listeners, zone name, existing target group and
//!    service, endpoints document, state table (created when missing);
//! 2. reference task definition, reference target group and its attributes, listener rules,
//!    the DNS record; writes of the endpoints entry and the state item;
//! 3. register the task definition, create the target group, upsert the DNS record;
//! 4. create the listener rule, copy the target group attributes;
//! 5. create (or update) the ECS service.
//!
//! Every write this run makes is journaled; when any step fails the journal is undone in
//! reverse order, so only what existed before the run is left.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::{
    AliasTarget, AttrValue, Cloud, CloudError, CreateRule, CreateService, CreateTargetGroup,
    DnsRecord, Item, Listener, LoadBalancer, PutMode, RegisterTaskDefinition, Rule, Service,
    ServiceLoadBalancer, StoredDocument, Tag, TargetGroup, TaskDefinition, TaskDefinitionStatus,
    WriteCondition, codes, schema,
};
use crate::endpoints::{Edit, EndpointsDocument};
use crate::error::{Error, Result, Step};
use crate::image::ImageRef;
use crate::names::{EnvironmentName, EnvironmentNames};
use crate::profile::Profile;

/// Attempts at a free rule priority before giving up.
const PRIORITY_ATTEMPTS: u32 = 60;
/// Attempts at the endpoints compare-and-swap before giving up.
const CAS_ATTEMPTS: u32 = 60;
/// Highest listener rule priority.
const MAX_PRIORITY: i32 = 50_000;

/// Tag keys on every resource eden creates.
pub mod tags {
    /// The profile name.
    pub const PROFILE: &str = "eden:profile";
    /// The environment name.
    pub const ENVIRONMENT: &str = "eden:environment";
    /// Creation time, RFC 3339.
    pub const CREATED_AT: &str = "eden:created-at";
}

/// What kind of resource a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// The container image.
    Image,
    /// The task definition revision(s).
    TaskDefinition,
    /// The target group.
    TargetGroup,
    /// The listener rule.
    ListenerRule,
    /// The ECS service.
    Service,
    /// The Route 53 record.
    DnsRecord,
    /// The endpoints document entry.
    EndpointsEntry,
    /// The state table item.
    StateItem,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::TaskDefinition => "task definition",
            Self::TargetGroup => "target group",
            Self::ListenerRule => "listener rule",
            Self::Service => "service",
            Self::DnsRecord => "DNS record",
            Self::EndpointsEntry => "endpoints entry",
            Self::StateItem => "state item",
        })
    }
}

/// What was (or, in a dry run, would be) done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created by this run.
    Created,
    /// Existed and was changed.
    Updated,
    /// Existed as wanted and was left alone.
    Reused,
    /// Deleted by this run.
    Deleted,
    /// Already gone.
    AlreadyAbsent,
    /// Checked and found (the image).
    Checked,
    /// Not checked (an image outside private ECR).
    Unchecked,
}

/// One resource and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceChange {
    /// Kind.
    pub kind: ResourceKind,
    /// ARN or name.
    pub id: String,
    /// What was done.
    pub action: Action,
    /// Details (priority chosen, digest found...).
    pub note: Option<String>,
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {:?}", self.kind, self.id, self.action)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// The result of create, delete or a dry run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Profile name.
    pub profile: String,
    /// Derived names.
    pub names: EnvironmentNames,
    /// The host, when the zone could be read.
    pub host: Option<String>,
    /// True for a plan: nothing was changed, actions say what would be done.
    pub dry_run: bool,
    /// Every resource, with what was done.
    pub resources: Vec<ResourceChange>,
}

impl Outcome {
    /// The change of one kind of resource, if reported.
    pub fn resource(&self, kind: ResourceKind) -> Option<&ResourceChange> {
        self.resources.iter().find(|r| r.kind == kind)
    }
}

/// Options of [`Environment::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Only plan: read, and report what would be created, updated or left alone.
    pub dry_run: bool,
    /// Wait until the service is stable, at most this long (the environment is kept when the
    /// wait times out: it is complete, only not healthy yet).
    pub wait_stable: Option<Duration>,
    /// How long to wait for a DRAINING service of the same name to become INACTIVE
    /// (default 10 minutes).
    pub draining_timeout: Option<Duration>,
    /// "Now" in epoch seconds (for tests); the clock by default.
    pub now: Option<i64>,
}

/// Options of [`Environment::delete`].
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Only plan.
    pub dry_run: bool,
}

/// An environment as recorded in the state table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvironmentRecord {
    /// Profile.
    pub profile: String,
    /// Environment name.
    pub name: String,
    /// Its host.
    pub endpoint: String,
    /// Last create/deploy, epoch seconds.
    pub last_updated: i64,
}

impl EnvironmentRecord {
    /// The state table item.
    pub fn to_item(&self) -> Item {
        Item::from([
            (schema::HASH_KEY.into(), AttrValue::S(self.profile.clone())),
            (schema::RANGE_KEY.into(), AttrValue::S(self.name.clone())),
            ("endpoint".into(), AttrValue::S(self.endpoint.clone())),
            (
                schema::LAST_UPDATED.into(),
                AttrValue::N(self.last_updated.to_string()),
            ),
            (schema::KIND.into(), AttrValue::S("environment".into())),
        ])
    }

    /// Reads an item; `None` when it is not an environment.
    pub fn from_item(item: &Item) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(AttrValue::as_s).map(str::to_owned);
        if s(schema::KIND).as_deref() != Some("environment") {
            return None;
        }
        Some(Self {
            profile: s(schema::HASH_KEY)?,
            name: s(schema::RANGE_KEY)?,
            endpoint: s("endpoint").unwrap_or_default(),
            last_updated: item
                .get(schema::LAST_UPDATED)
                .and_then(AttrValue::as_i64)
                .unwrap_or(0),
        })
    }
}

/// The result of [`Environment::sweep`].
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Environments deleted.
    pub deleted: Vec<Outcome>,
    /// Environments whose delete failed, with the error.
    pub failed: Vec<(String, Error)>,
}

/// A write this run made, and how to undo it.
#[derive(Debug, Clone)]
enum Undo {
    TaskDefinition(String),
    TargetGroup(String),
    Rule(String),
    ServiceCreated {
        cluster: String,
        name: String,
    },
    ServiceUpdated {
        cluster: String,
        name: String,
        previous: String,
    },
    DnsCreated(DnsRecord),
    DnsReplaced(DnsRecord),
    EndpointKey {
        previous: Option<String>,
    },
    StateCreated,
    StateReplaced(Item),
}

/// Creates, deploys, deletes and lists environments on a [`Cloud`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use eden_core::environment::{CreateOptions, DeleteOptions, Environment, ResourceKind, Action};
/// use eden_core::memory::{MemoryCloud, MemoryOptions};
/// use eden_core::Profile;
///
/// let profile = Profile::example();
/// let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
/// let eden = Environment::new(memory.cloud());
/// let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
///
/// let created = eden.create(&profile, "feature-1", image, &CreateOptions::default()).await?;
/// assert_eq!(created.host.as_deref(), Some("api-feature-1.dev.example.com"));
/// assert_eq!(created.resource(ResourceKind::Service).unwrap().action, Action::Created);
/// assert_eq!(eden.list(Some("default")).await?.len(), 1);
///
/// eden.delete(&profile, "feature-1", &DeleteOptions::default()).await?;
/// assert!(eden.list(None).await?.is_empty());
/// # Ok::<(), eden_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Environment {
    cloud: Cloud,
    table: String,
    poll_interval: Duration,
}

/// Shared state of one create or delete run.
struct Run<'a> {
    profile: &'a Profile,
    names: EnvironmentNames,
    journal: Mutex<Vec<Undo>>,
    changes: Mutex<Vec<ResourceChange>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Run<'_> {
    fn record(
        &self,
        kind: ResourceKind,
        id: impl Into<String>,
        action: Action,
        note: Option<String>,
    ) {
        lock(&self.changes).push(ResourceChange {
            kind,
            id: id.into(),
            action,
            note,
        });
    }

    fn journal(&self, undo: Undo) {
        lock(&self.journal).push(undo);
    }

    fn outcome(&self, host: Option<String>, dry_run: bool) -> Outcome {
        let mut resources = lock(&self.changes).clone();
        // Declaration order of ResourceKind: image first, state item last.
        resources.sort_by_key(|r| r.kind as u8);
        Outcome {
            profile: self.profile.name.clone(),
            names: self.names.clone(),
            host,
            dry_run,
            resources,
        }
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

fn eden_tags(profile: &Profile, env: &EnvironmentName, now: i64) -> Vec<Tag> {
    let created = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    vec![
        Tag::new(tags::PROFILE, &profile.name),
        Tag::new(tags::ENVIRONMENT, env.as_str()),
        Tag::new(tags::CREATED_AT, created),
    ]
}

/// Lowercase, without the trailing dot or ELB's `dualstack.` prefix, for comparing alias targets.
fn normalize_dns(name: &str) -> String {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n.strip_prefix("dualstack.").map(str::to_owned).unwrap_or(n)
}

fn is_precondition(e: &CloudError) -> bool {
    e.is(&[codes::PRECONDITION_FAILED, "ConditionalRequestConflict"]) || e.message.contains("412")
}

async fn jitter(attempt: u32) {
    let max = 2 * u64::from(attempt.min(10)) + 1;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=max))).await;
}

impl Environment {
    /// Environments on `cloud`, recorded in the state table `eden`.
    pub fn new(cloud: Cloud) -> Self {
        Self {
            cloud,
            table: schema::DEFAULT_TABLE.into(),
            poll_interval: Duration::from_secs(5),
        }
    }

    /// Uses another state table.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Polls services this often while waiting (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The state table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates environment `name` from the profile's reference service running `image_uri`,
    /// or deploys `image_uri` to it when it exists (SPEC 3.3). Converges: running it twice
    /// gives the same environment. On failure, what this run created is removed again.
    pub async fn create(
        &self,
        profile: &Profile,
        name: &str,
        image_uri: &str,
        options: &CreateOptions,
    ) -> Result<Outcome> {
        let env = EnvironmentName::new(name)?;
        let names = EnvironmentNames::derive(profile, &env)?;
        let image = ImageRef::parse(image_uri)?;
        let now = options.now.unwrap_or_else(now_epoch);
        let run = Run {
            profile,
            names,
            journal: Mutex::new(Vec::new()),
            changes: Mutex::new(Vec::new()),
        };
        let result = self
            .create_inner(&run, &image, image_uri, options, now)
            .await;
        match result {
            Ok(host) => {
                let outcome = run.outcome(Some(host.clone()), options.dry_run);
                if let (Some(timeout), false) = (options.wait_stable, options.dry_run) {
                    self.wait_stable(profile, &run.names.resource, timeout)
                        .await?;
                }
                tracing::info!(profile = %profile.name, env = %env, dry_run = options.dry_run, "environment created");
                Ok(outcome)
            }
            Err(cause) => {
                let journal = std::mem::take(&mut *lock(&run.journal));
                tracing::warn!(error = %cause, undo = journal.len(), "create failed, rolling back");
                let leftover = self.rollback(&run, journal).await;
                if leftover.is_empty() {
                    Err(cause)
                } else {
                    Err(Error::RollbackIncomplete {
                        cause: Box::new(cause),
                        leftover,
                    })
                }
            }
        }
    }

    async fn create_inner(
        &self,
        run: &Run<'_>,
        image: &ImageRef,
        image_uri: &str,
        options: &CreateOptions,
        now: i64,
    ) -> Result<String> {
        let p = run.profile;
        let c = &self.cloud;
        let names = &run.names;
        let reference = &p.reference_service_arn;
        let alb_arn = &p.master_alb_arn.arn;
        let doc_id = format!("s3://{}/{}", p.endpoint_s3_bucket_name, p.endpoint_s3_key);

        // Round 1: everything that depends only on the profile.
        let (_, ref_service, alb, https, zone, existing_tg, existing_service, document, _table) = tokio::try_join!(
            self.check_image(run, image, image_uri),
            async {
                let svc = c
                    .ecs
                    .describe_service(&reference.cluster, &reference.service)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, &reference.arn, e))?;
                match svc {
                    Some(s) if s.status == "ACTIVE" => Ok(s),
                    _ => Err(Error::Conflict {
                        step: Step::ReadReference,
                        resource: reference.arn.clone(),
                        message: "the reference service does not exist or is not ACTIVE".into(),
                    }),
                }
            },
            async {
                c.elb
                    .describe_load_balancer(alb_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))
            },
            self.https_listener(alb_arn),
            self.zone_name(p),
            async {
                c.elb
                    .describe_target_group_by_name(&names.target_group)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            async {
                c.documents
                    .get(&p.endpoint_s3_bucket_name, &p.endpoint_s3_key)
                    .await
                    .map_err(|e| Error::cloud(Step::Endpoints, &doc_id, e))
            },
            async {
                if options.dry_run {
                    return Ok(false);
                }
                c.state
                    .ensure_table(&self.table)
                    .await
                    .map(|_| true)
                    .map_err(|e| Error::cloud(Step::State, &self.table, e))
            },
        )?;
        let host = names.host(&zone)?;
        let target = ref_service
            .spec
            .load_balancers
            .iter()
            .find(|lb| lb.target_group_arn.is_some() && lb.container_name.is_some())
            .cloned()
            .ok_or_else(|| Error::Conflict {
                step: Step::ReadReference,
                resource: reference.arn.clone(),
                message: "the reference service has no load balancer (target group and container)"
                    .into(),
            })?;
        if options.dry_run {
            self.plan_create(
                run,
                &ref_service,
                &https,
                &host,
                existing_tg,
                existing_service,
                document,
                &alb,
            )
            .await?;
            return Ok(host);
        }

        let core = self.create_core(
            run,
            &ref_service,
            &target,
            &https,
            &host,
            existing_tg,
            existing_service,
            image_uri,
            options,
            now,
        );
        let dns = self.upsert_dns(run, &host, &alb);
        let endpoints = self.update_endpoints(run, &host, document);
        let state = self.put_state(run, &host, now);
        let (core, dns, endpoints, state) = tokio::join!(core, dns, endpoints, state);
        let mut first = None;
        for r in [core, dns, endpoints, state] {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::warn!(error = %e, "another step failed too");
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(host),
        }
    }

    async fn check_image(&self, run: &Run<'_>, image: &ImageRef, uri: &str) -> Result<()> {
        match image {
            ImageRef::Other(_) => {
                run.record(
                    ResourceKind::Image,
                    uri,
                    Action::Unchecked,
                    Some("not a private ECR image: accepted without a check".into()),
                );
                Ok(())
            }
            ImageRef::Ecr(ecr) => match self.cloud.images.describe_image(ecr).await {
                Ok(found) => {
                    run.record(
                        ResourceKind::Image,
                        uri,
                        Action::Checked,
                        Some(found.digest),
                    );
                    Ok(())
                }
                Err(e) if e.is(&[codes::IMAGE_NOT_FOUND, codes::REPOSITORY_NOT_FOUND]) => {
                    Err(Error::ImageNotFound {
                        image: uri.to_owned(),
                        code: e.code,
                        message: e.message,
                    })
                }
                Err(e) => Err(Error::cloud(Step::CheckImage, uri, e)),
            },
        }
    }

    async fn https_listener(&self, alb_arn: &str) -> Result<Listener> {
        let listeners = self
            .cloud
            .elb
            .describe_listeners(alb_arn)
            .await
            .map_err(|e| Error::cloud(Step::ReadLoadBalancer, alb_arn, e))?;
        listeners
            .into_iter()
            .find(|l| l.protocol == "HTTPS" && l.port == 443)
            .ok_or_else(|| Error::Conflict {
                step: Step::ReadLoadBalancer,
                resource: alb_arn.to_owned(),
                message: "the load balancer has no HTTPS:443 listener".into(),
            })
    }

    async fn zone_name(&self, p: &Profile) -> Result<String> {
        self.cloud
            .dns
            .hosted_zone_name(&p.dynamic_zone_id)
            .await
            .map_err(|e| Error::cloud(Step::ReadZone, &p.dynamic_zone_id, e))
    }

    async fn all_rules(&self, listener: &str) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .cloud
                .elb
                .describe_rules(listener, marker)
                .await
                .map_err(|e| Error::cloud(Step::ListenerRule, listener, e))?;
            rules.extend(page.items);
            match page.next {
                Some(next) => marker = Some(next),
                None => return Ok(rules),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_core(
        &self,
        run: &Run<'_>,
        reference: &Service,
        target: &ServiceLoadBalancer,
        https: &Listener,
        host: &str,
        existing_tg: Option<TargetGroup>,
        existing_service: Option<Service>,
        image_uri: &str,
        options: &CreateOptions,
        now: i64,
    ) -> Result<()> {
        let c = &self.cloud;
        let p = run.profile;
        let names = &run.names;
        let ref_tg_arn = target.target_group_arn.clone().unwrap_or_default();
        let container = target.container_name.clone().unwrap_or_default();
        let tags = eden_tags(p, &names.env, now);

        // Round 2: what the writes copy from.
        let (ref_td, ref_tg, rules) = tokio::try_join!(
            async {
                c.ecs
                    .describe_task_definition(&reference.spec.task_definition)
                    .await
                    .map_err(|e| {
                        Error::cloud(Step::ReadReference, &reference.spec.task_definition, e)
                    })
            },
            async {
                if existing_tg.is_some() {
                    return Ok(None);
                }
                let (tg, attributes) = tokio::try_join!(
                    c.elb.describe_target_group(&ref_tg_arn),
                    c.elb.target_group_attributes(&ref_tg_arn),
                )
                .map_err(|e| Error::cloud(Step::ReadReference, &ref_tg_arn, e))?;
                let tg = tg.ok_or_else(|| Error::Conflict {
                    step: Step::ReadReference,
                    resource: ref_tg_arn.clone(),
                    message: "the reference target group does not exist".into(),
                })?;
                Ok(Some((tg, attributes)))
            },
            self.all_rules(&https.arn),
        )?;
        if !ref_td.containers.iter().any(|ct| ct.name == container) {
            return Err(Error::Conflict {
                step: Step::ReadReference,
                resource: ref_td.arn.clone(),
                message: format!(
                    "no container named {container:?} (the reference load balancer's container)"
                ),
            });
        }

        // Round 3: the task definition and the target group; both complete before any error
        // is returned, so neither is left out of the journal.
        let (td, tg) = tokio::join!(
            self.register_task_definition(run, &ref_td, &container, image_uri, &tags),
            self.ensure_target_group(run, existing_tg, ref_tg.as_ref().map(|(t, _)| t), &tags),
        );
        let td = td?;
        let (tg, tg_created) = tg?;

        // Round 4: the rule (ECS refuses a target group without a load balancer) and the
        // copied attributes.
        let attributes = ref_tg.map(|(_, a)| a).unwrap_or_default();
        let (rule, attrs) = tokio::join!(
            self.ensure_rule(run, https, host, &tg, &rules, &tags),
            async {
                if !tg_created || attributes.is_empty() {
                    return Ok(());
                }
                c.elb
                    .modify_target_group_attributes(&tg.arn, &attributes)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &tg.arn, e))
            }
        );
        rule?;
        attrs?;

        // Round 5: the service.
        self.ensure_service(
            run,
            reference,
            target,
            &td,
            &tg,
            existing_service,
            options,
            &tags,
        )
        .await
    }

    async fn register_task_definition(
        &self,
        run: &Run<'_>,
        reference: &TaskDefinition,
        container: &str,
        image_uri: &str,
        tags: &[Tag],
    ) -> Result<TaskDefinition> {
        let family = &run.names.resource;
        let td = self
            .cloud
            .ecs
            .register_task_definition(RegisterTaskDefinition {
                base: reference.arn.clone(),
                family: family.clone(),
                images: vec![crate::api::ContainerImage {
                    name: container.to_owned(),
                    image: image_uri.to_owned(),
                }],
                tags: tags.to_vec(),
            })
            .await
            .map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
        run.journal(Undo::TaskDefinition(td.arn.clone()));
        run.record(
            ResourceKind::TaskDefinition,
            &td.arn,
            Action::Created,
            Some(format!("revision {} from {}", td.revision, reference.arn)),
        );
        Ok(td)
    }

    /// Returns the group and whether this run created it.
    async fn ensure_target_group(
        &self,
        run: &Run<'_>,
        existing: Option<TargetGroup>,
        reference: Option<&TargetGroup>,
        tags: &[Tag],
    ) -> Result<(TargetGroup, bool)> {
        let name = &run.names.target_group;
        if let Some(tg) = existing {
            run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
            return Ok((tg, false));
        }
        let Some(reference) = reference else {
            return Err(Error::Conflict {
                step: Step::TargetGroup,
                resource: name.clone(),
                message: "no reference target group to copy".into(),
            });
        };
        let created = self
            .cloud
            .elb
            .create_target_group(CreateTargetGroup {
                name: name.clone(),
                spec: reference.spec.clone(),
                tags: tags.to_vec(),
            })
            .await;
        match created {
            Ok(tg) => {
                run.journal(Undo::TargetGroup(tg.arn.clone()));
                run.record(ResourceKind::TargetGroup, &tg.arn, Action::Created, None);
                Ok((tg, true))
            }
            // Another run created it meanwhile (moto answers this even for equal settings).
            Err(e) if e.is(&[codes::DUPLICATE_TARGET_GROUP_NAME]) => {
                let tg = self
                    .cloud
                    .elb
                    .describe_target_group_by_name(name)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, name, e))?
                    .ok_or_else(|| Error::cloud(Step::TargetGroup, name, e))?;
                run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
                Ok((tg, false))
            }
            Err(e) if e.is(&[codes::TOO_MANY_TARGET_GROUPS]) => Err(Error::AlbFull {
                alb: run.profile.master_alb_arn.arn.clone(),
                code: e.code,
                message: e.message,
            }),
            Err(e) => Err(Error::cloud(Step::TargetGroup, name, e)),
        }
    }

    async fn ensure_rule(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        tg: &TargetGroup,
        rules: &[Rule],
        tags: &[Tag],
    ) -> Result<()> {
        if let Some(rule) = rules
            .iter()
            .find(|r| r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
        {
            if rule.target_group_arns.contains(&tg.arn) {
                run.record(
                    ResourceKind::ListenerRule,
                    &rule.arn,
                    Action::Reused,
                    rule.priority.map(|p| format!("priority {p}")),
                );
                return Ok(());
            }
            return Err(Error::Conflict {
                step: Step::ListenerRule,
                resource: rule.arn.clone(),
                message: format!("host {host} is already routed to another target group"),
            });
        }
        let mut used: BTreeSet<i32> = rules.iter().filter_map(|r| r.priority).collect();
        let alb = &run.profile.master_alb_arn.arn;
        for attempt in 0..PRIORITY_ATTEMPTS {
            // The lowest free priority first (reusing freed ones); after a conflict, a random
            // one of the lowest few, so concurrent creates stop colliding.
            let free: Vec<i32> = (1..=MAX_PRIORITY)
                .filter(|p| !used.contains(p))
                .take(8)
                .collect();
            let Some(&priority) = (if attempt == 0 {
                free.first()
            } else {
                free.get(fastrand::usize(0..free.len().max(1)))
            }) else {
                return Err(Error::AlbFull {
                    alb: alb.clone(),
                    code: codes::TOO_MANY_RULES.into(),
                    message: "no free rule priority".into(),
                });
            };
            let created = self
                .cloud
                .elb
                .create_rule(CreateRule {
                    listener_arn: https.arn.clone(),
                    priority,
                    host: host.to_owned(),
                    target_group_arn: tg.arn.clone(),
                    tags: tags.to_vec(),
                })
                .await;
            match created {
                Ok(rule) => {
                    run.journal(Undo::Rule(rule.arn.clone()));
                    run.record(
                        ResourceKind::ListenerRule,
                        &rule.arn,
                        Action::Created,
                        Some(format!("priority {priority}")),
                    );
                    return Ok(());
                }
                Err(e) if e.is(&[codes::PRIORITY_IN_USE]) => {
                    used.insert(priority);
                    if attempt % 4 == 3 {
                        // Refresh: others may also have freed priorities.
                        used = self
                            .all_rules(&https.arn)
                            .await?
                            .iter()
                            .filter_map(|r| r.priority)
                            .collect();
                    }
                    jitter(attempt).await;
                }
                Err(e) if e.is(&[codes::TOO_MANY_RULES, codes::TOO_MANY_TARGET_GROUPS]) => {
                    return Err(Error::AlbFull {
                        alb: alb.clone(),
                        code: e.code,
                        message: e.message,
                    });
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::ListenerRule,
            resource: host.to_owned(),
            attempts: PRIORITY_ATTEMPTS,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn ensure_service(
        &self,
        run: &Run<'_>,
        reference: &Service,
        target: &ServiceLoadBalancer,
        td: &TaskDefinition,
        tg: &TargetGroup,
        existing: Option<Service>,
        options: &CreateOptions,
        tags: &[Tag],
    ) -> Result<()> {
        let p = run.profile;
        let name = &run.names.resource;
        let ecs = &self.cloud.ecs;
        let mut status = existing.as_ref().map(|s| s.status.clone());
        if status.as_deref() == Some("DRAINING") {
            let timeout = options.draining_timeout.unwrap_or(Duration::from_secs(600));
            status = self.wait_inactive(&p.target_cluster, name, timeout).await?;
        }
        if let (Some("ACTIVE"), Some(previous)) = (status.as_deref(), existing.as_ref()) {
            let svc = ecs
                .update_service(&p.target_cluster, name, &td.arn, true)
                .await
                .map_err(|e| Error::cloud(Step::Service, name, e))?;
            run.journal(Undo::ServiceUpdated {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                previous: previous.spec.task_definition.clone(),
            });
            run.record(
                ResourceKind::Service,
                &svc.arn,
                Action::Updated,
                Some(format!("deploying {}", td.arn)),
            );
            return Ok(());
        }
        let mut spec = reference.spec.clone();
        spec.task_definition = td.arn.clone();
        spec.load_balancers = vec![ServiceLoadBalancer {
            target_group_arn: Some(tg.arn.clone()),
            container_name: target.container_name.clone(),
            container_port: target.container_port,
        }];
        if !spec.capacity_provider_strategy.is_empty() {
            spec.launch_type = None;
        }
        // CreateService refuses NONE; leaving it out means the same.
        if spec.propagate_tags.as_deref() == Some("NONE") {
            spec.propagate_tags = None;
        }
        let svc = ecs
            .create_service(CreateService {
                cluster: p.target_cluster.clone(),
                name: name.clone(),
                spec,
                tags: tags.to_vec(),
            })
            .await
            .map_err(|e| Error::cloud(Step::Service, name, e))?;
        run.journal(Undo::ServiceCreated {
            cluster: p.target_cluster.clone(),
            name: name.clone(),
        });
        run.record(ResourceKind::Service, &svc.arn, Action::Created, None);
        Ok(())
    }

    /// Polls until the service is INACTIVE or gone; returns the last status.
    async fn wait_inactive(
        &self,
        cluster: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<String>> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            match svc {
                Some(s) if s.status == "DRAINING" => {}
                other => return Ok(other.map(|s| s.status)),
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn wait_stable(&self, p: &Profile, name: &str, timeout: Duration) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            let svc = self
                .cloud
                .ecs
                .describe_service(&p.target_cluster, name)
                .await
                .map_err(|e| Error::cloud(Step::Wait, name, e))?;
            if svc.as_ref().is_some_and(Service::is_stable) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    step: Step::Wait,
                    resource: name.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    fn wanted_record(host: &str, alb: &LoadBalancer) -> DnsRecord {
        DnsRecord {
            name: host.to_owned(),
            record_type: "A".into(),
            alias: Some(AliasTarget {
                dns_name: alb.dns_name.clone(),
                hosted_zone_id: alb.canonical_hosted_zone_id.clone(),
                evaluate_target_health: false,
            }),
            ttl: None,
            values: vec![],
        }
    }

    fn record_matches(have: &DnsRecord, want: &DnsRecord) -> bool {
        match (&have.alias, &want.alias) {
            (Some(h), Some(w)) => {
                normalize_dns(&h.dns_name) == normalize_dns(&w.dns_name)
                    && h.hosted_zone_id == w.hosted_zone_id
            }
            _ => false,
        }
    }

    async fn upsert_dns(&self, run: &Run<'_>, host: &str, alb: &LoadBalancer) -> Result<()> {
        let zone = &run.profile.dynamic_zone_id;
        let dns = &self.cloud.dns;
        let existing = dns
            .find_record(zone, host, "A")
            .await
            .map_err(|e| Error::cloud(Step::Dns, host, e))?;
        let wanted = Self::wanted_record(host, alb);
        if let Some(have) = &existing
            && Self::record_matches(have, &wanted)
        {
            run.record(
                ResourceKind::DnsRecord,
                format!("{host} A"),
                Action::Reused,
                None,
            );
            return Ok(());
        }
        dns.upsert_record(zone, &wanted)
            .await
            .map_err(|e| Error::cloud(Step::Dns, host, e))?;
        let (undo, action) = match existing {
            Some(old) => (Undo::DnsReplaced(old), Action::Updated),
            None => (Undo::DnsCreated(wanted), Action::Created),
        };
        run.journal(undo);
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            action,
            Some(format!("alias to {}", alb.dns_name)),
        );
        Ok(())
    }

    /// Read-modify-write of the endpoints document with a conditional put and retry.
    /// `edit` returns the edit made and the previous value of the key.
    async fn edit_document(
        &self,
        p: &Profile,
        mut current: Option<StoredDocument>,
        edit: &(dyn Fn(&mut EndpointsDocument) -> (Edit, Option<String>) + Sync),
    ) -> Result<(Edit, Option<String>)> {
        let (bucket, key) = (&p.endpoint_s3_bucket_name, &p.endpoint_s3_key);
        let id = format!("s3://{bucket}/{key}");
        let docs = &self.cloud.documents;
        for attempt in 0..CAS_ATTEMPTS {
            let mut doc = EndpointsDocument::parse(current.as_ref().map(|d| d.bytes.as_slice()))
                .map_err(|source| Error::Document {
                    resource: id.clone(),
                    source,
                })?;
            let (done, previous) = edit(&mut doc);
            if !done.changed() {
                return Ok((done, previous));
            }
            let mode = match &current {
                Some(d) => PutMode::Update(d.etag.clone()),
                None => PutMode::Create,
            };
            match docs.put(bucket, key, doc.to_bytes(), mode).await {
                Ok(_) => return Ok((done, previous)),
                Err(e) if is_precondition(&e) => {
                    jitter(attempt).await;
                    current = docs
                        .get(bucket, key)
                        .await
                        .map_err(|e| Error::cloud(Step::Endpoints, &id, e))?;
                }
                Err(e) => return Err(Error::cloud(Step::Endpoints, &id, e)),
            }
        }
        Err(Error::Contention {
            step: Step::Endpoints,
            resource: id,
            attempts: CAS_ATTEMPTS,
        })
    }

    async fn update_endpoints(
        &self,
        run: &Run<'_>,
        host: &str,
        current: Option<StoredDocument>,
    ) -> Result<()> {
        let p = run.profile;
        let entry = run.names.endpoint_entry.clone();
        let edit = |doc: &mut EndpointsDocument| {
            let previous = doc
                .get(&p.endpoint_env_type, &entry, &p.endpoint_update_key)
                .map(str::to_owned);
            (
                doc.upsert(&p.endpoint_env_type, &entry, &p.endpoint_update_key, host),
                previous,
            )
        };
        let (done, previous) = self.edit_document(p, current, &edit).await?;
        let action = match done {
            Edit::AddedEntry | Edit::AddedKey => Action::Created,
            Edit::Updated => Action::Updated,
            _ => Action::Reused,
        };
        if done.changed() {
            run.journal(Undo::EndpointKey { previous });
        }
        run.record(
            ResourceKind::EndpointsEntry,
            format!("{entry}.{}", p.endpoint_update_key),
            action,
            Some(format!(
                "s3://{}/{}",
                p.endpoint_s3_bucket_name, p.endpoint_s3_key
            )),
        );
        Ok(())
    }

    async fn put_state(&self, run: &Run<'_>, host: &str, now: i64) -> Result<()> {
        let p = run.profile;
        let record = EnvironmentRecord {
            profile: p.name.clone(),
            name: run.names.env.to_string(),
            endpoint: host.to_owned(),
            last_updated: now,
        };
        let id = format!("{}/{}/{}", self.table, p.name, run.names.env);
        let old = self
            .cloud
            .state
            .put_item(&self.table, record.to_item(), WriteCondition::None)
            .await
            .map_err(|e| Error::cloud(Step::State, &id, e))?;
        let action = match old {
            Some(old) => {
                run.journal(Undo::StateReplaced(old));
                Action::Updated
            }
            None => {
                run.journal(Undo::StateCreated);
                Action::Created
            }
        };
        run.record(ResourceKind::StateItem, id, action, None);
        Ok(())
    }

    /// Undoes the journal in reverse; returns what could not be undone.
    async fn rollback(&self, run: &Run<'_>, journal: Vec<Undo>) -> Vec<String> {
        let c = &self.cloud;
        let p = run.profile;
        let mut leftover = Vec::new();
        for undo in journal.into_iter().rev() {
            let (what, result): (String, std::result::Result<(), CloudError>) = match &undo {
                Undo::ServiceCreated { cluster, name } => (
                    format!("service {name}"),
                    c.ecs.delete_service(cluster, name, true).await.map(|_| ()),
                ),
                Undo::ServiceUpdated {
                    cluster,
                    name,
                    previous,
                } => (
                    format!("service {name} (back to {previous})"),
                    c.ecs
                        .update_service(cluster, name, previous, true)
                        .await
                        .map(|_| ()),
                ),
                Undo::Rule(arn) => (format!("rule {arn}"), c.elb.delete_rule(arn).await),
                Undo::TargetGroup(arn) => (
                    format!("target group {arn}"),
                    c.elb.delete_target_group(arn).await,
                ),
                Undo::TaskDefinition(arn) => {
                    let r = match c.ecs.deregister_task_definition(arn).await {
                        Ok(()) => c
                            .ecs
                            .delete_task_definitions(std::slice::from_ref(arn))
                            .await
                            .and_then(|failures| match failures.first() {
                                Some((_, why)) => Err(CloudError::new("DeleteFailed", why.clone())),
                                None => Ok(()),
                            }),
                        Err(e) => Err(e),
                    };
                    (format!("task definition {arn}"), r)
                }
                Undo::DnsCreated(record) => (
                    format!("DNS record {}", record.name),
                    c.dns.delete_record(&p.dynamic_zone_id, record).await,
                ),
                Undo::DnsReplaced(old) => (
                    format!("DNS record {} (restore)", old.name),
                    c.dns.upsert_record(&p.dynamic_zone_id, old).await,
                ),
                Undo::EndpointKey { previous } => {
                    let entry = run.names.endpoint_entry.clone();
                    let edit = |doc: &mut EndpointsDocument| {
                        let done = match previous {
                            Some(v) => {
                                doc.upsert(&p.endpoint_env_type, &entry, &p.endpoint_update_key, v)
                            }
                            None => {
                                doc.remove(&p.endpoint_env_type, &entry, &p.endpoint_update_key)
                            }
                        };
                        (done, None)
                    };
                    let r = match c
                        .documents
                        .get(&p.endpoint_s3_bucket_name, &p.endpoint_s3_key)
                        .await
                    {
                        Ok(current) => self
                            .edit_document(p, current, &edit)
                            .await
                            .map(|_| ())
                            .map_err(|e| CloudError::new("Endpoints", e.to_string())),
                        Err(e) => Err(e),
                    };
                    (format!("endpoints entry {}", run.names.endpoint_entry), r)
                }
                Undo::StateCreated => (
                    format!("state item {}/{}", p.name, run.names.env),
                    c.state
                        .delete_item(
                            &self.table,
                            &p.name,
                            run.names.env.as_str(),
                            WriteCondition::None,
                        )
                        .await
                        .map(|_| ()),
                ),
                Undo::StateReplaced(old) => (
                    format!("state item {}/{} (restore)", p.name, run.names.env),
                    c.state
                        .put_item(&self.table, old.clone(), WriteCondition::None)
                        .await
                        .map(|_| ()),
                ),
            };
            match result {
                Ok(()) => tracing::info!(%what, "rolled back"),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::error!(%what, error = %e, "rollback failed");
                    leftover.push(format!("{what}: {e}"));
                }
            }
        }
        leftover
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_create(
        &self,
        run: &Run<'_>,
        reference: &Service,
        https: &Listener,
        host: &str,
        existing_tg: Option<TargetGroup>,
        existing_service: Option<Service>,
        document: Option<StoredDocument>,
        alb: &LoadBalancer,
    ) -> Result<()> {
        let p = run.profile;
        let names = &run.names;
        let c = &self.cloud;
        let (rules, record, state) = tokio::try_join!(
            self.all_rules(&https.arn),
            async {
                c.dns
                    .find_record(&p.dynamic_zone_id, host, "A")
                    .await
                    .map_err(|e| Error::cloud(Step::Dns, host, e))
            },
            async {
                match c
                    .state
                    .get_item(&self.table, &p.name, names.env.as_str())
                    .await
                {
                    Ok(item) => Ok(item),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(Error::cloud(Step::State, &self.table, e)),
                }
            },
        )?;
        run.record(
            ResourceKind::TaskDefinition,
            &names.resource,
            Action::Created,
            Some(format!(
                "new revision from {}",
                reference.spec.task_definition
            )),
        );
        match &existing_tg {
            Some(tg) => run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None),
            None => run.record(
                ResourceKind::TargetGroup,
                &names.target_group,
                Action::Created,
                None,
            ),
        }
        match rules
            .iter()
            .find(|r| r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
        {
            Some(r) => run.record(ResourceKind::ListenerRule, &r.arn, Action::Reused, None),
            None => {
                let used: BTreeSet<i32> = rules.iter().filter_map(|r| r.priority).collect();
                let free = (1..=MAX_PRIORITY).find(|p| !used.contains(p));
                run.record(
                    ResourceKind::ListenerRule,
                    host,
                    Action::Created,
                    free.map(|p| format!("priority {p}")),
                );
            }
        }
        match existing_service.as_ref().map(|s| s.status.as_str()) {
            Some("ACTIVE") => run.record(
                ResourceKind::Service,
                &names.resource,
                Action::Updated,
                None,
            ),
            Some("DRAINING") => run.record(
                ResourceKind::Service,
                &names.resource,
                Action::Created,
                Some("after the DRAINING service of the same name is INACTIVE".into()),
            ),
            _ => run.record(
                ResourceKind::Service,
                &names.resource,
                Action::Created,
                None,
            ),
        }
        let wanted = Self::wanted_record(host, alb);
        let dns_action = match &record {
            Some(r) if Self::record_matches(r, &wanted) => Action::Reused,
            Some(_) => Action::Updated,
            None => Action::Created,
        };
        run.record(
            ResourceKind::DnsRecord,
            format!("{host} A"),
            dns_action,
            None,
        );
        let mut doc = EndpointsDocument::parse(document.as_ref().map(|d| d.bytes.as_slice()))
            .map_err(|source| Error::Document {
                resource: format!("s3://{}/{}", p.endpoint_s3_bucket_name, p.endpoint_s3_key),
                source,
            })?;
        let edit = doc.upsert(
            &p.endpoint_env_type,
            &names.endpoint_entry,
            &p.endpoint_update_key,
            host,
        );
        run.record(
            ResourceKind::EndpointsEntry,
            format!("{}.{}", names.endpoint_entry, p.endpoint_update_key),
            match edit {
                Edit::AddedEntry | Edit::AddedKey => Action::Created,
                Edit::Updated => Action::Updated,
                _ => Action::Reused,
            },
            None,
        );
        run.record(
            ResourceKind::StateItem,
            format!("{}/{}/{}", self.table, p.name, names.env),
            if state.is_some() {
                Action::Updated
            } else {
                Action::Created
            },
            None,
        );
        Ok(())
    }

    /// Deletes environment `name` (SPEC 3.4): endpoints entry, DNS record, service, listener
    /// rule, target group, every task definition revision of the family, and the state item
    /// last. Each step tolerates "already gone", so a half-created environment is removed too.
    pub async fn delete(
        &self,
        profile: &Profile,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Outcome> {
        let env = EnvironmentName::new(name)?;
        let names = EnvironmentNames::derive(profile, &env)?;
        let run = Run {
            profile,
            names,
            journal: Mutex::new(Vec::new()),
            changes: Mutex::new(Vec::new()),
        };
        let host = self.delete_inner(&run, options.dry_run).await?;
        tracing::info!(profile = %profile.name, env = %env, dry_run = options.dry_run, "environment deleted");
        Ok(run.outcome(Some(host), options.dry_run))
    }

    async fn delete_inner(&self, run: &Run<'_>, dry_run: bool) -> Result<String> {
        let c = &self.cloud;
        let p = run.profile;
        let names = &run.names;
        let doc_id = format!("s3://{}/{}", p.endpoint_s3_bucket_name, p.endpoint_s3_key);
        let (zone, service, https, tg, document, active, inactive) = tokio::try_join!(
            self.zone_name(p),
            async {
                c.ecs
                    .describe_service(&p.target_cluster, &names.resource)
                    .await
                    .map_err(|e| Error::cloud(Step::Service, &names.resource, e))
            },
            self.https_listener(&p.master_alb_arn.arn),
            async {
                c.elb
                    .describe_target_group_by_name(&names.target_group)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, &names.target_group, e))
            },
            async {
                match c
                    .documents
                    .get(&p.endpoint_s3_bucket_name, &p.endpoint_s3_key)
                    .await
                {
                    Ok(d) => Ok(Some(d)),
                    // A missing bucket must not block the delete.
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(Error::cloud(Step::Endpoints, &doc_id, e)),
                }
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Active)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
            async {
                c.ecs
                    .list_task_definitions(&names.resource, TaskDefinitionStatus::Inactive)
                    .await
                    .map_err(|e| Error::cloud(Step::TaskDefinition, &names.resource, e))
            },
        )?;
        let host = names.host(&zone)?;
        let (endpoints, dns, svc, elb, tds) = tokio::join!(
            self.delete_endpoint(run, document.flatten(), dry_run),
            self.delete_dns(run, &host, dry_run),
            self.delete_service(run, service, dry_run),
            self.delete_rule_and_group(run, &https, &host, tg, dry_run),
            self.delete_task_definitions(run, active, inactive, dry_run),
        );
        let mut first = None;
        for r in [endpoints, dns, svc, elb, tds] {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::warn!(error = %e, "another delete step failed too");
                }
            }
        }
        if let Some(e) = first {
            // The state item stays, so the environment is still listed and the delete can be
            // run again.
            return Err(e);
        }
        let id = format!("{}/{}/{}", self.table, p.name, names.env);
        let removed = if dry_run {
            match c
                .state
                .get_item(&self.table, &p.name, names.env.as_str())
                .await
            {
                Ok(item) => item.is_some(),
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(Error::cloud(Step::State, &id, e)),
            }
        } else {
            match c
                .state
                .delete_item(
                    &self.table,
                    &p.name,
                    names.env.as_str(),
                    WriteCondition::None,
                )
                .await
            {
                Ok(old) => old.is_some(),
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(Error::cloud(Step::State, &id, e)),
            }
        };
        run.record(
            ResourceKind::StateItem,
            id,
            if removed {
                Action::Deleted
            } else {
                Action::AlreadyAbsent
            },
            None,
        );
        Ok(host)
    }

    async fn delete_endpoint(
        &self,
        run: &Run<'_>,
        current: Option<StoredDocument>,
        dry_run: bool,
    ) -> Result<()> {
        let p = run.profile;
        let entry = run.names.endpoint_entry.clone();
        let id = format!("{entry}.{}", p.endpoint_update_key);
        let edit = |doc: &mut EndpointsDocument| {
            (
                doc.remove(&p.endpoint_env_type, &entry, &p.endpoint_update_key),
                None,
            )
        };
        let done = if dry_run {
            let mut doc = EndpointsDocument::parse(current.as_ref().map(|d| d.bytes.as_slice()))
                .map_err(|source| Error::Document {
                    resource: format!("s3://{}/{}", p.endpoint_s3_bucket_name, p.endpoint_s3_key),
                    source,
                })?;
            edit(&mut doc).0
        } else if current.is_none() {
            Edit::Absent
        } else {
            self.edit_document(p, current, &edit).await?.0
        };
        let action = if done.changed() {
            Action::Deleted
        } else {
            Action::AlreadyAbsent
        };
        let note =
            (done == Edit::RemovedKey).then(|| "entry kept for other profiles' keys".to_owned());
        run.record(ResourceKind::EndpointsEntry, id, action, note);
        Ok(())
    }

    async fn delete_dns(&self, run: &Run<'_>, host: &str, dry_run: bool) -> Result<()> {
        let zone = &run.profile.dynamic_zone_id;
        let dns = &self.cloud.dns;
        let id = format!("{host} A");
        let found = dns
            .find_record(zone, host, "A")
            .await
            .map_err(|e| Error::cloud(Step::Dns, host, e))?;
        let Some(record) = found else {
            run.record(ResourceKind::DnsRecord, id, Action::AlreadyAbsent, None);
            return Ok(());
        };
        if !dry_run {
            match dns.delete_record(zone, &record).await {
                Ok(()) => {}
                // Deleted meanwhile.
                Err(e) if e.is(&["InvalidChangeBatch"]) && e.message.contains("not found") => {
                    run.record(ResourceKind::DnsRecord, id, Action::AlreadyAbsent, None);
                    return Ok(());
                }
                Err(e) => return Err(Error::cloud(Step::Dns, host, e)),
            }
        }
        run.record(ResourceKind::DnsRecord, id, Action::Deleted, None);
        Ok(())
    }

    async fn delete_service(
        &self,
        run: &Run<'_>,
        service: Option<Service>,
        dry_run: bool,
    ) -> Result<()> {
        let p = run.profile;
        let name = &run.names.resource;
        match service {
            Some(s) if s.status == "ACTIVE" => {
                if !dry_run {
                    match self
                        .cloud
                        .ecs
                        .delete_service(&p.target_cluster, name, true)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {
                            run.record(ResourceKind::Service, &s.arn, Action::AlreadyAbsent, None);
                            return Ok(());
                        }
                        Err(e) => return Err(Error::cloud(Step::Service, name, e)),
                    }
                }
                run.record(ResourceKind::Service, &s.arn, Action::Deleted, None);
            }
            Some(s) => run.record(
                ResourceKind::Service,
                &s.arn,
                Action::AlreadyAbsent,
                Some(s.status.to_lowercase()),
            ),
            None => run.record(ResourceKind::Service, name, Action::AlreadyAbsent, None),
        }
        Ok(())
    }

    async fn delete_rule_and_group(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        tg: Option<TargetGroup>,
        dry_run: bool,
    ) -> Result<()> {
        let elb = &self.cloud.elb;
        let rules = self.all_rules(&https.arn).await?;
        // By host, even when the target group is gone; and any rule still forwarding to it.
        let ours: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.priority.is_some())
            .filter(|r| {
                r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                    || tg
                        .as_ref()
                        .is_some_and(|t| r.target_group_arns.contains(&t.arn))
            })
            .collect();
        if ours.is_empty() {
            run.record(
                ResourceKind::ListenerRule,
                host,
                Action::AlreadyAbsent,
                None,
            );
        }
        let mut results = Vec::new();
        if dry_run {
            results.extend(ours.iter().map(|r| (r.arn.clone(), Ok(()))));
        } else {
            // Concurrent deletes: futures are polled together by one join.
            let futures = ours
                .iter()
                .map(|r| async move { (r.arn.clone(), elb.delete_rule(&r.arn).await) });
            results = join_all(futures).await;
        }
        for (arn, r) in results {
            match r {
                Ok(()) => run.record(ResourceKind::ListenerRule, arn, Action::Deleted, None),
                Err(e) if e.is_not_found() => {
                    run.record(ResourceKind::ListenerRule, arn, Action::AlreadyAbsent, None)
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, arn, e)),
            }
        }
        let Some(tg) = tg else {
            run.record(
                ResourceKind::TargetGroup,
                &run.names.target_group,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        };
        if !dry_run {
            match elb.delete_target_group(&tg.arn).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {
                    run.record(
                        ResourceKind::TargetGroup,
                        &tg.arn,
                        Action::AlreadyAbsent,
                        None,
                    );
                    return Ok(());
                }
                Err(e) => return Err(Error::cloud(Step::TargetGroup, &tg.arn, e)),
            }
        }
        run.record(ResourceKind::TargetGroup, &tg.arn, Action::Deleted, None);
        Ok(())
    }

    async fn delete_task_definitions(
        &self,
        run: &Run<'_>,
        active: Vec<String>,
        inactive: Vec<String>,
        dry_run: bool,
    ) -> Result<()> {
        let ecs = &self.cloud.ecs;
        let family = &run.names.resource;
        let all: Vec<String> = active.iter().chain(inactive.iter()).cloned().collect();
        if all.is_empty() {
            run.record(
                ResourceKind::TaskDefinition,
                family,
                Action::AlreadyAbsent,
                None,
            );
            return Ok(());
        }
        if dry_run {
            for arn in all {
                run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None);
            }
            return Ok(());
        }
        let deregistered = join_all(
            active
                .iter()
                .map(|arn| async move { (arn, ecs.deregister_task_definition(arn).await) }),
        )
        .await;
        for (arn, r) in deregistered {
            if let Err(e) = r
                && !e.is_not_found()
                && !e.message.contains("does not exist")
            {
                return Err(Error::cloud(Step::TaskDefinition, arn, e));
            }
        }
        let chunks: Vec<&[String]> = all.chunks(10).collect();
        let deleted = join_all(
            chunks
                .iter()
                .map(|chunk| async move { (chunk, ecs.delete_task_definitions(chunk).await) }),
        )
        .await;
        for (chunk, r) in deleted {
            let failures = r.map_err(|e| Error::cloud(Step::TaskDefinition, family, e))?;
            for arn in chunk.iter() {
                match failures.iter().find(|(a, _)| a == arn) {
                    None => run.record(ResourceKind::TaskDefinition, arn, Action::Deleted, None),
                    Some((_, why)) if why.contains("does not exist") => run.record(
                        ResourceKind::TaskDefinition,
                        arn,
                        Action::AlreadyAbsent,
                        None,
                    ),
                    Some((_, why)) => {
                        return Err(Error::cloud(
                            Step::TaskDefinition,
                            arn,
                            CloudError::new("DeleteTaskDefinitionsFailure", why.clone()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Environments in the state table: of one profile, or of all (pages followed).
    pub async fn list(&self, profile: Option<&str>) -> Result<Vec<EnvironmentRecord>> {
        let state = &self.cloud.state;
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match profile {
                Some(p) => state.query(&self.table, p, next).await,
                None => {
                    state
                        .query_kind(&self.table, "environment", None, next)
                        .await
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(Vec::new()),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(EnvironmentRecord::from_item));
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        out.sort_by(|a, b| (&a.profile, &a.name).cmp(&(&b.profile, &b.name)));
        Ok(out)
    }

    /// Deletes every environment of `profile` not created or deployed for `max_age`.
    pub async fn sweep(
        &self,
        profile: &Profile,
        max_age: Duration,
        now: Option<i64>,
    ) -> Result<SweepReport> {
        let now = now.unwrap_or_else(now_epoch);
        let cutoff = now.saturating_sub(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let state = &self.cloud.state;
        let mut expired = Vec::new();
        let mut next = None;
        loop {
            let page = match state
                .query_kind(&self.table, "environment", Some(cutoff), next)
                .await
            {
                Ok(page) => page,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            expired.extend(
                page.items
                    .iter()
                    .filter_map(EnvironmentRecord::from_item)
                    .filter(|r| r.profile == profile.name && r.last_updated < cutoff),
            );
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        let mut report = SweepReport::default();
        for record in expired {
            match self
                .delete(profile, &record.name, &DeleteOptions::default())
                .await
            {
                Ok(outcome) => report.deleted.push(outcome),
                Err(e) => report.failed.push((record.name, e)),
            }
        }
        Ok(report)
    }

    /// Stores a profile in the state table (creating the table when missing).
    pub async fn push_profile(&self, profile: &Profile) -> Result<()> {
        let state = &self.cloud.state;
        let id = format!("{}/_profile/{}", self.table, profile.name);
        state
            .ensure_table(&self.table)
            .await
            .map_err(|e| Error::cloud(Step::State, &self.table, e))?;
        let item = Item::from([
            (schema::HASH_KEY.into(), AttrValue::S("_profile".into())),
            (schema::RANGE_KEY.into(), AttrValue::S(profile.name.clone())),
            ("profile".into(), AttrValue::S(profile.to_json())),
            (schema::KIND.into(), AttrValue::S("profile".into())),
        ]);
        state
            .put_item(&self.table, item, WriteCondition::None)
            .await
            .map_err(|e| Error::cloud(Step::State, id, e))?;
        Ok(())
    }

    /// Reads a profile from the state table; `None` when it is not there.
    pub async fn pull_profile(&self, name: &str) -> Result<Option<Profile>> {
        let item = match self
            .cloud
            .state
            .get_item(&self.table, "_profile", name)
            .await
        {
            Ok(item) => item,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
        };
        let Some(json) = item
            .as_ref()
            .and_then(|i| i.get("profile"))
            .and_then(AttrValue::as_s)
        else {
            return Ok(None);
        };
        Ok(Some(Profile::from_json(name, json)?))
    }

    /// Names of the profiles in the state table.
    pub async fn list_profiles(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = match self.cloud.state.query(&self.table, "_profile", next).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => return Ok(out),
                Err(e) => return Err(Error::cloud(Step::State, &self.table, e)),
            };
            out.extend(page.items.iter().filter_map(|i| {
                i.get(schema::RANGE_KEY)
                    .and_then(AttrValue::as_s)
                    .map(str::to_owned)
            }));
            match page.next {
                Some(n) => next = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Removes a profile from the state table; true when it was there.
    pub async fn remove_profile(&self, name: &str) -> Result<bool> {
        match self
            .cloud
            .state
            .delete_item(&self.table, "_profile", name, WriteCondition::None)
            .await
        {
            Ok(old) => Ok(old.is_some()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Error::cloud(Step::State, &self.table, e)),
        }
    }
}

/// Polls all futures together and returns their outputs in order (a tiny `join_all`, to avoid
/// a dependency for the few places that fan out over a list).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
