//! A wrapper adding per-call latency, injected failures and a call log to any implementation
//! of the cloud traits, for tests and benches.
//!
//! ```
//! use std::sync::Arc;
//! use eden_core::instrument::{Fault, Instrumentation};
//! use eden_core::memory::{MemoryCloud, MemoryOptions};
//! use eden_core::Profile;
//!
//! let memory = MemoryCloud::with_reference(&Profile::example(), MemoryOptions::default());
//! let inst = Instrumentation::new(std::time::Duration::from_millis(1));
//! inst.inject(Fault::Op { op: "elb.create_rule".into(), nth: 0 });
//! let cloud = memory.cloud().instrumented(&inst);
//! # let _ = cloud;
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::cloud::{
    Cloud, CloudError, CloudResult, CreateRule, CreateService, CreateTargetGroup, DnsApi,
    DnsRecord, DocumentStore, EcsApi, ImageDetails, ImageRegistry, Item, ItemCondition, ItemUpdate,
    Listener, LoadBalancer, LoadBalancerApi, Page, PutMode, RecordChange, RegisterTaskDefinition,
    Rule, Service, StateStore, StoredDocument, Tag, TargetGroup, TaskDefinition,
    TaskDefinitionStatus, WriteCondition,
};
use crate::image::EcrImage;

/// A failure to inject. Calls are counted from 0 across all six systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail only call number `n`.
    Call(usize),
    /// Fail call `n` and every later one: the process lost the cloud (a crash, as far as the
    /// cloud can tell, since rollback cannot run either).
    From(usize),
    /// Fail the `nth` (from 0) call of operation `op` (e.g. `elb.create_rule`).
    Op {
        /// Operation name, `<system>.<method>`.
        op: String,
        /// Which occurrence.
        nth: usize,
    },
}

/// The code of injected failures.
pub const INJECTED: &str = "InjectedFault";

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Sequence number.
    pub index: usize,
    /// `<system>.<method>`.
    pub op: &'static str,
    /// Start, since the instrumentation was created.
    pub start: Duration,
    /// End.
    pub end: Duration,
    /// True when it failed (injected or not).
    pub failed: bool,
}

