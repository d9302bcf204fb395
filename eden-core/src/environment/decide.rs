//! The decisions of create and delete, as pure functions over what was read: the dry-run plan
//! and the real run call the same ones, so a plan says exactly what the run would do (or
//! refuse).

use std::collections::BTreeMap;

use crate::cloud::{
    AliasTarget, DnsRecord, LoadBalancer, Rule, Service, ServiceLoadBalancer, ServiceSpec, Tag,
    TargetGroup, TaskDefinition,
};
use crate::endpoints::{Edit, EndpointsDocument};
use crate::error::{Error, Result, Step};
use crate::names::EnvironmentNames;
use crate::outcome::ResourceKind;
use crate::ownership::{ForeignOwner, Owner, Verdict};
use crate::profile::Profile;

use super::priority;

fn not_owned(kind: ResourceKind, resource: impl Into<String>, owner: ForeignOwner) -> Error {
    Error::NotOwned {
        kind,
        resource: resource.into(),
        owner,
    }
}

/// Refuses names that are the reference service's own, before any call.
pub(crate) fn reference_names(profile: &Profile, names: &EnvironmentNames) -> Result<()> {
    let reference = &profile.reference_service_arn;
    if names.resource == reference.service {
        return Err(Error::ReferenceCollision {
            what: "ECS service",
            name: names.resource.clone(),
            profile_key: "name_prefix",
        });
    }
    Ok(())
}

/// The family of a task definition ARN (`...:task-definition/<family>:<revision>`).
pub(crate) fn family_of(arn: &str) -> &str {
    let last = arn.rsplit('/').next().unwrap_or(arn);
    last.rsplit_once(':').map_or(last, |(family, _)| family)
}

/// The name of a target group ARN (`...:targetgroup/<name>/<id>`).
pub(crate) fn target_group_name_of(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":targetgroup/")?.1;
    rest.split('/').next()
}

/// Refuses an environment whose family or target group would be the reference's (known once
/// the reference service is described).
pub(crate) fn reference_resources(reference: &Service, names: &EnvironmentNames) -> Result<()> {
    if family_of(&reference.spec.task_definition) == names.resource {
        return Err(Error::ReferenceCollision {
            what: "task definition family",
            name: names.resource.clone(),
            profile_key: "name_prefix",
        });
    }
    for lb in &reference.spec.load_balancers {
        if lb
            .target_group_arn
            .as_deref()
            .and_then(target_group_name_of)
            .is_some_and(|n| n == names.target_group)
        {
            return Err(Error::ReferenceCollision {
                what: "target group",
                name: names.target_group.clone(),
                profile_key: "name_prefix",
            });
        }
    }
    Ok(())
}

/// Refuses a profile whose ARNs name another region than the clients call.
pub(crate) fn region(client_region: Option<&str>, profile: &Profile) -> Result<()> {
    let Some(client) = client_region else {
        return Ok(());
    };
    for (key, region) in [
        (
            "reference_service_arn",
            profile.reference_service_arn.region.as_str(),
        ),
        ("master_alb_arn", profile.master_alb_arn.region.as_str()),
    ] {
        if region != client {
            return Err(Error::RegionMismatch {
                profile_key: key,
                profile_region: region.to_owned(),
                client_region: client.to_owned(),
            });
        }
    }
    Ok(())
}

/// The reference service's load balancer entry eden clones: the first with a target group and
/// a container.
pub(crate) fn target_of(reference: &Service) -> Result<ServiceLoadBalancer> {
    reference
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
        })
}

/// The reference service, checked to be usable.
pub(crate) fn reference(found: Option<Service>, arn: &str) -> Result<Service> {
    match found {
        Some(s) if s.status == "ACTIVE" => Ok(s),
        _ => Err(Error::Conflict {
            step: Step::ReadReference,
            resource: arn.to_owned(),
            message: "the reference service does not exist or is not ACTIVE".into(),
        }),
    }
}

