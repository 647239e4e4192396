//! autoscaling/v1 ⇄ autoscaling/v2 HorizontalPodAutoscaler.
//!
//! v1 knows one metric, a CPU utilization percentage. As Kubernetes does, everything else of
//! a v2 object (other metrics, current metrics, conditions, behaviour) travels through v1 in
//! `autoscaling.alpha.kubernetes.io/*` annotations so that a v1 round trip loses nothing.
//! Baton writes v2 JSON in them (Kubernetes writes its v2beta1-era form).

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt};

use super::ConvertError;

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

pub(super) fn to_v2(m: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let metrics = take_annotation(m, METRICS)?;
    let current = take_annotation(m, CURRENT_METRICS)?;
    let conditions = take_annotation(m, CONDITIONS)?;
    let behavior = take_annotation(m, BEHAVIOR)?;

    let spec = child(m, "spec");
    let mut all = Vec::new();
    if let Some(pct) = spec
        .shift_remove("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        all.push(cpu_metric("target", pct));
    }
    all.extend(as_array(metrics, METRICS)?);
    if !all.is_empty() {
        spec.insert("metrics".into(), Value::Array(all));
    }
    if let Some(b) = behavior {
        spec.insert("behavior".into(), b);
    }

    let has_status = m.contains_key("status") || current.is_some() || conditions.is_some();
    if has_status {
        let status = child(m, "status");
        let mut all = Vec::new();
        let kept = as_array(current, CURRENT_METRICS)?;
        // The annotation's whole CPU metric, when there is one, is what the number showed.
        if let Some(pct) = status
            .shift_remove("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
            .filter(|_| !kept.iter().any(|m| cpu_utilization(m).is_some()))
        {
            all.push(cpu_metric("current", pct));
        }
        all.extend(kept);
        if !all.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(all));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
    }
    Ok(())
}

pub(super) fn from_v2(m: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let mut annotations: Vec<(&str, Value)> = Vec::new();
    if let Some(spec) = child_opt(m, "spec") {
        if let Some(Value::Array(metrics)) = spec.shift_remove("metrics") {
            let (cpu, rest) = split_cpu(metrics, "target");
            if let Some(pct) = cpu {
                spec.insert("targetCPUUtilizationPercentage".into(), pct);
            }
            if !rest.is_empty() {
                annotations.push((METRICS, Value::Array(rest)));
            }
        }
        if let Some(b) = spec.shift_remove("behavior").filter(|b| !b.is_null()) {
            annotations.push((BEHAVIOR, b));
        }
    }
    if let Some(status) = child_opt(m, "status") {
        if let Some(Value::Array(metrics)) = status.shift_remove("currentMetrics") {
            let (cpu, rest) = split_cpu(metrics, "current");
            // A CPU metric that says more (the controller's also carries averageValue) stays
            // whole in the annotation; v1's number still shows its utilization, as
            // Kubernetes' conversion does.
            let pct = cpu.or_else(|| rest.iter().find_map(cpu_utilization));
            if let Some(pct) = pct {
                status.insert("currentCPUUtilizationPercentage".into(), pct);
            }
            if !rest.is_empty() {
                annotations.push((CURRENT_METRICS, Value::Array(rest)));
            }
        }
        if let Some(c) = status.shift_remove("conditions").filter(|c| !c.is_null()) {
            annotations.push((CONDITIONS, c));
        }
    }
    if !annotations.is_empty() {
        let ann = child(child(m, "metadata"), "annotations");
        for (key, value) in annotations {
            ann.insert(key.into(), Value::String(value.to_string()));
        }
    }
    Ok(())
}

/// A v2 `Resource` metric on CPU utilization; `field` is `target` (spec) or `current` (status).
fn cpu_metric(field: &str, pct: Value) -> Value {
    let mut inner = Map::new();
    if field == "target" {
        inner.insert("type".into(), json!("Utilization"));
    }
    inner.insert("averageUtilization".into(), pct);
    json!({ "type": "Resource", "resource": { "name": "cpu", field: inner } })
}

/// Takes the first CPU utilization metric out of `metrics` (its percentage) and returns the rest.
fn split_cpu(metrics: Vec<Value>, field: &str) -> (Option<Value>, Vec<Value>) {
    let mut cpu = None;
    let mut rest = Vec::new();
    for metric in metrics {
        if cpu.is_none()
            && let Some(pct) = cpu_percentage(&metric, field)
        {
            cpu = Some(pct);
            continue;
        }
        rest.push(metric);
    }
    (cpu, rest)
}

/// The current utilization of a v2 `Resource` CPU metric status, whatever else it says.
fn cpu_utilization(metric: &Value) -> Option<Value> {
    (metric.get("type")?.as_str()? == "Resource"
        && metric.pointer("/resource/name")?.as_str()? == "cpu")
        .then(|| {
            metric
                .pointer("/resource/current/averageUtilization")
                .cloned()
        })
        .flatten()
        .filter(Value::is_i64)
}

fn cpu_percentage(metric: &Value, field: &str) -> Option<Value> {
    if metric.get("type")?.as_str()? != "Resource" {
        return None;
    }
    let resource = metric.get("resource")?;
    if resource.get("name")?.as_str()? != "cpu" {
        return None;
    }
    let inner = resource.get(field)?.as_object()?;
    // A metric that says more than the percentage (another target type, extra fields) is
    // kept whole in the annotation rather than squeezed into v1's single number.
    let allowed: &[&str] = if field == "target" {
        &["type", "averageUtilization"]
    } else {
        &["averageUtilization"]
    };
    if inner.keys().any(|k| !allowed.contains(&k.as_str()))
        || metric.as_object()?.len() != 2
        || resource.as_object()?.len() != 2
    {
        return None;
    }
    if field == "target" && inner.get("type")?.as_str()? != "Utilization" {
        return None;
    }
    inner
        .get("averageUtilization")
        .filter(|v| v.is_i64())
        .cloned()
}

/// Removes an annotation and parses its JSON; the annotations map goes when it empties.
fn take_annotation(m: &mut Map<String, Value>, key: &str) -> Result<Option<Value>, ConvertError> {
    let Some(meta) = child_opt(m, "metadata") else {
        return Ok(None);
    };
    let Some(ann) = child_opt(meta, "annotations") else {
        return Ok(None);
    };
    let Some(raw) = ann.shift_remove(key) else {
        return Ok(None);
    };
    if ann.is_empty() {
        meta.shift_remove("annotations");
    }
    let text = raw.as_str().unwrap_or_default();
    serde_json::from_str(text).map(Some).map_err(|e| {
        ConvertError::Unconvertible(format!("metadata.annotations[{key}]: not valid JSON: {e}"))
    })
}

fn as_array(v: Option<Value>, key: &str) -> Result<Vec<Value>, ConvertError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ConvertError::Unconvertible(format!(
            "metadata.annotations[{key}]: must be a JSON list"
        ))),
    }
}
