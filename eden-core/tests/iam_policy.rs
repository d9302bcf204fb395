//! The IAM policy documented in docs/eden.md is what eden needs, no more and no less: create,
//! a redeploy, the plans, a list and delete run through a permission checker around the
//! in-memory cloud that refuses (403 AccessDenied) every call the policy does not allow, as
//! AWS would, down to S3 answering a missing key with 403 unless `s3:ListBucket` is allowed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use eden_core::cloud::{
    CloudError, CloudResult, CreateRule, CreateService, CreateTargetGroup, DnsApi, DnsRecord,
    DocumentStore, EcsApi, ImageDetails, ImageRegistry, Item, ItemCondition, ItemUpdate, Listener,
    LoadBalancer, LoadBalancerApi, Page, PutMode, RecordChange, RegisterTaskDefinition, Rule,
    Service, StateStore, StoredDocument, Tag, TargetGroup, TaskDefinition, TaskDefinitionStatus,
    WriteCondition,
};
use eden_core::image::EcrImage;
use eden_core::instrument::{Fault, INJECTED, Instrumentation};
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::{Cloud, CreateOptions, DeleteOptions, Environment, Error, ErrorClass, Profile};
use serde_json::Value;

const V1: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
const V2: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// The policy of docs/eden.md, with the example profile's values in place of the capitals.
fn documented_policy() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/eden.md");
    let text = std::fs::read_to_string(path).expect("docs/eden.md");
    let section = text
        .split("\n## IAM policy\n")
        .nth(1)
        .expect("an \"## IAM policy\" section in docs/eden.md");
    let json = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("a ```json block in the IAM policy section");
    let mut json = json.to_owned();
    let profile = Profile::example();
    for (placeholder, value) in [
        (
            "REFERENCE_CLUSTER",
            profile.reference_service_arn.cluster.as_str(),
        ),
        (
            "REFERENCE_SERVICE",
            profile.reference_service_arn.service.as_str(),
        ),
        ("ENDPOINTS_BUCKET", profile.endpoint_s3_bucket_name.as_str()),
        ("ENDPOINTS_KEY", profile.endpoint_s3_key.as_str()),
        ("DYNAMIC_ZONE_ID", profile.dynamic_zone_id.as_str()),
        ("EXECUTION_ROLE", "web-exec"),
        ("TASK_ROLE", "web-task"),
        ("NAME_PREFIX", profile.name_prefix.as_str()),
        ("SHARED_ALB", "shared/50dc6c495c0c9188"),
        ("CLUSTER", profile.target_cluster.as_str()),
        ("REGION", REGION),
        ("ACCOUNT", ACCOUNT),
        ("TABLE", "eden"),
    ] {
        json = json.replace(placeholder, value);
    }
    serde_json::from_str(&json).expect("the documented policy is JSON")
}

/// Glob match with `*` and `?`, as IAM matches actions and resources.
fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// One request: an action on a resource, with condition keys.
struct Request {
    action: String,
    resource: String,
    context: BTreeMap<String, String>,
}

fn request(action: &str, resource: impl Into<String>) -> Request {
    Request {
        action: action.into(),
        resource: resource.into(),
        context: BTreeMap::new(),
    }
}

impl Request {
    fn with(mut self, key: &str, value: &str) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }
}

/// The policy evaluator: an explicit deny wins, otherwise an allow must match.
struct Policy {
    statements: Vec<Value>,
    /// `(sid, action)` of every allow that matched a request.
    used: Mutex<BTreeSet<(String, String)>>,
}