/// The environment's service spec, copied from the reference; `Err` lists the parts that
/// cannot be copied (when they may not be left out), `notes` those left out.
pub(crate) fn service_spec(
    reference: &Service,
    target: &ServiceLoadBalancer,
    leave_out_uncopyable: bool,
) -> Result<(ServiceSpec, Vec<String>)> {
    let mut spec = reference.spec.clone();
    let mut parts = Vec::new();
    if !spec.service_registries.is_empty() {
        parts.push(
            "service registries (the preview's tasks would join the reference's Cloud Map \
             services)"
                .to_owned(),
        );
        spec.service_registries.clear();
    }
    if let Some(sc) = &mut spec.service_connect
        && !sc.services.is_empty()
    {
        let names: Vec<&str> = sc
            .services
            .iter()
            .map(|s| s.discovery_name.as_deref().unwrap_or(s.port_name.as_str()))
            .collect();
        parts.push(format!(
            "Service Connect services {} (the preview would answer the reference's names; it is \
             copied as a Service Connect client only)",
            names.join(", ")
        ));
        sc.services.clear();
    }
    if spec.load_balancers.len() > 1 {
        parts.push(format!(
            "{} more load balancer target groups (the reference's; only the one of container \
             {} is replaced by the environment's)",
            spec.load_balancers.len() - 1,
            target.container_name.as_deref().unwrap_or("?")
        ));
    }
    if let Some(controller) = &spec.deployment_controller
        && controller != "ECS"
    {
        parts.push(format!(
            "deployment controller {controller} (the preview deploys with ECS rolling updates)"
        ));
        spec.deployment_controller = None;
    }
    parts.extend(
        reference
            .unmodelled
            .iter()
            .map(|p| format!("{p} (not copied)")),
    );
    if !parts.is_empty() && !leave_out_uncopyable {
        return Err(Error::ReferenceNotCopyable {
            reference: reference.arn.clone(),
            parts,
        });
    }
    spec.load_balancers = vec![target.clone()];
    if !spec.capacity_provider_strategy.is_empty() {
        spec.launch_type = None;
    }
    // CreateService refuses NONE; leaving it out means the same.
    if spec.propagate_tags.as_deref() == Some("NONE") {
        spec.propagate_tags = None;
    }
    Ok((spec, parts))
}

/// What to do with the environment's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServicePlan {
    /// Create it.
    Create,
    /// Wait until the DRAINING one of the same name is INACTIVE, then create it.
    CreateAfterDraining,
    /// Point it at the new revision; `previous` is its task definition now.
    Update { previous: String },
}

pub(crate) fn service(existing: Option<&Service>, owner: &Owner) -> Result<ServicePlan> {
    match existing {
        None => Ok(ServicePlan::Create),
        Some(s) if s.status == "INACTIVE" => Ok(ServicePlan::Create),
        Some(s) if s.status == "DRAINING" => Ok(ServicePlan::CreateAfterDraining),
        Some(s) => match Verdict::of_tags(&s.tags, owner) {
            Verdict::Ours { .. } => Ok(ServicePlan::Update {
                previous: s.spec.task_definition.clone(),
            }),
            Verdict::Foreign(f) => Err(not_owned(ResourceKind::Service, &s.arn, f)),
        },
    }
}

/// The environment's task definition family must be its own (or not exist yet).
pub(crate) fn family(latest: Option<&TaskDefinition>, owner: &Owner) -> Result<()> {
    match latest {
        None => Ok(()),
        Some(td) => match Verdict::of_tags(&td.tags, owner) {
            Verdict::Ours { .. } => Ok(()),
            Verdict::Foreign(f) => Err(not_owned(ResourceKind::TaskDefinition, &td.arn, f)),
        },
    }
}

/// The reference and environment target groups found in a listing page; `complete` when the
/// page was the last (an absent group is then known to be absent).
pub(crate) struct GroupsFound {
    pub reference: Option<TargetGroup>,
    pub environment: Option<TargetGroup>,
    pub complete: bool,
}

pub(crate) fn find_groups(
    page: &[TargetGroup],
    complete: bool,
    reference_arn: &str,
    name: &str,
) -> GroupsFound {
    GroupsFound {
        reference: page.iter().find(|t| t.arn == reference_arn).cloned(),
        environment: page.iter().find(|t| t.name == name).cloned(),
        complete,
    }
}

/// An existing target group of the environment's name must be its own.
pub(crate) fn target_group(existing: &TargetGroup, tags: &[Tag], owner: &Owner) -> Result<()> {
    match Verdict::of_tags(tags, owner) {
        Verdict::Ours { .. } => Ok(()),
        Verdict::Foreign(f) => Err(not_owned(ResourceKind::TargetGroup, &existing.arn, f)),
    }
}

/// Rules routing `host`.
pub(crate) fn host_rules<'a>(rules: &'a [Rule], host: &str) -> Vec<&'a Rule> {
    rules
        .iter()
        .filter(|r| r.priority.is_some())
        .filter(|r| r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
        .collect()
}

/// What to do with the environment's listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RulePlan {
    /// Create one at the lowest free priority.
    Create { priority: Option<i32> },
    /// It exists as wanted.
    Reuse(Rule),
}

