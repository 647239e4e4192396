//! Validation of stored objects, with field paths and messages worded as Kubernetes words them
//! (`pkg/apis/*/validation`, `k8s.io/apimachinery/pkg/util/validation`).
//!
//! - [`names`]: the apimachinery string checks (DNS names, qualified names, label values, ports).
//! - `meta`: object metadata (name, namespace, labels, annotations).
//! - `pod`: pod specs and pod templates; `resources`: a container's requests and limits.
//! - `workloads`: Deployments, ReplicaSets, ReplicationControllers; `statefulset`: StatefulSets.
//! - `core`: Services, Namespaces, ConfigMaps, Secrets.
//! - `batch`: Jobs and CronJobs.
//! - `discovery`: EndpointSlices.
//! - `autoscaling`: HorizontalPodAutoscalers.
//! - `daemonset`: DaemonSets; `policy`: PodDisruptionBudgets.
//! - `storage`: PersistentVolumes, PersistentVolumeClaims, StorageClasses.
//! - `rbac`: Roles, ClusterRoles and their bindings.
//! - [`go`]: printing values the way Go's `field.Error` prints them.

mod autoscaling;
mod batch;
mod core;
mod daemonset;
mod discovery;
pub mod go;
mod meta;
pub mod names;
mod pod;
mod policy;
mod rbac;
mod resources;
mod statefulset;
pub(crate) mod storage;
mod volumes;
mod workloads;

use serde_json::Value;

use crate::registry::ResourceDef;

pub use storage::LOCAL_PATH_PROVISIONER;

/// What is wrong with one field; the `reason` strings are those of Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// Field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The offending value, where Kubernetes prints one.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    /// The `reason` of a `StatusCause`: `FieldValueRequired`, `FieldValueInvalid`, ...
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// The cause message without the field path, e.g. `Invalid value: -1: must be greater than or equal to 0`.
    pub fn message(&self) -> String {
        let what = match self.kind {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::NotFound => "Not found",
        };
        let mut s = what.to_string();
        // Like Go's `ErrorBody`, these kinds never print the value.
        let prints_value = !matches!(
            self.kind,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong
        );
        if let (true, Some(v)) = (prints_value, &self.value) {
            s.push_str(": ");
            s.push_str(&go::format(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            value: Some(value),
            detail: detail.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// `Not found: "x"`: a reference to something that does not exist.
    pub fn not_found(field: impl Into<String>, value: Value) -> Self {
        Self {
            kind: FieldErrorKind::NotFound,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        }
    }

    /// `Too many: 1001: must have at most 1000 items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let items = if max == 1 { "item" } else { "items" };
        Self {
            kind: FieldErrorKind::TooMany,
            field: field.into(),
            value: Some(Value::from(actual)),
            detail: format!("must have at most {max} {items}"),
        }
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|v| go::quote(v)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            value: Some(value),
            detail,
        }
    }
}

/// The message of Kubernetes' 422 Invalid status: `Deployment.apps "x" is invalid: [a, b]`,
/// or `... is invalid: a` for one error (repeated messages are shown once, as Go's aggregate
/// does). The group suffix appears only for named groups.
pub fn invalid_message(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    let body = match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    };
    format!("{qualified} {} is invalid: {body}", go::quote(name))
}

/// Validates `obj` (in `def`'s storage version) for create (`old` is `None`) or update.
///
/// `def` should be the row the request came in through: whether a Deployment's or
/// ReplicaSet's selector may change on update depends on it (the legacy extensions/v1beta1
/// and apps/v1beta1 allow it; later versions do not).
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let storage = def.storage_def();
    let mut errs = meta::object_meta(obj, storage.namespaced, name_rule(storage.kind));
    match storage.kind {
        "Pod" => errs.extend(pod::pod(obj)),
        "Deployment" => errs.extend(workloads::deployment(def, obj, old)),
        "ReplicaSet" => errs.extend(workloads::replica_set(def, obj, old)),
        "ReplicationController" => errs.extend(workloads::replication_controller(obj)),
        "DaemonSet" => errs.extend(daemonset::daemon_set(def, obj, old)),
        "PodDisruptionBudget" => errs.extend(policy::pod_disruption_budget(obj)),
        "StatefulSet" => errs.extend(statefulset::stateful_set(obj, old)),
        "Service" => errs.extend(core::service(obj, old)),
        "EndpointSlice" => errs.extend(discovery::endpoint_slice(obj, old)),
        "ConfigMap" => errs.extend(core::config_map(obj)),
        "Secret" => errs.extend(core::secret(obj)),
        "Job" => errs.extend(batch::job(obj, old)),
        "CronJob" => errs.extend(batch::cron_job(obj, old)),
        "HorizontalPodAutoscaler" => errs.extend(autoscaling::hpa(obj)),
        "PersistentVolume" => errs.extend(storage::persistent_volume(obj, old)),
        "PersistentVolumeClaim" => errs.extend(storage::persistent_volume_claim(obj, old)),
        "StorageClass" => errs.extend(storage::storage_class(obj, old)),
        "Role" => errs.extend(rbac::role(obj)),
        "ClusterRole" => errs.extend(rbac::cluster_role(obj)),
        "RoleBinding" => errs.extend(rbac::binding(obj, old, true)),
        "ClusterRoleBinding" => errs.extend(rbac::binding(obj, old, false)),
        _ => {}
    }
    errs
}

/// Which name rule a kind's `metadata.name` follows.
fn name_rule(kind: &str) -> names::NameRule {
    match kind {
        "Namespace" => names::NameRule::Dns1123Label,
        "Service" => names::NameRule::Dns1035Label,
        // Kubernetes' ValidateStatefulSetName: its pods' names and hostnames derive from it.
        "StatefulSet" => names::NameRule::Dns1123Label,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            names::NameRule::PathSegment
        }
        // Nodes, events and leases: any DNS subdomain, like most kinds.
        _ => names::NameRule::Dns1123Subdomain,
    }
}

#[cfg(test)]
mod tests;
