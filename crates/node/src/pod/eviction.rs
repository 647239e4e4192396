//! Local ephemeral storage limits, enforced as the kubelet's eviction manager does
//! (`localStorageEviction`): the disk is not capped, but every [`USAGE_PERIOD`] the worker
//! measures what the pod's limits need (bytes allocated, as `du -x`:
//! [`crate::host::Host::disk_usage`]) and evicts the pod (`Agent::evict`) with the kubelet's
//! message when, checked in the kubelet's order:
//! 1. a disk-backed `emptyDir` holds more than its `sizeLimit`;
//! 2. the pod's usage exceeds its containers' `ephemeral-storage` limits as the kubelet sums
//!    them ([`pod_limit`]) — usage being every container's writable layer and log files, the
//!    pod's local ephemeral volumes (the ones on the node's disk under the pod's directory:
//!    disk-backed emptyDirs, configMaps) and its `/etc/hosts`;
//! 3. an app container's writable layer plus its log files exceed its own limit.
//!
//! So a pod whose only limit is one container's is evicted with the pod-level message when
//! that container goes over, as with the kubelet. Pods without such limits are not measured.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use baton_api::quantity::{Format, Quantity};
use baton_api::validation::go::quote;
use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};
use tokio::time::Instant;

use super::decide::{PodRun, all_containers, init_containers, is_sidecar};
use super::{etc_dir, upper_dir};
use crate::Agent;
use crate::volume::{Backing, backing, disk_limit, volume_dir};

/// How often a pod's local storage is measured (the kubelet's eviction manager looks every
/// 10 s).
pub const USAGE_PERIOD: Duration = Duration::from_secs(10);

/// The resource name of local ephemeral storage in requests and limits.
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// What was measured of a pod's local ephemeral storage, in bytes allocated on the disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Per container name: its writable layer (the overlay's upper directory) plus its log
    /// files (every run's).
    pub containers: BTreeMap<String, u64>,
    /// Per volume name: the directory of a local ephemeral volume.
    pub volumes: BTreeMap<String, u64>,
    /// The pod's `/etc/hosts` (the kubelet counts its `etc-hosts` file).
    pub etc_hosts: u64,
}

/// What must be measured for a pod's limits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Containers by name.
    pub containers: Vec<String>,
    /// Volumes by name.
    pub volumes: Vec<String>,
    pub etc_hosts: bool,
}

impl Plan {
    /// Nothing to measure: the pod has no local storage limit.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.volumes.is_empty() && !self.etc_hosts
    }
}

/// What to measure of the pod of `spec`: everything its usage counts when it has a pod-level
/// limit, else only the containers and emptyDirs that have a limit of their own.
pub fn plan(spec: &PodSpec) -> Plan {
    let volumes = || spec.volumes.iter().flatten();
    if pod_limit(spec).is_some() {
        return Plan {
            containers: all_containers(spec).map(|c| c.name.clone()).collect(),
            volumes: volumes()
                .filter(|v| local_ephemeral(v))
                .map(|v| v.name.clone())
                .collect(),
            etc_hosts: true,
        };
    }
    Plan {
        containers: spec
            .containers
            .iter()
            .filter(|c| container_limit(c).is_some())
            .map(|c| c.name.clone())
            .collect(),
        volumes: volumes()
            .filter(|v| disk_limit(v).is_some())
            .map(|v| v.name.clone())
            .collect(),
        etc_hosts: false,
    }
}

/// The kubelet's eviction message for the first limit of `spec` that `used` exceeds (in the
/// order of the module's doc); None while the pod is within its limits.
pub fn eviction(spec: &PodSpec, used: &Usage) -> Option<String> {
    empty_dir_over(spec, used)
        .or_else(|| pod_over(spec, used))
        .or_else(|| container_over(spec, used))
}

/// `emptyDirLimitEviction`: a disk-backed emptyDir over its `sizeLimit`.
fn empty_dir_over(spec: &PodSpec, used: &Usage) -> Option<String> {
    spec.volumes.iter().flatten().find_map(|v| {
        let limit = disk_limit(v)?;
        (bytes(*used.volumes.get(&v.name)?) > limit).then(|| {
            format!(
                "Usage of EmptyDir volume {} exceeds the limit {}. ",
                quote(&v.name),
                quote(&limit.to_string())
            )
        })
    })
}

