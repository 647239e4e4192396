//! A container's `resources` (`ValidateContainerResourceRequirements`): every amount a
//! quantity, not negative, a request no greater than its limit (equal to it for resources that
//! cannot be overcommitted: extended resources and hugepages), and CPU amounts whose
//! millicores fit in 64 bits (Kubernetes' `MilliValue()` would wrap; Baton refuses them).

use serde_json::{Value, json};

use super::FieldError;
use crate::quantity::Quantity;

const NEGATIVE: &str = "must be greater than or equal to 0";

/// `resources` of a container at `path` (`spec.containers[0].resources`).
pub(super) fn container(resources: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(r) = resources else {
        return errs;
    };
    let limits = amounts(r.get("limits"), &format!("{path}.limits"), &mut errs);
    let requests = amounts(r.get("requests"), &format!("{path}.requests"), &mut errs);
    for (name, request) in &requests {
        let Some((_, limit)) = limits.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let detail = if !overcommit_allowed(name) && request != limit {
            format!("must be equal to {name} limit of {limit}")
        } else if request > limit {
            format!("must be less than or equal to {name} limit of {limit}")
        } else {
            continue;
        };
        errs.push(FieldError::invalid(
            format!("{path}.requests"),
            json!(request.to_string()),
            detail,
        ));
    }
    errs
}

/// The parsed amounts of a `limits` or `requests` map; errors for those that are not
/// quantities, are negative, or (CPU) have too many millicores.
fn amounts(map: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) -> Vec<(String, Quantity)> {
    let mut out = Vec::new();
    for (name, v) in map.and_then(Value::as_object).into_iter().flatten() {
        let field = format!("{path}[{name}]");
        let q = match Quantity::from_json(v) {
            Ok(q) => q,
            Err(e) => {
                errs.push(FieldError::invalid(field, v.clone(), e.to_string()));
                continue;
            }
        };
        if q.is_negative() {
            errs.push(FieldError::invalid(field, json!(q.to_string()), NEGATIVE));
            continue;
        }
        if name == "cpu" && i64::try_from(q.milli_value()).is_err() {
            errs.push(FieldError::invalid(
                field,
                json!(q.to_string()),
                "must be less than or equal to 9223372036854775807m",
            ));
            continue;
        }
        out.push((name.clone(), q));
    }
    out
}

/// Kubernetes' `IsOvercommitAllowed`: native resources (no domain, or a `kubernetes.io/`
/// one) except hugepages.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::registry::find;
    use crate::validation::validate;

    fn errors(resources: serde_json::Value) -> Vec<String> {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "containers": [{"name": "c", "image": "i", "resources": resources}]}});
        validate(find("", "v1", "pods").expect("pods"), &pod, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn requests_limits_and_signs_as_kubernetes_words_them() {
        assert_eq!(
            errors(json!({"limits": {"cpu": "1k", "memory": "1Pi"},
                          "requests": {"cpu": "0.5m", "memory": "512974848m"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}})),
            [
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
            ]
        );
        assert_eq!(
            errors(json!({"limits": {"memory": "1Gi"}, "requests": {"memory": "1025Mi"}})),
            [
                "spec.containers[0].resources.requests: Invalid value: \"1025Mi\": must be less than or equal to memory limit of 1Gi"
            ]
        );
        // Equal values in other forms are equal.
        assert_eq!(
            errors(json!({"limits": {"memory": "1Gi", "cpu": "1"},
                          "requests": {"memory": "1024Mi", "cpu": "1000m"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(json!({"limits": {"memory": "-1"}})),
            [
                "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0"
            ]
        );
        assert_eq!(
            errors(json!({"requests": {"cpu": "-100m"}})),
            [
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"-100m\": must be greater than or equal to 0"
            ]
        );
        assert_eq!(
            errors(
                json!({"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}})
            ),
            [
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"
            ]
        );
        assert_eq!(
            errors(json!({"limits": {"cpu": "9E"}})),
            [
                "spec.containers[0].resources.limits[cpu]: Invalid value: \"9E\": must be less than or equal to 9223372036854775807m"
            ]
        );
        assert_eq!(
            errors(json!({"limits": {"memory": "1x"}})),
            [
                "spec.containers[0].resources.limits[memory]: Invalid value: \"1x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            ]
        );
    }
}
