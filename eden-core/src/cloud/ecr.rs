//! Amazon ECR: the image check before anything is created ([`ImageRegistry`]).

use async_trait::async_trait;

use super::CloudResult;
use crate::image::EcrImage;

/// A found image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageDetails {
    /// Its digest.
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// A container image registry (Amazon ECR).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ImageRegistry: Send + Sync {
    /// Describes one image in the image's own region; `ImageNotFoundException` or
    /// `RepositoryNotFoundException` when absent.
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails>;
}
