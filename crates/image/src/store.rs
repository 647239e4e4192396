//! The content-addressed image store under one root directory (the agent passes
//! `<data-dir>/images`):
//!
//! ```text
//! blobs/sha256/<hex>   manifests, configs and layer blobs, named by their verified digest
//! rootfs/<hex>/        one flattened root filesystem per image id (config digest)
//! index.json           image reference -> manifest, config and layer digests
//! tmp/                 downloads and unpacks in progress (renamed into place when complete)
//! ```
//!
//! Every file lands by write-to-temp then rename, so a crash leaves at worst garbage in
//! `tmp/`, never a half-written blob, rootfs or index. Pulls of one reference are serialised
//! (the second waits for the first, then finds the image present); `gc` excludes pulls and
//! imports while it runs, in this process. `index.json` is updated under an exclusive file
//! lock so that the CLI and the agent can share a store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{ImageError, StoreError};
use crate::manifest::{ConfigFile, RunConfig};
use crate::unpack;

/// An image present in the store, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalised reference it was asked for, e.g. `docker.io/library/busybox:latest`
    /// (for an untagged import, the image id).
    pub reference: String,
    /// The image id: the config digest (`sha256:…`), what `crictl images` shows.
    pub id: String,
    /// The manifest digest (what `imageID`'s `@sha256:` part in pod status is).
    pub manifest_digest: String,
    /// The flattened root filesystem: read-only, shared by every container of this image
    /// (the runtime mounts an overlay on top with this as lowerdir).
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// Sum of the config and layer blob sizes (as registries and crictl count it).
    pub size: u64,
    /// The config's `created` timestamp (RFC 3339), if any.
    pub created: Option<String>,
}

/// The run defaults of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `8080/tcp`-style keys.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

impl Image {
    /// `name@sha256:<manifest digest>`, what the kubelet reports as a container's `imageID`
    /// (for an untagged import, the image id).
    pub fn repo_digest(&self) -> String {
        let (repository, _) = split_key(&self.reference);
        if repository == "<none>" {
            self.id.clone()
        } else {
            format!("{repository}@{}", self.manifest_digest)
        }
    }
}

impl From<RunConfig> for ImageConfig {
    fn from(c: RunConfig) -> Self {
        ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
            exposed_ports: c
                .exposed_ports
                .map(|p| p.into_keys().collect())
                .unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
        }
    }
}

/// One row of `list()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Normalised reference (or the id for untagged images).
    pub reference: String,
    /// `docker.io/library/busybox`, or `<none>`.
    pub repository: String,
    /// `latest`, or `<none>`.
    pub tag: String,
    pub id: String,
    pub size: u64,
    pub created: Option<String>,
}

/// What `gc` deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub rootfs_removed: usize,
    pub bytes_freed: u64,
}

/// One image in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub manifest: String,
    pub config: String,
    pub layers: Vec<LayerRecord>,
    pub size: u64,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerRecord {
    pub digest: String,
    #[serde(default)]
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    #[serde(default)]
    images: BTreeMap<String, Record>,
}

/// Temp entries older than this are crash leftovers that `gc` may delete.
const TMP_GRACE: Duration = Duration::from_secs(3600);

