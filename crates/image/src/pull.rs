//! `ensure` and `pull`: the pull policy applied to the store, and a pull from a registry
//! into it (manifest → platform → config → layers, each verified against its digest, then the
//! rootfs unpacked and the reference recorded last, so a reference never points at an
//! incomplete image).

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use crate::auth::RegistryAuth;
use crate::digest::{Digest, Hasher};
use crate::error::{ImageError, PullError, StoreError};
use crate::manifest::{self, Index, Kind, Manifest};
use crate::policy::PullPolicy;
use crate::reference::Reference;
use crate::registry::{Client, Session};
use crate::store::{BlobError, Image, ImageStore, LayerRecord, Record};

impl ImageStore {
    /// Makes `image` present according to `policy` and returns it. Concurrent calls for one
    /// reference share a single pull.
    pub async fn ensure(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: &RegistryAuth,
    ) -> Result<Image, ImageError> {
        let r = crate::parse_reference(image)?;
        let lock = self.reference_lock(&r.to_string());
        let _one_at_a_time = lock.lock().await;
        if policy != PullPolicy::Always
            && let Some((key, rec)) = self.find_record(&r)?
        {
            return Ok(self.materialize(&key, &rec).await?);
        }
        if policy == PullPolicy::Never {
            return Err(ImageError::NeverPull {
                image: image.to_string(),
            });
        }
        self.pull_reference(image, &r, auth).await
    }

    /// Pulls `image` from its registry (always asking the registry for the manifest; blobs
    /// already in the store are not downloaded again).
    pub async fn pull(&self, image: &str, auth: &RegistryAuth) -> Result<Image, ImageError> {
        self.ensure(image, PullPolicy::Always, auth).await
    }

