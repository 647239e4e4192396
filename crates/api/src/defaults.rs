//! Defaulting, per kind and version, as Kubernetes' `SetDefaults_*` functions do it.

use serde_json::Value;

use crate::registry::ResourceDef;

/// Fills in the defaults of `def`'s version in `obj` (an object of that version).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    let _ = (def, obj);
}