/// Shared latency, fault plan and call log.
#[derive(Debug)]
pub struct Instrumentation {
    latency: Duration,
    origin: Instant,
    counter: AtomicUsize,
    faults: Mutex<Vec<Fault>>,
    per_op: Mutex<BTreeMap<&'static str, usize>>,
    log: Mutex<Vec<CallRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Instrumentation {
    /// Instrumentation adding `latency` to every call (zero for none).
    pub fn new(latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            latency,
            origin: Instant::now(),
            counter: AtomicUsize::new(0),
            faults: Mutex::new(Vec::new()),
            per_op: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Clears faults, counters and the log.
    pub fn reset(&self) {
        self.clear_faults();
        self.counter.store(0, Ordering::SeqCst);
        lock(&self.per_op).clear();
        lock(&self.log).clear();
    }

    /// The calls so far, in start order.
    pub fn calls(&self) -> Vec<CallRecord> {
        let mut calls = lock(&self.log).clone();
        calls.sort_by_key(|c| c.index);
        calls
    }

    /// The longest chain of calls where each started after the previous ended: the number of
    /// sequential round trips on the critical path.
    pub fn sequential_round_trips(&self) -> usize {
        let mut calls = self.calls();
        calls.sort_by_key(|c| c.start);
        let mut depth = vec![1usize; calls.len()];
        for j in 0..calls.len() {
            for i in 0..j {
                if calls[i].end <= calls[j].start {
                    depth[j] = depth[j].max(depth[i] + 1);
                }
            }
        }
        depth.into_iter().max().unwrap_or(0)
    }

    async fn call<T, F>(&self, op: &'static str, fut: F) -> CloudResult<T>
    where
        F: std::future::Future<Output = CloudResult<T>> + Send,
    {
        let index = self.counter.fetch_add(1, Ordering::SeqCst);
        let nth = {
            let mut per_op = lock(&self.per_op);
            let n = per_op.entry(op).or_insert(0);
            *n += 1;
            *n - 1
        };
        let inject = lock(&self.faults).iter().any(|f| match f {
            Fault::Call(n) => *n == index,
            Fault::From(n) => index >= *n,
            Fault::Op { op: o, nth: n } => o == op && *n == nth,
        });
        let start = self.origin.elapsed();
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let result = if inject {
            // As a failure of the service itself (a 500), which callers may retry.
            Err(
                CloudError::new(INJECTED, format!("injected failure of call {index} ({op})"))
                    .with_status(Some(500)),
            )
        } else {
            fut.await
        };
        lock(&self.log).push(CallRecord {
            index,
            op,
            start,
            end: self.origin.elapsed(),
            failed: result.is_err(),
        });
        result
    }
}

/// Any implementation, instrumented.
pub struct Instrumented<T: ?Sized> {
    inner: Arc<T>,
    inst: Arc<Instrumentation>,
}

impl<T: ?Sized> Instrumented<T> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<T>, inst: Arc<Instrumentation>) -> Self {
        Self { inner, inst }
    }
}

impl Cloud {
    /// This cloud with every call going through `inst`.
    pub fn instrumented(&self, inst: &Arc<Instrumentation>) -> Cloud {
        Cloud {
            ecs: Arc::new(Instrumented::new(self.ecs.clone(), inst.clone())),
            elb: Arc::new(Instrumented::new(self.elb.clone(), inst.clone())),
            dns: Arc::new(Instrumented::new(self.dns.clone(), inst.clone())),
            images: Arc::new(Instrumented::new(self.images.clone(), inst.clone())),
            documents: Arc::new(Instrumented::new(self.documents.clone(), inst.clone())),
            state: Arc::new(Instrumented::new(self.state.clone(), inst.clone())),
            region: self.region.clone(),
        }
    }
}

#[async_trait]
impl<T: EcsApi + ?Sized> EcsApi for Instrumented<T> {
    async fn describe_service(&self, cluster: &str, name: &str) -> CloudResult<Option<Service>> {
        self.inst
            .call(
                "ecs.describe_service",
                self.inner.describe_service(cluster, name),
            )
            .await
    }
    async fn create_service(&self, request: CreateService) -> CloudResult<Service> {
        self.inst
            .call("ecs.create_service", self.inner.create_service(request))
            .await
    }
    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
        force: bool,
    ) -> CloudResult<Service> {
        self.inst
            .call(
                "ecs.update_service",
                self.inner
                    .update_service(cluster, name, task_definition, force),
            )
            .await
    }
    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<Service> {
        self.inst
            .call(
                "ecs.delete_service",
                self.inner.delete_service(cluster, name, force),
            )
            .await
    }
    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        self.inst
            .call(
                "ecs.describe_task_definition",
                self.inner.describe_task_definition(arn),
            )
            .await
    }
    async fn describe_latest_task_definition(
        &self,
        family: &str,
    ) -> CloudResult<Option<TaskDefinition>> {
        self.inst
            .call(
                "ecs.describe_latest_task_definition",
                self.inner.describe_latest_task_definition(family),
            )
            .await
    }
    async fn register_task_definition(
        &self,
        request: RegisterTaskDefinition,
    ) -> CloudResult<TaskDefinition> {
        self.inst
            .call(
                "ecs.register_task_definition",
                self.inner.register_task_definition(request),
            )
            .await
    }
    async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> CloudResult<Vec<String>> {
        self.inst
            .call(
                "ecs.list_task_definitions",
                self.inner.list_task_definitions(family, status),
            )
            .await
    }
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.inst
            .call(
                "ecs.deregister_task_definition",
                self.inner.deregister_task_definition(arn),
            )
            .await
    }
    async fn delete_task_definitions(&self, arns: &[String]) -> CloudResult<Vec<(String, String)>> {
        self.inst
            .call(
                "ecs.delete_task_definitions",
                self.inner.delete_task_definitions(arns),
            )
            .await
    }
}

#[async_trait]
impl<T: LoadBalancerApi + ?Sized> LoadBalancerApi for Instrumented<T> {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        self.inst
            .call(
                "elb.describe_load_balancer",
                self.inner.describe_load_balancer(arn),
            )
            .await
    }
    async fn describe_listeners(&self, lb: &str) -> CloudResult<Vec<Listener>> {
        self.inst
            .call("elb.describe_listeners", self.inner.describe_listeners(lb))
            .await
    }
    async fn describe_rules(
        &self,
        listener: &str,
        marker: Option<String>,
    ) -> CloudResult<Page<Rule>> {
        self.inst
            .call(
                "elb.describe_rules",
                self.inner.describe_rules(listener, marker),
            )
            .await
    }
    async fn create_rule(&self, request: CreateRule) -> CloudResult<Rule> {
        self.inst
            .call("elb.create_rule", self.inner.create_rule(request))
            .await
    }
    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.inst
            .call("elb.delete_rule", self.inner.delete_rule(arn))
            .await
    }
    async fn describe_target_group_by_name(&self, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.inst
            .call(
                "elb.describe_target_group_by_name",
                self.inner.describe_target_group_by_name(name),
            )
            .await
    }
    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        self.inst
            .call(
                "elb.describe_target_group",
                self.inner.describe_target_group(arn),
            )
            .await
    }
    async fn list_target_groups(&self, marker: Option<String>) -> CloudResult<Page<TargetGroup>> {
        self.inst
            .call(
                "elb.list_target_groups",
                self.inner.list_target_groups(marker),
            )
            .await
    }
    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        self.inst
            .call("elb.describe_tags", self.inner.describe_tags(arns))
            .await
    }
    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        self.inst
            .call(
                "elb.target_group_attributes",
                self.inner.target_group_attributes(arn),
            )
            .await
    }
    async fn create_target_group(&self, request: CreateTargetGroup) -> CloudResult<TargetGroup> {
        self.inst
            .call(
                "elb.create_target_group",
                self.inner.create_target_group(request),
            )
            .await
    }
    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.inst
            .call(
                "elb.modify_target_group_attributes",
                self.inner.modify_target_group_attributes(arn, attributes),
            )
            .await
    }
    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.inst
            .call(
                "elb.delete_target_group",
                self.inner.delete_target_group(arn),
            )
            .await
    }
}

