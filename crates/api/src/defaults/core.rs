//! core/v1 defaults other than pods and ReplicationControllers: Service, Endpoints,
//! Namespace, Secret, Node.

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, each_object, set_default, set_default_if_empty, str_of};

/// Seconds of ClientIP session affinity when none is given (three hours).
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10_800;

pub(super) fn service(m: &mut Map<String, Value>) {
    let spec = child(m, "spec");
    set_default_if_empty(spec, "sessionAffinity", json!("None"));
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.shift_remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .filter(|v| !v.is_null());
            if timeout.is_none() {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({ "clientIP": { "timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS } }),
                );
            }
        }
        _ => {}
    }
    set_default_if_empty(spec, "type", json!("ClusterIP"));
    each_object(spec, "ports", |p| {
        set_default_if_empty(p, "protocol", json!("TCP"));
        // Zero and "" both mean "unset" for an IntOrString.
        if let Some(port) = p.get("port").cloned() {
            set_default_if_empty(p, "targetPort", port);
        }
    });
    let ty = str_of(spec, "type").to_string();
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default_if_empty(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        // Kubernetes fills these in the service REST storage when it allocates the cluster IP;
        // Baton allocates IPv4 only, so the outcome is always this.
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default_if_empty(spec, "ipFamilies", json!(["IPv4"]));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

pub(super) fn endpoints(m: &mut Map<String, Value>) {
    each_object(m, "subsets", |s| {
        each_object(s, "ports", |p| {
            set_default_if_empty(p, "protocol", json!("TCP"))
        });
    });
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label), the Active phase, and the
/// `kubernetes` finalizer that Kubernetes adds on create. The finalizer is added only when the
/// object has no `spec.finalizers` at all, so that the namespace controller's removal (which
/// leaves `[]`) is not undone.
pub(super) fn namespace(m: &mut Map<String, Value>) {
    let meta = child(m, "metadata");
    let name = str_of(meta, "name").to_string();
    if !name.is_empty() {
        child(meta, "labels").insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let spec = child(m, "spec");
    if !deleting && spec.get("finalizers").is_none_or(Value::is_null) {
        spec.insert("finalizers".into(), json!(["kubernetes"]));
    }
    set_default_if_empty(child(m, "status"), "phase", json!("Active"));
}

pub(super) fn secret(m: &mut Map<String, Value>) {
    set_default_if_empty(m, "type", json!("Opaque"));
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(super) fn node(m: &mut Map<String, Value>) {
    let Some(status) = child_opt(m, "status") else {
        return;
    };
    if let Some(capacity) = status.get("capacity").cloned() {
        set_default(status, "allocatable", capacity);
    }
}
