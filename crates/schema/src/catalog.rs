//! The schema catalog: the OpenAPI definition of every served kind in every served version,
//! and of every type they reference, keyed by Kubernetes' definition names
//! (`io.k8s.api.apps.v1.Deployment`). References are written Swagger-2 style
//! (`#/definitions/<name>`); the v3 documents rewrite them.
//!
//! Current kinds come from `k8s-openapi`'s `JsonSchema` impls. Kinds Kubernetes no longer
//! serves (extensions/v1beta1 and apps/v1beta1/v1beta2 Deployments, extensions/v1beta1
//! Ingress, the legacy `Scale`s, `DeploymentRollback`) are derived here from their successors
//! plus the fields only the old versions had. The strategic-merge-patch metadata
//! (`x-kubernetes-patch-merge-key`/`-strategy`, list types) is added from one table,
//! [`PATCH_META`], because `k8s-openapi` does not carry it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use baton_api::registry::{RESOURCES, ResourceDef};
use k8s_openapi::api::{
    apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac,
    storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{Map, Value, json};

/// Prefix of every `$ref` in the catalog.
pub(crate) const REF_PREFIX: &str = "#/definitions/";

/// All definitions, by name.
pub(crate) type Definitions = BTreeMap<String, Value>;

/// The catalog, built on first use.
pub(crate) static DEFINITIONS: LazyLock<Definitions> = LazyLock::new(build);

/// The definition name of a kind: `io.k8s.api.<group's first label or core>.<version>.<kind>`.
pub(crate) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

/// The definition name of a registry row's kind.
pub(crate) fn kind_definition(def: &ResourceDef) -> String {
    definition_name(def.group, def.version, def.kind)
}

/// The definition name of the `Scale` a resource's `/scale` subresource speaks.
pub(crate) fn scale_definition(def: &ResourceDef) -> (String, (&'static str, &'static str)) {
    match (def.group, def.version) {
        ("extensions", "v1beta1") | ("apps", "v1beta1") | ("apps", "v1beta2") => (
            definition_name(def.group, def.version, "Scale"),
            (def.group, def.version),
        ),
        _ => (
            definition_name("autoscaling", "v1", "Scale"),
            ("autoscaling", "v1"),
        ),
    }
}

/// Follows a `$ref` (directly or through a one-element `allOf`) to its definition.
pub(crate) fn resolve<'a>(defs: &'a Definitions, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        let target = current
            .get("$ref")
            .and_then(Value::as_str)
            .or_else(|| current.pointer("/allOf/0/$ref").and_then(Value::as_str));
        match target
            .and_then(|r| r.strip_prefix(REF_PREFIX))
            .and_then(|n| defs.get(n))
        {
            Some(next) => current = next,
            None => break,
        }
    }
    current
}

/// Strategic-merge-patch metadata Kubernetes declares on list fields, as
/// (definition, field, merge key, patch strategy, list type, list map keys).
/// Taken from the `patchMergeKey`/`patchStrategy`/`+listType` tags of the Go API types.
type PatchMeta = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
);

const META_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const CORE_V1: &str = "io.k8s.api.core.v1.";