impl Policy {
    fn new(policy: &Value) -> Self {
        Self {
            statements: policy["Statement"].as_array().cloned().unwrap_or_default(),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    fn condition_holds(statement: &Value, request: &Request) -> bool {
        let Some(conditions) = statement.get("Condition").and_then(Value::as_object) else {
            return true;
        };
        conditions.iter().all(|(operator, keys)| {
            let like = match operator.as_str() {
                "StringEquals" => false,
                "StringLike" => true,
                other => panic!("condition operator {other} is not supported by the checker"),
            };
            keys.as_object().unwrap().iter().all(|(key, wanted)| {
                let Some(have) = request.context.get(key) else {
                    return false;
                };
                strings(wanted).iter().any(|w| {
                    if like {
                        glob(w, have, false)
                    } else {
                        w == have
                    }
                })
            })
        })
    }

    fn allows(&self, request: &Request) -> bool {
        let matching = |effect: &'static str| {
            self.statements.iter().filter(move |s| {
                s["Effect"] == effect
                    && strings(&s["Action"])
                        .iter()
                        .any(|a| glob(a, &request.action, true))
                    && strings(&s["Resource"])
                        .iter()
                        .any(|r| glob(r, &request.resource, false))
                    && Self::condition_holds(s, request)
            })
        };
        if matching("Deny").next().is_some() {
            return false;
        }
        let mut allowed = false;
        for s in matching("Allow") {
            allowed = true;
            for action in strings(&s["Action"]) {
                if glob(&action, &request.action, true) {
                    self.used.lock().unwrap().insert((
                        s["Sid"].as_str().unwrap_or_default().to_owned(),
                        action.clone(),
                    ));
                }
            }
        }
        allowed
    }

    fn check(&self, requests: impl IntoIterator<Item = Request>) -> CloudResult<()> {
        for r in requests {
            if !self.allows(&r) {
                return Err(CloudError::new(
                    "AccessDenied",
                    format!(
                        "User is not authorized to perform: {} on resource: {}",
                        r.action, r.resource
                    ),
                )
                .with_status(Some(403)));
            }
        }
        Ok(())
    }

    /// Every action of every allow statement that was never needed.
    fn unused(&self) -> Vec<(String, String)> {
        let used = self.used.lock().unwrap();
        let mut out = Vec::new();
        for s in &self.statements {
            let sid = s["Sid"].as_str().unwrap_or_default().to_owned();
            for action in strings(&s["Action"]) {
                if !used.contains(&(sid.clone(), action.clone())) {
                    out.push((sid.clone(), action));
                }
            }
        }
        out
    }
}

/// The in-memory cloud behind the policy.
struct Checked {
    inner: Arc<MemoryCloud>,
    policy: Arc<Policy>,
}

fn service_arn(cluster: &str, name: &str) -> String {
    let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
}

fn zone_arn(zone: &str) -> String {
    format!("arn:aws:route53:::hostedzone/{zone}")
}

fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

#[async_trait]
impl EcsApi for Checked {
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>> {
        self.policy
            .check([request("ecs:DescribeServices", service_arn(cluster, name))])?;
        self.inner.describe_service(cluster, name).await
    }
    async fn create_service(&self, r: CreateService) -> CloudResult<Service> {
        let arn = service_arn(&r.cluster, &r.name);
        self.policy.check([
            request("ecs:CreateService", &arn),
            request("ecs:TagResource", &arn).with("ecs:CreateAction", "CreateService"),
        ])?;
        self.inner.create_service(r).await
    }
    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        td: &str,
        force: bool,
    ) -> CloudResult<Service> {
        self.policy
            .check([request("ecs:UpdateService", service_arn(cluster, name))])?;
        self.inner.update_service(cluster, name, td, force).await
    }
    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service> {
        self.policy
            .check([request("ecs:DeleteService", service_arn(cluster, name))])?;
        self.inner.delete_service(cluster, name, force).await
    }
    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        self.policy
            .check([request("ecs:DescribeTaskDefinition", "*")])?;
        self.inner.describe_task_definition(arn).await
    }
    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>> {
        self.policy
            .check([request("ecs:DescribeTaskDefinition", "*")])?;
        self.inner.describe_latest_task_definition(family).await
    }
    async fn register_task_definition(
        &self,
        r: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition> {
        // The AWS implementation describes the base, and passes its roles.
        let base = self.inner.describe_task_definition(&r.base).await?;
        let mut requests = vec![
            request("ecs:DescribeTaskDefinition", "*"),
            request("ecs:RegisterTaskDefinition", "*"),
            request(
                "ecs:TagResource",
                format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{}:*",
                    r.family
                ),
            )
            .with("ecs:CreateAction", "RegisterTaskDefinition"),
        ];
        for role in [&base.task_role_arn, &base.execution_role_arn]
            .into_iter()
            .flatten()
        {
            requests.push(
                request("iam:PassRole", role)
                    .with("iam:PassedToService", "ecs-tasks.amazonaws.com"),
            );
        }
        self.policy.check(requests)?;
        self.inner.register_task_definition(r).await
    }
    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>> {
        self.policy
            .check([request("ecs:ListTaskDefinitions", "*")])?;
        self.inner.list_task_definitions(family, status).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.policy
            .check([request("ecs:DeregisterTaskDefinition", "*")])?;
        self.inner.deregister_task_definition(arn).await
    }
    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        self.policy
            .check([request("ecs:DeleteTaskDefinitions", "*")])?;
        self.inner.delete_task_definitions(arns).await
    }
}