/// `podEphemeralStorageLimitEviction`: the pod's usage over its containers' limits.
fn pod_over(spec: &PodSpec, used: &Usage) -> Option<String> {
    let limit = pod_limit(spec)?;
    let containers = all_containers(spec).filter_map(|c| used.containers.get(&c.name));
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| local_ephemeral(v))
        .filter_map(|v| used.volumes.get(&v.name));
    let total = containers
        .chain(volumes)
        .fold(used.etc_hosts, |sum, b| sum.saturating_add(*b));
    (bytes(total) > limit).then(|| {
        format!("Pod ephemeral local storage usage exceeds the total limit of containers {limit}. ")
    })
}

/// `containerEphemeralStorageLimitEviction`: an app container over its own limit (the
/// kubelet checks only `spec.containers`; init containers' limits count at the pod level).
fn container_over(spec: &PodSpec, used: &Usage) -> Option<String> {
    spec.containers.iter().find_map(|c| {
        let limit = container_limit(c)?;
        (bytes(*used.containers.get(&c.name)?) > limit).then(|| {
            format!(
                "Container {} exceeded its local ephemeral storage limit {}. ",
                c.name,
                quote(&limit.to_string())
            )
        })
    })
}

/// A volume whose data the pod's local storage usage counts: on the node's disk under the
/// pod's directory (the kubelet's `IsLocalEphemeralVolume`: disk-backed emptyDir, configMap).
fn local_ephemeral(v: &Volume) -> bool {
    backing(v) == Some(Backing::Dir)
}

/// Bytes as a quantity, to compare with a limit.
fn bytes(n: u64) -> Quantity {
    Quantity::from_value(i64::try_from(n).unwrap_or(i64::MAX), Format::BinarySI)
}

/// Container `c`'s `ephemeral-storage` limit when it declares one (zero included).
fn limit(c: &Container) -> Option<Quantity> {
    let q = c
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get(EPHEMERAL_STORAGE)?;
    Quantity::try_from(q).ok()
}

/// Container `c`'s own limit as the kubelet's container check takes it: declared and not
/// zero.
fn container_limit(c: &Container) -> Option<Quantity> {
    limit(c).filter(|q| q.value() != 0)
}

/// The pod's `ephemeral-storage` limit as the kubelet's `PodLimits` computes it, when any
/// container declares one: the app containers' and sidecars' limits summed, or, when larger,
/// the most any init container needs while it runs (its own limit plus the sidecars' started
/// before it). A container without a limit adds nothing, as with the kubelet.
pub fn pod_limit(spec: &PodSpec) -> Option<Quantity> {
    let mut total = None;
    for c in &spec.containers {
        add(&mut total, limit(c));
    }
    let mut sidecars = None;
    let mut init_peak = None;
    for c in init_containers(spec) {
        let own = limit(c);
        let during = if is_sidecar(c) {
            add(&mut total, own.clone());
            add(&mut sidecars, own);
            sidecars.clone()
        } else {
            let mut during = own;
            add(&mut during, sidecars.clone());
            during
        };
        raise(&mut init_peak, during);
    }
    raise(&mut total, init_peak);
    total
}

/// `sum += q` over declared amounts (Kubernetes' `addResourceList`): the first is kept as it
/// is, a sum prints in the first one's format.
fn add(sum: &mut Option<Quantity>, q: Option<Quantity>) {
    let Some(q) = q else { return };
    *sum = Some(match sum.take() {
        None => q,
        Some(s) => s
            .checked_add(&q)
            .unwrap_or_else(|| Quantity::from_value(i64::MAX, s.format())),
    });
}

/// `max = max(max, q)` over declared amounts (Kubernetes' `maxResourceList`).
fn raise(max: &mut Option<Quantity>, q: Option<Quantity>) {
    if let Some(q) = q
        && max.as_ref().is_none_or(|m| q > *m)
    {
        *max = Some(q);
    }
}

