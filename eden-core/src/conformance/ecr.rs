//! The [`ImageRegistry`] suite.

use crate::cloud::{ImageRegistry, codes};
use crate::image::{EcrImage, ImageSelector};

use super::{Fixture, not_found, ok};

/// Holds an [`ImageRegistry`] to what eden relies on: an image is found by tag (with its digest
/// and tags) and by digest; a tag the repository lacks is `ImageNotFoundException`, a repository
/// that does not exist `RepositoryNotFoundException`, both "not found" and the caller's.
pub async fn ecr(api: &dyn ImageRegistry, f: &Fixture) {
    let u = &f.unique;
    let ImageSelector::Tag(tag) = &f.image.selector else {
        panic!("the fixture's image must be named by a tag");
    };
    let what = "DescribeImages by tag";
    let found = ok(api.describe_image(&f.image).await, what);
    assert!(
        found.digest.starts_with("sha256:") && found.digest.len() == 71,
        "{what}: a sha256 digest, got {:?}",
        found.digest
    );
    assert!(
        found.tags.contains(tag),
        "{what}: its tags, got {:?}",
        found.tags
    );
    let what = "DescribeImages by digest";
    let by_digest = EcrImage {
        selector: ImageSelector::Digest(found.digest.clone()),
        ..f.image.clone()
    };
    assert_eq!(
        ok(api.describe_image(&by_digest).await, what).digest,
        found.digest,
        "{what}"
    );
    let what = "DescribeImages of a tag the repository lacks";
    let missing_tag = EcrImage {
        selector: ImageSelector::Tag(format!("none-{u}")),
        ..f.image.clone()
    };
    match api.describe_image(&missing_tag).await {
        Ok(i) => panic!("{what}: found {i:?}"),
        Err(e) => not_found(&e, &[codes::IMAGE_NOT_FOUND], what),
    }
    let what = "DescribeImages in a repository that does not exist";
    let missing_repo = EcrImage {
        repository: format!("none-{u}"),
        ..f.image.clone()
    };
    match api.describe_image(&missing_repo).await {
        Ok(i) => panic!("{what}: found {i:?}"),
        Err(e) => not_found(&e, &[codes::REPOSITORY_NOT_FOUND], what),
    }
}
