//! Unknown-field detection for `fieldValidation=Strict|Warn`.
//!
//! The object is walked against the catalog schema of the kind in the exact version the
//! client spoke, so a field that only exists in another version (say `rollbackTo` sent to
//! apps/v1) is reported. Types that hold arbitrary content (IntOrString, Quantity, raw
//! extensions, maps through `additionalProperties`) accept anything below them.

use baton_api::registry::ResourceDef;
use serde_json::Value;

use crate::catalog::{self, DEFINITIONS};

/// Paths of fields in `obj` that the schema of `def`'s kind and version does not declare,
/// written as Kubernetes words them (`spec.template.spec.containers[0].foo`).
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(schema) = DEFINITIONS.get(&catalog::kind_definition(def)) else {
        return out;
    };
    let Some(map) = obj.as_object() else {
        return out;
    };
    let props = schema.get("properties");
    for (key, value) in map {
        match props.and_then(|p| p.get(key)) {
            Some(sub) => walk(sub, value, key, &mut out),
            None if key == "apiVersion" || key == "kind" => {}
            None => out.push(key.clone()),
        }
    }
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = catalog::resolve(&DEFINITIONS, schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            if props.is_none() && additional.is_none() {
                // A free-form or scalar-typed schema: nothing to check below it.
                return;
            }
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match props.and_then(|p| p.get(key)) {
                    Some(sub) => walk(sub, child, &child_path, out),
                    None => match additional {
                        Some(Value::Bool(false)) | None => out.push(child_path),
                        Some(sub @ Value::Object(_)) => walk(sub, child, &child_path, out),
                        Some(_) => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
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

    fn unknown(group: &str, version: &str, resource: &str, obj: Value) -> Vec<String> {
        unknown_fields(find(group, version, resource).expect("registered"), &obj)
    }

    #[test]
    fn reports_paths_as_kubernetes_words_them() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labelz": {"a": "b"}, "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                        {"name": "b", "image": "nginx", "foo": 1, "ports": [{"containerPort": 80, "bar": true}]}
                    ]}
                }
            },
            "extra": 1
        });
        assert_eq!(
            unknown("apps", "v1", "deployments", deploy),
            vec![
                "metadata.labelz",
                "spec.template.spec.containers[1].foo",
                "spec.template.spec.containers[1].ports[0].bar",
                "extra",
            ]
        );
    }

    #[test]
    fn version_specific_fields_are_known_only_in_their_version() {
        let with_rollback = json!({"spec": {"rollbackTo": {"revision": 1}, "template": {}}});
        assert!(
            unknown(
                "extensions",
                "v1beta1",
                "deployments",
                with_rollback.clone()
            )
            .is_empty()
        );
        assert_eq!(
            unknown("apps", "v1", "deployments", with_rollback),
            vec!["spec.rollbackTo"]
        );
        let ingress = json!({"spec": {"rules": [{"http": {"paths": [{"backend": {"serviceName": "s", "servicePort": 80}}]}}]}});
        assert!(unknown("extensions", "v1beta1", "ingresses", ingress.clone()).is_empty());
        assert_eq!(
            unknown("networking.k8s.io", "v1", "ingresses", ingress),
            vec![
                "spec.rules[0].http.paths[0].backend.serviceName",
                "spec.rules[0].http.paths[0].backend.servicePort"
            ]
        );
    }

    #[test]
    fn maps_and_free_form_values_accept_anything() {
        let cm = json!({"data": {"anything": "x"}, "metadata": {"annotations": {"a": "b"}}});
        assert!(unknown("", "v1", "configmaps", cm).is_empty());
    }
}
