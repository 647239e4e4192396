//! Objects as Kubernetes serializes them: every field Go's `encoding/json` always writes, and
//! the field order of the Go types.
//!
//! Kubernetes encodes its Go structs, so a field without `omitempty` is written even at its
//! zero value (`status.replicas: 0` of a ReplicationController), and so is every non-pointer
//! struct field, `omitempty` or not (`status: {}`, `resources: {}`, `creationTimestamp: null`).
//! Strict clients (the Python client 37's models, Java, C#) reject an object that lacks a field
//! their schema requires, so Baton fills them in on the way out. The `required` lists of the
//! catalog say which scalar fields are never omitted; [`ALWAYS`] lists the non-pointer struct
//! and time fields, which the OpenAPI schemas do not mark. [`GO_ORDER`] puts the fields of the
//! most visible types in their Go declaration order (the OpenAPI lists them alphabetically).

use baton_api::registry::ResourceDef;
use serde_json::{Map, Value};

use crate::catalog::{self, DEFINITIONS, REF_PREFIX};

/// Fields of a type (by short definition name) that Kubernetes always writes although the
/// schema does not mark them required: non-pointer structs (written as at least `{}`) and
/// `metav1.Time`/`MicroTime` values (written as `null` when zero).
const ALWAYS: &[(&str, &[&str])] = &[
    ("ObjectMeta", &["creationTimestamp"]),
    ("PodTemplateSpec", &["metadata"]),
    ("Container", &["resources"]),
    ("Pod", &["spec", "status"]),
    ("Service", &["spec", "status"]),
    ("ServiceStatus", &["loadBalancer"]),
    ("ReplicationController", &["spec", "status"]),
    ("ReplicaSet", &["spec", "status"]),
    ("Deployment", &["spec", "status"]),
    ("Job", &["spec", "status"]),
    ("JobSpec", &["template"]),
    ("JobCondition", &["lastProbeTime", "lastTransitionTime"]),
    ("CronJob", &["spec", "status"]),
    ("CronJobSpec", &["jobTemplate"]),
    ("JobTemplateSpec", &["metadata"]),
    ("StatefulSet", &["spec", "status"]),
    ("StatefulSetSpec", &["template", "updateStrategy"]),
    ("StatefulSetCondition", &["lastTransitionTime"]),
    ("DeploymentSpec", &["template", "strategy"]),
    (
        "DeploymentCondition",
        &["lastUpdateTime", "lastTransitionTime"],
    ),
    ("ReplicaSetCondition", &["lastTransitionTime"]),
    ("ReplicationControllerCondition", &["lastTransitionTime"]),
    ("Namespace", &["spec", "status"]),
    ("Node", &["spec", "status"]),
    ("NodeStatus", &["daemonEndpoints", "nodeInfo"]),
    (
        "NodeCondition",
        &["lastHeartbeatTime", "lastTransitionTime"],
    ),
    ("DaemonEndpoints", &["kubeletEndpoint"]),
    ("PodCondition", &["lastProbeTime", "lastTransitionTime"]),
    ("ContainerStatus", &["state", "lastState"]),
    ("HorizontalPodAutoscaler", &["spec", "status"]),
    ("Ingress", &["spec", "status"]),
    ("IngressStatus", &["loadBalancer"]),
    ("Lease", &["spec"]),
    ("Scale", &["spec", "status"]),
    (
        "Event",
        &[
            "involvedObject",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "eventTime",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
        ],
    ),
    ("Endpoint", &["conditions"]),
];