const ELB: &str = "elasticloadbalancing";

#[async_trait]
impl LoadBalancerApi for Checked {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        self.policy
            .check([request(&format!("{ELB}:DescribeLoadBalancers"), "*")])?;
        self.inner.describe_load_balancer(arn).await
    }
    async fn describe_listeners(&self, lb: &str) -> CloudResult<Vec<Listener>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeListeners"), "*")])?;
        self.inner.describe_listeners(lb).await
    }
    async fn describe_rules(&self, l: &str, m: Option<String>) -> CloudResult<Page<Rule>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeRules"), "*")])?;
        self.inner.describe_rules(l, m).await
    }
    async fn create_rule(&self, r: CreateRule) -> CloudResult<Rule> {
        let rules = format!(
            "{}/*",
            r.listener_arn.replacen(":listener/", ":listener-rule/", 1)
        );
        self.policy.check([
            request(&format!("{ELB}:CreateRule"), &r.listener_arn),
            request(&format!("{ELB}:AddTags"), rules)
                .with(&format!("{ELB}:CreateAction"), "CreateRule"),
        ])?;
        self.inner.create_rule(r).await
    }
    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.policy
            .check([request(&format!("{ELB}:DeleteRule"), arn)])?;
        self.inner.delete_rule(arn).await
    }
    async fn describe_target_group_by_name(&self, n: &str) -> CloudResult<Option<TargetGroup>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeTargetGroups"), "*")])?;
        self.inner.describe_target_group_by_name(n).await
    }
    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeTargetGroups"), "*")])?;
        self.inner.describe_target_group(arn).await
    }
    async fn list_target_groups(&self, m: Option<String>) -> CloudResult<Page<TargetGroup>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeTargetGroups"), "*")])?;
        self.inner.list_target_groups(m).await
    }
    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        self.policy
            .check([request(&format!("{ELB}:DescribeTags"), "*")])?;
        self.inner.describe_tags(arns).await
    }
    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        self.policy.check([request(
            &format!("{ELB}:DescribeTargetGroupAttributes"),
            "*",
        )])?;
        self.inner.target_group_attributes(arn).await
    }
    async fn create_target_group(&self, r: CreateTargetGroup) -> CloudResult<TargetGroup> {
        let arn = format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{}/0123456789abcdef",
            r.name
        );
        self.policy.check([
            request(&format!("{ELB}:CreateTargetGroup"), &arn),
            request(&format!("{ELB}:AddTags"), &arn)
                .with(&format!("{ELB}:CreateAction"), "CreateTargetGroup"),
        ])?;
        self.inner.create_target_group(r).await
    }
    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        a: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.policy
            .check([request(&format!("{ELB}:ModifyTargetGroupAttributes"), arn)])?;
        self.inner.modify_target_group_attributes(arn, a).await
    }
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.policy
            .check([request(&format!("{ELB}:DeleteTargetGroup"), arn)])?;
        self.inner.delete_target_group(arn).await
    }
}

