//! batch/v1 Job and CronJob defaults (`pkg/apis/batch/v1/defaults.go`), and the selector the
//! Job strategy generates once the Job has a uid (`generateSelector` in the Job registry).

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, set_default, set_default_if_empty};

use super::pod::pod_template;

/// The label with the Job's uid that its generated selector selects.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label with the Job's name on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The unprefixed forms Kubernetes still writes beside them.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// `SetDefaults_Job`.
pub(super) fn job(m: &mut Map<String, Value>) {
    let template_labels = m
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .and_then(Value::as_object)
        .cloned();
    let spec = child(m, "spec");
    let unset = |spec: &Map<String, Value>, k: &str| spec.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let per_index = !unset(spec, "backoffLimitPerIndex");
    set_default(
        spec,
        "backoffLimit",
        json!(if per_index { 2_147_483_647 } else { 6 }),
    );
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|p| !p.is_null());
    if let Some(policy) = child_opt(spec, "podFailurePolicy")
        && let Some(Value::Array(rules)) = policy.get_mut("rules")
    {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Array(conds)) = rule.get_mut("onPodConditions") {
                for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                    set_default_if_empty(c, "status", json!("True"));
                }
            }
        }
    }
    set_default(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    pod_template(child(spec, "template"));
    if let Some(labels) = template_labels.filter(|l| !l.is_empty()) {
        set_default_if_empty(child(m, "metadata"), "labels", Value::Object(labels));
    }
}

/// `SetDefaults_CronJob`; the job template's pod template gets the pod defaults (its job
/// spec does not: `SetDefaults_Job` runs on Jobs only).
pub(super) fn cron_job(m: &mut Map<String, Value>) {
    let spec = child(m, "spec");
    set_default_if_empty(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = child_opt(spec, "jobTemplate").and_then(|t| child_opt(t, "spec")) {
        pod_template(child(job_spec, "template"));
    }
}

/// The Job strategy's `generateSelector`, run on a new Job once it has its uid (unless
/// `spec.manualSelector`): the job-name and controller-uid labels (both forms) on the pod
/// template, and `matchLabels` on the controller-uid. A Job without labels of its own then
/// carries its template's, as Kubernetes shows it once read back (defaulting runs on read).
pub fn job_generated_selector(obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(m) = obj.as_object_mut() else { return };
    let spec = child(m, "spec");
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let labels = child(child(child(spec, "template"), "metadata"), "labels");
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        set_default(labels, key, json!(name));
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        set_default(labels, key, json!(uid));
    }
    let template_labels = labels.clone();
    let match_labels = child(child(spec, "selector"), "matchLabels");
    set_default(match_labels, CONTROLLER_UID_LABEL, json!(uid));
    set_default_if_empty(
        child(m, "metadata"),
        "labels",
        Value::Object(template_labels),
    );
}