    async fn pull_reference(
        &self,
        image: &str,
        r: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Image, ImageError> {
        let wrap = |source: PullError| ImageError::Pull {
            image: image.to_string(),
            source: Box::new(source),
        };
        let _shared = self.inner.gc_lock.read().await;
        let client = match self.inner.client.get() {
            Some(c) => c.clone(),
            None => {
                let c = Client::new().map_err(|message| {
                    wrap(PullError::Transport {
                        reference: r.to_string(),
                        message,
                    })
                })?;
                self.inner.client.get_or_init(|| c).clone()
            }
        };
        let mut session = Session::new(
            &client,
            r,
            auth.lookup(&r.registry).cloned(),
            &self.inner.insecure,
        );
        let (key, record) = self.fetch(&mut session, r).await.map_err(wrap)?;
        let img = self
            .materialize(&key, &record)
            .await
            .map_err(|e| wrap(store_err(r, e)))?;
        self.put_record(&key, record)
            .map_err(|e| wrap(store_err(r, e)))?;
        tracing::info!(image = %key, id = %img.id, size = img.size, "pulled image");
        Ok(img)
    }

    async fn fetch(
        &self,
        s: &mut Session<'_>,
        r: &Reference,
    ) -> Result<(String, Record), PullError> {
        let refname = r.to_string();
        let invalid = |what: &str, message: String| PullError::Invalid {
            reference: refname.clone(),
            what: what.to_string(),
            message,
        };
        let (body, ct) = s.manifest(&r.manifest_ref()).await?;
        let digest = Digest::of(&body);
        if let Some(want) = &r.digest
            && *want != digest
        {
            return Err(mismatch(r, "manifest", want.as_str(), digest.as_str()));
        }
        let (body, digest) = match manifest::kind_of(ct.as_deref(), &body)
            .map_err(|m| invalid("manifest", m))?
        {
            Kind::Manifest => (body, digest),
            Kind::Index => {
                let index: Index = serde_json::from_slice(&body)
                    .map_err(|e| invalid("manifest list", e.to_string()))?;
                let chosen =
                    manifest::select_platform(&index).ok_or_else(|| PullError::NoPlatform {
                        reference: refname.clone(),
                    })?;
                let want = Digest::parse(&chosen.digest).ok_or_else(|| {
                    invalid("manifest list", format!("bad digest {:?}", chosen.digest))
                })?;
                let (inner, ct) = s.manifest(want.as_str()).await?;
                let got = Digest::of(&inner);
                if got != want {
                    return Err(mismatch(r, "manifest", want.as_str(), got.as_str()));
                }
                if manifest::kind_of(ct.as_deref(), &inner).map_err(|m| invalid("manifest", m))?
                    != Kind::Manifest
                {
                    return Err(invalid(
                        "manifest",
                        "a manifest list points at another list".into(),
                    ));
                }
                (inner, got)
            }
        };
        let m: Manifest =
            serde_json::from_slice(&body).map_err(|e| invalid("manifest", e.to_string()))?;
        let config_digest = Digest::parse(&m.config.digest).ok_or_else(|| {
            invalid(
                "manifest",
                format!("bad config digest {:?}", m.config.digest),
            )
        })?;
        self.check_space(r, &m)?;
        let mut size = 0u64;
        if !self.has_blob(config_digest.as_str()) {
            let bytes = s.blob_bytes(config_digest.as_str()).await?;
            self.store_blob(r, &bytes, &config_digest, "config")?;
        }
        size += u64::try_from(m.config.size).unwrap_or(0);
        let config = self
            .read_config(config_digest.as_str())
            .map_err(|e| store_err(r, e))?;
        if let (Some(os), Some(arch)) = (&config.os, &config.architecture)
            && (os != manifest::OS || arch != manifest::ARCH)
        {
            tracing::warn!(image = %refname, os, arch, "image is not built for linux/amd64");
        }
        let mut layers = Vec::new();
        for layer in &m.layers {
            manifest::layer_compression(&layer.media_type).map_err(|msg| {
                PullError::UnsupportedMediaType {
                    reference: refname.clone(),
                    media_type: msg,
                }
            })?;
            let d = Digest::parse(&layer.digest).ok_or_else(|| {
                invalid("manifest", format!("bad layer digest {:?}", layer.digest))
            })?;
            if !self.has_blob(d.as_str()) {
                self.download_blob(s, r, &d).await?;
            }
            let blob_size = u64::try_from(layer.size).unwrap_or(0);
            size += blob_size;
            layers.push(LayerRecord {
                digest: d.to_string(),
                media_type: layer.media_type.clone(),
                size: blob_size,
            });
        }
        self.store_blob(r, &body, &digest, "manifest")?;
        let record = Record {
            manifest: digest.to_string(),
            config: config_digest.to_string(),
            layers,
            size,
            created: config.created,
        };
        Ok((refname, record))
    }

    /// Refuses a pull whose missing blobs (compressed, as the manifest counts them) would
    /// leave less than the kept share free on the store's filesystem.
    fn check_space(&self, r: &Reference, m: &Manifest) -> Result<(), PullError> {
        let Some(keep) = self.min_free else {
            return Ok(());
        };
        let missing = |digest: &str, size: i64| {
            if self.has_blob(digest) {
                0
            } else {
                u64::try_from(size).unwrap_or(0)
            }
        };
        let needed = m.layers.iter().map(|l| missing(&l.digest, l.size)).fold(
            missing(&m.config.digest, m.config.size),
            u64::saturating_add,
        );
        if needed == 0 {
            return Ok(());
        }
        let root = self.root();
        let space = crate::Space::of(root)
            .map_err(|e| store_err(r, StoreError::io("measuring free space on", root)(e)))?;
        if !space.short_of(keep, needed) {
            return Ok(());
        }
        let human = crate::cli::human_size;
        Err(PullError::NoSpace {
            reference: r.to_string(),
            message: format!(
                "{}: {} available, the image needs {} more and {keep} ({}) of the filesystem is kept free",
                root.display(),
                human(space.available),
                human(needed),
                human(keep.floor(space.total)),
            ),
        })
    }

    fn store_blob(
        &self,
        r: &Reference,
        data: &[u8],
        want: &Digest,
        what: &str,
    ) -> Result<(), PullError> {
        match self.write_blob(data, Some(want)) {
            Ok(_) => Ok(()),
            Err(BlobError::Mismatch { expected, actual }) => {
                Err(mismatch(r, what, &expected, &actual))
            }
            Err(BlobError::Store(e)) => Err(store_err(r, e)),
        }
    }

    /// Streams a layer to `tmp/`, hashing as it goes, and renames it into place only if the
    /// digest matches.
    async fn download_blob(
        &self,
        s: &mut Session<'_>,
        r: &Reference,
        want: &Digest,
    ) -> Result<(), PullError> {
        let mut stream = s.blob(want.as_str()).await?;
        let tmp = TempFile(self.tmp_path("layer"));
        let mut file = tokio::fs::File::create(&tmp.0)
            .await
            .map_err(|e| store_err(r, StoreError::io("creating", &tmp.0)(e)))?;
        let mut hasher = Hasher::default();
        while let Some(chunk) = stream.next().await? {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| store_err(r, StoreError::io("writing", &tmp.0)(e)))?;
        }
        file.sync_all()
            .await
            .map_err(|e| store_err(r, StoreError::io("syncing", &tmp.0)(e)))?;
        drop(file);
        let got = hasher.finish();
        if got != *want {
            return Err(mismatch(
                r,
                &format!("layer {want}"),
                want.as_str(),
                got.as_str(),
            ));
        }
        self.commit_blob(&tmp.0, want)
            .map_err(|e| store_err(r, e))?;
        Ok(())
    }
}

/// Removes a temp file on drop (a no-op once it has been renamed away).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn mismatch(r: &Reference, what: &str, expected: &str, actual: &str) -> PullError {
    PullError::DigestMismatch {
        reference: r.to_string(),
        what: what.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

fn store_err(r: &Reference, source: StoreError) -> PullError {
    PullError::Store {
        reference: r.to_string(),
        source,
    }
}
