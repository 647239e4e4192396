//! Patch documents applied to an object in the version the client addressed: JSON patch
//! (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic merge patch (from
//! `baton-schema`). Pure; the handlers read and write around it.

use baton_api::registry::ResourceDef;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::request::PatchType;

/// Applies a patch document of type `pt` to `current` (in the addressed version).
pub fn apply_patch(
    def: &ResourceDef,
    current: &Value,
    pt: PatchType,
    body: &[u8],
) -> ApiResult<Value> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match pt {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic => baton_schema::strategic::apply(def, current, &patch)
            .map_err(|e| ApiError::new(422, "Invalid", e.to_string())),
        PatchType::Apply => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
        )),
    }
}