/// Decides on the rule for `host`, given the tags of the rules routing it and the
/// environment's target group (`None` when it does not exist yet).
pub(crate) fn rule(
    rules: &[Rule],
    host: &str,
    target_group: Option<&str>,
    tags: &BTreeMap<String, Vec<Tag>>,
    owner: &Owner,
) -> Result<RulePlan> {
    let routing = host_rules(rules, host);
    let mut ours = None;
    for r in &routing {
        let verdict = match tags.get(&r.arn) {
            Some(t) => Verdict::of_tags(t, owner),
            None => Verdict::Foreign(ForeignOwner::Unrecorded),
        };
        match verdict {
            Verdict::Ours { .. } => ours = ours.or(Some(*r)),
            Verdict::Foreign(f) => return Err(not_owned(ResourceKind::ListenerRule, &r.arn, f)),
        }
    }
    match ours {
        None => Ok(RulePlan::Create {
            priority: priority::choose(&priority::in_use(rules), 0, 0),
        }),
        Some(r) if target_group.is_some_and(|tg| r.target_group_arns.iter().any(|a| a == tg)) => {
            Ok(RulePlan::Reuse(r.clone()))
        }
        Some(r) => Err(Error::Conflict {
            step: Step::ListenerRule,
            resource: r.arn.clone(),
            message: format!(
                "the environment's rule for host {host} forwards to {} instead of its target \
                 group; delete the environment and create it again",
                r.target_group_arns.join(", ")
            ),
        }),
    }
}

/// The alias record the environment wants.
pub(crate) fn wanted_record(host: &str, alb: &LoadBalancer) -> DnsRecord {
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

/// Lowercase, without the trailing dot or ELB's `dualstack.` prefix, for comparing alias targets.
fn normalize_dns(name: &str) -> String {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n.strip_prefix("dualstack.").map(str::to_owned).unwrap_or(n)
}

pub(crate) fn record_matches(have: &DnsRecord, want: &DnsRecord) -> bool {
    match (&have.alias, &want.alias) {
        (Some(h), Some(w)) => {
            normalize_dns(&h.dns_name) == normalize_dns(&w.dns_name)
                && h.hosted_zone_id == w.hosted_zone_id
        }
        _ => false,
    }
}

/// What to do with the environment's DNS record (and its ownership TXT record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DnsPlan {
    /// Create the alias, and the TXT record unless it exists (ours).
    Create { with_txt: bool },
    /// The alias is as wanted.
    Reuse,
    /// Replace our alias (it points elsewhere).
    Update { old: DnsRecord },
}

pub(crate) fn dns(
    a: Option<&DnsRecord>,
    txt: Option<&DnsRecord>,
    wanted: &DnsRecord,
    owner: &Owner,
) -> Result<DnsPlan> {
    match Verdict::of_txt(txt, owner) {
        Verdict::Ours { .. } => Ok(match a {
            None => DnsPlan::Create { with_txt: false },
            Some(have) if record_matches(have, wanted) => DnsPlan::Reuse,
            Some(have) => DnsPlan::Update { old: have.clone() },
        }),
        Verdict::Foreign(_) if a.is_none() && txt.is_none() => {
            Ok(DnsPlan::Create { with_txt: true })
        }
        Verdict::Foreign(f) => Err(not_owned(
            ResourceKind::DnsRecord,
            format!("{} {}", wanted.name, if a.is_some() { "A" } else { "TXT" }),
            f,
        )),
    }
}

/// The records delete removes: ours only.
pub(crate) fn dns_to_delete(
    host: &str,
    a: Option<&DnsRecord>,
    txt: Option<&DnsRecord>,
    owner: &Owner,
) -> Result<Vec<DnsRecord>> {
    if a.is_none() && txt.is_none() {
        return Ok(Vec::new());
    }
    match Verdict::of_txt(txt, owner) {
        Verdict::Ours { .. } => Ok(a.into_iter().chain(txt).cloned().collect()),
        Verdict::Foreign(f) => Err(not_owned(
            ResourceKind::DnsRecord,
            format!("{host} {}", if a.is_some() { "A" } else { "TXT" }),
            f,
        )),
    }
}

/// The endpoints edit of create: the document after it, what it did and the previous value.
pub(crate) fn endpoint_upsert(
    doc: &EndpointsDocument,
    profile: &Profile,
    entry: &str,
    host: &str,
    owner: &Owner,
) -> Result<(EndpointsDocument, Edit, Option<String>)> {
    let mut next = doc.clone();
    let previous = doc
        .get(
            &profile.endpoint_env_type,
            entry,
            &profile.endpoint_update_key,
        )
        .map(str::to_owned);
    let edit = next
        .upsert_owned(
            &profile.endpoint_env_type,
            entry,
            &profile.endpoint_update_key,
            host,
            owner,
        )
        .map_err(|f| {
            not_owned(
                ResourceKind::EndpointsEntry,
                format!("{entry}.{}", profile.endpoint_update_key),
                f,
            )
        })?;
    Ok((next, edit, previous))
}

