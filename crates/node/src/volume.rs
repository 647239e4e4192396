//! Pod volumes on this node, the kubelet's volume manager reduced to what the agent runs:
//! `emptyDir` (a directory under the pod's dir — measured when it has a `sizeLimit`, the pod
//! evicted once it holds more, see [`crate::pod::eviction`] — or a tmpfs of `sizeLimit` for
//! `medium: Memory`), `configMap`, `secret`, `downwardAPI` and `projected`
//! (files written by the kubelet's atomic writer, see [`fs`], brought up to date every
//! [`REFRESH`]), and
//! `hostPath` (the host's path itself, after its `type` check), and `persistentVolumeClaim`
//! (the directory of the volume the claim is bound to: a `hostPath` or `local` volume, or one
//! of the local-path provisioner's, made here with mode 0777 when first used; data outlives
//! the pod). Containers get them as bind mounts in their runc config (`volumeMounts`:
//! mountPath, readOnly, subPath).
//!
//! On the node, volume `<name>` of a pod lives at `pods/<uid>/volumes/<name>`; the volumes
//! the kubelet keeps in memory (emptyDir `Memory`, secret, downwardAPI, projected) are a tmpfs
//! mounted there, so a Secret never reaches the disk. Deleting the pod unmounts and removes
//! them ([`Agent::unmount_volumes`]); `baton reset` unmounts whatever is mounted under the
//! data dir.
//!
//! The pure parts (what each volume is, its files, the container's mounts) are functions
//! here; the machine is reached through [`crate::host::Host`] and the API through
//! [`crate::pod::PodApi`].

pub mod fs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_api::events::Kind;
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod,
    PodSpec, Volume,
};
use tokio::time::Instant;

use crate::Agent;
use crate::bundle::quantity_bytes;
use baton_api::quantity::Quantity;

/// A file of a configMap, secret, downwardAPI or projected volume: its body and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectedFile {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files of such a volume, by path relative to its root.
pub type Payload = BTreeMap<String, ProjectedFile>;

/// The mode of a projected file when neither its item nor its volume says (the kubelet's).
const DEFAULT_MODE: u32 = 0o644;

/// How often the files of configMap, secret, downwardAPI and projected volumes are brought up
/// to date with their objects (the kubelet's sync period is a minute).
pub const REFRESH: Duration = Duration::from_secs(3);

/// How soon a volume that could not be set up is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// How often the same FailedMount event is recorded again while it lasts.
const EVENT_REPEAT: Duration = Duration::from_secs(60);

/// Where a volume's content lives on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A directory under the pod's dir (emptyDir on disk, configMap).
    Dir,
    /// A tmpfs mounted under the pod's dir, of at most this many bytes (emptyDir `Memory`,
    /// secret, downwardAPI, projected).
    Tmpfs(Option<u64>),
    /// The host's own path (hostPath), checked against its `type`.
    Host { path: PathBuf, kind: String },
    /// The directory of the volume a claim is bound to, resolved through the API.
    Claim,
}

/// Where volume `v` lives; None for a volume type the agent does not run (validation
/// refuses those).
pub fn backing(v: &Volume) -> Option<Backing> {
    if let Some(e) = &v.empty_dir {
        return Some(if e.medium.as_deref() == Some("Memory") {
            let size = e
                .size_limit
                .as_ref()
                .and_then(|q| quantity_bytes(&q.0))
                .and_then(|b| u64::try_from(b).ok())
                .filter(|b| *b > 0);
            Backing::Tmpfs(size)
        } else {
            Backing::Dir
        });
    }
    if v.config_map.is_some() {
        return Some(Backing::Dir);
    }
    if v.secret.is_some() || v.downward_api.is_some() || v.projected.is_some() {
        return Some(Backing::Tmpfs(None));
    }
    if v.persistent_volume_claim.is_some() {
        return Some(Backing::Claim);
    }
    v.host_path.as_ref().map(|h| Backing::Host {
        path: PathBuf::from(&h.path),
        kind: h.type_.clone().unwrap_or_default(),
    })
}

