//! The [`LoadBalancerApi`] suite.

use std::collections::BTreeMap;

use crate::cloud::{
    CreateRule, CreateTargetGroup, LoadBalancerApi, Rule, Tag, TargetGroup, TargetGroupSpec, codes,
};

use super::{Fixture, code, err, not_found, ok, refused};

/// Rules the suite creates (more than one page of the in-memory cloud's smallest pages).
const RULES: i32 = 12;

/// Holds a [`LoadBalancerApi`] to what eden relies on:
///
/// * a load balancer that does not exist is `LoadBalancerNotFound`; its listeners are listed;
/// * target group names longer than 32 characters, or starting with a hyphen, are refused as
///   the caller's error;
/// * a target group is created with its tags, found by name and by ARN (`None` when missing),
///   listed across pages, and its attributes read and changed; creating it again with the same
///   settings answers the same group (AWS is idempotent), with other settings
///   `DuplicateTargetGroupName`;
/// * a rule is created with its tags and read back (priority, host, target group); a taken
///   priority is `PriorityInUse`; a host over 128 characters is refused; a target group used by a rule cannot be deleted
///   (`ResourceInUse`); every rule is listed exactly once across the pages, with the default
///   rule (no priority);
/// * tags of a target group or a rule that does not exist are not found; deleting a rule twice
///   is `RuleNotFound`; a deleted target group is `None`.
pub async fn elb(api: &dyn LoadBalancerApi, f: &Fixture) {
    let u = &f.unique;
    let q = &f.quirks;

    let what = "DescribeLoadBalancers of one that does not exist";
    let missing_lb = f.load_balancer.replace(
        f.load_balancer
            .rsplit('/')
            .next()
            .unwrap_or(&f.load_balancer),
        "0000000000000000",
    );
    not_found(
        &err(api.describe_load_balancer(&missing_lb).await, what),
        &["LoadBalancerNotFound"],
        what,
    );
    let lb = ok(
        api.describe_load_balancer(&f.load_balancer).await,
        "DescribeLoadBalancers",
    );
    let what = "DescribeListeners";
    let listeners = ok(api.describe_listeners(&f.load_balancer).await, what);
    assert!(
        listeners.iter().any(|l| l.arn == f.listener),
        "{what}: the fixture's listener is listed, got {listeners:?}"
    );

    let spec = TargetGroupSpec {
        protocol: Some("HTTP".into()),
        port: Some(8080),
        vpc_id: Some(lb.vpc_id.clone()),
        target_type: Some("ip".into()),
        ..TargetGroupSpec::default()
    };
    let create = |name: String, spec: &TargetGroupSpec| CreateTargetGroup {
        name,
        spec: spec.clone(),
        tags: vec![Tag::new("eden:environment", u.as_str())],
    };

    // Name limits.
    for (name, why) in [
        (format!("a{}", "b".repeat(32)), "33 characters"),
        (format!("-c{u}"), "a leading hyphen"),
        (format!("c{u}_x"), "an underscore"),
    ] {
        let what = format!("CreateTargetGroup with {why}");
        refused(
            &err(api.create_target_group(create(name, &spec)).await, &what),
            &what,
        );
    }

    // A target group, its tags and attributes.
    let name = format!("conformance-{u}");
    let what = "CreateTargetGroup";
    let tg = ok(
        api.create_target_group(create(name.clone(), &spec)).await,
        what,
    );
    assert_eq!(tg.name, name, "{what}");
    let what = "DescribeTargetGroups by name";
    let by_name = ok(api.describe_target_group_by_name(&name).await, what)
        .unwrap_or_else(|| panic!("{what}: not found"));
    assert_eq!(by_name.arn, tg.arn, "{what}");
    assert_eq!(
        (
            &by_name.spec.protocol,
            by_name.spec.port,
            &by_name.spec.vpc_id,
            &by_name.spec.target_type
        ),
        (&spec.protocol, spec.port, &spec.vpc_id, &spec.target_type),
        "{what}: the settings read back"
    );
    let what = "DescribeTargetGroups by ARN";
    assert_eq!(
        ok(api.describe_target_group(&tg.arn).await, what).map(|t| t.arn),
        Some(tg.arn.clone()),
        "{what}"
    );
    let what = "DescribeTargetGroups of a name that does not exist";
    assert_eq!(
        ok(
            api.describe_target_group_by_name(&format!("none-{u}"))
                .await,
            what
        ),
        None,
        "{what}"
    );
    let what = "DescribeTags of the target group";
    let tags = ok(api.describe_tags(std::slice::from_ref(&tg.arn)).await, what);
    assert!(
        tags.get(&tg.arn)
            .is_some_and(|t| t.contains(&Tag::new("eden:environment", u.as_str()))),
        "{what}: got {tags:?}"
    );
    let what = "DescribeTargetGroupAttributes";
    let attributes = ok(api.target_group_attributes(&tg.arn).await, what);
    assert_eq!(
        attributes
            .get("deregistration_delay.timeout_seconds")
            .map(String::as_str),
        Some("300"),
        "{what}: AWS's default"
    );
    let what = "ModifyTargetGroupAttributes";
    ok(
        api.modify_target_group_attributes(
            &tg.arn,
            &BTreeMap::from([(
                "deregistration_delay.timeout_seconds".to_owned(),
                "30".to_owned(),
            )]),
        )
        .await,
        what,
    );
    assert_eq!(
        ok(api.target_group_attributes(&tg.arn).await, what)
            .get("deregistration_delay.timeout_seconds")
            .map(String::as_str),
        Some("30"),
        "{what}: read back"
    );
    let what = "CreateTargetGroup with the name and settings of an existing group";
    match api.create_target_group(create(name.clone(), &spec)).await {
        Ok(same) => assert_eq!(same.arn, tg.arn, "{what}: the existing group"),
        Err(e) if q.duplicate_target_group_refused => {
            code(&e, &[codes::DUPLICATE_TARGET_GROUP_NAME], what);
        }
        Err(e) => panic!("{what}: AWS answers the existing group, got {e}"),
    }
    let what = "CreateTargetGroup with the name of an existing group and other settings";
    let other = TargetGroupSpec {
        port: Some(8081),
        ..spec.clone()
    };
    code(
        &err(
            api.create_target_group(create(name.clone(), &other)).await,
            what,
        ),
        &[codes::DUPLICATE_TARGET_GROUP_NAME],
        what,
    );
    let what = "DescribeTargetGroups, every page";
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let page = ok(api.list_target_groups(marker).await, what);
        listed.extend(page.items);
        match page.next {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!(
        listed.iter().filter(|t| t.arn == tg.arn).count(),
        1,
        "{what}: the new group once"
    );
    assert_unique(listed.iter().map(|t: &TargetGroup| t.arn.as_str()), what);

    // Rules.
    let rule = |priority: i32, i: i32| CreateRule {
        listener_arn: f.listener.clone(),
        priority,
        host: format!("h{i}-{u}.example.com"),
        target_group_arn: tg.arn.clone(),
        tags: vec![Tag::new("eden:environment", u.as_str())],
    };
    let base = first_free_block(api, &f.listener, RULES + 1).await;
    let mut rules = Vec::new();
    for i in 0..RULES {
        let what = format!("CreateRule at priority {}", base + i);
        let created = ok(api.create_rule(rule(base + i, i)).await, &what);
        assert_eq!(
            (created.priority, created.hosts.clone()),
            (Some(base + i), vec![format!("h{i}-{u}.example.com")]),
            "{what}"
        );
        rules.push(created);
    }
    let what = "CreateRule at a priority in use";
    code(
        &err(api.create_rule(rule(base, RULES)).await, what),
        &[codes::PRIORITY_IN_USE],
        what,
    );
    let what = "CreateRule with a host over 128 characters";
    let long = CreateRule {
        // Two 60-character labels: a valid DNS name, too long for a host condition.
        host: format!("{0}.{0}.{u}.example.com", "h".repeat(60)),
        ..rule(base + RULES, RULES)
    };
    refused(&err(api.create_rule(long).await, what), what);
    let what = "DescribeTags of a rule";
    let tags = ok(
        api.describe_tags(std::slice::from_ref(&rules[0].arn)).await,
        what,
    );
    assert!(
        tags.get(&rules[0].arn)
            .is_some_and(|t| t.contains(&Tag::new("eden:environment", u.as_str()))),
        "{what}: got {tags:?}"
    );
    let what = "DeleteTargetGroup while a rule forwards to it";
    code(
        &err(api.delete_target_group(&tg.arn).await, what),
        &[codes::RESOURCE_IN_USE],
        what,
    );
    let what = "DescribeRules, every page";
    let all = all_rules(api, &f.listener, what).await;
    assert_unique(all.iter().map(|r| r.arn.as_str()), what);
    for created in &rules {
        let found = all
            .iter()
            .find(|r| r.arn == created.arn)
            .unwrap_or_else(|| panic!("{what}: {} not listed", created.arn));
        assert_eq!(
            (&found.priority, &found.hosts, &found.target_group_arns),
            (&created.priority, &created.hosts, &vec![tg.arn.clone()]),
            "{what}: read back"
        );
    }
    assert_eq!(
        all.iter().filter(|r| r.priority.is_none()).count(),
        1,
        "{what}: the default rule, without a priority"
    );

    // Clean up, and what is gone is not found.
    for r in &rules {
        ok(api.delete_rule(&r.arn).await, "DeleteRule");
    }
    let what = "DeleteRule of a deleted rule";
    match api.delete_rule(&rules[0].arn).await {
        Ok(()) if q.missing_rule_delete_succeeds => {}
        other => not_found(&err(other, what), &["RuleNotFound"], what),
    }
    ok(api.delete_target_group(&tg.arn).await, "DeleteTargetGroup");
    let what = "DescribeTargetGroups of a deleted group";
    assert_eq!(
        ok(api.describe_target_group_by_name(&name).await, what),
        None,
        "{what}: by name"
    );
    assert_eq!(
        ok(api.describe_target_group(&tg.arn).await, what),
        None,
        "{what}: by ARN"
    );
    let what = "DescribeTags of a deleted target group";
    match api.describe_tags(std::slice::from_ref(&tg.arn)).await {
        Ok(_) if q.deleted_target_group_tags_kept => {}
        other => not_found(&err(other, what), &["TargetGroupNotFound"], what),
    }
}

/// Every rule of a listener, following the pages.
async fn all_rules(api: &dyn LoadBalancerApi, listener: &str, what: &str) -> Vec<Rule> {
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let page = ok(api.describe_rules(listener, marker).await, what);
        all.extend(page.items);
        match page.next {
            Some(next) => marker = Some(next),
            None => return all,
        }
    }
}

/// The lowest priority from which `len` priorities are free on the listener.
async fn first_free_block(api: &dyn LoadBalancerApi, listener: &str, len: i32) -> i32 {
    let used: Vec<i32> = all_rules(api, listener, "DescribeRules")
        .await
        .iter()
        .filter_map(|r| r.priority)
        .collect();
    let mut start = 100;
    while used.iter().any(|p| (start..start + len).contains(p)) {
        start += len;
    }
    start
}

#[track_caller]
fn assert_unique<'a>(ids: impl Iterator<Item = &'a str>, what: &str) {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        assert!(seen.insert(id), "{what}: {id} listed twice");
    }
}
