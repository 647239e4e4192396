//! The resource registry: every kind Baton serves, in every version it is served, and where
//! it is stored. Discovery, routing, storage keys and conversion all start from this table, so
//! adding a version of a kind means adding one row here (and its conversion in `convert`).

/// One served resource: a (group, version, plural) triple and what the API machinery needs to
/// know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; `""` is the core (legacy) group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    /// Lower-case plural, as in the URL (`deployments`).
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served under `.../{name}/{sub}` (`status`, `scale`, `rollback`, ...).
    pub subresources: &'static [&'static str],
    /// The version this kind is stored in. Objects written in any other version are converted
    /// to it before they reach the store, and back on the way out.
    pub storage: StorageRef,
}

/// Where a kind lives in the store: its storage group, version and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageRef {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
}

impl ResourceDef {
    /// `v1` for the core group, `apps/v1` otherwise: the object's `apiVersion` field.
    pub fn api_version(&self) -> String {
        group_version_string(self.group, self.version)
    }

    /// The `apiVersion` of the storage version.
    pub fn storage_api_version(&self) -> String {
        group_version_string(self.storage.group, self.storage.version)
    }

    /// True when this row is itself the storage version (no conversion needed).
    pub fn is_storage_version(&self) -> bool {
        self.group == self.storage.group
            && self.version == self.storage.version
            && self.resource == self.storage.resource
    }

    /// The registry row of the storage version.
    pub fn storage_def(&self) -> &'static ResourceDef {
        find(
            self.storage.group,
            self.storage.version,
            self.storage.resource,
        )
        .expect("every storage reference names a registered resource")
    }

    /// Store key prefix for all objects of this kind: `/registry/{group}/{resource}/`.
    /// Every served version of a kind shares the prefix of its storage version.
    pub fn key_prefix(&self) -> String {
        let group = if self.storage.group.is_empty() {
            "core"
        } else {
            self.storage.group
        };
        format!("/registry/{}/{}/", group, self.storage.resource)
    }

    /// Store key prefix for one namespace (or all objects when `namespace` is `None`).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }

    /// Store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub fn group_version_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an `apiVersion` into (group, version).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

const fn storage(group: &'static str, version: &'static str, resource: &'static str) -> StorageRef {
    StorageRef {
        group,
        version,
        resource,
    }
}

const CORE_NS: StorageRef = storage("", "v1", "namespaces");
const CORE_POD: StorageRef = storage("", "v1", "pods");
const CORE_SVC: StorageRef = storage("", "v1", "services");
const CORE_EP: StorageRef = storage("", "v1", "endpoints");
const CORE_EV: StorageRef = storage("", "v1", "events");
const CORE_RC: StorageRef = storage("", "v1", "replicationcontrollers");
const CORE_NODE: StorageRef = storage("", "v1", "nodes");
const CORE_CM: StorageRef = storage("", "v1", "configmaps");
const CORE_SECRET: StorageRef = storage("", "v1", "secrets");
const CORE_SA: StorageRef = storage("", "v1", "serviceaccounts");
const CORE_PV: StorageRef = storage("", "v1", "persistentvolumes");
const CORE_PVC: StorageRef = storage("", "v1", "persistentvolumeclaims");
const STORAGE_SC: StorageRef = storage("storage.k8s.io", "v1", "storageclasses");
const APPS_DEPLOY: StorageRef = storage("apps", "v1", "deployments");
const APPS_RS: StorageRef = storage("apps", "v1", "replicasets");
const APPS_CR: StorageRef = storage("apps", "v1", "controllerrevisions");
const APPS_DS: StorageRef = storage("apps", "v1", "daemonsets");
const POLICY_PDB: StorageRef = storage("policy", "v1", "poddisruptionbudgets");
const APPS_STS: StorageRef = storage("apps", "v1", "statefulsets");
const NET_ING: StorageRef = storage("networking.k8s.io", "v1", "ingresses");
const NET_INGCLASS: StorageRef = storage("networking.k8s.io", "v1", "ingressclasses");
const HPA: StorageRef = storage("autoscaling", "v2", "horizontalpodautoscalers");
const LEASE: StorageRef = storage("coordination.k8s.io", "v1", "leases");
const DISCOVERY_EPS: StorageRef = storage("discovery.k8s.io", "v1", "endpointslices");
const BATCH_JOB: StorageRef = storage("batch", "v1", "jobs");
const BATCH_CJ: StorageRef = storage("batch", "v1", "cronjobs");
const RBAC_ROLE: StorageRef = storage(RBAC_GROUP, "v1", "roles");
const RBAC_CLUSTER_ROLE: StorageRef = storage(RBAC_GROUP, "v1", "clusterroles");
const RBAC_BINDING: StorageRef = storage(RBAC_GROUP, "v1", "rolebindings");
const RBAC_CLUSTER_BINDING: StorageRef = storage(RBAC_GROUP, "v1", "clusterrolebindings");

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

