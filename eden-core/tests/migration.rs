//! aws-eden-cli 0.1.5's state table: detected (a typed error naming the table and the
//! migration, nothing changed) and copied into eden's layout by `migrate_state`, dry run
//! first, idempotent, never touching the old table or a differing item of the new one; on the
//! in-memory cloud here, on moto in `moto_migration.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use eden_core::cloud::{AttrValue, Item, StateStore, WriteCondition};
use eden_core::environment::{CreateOptions, DeleteOptions};
use eden_core::memory::{MemoryCloud, MemoryOptions};
use eden_core::migration::{ItemStatus, MigrateOptions, migrate_state};
use eden_core::{Environment, Error, Profile, ResourceKind};

fn s(v: &str) -> AttrValue {
    AttrValue::S(v.to_owned())
}

/// A pushed profile as aws-eden-cli 0.1.5 stored it: `create_envvar_dict`'s variable names.
fn profile_json(p: &Profile, zone_name: &str) -> String {
    serde_json::json!({
        "CONFIG_BUCKET": p.endpoint_s3_bucket_name,
        "CONFIG_BUCKET_KEY": p.endpoint_s3_key,
        "CONFIG_NAME_PREFIX": p.endpoint_name_prefix,
        "CONFIG_UPDATE_KEY": p.endpoint_update_key,
        "CONFIG_ENV_TYPE": p.endpoint_env_type,
        "DOMAIN_NAME_PREFIX": p.domain_name_prefix,
        "DYNAMIC_ZONE_ID": p.dynamic_zone_id,
        "DYNAMIC_ZONE_NAME": zone_name,
        "NAME_PREFIX": p.name_prefix,
        "TARGET_CLUSTER": p.target_cluster,
        "TARGET_CONTAINER_NAME": "web",
        "MASTER_ALB_ARN": p.master_alb_arn.arn,
        "REFERENCE_SERVICE_ARN": p.reference_service_arn.arn,
    })
    .to_string()
}

/// The items of a 0.1.5 table: `dynamodb.create_profile` and `dynamodb.put_environment`.
pub fn legacy_items(p: &Profile) -> Vec<Item> {
    let env = |key: &str, endpoint: &str, name: &str| {
        Item::from([
            ("env_name".into(), s(key)),
            ("endpoint".into(), s(endpoint)),
            ("last_updated_time".into(), s("1574246650.179760")),
            ("name".into(), s(name)),
        ])
    };
    vec![
        Item::from([
            ("env_name".into(), s("_profile_default")),
            ("profile".into(), s(&profile_json(p, "dev.example.com."))),
        ]),
        // Hosts under another name than the zone's: eden would move them.
        Item::from([
            ("env_name".into(), s("_profile_moved")),
            ("profile".into(), s(&profile_json(p, "sub.dev.example.com"))),
        ]),
        env(
            "default$web-feature-1",
            "api-feature-1.dev.example.com",
            "web-feature-1",
        ),
        // 0.1.5 took any branch name; eden's are DNS labels.
        env(
            "default$web-Feature_2",
            "api-Feature_2.dev.example.com",
            "web-Feature_2",
        ),
        // No profile to tell the environment name from.
        env(
            "ghost$x-feature-3",
            "api-feature-3.dev.example.com",
            "x-feature-3",
        ),
        Item::from([("env_name".into(), s("stray"))]),
    ]
}

async fn setup() -> (Profile, Arc<MemoryCloud>) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
    memory.create_legacy_table("eden");
    for item in legacy_items(&profile) {
        assert!(memory.put_legacy_item("eden", item));
    }
    (profile, memory)
}

async fn scan(memory: &Arc<MemoryCloud>, table: &str) -> Vec<Item> {
    memory.scan(table, None).await.unwrap().items
}

#[tokio::test]
async fn an_old_table_is_refused_by_name_and_nothing_changes() {
    let (profile, memory) = setup().await;
    let eden = Environment::new(memory.cloud()).with_table("eden");
    let before = memory.inventory();
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
    let errors = [
        eden.list(None).await.unwrap_err(),
        eden.push_profile(&profile).await.unwrap_err(),
        eden.create(&profile, "feature-9", image, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&profile, "feature-1", &DeleteOptions::default())
            .await
            .unwrap_err(),
    ];
    for e in errors {
        assert!(
            matches!(e.root(), Error::LegacyStateTable { table } if table == "eden"),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("state table eden has the aws-eden-cli 0.1.5 layout"),
            "{text}"
        );
        assert!(
            text.contains("eden migrate-state --from eden --to"),
            "{text}"
        );
    }
    assert_eq!(memory.inventory(), before);
}

