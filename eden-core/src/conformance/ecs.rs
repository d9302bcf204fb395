//! The [`EcsApi`] suite.

use crate::cloud::{
    ContainerImage, CreateService, EcsApi, RegisterTaskDefinition, ServiceSpec, Tag,
    TaskDefinitionStatus,
};

use super::{Fixture, code, err, not_found, ok, refused};

/// Holds an [`EcsApi`] to what eden relies on:
///
/// * a service that does not exist is `None`; in a cluster that does not exist,
///   `ClusterNotFoundException` (for describe and create);
/// * a task definition registered from another keeps every field, replaces the named
///   container's image, and carries the copied tags with the request's (same key replaced);
///   revisions count up; the latest ACTIVE revision is found with its tags; a family with none
///   is `None`; a container the base lacks is refused, and so is a family over 255 characters
///   or with other characters than letters, digits, `-` and `_`;
/// * listings are of exactly the family (not families it prefixes), by status; deregistering
///   makes a revision INACTIVE; deleting deletes INACTIVE revisions and answers a reason for
///   ACTIVE ones, at most 10 per call;
/// * a service name is held to the same limits as a family; a service is created ACTIVE with
///   its tags, read back with them and its task definition; creating it again is refused
///   (`InvalidParameterException`); updating points it at a new revision with a new primary
///   deployment; deleting (forced) turns it DRAINING or INACTIVE; updating or deleting a
///   service that does not exist is not found (`ServiceNotFoundException`).
pub async fn ecs(api: &dyn EcsApi, f: &Fixture) {
    let u = &f.unique;
    let q = &f.quirks;

    // Not found.
    let what = "DescribeServices of a service that does not exist";
    assert_eq!(
        ok(
            api.describe_service(&f.cluster, &format!("none-{u}")).await,
            what
        ),
        None,
        "{what}"
    );
    let what = "DescribeServices in a cluster that does not exist";
    not_found(
        &err(
            api.describe_service(&format!("no-cluster-{u}"), "x").await,
            what,
        ),
        &["ClusterNotFoundException"],
        what,
    );
    let what = "the latest revision of a family that has none";
    assert_eq!(
        ok(
            api.describe_latest_task_definition(&format!("none-{u}"))
                .await,
            what
        ),
        None,
        "{what}"
    );

    // Task definitions: copied with their tags, revisions count up.
    let base = ok(
        api.describe_task_definition(&f.task_definition).await,
        "DescribeTaskDefinition of the fixture's task definition",
    );
    let family = format!("conformance-{u}");
    let image = "public.ecr.aws/docker/library/busybox:latest";
    let register = |family: &str, tags: Vec<Tag>| RegisterTaskDefinition {
        base: f.task_definition.clone(),
        family: family.to_owned(),
        images: vec![ContainerImage {
            name: f.container.clone(),
            image: image.to_owned(),
        }],
        tags,
    };
    let what = "RegisterTaskDefinition copied from the fixture's";
    let first = ok(
        api.register_task_definition(register(&family, vec![Tag::new("eden:run", "1")]))
            .await,
        what,
    );
    assert_eq!(
        (first.family.as_str(), first.revision, first.status.as_str()),
        (family.as_str(), 1, "ACTIVE"),
        "{what}"
    );
    let described = ok(
        api.describe_task_definition(&first.arn).await,
        "DescribeTaskDefinition of the copy",
    );
    let container = described
        .containers
        .iter()
        .find(|c| c.name == f.container)
        .unwrap_or_else(|| panic!("{what}: container {} missing", f.container));
    assert_eq!(container.image, image, "{what}: the image is replaced");
    assert_eq!(
        described.containers.len(),
        base.containers.len(),
        "{what}: every container is kept"
    );
    assert_eq!(
        (
            &described.network_mode,
            &described.cpu,
            &described.memory,
            &described.execution_role_arn
        ),
        (
            &base.network_mode,
            &base.cpu,
            &base.memory,
            &base.execution_role_arn
        ),
        "{what}: the settings are copied"
    );
    assert!(
        described.tags.contains(&Tag::new("eden:run", "1")),
        "{what}: tags read back, got {:?}",
        described.tags
    );
    for tag in &base.tags {
        assert!(
            described.tags.contains(tag),
            "{what}: the base's tag {tag:?} is copied, got {:?}",
            described.tags
        );
    }
    let what = "a second revision, its tag replacing the copied one of the same key";
    let second = ok(
        api.register_task_definition(register(&family, vec![Tag::new("eden:run", "2")]))
            .await,
        what,
    );
    assert_eq!(second.revision, 2, "{what}");
    let latest = ok(
        api.describe_latest_task_definition(&family).await,
        "the latest revision",
    )
    .unwrap_or_else(|| panic!("the latest revision of {family}: none"));
    assert_eq!(latest.arn, second.arn, "the latest revision");
    assert!(
        latest.tags.contains(&Tag::new("eden:run", "2"))
            && !latest.tags.contains(&Tag::new("eden:run", "1")),
        "the latest revision carries its own tags: {:?}",
        latest.tags
    );
    let what = "RegisterTaskDefinition naming a container the base lacks";
    let mut bad = register(&format!("{family}-bad"), vec![]);
    bad.images[0].name = format!("none-{u}");
    refused(&err(api.register_task_definition(bad).await, what), what);
    for (family, why) in [
        (format!("c{u}-{}", "f".repeat(255)), "over 255 characters"),
        (format!("c{u}.x"), "a dot"),
    ] {
        let what = format!("RegisterTaskDefinition of a family with {why}");
        match api
            .register_task_definition(register(&family, vec![]))
            .await
        {
            Ok(td) if q.ecs_names_unchecked => {
                let _ = api.deregister_task_definition(&td.arn).await;
                let _ = api.delete_task_definitions(&[td.arn]).await;
            }
            other => refused(&err(other, &what), &what),
        }
    }

    // Listings are of exactly the family.
    let other = ok(
        api.register_task_definition(register(&format!("{family}-x"), vec![]))
            .await,
        "RegisterTaskDefinition of a family the first prefixes",
    );
    let what = "ListTaskDefinitions of one family";
    let active = ok(
        api.list_task_definitions(&family, TaskDefinitionStatus::Active)
            .await,
        what,
    );
    assert_eq!(
        sorted(active),
        sorted(vec![first.arn.clone(), second.arn.clone()]),
        "{what}: exactly the family's, not {}-x's",
        family
    );

    // Deregister, then delete.
    ok(
        api.deregister_task_definition(&first.arn).await,
        "DeregisterTaskDefinition",
    );
    let what = "ListTaskDefinitions after a deregistration";
    assert_eq!(
        ok(
            api.list_task_definitions(&family, TaskDefinitionStatus::Active)
                .await,
            what
        ),
        vec![second.arn.clone()],
        "{what}: ACTIVE"
    );
    assert_eq!(
        ok(
            api.list_task_definitions(&family, TaskDefinitionStatus::Inactive)
                .await,
            what
        ),
        vec![first.arn.clone()],
        "{what}: INACTIVE"
    );
    assert_eq!(
        ok(api.describe_task_definition(&first.arn).await, what).status,
        "INACTIVE",
        "{what}: the revision's status"
    );
    let what = "DeleteTaskDefinitions of an INACTIVE and an ACTIVE revision";
    let failures = ok(
        api.delete_task_definitions(&[first.arn.clone(), second.arn.clone()])
            .await,
        what,
    );
    let failed: Vec<&String> = failures.iter().map(|(arn, _)| arn).collect();
    assert_eq!(
        failed,
        vec![&second.arn],
        "{what}: only the ACTIVE one fails, with a reason: {failures:?}"
    );
    let what = "DeleteTaskDefinitions of 11 revisions";
    let eleven = vec![first.arn.clone(); 11];
    refused(&err(api.delete_task_definitions(&eleven).await, what), what);
    let what = "ListTaskDefinitions after a delete";
    assert!(
        !ok(
            api.list_task_definitions(&family, TaskDefinitionStatus::Inactive)
                .await,
            what
        )
        .contains(&first.arn),
        "{what}: the deleted revision is not INACTIVE any more"
    );

    // Services.
    let name = format!("conformance-{u}");
    let spec = ServiceSpec {
        task_definition: second.arn.clone(),
        desired_count: 1,
        launch_type: f.launch_type.clone(),
        network_configuration: f.network.clone(),
        ..ServiceSpec::default()
    };
    let create = |cluster: &str| CreateService {
        cluster: cluster.to_owned(),
        name: name.clone(),
        spec: spec.clone(),
        tags: vec![Tag::new("eden:environment", u)],
    };
    let what = "CreateService in a cluster that does not exist";
    not_found(
        &err(
            api.create_service(create(&format!("no-cluster-{u}"))).await,
            what,
        ),
        &["ClusterNotFoundException"],
        what,
    );
    for (bad, why) in [
        (format!("c{u}-{}", "s".repeat(255)), "over 255 characters"),
        (format!("c{u}.x"), "a dot"),
    ] {
        let what = format!("CreateService of a name with {why}");
        let request = CreateService {
            name: bad.clone(),
            ..create(&f.cluster)
        };
        match api.create_service(request).await {
            Ok(_) if q.ecs_names_unchecked => {
                let _ = api.delete_service(&f.cluster, &bad, true).await;
            }
            other => refused(&err(other, &what), &what),
        }
    }
    let what = "CreateService";
    let created = ok(api.create_service(create(&f.cluster)).await, what);
    assert_eq!(
        (created.name.as_str(), created.status.as_str()),
        (name.as_str(), "ACTIVE"),
        "{what}"
    );
    let what = "DescribeServices of the new service";
    let found = ok(api.describe_service(&f.cluster, &name).await, what)
        .unwrap_or_else(|| panic!("{what}: not found"));
    assert_eq!(found.arn, created.arn, "{what}");
    assert_eq!(found.spec.task_definition, second.arn, "{what}");
    assert!(
        found
            .tags
            .contains(&Tag::new("eden:environment", u.as_str())),
        "{what}: tags read back, got {:?}",
        found.tags
    );
    let what = "CreateService with the name of an ACTIVE service";
    match api.create_service(create(&f.cluster)).await {
        Ok(_) if q.duplicate_service_accepted => {}
        other => code(&err(other, what), &["InvalidParameterException"], what),
    }
    let third = ok(
        api.register_task_definition(register(&family, vec![]))
            .await,
        "RegisterTaskDefinition of a third revision",
    );
    let what = "UpdateService to a new revision";
    let updated = ok(
        api.update_service(&f.cluster, &name, &third.arn, true)
            .await,
        what,
    );
    assert_eq!(updated.spec.task_definition, third.arn, "{what}");
    let primary = updated
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .unwrap_or_else(|| panic!("{what}: no PRIMARY deployment"));
    if !q.update_starts_no_deployment {
        assert_eq!(
            primary.task_definition, third.arn,
            "{what}: a new primary deployment"
        );
    }
    let what = "UpdateService of a service that does not exist";
    not_found(
        &err(
            api.update_service(&f.cluster, &format!("none-{u}"), &third.arn, true)
                .await,
            what,
        ),
        &["ServiceNotFoundException"],
        what,
    );
    let what = "DeleteService (forced)";
    let deleted = ok(api.delete_service(&f.cluster, &name, true).await, what);
    assert!(
        ["DRAINING", "INACTIVE"].contains(&deleted.status.as_str()),
        "{what}: status {}",
        deleted.status
    );
    let what = "DescribeServices after the delete";
    if let Some(s) = ok(api.describe_service(&f.cluster, &name).await, what) {
        assert!(
            ["DRAINING", "INACTIVE"].contains(&s.status.as_str()),
            "{what}: status {}",
            s.status
        );
    }
    let what = "DeleteService of a service that does not exist";
    not_found(
        &err(
            api.delete_service(&f.cluster, &format!("none-{u}"), true)
                .await,
            what,
        ),
        &["ServiceNotFoundException"],
        what,
    );

    // Clean up the revisions (the first is deleted already).
    for td in [&second, &third, &other] {
        let _ = api.deregister_task_definition(&td.arn).await;
    }
    let _ = api
        .delete_task_definitions(&[second.arn.clone(), third.arn.clone(), other.arn.clone()])
        .await;
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
