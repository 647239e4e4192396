//! PodDisruptionBudget validation (`ValidatePodDisruptionBudget`,
//! `ValidatePodDisruptionBudgetStatusUpdate` of `pkg/apis/policy/validation`).

use serde_json::{Value, json};

use super::daemonset::positive_int_or_percent;
use super::{FieldError, go};
use crate::selectors::label_selector_from_object;

const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

pub(super) fn pod_disruption_budget(obj: &Value) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let set = |k: &str| spec.get(k).filter(|v| !v.is_null());
    if let (Some(_), Some(_)) = (set("minAvailable"), set("maxUnavailable")) {
        // Go prints the spec struct with pointer addresses; its JSON stands in for it.
        errs.push(FieldError::invalid(
            "spec",
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for field in ["minAvailable", "maxUnavailable"] {
        if let Some(v) = set(field) {
            errs.extend(positive_int_or_percent(v, &format!("spec.{field}")));
        }
    }
    if let Some(sel) = set("selector") {
        errs.extend(super::meta::labels(
            sel.get("matchLabels"),
            "spec.selector.matchLabels",
        ));
        if label_selector_from_object(sel).is_err() {
            errs.push(FieldError::invalid(
                "spec.selector",
                go::raw(go::label_selector(sel)),
                "invalid label selector",
            ));
        }
    }
    if let Some(p) = set("unhealthyPodEvictionPolicy") {
        let text = p.as_str().unwrap_or_default();
        if !POLICIES.contains(&text) {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                json!(text),
                POLICIES,
            ));
        }
    }
    let status = obj.get("status").unwrap_or(&Value::Null);
    for field in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ] {
        if let Some(n) = status.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
            errs.push(FieldError::invalid(
                format!("status.{field}"),
                json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}