/// The `sizeLimit` of a disk-backed `emptyDir` (no `medium`), when positive: the kubelet does
/// not cap such a directory but measures it and evicts the pod once it holds more
/// ([`crate::pod::eviction`]). A `Memory` one is a tmpfs of that size instead ([`backing`]).
pub fn disk_limit(v: &Volume) -> Option<Quantity> {
    let e = v.empty_dir.as_ref()?;
    if e.medium.as_deref() == Some("Memory") {
        return None;
    }
    let q = Quantity::try_from(e.size_limit.as_ref()?).ok()?;
    (!q.is_zero() && !q.is_negative()).then_some(q)
}

/// Where the volume a claim is bound to lives on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimDir {
    pub path: PathBuf,
    /// The hostPath `type` to check (`Directory` for a `local` volume).
    pub kind: String,
    /// Made by Baton's local-path provisioner: the agent creates it (mode 0777).
    pub provisioned: bool,
}

/// The directory of `pv`, the volume claim `claim` of namespace `ns` is bound to (`None`:
/// the claim or the volume does not exist), worded as the kubelet reports it.
pub fn claim_dir(
    ns: &str,
    claim: &str,
    pvc: Option<&PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
) -> Result<ClaimDir, String> {
    let Some(pvc) = pvc else {
        return Err(format!("persistentvolumeclaim \"{claim}\" not found"));
    };
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(format!(
            "error processing PVC {ns}/{claim}: PVC is being deleted"
        ));
    }
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty());
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let (Some(volume), true) = (volume, bound) else {
        return Err(format!(
            "error processing PVC {ns}/{claim}: PVC is not bound"
        ));
    };
    let Some(spec) = pv.and_then(|pv| pv.spec.as_ref()) else {
        return Err(format!("persistentvolume \"{volume}\" not found"));
    };
    let provisioned = pv
        .and_then(|pv| pv.metadata.annotations.as_ref())
        .and_then(|a| a.get("pv.kubernetes.io/provisioned-by"))
        .is_some_and(|p| p == baton_api::validation::LOCAL_PATH_PROVISIONER);
    if let Some(h) = &spec.host_path {
        return Ok(ClaimDir {
            path: PathBuf::from(&h.path),
            kind: h.type_.clone().unwrap_or_default(),
            provisioned,
        });
    }
    if let Some(l) = &spec.local {
        return Ok(ClaimDir {
            path: PathBuf::from(&l.path),
            kind: "Directory".into(),
            provisioned: false,
        });
    }
    Err(format!(
        "persistentvolume \"{volume}\" has a volume type Baton does not mount"
    ))
}

/// Whether the volume shows API objects (configMap, secret, downwardAPI, projected): its
/// files are written by the agent, mounted read-only, and kept up to date.
fn shows_api_data(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
}

/// The directory of volume `name` of the pod whose directory is `pod_dir`.
pub fn volume_dir(pod_dir: &Path, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(name)
}

/// Where the subPaths of a pod's containers are bound (`<volume>/<container>/<mount index>`,
/// the kubelet's `volume-subpaths`).
fn subpath_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volume-subpaths")
}

/// A bind mount of a host path into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub destination: String,
    pub source: PathBuf,
    pub read_only: bool,
}

/// A container's `volumeMount` before its subPath is resolved on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPlan {
    /// The volumeMount's name (the volume's).
    pub name: String,
    pub destination: String,
    /// The volume's root on the host.
    pub volume: PathBuf,
    pub sub_path: Option<String>,
    pub read_only: bool,
}

