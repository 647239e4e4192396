//! Patch documents applied to an object in the version the client addressed: JSON patch
//! (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic merge patch (from
//! `baton-schema`). Pure; the handlers read and write around it.

use baton_api::registry::ResourceDef;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::request::PatchType;
use crate::state::{MAX_JSON_PATCH_OPERATIONS, MAX_OBJECT_BYTES};

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
            apply_json_patch(current, &ops.0)
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

/// RFC 6902 with Kubernetes' bounds: at most [`MAX_JSON_PATCH_OPERATIONS`] operations, and
/// `copy` operations together may not copy more than [`MAX_OBJECT_BYTES`] (each copy could
/// double the document: thirty of them would ask for gigabytes). Both answer 413 before the
/// memory is spent; the other operations carry their values in the body, which is bounded.
fn apply_json_patch(current: &Value, ops: &[json_patch::PatchOperation]) -> ApiResult<Value> {
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                ops.len()
            ),
        ));
    }
    let mut doc = current.clone();
    let mut copied = 0usize;
    for (i, op) in ops.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(c) = op
            && let Some(from) = doc.pointer(c.from.as_str())
        {
            copied = copied.saturating_add(json_len(from));
            if copied > MAX_OBJECT_BYTES {
                return Err(ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    format!(
                        "Request entity too large: the copy operations of the JSON patch (up to operation {i}) copy more than {MAX_OBJECT_BYTES} bytes"
                    ),
                ));
            }
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?;
    }
    Ok(doc)
}

/// The length of `v` as compact JSON, without building it.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<json_patch::PatchOperation> {
        serde_json::from_value::<json_patch::Patch>(v)
            .expect("ops")
            .0
    }

    #[test]
    fn json_patch_applies_in_order() {
        let doc = json!({"a": {"b": 1}, "l": [1]});
        let out = apply_json_patch(
            &doc,
            &ops(json!([
                {"op": "copy", "from": "/a", "path": "/c"},
                {"op": "add", "path": "/l/-", "value": 2},
                {"op": "test", "path": "/c/b", "value": 1},
                {"op": "remove", "path": "/a"}
            ])),
        )
        .expect("applies");
        assert_eq!(out, json!({"c": {"b": 1}, "l": [1, 2]}));
        let err = apply_json_patch(&doc, &ops(json!([{"op": "remove", "path": "/nope"}])))
            .expect_err("a missing path fails");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn copy_amplification_is_refused_before_it_allocates() {
        let doc = json!({"s": "x".repeat(1000)});
        // Each copy doubles /s's array: 40 of them would ask for a terabyte.
        let mut list = vec![json!({"op": "add", "path": "/a", "value": [0]})];
        list.push(json!({"op": "copy", "from": "/s", "path": "/a/0"}));
        for _ in 0..40 {
            list.push(json!({"op": "copy", "from": "/a", "path": "/a/-"}));
        }
        let err = apply_json_patch(&doc, &ops(Value::Array(list))).expect_err("refused");
        assert_eq!(err.code, 413);
    }

    #[test]
    fn too_many_operations_are_refused() {
        let list =
            vec![json!({"op": "test", "path": "/a", "value": 1}); MAX_JSON_PATCH_OPERATIONS + 1];
        let err =
            apply_json_patch(&json!({"a": 1}), &ops(Value::Array(list))).expect_err("refused");
        assert_eq!(err.code, 413);
    }
}
