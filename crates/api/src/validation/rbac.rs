//! Role, ClusterRole, RoleBinding and ClusterRoleBinding validation
//! (`pkg/apis/rbac/validation`), with Kubernetes' paths and messages.

use serde_json::{Value, json};

use super::{FieldError, go, names};
use crate::registry::RBAC_GROUP;
use crate::selectors::label_selector_from_object;

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `ValidatePolicyRule` for each of `rules`.
fn rules(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, rule) in list(obj, "rules").iter().enumerate() {
        let at = format!("rules[{i}]");
        if list(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                format!("{at}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = list(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let value = json!(urls);
            if namespaced {
                errs.push(FieldError::invalid(
                    format!("{at}.nonResourceURLs"),
                    value.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !list(rule, k).is_empty())
            {
                errs.push(FieldError::invalid(
                    format!("{at}.nonResourceURLs"),
                    value,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if list(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                format!("{at}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if list(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                format!("{at}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

pub(super) fn role(obj: &Value) -> Vec<FieldError> {
    rules(obj, true)
}

pub(super) fn cluster_role(obj: &Value) -> Vec<FieldError> {
    let mut errs = rules(obj, false);
    if let Some(agg) = obj.get("aggregationRule").filter(|a| !a.is_null()) {
        let selectors = list(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            let at = format!("aggregationRule.clusterRoleSelectors[{i}]");
            errs.extend(super::meta::labels(
                sel.get("matchLabels"),
                &format!("{at}.matchLabels"),
            ));
            if label_selector_from_object(sel).is_err() {
                errs.push(FieldError::invalid(
                    at,
                    go::raw(go::label_selector(sel)),
                    "invalid label selector",
                ));
            }
        }
    }
    errs
}

/// RoleBinding (`namespaced`) and ClusterRoleBinding; `roleRef` cannot change on update.
pub(super) fn binding(obj: &Value, old: Option<&Value>, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Value::Null;
    let role_ref = obj.get("roleRef").unwrap_or(&empty);
    let group = text(role_ref, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            json!(group),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    let kind = text(role_ref, "kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            json!(kind),
            kinds,
        ));
    }
    let name = text(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in names::path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", json!(name), msg));
        }
    }
    for (i, s) in list(obj, "subjects").iter().enumerate() {
        errs.extend(subject(s, namespaced, &format!("subjects[{i}]")));
    }
    if let Some(old) = old
        && old.get("roleRef") != obj.get("roleRef")
    {
        errs.push(FieldError::invalid(
            "roleRef",
            go::raw(format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                go::quote(group),
                go::quote(kind),
                go::quote(name)
            )),
            "cannot change roleRef",
        ));
    }
    errs
}

/// `ValidateRoleBindingSubject`.
fn subject(s: &Value, namespaced: bool, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = text(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    }
    let group = text(s, "apiGroup");
    match text(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in names::dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(format!("{at}.name"), json!(name), msg));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    format!("{at}.apiGroup"),
                    json!(group),
                    &[""],
                ));
            }
            if !namespaced && text(s, "namespace").is_empty() {
                errs.push(FieldError::required(format!("{at}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(FieldError::not_supported(
                    format!("{at}.apiGroup"),
                    json!(group),
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{at}.kind"),
            json!(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}