/// The mounts container `c` asks for, in its order; `claims` holds the directory of each
/// persistentVolumeClaim volume by volume name.
pub fn mount_plans(
    spec: &PodSpec,
    c: &Container,
    pod_dir: &Path,
    claims: &BTreeMap<String, PathBuf>,
) -> Result<Vec<MountPlan>, String> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(v) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(format!(
                "cannot find volume \"{}\" to mount into container \"{}\"",
                m.name, c.name
            ));
        };
        let volume = match backing(v) {
            Some(Backing::Host { path, .. }) => path,
            Some(Backing::Claim) => match claims.get(&v.name) {
                Some(path) => path.clone(),
                None => {
                    return Err(format!(
                        "volume \"{}\": its claim is not bound to a volume on this node",
                        v.name
                    ));
                }
            },
            Some(_) => volume_dir(pod_dir, &v.name),
            None => {
                return Err(format!(
                    "volume \"{}\" has a type Baton does not run",
                    v.name
                ));
            }
        };
        out.push(MountPlan {
            name: m.name.clone(),
            destination: m.mount_path.clone(),
            volume,
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            read_only: m.read_only == Some(true)
                || shows_api_data(v)
                || v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.read_only == Some(true)),
        });
    }
    Ok(out)
}

/// A file mode from the API (`defaultMode`, `mode`); validation keeps it within 0..=0777.
fn mode(m: Option<i32>, default: u32) -> u32 {
    m.and_then(|m| u32::try_from(m).ok()).unwrap_or(default) & 0o777
}

