//! Conversion between served versions and storage versions, with each version's defaults.
//!
//! Kubernetes decodes a request in its own version (applying that version's defaults), converts
//! it to the internal form and encodes it in the storage version; reads go the other way
//! without defaulting in the output version. Baton has no internal form: each pair of
//! (served version, storage version) has a direct conversion, and unknown fields ride along.
//!
//! - Deployments (extensions/v1beta1, apps/v1beta1, apps/v1beta2) and extensions/v1beta1
//!   ReplicaSets share apps/v1's fields; only `spec.rollbackTo` is dropped on the way in
//!   (the API server turns it into a rollback before conversion).
//! - [`ingress`]: extensions/v1beta1 ⇄ networking.k8s.io/v1 backends.
//! - [`hpa`]: autoscaling/v1's CPU percentage ⇄ autoscaling/v2 metrics.
//! - [`event`]: events.k8s.io/v1 ⇄ core/v1 Event field names.
//! - [`daemonset`]: extensions/v1beta1's `spec.templateGeneration` ⇄ apps/v1's annotation.

pub mod daemonset;
mod event;
mod hpa;
mod ingress;

use serde_json::{Map, Value};

use crate::json::child_opt;
use crate::registry::ResourceDef;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    /// The object cannot be represented in the target version; the message says why.
    #[error("{0}")]
    Unconvertible(String),
}

/// Converts `obj`, written in `def`'s version, to `def`'s storage version: defaults of the
/// source version first (as Kubernetes decodes), then conversion, then storage defaults.
/// Sets `apiVersion` and `kind` of the result.
pub fn to_storage(def: &ResourceDef, obj: Value) -> Result<Value, ConvertError> {
    let mut obj = obj;
    crate::defaults::apply(def, &mut obj);
    let Value::Object(m) = &mut obj else {
        return Err(ConvertError::Unconvertible(
            "the object must be a JSON object".into(),
        ));
    };
    if !def.is_storage_version() {
        match (def.group, def.version, def.kind) {
            (_, _, "Deployment") => drop_rollback_to(m),
            ("extensions", "v1beta1", "Ingress") => ingress::to_v1(m)?,
            ("extensions", "v1beta1", "DaemonSet") => daemonset::to_v1(m),
            ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa::to_v2(m)?,
            ("events.k8s.io", "v1", "Event") => event::to_core(m),
            _ => {}
        }
        set_type_meta(m, &def.storage_api_version(), def.kind);
        crate::defaults::apply(def.storage_def(), &mut obj);
    } else {
        set_type_meta(m, &def.storage_api_version(), def.kind);
    }
    Ok(obj)
}

/// Converts a stored object to `def`'s version. Sets `apiVersion` and `kind`.
pub fn from_storage(def: &ResourceDef, obj: Value) -> Result<Value, ConvertError> {
    let mut obj = obj;
    let Value::Object(m) = &mut obj else {
        return Err(ConvertError::Unconvertible(
            "the stored object is not a JSON object".into(),
        ));
    };
    if !def.is_storage_version() {
        match (def.group, def.version, def.kind) {
            ("extensions", "v1beta1", "Ingress") => ingress::from_v1(m)?,
            ("extensions", "v1beta1", "DaemonSet") => daemonset::from_v1(m),
            ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa::from_v2(m)?,
            ("events.k8s.io", "v1", "Event") => event::from_core(m),
            _ => {}
        }
    }
    set_type_meta(m, &def.api_version(), def.kind);
    Ok(obj)
}

fn set_type_meta(m: &mut Map<String, Value>, api_version: &str, kind: &str) {
    m.insert("apiVersion".into(), Value::String(api_version.to_string()));
    m.insert("kind".into(), Value::String(kind.to_string()));
}

/// apps/v1 has no `rollbackTo`; the API server acts on it before conversion.
fn drop_rollback_to(m: &mut Map<String, Value>) {
    if let Some(spec) = child_opt(m, "spec") {
        spec.shift_remove("rollbackTo");
    }
}

#[cfg(test)]
mod tests;
