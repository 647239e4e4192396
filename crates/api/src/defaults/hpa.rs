//! HorizontalPodAutoscaler defaults for autoscaling/v1 and autoscaling/v2.

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, set_default, set_default_if_empty};

/// The CPU utilization target an HPA gets when it names no metric.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// autoscaling/v1: only `minReplicas`; the CPU target default comes with conversion.
pub(super) fn hpa_v1(m: &mut Map<String, Value>) {
    set_default(child(m, "spec"), "minReplicas", json!(1));
}

/// autoscaling/v2: `minReplicas`, an 80% CPU metric when none is given, and the scaling
/// behaviour's rules when a behaviour is given.
pub(super) fn hpa_v2(m: &mut Map<String, Value>) {
    let spec = child(m, "spec");
    set_default(spec, "minReplicas", json!(1));
    set_default_if_empty(
        spec,
        "metrics",
        json!([{
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION } }
        }]),
    );
    let Some(behavior) = child_opt(spec, "behavior") else {
        return;
    };
    scaling_rules(
        child(behavior, "scaleUp"),
        Some(0),
        json!([{ "type": "Pods", "value": 4, "periodSeconds": 15 }, { "type": "Percent", "value": 100, "periodSeconds": 15 }]),
    );
    scaling_rules(
        child(behavior, "scaleDown"),
        None,
        json!([{ "type": "Percent", "value": 100, "periodSeconds": 15 }]),
    );
}

fn scaling_rules(rules: &mut Map<String, Value>, stabilization: Option<i64>, policies: Value) {
    if let Some(s) = stabilization {
        set_default(rules, "stabilizationWindowSeconds", json!(s));
    }
    set_default_if_empty(rules, "selectPolicy", json!("Max"));
    set_default(rules, "policies", policies);
}
