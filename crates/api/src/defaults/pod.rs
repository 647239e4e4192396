//! Pod and pod template defaults (`SetDefaults_Pod`, `SetDefaults_PodSpec`, `SetDefaults_Container`,
//! probes, volumes, ports, env field references), shared by pods and by every controller's
//! pod template.

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, each_object, set_default, set_default_if_empty, str_of};

/// A Pod object: the spec defaults, plus what only pods get (not templates): requests copied
/// from limits, `enableServiceLinks`.
pub(super) fn pod(m: &mut Map<String, Value>) {
    let spec = child(m, "spec");
    for key in ["containers", "initContainers"] {
        each_object(spec, key, requests_from_limits);
    }
    set_default(spec, "enableServiceLinks", Value::Bool(true));
    pod_spec(spec);
}

/// A `PodTemplateSpec` (`spec.template` of Deployments, ReplicaSets, RCs).
pub fn pod_template(template: &mut Map<String, Value>) {
    pod_spec(child(template, "spec"));
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
pub fn pod_spec(spec: &mut Map<String, Value>) {
    set_default_if_empty(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default_if_empty(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_if_empty(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        each_object(spec, key, |c| {
            container(c);
            if host_network {
                host_network_ports(c);
            }
        });
    }
    each_object(spec, "volumes", volume);
}

fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(resources) = child_opt(c, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = child(resources, "requests");
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// With `hostNetwork`, a container port's hostPort defaults to its containerPort.
fn host_network_ports(c: &mut Map<String, Value>) {
    each_object(c, "ports", |p| {
        if let Some(cp) = p.get("containerPort").cloned() {
            set_default_if_empty(p, "hostPort", cp);
        }
    });
}

fn container(c: &mut Map<String, Value>) {
    let image = str_of(c, "image").to_string();
    set_default_if_empty(
        c,
        "imagePullPolicy",
        json!(default_image_pull_policy(&image)),
    );
    set_default_if_empty(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default_if_empty(c, "terminationMessagePolicy", json!("File"));
    each_object(c, "ports", |p| {
        set_default_if_empty(p, "protocol", json!("TCP"))
    });
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child_opt(c, probe_key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = child_opt(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child_opt(lifecycle, hook) {
                handler(h);
            }
        }
    }
    each_object(c, "env", |e| {
        if let Some(field_ref) = child_opt(e, "valueFrom").and_then(|v| child_opt(v, "fieldRef")) {
            set_default_if_empty(field_ref, "apiVersion", json!("v1"));
        }
    });
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (a digest without a
/// tag counts as tagged), as `SetDefaults_Container` decides from the parsed image name.
pub fn default_image_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn probe(p: &mut Map<String, Value>) {
    set_default_if_empty(p, "timeoutSeconds", json!(1));
    set_default_if_empty(p, "periodSeconds", json!(10));
    set_default_if_empty(p, "successThreshold", json!(1));
    set_default_if_empty(p, "failureThreshold", json!(3));
    handler(p);
}

/// Probe and lifecycle handlers: `httpGet` path `/` and scheme `HTTP`.
fn handler(h: &mut Map<String, Value>) {
    if let Some(get) = child_opt(h, "httpGet") {
        set_default_if_empty(get, "path", json!("/"));
        set_default_if_empty(get, "scheme", json!("HTTP"));
    }
}

/// 0644, the mode Kubernetes gives projected files.
const DEFAULT_MODE: i64 = 0o644;

fn volume(v: &mut Map<String, Value>) {
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = child_opt(v, source) {
            set_default(s, "defaultMode", json!(DEFAULT_MODE));
        }
    }
    if let Some(hp) = child_opt(v, "hostPath") {
        set_default(hp, "type", json!(""));
    }
    if let Some(d) = child_opt(v, "downwardAPI") {
        each_object(d, "items", field_ref_version);
    }
    if let Some(p) = child_opt(v, "projected") {
        each_object(p, "sources", |s| {
            if let Some(d) = child_opt(s, "downwardAPI") {
                each_object(d, "items", field_ref_version);
            }
        });
    }
}

fn field_ref_version(item: &mut Map<String, Value>) {
    if let Some(f) = child_opt(item, "fieldRef") {
        set_default_if_empty(f, "apiVersion", json!("v1"));
    }
}
