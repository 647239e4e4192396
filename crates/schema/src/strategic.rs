//! Strategic merge patch (`application/strategic-merge-patch+json`).

use baton_api::registry::ResourceDef;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    /// The patch is not applicable (wrong shape, bad directive); the message says why.
    #[error("{0}")]
    Invalid(String),
}

/// Applies a strategic merge patch to `original`, an object of `def`'s kind and version.
pub fn apply(def: &ResourceDef, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let _ = (def, original, patch);
    Err(PatchError::Invalid(
        "strategic merge patch not implemented yet".into(),
    ))
}
