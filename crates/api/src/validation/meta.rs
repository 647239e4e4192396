//! `ValidateObjectMeta`: name or generateName, namespace, labels and annotations.

use serde_json::{Map, Value, json};

use super::FieldError;
use super::names::{self, NameRule};

/// Total size of all annotation keys and values (256 KiB), which `kubectl apply`'s
/// last-applied annotation can reach.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

pub(super) fn object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Map::new();
    let meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let text = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, generate_name, namespace) = (text("name"), text("generateName"), text("namespace"));
    if !generate_name.is_empty() {
        for msg in rule.check(&generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                json!(generate_name),
                msg,
            ));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(&name, false) {
            errs.push(FieldError::invalid("metadata.name", json!(name), msg));
        }
    }
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in names::dns1123_label(&namespace) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    json!(namespace),
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(labels(meta.get("labels"), "metadata.labels"));
    errs.extend(annotations(meta.get("annotations")));
    errs
}

/// `ValidateLabels`: every key a qualified name, every value a label value; errors carry the
/// map's path, as Kubernetes reports them.
pub(super) fn labels(labels: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        for msg in names::qualified_name(k) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
        let value = v.as_str().unwrap_or_default();
        for msg in names::label_value(value) {
            errs.push(FieldError::invalid(path, json!(value), msg));
        }
    }
    errs
}

fn annotations(annotations: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in names::qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid("metadata.annotations", json!(k), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.push(FieldError {
            kind: super::FieldErrorKind::TooLong,
            field: "metadata.annotations".into(),
            value: None,
            detail: format!("must have at most {ANNOTATIONS_MAX_BYTES} bytes"),
        });
    }
    errs
}
