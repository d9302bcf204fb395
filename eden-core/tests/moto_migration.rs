//! aws-eden-cli 0.1.5's state table on moto, created and filled as 0.1.5's
//! `dynamodb.create_remote_state_table`, `create_profile` and `put_environment` did: eden
//! refuses it by name through the SDK implementation, and `migrate_state` copies it into a
//! table of eden's layout (dry run, apply, again), leaving the old table as it was.
//!
//! The test command starts moto and exports `BAIKONUR_MOTO_ENDPOINT`; without it this test
//! fails (it never skips).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "aws")]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use eden_core::migration::{ItemStatus, MigrateOptions, migrate_state};
use eden_core::{Environment, Error, Profile};

mod support;

use support::{cloud, sdk_config, unique};

/// aws-eden-cli 0.1.5's `create_remote_state_table`, field for field.
async fn create_legacy_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("env_name"))
        .attribute_definitions(attr("last_updated"))
        .key_schema(key("env_name", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("env_name_last_updated_gsi")
                .key_schema(key("env_name", KeyType::Hash))
                .key_schema(key("last_updated", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

async fn put(client: &aws_sdk_dynamodb::Client, table: &str, pairs: &[(&str, &str)]) {
    let item: HashMap<String, AttributeValue> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
        .collect();
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let out = client.scan().table_name(table).send().await.unwrap();
    // HashMap order varies between reads: compare sorted attributes.
    let mut items: Vec<String> = out
        .items()
        .iter()
        .map(|i| {
            let sorted: std::collections::BTreeMap<_, _> = i
                .iter()
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            format!("{sorted:?}")
        })
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn legacy_table_is_refused_then_migrated() {
    let config = sdk_config().await;
    let id = unique();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let r53 = aws_sdk_route53::Client::new(&config);
    let zone = r53
        .create_hosted_zone()
        .name(format!("mig-{id}.example.com"))
        .caller_reference(format!("mig-{id}"))
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let mut profile = Profile::example();
    profile.dynamic_zone_id = zone_id.clone();

    let old = format!("eden-{id}");
    let new = format!("eden-rs-{id}");
    create_legacy_table(&ddb, &old).await;
    let json = serde_json::json!({
        "CONFIG_BUCKET": profile.endpoint_s3_bucket_name,
        "CONFIG_BUCKET_KEY": profile.endpoint_s3_key,
        "CONFIG_NAME_PREFIX": profile.endpoint_name_prefix,
        "CONFIG_UPDATE_KEY": profile.endpoint_update_key,
        "CONFIG_ENV_TYPE": profile.endpoint_env_type,
        "DOMAIN_NAME_PREFIX": profile.domain_name_prefix,
        "DYNAMIC_ZONE_ID": zone_id,
        "DYNAMIC_ZONE_NAME": format!("mig-{id}.example.com."),
        "NAME_PREFIX": profile.name_prefix,
        "TARGET_CLUSTER": profile.target_cluster,
        "TARGET_CONTAINER_NAME": "web",
        "MASTER_ALB_ARN": profile.master_alb_arn.arn,
        "REFERENCE_SERVICE_ARN": profile.reference_service_arn.arn,
    })
    .to_string();
    put(
        &ddb,
        &old,
        &[("env_name", "_profile_default"), ("profile", &json)],
    )
    .await;
    let host = format!("api-feature-1.mig-{id}.example.com");
    put(
        &ddb,
        &old,
        &[
            ("env_name", "default$web-feature-1"),
            ("last_updated_time", "1574246650.179760"),
            ("endpoint", &host),
            ("name", "web-feature-1"),
        ],
    )
    .await;
    let before = scan(&ddb, &old).await;

    let cloud = cloud(&config);
    let eden = Environment::new(cloud.clone()).with_table(&old);
    for e in [
        eden.list(None).await.unwrap_err(),
        eden.push_profile(&profile).await.unwrap_err(),
    ] {
        assert!(
            matches!(e.root(), Error::LegacyStateTable { table } if *table == old),
            "{e:?}"
        );
        assert!(e.to_string().contains("eden migrate-state"), "{e}");
    }

    let plan = migrate_state(&cloud, &old, &new, &MigrateOptions::default())
        .await
        .unwrap();
    assert!(plan.is_complete(), "{plan}");
    assert!(
        plan.profiles
            .iter()
            .chain(&plan.environments)
            .all(|i| i.status == ItemStatus::WouldCopy),
        "{plan}"
    );
    let options = MigrateOptions::default().apply(true);
    let done = migrate_state(&cloud, &old, &new, &options).await.unwrap();
    assert!(
        done.profiles
            .iter()
            .chain(&done.environments)
            .all(|i| i.status == ItemStatus::Copied),
        "{done}"
    );
    let eden = Environment::new(cloud.clone()).with_table(&new);
    assert_eq!(eden.pull_profile("default").await.unwrap(), Some(profile));
    let listed = eden.list(None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "feature-1");
    assert_eq!(listed[0].endpoint, host);
    assert_eq!(listed[0].last_updated, 1_574_246_650);

    let after_first = scan(&ddb, &new).await;
    let again = migrate_state(&cloud, &old, &new, &options).await.unwrap();
    assert!(
        again
            .profiles
            .iter()
            .chain(&again.environments)
            .all(|i| i.status == ItemStatus::AlreadyCopied),
        "{again}"
    );
    assert_eq!(scan(&ddb, &new).await, after_first);
    assert_eq!(
        scan(&ddb, &old).await,
        before,
        "the old table is never changed"
    );
}