impl Agent {
    /// Measures, every [`USAGE_PERIOD`] while the pod is active (not evicted, not ended),
    /// what its local storage limits need ([`plan`]) and returns the kubelet's eviction
    /// message when it is over one ([`eviction`]).
    pub(crate) async fn local_storage_eviction(
        &self,
        spec: &PodSpec,
        run: &mut PodRun,
    ) -> Option<String> {
        let now = Instant::now();
        let ended = run.finishing(spec) && run.running().is_empty();
        if run.saved.evicted.is_some()
            || ended
            || !run.volumes.ready
            || run
                .storage_measured
                .is_some_and(|t| now.saturating_duration_since(t) < USAGE_PERIOD)
        {
            return None;
        }
        run.storage_measured = Some(now);
        let plan = plan(spec);
        if plan.is_empty() {
            return None;
        }
        let mut used = Usage::default();
        let log_dir = self.pod_log_dir(&run.saved.namespace, &run.saved.name, &run.uid);
        for name in plan.containers {
            let layer = self.host.disk_usage(&upper_dir(&run.dir, &name)).await;
            let logs = self.host.disk_usage(&log_dir.join(&name)).await;
            used.containers.insert(name, layer.saturating_add(logs));
        }
        for name in plan.volumes {
            let bytes = self.host.disk_usage(&volume_dir(&run.dir, &name)).await;
            used.volumes.insert(name, bytes);
        }
        if plan.etc_hosts {
            used.etc_hosts = self.host.disk_usage(&hosts_file(&run.dir)).await;
        }
        tracing::trace!(pod = %run.saved.name, ?used, "local storage measured");
        eviction(spec, &used)
    }
}