/// The files of a ConfigMap's or Secret's keys (`data` None: the object does not exist), as
/// the kubelet projects them: every key as its own file, or only the `items` asked for at
/// their paths; a missing object or key is an error unless `optional`.
pub fn key_payload(
    kind: &str,
    name: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    default_mode: u32,
) -> Result<Payload, String> {
    let Some(data) = data else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("{kind} \"{name}\" not found"))
        };
    };
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(
                    k,
                    ProjectedFile {
                        data: v,
                        mode: default_mode,
                    },
                );
            }
        }
        Some(items) => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        out.insert(
                            it.path.clone(),
                            ProjectedFile {
                                data: v.clone(),
                                mode: mode(it.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => {
                        let what = if kind == "secret" { "secret" } else { "config" };
                        return Err(format!(
                            "{kind} references non-existent {what} key: {}",
                            it.key
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The files of downwardAPI items about `pod` (the fields a volume may show: name,
/// namespace, uid, labels and annotations, whole or one key).
pub fn downward_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    for it in items {
        let Some(f) = &it.field_ref else {
            return Err(format!(
                "downwardAPI item {:?}: only fieldRef is supported",
                it.path
            ));
        };
        let value = field_value(pod, &f.field_path)
            .ok_or_else(|| format!("unsupported fieldPath: {}", f.field_path))?;
        out.insert(
            it.path.clone(),
            ProjectedFile {
                data: value.into_bytes(),
                mode: mode(it.mode, default_mode),
            },
        );
    }
    Ok(out)
}

/// The value of a downward API field path of a volume item.
fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = m.labels.as_ref().unwrap_or(&empty);
    let annotations = m.annotations.as_ref().unwrap_or(&empty);
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(str::to_string)
    };
    Some(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(labels),
        "metadata.annotations" => format_map(annotations),
        _ => {
            if let Some(k) = subscript("metadata.labels") {
                labels.get(&k).cloned().unwrap_or_default()
            } else if let Some(k) = subscript("metadata.annotations") {
                annotations.get(&k).cloned().unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

/// Labels or annotations as the kubelet writes them: `key="value"` lines in key order, the
/// value quoted as Go's `%q` does, no newline after the last.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", baton_api::validation::go::quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the worker knows of its pod's volumes.
#[derive(Debug, Default)]
pub(crate) struct VolumeSync {
    /// Every volume was set up once: containers may start.
    pub ready: bool,
    /// When the volumes were last set up or brought up to date.
    pub synced: Option<Instant>,
    /// The last failure, and when its event was recorded.
    pub failure: Option<(String, Instant)>,
    /// The pod ended for good (evicted) and its volumes were torn down.
    pub released: bool,
}

impl Agent {
    /// Sets the pod's volumes up, or brings their files up to date every [`REFRESH`]. Returns
    /// whether containers may start: false until every volume was set up once (the kubelet's
    /// `FailedMount`, recorded as an event; the containers wait in ContainerCreating).
    pub(crate) async fn sync_volumes(&self, pod: &Pod, dir: &Path, sync: &mut VolumeSync) -> bool {
        let now = Instant::now();
        let period = if sync.ready { REFRESH } else { RETRY };
        if sync
            .synced
            .is_some_and(|t| now.saturating_duration_since(t) < period)
        {
            return sync.ready;
        }
        sync.synced = Some(now);
        match self.set_up_volumes(pod, dir, sync.ready).await {
            Ok(()) => {
                if !sync.ready {
                    tracing::debug!(pod = ?pod.metadata.name, "volumes set up");
                }
                sync.ready = true;
                sync.failure = None;
            }
            Err(message) => {
                let repeat = match &sync.failure {
                    Some((m, at)) => {
                        *m != message || now.saturating_duration_since(*at) >= EVENT_REPEAT
                    }
                    None => true,
                };
                if repeat {
                    tracing::info!(pod = ?pod.metadata.name, %message, "volume set-up failed");
                    self.api
                        .record_event(pod, "", Kind::Warning, "FailedMount", &message)
                        .await;
                    sync.failure = Some((message, now));
                }
            }
        }
        sync.ready
    }

    /// Tears down the volumes of a pod whose containers ended for good (evicted), as the
    /// kubelet does for a terminated pod: unmounted, and their directories — an emptyDir's
    /// data with them — removed, so the disk an evicted emptyDir filled is free again while
    /// the pod object stays. Volumes outside the pod's directory (hostPath, claims) are left.
    /// Tried again on the next pass while something stays mounted.
    pub(crate) async fn release_volumes(&self, dir: &Path, sync: &mut VolumeSync) {
        if sync.released {
            return;
        }
        sync.ready = false;
        if self.unmount_volumes(dir).await {
            return;
        }
        self.host.remove_dir_all(&subpath_dir(dir)).await;
        self.host.remove_dir_all(&dir.join("volumes")).await;
        sync.released = true;
    }

    /// Every volume of the pod made (idempotently) and its files written; on a `refresh`, only
    /// the files of the API-data volumes are brought up to date (as the kubelet remounts only
    /// those: an emptyDir's mode or a hostPath is not set again under the container).
    async fn set_up_volumes(&self, pod: &Pod, dir: &Path, refresh: bool) -> Result<(), String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let fs_group = spec
            .security_context
            .as_ref()
            .and_then(|s| s.fs_group)
            .and_then(|g| u32::try_from(g).ok());
        for v in spec.volumes.iter().flatten() {
            let failed =
                |e: String| format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name);
            let vd = volume_dir(dir, &v.name);
            if refresh && !shows_api_data(v) {
                continue;
            }
            // Made once; a refresh only rewrites files.
            if !refresh {
                match backing(v) {
                    None => return Err(failed("volume type not supported by Baton".into())),
                    Some(Backing::Host { path, kind }) => {
                        self.host
                            .check_host_path(&path, &kind)
                            .await
                            .map_err(failed)?;
                        continue;
                    }
                    Some(Backing::Claim) => {
                        let dir = self.claim_dir(pod, v).await.map_err(failed)?;
                        if dir.provisioned {
                            self.host
                                .create_volume_dir(&dir.path, 0o777, fs_group)
                                .await
                                .map_err(|e| failed(e.to_string()))?;
                        } else {
                            self.host
                                .check_host_path(&dir.path, &dir.kind)
                                .await
                                .map_err(failed)?;
                        }
                        continue;
                    }
                    Some(Backing::Dir) => {
                        self.host
                            .create_volume_dir(&vd, 0o777, fs_group)
                            .await
                            .map_err(|e| failed(e.to_string()))?;
                    }
                    Some(Backing::Tmpfs(size)) => {
                        self.host
                            .create_volume_dir(&vd, 0o777, None)
                            .await
                            .map_err(|e| failed(e.to_string()))?;
                        self.host
                            .mount_tmpfs(&vd, size)
                            .await
                            .map_err(|e| failed(e.to_string()))?;
                        if fs_group.is_some() && v.empty_dir.is_some() {
                            self.host
                                .create_volume_dir(&vd, 0o777, fs_group)
                                .await
                                .map_err(|e| failed(e.to_string()))?;
                        }
                    }
                }
            }
            if shows_api_data(v) {
                let mut files = self.payload(pod, v).await.map_err(failed)?;
                if fs_group.is_some() {
                    for f in files.values_mut() {
                        f.mode |= 0o440;
                    }
                }
                self.host
                    .write_projection(&vd, &files, fs_group)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The files of a configMap, secret, downwardAPI or projected volume, from the API.
    async fn payload(&self, pod: &Pod, v: &Volume) -> Result<Payload, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if let Some(s) = &v.config_map {
            let data = self.config_map_data(&ns, &s.name).await?;
            let dm = mode(s.default_mode, DEFAULT_MODE);
            let optional = s.optional == Some(true);
            return key_payload("configmap", &s.name, data, s.items.as_deref(), optional, dm);
        }
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let data = self.secret_data(&ns, &name).await?;
            let dm = mode(s.default_mode, DEFAULT_MODE);
            let optional = s.optional == Some(true);
            return key_payload("secret", &name, data, s.items.as_deref(), optional, dm);
        }
        if let Some(s) = &v.downward_api {
            let dm = mode(s.default_mode, DEFAULT_MODE);
            return downward_payload(pod, s.items.as_deref().unwrap_or_default(), dm);
        }
        let Some(p) = &v.projected else {
            return Ok(Payload::new());
        };
        let dm = mode(p.default_mode, DEFAULT_MODE);
        let mut out = Payload::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(s) = &src.config_map {
                let data = self.config_map_data(&ns, &s.name).await?;
                let optional = s.optional == Some(true);
                key_payload("configmap", &s.name, data, s.items.as_deref(), optional, dm)?
            } else if let Some(s) = &src.secret {
                let data = self.secret_data(&ns, &s.name).await?;
                let optional = s.optional == Some(true);
                key_payload("secret", &s.name, data, s.items.as_deref(), optional, dm)?
            } else if let Some(s) = &src.downward_api {
                downward_payload(pod, s.items.as_deref().unwrap_or_default(), dm)?
            } else {
                return Err("projected source type not supported by Baton".into());
            };
            out.extend(part);
        }
        Ok(out)
    }

    async fn config_map_data(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.api.config_map(ns, name).await?.map(|cm| {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in cm.data.unwrap_or_default() {
                data.insert(k, v.into_bytes());
            }
            data
        }))
    }

    async fn secret_data(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.api.secret(ns, name).await?.map(|s| {
            let mut data: BTreeMap<String, Vec<u8>> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                data.insert(k, v.into_bytes());
            }
            data
        }))
    }

    /// The directory of the volume that volume `v`'s claim is bound to.
    async fn claim_dir(&self, pod: &Pod, v: &Volume) -> Result<ClaimDir, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = v
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.clone())
            .unwrap_or_default();
        let pvc = self.api.claim(&ns, &name).await?;
        let volume = pvc
            .as_ref()
            .and_then(|c| c.spec.as_ref())
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty());
        let pv = match &volume {
            Some(n) => self.api.volume(n).await?,
            None => None,
        };
        claim_dir(&ns, &name, pvc.as_ref(), pv.as_ref())
    }

    /// The bind mounts of container `c`: its volumeMounts with their subPaths resolved (an
    /// error is the kubelet's CreateContainerConfigError message).
    pub(crate) async fn bind_mounts(
        &self,
        pod: &Pod,
        c: &Container,
        dir: &Path,
    ) -> Result<Vec<BindMount>, String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut claims = BTreeMap::new();
        for v in spec.volumes.iter().flatten() {
            let mounted = c.volume_mounts.iter().flatten().any(|m| m.name == v.name);
            if v.persistent_volume_claim.is_some() && mounted {
                claims.insert(v.name.clone(), self.claim_dir(pod, v).await?.path);
            }
        }
        let mut out = Vec::new();
        for (i, p) in mount_plans(&spec, c, dir, &claims)?.into_iter().enumerate() {
            let source = match &p.sub_path {
                None => p.volume.clone(),
                Some(sub) => {
                    let target = subpath_dir(dir)
                        .join(&p.name)
                        .join(&c.name)
                        .join(i.to_string());
                    self.host
                        .bind_subpath(&p.volume, sub, &target)
                        .await
                        .map_err(|e| {
                            tracing::info!(container = %c.name, error = %e, "subPath refused");
                            format!(
                                "failed to prepare subPath for volumeMount \"{}\" of container \"{}\"",
                                p.name, c.name
                            )
                        })?;
                    target
                }
            };
            out.push(BindMount {
                destination: p.destination,
                source,
                read_only: p.read_only,
            });
        }
        Ok(out)
    }

    /// Unmounts the volumes of the pod whose directory is `dir` (also an orphan's, from what
    /// its directory holds). Returns whether something there is still mounted.
    pub(crate) async fn unmount_volumes(&self, dir: &Path) -> bool {
        let mut left = false;
        // Subpath binds first: they may be of a tmpfs volume.
        let subs = subpath_dir(dir);
        for volume in self.host.list_dir(&subs).await {
            for container in self.host.list_dir(&subs.join(&volume)).await {
                let cdir = subs.join(&volume).join(&container);
                for i in self.host.list_dir(&cdir).await {
                    let target = cdir.join(&i);
                    if let Err(e) = self.host.unmount(&target).await {
                        tracing::warn!(path = %target.display(), error = %e, "unmounting a subPath failed");
                    }
                    left |= self.host.is_mounted(&target).await;
                }
            }
        }
        let root = dir.join("volumes");
        for name in self.host.list_dir(&root).await {
            let vd = root.join(&name);
            if let Err(e) = self.host.unmount(&vd).await {
                tracing::warn!(path = %vd.display(), error = %e, "unmounting a volume failed");
            }
            left |= self.host.is_mounted(&vd).await;
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, ObjectFieldSelector,
        VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn data(kv: &[(&str, &str)]) -> Option<BTreeMap<String, Vec<u8>>> {
        Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
            ..Default::default()
        }
    }

    #[test]
    fn keys_become_files_with_their_modes() {
        let all = key_payload(
            "configmap",
            "c",
            data(&[("a", "1"), ("b", "2")]),
            None,
            false,
            0o600,
        )
        .expect("payload");
        assert_eq!(all.len(), 2);
        assert_eq!(
            all["a"],
            ProjectedFile {
                data: b"1".to_vec(),
                mode: 0o600
            }
        );
        let items = [item("b", "dir/b.txt", Some(0o400))];
        let some = key_payload(
            "configmap",
            "c",
            data(&[("a", "1"), ("b", "2")]),
            Some(&items),
            false,
            0o644,
        )
        .expect("payload");
        assert_eq!(some.keys().collect::<Vec<_>>(), ["dir/b.txt"]);
        assert_eq!(some["dir/b.txt"].mode, 0o400);
        // Missing objects and keys.
        assert_eq!(
            key_payload("configmap", "c", None, None, false, 0o644),
            Err("configmap \"c\" not found".into())
        );
        assert_eq!(
            key_payload("secret", "s", None, None, true, 0o644),
            Ok(Payload::new())
        );
        let missing = [item("zz", "zz", None)];
        assert_eq!(
            key_payload("secret", "s", data(&[]), Some(&missing), false, 0o644),
            Err("secret references non-existent secret key: zz".into())
        );
        assert_eq!(
            key_payload("configmap", "c", data(&[]), Some(&missing), false, 0o644),
            Err("configmap references non-existent config key: zz".into())
        );
        assert_eq!(
            key_payload("configmap", "c", data(&[]), Some(&missing), true, 0o644),
            Ok(Payload::new())
        );
    }

    #[test]
    fn downward_files_show_the_pod_as_the_kubelet_writes_it() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.labels = Some(BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "a \"b\"\n".to_string()),
        ]));
        let field = |path: &str, p: &str| DownwardAPIVolumeFile {
            path: p.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let files = downward_payload(
            &pod,
            &[
                field("metadata.name", "name"),
                field("metadata.labels", "labels"),
                field("metadata.labels['app']", "app"),
            ],
            0o644,
        )
        .expect("payload");
        assert_eq!(files["name"].data, b"web");
        assert_eq!(
            String::from_utf8_lossy(&files["labels"].data),
            "app=\"web\"\ntier=\"a \\\"b\\\"\\n\""
        );
        assert_eq!(files["app"].data, b"web");
        assert!(downward_payload(&pod, &[field("status.podIP", "ip")], 0o644).is_err());
    }

    #[test]
    fn mounts_name_their_volume_and_api_data_is_read_only() {
        let spec = PodSpec {
            volumes: Some(vec![
                Volume {
                    name: "scratch".into(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: Some("Memory".into()),
                        size_limit: Some(Quantity("16Mi".into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "cfg".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "c".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "host".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/srv/data".into(),
                        type_: Some("Directory".into()),
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        assert_eq!(
            backing(&spec.volumes.as_ref().expect("volumes")[0]),
            Some(Backing::Tmpfs(Some(16 << 20)))
        );
        let mount = |name: &str, path: &str| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..Default::default()
        };
        let c = Container {
            name: "app".into(),
            volume_mounts: Some(vec![
                mount("scratch", "/tmp/s"),
                mount("cfg", "/etc/cfg"),
                VolumeMount {
                    sub_path: Some("logs".into()),
                    read_only: Some(true),
                    ..mount("host", "/logs")
                },
            ]),
            ..Default::default()
        };
        let plans = mount_plans(&spec, &c, Path::new("/pods/u"), &BTreeMap::new()).expect("plans");
        assert_eq!(plans[0].volume, Path::new("/pods/u/volumes/scratch"));
        assert!(!plans[0].read_only);
        assert!(plans[1].read_only);
        assert_eq!(plans[2].volume, Path::new("/srv/data"));
        assert_eq!(plans[2].sub_path.as_deref(), Some("logs"));
        assert!(plans[2].read_only);
        let bad = Container {
            name: "app".into(),
            volume_mounts: Some(vec![mount("nope", "/x")]),
            ..Default::default()
        };
        assert_eq!(
            mount_plans(&spec, &bad, Path::new("/pods/u"), &BTreeMap::new()),
            Err("cannot find volume \"nope\" to mount into container \"app\"".into())
        );
    }

    #[test]
    fn a_claim_resolves_to_its_bound_volume_directory() {
        let pvc = |phase: &str, volume: Option<&str>| -> PersistentVolumeClaim {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "data", "namespace": "ns"},
                "spec": {"volumeName": volume}, "status": {"phase": phase},
            }))
            .expect("pvc")
        };
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pvc-1",
                         "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
            "spec": {"hostPath": {"path": "/data/volumes/pvc-1", "type": "DirectoryOrCreate"}},
        }))
        .expect("pv");
        assert_eq!(
            claim_dir("ns", "data", None, None),
            Err("persistentvolumeclaim \"data\" not found".into())
        );
        assert_eq!(
            claim_dir("ns", "data", Some(&pvc("Pending", None)), None),
            Err("error processing PVC ns/data: PVC is not bound".into())
        );
        assert_eq!(
            claim_dir("ns", "data", Some(&pvc("Bound", Some("pvc-1"))), None),
            Err("persistentvolume \"pvc-1\" not found".into())
        );
        assert_eq!(
            claim_dir("ns", "data", Some(&pvc("Bound", Some("pvc-1"))), Some(&pv)),
            Ok(ClaimDir {
                path: PathBuf::from("/data/volumes/pvc-1"),
                kind: "DirectoryOrCreate".into(),
                provisioned: true,
            })
        );
    }
}