#[allow(clippy::too_many_arguments)]
const fn def(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
    storage: StorageRef,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        resource,
        singular,
        kind,
        namespaced,
        short_names,
        categories,
        subresources,
        storage,
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];
const DEPLOY_SUBS: &[&str] = &["scale", "status"];
const LEGACY_DEPLOY_SUBS: &[&str] = &["rollback", "scale", "status"];

/// Every served resource. Order matters: discovery lists groups in the order of their first
/// row, and kubectl prefers earlier groups when a plural matches several, so the legacy
/// `extensions` group comes last. Short names are given to one row per kind only: kubectl
/// warns on every use of a short name that several groups declare; likewise the `all`
/// category, so that `kubectl get all` lists each object once.
pub static RESOURCES: &[ResourceDef] = &[
    def(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        NONE,
        &["finalize", "status"],
        CORE_NS,
    ),
    def(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        ALL,
        &[
            "attach",
            "binding",
            "eviction",
            "exec",
            "log",
            "portforward",
            "status",
        ],
        CORE_POD,
    ),
    def(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        ALL,
        &["status"],
        CORE_SVC,
    ),
    def(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        NONE,
        NONE,
        CORE_EP,
    ),
    def(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        NONE,
        NONE,
        CORE_EV,
    ),
    def(
        "",
        "v1",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
        &["rc"],
        ALL,
        &["scale", "status"],
        CORE_RC,
    ),
    def(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        NONE,
        &["status"],
        CORE_NODE,
    ),
    def(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        NONE,
        NONE,
        CORE_CM,
    ),
    def(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        NONE,
        NONE,
        NONE,
        CORE_SECRET,
    ),
    def(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        NONE,
        NONE,
        CORE_SA,
    ),
    def(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
        NONE,
        &["status"],
        CORE_PV,
    ),
    def(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        NONE,
        &["status"],
        CORE_PVC,
    ),
    def(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        ALL,
        DEPLOY_SUBS,
        APPS_DEPLOY,
    ),
    def(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        ALL,
        DEPLOY_SUBS,
        APPS_RS,
    ),
    def(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        ALL,
        DEPLOY_SUBS,
        APPS_STS,
    ),
    def(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        NONE,
        NONE,
        NONE,
        APPS_CR,
    ),
    def(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        ALL,
        &["status"],
        APPS_DS,
    ),
    def(
        "apps",
        "v1beta2",
        "deployments",
        "deployment",
        "Deployment",
        true,
        NONE,
        NONE,
        DEPLOY_SUBS,
        APPS_DEPLOY,
    ),
    def(
        "apps",
        "v1beta2",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        NONE,
        NONE,
        &["status"],
        APPS_DS,
    ),
    def(
        "apps",
        "v1beta1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        NONE,
        NONE,
        LEGACY_DEPLOY_SUBS,
        APPS_DEPLOY,
    ),
    def(
        "apps",
        "v1beta2",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        NONE,
        NONE,
        DEPLOY_SUBS,
        APPS_STS,
    ),
    def(
        "apps",
        "v1beta1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        NONE,
        NONE,
        DEPLOY_SUBS,
        APPS_STS,
    ),
    def(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        NONE,
        NONE,
        NONE,
        CORE_EV,
    ),
    def(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        ALL,
        &["status"],
        HPA,
    ),
    def(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        NONE,
        &["status"],
        HPA,
    ),
    def(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        NONE,
        ALL,
        &["status"],
        BATCH_JOB,
    ),
    def(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        ALL,
        &["status"],
        BATCH_CJ,
    ),
    def(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        NONE,
        &["status"],
        NET_ING,
    ),
    def(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        NONE,
        NONE,
        NONE,
        NET_INGCLASS,
    ),
    def(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        NONE,
        NONE,
        NONE,
        LEASE,
    ),
    def(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        NONE,
        NONE,
        NONE,
        DISCOVERY_EPS,
    ),
    def(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        NONE,
        &["status"],
        POLICY_PDB,
    ),
    def(
        RBAC_GROUP,
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        NONE,
        NONE,
        NONE,
        RBAC_CLUSTER_BINDING,
    ),
    def(
        RBAC_GROUP,
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        NONE,
        NONE,
        NONE,
        RBAC_CLUSTER_ROLE,
    ),
    def(
        RBAC_GROUP,
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        NONE,
        NONE,
        NONE,
        RBAC_BINDING,
    ),
    def(
        RBAC_GROUP, "v1", "roles", "role", "Role", true, NONE, NONE, NONE, RBAC_ROLE,
    ),
    def(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        &["sc"],
        NONE,
        NONE,
        STORAGE_SC,
    ),
    def(
        "extensions",
        "v1beta1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        NONE,
        NONE,
        LEGACY_DEPLOY_SUBS,
        APPS_DEPLOY,
    ),
    def(
        "extensions",
        "v1beta1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        NONE,
        NONE,
        DEPLOY_SUBS,
        APPS_RS,
    ),
    def(
        "extensions",
        "v1beta1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        NONE,
        NONE,
        &["status"],
        NET_ING,
    ),
    def(
        "extensions",
        "v1beta1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        NONE,
        NONE,
        &["status"],
        APPS_DS,
    ),
];

