//! Mocking one cloud trait the way a downstream crate would (feature `mock`, public API only):
//! the in-memory cloud serves five services, and a mockall double of [`ImageRegistry`] answers
//! the image check, so a test can script registry answers that are hard to provoke for real
//! and assert exactly which calls eden made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use eden_core::cloud::{CloudError, ImageDetails, MockImageRegistry, codes};
use eden_core::image::ImageSelector;
use eden_core::memory::MemoryCloud;
use eden_core::{Action, CreateOptions, Environment, Error, ErrorClass, Profile, ResourceKind};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";

/// The in-memory cloud with `registry` in place of its image registry.
fn environment(registry: MockImageRegistry) -> (Profile, Arc<MemoryCloud>, Environment) {
    let profile = Profile::example();
    let memory = MemoryCloud::with_reference(&profile, Default::default());
    let mut cloud = memory.cloud();
    cloud.images = Arc::new(registry);
    let eden = Environment::new(cloud).with_poll_interval(Duration::from_millis(1));
    (profile, memory, eden)
}

#[tokio::test]
async fn a_missing_image_is_refused_before_anything_is_created() {
    let mut registry = MockImageRegistry::new();
    registry
        .expect_describe_image()
        .withf(|image| {
            image.repository == "web"
                && image.region == "us-east-1"
                && image.selector == ImageSelector::Tag("v1".into())
        })
        .times(1)
        .returning(|_| {
            Err(CloudError::new(
                codes::IMAGE_NOT_FOUND,
                "The image with imageId {imageTag:'v1'} does not exist",
            )
            .with_status(Some(400)))
        });
    let (profile, memory, eden) = environment(registry);
    let before = memory.inventory();

    let e = eden
        .create(&profile, "feature-1", IMAGE, &CreateOptions::default())
        .await
        .unwrap_err();

    match &e {
        Error::ImageNotFound { image, code, .. } => {
            assert_eq!(image, IMAGE);
            assert_eq!(code, codes::IMAGE_NOT_FOUND);
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Invalid);
    assert_eq!(memory.inventory(), before, "nothing created");
    // The mock checks `times(1)` when it is dropped with the environment.
}

#[tokio::test]
async fn a_throttled_registry_is_retryable_not_the_callers_fault() {
    let mut registry = MockImageRegistry::new();
    registry.expect_describe_image().returning(|_| {
        Err(CloudError::new("ThrottlingException", "Rate exceeded").with_status(Some(400)))
    });
    let (profile, memory, eden) = environment(registry);
    let before = memory.inventory();

    let e = eden
        .create(&profile, "feature-1", IMAGE, &CreateOptions::default())
        .await
        .unwrap_err();

    assert_eq!(e.class(), ErrorClass::Unavailable, "{e}");
    assert_eq!(memory.inventory(), before, "nothing created");
}

#[tokio::test]
async fn a_found_image_is_checked_once_and_the_environment_created() {
    let mut registry = MockImageRegistry::new();
    registry
        .expect_describe_image()
        .withf(|image| image.repository == "web")
        .times(1)
        .returning(|_| {
            Ok(ImageDetails {
                digest: format!("sha256:{}", "ab".repeat(32)),
                tags: vec!["v1".into()],
            })
        });
    let (profile, _memory, eden) = environment(registry);

    let created = eden
        .create(&profile, "feature-1", IMAGE, &CreateOptions::default())
        .await
        .unwrap();

    assert_eq!(
        created.resource(ResourceKind::Image).map(|r| r.action),
        Some(Action::Checked)
    );
    assert_eq!(
        created.resource(ResourceKind::Service).map(|r| r.action),
        Some(Action::Created)
    );
}