/// Go declaration order of the fields of a type (by short definition name); fields not listed
/// keep their place after the listed ones.
const GO_ORDER: &[(&str, &[&str])] = &[
    (
        "ObjectMeta",
        &[
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ],
    ),
    (
        "OwnerReference",
        &[
            "apiVersion",
            "kind",
            "name",
            "uid",
            "controller",
            "blockOwnerDeletion",
        ],
    ),
    ("PodTemplateSpec", &["metadata", "spec"]),
    (
        "PodSpec",
        &[
            "volumes",
            "initContainers",
            "containers",
            "ephemeralContainers",
            "restartPolicy",
            "terminationGracePeriodSeconds",
            "activeDeadlineSeconds",
            "dnsPolicy",
            "nodeSelector",
            "serviceAccountName",
            "serviceAccount",
            "automountServiceAccountToken",
            "nodeName",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "shareProcessNamespace",
            "securityContext",
            "imagePullSecrets",
            "hostname",
            "subdomain",
            "affinity",
            "schedulerName",
            "tolerations",
            "hostAliases",
            "priorityClassName",
            "priority",
            "dnsConfig",
            "readinessGates",
            "runtimeClassName",
            "enableServiceLinks",
            "preemptionPolicy",
            "overhead",
            "topologySpreadConstraints",
            "setHostnameAsFQDN",
            "os",
            "hostUsers",
            "schedulingGates",
            "resourceClaims",
            "resources",
        ],
    ),
    (
        "Container",
        &[
            "name",
            "image",
            "command",
            "args",
            "workingDir",
            "ports",
            "envFrom",
            "env",
            "resources",
            "resizePolicy",
            "restartPolicy",
            "restartPolicyRules",
            "volumeMounts",
            "volumeDevices",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
            "terminationMessagePath",
            "terminationMessagePolicy",
            "imagePullPolicy",
            "securityContext",
            "stdin",
            "stdinOnce",
            "tty",
        ],
    ),
    (
        "ContainerPort",
        &["name", "hostPort", "containerPort", "protocol", "hostIP"],
    ),
    (
        "PodStatus",
        &[
            "observedGeneration",
            "phase",
            "conditions",
            "message",
            "reason",
            "nominatedNodeName",
            "hostIP",
            "hostIPs",
            "podIP",
            "podIPs",
            "startTime",
            "initContainerStatuses",
            "containerStatuses",
            "qosClass",
            "ephemeralContainerStatuses",
            "resize",
            "resourceClaimStatuses",
        ],
    ),
    (
        "ContainerStatus",
        &[
            "name",
            "state",
            "lastState",
            "ready",
            "restartCount",
            "image",
            "imageID",
            "containerID",
            "started",
            "allocatedResources",
            "resources",
            "volumeMounts",
            "user",
            "allocatedResourcesStatus",
            "stopSignal",
        ],
    ),
    (
        "PodCondition",
        &[
            "type",
            "observedGeneration",
            "status",
            "lastProbeTime",
            "lastTransitionTime",
            "reason",
            "message",
        ],
    ),
    (
        "ServiceSpec",
        &[
            "ports",
            "selector",
            "clusterIP",
            "clusterIPs",
            "type",
            "externalIPs",
            "sessionAffinity",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "externalName",
            "externalTrafficPolicy",
            "healthCheckNodePort",
            "publishNotReadyAddresses",
            "sessionAffinityConfig",
            "ipFamilies",
            "ipFamilyPolicy",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
            "internalTrafficPolicy",
            "trafficDistribution",
        ],
    ),
    (
        "ServicePort",
        &[
            "name",
            "protocol",
            "appProtocol",
            "port",
            "targetPort",
            "nodePort",
        ],
    ),
    ("LabelSelector", &["matchLabels", "matchExpressions"]),
    ("DeploymentStrategy", &["type", "rollingUpdate"]),
    ("RollingUpdateDeployment", &["maxUnavailable", "maxSurge"]),
    (
        "DeploymentCondition",
        &[
            "type",
            "status",
            "lastUpdateTime",
            "lastTransitionTime",
            "reason",
            "message",
        ],
    ),
    (
        "DeploymentSpec",
        &[
            "replicas",
            "selector",
            "template",
            "strategy",
            "minReadySeconds",
            "revisionHistoryLimit",
            "paused",
            "rollbackTo",
            "progressDeadlineSeconds",
        ],
    ),
    (
        "DeploymentStatus",
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "terminatingReplicas",
            "conditions",
            "collisionCount",
        ],
    ),
    (
        "ReplicationControllerSpec",
        &["replicas", "minReadySeconds", "selector", "template"],
    ),
    (
        "ReplicaSetSpec",
        &["replicas", "minReadySeconds", "selector", "template"],
    ),
    (
        "ReplicationControllerStatus",
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
            "conditions",
        ],
    ),
    (
        "ReplicaSetStatus",
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "terminatingReplicas",
            "observedGeneration",
            "conditions",
        ],
    ),
];

