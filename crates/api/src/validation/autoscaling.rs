//! HorizontalPodAutoscaler validation (`pkg/apis/autoscaling/validation`,
//! `validateHorizontalPodAutoscalerSpec`), on the stored autoscaling/v2 form (a v1 object's
//! `targetCPUUtilizationPercentage` has become a Resource metric by then, so its errors name
//! v2 paths as Kubernetes' do after conversion to the internal form).

use serde_json::{Value, json};

use super::{FieldError, go};
use crate::quantity::Quantity;

/// Kubernetes' `MaxStabilizationWindowSeconds` and `MaxPeriodSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;
const MAX_PERIOD_SECONDS: i64 = 1800;
const METRIC_SOURCE_TYPES: [&str; 5] = [
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

pub(super) fn hpa(obj: &Value) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if let Some(min) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            json!(min),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let reference = object_reference(
        spec.get("scaleTargetRef").unwrap_or(&Value::Null),
        "spec.scaleTargetRef",
    );
    if !reference.is_empty() {
        errs.extend(reference);
        return errs;
    }
    let metrics: Vec<FieldError> = spec
        .get("metrics")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .enumerate()
        .flat_map(|(i, m)| metric(m, &format!("spec.metrics[{i}]")))
        .collect();
    if !metrics.is_empty() {
        errs.extend(metrics);
        return errs;
    }
    if let Some(b) = spec.get("behavior").filter(|b| b.is_object()) {
        for dir in ["scaleUp", "scaleDown"] {
            if let Some(rules) = b.get(dir).filter(|r| r.is_object()) {
                errs.extend(scaling_rules(rules, &format!("spec.behavior.{dir}")));
            }
        }
    }
    errs
}

/// `ValidateCrossVersionObjectReference`.
fn object_reference(r: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["kind", "name"] {
        match r.get(field).and_then(Value::as_str).unwrap_or("") {
            "" => errs.push(FieldError::required(format!("{path}.{field}"), "")),
            v => errs.extend(
                path_segment(v)
                    .into_iter()
                    .map(|msg| FieldError::invalid(format!("{path}.{field}"), json!(v), msg)),
            ),
        }
    }
    errs
}

/// `IsValidPathSegmentName`.
fn path_segment(name: &str) -> Vec<&'static str> {
    match name {
        "." => return vec!["may not be '.'"],
        ".." => return vec!["may not be '..'"],
        _ => {}
    }
    let mut msgs = Vec::new();
    if name.contains('/') {
        msgs.push("may not contain '/'");
    }
    if name.contains('%') {
        msgs.push("may not contain '%'");
    }
    msgs
}

