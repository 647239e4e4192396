//! Strategic merge patch (`application/strategic-merge-patch+json`).
//!
//! Maps merge recursively and `null` deletes a key. A list merges only where the kind's
//! schema says so (`x-kubernetes-patch-strategy: merge`): lists of objects by their
//! `x-kubernetes-patch-merge-key`, lists of scalars as a union; every other list is replaced.
//! The directives kubectl sends are honoured: `$patch` (`replace`, `delete`, `merge`),
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//! The merge metadata is looked up by walking the schema of the exact kind and version, so a
//! patch against extensions/v1beta1 merges like one against apps/v1.

use baton_api::registry::ResourceDef;
use serde_json::{Map, Value};

use crate::catalog::{self, DEFINITIONS};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    /// The patch is not applicable (wrong shape, bad directive); the message says why.
    #[error("{0}")]
    Invalid(String),
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`, an object of `def`'s kind and version.
pub fn apply(def: &ResourceDef, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Invalid(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    let schema = DEFINITIONS.get(&catalog::kind_definition(def));
    let original = original.as_object().cloned().unwrap_or_default();
    merge_map(original, patch, schema).map(Value::Object)
}

/// The merge metadata of one field, read from its schema.
#[derive(Clone, Copy, Default)]
struct FieldMeta<'a> {
    schema: Option<&'a Value>,
    merge_key: Option<&'a str>,
    merge: bool,
}

fn field_meta<'a>(parent: Option<&'a Value>, key: &str) -> FieldMeta<'a> {
    let Some(parent) = parent.map(|p| catalog::resolve(&DEFINITIONS, p)) else {
        return FieldMeta::default();
    };
    let schema = parent
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| parent.get("additionalProperties").filter(|a| a.is_object()));
    let merge_key = schema
        .and_then(|s| s.get("x-kubernetes-patch-merge-key"))
        .and_then(Value::as_str);
    let merge = schema
        .and_then(|s| s.get("x-kubernetes-patch-strategy"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|part| part == "merge"));
    FieldMeta {
        schema,
        merge_key,
        merge,
    }
}

fn invalid(message: impl Into<String>) -> PatchError {
    PatchError::Invalid(message.into())
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<&Value>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => return Ok(without_directives(patch)),
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => {
                return Err(invalid(format!(
                    "Unrecognized $patch directive: {directive}"
                )));
            }
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Some(keys) = retain.as_array() else {
            return Err(invalid("$retainKeys must be a list of field names"));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    // Deletions first, so that a value the same patch adds back survives.
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Some(remove) = value.as_array() else {
                return Err(invalid(format!("{key} must be a list")));
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|item| !remove.contains(item));
            }
        }
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if key == DIRECTIVE || key == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
            orders.push((field, value));
            continue;
        }
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            continue;
        }
        if value.is_null() {
            original.shift_remove(key);
            continue;
        }
        let meta = field_meta(schema, key);
        let current = original.get_mut(key).map(std::mem::take);
        let merged = match (current, value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    original.shift_remove(key);
                    continue;
                }
                Value::Object(merge_map(o, p, meta.schema)?)
            }
            (None, Value::Object(p)) => {
                if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    continue;
                }
                Value::Object(merge_map(Map::new(), p, meta.schema)?)
            }
            (Some(Value::Array(o)), Value::Array(p)) => Value::Array(merge_list(o, p, meta)?),
            (None, Value::Array(p)) => Value::Array(merge_list(Vec::new(), p, meta)?),
            (_, v) => v.clone(),
        };
        original.insert(key.clone(), merged);
    }
    for (field, order) in orders {
        let Some(order) = order.as_array() else {
            return Err(invalid(format!(
                "{SET_ELEMENT_ORDER}{field} must be a list"
            )));
        };
        let meta = field_meta(schema, field);
        if let Some(Value::Array(list)) = original.get_mut(field) {
            reorder(list, order, meta.merge_key);
        }
    }
    Ok(original)
}

/// A patch value with its directives removed, for places where it is taken as is.
fn without_directives(patch: &Map<String, Value>) -> Map<String, Value> {
    patch
        .iter()
        .filter(|(k, _)| {
            k.as_str() != DIRECTIVE
                && k.as_str() != RETAIN_KEYS
                && !k.starts_with(SET_ELEMENT_ORDER)
                && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge_list(
    mut original: Vec<Value>,
    patch: &[Value],
    meta: FieldMeta<'_>,
) -> Result<Vec<Value>, PatchError> {
    let is_directive = |v: &Value, d: &str| v.get(DIRECTIVE).and_then(Value::as_str) == Some(d);
    if !meta.merge || patch.iter().any(|v| is_directive(v, "replace")) {
        return Ok(patch
            .iter()
            .filter(|v| !is_directive(v, "replace"))
            .map(|v| match v {
                Value::Object(m) => Value::Object(without_directives(m)),
                other => other.clone(),
            })
            .collect());
    }
    if patch.iter().all(|v| !v.is_object()) {
        for item in patch {
            if !original.contains(item) {
                original.push(item.clone());
            }
        }
        return Ok(original);
    }
    let Some(key) = meta.merge_key else {
        return Ok(patch.to_vec());
    };
    let item_schema = meta.schema.and_then(|s| s.get("items"));
    for item in patch {
        let Some(item) = item.as_object() else {
            return Err(invalid(
                "a list merged by key cannot mix objects and scalars",
            ));
        };
        let Some(id) = item.get(key) else {
            return Err(invalid(format!(
                "map: {} does not contain declared merge key: {key}",
                Value::Object(item.clone())
            )));
        };
        match item.get(DIRECTIVE).map(|d| d.as_str()) {
            Some(Some("delete")) => {
                original.retain(|o| o.get(key) != Some(id));
                continue;
            }
            None | Some(Some("merge")) => {}
            Some(_) => {
                return Err(invalid(format!(
                    "Unrecognized $patch directive in list item: {}",
                    Value::Object(item.clone())
                )));
            }
        }
        match original.iter().position(|o| o.get(key) == Some(id)) {
            Some(pos) => {
                let current = match std::mem::take(&mut original[pos]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                original[pos] = Value::Object(merge_map(current, item, item_schema)?);
            }
            None => original.push(Value::Object(merge_map(Map::new(), item, item_schema)?)),
        }
    }
    Ok(original)
}

/// Orders `list` as `order` says; elements `order` does not mention keep their relative
/// order after the ones it does.
fn reorder(list: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let identity = |v: &Value| -> Value {
        match (merge_key, v) {
            (Some(key), Value::Object(m)) => m.get(key).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(identity).collect();
    let mut indexed: Vec<(usize, Value)> = std::mem::take(list)
        .into_iter()
        .map(|v| {
            let id = identity(&v);
            (
                wanted.iter().position(|w| *w == id).unwrap_or(usize::MAX),
                v,
            )
        })
        .collect();
    indexed.sort_by_key(|(pos, _)| *pos);
    list.extend(indexed.into_iter().map(|(_, v)| v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::registry::find;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "1"}, "finalizers": ["x"]},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.24", "args": ["a", "b"], "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                    {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}
                ]}}
            }
        })
    }

    fn patch(group: &str, version: &str, original: Value, p: Value) -> Result<Value, PatchError> {
        apply(
            find(group, version, "deployments").expect("registered"),
            &original,
            &p,
        )
    }

    fn containers(v: &Value) -> &Value {
        &v["spec"]["template"]["spec"]["containers"]
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            patch: Value,
            check: fn(&Value),
        }
        let cases = [
            Case {
                name: "kubectl set image merges containers by name",
                patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}}),
                check: |v| {
                    assert_eq!(containers(v)[0]["image"], "nginx:1.25");
                    assert_eq!(containers(v)[0]["args"], json!(["a", "b"]));
                    assert_eq!(containers(v)[1]["image"], "busybox");
                },
            },
            Case {
                name: "kubectl apply of a changed image",
                patch: json!({
                    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                    "spec": {"template": {"spec": {
                        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
                        "containers": [{"image": "nginx:1.26", "name": "nginx"}]
                    }}}
                }),
                check: |v| {
                    assert_eq!(containers(v)[0]["name"], "sidecar");
                    assert_eq!(containers(v)[1]["image"], "nginx:1.26");
                    assert_eq!(v["metadata"]["annotations"]["a"], "1");
                    assert_eq!(
                        v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
                        "{}"
                    );
                },
            },
            Case {
                name: "kubectl label adds and removes labels",
                patch: json!({"metadata": {"labels": {"env": "prod", "app": null}}}),
                check: |v| assert_eq!(v["metadata"]["labels"], json!({"env": "prod"})),
            },
            Case {
                name: "kubectl annotate overwrites an annotation",
                patch: json!({"metadata": {"annotations": {"a": "2"}}}),
                check: |v| assert_eq!(v["metadata"]["annotations"], json!({"a": "2"})),
            },
            Case {
                name: "new keyed items are appended",
                patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "fluentd"}]}}}}),
                check: |v| {
                    assert_eq!(containers(v).as_array().map(Vec::len), Some(3));
                    assert_eq!(containers(v)[2]["name"], "log");
                },
            },
            Case {
                name: "$patch: delete removes a keyed item",
                patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
                check: |v| assert_eq!(containers(v).as_array().map(Vec::len), Some(1)),
            },
            Case {
                name: "$patch: replace in a list replaces it",
                patch: json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
                check: |v| assert_eq!(*containers(v), json!([{"name": "only", "image": "x"}])),
            },
            Case {
                name: "$patch: replace on a map replaces it",
                patch: json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
                check: |v| assert_eq!(v["metadata"]["labels"], json!({"new": "1"})),
            },
            Case {
                name: "$retainKeys drops the other keys of a retainKeys field",
                patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
                check: |v| assert_eq!(v["spec"]["strategy"], json!({"type": "Recreate"})),
            },
            Case {
                name: "lists without a merge strategy are replaced",
                patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["c"]}]}}}}),
                check: |v| assert_eq!(containers(v)[0]["args"], json!(["c"])),
            },
            Case {
                name: "ports merge by containerPort and env by name",
                patch: json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "nginx", "ports": [{"containerPort": 80, "name": "http"}]},
                    {"name": "sidecar", "env": [{"name": "B", "value": "2"}]}
                ]}}}}),
                check: |v| {
                    assert_eq!(
                        containers(v)[0]["ports"],
                        json!([{"containerPort": 80, "name": "http"}, {"containerPort": 443}])
                    );
                    assert_eq!(
                        containers(v)[1]["env"],
                        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
                    );
                },
            },
            Case {
                name: "finalizers merge as a set and $deleteFromPrimitiveList removes",
                patch: json!({"metadata": {"finalizers": ["y", "z"], "$deleteFromPrimitiveList/finalizers": ["x"]}}),
                check: |v| assert_eq!(v["metadata"]["finalizers"], json!(["y", "z"])),
            },
            Case {
                name: "null deletes a nested key",
                patch: json!({"spec": {"strategy": {"rollingUpdate": null}}}),
                check: |v| assert_eq!(v["spec"]["strategy"], json!({"type": "RollingUpdate"})),
            },
        ];
        for case in cases {
            let out = patch("apps", "v1", deployment(), case.patch)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            (case.check)(&out);
        }
    }

    #[test]
    fn legacy_versions_merge_by_the_same_keys() {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}});
        for (g, v) in [
            ("extensions", "v1beta1"),
            ("apps", "v1beta1"),
            ("apps", "v1beta2"),
        ] {
            let out = patch(g, v, deployment(), p.clone()).expect("applies");
            assert_eq!(containers(&out)[0]["image"], "nginx:2", "{g}/{v}");
            assert_eq!(containers(&out)[1]["name"], "sidecar", "{g}/{v}");
        }
    }

    #[test]
    fn bad_patches_are_rejected() {
        assert!(patch("apps", "v1", deployment(), json!([1])).is_err());
        assert!(
            patch(
                "apps",
                "v1",
                deployment(),
                json!({"spec": {"$patch": "explode"}})
            )
            .is_err()
        );
        let missing_key = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert!(patch("apps", "v1", deployment(), missing_key).is_err());
    }
}