/// The fields every top-level object opens with, and the ones it closes with.
const TOP_FIRST: &[&str] = &["kind", "apiVersion", "metadata"];
const TOP_LAST: &[&str] = &["spec", "status"];

/// Completes `obj`, an object of `def`'s kind in `def`'s version, as Kubernetes would serialize
/// it: missing always-written fields get their Go zero value, and fields take Go's order.
pub fn complete(def: &ResourceDef, obj: &mut Value) {
    complete_definition(&catalog::kind_definition(def), obj);
}

/// [`complete`] for an object of a named definition (`io.k8s.api.autoscaling.v1.Scale`).
pub fn complete_definition(definition: &str, obj: &mut Value) {
    if let Some(schema) = DEFINITIONS.get(definition) {
        fill(short(definition), schema, obj, 0);
    }
    if let Some(map) = obj.as_object_mut() {
        reorder(map, TOP_FIRST, TOP_LAST);
    }
}

/// `Deployment` of `io.k8s.api.apps.v1.Deployment`.
fn short(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

/// Follows `$ref`s to the definition they name: (its short name, its schema).
fn target(schema: &Value) -> (&str, &Value) {
    let mut name = "";
    let mut current = schema;
    for _ in 0..16 {
        let reference = current
            .get("$ref")
            .and_then(Value::as_str)
            .or_else(|| current.pointer("/allOf/0/$ref").and_then(Value::as_str));
        let Some(full) = reference.and_then(|r| r.strip_prefix(REF_PREFIX)) else {
            break;
        };
        match DEFINITIONS.get(full) {
            Some(next) => {
                name = short(full);
                current = next;
            }
            None => break,
        }
    }
    (name, current)
}

fn table<'a>(rows: &'a [(&str, &'a [&'a str])], ty: &str) -> &'a [&'a str] {
    rows.iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

const MAX_DEPTH: usize = 64;

fn fill(ty: &str, schema: &Value, value: &mut Value, depth: usize) {
    if depth > MAX_DEPTH
        || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                if let Some(add @ Value::Object(_)) = schema.get("additionalProperties") {
                    let (t, s) = target(add);
                    for v in map.values_mut() {
                        fill(t, s, v, depth + 1);
                    }
                }
                return;
            };
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            for field in required.chain(table(ALWAYS, ty).iter().copied()) {
                let Some(prop) = props.get(field) else {
                    continue;
                };
                if map.get(field).is_none_or(Value::is_null) {
                    let zero = zero(prop, depth + 1);
                    map.insert(field.to_string(), zero);
                }
            }
            for (key, v) in map.iter_mut() {
                if let Some(prop) = props.get(key) {
                    let (t, s) = target(prop);
                    fill(t, s, v, depth + 1);
                }
            }
            let order = table(GO_ORDER, ty);
            if !order.is_empty() {
                reorder(map, order, &[]);
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                let (t, s) = target(item);
                for v in items {
                    fill(t, s, v, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// What Go writes for the zero value of a field of this schema.
fn zero(schema: &Value, depth: usize) -> Value {
    let (ty, s) = target(schema);
    match ty {
        "Time" | "MicroTime" | "RawExtension" => return Value::Null,
        "Quantity" => return Value::from("0"),
        "IntOrString" => return Value::from(0),
        _ => {}
    }
    match s.get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("string") => match s.get("format").and_then(Value::as_str) {
            Some("date-time") => Value::Null,
            Some("int-or-string") => Value::from(0),
            _ => Value::from(""),
        },
        _ if s.get("properties").is_some() && depth <= MAX_DEPTH => {
            let mut v = Value::Object(Map::new());
            fill(ty, s, &mut v, depth);
            v
        }
        // Slices and maps: Go writes a nil one as `null`.
        _ => Value::Null,
    }
}

/// Puts `first` (in that order) before the other fields and `last` after them.
fn reorder(map: &mut Map<String, Value>, first: &[&str], last: &[&str]) {
    let mut head = Map::new();
    for f in first {
        if let Some(v) = map.shift_remove(*f) {
            head.insert((*f).to_string(), v);
        }
    }
    let mut tail = Map::new();
    for f in last {
        if let Some(v) = map.shift_remove(*f) {
            tail.insert((*f).to_string(), v);
        }
    }
    head.append(map);
    head.append(&mut tail);
    *map = head;
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::registry::find;
    use serde_json::json;

    fn completed(group: &str, version: &str, resource: &str, mut obj: Value) -> Value {
        complete(
            find(group, version, resource).expect("registered"),
            &mut obj,
        );
        obj
    }

    #[test]
    fn replication_controller_status_always_has_replicas() {
        let rc = completed(
            "",
            "v1",
            "replicationcontrollers",
            json!({"apiVersion": "v1", "kind": "ReplicationController",
                   "metadata": {"name": "rc", "namespace": "default", "creationTimestamp": "2025-01-01T00:00:00Z"},
                   "spec": {"replicas": 1, "selector": {"a": "b"},
                            "template": {"metadata": {"labels": {"a": "b"}},
                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}},
                   "status": {}}),
        );
        assert_eq!(rc["status"], json!({"replicas": 0}));
        let without_status = completed(
            "",
            "v1",
            "replicationcontrollers",
            json!({"kind": "ReplicationController", "apiVersion": "v1", "metadata": {"name": "rc"}, "spec": {}}),
        );
        assert_eq!(without_status["status"], json!({"replicas": 0}));
    }

    #[test]
    fn non_pointer_structs_and_times_are_written_as_go_writes_them() {
        let d = completed(
            "apps",
            "v1",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "d", "creationTimestamp": "2025-01-01T00:00:00Z"},
                   "spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"type": "Recreate"},
                            "template": {"metadata": {"labels": {"a": "b"}},
                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(
            d["spec"]["template"]["metadata"],
            json!({"creationTimestamp": null, "labels": {"a": "b"}})
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({})
        );
        assert_eq!(d["status"], json!({}));
    }

    #[test]
    fn top_level_and_object_meta_take_go_order() {
        let svc = completed(
            "",
            "v1",
            "services",
            json!({"status": {}, "spec": {"ports": [{"port": 80}]},
                   "metadata": {"uid": "u", "labels": {"a": "b"}, "name": "s", "namespace": "default",
                                "resourceVersion": "5", "creationTimestamp": "2025-01-01T00:00:00Z"},
                   "apiVersion": "v1", "kind": "Service"}),
        );
        let keys: Vec<&str> = svc
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata", "spec", "status"]);
        let meta: Vec<&str> = svc["metadata"]
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            meta,
            [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "labels"
            ]
        );
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn present_values_are_never_changed() {
        let pod = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2,
                "image": "i", "imageID": "sha", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}});
        let done = completed("", "v1", "pods", pod.clone());
        assert_eq!(done["spec"], pod["spec"]);
        assert_eq!(
            done["status"]["containerStatuses"][0]["state"],
            pod["status"]["containerStatuses"][0]["state"]
        );
        assert_eq!(
            done["status"]["containerStatuses"][0]["lastState"],
            json!({})
        );
    }

    #[test]
    fn container_status_scalars_get_zero_values() {
        let pod = completed(
            "",
            "v1",
            "pods",
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "c", "image": "i"}]},
                   "status": {"containerStatuses": [{"name": "c"}]}}),
        );
        let cs = &pod["status"]["containerStatuses"][0];
        assert_eq!(cs["ready"], json!(false));
        assert_eq!(cs["restartCount"], json!(0));
        assert_eq!(cs["image"], json!(""));
        assert_eq!(cs["imageID"], json!(""));
    }
}