#[async_trait]
impl DnsApi for Checked {
    async fn hosted_zone_name(&self, zone: &str) -> CloudResult<String> {
        self.policy
            .check([request("route53:GetHostedZone", zone_arn(zone))])?;
        self.inner.hosted_zone_name(zone).await
    }
    async fn find_record(&self, z: &str, n: &str, t: &str) -> CloudResult<Option<DnsRecord>> {
        self.policy
            .check([request("route53:ListResourceRecordSets", zone_arn(z))])?;
        self.inner.find_record(z, n, t).await
    }
    async fn change_records(&self, zone: &str, changes: &[RecordChange]) -> CloudResult<()> {
        self.policy
            .check([request("route53:ChangeResourceRecordSets", zone_arn(zone))])?;
        self.inner.change_records(zone, changes).await
    }
}

#[async_trait]
impl ImageRegistry for Checked {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        self.policy.check([request(
            "ecr:DescribeImages",
            format!(
                "arn:aws:ecr:{}:{}:repository/{}",
                image.region, image.registry_id, image.repository
            ),
        )])?;
        self.inner.describe_image(image).await
    }
}

#[async_trait]
impl DocumentStore for Checked {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        self.policy.check([request(
            "s3:GetObject",
            format!("arn:aws:s3:::{bucket}/{key}"),
        )])?;
        match self.inner.get(bucket, key).await? {
            Some(doc) => Ok(Some(doc)),
            // S3 says "no such key" only to who may list the bucket; 403 to everyone else.
            None => {
                self.policy
                    .check([request("s3:ListBucket", format!("arn:aws:s3:::{bucket}"))
                        .with("s3:prefix", key)])?;
                Ok(None)
            }
        }
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        self.policy.check([request(
            "s3:PutObject",
            format!("arn:aws:s3:::{bucket}/{key}"),
        )])?;
        self.inner.put(bucket, key, bytes, mode).await
    }
}

#[async_trait]
impl StateStore for Checked {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        self.policy
            .check([request("dynamodb:DescribeTable", table_arn(table))])?;
        let exists = self.inner.query(table, "_none", None).await.is_ok();
        if !exists {
            self.policy
                .check([request("dynamodb:CreateTable", table_arn(table))])?;
        }
        self.inner.ensure_table(table).await
    }
    async fn put_item(&self, t: &str, item: Item, c: WriteCondition) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:PutItem", table_arn(t))])?;
        self.inner.put_item(t, item, c).await
    }
    async fn get_item(&self, t: &str, h: &str, r: &str) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:GetItem", table_arn(t))])?;
        self.inner.get_item(t, h, r).await
    }
    async fn delete_item(
        &self,
        t: &str,
        h: &str,
        r: &str,
        c: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:DeleteItem", table_arn(t))])?;
        self.inner.delete_item(t, h, r, c).await
    }
    async fn query(&self, t: &str, h: &str, n: Option<String>) -> CloudResult<Page<Item>> {
        self.policy
            .check([request("dynamodb:Query", table_arn(t))])?;
        self.inner.query(t, h, n).await
    }
    async fn query_kind(
        &self,
        t: &str,
        k: &str,
        b: Option<i64>,
        n: Option<String>,
    ) -> CloudResult<Page<Item>> {
        self.policy.check([request(
            "dynamodb:Query",
            format!("{}/index/kind_last_updated_gsi", table_arn(t)),
        )])?;
        self.inner.query_kind(t, k, b, n).await
    }
    async fn scan(&self, t: &str, n: Option<String>) -> CloudResult<Page<Item>> {
        self.policy
            .check([request("dynamodb:Scan", table_arn(t))])?;
        self.inner.scan(t, n).await
    }
    async fn put_item_when(
        &self,
        t: &str,
        item: Item,
        c: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:PutItem", table_arn(t))])?;
        self.inner.put_item_when(t, item, c).await
    }
    async fn update_item_when(
        &self,
        t: &str,
        h: &str,
        r: &str,
        u: &ItemUpdate,
        c: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:UpdateItem", table_arn(t))])?;
        self.inner.update_item_when(t, h, r, u, c).await
    }
    async fn delete_item_when(
        &self,
        t: &str,
        h: &str,
        r: &str,
        c: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.policy
            .check([request("dynamodb:DeleteItem", table_arn(t))])?;
        self.inner.delete_item_when(t, h, r, c).await
    }
}