#[tokio::test]
async fn migrate_dry_run_apply_and_again() {
    let (profile, memory) = setup().await;
    let cloud = memory.cloud();
    let old = scan(&memory, "eden").await;

    let plan = migrate_state(&cloud, "eden", "eden-v2", &MigrateOptions::default())
        .await
        .unwrap();
    assert!(!plan.applied);
    assert!(
        memory.scan("eden-v2", None).await.is_err(),
        "a dry run creates nothing"
    );
    let status = |items: &[eden_core::migration::MigratedItem], key: &str| {
        items
            .iter()
            .find(|i| i.env_name == key)
            .map(|i| i.status.clone())
            .unwrap()
    };
    assert_eq!(
        status(&plan.profiles, "_profile_default"),
        ItemStatus::WouldCopy
    );
    assert!(
        matches!(status(&plan.profiles, "_profile_moved"), ItemStatus::Skipped(why) if why.contains("dynamic_zone_name")),
        "{plan}"
    );
    assert_eq!(
        status(&plan.environments, "default$web-feature-1"),
        ItemStatus::WouldCopy
    );
    assert!(matches!(
        status(&plan.environments, "default$web-Feature_2"),
        ItemStatus::Skipped(_)
    ));
    assert!(
        matches!(status(&plan.environments, "ghost$x-feature-3"), ItemStatus::Skipped(why) if why.contains("ghost"))
    );
    assert!(matches!(
        status(&plan.other, "stray"),
        ItemStatus::Skipped(_)
    ));
    assert!(!plan.is_complete());
    let text = plan.to_string();
    assert!(text.contains("dry run"), "{text}");
    assert!(
        text.contains("environment feature-1 of profile default: would copy"),
        "{text}"
    );

    let options = MigrateOptions::default().apply(true);
    let done = migrate_state(&cloud, "eden", "eden-v2", &options)
        .await
        .unwrap();
    assert_eq!(
        status(&done.profiles, "_profile_default"),
        ItemStatus::Copied
    );
    assert_eq!(
        status(&done.environments, "default$web-feature-1"),
        ItemStatus::Copied
    );

    // eden reads the new table: the profile with its keys mapped, the environment listed.
    let eden = Environment::new(cloud.clone()).with_table("eden-v2");
    let pulled = eden.pull_profile("default").await.unwrap().unwrap();
    assert_eq!(pulled, profile);
    assert!(eden.pull_profile("moved").await.unwrap().is_none());
    let listed = eden.list(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "feature-1");
    assert_eq!(listed[0].endpoint, "api-feature-1.dev.example.com");
    assert_eq!(listed[0].last_updated, 1_574_246_650);

    // Again: idempotent, nothing rewritten.
    let new = scan(&memory, "eden-v2").await;
    let again = migrate_state(&cloud, "eden", "eden-v2", &options)
        .await
        .unwrap();
    assert_eq!(
        status(&again.profiles, "_profile_default"),
        ItemStatus::AlreadyCopied
    );
    assert_eq!(
        status(&again.environments, "default$web-feature-1"),
        ItemStatus::AlreadyCopied
    );
    assert_eq!(scan(&memory, "eden-v2").await, new);
    assert_eq!(
        scan(&memory, "eden").await,
        old,
        "the old table is never changed"
    );

    // Not adopted: its resources carry no eden tags, so create and delete refuse it.
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2";
    let before = memory.inventory();
    for e in [
        eden.create(&profile, "feature-1", image, &CreateOptions::default())
            .await
            .unwrap_err(),
        eden.delete(&profile, "feature-1", &DeleteOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                e.root(),
                Error::NotOwned {
                    kind: ResourceKind::StateItem,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(memory.inventory(), before);
    assert_eq!(eden.list(None).await.unwrap(), listed);
}

#[tokio::test]
async fn a_differing_item_of_the_new_table_is_left_alone() {
    let (profile, memory) = setup().await;
    let cloud = memory.cloud();
    let eden = Environment::new(cloud.clone()).with_table("eden-v2");
    let mut other = profile.clone();
    other.endpoint_env_type = "staging".into();
    eden.push_profile(&other).await.unwrap();
    let mut theirs =
        eden_core::EnvironmentRecord::new("default", "feature-1", "elsewhere.dev.example.com", 7)
            .to_item();
    theirs.insert("run".into(), s("someone"));
    memory
        .put_item("eden-v2", theirs.clone(), WriteCondition::NotExists)
        .await
        .unwrap();
    let done = migrate_state(
        &cloud,
        "eden",
        "eden-v2",
        &MigrateOptions::default().apply(true),
    )
    .await
    .unwrap();
    assert!(
        done.profiles
            .iter()
            .any(|p| p.env_name == "_profile_default"
                && matches!(&p.status, ItemStatus::Skipped(why) if why.contains("different")))
    );
    assert!(
        done.environments
            .iter()
            .any(|p| p.env_name == "default$web-feature-1"
                && matches!(&p.status, ItemStatus::Skipped(why) if why.contains("different")))
    );
    assert_eq!(eden.pull_profile("default").await.unwrap(), Some(other));
    assert_eq!(
        memory
            .get_item("eden-v2", "default", "feature-1")
            .await
            .unwrap(),
        Some(theirs)
    );
}

#[tokio::test]
async fn local_profiles_name_environments_of_unpushed_profiles_and_tables_must_differ() {
    let (profile, memory) = setup().await;
    let cloud = memory.cloud();
    let mut ghost = profile.clone();
    ghost.name = "ghost".into();
    ghost.name_prefix = "x".into();
    let options = MigrateOptions::default().local_profile(ghost);
    let plan = migrate_state(&cloud, "eden", "eden-v2", &options)
        .await
        .unwrap();
    let item = plan
        .environments
        .iter()
        .find(|i| i.env_name == "ghost$x-feature-3")
        .unwrap();
    assert_eq!(item.environment.as_deref(), Some("feature-3"));
    assert_eq!(item.status, ItemStatus::WouldCopy);

    let e = migrate_state(&cloud, "eden", "eden", &options)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must differ"), "{e}");
    // A table already in eden's layout is not a source.
    Environment::new(cloud.clone())
        .with_table("eden-v2")
        .push_profile(&profile)
        .await
        .unwrap();
    let e = migrate_state(&cloud, "eden-v2", "eden-v3", &options)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already has eden's layout"), "{e}");
}
