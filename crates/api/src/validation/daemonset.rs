//! DaemonSet validation (`ValidateDaemonSet`, `ValidateDaemonSetSpec`,
//! `ValidateDaemonSetUpdateStrategy`, `ValidateRollingUpdateDaemonSet` of
//! `pkg/apis/apps/validation`, and the registry strategy's immutable selector).

use serde_json::{Value, json};

use super::{FieldError, go, names};
use crate::registry::ResourceDef;
use crate::selectors::label_selector_from_object;

const NEGATIVE: &str = "must be greater than or equal to 0";

pub(super) fn daemon_set(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let template = spec.get("template").unwrap_or(&Value::Null);
    let template_labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    if let Some(sel) = selector {
        errs.extend(super::meta::labels(
            sel.get("matchLabels"),
            "spec.selector.matchLabels",
        ));
    }
    // `LabelSelectorAsSelector`: no selector selects nothing, so it never matches the labels.
    let parsed = match selector {
        None => Ok(None),
        Some(sel) => label_selector_from_object(sel).map(Some),
    };
    match &parsed {
        Ok(p) if p.as_ref().is_none_or(|p| !p.matches(template_labels)) => {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                go::raw(go::string_map(template_labels)),
                "`selector` does not match template `labels`",
            ))
        }
        Ok(_) => {}
        Err(_) => errs.push(FieldError::invalid(
            "spec.selector",
            selector.map_or(Value::Null, |s| go::raw(go::label_selector(s))),
            "invalid label selector",
        )),
    }
    if let Some(sel) = selector {
        errs.extend(super::workloads::empty_selector(sel, "daemonset"));
    }
    errs.extend(super::pod::template(template, "spec.template"));
    let restart = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if restart != "Always" {
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
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    for field in ["minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
            errs.push(FieldError::invalid(
                format!("spec.{field}"),
                json!(n),
                NEGATIVE,
            ));
        }
    }
    errs.extend(update_strategy(
        spec.get("updateStrategy").unwrap_or(&Value::Null),
    ));
    if let Some(old) = old {
        let extensions = (def.group, def.version) == ("extensions", "v1beta1");
        let (new_sel, old_sel) = (obj.pointer("/spec/selector"), old.pointer("/spec/selector"));
        if !extensions && new_sel != old_sel {
            errs.push(FieldError::invalid(
                "spec.selector",
                new_sel.map_or(Value::Null, |s| go::raw(go::label_selector(s))),
                "field is immutable",
            ));
        }
    }
    errs
}

fn update_strategy(strategy: &Value) -> Vec<FieldError> {
    let ty = strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    match ty {
        "OnDelete" => Vec::new(),
        "RollingUpdate" => match rolling {
            None => vec![FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )],
            Some(ru) => rolling_update(ru),
        },
        other => {
            // Go prints the struct; a set rollingUpdate is a pointer whose address is not
            // reproducible, so it is shown as `&{...}`.
            let ru = if rolling.is_some() {
                "&apps.RollingUpdateDaemonSet{...}"
            } else {
                "(*apps.RollingUpdateDaemonSet)(nil)"
            };
            vec![FieldError::not_supported(
                "spec.updateStrategy",
                go::raw(format!(
                    "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{ru}}}",
                    go::quote(other)
                )),
                &["RollingUpdate", "OnDelete"],
            )]
        }
    }
}

/// `getIntOrPercentValue`: a valid percentage's number, else the value as an integer (a
/// string that is not a number counts 0, as Go's `IntValue`).
pub(super) fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) if names::percent(s).is_empty() => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent` then `IsNotMoreThan100Percent`.
pub(super) fn positive_int_or_percent(v: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let shown = || go::raw(go::int_or_string(v));
    match v {
        Value::String(s) => {
            let problems = names::percent(s);
            for msg in &problems {
                errs.push(FieldError::invalid(path, shown(), msg.clone()));
            }
            if problems.is_empty() && int_or_percent_value(v) > 100 {
                errs.push(FieldError::invalid(
                    path,
                    shown(),
                    "must not be greater than 100%",
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
    errs
}

fn rolling_update(ru: &Value) -> Vec<FieldError> {
    let at = "spec.updateStrategy.rollingUpdate";
    let unavailable = ru.get("maxUnavailable").cloned().unwrap_or(json!(0));
    let surge = ru.get("maxSurge").cloned().unwrap_or(json!(0));
    let mut errs = positive_int_or_percent(&unavailable, &format!("{at}.maxUnavailable"));
    errs.extend(positive_int_or_percent(&surge, &format!("{at}.maxSurge")));
    let has_unavailable = int_or_percent_value(&unavailable) != 0;
    let has_surge = int_or_percent_value(&surge) != 0;
    if has_unavailable && has_surge {
        errs.push(FieldError::invalid(
            format!("{at}.maxSurge"),
            go::raw(go::int_or_string(&surge)),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            format!("{at}.maxUnavailable"),
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}