/// The endpoints edit of delete.
pub(crate) fn endpoint_remove(
    doc: &EndpointsDocument,
    profile: &Profile,
    entry: &str,
    owner: &Owner,
) -> Result<(EndpointsDocument, Edit)> {
    let mut next = doc.clone();
    let edit = next
        .remove_owned(
            &profile.endpoint_env_type,
            entry,
            &profile.endpoint_update_key,
            owner,
        )
        .map_err(|f| {
            not_owned(
                ResourceKind::EndpointsEntry,
                format!("{entry}.{}", profile.endpoint_update_key),
                f,
            )
        })?;
    Ok((next, edit))
}

/// Every revision of the family must be the environment's before delete touches any.
pub(crate) fn revisions(tds: &[TaskDefinition], owner: &Owner) -> Result<()> {
    for td in tds {
        if let Verdict::Foreign(f) = Verdict::of_tags(&td.tags, owner) {
            return Err(not_owned(ResourceKind::TaskDefinition, &td.arn, f));
        }
    }
    Ok(())
}

/// The service delete removes: ours and ACTIVE; `None` when there is nothing to delete.
pub(crate) fn service_to_delete(found: Option<&Service>, owner: &Owner) -> Result<Option<Service>> {
    match found {
        Some(s) if s.status == "ACTIVE" => match Verdict::of_tags(&s.tags, owner) {
            Verdict::Ours { .. } => Ok(Some(s.clone())),
            Verdict::Foreign(f) => Err(not_owned(ResourceKind::Service, &s.arn, f)),
        },
        _ => Ok(None),
    }
}

/// The rules delete removes: those routing the host, or forwarding to the environment's
/// target group; each must be ours. Rules without known tags are returned in `Err(arns)`, to
/// be read first.
pub(crate) fn rules_to_delete<'a>(
    rules: &'a [Rule],
    host: &str,
    target_group: Option<&str>,
    tags: &BTreeMap<String, Vec<Tag>>,
    owner: &Owner,
) -> Result<std::result::Result<Vec<&'a Rule>, Vec<String>>> {
    let ours: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.priority.is_some())
        .filter(|r| {
            r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                || target_group.is_some_and(|tg| r.target_group_arns.iter().any(|a| a == tg))
        })
        .collect();
    let unknown: Vec<String> = ours
        .iter()
        .filter(|r| !tags.contains_key(&r.arn))
        .map(|r| r.arn.clone())
        .collect();
    if !unknown.is_empty() {
        return Ok(Err(unknown));
    }
    for r in &ours {
        if let Verdict::Foreign(f) = Verdict::of_tags(&tags[&r.arn], owner) {
            return Err(not_owned(ResourceKind::ListenerRule, &r.arn, f));
        }
    }
    Ok(Ok(ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parts() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:123456789012:task-definition/web-a:3"),
            "web-a"
        );
        assert_eq!(
            target_group_name_of(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-a/0123"
            ),
            Some("web-a")
        );
    }

    #[test]
    fn dns_decisions() {
        let owner = Owner::new("p", "e");
        let alb = LoadBalancer {
            dns_name: "lb.example.com".into(),
            canonical_hosted_zone_id: "Z1".into(),
            ..LoadBalancer::default()
        };
        let want = wanted_record("h.example.com", &alb);
        let txt = owner.clone().with_run("r").txt_record("h.example.com");
        assert_eq!(
            dns(None, None, &want, &owner).unwrap(),
            DnsPlan::Create { with_txt: true }
        );
        assert_eq!(
            dns(None, Some(&txt), &want, &owner).unwrap(),
            DnsPlan::Create { with_txt: false }
        );
        assert_eq!(
            dns(Some(&want), Some(&txt), &want, &owner).unwrap(),
            DnsPlan::Reuse
        );
        // An A record without an owner record is someone else's.
        assert!(matches!(
            dns(Some(&want), None, &want, &owner),
            Err(Error::NotOwned {
                owner: ForeignOwner::Unrecorded,
                ..
            })
        ));
        let other = Owner::new("q", "e");
        assert!(dns(None, Some(&txt), &want, &other).is_err());
        assert!(dns_to_delete("h.example.com", Some(&want), None, &owner).is_err());
        assert_eq!(
            dns_to_delete("h.example.com", Some(&want), Some(&txt), &owner)
                .unwrap()
                .len(),
            2
        );
    }
}