#[async_trait]
impl<T: DnsApi + ?Sized> DnsApi for Instrumented<T> {
    async fn hosted_zone_name(&self, zone_id: &str) -> CloudResult<String> {
        self.inst
            .call("dns.hosted_zone_name", self.inner.hosted_zone_name(zone_id))
            .await
    }
    async fn find_record(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Option<DnsRecord>> {
        self.inst
            .call(
                "dns.find_record",
                self.inner.find_record(zone_id, name, record_type),
            )
            .await
    }
    async fn change_records(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        self.inst
            .call(
                "dns.change_records",
                self.inner.change_records(zone_id, changes),
            )
            .await
    }
}

#[async_trait]
impl<T: ImageRegistry + ?Sized> ImageRegistry for Instrumented<T> {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        self.inst
            .call("ecr.describe_image", self.inner.describe_image(image))
            .await
    }
}

#[async_trait]
impl<T: DocumentStore + ?Sized> DocumentStore for Instrumented<T> {
    async fn get(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredDocument>> {
        self.inst.call("s3.get", self.inner.get(bucket, key)).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> CloudResult<String> {
        self.inst
            .call("s3.put", self.inner.put(bucket, key, bytes, mode))
            .await
    }
}

#[async_trait]
impl<T: StateStore + ?Sized> StateStore for Instrumented<T> {
    async fn ensure_table(&self, table: &str) -> CloudResult<bool> {
        self.inst
            .call("dynamodb.ensure_table", self.inner.ensure_table(table))
            .await
    }
    async fn put_item(
        &self,
        table: &str,
        item: Item,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        self.inst
            .call(
                "dynamodb.put_item",
                self.inner.put_item(table, item, condition),
            )
            .await
    }
    async fn get_item(&self, table: &str, hash: &str, range: &str) -> CloudResult<Option<Item>> {
        self.inst
            .call("dynamodb.get_item", self.inner.get_item(table, hash, range))
            .await
    }
    async fn delete_item(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: WriteCondition,
    ) -> CloudResult<Option<Item>> {
        self.inst
            .call(
                "dynamodb.delete_item",
                self.inner.delete_item(table, hash, range, condition),
            )
            .await
    }
    async fn query(
        &self,
        table: &str,
        hash: &str,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        self.inst
            .call("dynamodb.query", self.inner.query(table, hash, next))
            .await
    }
    async fn query_kind(
        &self,
        table: &str,
        kind: &str,
        before: Option<i64>,
        next: Option<String>,
    ) -> CloudResult<Page<Item>> {
        self.inst
            .call(
                "dynamodb.query_kind",
                self.inner.query_kind(table, kind, before, next),
            )
            .await
    }
    async fn scan(&self, table: &str, next: Option<String>) -> CloudResult<Page<Item>> {
        self.inst
            .call("dynamodb.scan", self.inner.scan(table, next))
            .await
    }
    // Forwarded so a wrapped store keeps its atomic conditional writes (the trait's default
    // is a read-check-write).
    async fn put_item_when(
        &self,
        table: &str,
        item: Item,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.inst
            .call(
                "dynamodb.put_item",
                self.inner.put_item_when(table, item, condition),
            )
            .await
    }
    async fn update_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        update: &ItemUpdate,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.inst
            .call(
                "dynamodb.update_item",
                self.inner
                    .update_item_when(table, hash, range, update, condition),
            )
            .await
    }
    async fn delete_item_when(
        &self,
        table: &str,
        hash: &str,
        range: &str,
        condition: &ItemCondition,
    ) -> CloudResult<Option<Item>> {
        self.inst
            .call(
                "dynamodb.delete_item",
                self.inner.delete_item_when(table, hash, range, condition),
            )
            .await
    }
}