/// `validateMetricSpec` for each source type (the sources Baton's controller cannot read —
/// Pods, Object, External — are valid objects: the controller reports them in status).
fn metric(m: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&kind) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            json!(kind),
            &METRIC_SOURCE_TYPES,
        ));
    }
    let fields = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ];
    let present: Vec<&str> = fields
        .into_iter()
        .filter(|f| m.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    if let Some(first) = present.first() {
        let src = &m[*first];
        let p = format!("{path}.{first}");
        match *first {
            "resource" | "containerResource" => errs.extend(resource_source(src, &p)),
            "pods" => {
                errs.extend(metric_target(src.get("target"), &format!("{p}.target")));
                if src.pointer("/target/averageValue").is_none() {
                    errs.push(FieldError::required(
                        format!("{p}.target.averageValue"),
                        "must specify a positive target averageValue",
                    ));
                }
            }
            _ => errs.extend(metric_target(src.get("target"), &format!("{p}.target"))),
        }
    }
    let expected = match kind {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => "",
    };
    if !expected.is_empty() && !present.contains(&expected) {
        errs.push(FieldError::required(
            format!("{path}.{expected}"),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        for f in present.iter().filter(|f| **f != expected) {
            errs.push(FieldError::forbidden(
                format!("{path}.{f}"),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

/// `validateResourceSource` / `validateContainerResourceSource`.
fn resource_source(src: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if src
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "must specify a resource name",
        ));
    }
    if path.ends_with("containerResource")
        && src
            .get("container")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        errs.push(FieldError::required(
            format!("{path}.container"),
            "must specify a container",
        ));
    }
    let target = src.get("target");
    errs.extend(metric_target(target, &format!("{path}.target")));
    let util = target.and_then(|t| t.get("averageUtilization"));
    let avg = target.and_then(|t| t.get("averageValue"));
    match (util, avg) {
        (None, None) => errs.push(FieldError::required(
            format!("{path}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            format!("{path}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        )),
        _ => {}
    }
    errs
}

/// `validateMetricTarget`.
fn metric_target(target: Option<&Value>, path: &str) -> Vec<FieldError> {
    let t = target.unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must specify a metric target type",
        ));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&kind) {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            json!(kind),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for field in ["value", "averageValue"] {
        if let Some(q) = t.get(field).and_then(Value::as_str) {
            let positive = Quantity::parse(q).is_ok_and(|q| !q.is_zero() && !q.is_negative());
            if !positive {
                errs.push(FieldError::invalid(
                    format!("{path}.{field}"),
                    go::raw(q),
                    "must be positive",
                ));
            }
        }
    }
    if let Some(u) = t
        .get("averageUtilization")
        .and_then(Value::as_i64)
        .filter(|u| *u < 1)
    {
        errs.push(FieldError::invalid(
            format!("{path}.averageUtilization"),
            json!(u),
            "must be greater than 0",
        ));
    }
    errs
}

/// `validateScalingRules`.
fn scaling_rules(rules: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(w) = rules
        .get("stabilizationWindowSeconds")
        .and_then(Value::as_i64)
    {
        if w < 0 {
            errs.push(FieldError::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                json!(w),
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                format!("{path}.stabilizationWindowSeconds"),
                json!(w),
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(sp) = rules.get("selectPolicy").and_then(Value::as_str)
        && !["Disabled", "Max", "Min"].contains(&sp)
    {
        errs.push(FieldError::not_supported(
            format!("{path}.selectPolicy"),
            json!(sp),
            &["Disabled", "Max", "Min"],
        ));
    }
    let policies = rules
        .get("policies")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if policies.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = format!("{path}.policies[{i}]");
        let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "Pods" && kind != "Percent" {
            errs.push(FieldError::not_supported(
                format!("{pp}.type"),
                json!(kind),
                &["Percent", "Pods"],
            ));
        }
        let value = p.get("value").and_then(Value::as_i64).unwrap_or(0);
        if value <= 0 {
            errs.push(FieldError::invalid(
                format!("{pp}.value"),
                json!(value),
                "must be greater than zero",
            ));
        }
        let period = p.get("periodSeconds").and_then(Value::as_i64).unwrap_or(0);
        if period <= 0 {
            errs.push(FieldError::invalid(
                format!("{pp}.periodSeconds"),
                json!(period),
                "must be greater than zero",
            ));
        }
        if period > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                format!("{pp}.periodSeconds"),
                json!(period),
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa_with(spec: Value) -> Value {
        let mut s = json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                           "minReplicas": 1, "maxReplicas": 5,
                           "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]});
        if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({"spec": s})
    }

    fn messages(obj: &Value) -> Vec<String> {
        hpa(obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn min_above_max_names_max_replicas() {
        assert_eq!(
            messages(&hpa_with(json!({"minReplicas": 7, "maxReplicas": 5}))),
            ["spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"]
        );
        assert_eq!(
            messages(&hpa_with(json!({"minReplicas": 0, "maxReplicas": 0}))),
            [
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.maxReplicas: Invalid value: 0: must be greater than 0"
            ]
        );
        assert!(messages(&hpa_with(json!({}))).is_empty());
    }

    #[test]
    fn references_metrics_and_behavior() {
        assert_eq!(
            messages(&hpa_with(json!({"scaleTargetRef": {"kind": "Deployment"}}))),
            ["spec.scaleTargetRef.name: Required value"]
        );
        assert_eq!(
            messages(&hpa_with(
                json!({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]})
            )),
            [
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            ]
        );
        assert_eq!(
            messages(&hpa_with(
                json!({"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "0"}}}]})
            )),
            ["spec.metrics[0].resource.target.averageValue: Invalid value: 0: must be positive"]
        );
        assert_eq!(
            messages(&hpa_with(
                json!({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 0, "periodSeconds": 15}]}}})
            )),
            [
                "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero"
            ]
        );
    }
}
