//! Service, ConfigMap and Secret validation (`pkg/apis/core/validation`). Namespaces need
//! only their name checked, which `meta` does with the DNS label rule.

use serde_json::{Value, json};

use super::{FieldError, go, names};

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];

pub(super) fn service(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or_default();
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if headless && (ty == "NodePort" || ty == "LoadBalancer") {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!("None"),
            format!("may not be set to 'None' for {ty} services"),
        ));
    }
    if let Some(old) = old {
        errs.extend(cluster_ips_unchanged(
            spec,
            old.get("spec").unwrap_or(&Value::Null),
        ));
    }
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    if ty == "ExternalName" {
        let name = spec
            .get("externalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            for msg in names::dns1123_subdomain(name.trim_end_matches('.')) {
                errs.push(FieldError::invalid("spec.externalName", json!(name), msg));
            }
        }
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{at}.name"), json!(name), msg));
            }
            if port_names.contains(&name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
            } else {
                port_names.push(name);
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        for msg in names::port_num(port) {
            errs.push(FieldError::invalid(format!("{at}.port"), json!(port), msg));
        }
        errs.extend(super::pod::protocol(
            p.get("protocol"),
            &format!("{at}.protocol"),
        ));
        match p.get("targetPort") {
            Some(Value::String(s)) => {
                for msg in names::port_name(s) {
                    errs.push(FieldError::invalid(
                        format!("{at}.targetPort"),
                        json!(s),
                        msg,
                    ));
                }
            }
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(
                        format!("{at}.targetPort"),
                        json!(n),
                        msg,
                    ));
                }
            }
            _ => {}
        }
        if let Some(node_port) = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    format!("{at}.nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else {
                for msg in names::port_num(node_port) {
                    errs.push(FieldError::invalid(
                        format!("{at}.nodePort"),
                        json!(node_port),
                        msg,
                    ));
                }
            }
        }
    }
    errs.extend(super::meta::labels(spec.get("selector"), "spec.selector"));
    let affinity = spec
        .get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            json!(affinity),
            AFFINITIES,
        ));
    }
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            "spec.type",
            json!(ty),
            SERVICE_TYPES,
        ));
    }
    // (protocol, port) pairs must be unique; Go prints the key struct.
    let mut pairs: Vec<(String, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        let key = (protocol, port);
        if pairs.contains(&key) {
            let shown = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                go::quote(&key.0),
                key.1
            );
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                go::raw(shown),
            ));
        } else {
            pairs.push(key);
        }
    }
    errs
}

fn cluster_ips(spec: &Value) -> Vec<&str> {
    spec.get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `validateUpgradeDowngradeClusterIPs`: a Service keeps its primary cluster IP for life,
/// unless it turns into or out of an ExternalName Service. Runs after the update was
/// normalized (an omitted `clusterIP`/`clusterIPs` is taken from the stored object).
fn cluster_ips_unchanged(spec: &Value, old: &Value) -> Vec<FieldError> {
    let ty =
        |s: &Value| s.get("type").and_then(Value::as_str).unwrap_or_default() == "ExternalName";
    let headless = |s: &Value| s.get("clusterIP").and_then(Value::as_str) == Some("None");
    if ty(spec) || ty(old) || (headless(spec) && headless(old)) {
        return Vec::new();
    }
    let (new_ips, old_ips) = (cluster_ips(spec), cluster_ips(old));
    let shown = || json!(new_ips);
    let mut errs = Vec::new();
    if new_ips.len() == old_ips.len() {
        for (i, (n, o)) in new_ips.iter().zip(&old_ips).enumerate() {
            if n != o {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    shown(),
                    "may not change once set",
                ));
            }
        }
    } else if new_ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            shown(),
            "primary clusterIP can not be unset",
        ));
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            shown(),
            "may not change once set",
        ));
    }
    errs
}

pub(super) fn config_map(obj: &Value) -> Vec<FieldError> {
    let mut errs = data_keys(obj, "data");
    errs.extend(data_keys(obj, "binaryData"));
    if let (Some(data), Some(binary)) = (
        obj.get("data").and_then(Value::as_object),
        obj.get("binaryData").and_then(Value::as_object),
    ) {
        for key in data.keys().filter(|k| binary.contains_key(*k)) {
            errs.push(FieldError::invalid(
                format!("data[{key}]"),
                json!(key),
                "duplicate of key present in binaryData",
            ));
        }
    }
    errs
}

pub(super) fn secret(obj: &Value) -> Vec<FieldError> {
    let mut errs = data_keys(obj, "data");
    errs.extend(data_keys(obj, "stringData"));
    errs
}

fn data_keys(obj: &Value, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = obj.get(field).and_then(Value::as_object) else {
        return errs;
    };
    for key in map.keys() {
        for msg in names::config_map_key(key) {
            errs.push(FieldError::invalid(
                format!("{field}[{key}]"),
                json!(key),
                msg,
            ));
        }
    }
    errs
}