pub(crate) const PATCH_META: &[PatchMeta] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        None,
        Some("merge"),
        Some("set"),
        &[],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        Some("uid"),
        Some("merge"),
        Some("map"),
        &["uid"],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "managedFields",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "matchExpressions",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        Some("name"),
        Some("merge,retainKeys"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        Some("ip"),
        Some("merge"),
        Some("map"),
        &["ip"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "tolerations",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        Some("topologyKey"),
        Some("merge"),
        Some("map"),
        &["topologyKey", "whenUnsatisfiable"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        Some("name"),
        Some("merge,retainKeys"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        Some("containerPort"),
        Some("merge"),
        Some("map"),
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "env",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        Some("mountPath"),
        Some("merge"),
        Some("map"),
        &["mountPath"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        Some("devicePath"),
        Some("merge"),
        Some("map"),
        &["devicePath"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        Some("containerPort"),
        Some("merge"),
        Some("map"),
        &["containerPort", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        Some("name"),
        Some("merge"),
        Some("map"),
        &["name"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        Some("mountPath"),
        Some("merge"),
        Some("map"),
        &["mountPath"],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        Some("devicePath"),
        Some("merge"),
        Some("map"),
        &["devicePath"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        Some("port"),
        Some("merge"),
        Some("map"),
        &["port", "protocol"],
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        Some("ip"),
        Some("merge"),
        Some("map"),
        &["ip"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        Some("ip"),
        Some("merge"),
        Some("map"),
        &["ip"],
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        "podCIDRs",
        None,
        Some("merge"),
        Some("set"),
        &[],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        None,
        Some("retainKeys"),
        None,
        &[],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.batch.v1.CronJobStatus",
        "active",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        Some("type"),
        Some("merge"),
        Some("map"),
        &["type"],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "endpoints",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "ports",
        None,
        None,
        Some("atomic"),
        &[],
    ),
    (
        "io.k8s.api.discovery.v1.Endpoint",
        "addresses",
        None,
        None,
        Some("set"),
        &[],
    ),
];

fn build() -> Definitions {
    let mut generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    macro_rules! gen_all {
        ($($t:ty),* $(,)?) => { $( generator.subschema_for::<$t>(); )* };
    }
    gen_all!(
        core::v1::Namespace,
        core::v1::Pod,
        core::v1::Service,
        core::v1::Endpoints,
        core::v1::Event,
        core::v1::ReplicationController,
        core::v1::Node,
        core::v1::ConfigMap,
        core::v1::Secret,
        core::v1::ServiceAccount,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        storage::v1::StorageClass,
        rbac::v1::Role,
        rbac::v1::ClusterRole,
        rbac::v1::RoleBinding,
        rbac::v1::ClusterRoleBinding,
        core::v1::Binding,
        policy::v1::Eviction,
        apps::v1::Deployment,
        apps::v1::StatefulSet,
        apps::v1::ReplicaSet,
        apps::v1::ControllerRevision,
        batch::v1::Job,
        batch::v1::CronJob,
        apps::v1::DaemonSet,
        policy::v1::PodDisruptionBudget,
        autoscaling::v1::Scale,
        autoscaling::v1::HorizontalPodAutoscaler,
        autoscaling::v2::HorizontalPodAutoscaler,
        events::v1::Event,
        networking::v1::Ingress,
        networking::v1::IngressClass,
        coordination::v1::Lease,
        discovery::v1::EndpointSlice,
        meta::Status,
        meta::DeleteOptions,
        meta::Patch,
        meta::WatchEvent<serde_json::Value>,
        meta::ListMeta,
        core::v1::LoadBalancerStatus,
        core::v1::TypedLocalObjectReference,
    );
    let mut defs: Definitions = generator.take_definitions(false).into_iter().collect();
    for def in defs.values_mut() {
        normalize(def);
    }
    for &(ty, field, key, strategy, list_type, map_keys) in PATCH_META {
        let Some(prop) = defs
            .get_mut(ty)
            .and_then(|d| d.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(key) = key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(strategy) = strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
        if let Some(list_type) = list_type {
            prop.insert("x-kubernetes-list-type".into(), list_type.into());
        }
        if !map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(map_keys));
        }
    }
    legacy::add(&mut defs);

    // Lists and group-version-kind extensions for every served kind.
    let mut kinds: Vec<(String, &str, &str, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in RESOURCES {
        if seen.insert((r.group, r.version, r.kind)) {
            kinds.push((kind_definition(r), r.group, r.version, r.kind.to_string()));
        }
    }
    for (name, group, version, kind) in &kinds {
        let list = list_schema(name, kind);
        defs.insert(format!("{name}List"), list);
        set_gvk(&mut defs, name, &[(group, version, kind)]);
        set_gvk(
            &mut defs,
            &format!("{name}List"),
            &[(group, version, &format!("{kind}List"))],
        );
    }
    set_gvk(
        &mut defs,
        "io.k8s.api.autoscaling.v1.Scale",
        &[("autoscaling", "v1", "Scale")],
    );
    for (g, v) in [
        ("extensions", "v1beta1"),
        ("apps", "v1beta1"),
        ("apps", "v1beta2"),
    ] {
        set_gvk(
            &mut defs,
            &definition_name(g, v, "Scale"),
            &[(g, v, "Scale")],
        );
    }
    for (g, v) in [("extensions", "v1beta1"), ("apps", "v1beta1")] {
        set_gvk(
            &mut defs,
            &definition_name(g, v, "DeploymentRollback"),
            &[(g, v, "DeploymentRollback")],
        );
    }
    set_gvk(
        &mut defs,
        "io.k8s.api.core.v1.Binding",
        &[("", "v1", "Binding")],
    );
    set_gvk(
        &mut defs,
        "io.k8s.api.policy.v1.Eviction",
        &[("policy", "v1", "Eviction")],
    );
    set_gvk(
        &mut defs,
        &format!("{META_V1}Status"),
        &[("", "v1", "Status")],
    );
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !gvs.contains(&(r.group, r.version)) {
            gvs.push((r.group, r.version));
        }
    }
    for kind in ["DeleteOptions", "WatchEvent"] {
        let list: Vec<(&str, &str, &str)> = gvs.iter().map(|&(g, v)| (g, v, kind)).collect();
        set_gvk(&mut defs, &format!("{META_V1}{kind}"), &list);
    }
    debug_assert!(defs.contains_key(&format!("{CORE_V1}Pod")));
    defs
}

/// Makes `k8s-openapi`'s output look like Kubernetes' published definitions.
fn normalize(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !obj.contains_key("type")
    {
        obj.insert("type".into(), "string".into());
        obj.insert("format".into(), "int-or-string".into());
        obj.remove("x-kubernetes-int-or-string");
    }
    for value in obj.values_mut() {
        match value {
            Value::Object(_) => normalize(value),
            Value::Array(items) => items.iter_mut().for_each(normalize),
            _ => {}
        }
    }
}

fn set_gvk(defs: &mut Definitions, name: &str, gvks: &[(&str, &str, &str)]) {
    if let Some(obj) = defs.get_mut(name).and_then(Value::as_object_mut) {
        let list: Vec<Value> = gvks
            .iter()
            .map(|(g, v, k)| json!({"group": g, "kind": k, "version": v}))
            .collect();
        obj.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

fn described_ref(name: &str, description: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}"), "description": description })
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn list_schema(item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {"description": format!("Items is the list of {kind} objects."), "type": "array", "items": reference(item)},
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": described_ref(&format!("{META_V1}ListMeta"), "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
        },
        "required": ["items"],
    })
}

/// The kinds of the versions Kubernetes has removed, derived from their successors.
mod legacy {
    use super::*;

    const DEPLOYMENT_FAMILY: &[&str] = &[
        "Deployment",
        "DeploymentSpec",
        "DeploymentStatus",
        "DeploymentStrategy",
        "RollingUpdateDeployment",
        "DeploymentCondition",
    ];
    const REPLICASET_FAMILY: &[&str] = &[
        "ReplicaSet",
        "ReplicaSetSpec",
        "ReplicaSetStatus",
        "ReplicaSetCondition",
    ];
    /// apps/v1beta1 and apps/v1beta2 StatefulSets: apps/v1's fields.
    const STATEFULSET_FAMILY: &[&str] = &[
        "StatefulSet",
        "StatefulSetSpec",
        "StatefulSetStatus",
        "StatefulSetUpdateStrategy",
        "RollingUpdateStatefulSetStrategy",
        "StatefulSetCondition",
        "StatefulSetOrdinals",
        "StatefulSetPersistentVolumeClaimRetentionPolicy",
    ];

    pub(super) fn add(defs: &mut Definitions) {
        let apps_v1 = "io.k8s.api.apps.v1.";
        for (group, version, rollback, replicasets) in [
            ("extensions", "v1beta1", true, true),
            ("apps", "v1beta1", true, false),
            ("apps", "v1beta2", false, false),
        ] {
            let prefix = format!("io.k8s.api.{group}.{version}.");
            copy_family(defs, apps_v1, &prefix, DEPLOYMENT_FAMILY);
            if replicasets {
                copy_family(defs, apps_v1, &prefix, REPLICASET_FAMILY);
            }
            let spec_name = format!("{prefix}DeploymentSpec");
            if let Some(spec) = defs.get_mut(&spec_name).and_then(Value::as_object_mut)
                && rollback
            {
                // The old versions default the selector from the template labels.
                spec.insert("required".into(), json!(["template"]));
                if let Some(props) = spec.get_mut("properties").and_then(Value::as_object_mut) {
                    props.insert(
                            "rollbackTo".into(),
                            described_ref(
                                &format!("{prefix}RollbackConfig"),
                                "DEPRECATED. The config this deployment is rolling back to. Will be cleared after rollback is done.",
                            ),
                        );
                    sort_properties(props);
                }
            }
            if rollback {
                defs.insert(
                    format!("{prefix}RollbackConfig"),
                    json!({
                        "description": "DEPRECATED.",
                        "type": "object",
                        "properties": {
                            "revision": {"description": "The revision to rollback to. If set to 0, rollback to the last revision.", "type": "integer", "format": "int64"},
                        },
                    }),
                );
                defs.insert(
                    format!("{prefix}DeploymentRollback"),
                    json!({
                        "description": "DEPRECATED. DeploymentRollback stores the information required to rollback a deployment.",
                        "type": "object",
                        "properties": {
                            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                            "kind": {"description": KIND_DOC, "type": "string"},
                            "name": {"description": "Required: This must match the Name of a deployment.", "type": "string"},
                            "rollbackTo": described_ref(&format!("{prefix}RollbackConfig"), "The config of this deployment rollback."),
                            "updatedAnnotations": {"description": "The annotations to be updated to a deployment", "type": "object", "additionalProperties": {"type": "string"}},
                        },
                        "required": ["name", "rollbackTo"],
                    }),
                );
            }
            if group == "apps" {
                copy_family(defs, apps_v1, &prefix, STATEFULSET_FAMILY);
            }
            add_scale(defs, &prefix);
        }
        add_ingress(defs);
        add_daemonsets(defs);
    }

    /// Copies `names` from one package to another, pointing references among them at the copies.
    fn copy_family(defs: &mut Definitions, from: &str, to: &str, names: &[&str]) {
        for name in names {
            let Some(mut schema) = defs.get(&format!("{from}{name}")).cloned() else {
                continue;
            };
            retarget(&mut schema, from, to, names);
            defs.insert(format!("{to}{name}"), schema);
        }
    }

    fn retarget(schema: &mut Value, from: &str, to: &str, names: &[&str]) {
        match schema {
            Value::Object(obj) => {
                for (key, value) in obj.iter_mut() {
                    if key == "$ref" {
                        if let Some(target) = value
                            .as_str()
                            .and_then(|r| r.strip_prefix(REF_PREFIX))
                            .and_then(|n| n.strip_prefix(from))
                            && names.contains(&target)
                        {
                            *value = Value::String(format!("{REF_PREFIX}{to}{target}"));
                        }
                    } else {
                        retarget(value, from, to, names);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| retarget(v, from, to, names)),
            _ => {}
        }
    }

    fn sort_properties(props: &mut Map<String, Value>) {
        let mut entries: Vec<(String, Value)> = std::mem::take(props).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        props.extend(entries);
    }

    fn add_scale(defs: &mut Definitions, prefix: &str) {
        defs.insert(
            format!("{prefix}ScaleSpec"),
            json!({
                "description": "describes the attributes of a scale subresource",
                "type": "object",
                "properties": {
                    "replicas": {"description": "desired number of instances for the scaled object.", "type": "integer", "format": "int32"},
                },
            }),
        );
        defs.insert(
            format!("{prefix}ScaleStatus"),
            json!({
                "description": "represents the current status of a scale subresource.",
                "type": "object",
                "properties": {
                    "replicas": {"description": "actual number of observed instances of the scaled object.", "type": "integer", "format": "int32"},
                    "selector": {"description": "label query over pods that should match the replicas count. More info: http://kubernetes.io/docs/user-guide/labels#label-selectors", "type": "object", "additionalProperties": {"type": "string"}},
                    "targetSelector": {"description": "label selector for pods that should match the replicas count. This is a serializated version of both map-based and more expressive set-based selectors. This is done to avoid introspection in the clients. The string will be in the same format as the query-param syntax. If the target type only supports map-based selectors, then this field will be empty. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", "type": "string"},
                },
                "required": ["replicas"],
            }),
        );
        defs.insert(
            format!("{prefix}Scale"),
            json!({
                "description": "represents a scaling request for a resource.",
                "type": "object",
                "properties": {
                    "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                    "kind": {"description": KIND_DOC, "type": "string"},
                    "metadata": described_ref(&format!("{META_V1}ObjectMeta"), "Standard object metadata; More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata."),
                    "spec": described_ref(&format!("{prefix}ScaleSpec"), "defines the behavior of the scale. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status."),
                    "status": described_ref(&format!("{prefix}ScaleStatus"), "current status of the scale. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status. Read-only."),
                },
            }),
        );
    }

    /// extensions/v1beta1 and apps/v1beta2 DaemonSets: apps/v1's, plus extensions/v1beta1's
    /// `spec.templateGeneration` (apps/v1 keeps it in an annotation).
    fn add_daemonsets(defs: &mut Definitions) {
        const FAMILY: &[&str] = &[
            "DaemonSet",
            "DaemonSetSpec",
            "DaemonSetStatus",
            "DaemonSetUpdateStrategy",
            "RollingUpdateDaemonSet",
            "DaemonSetCondition",
        ];
        for prefix in ["io.k8s.api.extensions.v1beta1.", "io.k8s.api.apps.v1beta2."] {
            copy_family(defs, "io.k8s.api.apps.v1.", prefix, FAMILY);
        }
        if let Some(props) = defs
            .get_mut("io.k8s.api.extensions.v1beta1.DaemonSetSpec")
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            props.insert(
                "templateGeneration".into(),
                json!({"description": "DEPRECATED. A sequence number representing a specific generation of the template. Populated by the system. It can be set only during the creation.", "type": "integer", "format": "int64"}),
            );
            sort_properties(props);
        }
    }

    fn add_ingress(defs: &mut Definitions) {
        let p = "io.k8s.api.extensions.v1beta1.";
        defs.insert(
            format!("{p}IngressBackend"),
            json!({
                "description": "IngressBackend describes all endpoints for a given service and port.",
                "type": "object",
                "properties": {
                    "resource": described_ref(&format!("{CORE_V1}TypedLocalObjectReference"), "Resource is an ObjectRef to another Kubernetes resource in the namespace of the Ingress object. If resource is specified, serviceName and servicePort must not be specified."),
                    "serviceName": {"description": "Specifies the name of the referenced service.", "type": "string"},
                    "servicePort": {"description": "Specifies the port of the referenced service.", "type": "string", "format": "int-or-string"},
                },
            }),
        );
        defs.insert(
            format!("{p}HTTPIngressPath"),
            json!({
                "description": "HTTPIngressPath associates a path with a backend. Incoming urls matching the path are forwarded to the backend.",
                "type": "object",
                "properties": {
                    "backend": described_ref(&format!("{p}IngressBackend"), "Backend defines the referenced service endpoint to which the traffic will be forwarded to."),
                    "path": {"description": "Path is matched against the path of an incoming request. Currently it can contain characters disallowed from the conventional \"path\" part of a URL as defined by RFC 3986. Paths must begin with a '/'. When unspecified, all paths from incoming requests are matched.", "type": "string"},
                    "pathType": {"description": "PathType determines the interpretation of the Path matching. PathType can be one of the following values: * Exact: Matches the URL path exactly. * Prefix: Matches based on a URL path prefix split by '/'. * ImplementationSpecific: Interpretation of the Path matching is up to the IngressClass. Implementations can treat this as a separate PathType or treat it identically to Prefix or Exact path types. Implementations are required to support all path types. Defaults to ImplementationSpecific.", "type": "string"},
                },
                "required": ["backend"],
            }),
        );
        defs.insert(
            format!("{p}HTTPIngressRuleValue"),
            json!({
                "description": "HTTPIngressRuleValue is a list of http selectors pointing to backends. In the example: http://<host>/<path>?<searchpart> -> backend where where parts of the url correspond to RFC 3986, this resource will be used to match against everything after the last '/' and before the first '?' or '#'.",
                "type": "object",
                "properties": {
                    "paths": {"description": "A collection of paths that map requests to backends.", "type": "array", "items": reference(&format!("{p}HTTPIngressPath"))},
                },
                "required": ["paths"],
            }),
        );
        defs.insert(
            format!("{p}IngressRule"),
            json!({
                "description": "IngressRule represents the rules mapping the paths under a specified host to the related backend services. Incoming requests are first evaluated for a host match, then routed to the backend associated with the matching IngressRuleValue.",
                "type": "object",
                "properties": {
                    "host": {"description": "Host is the fully qualified domain name of a network host, as defined by RFC 3986. Incoming requests are matched against the host before the IngressRuleValue. If the host is unspecified, the Ingress routes all traffic based on the specified IngressRuleValue.", "type": "string"},
                    "http": reference(&format!("{p}HTTPIngressRuleValue")),
                },
            }),
        );
        defs.insert(
            format!("{p}IngressTLS"),
            json!({
                "description": "IngressTLS describes the transport layer security associated with an Ingress.",
                "type": "object",
                "properties": {
                    "hosts": {"description": "Hosts are a list of hosts included in the TLS certificate. The values in this list must match the name/s used in the tlsSecret. Defaults to the wildcard host setting for the loadbalancer controller fulfilling this Ingress, if left unspecified.", "type": "array", "items": {"type": "string"}},
                    "secretName": {"description": "SecretName is the name of the secret used to terminate SSL traffic on 443. Field is left optional to allow SSL routing based on SNI hostname alone. If the SNI host in a listener conflicts with the \"Host\" header field used by an IngressRule, the SNI host is used for termination and value of the Host header is used for routing.", "type": "string"},
                },
            }),
        );
        defs.insert(
            format!("{p}IngressSpec"),
            json!({
                "description": "IngressSpec describes the Ingress the user wishes to exist.",
                "type": "object",
                "properties": {
                    "backend": described_ref(&format!("{p}IngressBackend"), "A default backend capable of servicing requests that don't match any rule. At least one of 'backend' or 'rules' must be specified. This field is optional to allow the loadbalancer controller or defaulting logic to specify a global default."),
                    "ingressClassName": {"description": "IngressClassName is the name of the IngressClass cluster resource. The associated IngressClass defines which controller will implement the resource.", "type": "string"},
                    "rules": {"description": "A list of host rules used to configure the Ingress. If unspecified, or no rule matches, all traffic is sent to the default backend.", "type": "array", "items": reference(&format!("{p}IngressRule"))},
                    "tls": {"description": "TLS configuration. Currently the Ingress only supports a single TLS port, 443. If multiple members of this list specify different hosts, they will be multiplexed on the same port according to the hostname specified through the SNI TLS extension, if the ingress controller fulfilling the ingress supports SNI.", "type": "array", "items": reference(&format!("{p}IngressTLS"))},
                },
            }),
        );
        defs.insert(
            format!("{p}IngressStatus"),
            json!({
                "description": "IngressStatus describe the current state of the Ingress.",
                "type": "object",
                "properties": {
                    "loadBalancer": described_ref(&format!("{CORE_V1}LoadBalancerStatus"), "LoadBalancer contains the current status of the load-balancer."),
                },
            }),
        );
        defs.insert(
            format!("{p}Ingress"),
            json!({
                "description": "Ingress is a collection of rules that allow inbound connections to reach the endpoints defined by a backend. An Ingress can be configured to give services externally-reachable urls, load balance traffic, terminate SSL, offer name based virtual hosting etc. DEPRECATED - This group version of Ingress is deprecated by networking.k8s.io/v1beta1 Ingress. See the release notes for more information.",
                "type": "object",
                "properties": {
                    "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                    "kind": {"description": KIND_DOC, "type": "string"},
                    "metadata": described_ref(&format!("{META_V1}ObjectMeta"), "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
                    "spec": described_ref(&format!("{p}IngressSpec"), "Spec is the desired state of the Ingress. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
                    "status": described_ref(&format!("{p}IngressStatus"), "Status is the current state of the Ingress. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
                },
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_and_its_list_has_a_definition_with_its_gvk() {
        for r in RESOURCES {
            let name = kind_definition(r);
            for (n, kind) in [
                (name.clone(), r.kind.to_string()),
                (format!("{name}List"), format!("{}List", r.kind)),
            ] {
                let d = DEFINITIONS.get(&n).unwrap_or_else(|| panic!("{n} missing"));
                let gvk = &d["x-kubernetes-group-version-kind"][0];
                assert_eq!(gvk["group"], r.group, "{n}");
                assert_eq!(gvk["version"], r.version, "{n}");
                assert_eq!(gvk["kind"], kind.as_str(), "{n}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, missing: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                        let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                        if !DEFINITIONS.contains_key(name) {
                            missing.push(r.to_string());
                        }
                    }
                    o.values().for_each(|v| walk(v, missing));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        DEFINITIONS.values().for_each(|v| walk(v, &mut missing));
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn every_patch_meta_row_names_an_existing_field() {
        for (ty, field, ..) in PATCH_META {
            assert!(
                DEFINITIONS
                    .get(*ty)
                    .and_then(|d| d.pointer(&format!("/properties/{field}")))
                    .is_some(),
                "{ty}.{field}"
            );
        }
        let c = &DEFINITIONS["io.k8s.api.extensions.v1beta1.DeploymentSpec"];
        assert_eq!(
            c["properties"]["strategy"]["x-kubernetes-patch-strategy"],
            "retainKeys"
        );
        assert_eq!(
            c["properties"]["rollbackTo"]["$ref"],
            "#/definitions/io.k8s.api.extensions.v1beta1.RollbackConfig"
        );
        assert_eq!(
            c["properties"]["template"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"
        );
        let ing = &DEFINITIONS["io.k8s.api.extensions.v1beta1.IngressBackend"];
        assert_eq!(ing["properties"]["servicePort"]["format"], "int-or-string");
    }
}
