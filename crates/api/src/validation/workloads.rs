//! Deployment, ReplicaSet and ReplicationController validation (`pkg/apis/apps/validation`,
//! `ValidateReplicationController`).

use serde_json::{Value, json};

use super::{FieldError, go, names};
use crate::registry::ResourceDef;
use crate::selectors::{LabelSelector, label_selector_from_object};

const NEGATIVE: &str = "must be greater than or equal to 0";

/// `ValidateNonnegativeField` on an optional integer at `spec.<field>`.
fn non_negative(spec: &Value, field: &str) -> Option<FieldError> {
    let n = spec.get(field)?.as_i64()?;
    (n < 0).then(|| FieldError::invalid(format!("spec.{field}"), json!(n), NEGATIVE))
}

/// True when the selector's group/version may change it on update.
fn selector_mutable(def: &ResourceDef) -> bool {
    matches!(
        (def.group, def.version),
        ("extensions", "v1beta1") | ("apps", "v1beta1")
    )
}

fn immutable_selector(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Option<FieldError> {
    let old = old?;
    if selector_mutable(def) {
        return None;
    }
    let (new_sel, old_sel) = (obj.pointer("/spec/selector"), old.pointer("/spec/selector"));
    if new_sel == old_sel {
        return None;
    }
    let value = new_sel.map_or_else(|| Value::Null, |s| go::raw(go::label_selector(s)));
    Some(FieldError::invalid(
        "spec.selector",
        value,
        "field is immutable",
    ))
}

pub(super) fn deployment(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    errs.extend(non_negative(spec, "replicas"));
    errs.extend(selector_and_template(spec));
    errs.extend(non_negative(spec, "minReadySeconds"));
    errs.extend(non_negative(spec, "revisionHistoryLimit"));
    errs.extend(strategy(spec.get("strategy").unwrap_or(&Value::Null)));
    if let Some(deadline) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        errs.extend(non_negative(spec, "progressDeadlineSeconds"));
        let min_ready = spec
            .get("minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                json!(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs.extend(immutable_selector(def, obj, old));
    errs
}

pub(super) fn replica_set(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    errs.extend(non_negative(spec, "replicas"));
    errs.extend(non_negative(spec, "minReadySeconds"));
    errs.extend(selector_and_template(spec));
    errs.extend(immutable_selector(def, obj, old));
    errs
}

/// The `metav1.LabelSelector` checks shared by Deployments and ReplicaSets, then the template
/// against it (`ValidatePodTemplateSpecForReplicaSet`).
fn selector_and_template(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else {
        errs.push(FieldError::required("spec.selector", ""));
        errs.extend(template_for_controller(spec, None));
        return errs;
    };
    errs.extend(super::meta::labels(
        sel.get("matchLabels"),
        "spec.selector.matchLabels",
    ));
    // Kubernetes says "deployment" for ReplicaSets too.
    errs.extend(empty_selector(sel, "deployment"));
    match label_selector_from_object(sel) {
        Ok(parsed) => errs.extend(template_for_controller(spec, Some(&parsed))),
        Err(_) => errs.push(FieldError::invalid(
            "spec.selector",
            go::raw(go::label_selector(sel)),
            "invalid label selector",
        )),
    }
    errs
}

/// Kubernetes' "empty selector is invalid for <kind>": a `spec.selector` with neither
/// `matchLabels` nor `matchExpressions` (Deployments, ReplicaSets, StatefulSets, DaemonSets).
pub(super) fn empty_selector(sel: &Value, kind: &str) -> Option<FieldError> {
    let count = |k: &str| match sel.get(k) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    (count("matchLabels") + count("matchExpressions") == 0).then(|| {
        FieldError::invalid(
            "spec.selector",
            go::raw(go::label_selector(sel)),
            format!("empty selector is invalid for {kind}"),
        )
    })
}

/// The template must exist, carry labels the selector matches, and restart Always.
fn template_for_controller(spec: &Value, selector: Option<&LabelSelector>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(template) = spec.get("template").filter(|t| !t.is_null()) else {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    };
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    if selector.is_some_and(|s| !s.is_empty() && !s.matches(labels)) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go::raw(go::string_map(labels)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(super::pod::template(template, "spec.template"));
    let restart = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !restart.is_empty() && restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            json!(restart),
            &["Always"],
        ));
    }
    if template
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        let v = template
            .pointer("/spec/activeDeadlineSeconds")
            .cloned()
            .unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            v,
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

fn strategy(strategy: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    match ty {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match rolling {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => errs.extend(rolling_update(ru)),
        },
        other => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            json!(other),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// The value of an IntOrString: (number, is_percent).
fn int_or_percent(v: &Value) -> (i64, bool) {
    match v {
        Value::String(s) => (
            s.strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            true,
        ),
        other => (other.as_i64().unwrap_or(0), false),
    }
}

fn rolling_update(ru: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let unavailable = ru.get("maxUnavailable").cloned().unwrap_or(json!(0));
    let surge = ru.get("maxSurge").cloned().unwrap_or(json!(0));
    for (field, v) in [("maxUnavailable", &unavailable), ("maxSurge", &surge)] {
        let path = format!("spec.strategy.rollingUpdate.{field}");
        match v {
            Value::String(s) => {
                for msg in names::percent(s) {
                    errs.push(FieldError::invalid(
                        path.clone(),
                        go::raw(go::int_or_string(v)),
                        msg,
                    ));
                }
            }
            other => {
                let n = other.as_i64().unwrap_or(0);
                if n < 0 {
                    errs.push(FieldError::invalid(path, json!(n), NEGATIVE));
                }
            }
        }
    }
    if int_or_percent(&unavailable).0 == 0 && int_or_percent(&surge).0 == 0 {
        errs.push(FieldError::invalid(
            "spec.strategy.rollingUpdate.maxUnavailable",
            go::raw(go::int_or_string(&unavailable)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    let (n, pct) = int_or_percent(&unavailable);
    if pct && n > 100 {
        errs.push(FieldError::invalid(
            "spec.strategy.rollingUpdate.maxUnavailable",
            go::raw(go::int_or_string(&unavailable)),
            "must not be greater than 100%",
        ));
    }
    errs
}

pub(super) fn replication_controller(obj: &Value) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    errs.extend(non_negative(spec, "minReadySeconds"));
    let selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    if selector.is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs.extend(super::meta::labels(spec.get("selector"), "spec.selector"));
    errs.extend(non_negative(spec, "replicas"));
    let parsed = selector.and_then(|s| label_selector_from_object(&Value::Object(s.clone())).ok());
    errs.extend(template_for_controller(spec, parsed.as_ref()));
    errs
}