fn checked(memory: &Arc<MemoryCloud>, policy: &Arc<Policy>) -> Cloud {
    Cloud::from_one(Arc::new(Checked {
        inner: memory.clone(),
        policy: policy.clone(),
    }))
}

/// Create, a plan, a redeploy that fails after taking the lease (rolled back: the state item
/// is put back), a redeploy, lists, a plan of delete and delete.
async fn exercise(memory: &Arc<MemoryCloud>, policy: &Arc<Policy>) -> Result<(), Error> {
    let profile = Profile::example();
    let eden = Environment::new(checked(memory, policy));
    let inst = Instrumentation::new(std::time::Duration::ZERO);
    inst.inject(Fault::Op {
        op: "ecs.update_service".into(),
        nth: 0,
    });
    let failing = Environment::new(checked(memory, policy).instrumented(&inst));
    eden.create(&profile, "pr-1", V1, &CreateOptions::default())
        .await?;
    eden.create(
        &profile,
        "pr-1",
        V2,
        &CreateOptions::default().dry_run(true),
    )
    .await?;
    match failing
        .create(&profile, "pr-1", V2, &CreateOptions::default())
        .await
    {
        Err(Error::Cloud { source, .. }) if source.code == INJECTED => {}
        Err(e) => return Err(e),
        Ok(_) => panic!("the injected failure did not fail the redeploy"),
    }
    eden.create(&profile, "pr-1", V2, &CreateOptions::default())
        .await?;
    assert_eq!(eden.list(None).await?.len(), 1);
    assert_eq!(eden.list(Some("default")).await?.len(), 1);
    eden.delete(&profile, "pr-1", &DeleteOptions::default().dry_run(true))
        .await?;
    eden.delete(&profile, "pr-1", &DeleteOptions::default())
        .await?;
    assert!(eden.list(None).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_documented_policy_is_exactly_what_eden_needs() {
    let profile = Profile::example();
    // No endpoints file and no state table yet: the first create makes both.
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let before = memory.inventory();
    let policy = Arc::new(Policy::new(&documented_policy()));
    exercise(&memory, &policy).await.unwrap();
    // Every permission the policy lists was needed.
    assert_eq!(policy.unused(), Vec::<(String, String)>::new());
    let mut after = memory.inventory();
    after.documents.clear();
    assert_eq!(after, before);
}

/// The documented policy without one action.
fn without(action: &str) -> Arc<Policy> {
    let mut policy = documented_policy();
    for s in policy["Statement"].as_array_mut().unwrap() {
        let kept: Vec<Value> = strings(&s["Action"])
            .into_iter()
            .filter(|a| a != action)
            .map(Value::String)
            .collect();
        s["Action"] = Value::Array(kept);
    }
    Arc::new(Policy::new(&policy))
}

#[tokio::test]
async fn without_list_bucket_a_missing_endpoints_file_is_access_denied() {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    let before = memory.inventory();
    let eden = Environment::new(checked(&memory, &without("s3:ListBucket")));
    let err = eden
        .create(&profile, "pr-1", V1, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::AccessDenied, "{err}");
    assert!(err.to_string().contains("s3:ListBucket"), "{err}");
    let mut after = memory.inventory();
    // The state table was created (that is allowed); nothing else changed.
    after.items.clear();
    assert_eq!(after, before);
}

#[tokio::test]
async fn every_permission_is_needed() {
    // Removing any one action of the policy makes create, redeploy or delete fail.
    let documented = documented_policy();
    let mut actions = BTreeSet::new();
    for s in documented["Statement"].as_array().unwrap() {
        actions.extend(strings(&s["Action"]));
    }
    for action in actions {
        let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
        let err = exercise(&memory, &without(&action))
            .await
            .expect_err(&format!("{action} is not needed"));
        let denied = err.class() == ErrorClass::AccessDenied
            || matches!(&err, Error::RollbackIncomplete { leftover, .. }
                if leftover.iter().any(|l| l.contains("AccessDenied")));
        assert!(denied, "{action}: {err}");
    }
}