/// The pod's `/etc/hosts` on the node.
fn hosts_file(pod_dir: &Path) -> std::path::PathBuf {
    etc_dir(pod_dir).join("hosts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    fn container(name: &str, limit: Option<&str>) -> Container {
        Container {
            name: name.into(),
            resources: limit.map(|l| ResourceRequirements {
                limits: Some(BTreeMap::from([(EPHEMERAL_STORAGE.into(), Q(l.into()))])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sidecar(name: &str, limit: Option<&str>) -> Container {
        Container {
            restart_policy: Some("Always".into()),
            ..container(name, limit)
        }
    }

    fn empty_dir(name: &str, medium: Option<&str>, size: Option<&str>) -> Volume {
        Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: medium.map(Into::into),
                size_limit: size.map(|s| Q(s.into())),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec(init: Vec<Container>, containers: Vec<Container>, volumes: Vec<Volume>) -> PodSpec {
        PodSpec {
            init_containers: (!init.is_empty()).then_some(init),
            containers,
            volumes: (!volumes.is_empty()).then_some(volumes),
            ..Default::default()
        }
    }

    fn usage(containers: &[(&str, u64)], volumes: &[(&str, u64)], etc_hosts: u64) -> Usage {
        let map = |kv: &[(&str, u64)]| -> BTreeMap<String, u64> {
            kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        Usage {
            containers: map(containers),
            volumes: map(volumes),
            etc_hosts,
        }
    }

    const MI: u64 = 1 << 20;

    #[test]
    fn the_pod_limit_is_summed_as_the_kubelets_pod_limits() {
        let limit = |init, app| pod_limit(&spec(init, app, vec![])).map(|q| q.to_string());
        // None declared: no pod-level limit.
        assert_eq!(limit(vec![], vec![container("a", None)]), None);
        // One declared; a container without a limit adds nothing.
        assert_eq!(
            limit(
                vec![],
                vec![container("a", Some("2Mi")), container("b", None)]
            ),
            Some("2Mi".into())
        );
        assert_eq!(
            limit(
                vec![],
                vec![container("a", Some("2Mi")), container("b", Some("8Mi"))]
            ),
            Some("10Mi".into())
        );
        // An init container needing more than the app containers sets the limit.
        assert_eq!(
            limit(
                vec![container("i", Some("16Mi"))],
                vec![container("a", Some("2Mi"))]
            ),
            Some("16Mi".into())
        );
        // Sidecars add to the app containers and to every init container after them.
        assert_eq!(
            limit(
                vec![
                    container("i1", Some("5Mi")),
                    sidecar("s", Some("1Mi")),
                    container("i2", Some("4Mi"))
                ],
                vec![container("a", Some("2Mi"))]
            ),
            Some("5Mi".into()),
            "max(i1 5, s 1 + i2 4, a 2 + s 1)"
        );
        assert_eq!(
            limit(
                vec![sidecar("s", Some("3Mi")), container("i", Some("4Mi"))],
                vec![container("a", Some("2Mi"))]
            ),
            Some("7Mi".into()),
            "s 3 + i 4 > a 2 + s 3"
        );
        // Only an init container declares one: it is the pod's.
        assert_eq!(
            limit(
                vec![container("i", Some("1Gi"))],
                vec![container("a", None)]
            ),
            Some("1Gi".into())
        );
    }

    #[test]
    fn only_what_the_limits_need_is_measured() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let volumes = || {
            vec![
                empty_dir("disk", None, None),
                empty_dir("capped", None, Some("1Mi")),
                empty_dir("ram", Some("Memory"), Some("1Mi")),
            ]
        };
        // No limit at all: nothing.
        let s = spec(
            vec![],
            vec![container("a", None)],
            vec![empty_dir("d", None, None)],
        );
        assert!(plan(&s).is_empty());
        // An emptyDir's sizeLimit only.
        let s = spec(vec![], vec![container("a", None)], volumes());
        assert_eq!(
            plan(&s),
            Plan {
                volumes: names(&["capped"]),
                ..Default::default()
            }
        );
        // A container limit makes a pod-level one: every container, every volume on disk,
        // /etc/hosts.
        let s = spec(
            vec![container("i", None)],
            vec![container("a", Some("1Mi")), container("b", None)],
            volumes(),
        );
        assert_eq!(
            plan(&s),
            Plan {
                containers: names(&["i", "a", "b"]),
                volumes: names(&["disk", "capped"]),
                etc_hosts: true,
            }
        );
    }

    #[test]
    fn a_container_over_its_own_limit_within_the_pods() {
        let s = spec(
            vec![],
            vec![
                container("fill", Some("2Mi")),
                container("idle", Some("8Mi")),
            ],
            vec![],
        );
        assert_eq!(
            eviction(&s, &usage(&[("fill", 2 * MI), ("idle", 0)], &[], 4096)),
            None,
            "at the limit is within it"
        );
        assert_eq!(
            eviction(&s, &usage(&[("fill", 4 * MI), ("idle", 0)], &[], 4096)).as_deref(),
            Some("Container fill exceeded its local ephemeral storage limit \"2Mi\". ")
        );
    }

    #[test]
    fn the_pod_over_its_containers_limits() {
        // The only limit is one container's: over it, the pod-level check speaks first.
        let s = spec(vec![], vec![container("fill", Some("2Mi"))], vec![]);
        assert_eq!(
            eviction(&s, &usage(&[("fill", 4 * MI)], &[], 4096)).as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ")
        );
        // Everything counts: a container without a limit, init containers, disk-backed
        // emptyDirs and /etc/hosts — not a Memory emptyDir.
        let s = spec(
            vec![container("init", None)],
            vec![container("a", Some("1Mi")), container("b", None)],
            vec![
                empty_dir("disk", None, None),
                empty_dir("ram", Some("Memory"), None),
            ],
        );
        let within = usage(
            &[("init", MI / 4), ("a", MI / 4), ("b", MI / 4)],
            &[("disk", MI / 4 - 4096), ("ram", 64 * MI)],
            4096,
        );
        assert_eq!(eviction(&s, &within), None);
        let mut over = within.clone();
        over.etc_hosts += 1;
        assert_eq!(
            eviction(&s, &over).as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ")
        );
    }

    #[test]
    fn checks_go_in_the_kubelets_order() {
        // An emptyDir over its sizeLimit is named first, then the pod, then a container.
        let s = spec(
            vec![],
            vec![container("a", Some("1Mi")), container("b", Some("1Mi"))],
            vec![empty_dir("scratch", None, Some("1Mi"))],
        );
        let used = usage(&[("a", 3 * MI), ("b", 0)], &[("scratch", 2 * MI)], 0);
        assert_eq!(
            eviction(&s, &used).as_deref(),
            Some("Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ")
        );
        let used = usage(&[("a", 3 * MI), ("b", 0)], &[("scratch", 0)], 0);
        assert_eq!(
            eviction(&s, &used).as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ")
        );
        let used = usage(&[("a", MI + 1), ("b", 0)], &[("scratch", 0)], 0);
        assert_eq!(
            eviction(&s, &used).as_deref(),
            Some("Container a exceeded its local ephemeral storage limit \"1Mi\". ")
        );
    }

    #[test]
    fn a_zero_limit_is_no_container_limit_but_counts_for_the_pod() {
        // As the kubelet: the container check skips a zero limit, the pod check does not.
        let s = spec(vec![], vec![container("a", Some("0"))], vec![]);
        assert_eq!(
            eviction(&s, &usage(&[("a", 1)], &[], 0)).as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 0. ")
        );
        let s = spec(
            vec![],
            vec![container("a", Some("0")), container("b", Some("1Mi"))],
            vec![],
        );
        assert_eq!(eviction(&s, &usage(&[("a", MI / 2)], &[], 0)), None);
    }
}