/// A served API group with its versions, preferred version first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: &'static str,
    pub versions: Vec<&'static str>,
}

impl GroupInfo {
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }
}

/// The named groups (not the core group), in discovery order; within a group, versions keep
/// the order of their first row, which puts the preferred version first.
pub fn groups() -> Vec<GroupInfo> {
    let mut out: Vec<GroupInfo> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|g| g.name == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version) {
                    g.versions.push(r.version);
                }
            }
            None => out.push(GroupInfo {
                name: r.group,
                versions: vec![r.version],
            }),
        }
    }
    out
}

/// Resources served in one group/version.
pub fn resources_in(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceDef> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// Looks a resource up by `apiVersion` and `kind`, as found in a request body.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_storage_ref_is_registered_and_is_its_own_storage() {
        for r in RESOURCES {
            let s = r.storage_def();
            assert!(
                s.is_storage_version(),
                "{} {}/{} stored as non-storage row",
                r.resource,
                r.group,
                r.version
            );
            assert_eq!(s.kind, r.kind, "{} stored under another kind", r.resource);
        }
    }

    #[test]
    fn legacy_deployments_share_the_apps_v1_keys() {
        let legacy = find("extensions", "v1beta1", "deployments").expect("registered");
        let apps = find("apps", "v1", "deployments").expect("registered");
        assert_eq!(
            legacy.key(Some("default"), "x"),
            apps.key(Some("default"), "x")
        );
        assert_eq!(
            apps.key(Some("default"), "x"),
            "/registry/apps/deployments/default/x"
        );
    }

    #[test]
    fn groups_are_listed_with_preferred_versions_first_and_extensions_last() {
        let g = groups();
        assert_eq!(g[0].name, "apps");
        assert_eq!(g[0].preferred_version(), "v1");
        assert_eq!(g.last().map(|g| g.name), Some("extensions"));
        let autoscaling = g
            .iter()
            .find(|g| g.name == "autoscaling")
            .expect("autoscaling");
        assert_eq!(autoscaling.versions, vec!["v2", "v1"]);
    }
}
