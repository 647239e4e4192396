//! Resource quantities in request bodies, read as Kubernetes' decoder reads them: every field
//! whose schema is `resource.Quantity` (container requests and limits, node capacity, HPA
//! targets, emptyDir sizes…) is parsed with [`baton_api::quantity::Quantity`] and replaced by
//! the text Kubernetes stores (`1.5` → `1500m`, `1024Mi` → `1Gi`, a YAML number `2` → `"2"`),
//! so every later reader sees one form. The kind's schema in the version the client spoke says
//! where the quantities are.

use baton_api::quantity::{Quantity, QuantityError};
use baton_api::registry::ResourceDef;
use serde_json::Value;

use crate::catalog::{self, DEFINITIONS, REF_PREFIX};

/// The definition every quantity field refers to.
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Deeper than any served kind nests.
const MAX_DEPTH: usize = 64;

/// A field that holds no quantity Baton can store.
#[derive(Debug, Clone, PartialEq)]
pub struct BadQuantity {
    /// Written as Kubernetes writes field paths (`spec.containers[0].resources.limits[cpu]`).
    pub field: String,
    pub value: Value,
    pub error: QuantityError,
}

/// Puts every quantity of `obj` (an object of `def`'s kind in `def`'s version) in the form
/// Kubernetes stores; returns the fields that are not quantities (left as they were).
pub fn canonicalize(def: &ResourceDef, obj: &mut Value) -> Vec<BadQuantity> {
    let mut bad = Vec::new();
    let Some(schema) = DEFINITIONS.get(&catalog::kind_definition(def)) else {
        return bad;
    };
    let Some(props) = schema.get("properties") else {
        return bad;
    };
    if let Some(map) = obj.as_object_mut() {
        for (key, value) in map.iter_mut() {
            if let Some(sub) = props.get(key) {
                walk(sub, value, key, 0, &mut bad);
            }
        }
    }
    bad
}

/// Whether `schema` is (a `$ref` chain to) the Quantity definition.
fn is_quantity(schema: &Value) -> bool {
    let mut current = schema;
    for _ in 0..16 {
        let Some(name) = current
            .get("$ref")
            .and_then(Value::as_str)
            .or_else(|| current.pointer("/allOf/0/$ref").and_then(Value::as_str))
            .and_then(|r| r.strip_prefix(REF_PREFIX))
        else {
            return false;
        };
        if name == QUANTITY {
            return true;
        }
        match DEFINITIONS.get(name) {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

fn walk(schema: &Value, value: &mut Value, path: &str, depth: usize, bad: &mut Vec<BadQuantity>) {
    if depth > MAX_DEPTH {
        return;
    }
    if is_quantity(schema) {
        match Quantity::from_json(value) {
            Ok(q) => *value = Value::String(q.to_string()),
            Err(error) => bad.push(BadQuantity {
                field: path.to_string(),
                value: value.clone(),
                error,
            }),
        }
        return;
    }
    let schema = catalog::resolve(&DEFINITIONS, schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map.iter_mut() {
                if let Some(sub) = props.and_then(|p| p.get(key)) {
                    walk(sub, child, &format!("{path}.{key}"), depth + 1, bad);
                } else if let Some(sub) = additional {
                    walk(sub, child, &format!("{path}[{key}]"), depth + 1, bad);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, child) in items.iter_mut().enumerate() {
                    walk(item, child, &format!("{path}[{i}]"), depth + 1, bad);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::registry::find;
    use serde_json::json;

    fn canonical(group: &str, version: &str, resource: &str, obj: &mut Value) -> Vec<BadQuantity> {
        canonicalize(find(group, version, resource).expect("registered"), obj)
    }

    #[test]
    fn quantities_take_the_form_kubernetes_stores() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"cpu": "1.5"}},
            "spec": {"containers": [
                {"name": "a", "image": "i", "resources": {
                    "limits": {"cpu": 0.5, "memory": "1024Mi", "example.com/x": 2},
                    "requests": {"cpu": "1000m", "memory": " 512974848m "}}},
                {"name": "b", "image": "i", "env": [{"name": "cpu", "value": "1.5"}]}
            ],
            "overhead": {"cpu": "0.25"}}
        });
        assert_eq!(canonical("", "v1", "pods", &mut pod), vec![]);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi", "example.com/x": "2"},
                   "requests": {"cpu": "1", "memory": "512974848m"}})
        );
        assert_eq!(pod["spec"]["overhead"], json!({"cpu": "250m"}));
        // Strings that only look like quantities are left alone.
        assert_eq!(pod["metadata"]["labels"]["cpu"], json!("1.5"));
        assert_eq!(
            pod["spec"]["containers"][1]["env"][0]["value"],
            json!("1.5")
        );

        let mut deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "i", "resources": {"limits": {"memory": "1.5Gi"}}}]}}}});
        assert_eq!(canonical("apps", "v1", "deployments", &mut deploy), vec![]);
        assert_eq!(
            deploy.pointer("/spec/template/spec/containers/0/resources/limits/memory"),
            Some(&json!("1536Mi"))
        );
        let mut node = json!({"status": {"capacity": {"memory": "16777216Ki", "cpu": 4}}});
        assert_eq!(canonical("", "v1", "nodes", &mut node), vec![]);
        assert_eq!(
            node["status"]["capacity"],
            json!({"memory": "16Gi", "cpu": "4"})
        );
    }

    #[test]
    fn bad_quantities_are_named_by_field() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "limits": {"memory": "1x", "cpu": "12E"}}}]}});
        let bad = canonical("", "v1", "pods", &mut pod);
        assert_eq!(
            bad,
            vec![
                BadQuantity {
                    field: "spec.containers[0].resources.limits[memory]".into(),
                    value: json!("1x"),
                    error: QuantityError::Format,
                },
                BadQuantity {
                    field: "spec.containers[0].resources.limits[cpu]".into(),
                    value: json!("12E"),
                    error: QuantityError::TooLarge,
                },
            ]
        );
        // Left as they were.
        assert_eq!(
            pod.pointer("/spec/containers/0/resources/limits/memory"),
            Some(&json!("1x"))
        );
    }
}
