//! Remote profiles and the HTTP API handler on the AWS SDK implementations against a moto
//! server: push, list, pull and remove profiles (with table auto-creation), and create/delete
//! through the handler.
//!
//! The test command starts moto and exports `BAIKONUR_MOTO_ENDPOINT`; without it these tests
//! fail (they never skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "aws")]

use std::time::Duration;

use eden_core::http_api::{ApiHandler, ApiKeys, ApiRequest};
use eden_core::remote::{RemoteError, RemoteProfiles};
use eden_core::{Environment, Profile, config_file};

mod support;

use support::{cloud, sdk_config, setup, unique};

#[tokio::test]
async fn remote_profiles_push_list_pull_remove_on_moto() {
    let config = sdk_config().await;
    let id = unique();
    let table = format!("eden-remote-{id}");
    let remote = RemoteProfiles::new(cloud(&config))
        .with_table(&table)
        .with_table_timeout(Duration::from_secs(60));
    // No table yet: listing and pulling find nothing, push creates it.
    assert!(remote.list().await.unwrap().is_empty());
    assert!(matches!(
        remote.pull("default").await,
        Err(RemoteError::NotFound { .. })
    ));
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let dir = std::env::temp_dir().join(format!("eden-moto-remote-{id}"));
    let path = dir.join("config");
    let mut dev = Profile::example();
    dev.name = "dev".into();
    config_file::update(&path, |f| {
        f.set_profile(&Profile::example());
        f.set_profile(&dev);
        Ok(())
    })
    .unwrap();
    remote.push_from_file(&path, "default").await.unwrap();
    remote.push(&dev).await.unwrap();
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    assert_eq!(
        t.table_status(),
        Some(&aws_sdk_dynamodb::types::TableStatus::Active)
    );
    assert_eq!(
        t.global_secondary_indexes()[0].index_name(),
        Some("kind_last_updated_gsi")
    );

    // An environment recorded for a profile shows up under it with endpoint and time.
    let record =
        eden_core::EnvironmentRecord::new("dev", "one", "api-one.dev.example.com", 1_700_000_000);
    eden_core::cloud::StateStore::put_item(
        &*cloud(&config).state,
        &table,
        record.to_item(),
        eden_core::cloud::WriteCondition::None,
    )
    .await
    .unwrap();
    let listed = remote.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["default", "dev"]);
    assert_eq!(listed[1].environments, [record]);

    let pulled_path = dir.join("pulled");
    let pulled = remote
        .pull_to_file("dev", &pulled_path, Some("local-dev"))
        .await
        .unwrap();
    assert_eq!(pulled.name, "local-dev");
    let mut expected = dev.clone();
    expected.name = "local-dev".into();
    assert_eq!(
        config_file::load_profile(&pulled_path, "local-dev").unwrap(),
        expected
    );

    assert!(remote.remove("default").await.unwrap());
    assert!(!remote.remove("default").await.unwrap());
    let names: Vec<String> = remote
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["dev"]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn api_handler_create_and_delete_on_moto() {
    let config = sdk_config().await;
    let id = unique();
    let w = setup(&config, &id).await;
    let table = format!("eden-api-{id}");
    let c = cloud(&config);
    RemoteProfiles::new(c.clone())
        .with_table(&table)
        .push(&w.profile)
        .await
        .unwrap();
    let api = ApiHandler::new(c.clone(), ApiKeys::new(["moto-key"])).with_table(&table);
    let create = ApiRequest::new("GET", "/api/v1/create")
        .header("x-api-key", "moto-key")
        .query("profile", &w.profile.name)
        .query("name", "one")
        .query("image_uri", &w.image_v1);
    let r = api.handle(&create).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let host = format!("api-one.{id}.example.com");
    assert_eq!(r.body["endpoint"], host.as_str());
    let eden = Environment::new(c.clone()).with_table(&table);
    assert_eq!(eden.list(Some(&w.profile.name)).await.unwrap().len(), 1);

    // Missing image: checked with ECR on moto, refused as a bad parameter.
    let missing = create
        .clone()
        .query("name", "two")
        .query("image_uri", w.image_v1.replace(":v1", ":nope"));
    let r = api.handle(&missing).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["aws_error_code"], "ImageNotFoundException");

    let delete = ApiRequest::new("POST", "/api/v1/delete")
        .header("x-api-key", "moto-key")
        .query("profile", &w.profile.name)
        .query("name", "one");
    let r = api.handle(&delete).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(eden.list(None).await.unwrap().is_empty());
    let r = api.handle(&delete.clone().query("profile", "nobody")).await;
    assert_eq!(r.status, 404, "{}", r.body);
}
