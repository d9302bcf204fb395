//! [`ImageRegistry`] on `aws-sdk-ecr`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_types::SdkConfig;
use aws_types::region::Region;

use super::error::map_sdk_error;
use crate::cloud::{CloudError, CloudResult, ImageDetails, ImageRegistry, codes};
use crate::image::{EcrImage, ImageSelector};

/// [`ImageRegistry`] on `aws-sdk-ecr`, asking each image's own region.
#[derive(Debug)]
pub struct AwsEcr {
    config: SdkConfig,
    /// One client per region, reused so connections are too.
    clients: std::sync::Mutex<HashMap<String, aws_sdk_ecr::Client>>,
}

impl AwsEcr {
    /// Clients are built from this configuration, with the region of each image.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_ecr::config::Builder::from(&self.config)
                    .region(Region::new(region.to_owned()))
                    .build();
                aws_sdk_ecr::Client::from_conf(conf)
            })
            .clone()
    }
}

#[async_trait]
impl ImageRegistry for AwsEcr {
    async fn describe_image(&self, image: &EcrImage) -> CloudResult<ImageDetails> {
        use aws_sdk_ecr::types::ImageIdentifier;
        let client = self.client(&image.region);
        let id = match &image.selector {
            ImageSelector::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
            ImageSelector::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
        };
        let out = client
            .describe_images()
            .registry_id(&image.registry_id)
            .repository_name(&image.repository)
            .image_ids(id)
            .send()
            .await
            .map_err(map_sdk_error)?;
        let detail = out.image_details().first().ok_or_else(|| {
            CloudError::new(
                codes::IMAGE_NOT_FOUND,
                format!("{} not found", image.selector),
            )
        })?;
        Ok(ImageDetails {
            digest: detail.image_digest().unwrap_or_default().to_owned(),
            tags: detail.image_tags().to_vec(),
        })
    }
}
