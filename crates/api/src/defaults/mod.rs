//! Defaulting, per kind and version, as Kubernetes' `SetDefaults_*` functions do it
//! (`pkg/apis/<group>/<version>/defaults.go`). Each served version keeps its own defaults:
//! an extensions/v1beta1 Deployment gets maxSurge 1 where an apps/v1 one gets 25%.
//!
//! Defaulting fills only what is absent (or Go's zero value for non-pointer fields) and never
//! removes a field it does not know.

mod batch;
mod core;
mod daemonset;
mod discovery;
mod hpa;
mod ingress;
mod pod;
mod rbac;
mod statefulset;
mod storage;
mod workloads;

use serde_json::Value;

use crate::registry::ResourceDef;

pub use batch::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
    job_generated_selector,
};
pub use pod::{
    default_image_pull_policy, pod_spec as default_pod_spec, pod_template as default_pod_template,
};
pub use storage::claim_spec as default_claim_spec;

/// Fills in the defaults of `def`'s version in `obj` (an object of that version).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    match (def.group, def.version, def.kind) {
        ("", "v1", "Pod") => pod::pod(m),
        ("", "v1", "ReplicationController") => workloads::replication_controller(m),
        ("", "v1", "Service") => core::service(m),
        ("", "v1", "Endpoints") => core::endpoints(m),
        ("", "v1", "Namespace") => core::namespace(m),
        ("", "v1", "Secret") => core::secret(m),
        ("", "v1", "Node") => core::node(m),
        ("", "v1", "PersistentVolume") => storage::persistent_volume(m),
        ("", "v1", "PersistentVolumeClaim") => storage::persistent_volume_claim(m),
        ("storage.k8s.io", "v1", "StorageClass") => storage::storage_class(m),
        ("apps", "v1" | "v1beta2", "Deployment") => {
            workloads::deployment(m, workloads::DeploymentFlavor::AppsV1)
        }
        ("apps", "v1beta1", "Deployment") => {
            workloads::deployment(m, workloads::DeploymentFlavor::AppsV1beta1)
        }
        ("extensions", "v1beta1", "Deployment") => {
            workloads::deployment(m, workloads::DeploymentFlavor::ExtensionsV1beta1)
        }
        ("apps", "v1" | "v1beta2", "StatefulSet") => statefulset::stateful_set(m, false),
        ("apps", "v1beta1", "StatefulSet") => statefulset::stateful_set(m, true),
        ("apps", "v1", "ReplicaSet") => workloads::replica_set(m, false),
        ("extensions", "v1beta1", "ReplicaSet") => workloads::replica_set(m, true),
        ("apps", "v1" | "v1beta2", "DaemonSet") => daemonset::daemon_set(m, false),
        ("extensions", "v1beta1", "DaemonSet") => daemonset::daemon_set(m, true),
        ("extensions", "v1beta1", "Ingress") => ingress::ingress_v1beta1(m),
        ("networking.k8s.io", "v1", "IngressClass") => ingress::ingress_class(m),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa::hpa_v1(m),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => hpa::hpa_v2(m),
        ("discovery.k8s.io", "v1", "EndpointSlice") => discovery::endpoint_slice(m),
        ("batch", "v1", "Job") => batch::job(m),
        ("batch", "v1", "CronJob") => batch::cron_job(m),
        (crate::registry::RBAC_GROUP, "v1", "RoleBinding" | "ClusterRoleBinding") => {
            rbac::binding(m)
        }
        // Event (both groups), Lease, ConfigMap, ServiceAccount, ControllerRevision and
        // networking.k8s.io/v1 Ingress have no defaults in Kubernetes.
        _ => {}
    }
}

#[cfg(test)]
mod tests;
