//! StatefulSet validation (`ValidateStatefulSet`, `ValidateStatefulSetSpec` and
//! `ValidateStatefulSetUpdate` of `pkg/apis/apps/validation`), worded as Kubernetes words it.
//!
//! Kubernetes checks only the template's labels and annotations here; Baton also runs the pod
//! template checks every other controller's template gets ([`super::pod`]), so that a field the
//! node agent does not implement is refused when the StatefulSet is written rather than at
//! each pod's creation. The containers may mount the volumes of `volumeClaimTemplates`.

use serde_json::{Value, json};

use super::{FieldError, go, names};
use crate::selectors::label_selector_from_object;

const NEGATIVE: &str = "must be greater than or equal to 0";

fn non_negative(v: Option<&Value>, path: &str) -> Option<FieldError> {
    let n = v?.as_i64()?;
    (n < 0).then(|| FieldError::invalid(path, json!(n), NEGATIVE))
}

/// The spec fields an update may change (`ValidateStatefulSetUpdate`).
const MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

pub(super) fn stateful_set(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = spec_errors(spec);
    if let Some(old) = old {
        let rest = |o: &Value| {
            let mut m = o
                .get("spec")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            m.retain(|k, _| !MUTABLE.contains(&k.as_str()));
            crate::json::prune(Value::Object(m))
        };
        if rest(obj) != rest(old) {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    errs
}

fn spec_errors(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str).unwrap_or_default();
    match text("/podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            json!(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    errs.extend(update_strategy(spec));
    for field in ["whenDeleted", "whenScaled"] {
        let v = spec
            .pointer(&format!("/persistentVolumeClaimRetentionPolicy/{field}"))
            .filter(|v| !v.is_null());
        if let Some(v) = v
            && !matches!(v.as_str(), Some("Retain" | "Delete"))
        {
            errs.push(FieldError::not_supported(
                format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                v.clone(),
                &["Retain", "Delete"],
            ));
        }
    }
    errs.extend(non_negative(spec.get("replicas"), "spec.replicas"));
    errs.extend(non_negative(
        spec.get("minReadySeconds"),
        "spec.minReadySeconds",
    ));
    errs.extend(non_negative(
        spec.pointer("/ordinals/start"),
        "spec.ordinals.start",
    ));
    errs.extend(selector_and_template(spec));
    let restart = text("/template/spec/restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            json!(restart),
            &["Always"],
        ));
    }
    if spec
        .pointer("/template/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// `%#v` of a `*intstr.IntOrString` field inside a Go struct.
fn int_or_string_ptr(v: Option<&Value>) -> String {
    match v.filter(|v| !v.is_null()) {
        None => "(*intstr.IntOrString)(nil)".into(),
        Some(v) => format!("&{}", go::int_or_string(v)),
    }
}

/// `%#v` of an `apps.RollingUpdateStatefulSetStrategy` given as JSON.
fn rolling_update_value(ru: &Value) -> String {
    format!(
        "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:{}}}",
        ru.get("partition").and_then(Value::as_i64).unwrap_or(0),
        int_or_string_ptr(ru.get("maxUnavailable"))
    )
}

fn update_strategy(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    let ty = strategy
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match ty {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = rolling {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    go::raw(rolling_update_value(ru)),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = rolling {
                errs.extend(rolling_update(ru));
            }
        }
        other => {
            let ru = rolling.map_or_else(
                || "(*apps.RollingUpdateStatefulSetStrategy)(nil)".to_string(),
                |ru| format!("&{}", rolling_update_value(ru)),
            );
            errs.push(FieldError::invalid(
                "spec.updateStrategy",
                go::raw(format!(
                    "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:{ru}}}",
                    go::quote(other)
                )),
                "must be 'RollingUpdate' or 'OnDelete'",
            ));
        }
    }
    errs
}

/// `validateRollingUpdateStatefulSet`: partition not negative; maxUnavailable a positive
/// number or percentage, not 0, at most 100%.
fn rolling_update(ru: &Value) -> Vec<FieldError> {
    const AT: &str = "spec.updateStrategy.rollingUpdate";
    let mut errs = Vec::new();
    errs.extend(non_negative(
        ru.get("partition"),
        &format!("{AT}.partition"),
    ));
    let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) else {
        return errs;
    };
    let path = format!("{AT}.maxUnavailable");
    let shown = || go::raw(go::int_or_string(mu));
    // Go's getIntOrPercentValue: a valid percentage's number, else the string's integer.
    let value = match mu {
        Value::String(s) => {
            let msgs = names::percent(s);
            let valid = msgs.is_empty();
            for msg in msgs {
                errs.push(FieldError::invalid(path.clone(), shown(), msg));
            }
            let pct: Option<i64> = s.strip_suffix('%').and_then(|n| n.parse().ok());
            if valid && pct.is_some_and(|n| n > 100) {
                errs.push(FieldError::invalid(
                    path.clone(),
                    shown(),
                    "must not be greater than 100%",
                ));
            }
            match pct {
                Some(n) if valid => n,
                _ => s.parse().unwrap_or(0),
            }
        }
        other => {
            let n = other.as_i64().unwrap_or(0);
            if n < 0 {
                errs.push(FieldError::invalid(path.clone(), json!(n), NEGATIVE));
            }
            n
        }
    };
    if value == 0 {
        errs.push(FieldError::invalid(path, shown(), "cannot be 0"));
    }
    errs
}

fn selector_and_template(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let parsed = match selector {
        None => {
            errs.push(FieldError::required("spec.selector", ""));
            None
        }
        Some(sel) => {
            errs.extend(super::meta::labels(
                sel.get("matchLabels"),
                "spec.selector.matchLabels",
            ));
            errs.extend(super::workloads::empty_selector(sel, "statefulset"));
            match label_selector_from_object(sel) {
                Ok(p) => Some(p),
                Err(_) => {
                    errs.push(FieldError::invalid(
                        "spec.selector",
                        go::raw(go::label_selector(sel)),
                        "",
                    ));
                    None
                }
            }
        }
    };
    let template = spec.get("template").unwrap_or(&Value::Null);
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    if parsed
        .as_ref()
        .is_some_and(|s| !s.is_empty() && !s.matches(labels))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go::raw(go::string_map(labels)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(super::meta::labels(
        template.pointer("/metadata/labels"),
        "spec.template.metadata.labels",
    ));
    let claims: Vec<String> = spec
        .get("volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    errs.extend(super::pod::spec_with_claims(
        template.get("spec").unwrap_or(&Value::Null),
        "spec.template.spec",
        &claims,
    ));
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::registry::find;
    use crate::validation::{FieldError, validate};

    /// A StatefulSet as a client writes it, defaulted and converted to apps/v1 (`version`).
    fn stored(version: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let mut o = json!({
            "apiVersion": format!("apps/{version}"), "kind": "StatefulSet",
            "metadata": { "name": "web", "namespace": "default" },
            "spec": {
                "replicas": 5,
                "serviceName": "web",
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "web", "image": "nginx:1",
                        "volumeMounts": [{ "name": "data", "mountPath": "/data" }] }] }
                },
                "volumeClaimTemplates": [{ "metadata": { "name": "data" },
                    "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }]
            }
        });
        edit(&mut o);
        let def = find("apps", version, "statefulsets").expect("registered");
        crate::convert::to_storage(def, o).expect("converts")
    }

    fn messages(obj: &Value, old: Option<&Value>) -> Vec<String> {
        let def = find("apps", "v1", "statefulsets").expect("registered");
        validate(def, obj, old)
            .iter()
            .map(FieldError::to_string)
            .collect()
    }

    #[test]
    fn defaults_per_version() {
        let v1 = stored("v1", |_| {});
        assert_eq!(v1["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            v1["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            v1["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(v1["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v1["apiVersion"], "apps/v1");
        // apps/v1beta1: OnDelete, and the selector from the template's labels.
        let beta1 = stored("v1beta1", |o| {
            o["spec"].as_object_mut().map(|s| s.remove("selector"));
        });
        assert_eq!(beta1["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(
            beta1["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert_eq!(beta1["metadata"]["labels"], json!({"app": "web"}));
        // Given without rollingUpdate, RollingUpdate gets no partition (kubectl then reads
        // revisions, not the partition, in `rollout status`).
        let bare = stored("v1", |o| {
            o["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"})
        });
        assert_eq!(
            bare["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        assert_eq!(messages(&v1, None), Vec::<String>::new());
        assert_eq!(messages(&beta1, None), Vec::<String>::new());
    }

    #[test]
    fn errors_as_kubernetes_words_them() {
        type Edit = fn(&mut Value);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |o| {
                    o["spec"]["updateStrategy"] =
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": -1}})
                },
                "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                |o| o["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"}),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
            ),
            (
                |o| o["spec"]["selector"] = json!({}),
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset",
            ),
            (
                |o| o["spec"]["podManagementPolicy"] = json!("Burst"),
                "spec.podManagementPolicy: Invalid value: \"Burst\": must be 'OrderedReady' or 'Parallel'",
            ),
            (
                |o| o["spec"]["updateStrategy"] = json!({"type": "Sometimes"}),
                "spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:\"Sometimes\", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be 'RollingUpdate' or 'OnDelete'",
            ),
            (
                |o| {
                    o["spec"]["updateStrategy"] =
                        json!({"type": "OnDelete", "rollingUpdate": {"partition": 2}})
                },
                "spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:2, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'",
            ),
            (
                |o| {
                    o["spec"]["updateStrategy"] =
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}})
                },
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: cannot be 0",
            ),
            (
                |o| {
                    o["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}})
                },
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%",
            ),
            (
                |o| {
                    o["spec"]["persistentVolumeClaimRetentionPolicy"] =
                        json!({"whenDeleted": "Keep"})
                },
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
            ),
            (
                |o| o["spec"]["replicas"] = json!(-2),
                "spec.replicas: Invalid value: -2: must be greater than or equal to 0",
            ),
            (
                |o| o["spec"]["ordinals"] = json!({"start": -1}),
                "spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                |o| o["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ),
            (
                |o| {
                    o["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] =
                        json!("nothing")
                },
                "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"nothing\"",
            ),
            (
                |o| o["metadata"]["name"] = json!("web.v1"),
                "metadata.name: Invalid value: \"web.v1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ),
        ];
        for (edit, want) in cases {
            let obj = stored("v1", edit);
            assert_eq!(messages(&obj, None), vec![want.to_string()], "{want}");
        }
    }

    #[test]
    fn updates_change_only_what_kubernetes_lets_change() {
        let old = stored("v1", |_| {});
        let ok = stored("v1", |o| {
            o["spec"]["replicas"] = json!(3);
            o["spec"]["minReadySeconds"] = json!(4);
            o["spec"]["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}});
            o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        });
        assert_eq!(messages(&ok, Some(&old)), Vec::<String>::new());
        let bad = stored("v1", |o| o["spec"]["serviceName"] = json!("other"));
        assert_eq!(
            messages(&bad, Some(&old)),
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
    }
}
