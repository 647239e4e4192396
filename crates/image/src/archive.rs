//! `import`: image archives as `docker save` writes them (`manifest.json` with `RepoTags`,
//! a config JSON and layer tars per image) and OCI image layouts in a tar (`oci-layout`,
//! `index.json`, `blobs/sha256/…`). One pass over the outer tar stores every file as a blob
//! under its computed digest (so an OCI blob whose content does not match its name is
//! caught as corrupt), then the image documents are read from those blobs.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path};

use serde::Deserialize;

use crate::digest::{Digest, HashingWriter};
use crate::error::ImageError;
use crate::manifest::{self, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::store::{Image, ImageStore, LayerRecord, Record};

/// Files the importer keeps in memory as well (metadata documents).
const MAX_METADATA: u64 = 8 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What the scan of the outer tar found.
#[derive(Default)]
struct Scan {
    /// Archive path → (digest, size) of every regular file.
    files: HashMap<String, (Digest, u64)>,
    /// Archive path → archive path it links to (old `docker save` shares layers by symlink).
    links: HashMap<String, String>,
    /// Contents of small metadata files.
    small: HashMap<String, Vec<u8>>,
}

impl Scan {
    fn resolve(&self, path: &str) -> Option<&(Digest, u64)> {
        self.files.get(&self.resolve_path(path)?)
    }

    /// The regular file `path` names, following links.
    fn resolve_path(&self, path: &str) -> Option<String> {
        let mut p = normalize(path)?;
        for _ in 0..16 {
            if self.files.contains_key(&p) {
                return Some(p);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }
}

/// An archive path without `./`, leading `/` or `..`.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

impl ImageStore {
    /// Imports every image in a `docker save` or OCI layout archive and returns them.
    pub async fn import(&self, archive: &Path) -> Result<Vec<Image>, ImageError> {
        let _shared = self.inner.gc_lock.read().await;
        let store = self.clone();
        let path = archive.to_path_buf();
        let records = tokio::task::spawn_blocking(move || store.import_blocking(&path))
            .await
            .map_err(|e| import_err(archive, format!("import task failed: {e}")))??;
        let mut images = Vec::new();
        for (key, record) in records {
            let image = self
                .materialize(&key, &record)
                .await
                .map_err(|e| import_err(archive, e.to_string()))?;
            self.put_record(&key, record)?;
            tracing::info!(image = %key, id = %image.id, "imported image");
            images.push(image);
        }
        Ok(images)
    }

    fn import_blocking(&self, path: &Path) -> Result<Vec<(String, Record)>, ImageError> {
        let file = fs::File::open(path).map_err(|e| import_err(path, e.to_string()))?;
        let reader: Box<dyn Read> = match crate::unpack::open_layer(path) {
            Ok(r) => r,
            Err(_) => Box::new(file),
        };
        let scan = self.scan(reader).map_err(|m| import_err(path, m))?;
        if let Some(json) = scan.small.get("manifest.json") {
            self.docker_images(&scan, json)
                .map_err(|m| import_err(path, m))
        } else if scan.small.contains_key("index.json") {
            if !scan.small.contains_key("oci-layout") {
                return Err(import_err(
                    path,
                    "index.json without oci-layout: not an OCI image layout".into(),
                ));
            }
            self.oci_images(&scan).map_err(|m| import_err(path, m))
        } else {
            Err(import_err(
                path,
                "not an image archive: neither manifest.json (docker save) nor index.json (OCI layout) found".into(),
            ))
        }
    }

    fn scan(&self, reader: Box<dyn Read>) -> Result<Scan, String> {
        let mut archive = tar::Archive::new(reader);
        let mut scan = Scan::default();
        let entries = archive
            .entries()
            .map_err(|e| format!("reading archive: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("reading archive: {e}"))?;
            let raw = entry
                .path()
                .map_err(|e| format!("bad entry name: {e}"))?
                .to_string_lossy()
                .into_owned();
            let name =
                normalize(&raw).ok_or_else(|| format!("entry {raw:?} escapes the archive"))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    // Metadata documents stay in memory; only what an image references
                    // (configs among them) becomes a blob, so nothing else is left to gc.
                    let metadata = size <= MAX_METADATA
                        && !name.starts_with("blobs/")
                        && (name.ends_with(".json")
                            || name.ends_with("/json")
                            || name.ends_with("/VERSION")
                            || name == "oci-layout"
                            || name == "repositories");
                    let digest = if metadata {
                        let mut bytes = Vec::new();
                        entry
                            .read_to_end(&mut bytes)
                            .map_err(|e| format!("{name}: reading archive: {e}"))?;
                        let d = Digest::of(&bytes);
                        scan.small.insert(name.clone(), bytes);
                        d
                    } else {
                        self.store_entry(&mut entry)
                            .map_err(|e| format!("{name}: {e}"))?
                    };
                    if let Some(expected) = name.strip_prefix("blobs/sha256/")
                        && expected != digest.hex()
                    {
                        return Err(format!("{name}: content digest is {digest} (corrupt blob)"));
                    }
                    scan.files.insert(name, (digest, size));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| format!("{name}: bad link: {e}"))?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let full = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let dir = Path::new(&name)
                            .parent()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        format!("{dir}/{target}")
                    } else {
                        target
                    };
                    if let Some(t) = normalize(&full) {
                        scan.links.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        Ok(scan)
    }

    /// Copies one archive entry into the blob store and returns its digest.
    fn store_entry<R: Read>(&self, entry: &mut R) -> Result<Digest, String> {
        let tmp = self.tmp_path("import");
        let result = (|| {
            let file = fs::File::create(&tmp).map_err(|e| e.to_string())?;
            let mut w = HashingWriter::new(io::BufWriter::new(file));
            io::copy(entry, &mut w).map_err(|e| format!("reading archive: {e}"))?;
            let file = w.inner.into_inner().map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            let digest = w.hasher.finish();
            if self.has_blob(digest.as_str()) {
                let _ = fs::remove_file(&tmp);
            } else {
                self.commit_blob(&tmp, &digest).map_err(|e| e.to_string())?;
            }
            Ok(digest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn docker_images(&self, scan: &Scan, json: &[u8]) -> Result<Vec<(String, Record)>, String> {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(json).map_err(|e| format!("invalid manifest.json: {e}"))?;
        if entries.is_empty() {
            return Err("manifest.json lists no images".into());
        }
        let mut out = Vec::new();
        for e in entries {
            let (config, config_size) = scan
                .resolve(&e.config)
                .ok_or_else(|| format!("config {} is missing from the archive", e.config))?
                .clone();
            if let Some(bytes) = scan
                .resolve_path(&e.config)
                .and_then(|p| scan.small.get(&p))
            {
                self.write_blob(bytes, None)
                    .map_err(|e| format!("storing config: {e:?}"))?;
            }
            let mut layers = Vec::new();
            for l in &e.layers {
                let (d, size) = scan
                    .resolve(l)
                    .ok_or_else(|| format!("layer {l} is missing from the archive"))?
                    .clone();
                let media_type = if is_gzip(&self.blob_path(d.as_str())) {
                    manifest::DOCKER_LAYER_GZIP
                } else {
                    "application/vnd.docker.image.rootfs.diff.tar"
                };
                layers.push(Descriptor {
                    media_type: media_type.into(),
                    digest: d.to_string(),
                    size: size as i64,
                    platform: None,
                    annotations: None,
                });
            }
            // A schema 2 manifest stands in for the one `docker save` does not keep, so that
            // every image in the store has the same shape.
            let m = Manifest {
                schema_version: 2,
                media_type: Some(manifest::DOCKER_MANIFEST.into()),
                config: Descriptor {
                    media_type: manifest::DOCKER_CONFIG.into(),
                    digest: config.to_string(),
                    size: config_size as i64,
                    platform: None,
                    annotations: None,
                },
                layers,
            };
            let tags: Vec<String> = e.repo_tags.unwrap_or_default();
            let record = self.record_for(&m, None)?;
            if tags.is_empty() {
                out.push((record.config.clone(), record));
            } else {
                for t in &tags {
                    let r = Reference::parse(t)
                        .map_err(|err| format!("invalid RepoTag {t:?}: {err}"))?;
                    out.push((r.to_string(), record.clone()));
                }
            }
        }
        Ok(out)
    }

    fn oci_images(&self, scan: &Scan) -> Result<Vec<(String, Record)>, String> {
        let json = scan.small.get("index.json").ok_or("index.json missing")?;
        let index: Index =
            serde_json::from_slice(json).map_err(|e| format!("invalid index.json: {e}"))?;
        if index.manifests.is_empty() {
            return Err("index.json lists no images".into());
        }
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = desc.annotations.as_ref().and_then(|a| {
                a.get("io.containerd.image.name")
                    .or_else(|| a.get("org.opencontainers.image.ref.name"))
                    .cloned()
            });
            let manifest_desc = self.resolve_oci(desc, 0)?;
            let bytes = self
                .read_blob(&manifest_desc.digest)
                .map_err(|e| e.to_string())?;
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| format!("invalid manifest {}: {e}", manifest_desc.digest))?;
            let record = self.record_for(&m, Some(&manifest_desc.digest))?;
            // A bare tag (`latest`) names no repository: the image is kept untagged.
            let key = match name.as_deref() {
                Some(n) if n.contains('/') => Reference::parse(n)
                    .map_err(|err| format!("invalid image name {n:?}: {err}"))?
                    .to_string(),
                _ => record.config.clone(),
            };
            out.push((key, record));
        }
        Ok(out)
    }

    /// Follows nested indexes down to the linux/amd64 manifest.
    fn resolve_oci(&self, desc: &Descriptor, depth: usize) -> Result<Descriptor, String> {
        if depth > 4 {
            return Err("indexes nested too deeply".into());
        }
        if Digest::parse(&desc.digest).is_none() {
            return Err(format!("invalid digest {:?}", desc.digest));
        }
        let bytes = self.read_blob(&desc.digest).map_err(|e| e.to_string())?;
        match manifest::kind_of(Some(&desc.media_type), &bytes)? {
            manifest::Kind::Manifest => Ok(desc.clone()),
            manifest::Kind::Index => {
                let idx: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("invalid index {}: {e}", desc.digest))?;
                let chosen =
                    manifest::select_platform(&idx).ok_or("no linux/amd64 image in the archive")?;
                self.resolve_oci(chosen, depth + 1)
            }
        }
    }

    /// Checks a manifest's blobs are all present and builds its record.
    fn record_for(&self, m: &Manifest, manifest_digest: Option<&str>) -> Result<Record, String> {
        let config = Digest::parse(&m.config.digest)
            .ok_or_else(|| format!("invalid config digest {:?}", m.config.digest))?;
        if !self.has_blob(config.as_str()) {
            return Err(format!("config {config} is missing from the archive"));
        }
        let parsed = self
            .read_config(config.as_str())
            .map_err(|e| e.to_string())?;
        let mut layers = Vec::new();
        let mut size = u64::try_from(m.config.size).unwrap_or(0);
        for l in &m.layers {
            let d = Digest::parse(&l.digest)
                .ok_or_else(|| format!("invalid layer digest {:?}", l.digest))?;
            if !self.has_blob(d.as_str()) {
                return Err(format!("layer {d} is missing from the archive"));
            }
            manifest::layer_compression(&l.media_type)?;
            let s = u64::try_from(l.size).unwrap_or(0);
            size += s;
            layers.push(LayerRecord {
                digest: d.to_string(),
                media_type: l.media_type.clone(),
                size: s,
            });
        }
        let manifest = match manifest_digest {
            Some(d) => d.to_string(),
            None => {
                let bytes = serde_json::to_vec(m).map_err(|e| e.to_string())?;
                self.write_blob(&bytes, None)
                    .map_err(|e| match e {
                        crate::store::BlobError::Store(s) => s.to_string(),
                        crate::store::BlobError::Mismatch { .. } => {
                            "manifest digest mismatch".to_string()
                        }
                    })?
                    .to_string()
            }
        };
        Ok(Record {
            manifest,
            config: config.to_string(),
            layers,
            size,
            created: parsed.created,
        })
    }
}

fn is_gzip(path: &Path) -> bool {
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0x1f, 0x8b]
}

fn import_err(path: &Path, message: String) -> ImageError {
    ImageError::Import {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::tests::Layer;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn config_for(layer: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Entrypoint": ["/bin/hello"], "Env": ["PATH=/bin"], "ExposedPorts": {"8080/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(layer).to_string()]}
        }))
        .expect("json")
    }

    async fn import_bytes(
        store: &ImageStore,
        dir: &Path,
        bytes: &[u8],
    ) -> Result<Vec<Image>, ImageError> {
        let p = dir.join("archive.tar");
        fs::write(&p, bytes).expect("write archive");
        store.import(&p).await
    }

    #[tokio::test]
    async fn imports_docker_save_archives() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(tmp.path().join("images")).expect("open");
        let layer = Layer::new()
            .dir("www/", 0o755)
            .file("www/index.html", "hello")
            .bytes();
        let config = config_for(&layer);
        let manifest =
            br#"[{"Config":"cfg.json","RepoTags":["hello:v1"],"Layers":["abc/layer.tar"]}]"#;
        let archive = tar_of(&[
            ("manifest.json", manifest),
            ("cfg.json", &config),
            ("abc/layer.tar", &layer),
        ]);
        let images = import_bytes(&store, tmp.path(), &archive)
            .await
            .expect("import");
        assert_eq!(images.len(), 1);
        let img = &images[0];
        assert_eq!(img.reference, "docker.io/library/hello:v1");
        assert_eq!(img.id, Digest::of(&config).to_string());
        assert_eq!(img.config.entrypoint, vec!["/bin/hello".to_string()]);
        assert_eq!(img.config.exposed_ports, vec!["8080/tcp".to_string()]);
        assert_eq!(
            fs::read_to_string(img.rootfs.join("www/index.html")).expect("file"),
            "hello"
        );
        let listed = store.list().await.expect("list");
        assert_eq!(listed[0].tag, "v1");
        // Importing again is idempotent.
        import_bytes(&store, tmp.path(), &archive)
            .await
            .expect("reimport");
        assert_eq!(store.list().await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn imports_oci_layouts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(tmp.path().join("images")).expect("open");
        let layer = Layer::new().file("hello.txt", "oci").bytes();
        let config = config_for(&layer);
        let (ld, cd) = (Digest::of(&layer), Digest::of(&config));
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": manifest::OCI_LAYER_TAR, "digest": ld.to_string(), "size": layer.len()}]
        }))
        .expect("json");
        let md = Digest::of(&manifest);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": manifest::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
                           "annotations": {"org.opencontainers.image.ref.name": "localhost/hello:oci"}}]
        }))
        .expect("json");
        let (lp, cp, mp) = (
            format!("blobs/sha256/{}", ld.hex()),
            format!("blobs/sha256/{}", cd.hex()),
            format!("blobs/sha256/{}", md.hex()),
        );
        let archive = tar_of(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("index.json", &index),
            (&lp, &layer),
            (&cp, &config),
            (&mp, &manifest),
        ]);
        let images = import_bytes(&store, tmp.path(), &archive)
            .await
            .expect("import");
        assert_eq!(images[0].reference, "localhost/hello:oci");
        assert_eq!(images[0].manifest_digest, md.to_string());
        assert_eq!(
            fs::read_to_string(images[0].rootfs.join("hello.txt")).expect("file"),
            "oci"
        );

        // The same layout with a blob whose bytes do not match its name.
        let bad = tar_of(&[
            ("oci-layout", b"{}"),
            ("index.json", &index),
            (&lp, b"tampered"),
        ]);
        let err = import_bytes(&store, tmp.path(), &bad)
            .await
            .expect_err("corrupt");
        assert!(err.to_string().contains("corrupt blob"), "{err}");
    }

    #[tokio::test]
    async fn corrupt_archives_are_clear_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(tmp.path().join("images")).expect("open");
        let err = import_bytes(
            &store,
            tmp.path(),
            b"this is not a tar file at all, just text",
        )
        .await
        .expect_err("garbage");
        assert!(err.to_string().starts_with("failed to import"), "{err}");
        let err = import_bytes(&store, tmp.path(), &tar_of(&[("hello.txt", b"x")]))
            .await
            .expect_err("no manifest");
        assert!(err.to_string().contains("not an image archive"), "{err}");
        let missing = tar_of(&[(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#,
        )]);
        let err = import_bytes(&store, tmp.path(), &missing)
            .await
            .expect_err("missing");
        assert!(
            err.to_string().contains("config c.json is missing"),
            "{err}"
        );
        // A layer whose content does not match the config's diff id.
        let layer = Layer::new().file("a", "1").bytes();
        let other = Layer::new().file("a", "2").bytes();
        let config = config_for(&other);
        let archive = tar_of(&[
            (
                "manifest.json",
                br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#,
            ),
            ("c.json", &config),
            ("l.tar", &layer),
        ]);
        let err = import_bytes(&store, tmp.path(), &archive)
            .await
            .expect_err("diff id");
        assert!(err.to_string().contains("does not match diff id"), "{err}");
        assert!(store.list().await.expect("list").is_empty());
    }
}
