//! [`ImageRegistry`] in memory: repositories and images by tag or digest.

use async_trait::async_trait;

use super::{MemoryCloud, err};
use crate::cloud::{CloudError, CloudResult, ImageDetails, ImageRegistry, codes};
use crate::image::{EcrImage, ImageSelector};

impl MemoryCloud {
    /// Adds an image to a repository (creating the repository).
    pub fn put_image(&self, image: &EcrImage, digest: &str) {
        let mut w = self.lock();
        let images = w
            .images
            .entry((
                image.registry_id.clone(),
                image.region.clone(),
                image.repository.clone(),
            ))
            .or_default();
        let tags = match &image.selector {
            ImageSelector::Tag(t) => vec![t.clone()],
            ImageSelector::Digest(_) => vec![],
        };
        images.push(ImageDetails {
            digest: digest.to_owned(),
            tags,
        });
    }
}

#[async_trait]
impl ImageRegistry for MemoryCloud {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        let w = self.lock();
        let Some(images) = w.images.get(&(
            image.registry_id.clone(),
            image.region.clone(),
            image.repository.clone(),
        )) else {
            return err(
                codes::REPOSITORY_NOT_FOUND,
                format!(
                    "The repository with name '{}' does not exist in the registry with id '{}'",
                    image.repository, image.registry_id
                ),
            );
        };
        images
            .iter()
            .find(|i| match &image.selector {
                ImageSelector::Tag(t) => i.tags.contains(t),
                ImageSelector::Digest(d) => &i.digest == d,
            })
            .cloned()
            .ok_or_else(|| {
                CloudError::new(
                    codes::IMAGE_NOT_FOUND,
                    format!(
                        "The image with imageId {} does not exist within the repository with name '{}'",
                        image.selector, image.repository
                    ),
                )
            })
    }
}
