//! [`LoadBalancerApi`] in memory: target group name rules, `DuplicateTargetGroupName` (and the
//! existing group for identical settings), `PriorityInUse`, `ResourceInUse`, the per-ALB
//! quotas, tags, paginated `DescribeRules` and `DescribeTargetGroups`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MemRule, MemTargetGroup, MemoryCloud, World, err, paginate};
use crate::cloud::{
    CloudError, CloudResult, CreateRule, CreateTargetGroup, Listener, LoadBalancer,
    LoadBalancerApi, Page, Rule, Tag, TargetGroup, codes,
};
use crate::name_rules;

impl MemoryCloud {
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

    pub(super) fn alb_of_listener(w: &World, listener: &str) -> Option<String> {
        w.listeners.get(listener).map(|(lb, _)| lb.clone())
    }

    pub(super) fn target_group_lbs(w: &World, tg_arn: &str) -> Vec<String> {
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

    pub(super) fn with_lbs(w: &World, tg: &MemTargetGroup) -> TargetGroup {
        let mut group = tg.group.clone();
        group.load_balancer_arns = Self::target_group_lbs(w, &group.arn);
        group
    }
}

pub(super) fn valid_target_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > name_rules::MAX_TARGET_GROUP_NAME_LEN {
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
        if request.host.chars().count() > crate::name_rules::MAX_HOST_HEADER_LEN {
            return err(
                "ValidationError",
                "A host-header condition value can be at most 128 characters long",
            );
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
