//! The agent's [`Images`] backed by `baton-image`'s content-addressed store: the pull policy
//! as Kubernetes defaults it, pull secrets as registry credentials, and the image's run
//! config in the shape the bundle builder takes.

use std::path::Path;

use async_trait::async_trait;
use baton_image::{ImageStore, PullPolicy, RegistryAuth};

use crate::{ImageRunConfig, Images, PullError, PulledImage};

/// The image store of this node.
#[derive(Clone)]
pub struct Store(pub ImageStore);

impl Store {
    /// Opens `<root>`; `insecure` registries are reached over plain http (loopback always is).
    pub fn open(root: &Path, insecure: Vec<String>) -> Result<Store, baton_image::ImageError> {
        ImageStore::open_with(root, insecure).map(Store)
    }
}

#[async_trait]
impl Images for Store {
    async fn ensure(
        &self,
        image: &str,
        policy: &str,
        auth: &[Vec<u8>],
    ) -> Result<PulledImage, PullError> {
        let fail = |e: baton_image::ImageError| PullError {
            reason: e.reason().to_string(),
            message: e.message(),
        };
        let reference = baton_image::parse_reference(image).map_err(fail)?;
        let policy = policy
            .parse::<PullPolicy>()
            .unwrap_or_else(|_| PullPolicy::default_for(&reference));
        let mut creds = RegistryAuth::anonymous();
        for doc in auth {
            if let Ok(a) = RegistryAuth::from_docker_config(doc) {
                creds.merge(a);
            }
        }
        let img = self.0.ensure(image, policy, &creds).await.map_err(fail)?;
        Ok(PulledImage {
            image_id: format!("{}@{}", reference.name(), img.manifest_digest),
            rootfs: img.rootfs.clone(),
            config: ImageRunConfig {
                entrypoint: img.config.entrypoint.clone(),
                cmd: img.config.cmd.clone(),
                env: img.config.env.clone(),
                working_dir: img.config.working_dir.clone().unwrap_or_default(),
                user: img.config.user.clone().unwrap_or_default(),
            },
            size: img.size,
        })
    }

    async fn pulls(&self, image: &str, policy: &str) -> bool {
        let Ok(reference) = baton_image::parse_reference(image) else {
            return false;
        };
        match policy
            .parse::<PullPolicy>()
            .unwrap_or_else(|_| PullPolicy::default_for(&reference))
        {
            PullPolicy::Always => true,
            PullPolicy::Never => false,
            _ => !matches!(self.0.get(image).await, Ok(Some(_))),
        }
    }
}
