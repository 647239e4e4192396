//! Unknown-field detection for `fieldValidation=Strict|Warn`.

use baton_api::registry::ResourceDef;
use serde_json::Value;

/// Paths of fields in `obj` that the schema of `def`'s kind and version does not declare,
/// written as Kubernetes words them (`spec.template.spec.containers[0].foo`).
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let _ = (def, obj);
    Vec::new()
}