/// The image store. Cheap to clone; clones share locks and the HTTP connection pool.
#[derive(Clone)]
pub struct ImageStore {
    pub(crate) inner: Arc<Inner>,
    /// What a pull must leave free on the store's filesystem (`None`: no floor).
    pub(crate) min_free: Option<crate::MinFree>,
    /// What one image may unpack to.
    pub(crate) unpack_limits: unpack::UnpackLimits,
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) insecure: Vec<String>,
    /// One lock per reference being ensured: concurrent pulls of one image wait for the first.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls and imports hold it shared; gc holds it exclusively.
    pub(crate) gc_lock: tokio::sync::RwLock<()>,
    /// Serialises index read-modify-write inside this process (the file lock covers others).
    index_lock: Mutex<()>,
    pub(crate) client: OnceLock<crate::registry::Client>,
    counter: AtomicU64,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        ImageStore::open_with(root, Vec::new())
    }

    /// Opens the store; registries in `insecure` (`host` or `host:port`) are reached over
    /// plain http, as loopback ones always are.
    pub fn open_with(
        root: impl Into<PathBuf>,
        insecure: Vec<String>,
    ) -> Result<ImageStore, ImageError> {
        let root = root.into();
        for dir in [
            root.join("blobs/sha256"),
            root.join("rootfs"),
            root.join("tmp"),
        ] {
            fs::create_dir_all(&dir).map_err(StoreError::io("creating", &dir))?;
        }
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root,
                insecure,
                inflight: Mutex::new(HashMap::new()),
                gc_lock: tokio::sync::RwLock::new(()),
                index_lock: Mutex::new(()),
                client: OnceLock::new(),
                counter: AtomicU64::new(0),
            }),
            min_free: None,
            unpack_limits: unpack::UnpackLimits::default(),
        })
    }

    /// The same store, refusing images that unpack past `limits`.
    pub fn with_unpack_limits(self, limits: unpack::UnpackLimits) -> ImageStore {
        ImageStore {
            unpack_limits: limits,
            ..self
        }
    }

    /// The same store, refusing pulls that would leave less than `keep` free on its
    /// filesystem (the kubelet's `imagefs.available` threshold).
    pub fn keeping_free(self, keep: crate::MinFree) -> ImageStore {
        ImageStore {
            min_free: Some(keep),
            ..self
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.inner.root.join("blobs/sha256").join(hex)
    }

    /// The rootfs directory of an image id (which may not exist yet).
    pub fn rootfs_path(&self, id: &str) -> PathBuf {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        self.inner.root.join("rootfs").join(hex)
    }

    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A fresh path under `tmp/`, unique across processes and calls.
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.inner
            .root
            .join("tmp")
            .join(format!("{what}-{}-{n}-{nanos}", std::process::id()))
    }

    /// The per-reference lock for `ensure`.
    pub(crate) fn reference_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(key.to_string()).or_default().clone()
    }

    /// Stores `data` as a blob after checking it has the `expected` digest.
    pub(crate) fn write_blob(
        &self,
        data: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, BlobError> {
        let actual = Digest::of(data);
        if let Some(e) = expected
            && *e != actual
        {
            return Err(BlobError::Mismatch {
                expected: e.to_string(),
                actual: actual.to_string(),
            });
        }
        let dest = self.blob_path(actual.as_str());
        if dest.is_file() {
            return Ok(actual);
        }
        let tmp = self.tmp_path("blob");
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(StoreError::io("creating", &tmp))?;
            f.write_all(data).map_err(StoreError::io("writing", &tmp))?;
            f.sync_all().map_err(StoreError::io("syncing", &tmp))?;
            fs::rename(&tmp, &dest).map_err(StoreError::io("renaming into", &dest))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(BlobError::Store)?;
        Ok(actual)
    }

    /// Moves a complete, verified temp file into the blob store.
    pub(crate) fn commit_blob(&self, tmp: &Path, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(digest.as_str());
        fs::rename(tmp, &dest).map_err(StoreError::io("renaming into", &dest))
    }

    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.to_string(),
                }
            } else {
                StoreError::Io {
                    op: "reading",
                    path,
                    source: e,
                }
            }
        })
    }

    pub(crate) fn read_config(&self, digest: &str) -> Result<ConfigFile, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Config {
            digest: digest.to_string(),
            message: e.to_string(),
        })
    }

    fn index_path(&self) -> PathBuf {
        self.inner.root.join("index.json")
    }

    fn read_index(&self) -> Result<IndexFile, StoreError> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Index {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(StoreError::Io {
                op: "reading",
                path,
                source: e,
            }),
        }
    }

    /// Read-modify-write of `index.json` under both locks, replaced atomically.
    fn update_index<T>(&self, f: impl FnOnce(&mut IndexFile) -> T) -> Result<T, StoreError> {
        let _guard = self
            .inner
            .index_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let lock_path = self.inner.root.join("index.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(StoreError::io("opening", &lock_path))?;
        lock.lock().map_err(StoreError::io("locking", &lock_path))?;
        let mut index = self.read_index()?;
        let out = f(&mut index);
        let tmp = self.tmp_path("index");
        let bytes = serde_json::to_vec_pretty(&index).map_err(|e| StoreError::Index {
            path: self.index_path(),
            message: e.to_string(),
        })?;
        let result = (|| {
            let mut file = fs::File::create(&tmp).map_err(StoreError::io("creating", &tmp))?;
            file.write_all(&bytes)
                .map_err(StoreError::io("writing", &tmp))?;
            file.sync_all().map_err(StoreError::io("syncing", &tmp))?;
            fs::rename(&tmp, self.index_path())
                .map_err(StoreError::io("renaming into", self.index_path()))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        Ok(out)
    }

    pub(crate) fn put_record(&self, key: &str, record: Record) -> Result<(), StoreError> {
        self.update_index(|idx| {
            idx.images.insert(key.to_string(), record);
        })
    }

    /// The record for a normalised reference; a digest reference also matches any record
    /// of the same repository with that manifest digest.
    pub(crate) fn find_record(
        &self,
        r: &crate::reference::Reference,
    ) -> Result<Option<(String, Record)>, StoreError> {
        let index = self.read_index()?;
        let key = r.to_string();
        if let Some(rec) = index.images.get(&key) {
            return Ok(Some((key, rec.clone())));
        }
        if let Some(d) = &r.digest {
            let prefix = format!("{}:", r.name());
            let found = index.images.iter().find(|(k, rec)| {
                rec.manifest == d.as_str()
                    && (k.starts_with(&prefix) || k.starts_with(&format!("{}@", r.name())))
            });
            return Ok(found.map(|(k, rec)| (k.clone(), rec.clone())));
        }
        Ok(None)
    }

    /// Builds the `Image` for a record, unpacking its rootfs if it is missing (first use, or
    /// removed by gc while the reference stayed).
    pub(crate) async fn materialize(
        &self,
        key: &str,
        record: &Record,
    ) -> Result<Image, StoreError> {
        let rootfs = self.rootfs_path(&record.config);
        if !rootfs.is_dir() {
            let store = self.clone();
            let rec = record.clone();
            tokio::task::spawn_blocking(move || store.unpack_rootfs(&rec))
                .await
                .map_err(|e| StoreError::Unpack {
                    layer: "-".into(),
                    message: format!("unpack task failed: {e}"),
                })??;
        }
        let config = self.read_config(&record.config)?;
        Ok(Image {
            reference: key.to_string(),
            id: record.config.clone(),
            manifest_digest: record.manifest.clone(),
            rootfs,
            config: config.config.unwrap_or_default().into(),
            size: record.size,
            created: record.created.clone(),
        })
    }

    /// Applies the layers in order into a temp dir, checking each diff id against the
    /// config, then renames it to `rootfs/<id>` (if another pull got there first, its copy
    /// is kept and ours dropped).
    pub(crate) fn unpack_rootfs(&self, record: &Record) -> Result<(), StoreError> {
        let dest = self.rootfs_path(&record.config);
        if dest.is_dir() {
            return Ok(());
        }
        let config = self.read_config(&record.config)?;
        let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        let tmp = self.tmp_path("rootfs");
        fs::create_dir(&tmp).map_err(StoreError::io("creating", &tmp))?;
        if diff_ids.len() != record.layers.len() {
            return Err(StoreError::Unpack {
                layer: record.config.clone(),
                message: format!(
                    "the image config lists {} diff ids for {} layers",
                    diff_ids.len(),
                    record.layers.len()
                ),
            });
        }
        let mut budget = unpack::Budget::new(self.unpack_limits);
        let result = (|| {
            for (i, layer) in record.layers.iter().enumerate() {
                let path = self.blob_path(&layer.digest);
                if !path.is_file() {
                    return Err(StoreError::MissingBlob {
                        digest: layer.digest.clone(),
                    });
                }
                let reader = unpack::open_layer(&path).map_err(StoreError::io("opening", &path))?;
                let diff = unpack::apply_layer(&tmp, reader, &layer.digest, &mut budget)?;
                if let Some(expected) = diff_ids.get(i)
                    && expected != diff.as_str()
                {
                    return Err(StoreError::DiffId {
                        layer: layer.digest.clone(),
                        expected: expected.clone(),
                        actual: diff.to_string(),
                    });
                }
            }
            fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(StoreError::io("chmod", &tmp))?;
            match fs::rename(&tmp, &dest) {
                Ok(()) => Ok(()),
                Err(_) if dest.is_dir() => {
                    let _ = fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(e) => Err(StoreError::Io {
                    op: "renaming into",
                    path: dest.clone(),
                    source: e,
                }),
            }
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    /// The image for `image` if it is in the store (no network).
    pub async fn get(&self, image: &str) -> Result<Option<Image>, ImageError> {
        let r = crate::parse_reference(image)?;
        match self.find_record(&r)? {
            Some((key, rec)) => Ok(Some(self.materialize(&key, &rec).await?)),
            None => Ok(None),
        }
    }

    /// Every image, sorted by reference.
    pub async fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let index = self.read_index()?;
        Ok(index
            .images
            .into_iter()
            .map(|(key, rec)| {
                let (repository, tag) = split_key(&key);
                ImageSummary {
                    reference: key,
                    repository,
                    tag,
                    id: rec.config,
                    size: rec.size,
                    created: rec.created,
                }
            })
            .collect())
    }

    /// Removes a reference; an image id (`sha256:…` or at least 12 hex characters of it)
    /// removes every reference to that image. Blobs and the rootfs stay until `gc` (a running
    /// container may still use the rootfs). Returns the references removed.
    pub async fn remove(&self, image: &str) -> Result<Vec<String>, ImageError> {
        let by_id = image.strip_prefix("sha256:").unwrap_or(image);
        let id_like = by_id.len() >= 12 && by_id.bytes().all(|b| b.is_ascii_hexdigit());
        let key = crate::reference::Reference::parse(image)
            .ok()
            .map(|r| r.to_string());
        let removed = self.update_index(|idx| {
            let mut removed = Vec::new();
            if let Some(k) = &key
                && idx.images.remove(k).is_some()
            {
                removed.push(k.clone());
            }
            if removed.is_empty() && id_like {
                let matching: Vec<String> = idx
                    .images
                    .iter()
                    .filter(|(_, r)| {
                        r.config
                            .strip_prefix("sha256:")
                            .unwrap_or(&r.config)
                            .starts_with(by_id)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in matching {
                    idx.images.remove(&k);
                    removed.push(k);
                }
            }
            removed
        })?;
        if removed.is_empty() {
            return Err(ImageError::NotFound {
                image: image.to_string(),
            });
        }
        tracing::info!(image, removed = ?removed, "removed image references");
        Ok(removed)
    }

    /// Deletes blobs no image references, and rootfs dirs of images that are neither
    /// referenced nor in `in_use` (image ids, `sha256:…`, of images running containers use),
    /// and temp leftovers of crashed pulls.
    pub async fn gc(&self, in_use: &HashSet<String>) -> Result<GcReport, ImageError> {
        let _exclusive = self.inner.gc_lock.write().await;
        let index = self.read_index()?;
        let mut blobs: HashSet<String> = HashSet::new();
        let mut ids: HashSet<String> = HashSet::new();
        for rec in index.images.values() {
            blobs.insert(hex_of(&rec.manifest).to_string());
            blobs.insert(hex_of(&rec.config).to_string());
            ids.insert(hex_of(&rec.config).to_string());
            for l in &rec.layers {
                blobs.insert(hex_of(&l.digest).to_string());
            }
        }
        ids.extend(in_use.iter().map(|i| hex_of(i).to_string()));
        let mut report = GcReport::default();
        let blob_dir = self.inner.root.join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir).map_err(StoreError::io("listing", &blob_dir))? {
            let entry = entry.map_err(StoreError::io("listing", &blob_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(StoreError::io("removing", entry.path()))?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
            }
        }
        let rootfs_dir = self.inner.root.join("rootfs");
        for entry in fs::read_dir(&rootfs_dir).map_err(StoreError::io("listing", &rootfs_dir))? {
            let entry = entry.map_err(StoreError::io("listing", &rootfs_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ids.contains(&name) {
                fs::remove_dir_all(entry.path())
                    .map_err(StoreError::io("removing", entry.path()))?;
                report.rootfs_removed += 1;
            }
        }
        let tmp_dir = self.inner.root.join("tmp");
        for entry in fs::read_dir(&tmp_dir)
            .map_err(StoreError::io("listing", &tmp_dir))?
            .flatten()
        {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > TMP_GRACE);
            if old {
                let p = entry.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        tracing::info!(
            blobs = report.blobs_removed,
            rootfs = report.rootfs_removed,
            bytes = report.bytes_freed,
            "image gc"
        );
        Ok(report)
    }
}

/// Why a blob could not be stored.
#[derive(Debug)]
pub(crate) enum BlobError {
    Mismatch { expected: String, actual: String },
    Store(StoreError),
}

fn hex_of(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// `docker.io/library/busybox:latest` → (`docker.io/library/busybox`, `latest`); digest-only
/// or id keys give `<none>` where there is nothing to show.
fn split_key(key: &str) -> (String, String) {
    if key.starts_with("sha256:") {
        return ("<none>".into(), "<none>".into());
    }
    let name = key.split('@').next().unwrap_or(key);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "<none>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_columns_from_keys() {
        assert_eq!(
            split_key("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_key("127.0.0.1:5000/hello:v1"),
            ("127.0.0.1:5000/hello".into(), "v1".into())
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split_key(&format!("localhost:5000/x@{d}")),
            ("localhost:5000/x".into(), "<none>".into())
        );
        assert_eq!(split_key(&d), ("<none>".into(), "<none>".into()));
    }

    #[tokio::test]
    async fn remove_then_gc_leaves_an_empty_store() {
        use crate::unpack::tests::Layer;
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(tmp.path().join("images")).expect("open");
        let layer = Layer::new().file("f", "x").bytes();
        let config = serde_json::to_vec(&serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer).to_string()]}
        }))
        .expect("json");
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            (
                "manifest.json",
                &br#"[{"Config":"c.json","RepoTags":["a:1","b:2"],"Layers":["l.tar"]}]"#[..],
            ),
            ("c.json", &config[..]),
            ("l.tar", &layer[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).expect("append");
        }
        let archive = tmp.path().join("a.tar");
        fs::write(&archive, b.into_inner().expect("tar")).expect("write");
        let images = store.import(&archive).await.expect("import");
        assert_eq!(images.len(), 2);
        assert_eq!(
            images[0].repo_digest(),
            format!("docker.io/library/a@{}", images[0].manifest_digest)
        );
        // Leftovers of a crashed pull are only collected once old.
        fs::write(store.tmp_path("blob"), b"partial").expect("tmp");

        // One reference gone: the image stays for the other.
        store.remove("a:1").await.expect("remove a");
        assert_eq!(
            store.gc(&HashSet::new()).await.expect("gc"),
            GcReport::default()
        );
        assert!(images[0].rootfs.join("f").is_file());
        // By id: every reference goes, then gc frees everything but fresh temp files.
        assert_eq!(
            store
                .remove(&images[0].id[..19])
                .await
                .expect("remove by id"),
            vec!["docker.io/library/b:2"]
        );
        let report = store.gc(&HashSet::new()).await.expect("gc");
        assert_eq!(
            (report.blobs_removed, report.rootfs_removed),
            (3, 1),
            "{report:?}"
        );
        assert!(!images[0].rootfs.exists());
        assert_eq!(
            fs::read_dir(store.root().join("tmp")).expect("tmp").count(),
            1
        );
        assert!(matches!(
            store.remove("a:1").await,
            Err(ImageError::NotFound { .. })
        ));
    }
}
