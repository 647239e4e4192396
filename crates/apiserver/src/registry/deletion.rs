//! Kubernetes' deletion semantics, as pure functions over stored objects: the propagation
//! policy recorded as the `orphan` / `foregroundDeletion` finalizers with a
//! `deletionTimestamp`, graceful deletion of pods bound to a node, and when a deletion is
//! finished (no finalizer left). The garbage collector and the namespace controller that act on
//! these records live in `baton-controllers` and reach this code only through the API.

use baton_api::registry::ResourceDef;
use serde_json::{Value, json};

use crate::objects::{self, meta_str, metadata_mut};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// The propagation policy when the client gives none: the legacy groups orphan, as they did.
pub fn default_policy(def: &ResourceDef) -> &'static str {
    match (def.group, def.version, def.kind) {
        ("extensions", "v1beta1", "Deployment" | "ReplicaSet")
        | ("apps", "v1beta1" | "v1beta2", _)
        | ("", "v1", "ReplicationController") => "Orphan",
        _ => "Background",
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    objects::metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn namespace_finalizers(obj: &Value) -> usize {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0)
}

fn is_namespace(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Namespace")
}

/// Records a deletion request on `obj`. Returns true when the object must wait for
/// finalizers (it stays, with a deletionTimestamp), false when it can go now.
pub fn mark_for_deletion(obj: &mut Value, policy: &str) -> bool {
    let mut fins = finalizers(obj);
    let add = match policy {
        "Orphan" => Some(ORPHAN),
        "Foreground" => Some(FOREGROUND),
        _ => None,
    };
    let already = meta_str(obj, "deletionTimestamp").is_some();
    if let Some(f) = add
        && !already
        && !fins.iter().any(|x| x == f)
    {
        fins.push(f.to_string());
    }
    let ns = is_namespace(obj);
    if fins.is_empty() && !(ns && namespace_finalizers(obj) > 0) {
        return false;
    }
    if ns && let Some(o) = obj.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        status["phase"] = json!("Terminating");
    }
    let m = metadata_mut(obj);
    if !fins.is_empty() {
        m.insert("finalizers".into(), json!(fins));
    }
    if !already {
        m.insert(
            "deletionTimestamp".into(),
            json!(baton_api::clock::now_rfc3339()),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    true
}

/// Graceful deletion of a pod bound to a node: the pod stays, with a deletionTimestamp
/// `grace` seconds ahead, until its node has stopped it and deletes it with grace 0. A
/// shorter grace period shortens an ongoing deletion; grace 0 deletes now. Returns true when
/// the pod must wait for its node.
pub fn mark_graceful(obj: &mut Value, grace: Option<i64>) -> bool {
    if obj.get("kind").and_then(Value::as_str) != Some("Pod") {
        return false;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    let grace = grace.unwrap_or(default).max(0);
    if grace == 0 {
        return false;
    }
    let current = objects::metadata(obj)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64);
    if current.is_some_and(|c| c <= grace) && meta_str(obj, "deletionTimestamp").is_some() {
        return true;
    }
    let m = metadata_mut(obj);
    m.insert(
        "deletionTimestamp".into(),
        json!(baton_api::clock::rfc3339_in(grace)),
    );
    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    true
}

/// True when an object being deleted has no finalizers left.
pub fn deletion_finished(obj: &Value) -> bool {
    let grace = objects::metadata(obj)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    meta_str(obj, "deletionTimestamp").is_some()
        && grace == 0
        && finalizers(obj).is_empty()
        && !(is_namespace(obj) && namespace_finalizers(obj) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_and_foreground_are_recorded_as_finalizers() {
        let mut o = json!({"kind": "Deployment", "metadata": {"name": "a"}});
        assert!(mark_for_deletion(&mut o, "Orphan"));
        assert_eq!(o["metadata"]["finalizers"], json!(["orphan"]));
        assert!(o["metadata"]["deletionTimestamp"].is_string());
        let mut o = json!({"kind": "Deployment", "metadata": {"name": "a"}});
        assert!(mark_for_deletion(&mut o, "Foreground"));
        assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        let mut o = json!({"kind": "Deployment", "metadata": {"name": "a"}});
        assert!(!mark_for_deletion(&mut o, "Background"));
    }

    #[test]
    fn namespaces_wait_for_their_spec_finalizer() {
        let mut ns = json!({"kind": "Namespace", "metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]}});
        assert!(mark_for_deletion(&mut ns, "Background"));
        assert_eq!(ns["status"]["phase"], json!("Terminating"));
        assert!(!deletion_finished(&ns));
        ns["spec"]["finalizers"] = json!([]);
        assert!(deletion_finished(&ns));
    }
}
