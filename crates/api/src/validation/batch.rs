//! Job and CronJob validation (`pkg/apis/batch/validation`): the job spec (counts, completion
//! mode, pod failure policy, pod replacement policy, a template that restarts OnFailure or
//! Never), the generated selector, what an update may not change, and the CronJob's
//! schedule (robfig/cron's own messages, `crate::cron`), time zone, concurrency policy and
//! history limits. Fields of the Job API Baton's Job controller does not implement
//! (`backoffLimitPerIndex`, `maxFailedIndexes`, `successPolicy`) are refused naming them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{FieldError, go, names};
use crate::cron;
use crate::defaults::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::selectors::label_selector_from_object;

const NEGATIVE: &str = "must be greater than or equal to 0";
/// Kubernetes' `maxParallelismForIndexedJob`.
const MAX_INDEXED_PARALLELISM: i64 = 100_000;
const MAX_FAILURE_POLICY_RULES: usize = 20;
const MAX_EXIT_CODES: usize = 255;
const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];

fn non_negative(spec: &Value, field: &str, path: &str) -> Option<FieldError> {
    let n = spec.get(field)?.as_i64()?;
    (n < 0).then(|| FieldError::invalid(format!("{path}.{field}"), json!(n), NEGATIVE))
}

fn is_set(spec: &Value, field: &str) -> bool {
    spec.get(field).is_some_and(|v| !v.is_null())
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn quoted_list(values: &[&str]) -> String {
    let q: Vec<String> = values.iter().map(|v| go::quote(v)).collect();
    format!("[{}]", q.join(" "))
}

/// `ValidateJob` (create) and `ValidateJobUpdate` (with `old`).
pub(super) fn job(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = generated_selector(obj);
    errs.extend(job_spec(spec, "spec"));
    errs.extend(selector_matches_template(spec, "spec", true));
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    if let Some(c) = spec.get("completions").and_then(Value::as_i64)
        && indexed
        && c > 0
    {
        let hostname = format!("{name}-{}", c - 1);
        if !names::dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                json!(name),
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(job_spec_update(
            spec,
            old.get("spec").unwrap_or(&Value::Null),
        ));
    }
    errs
}

/// `validateGeneratedSelector`: unless `manualSelector`, the template carries the labels the
/// generated selector selects, and the selector is the generated one.
fn generated_selector(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return errs;
    }
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let labels = spec
        .pointer("/template/metadata/labels")
        .and_then(Value::as_object);
    let path = "spec.template.metadata.labels";
    for (key, want) in [
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ] {
        match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            None => errs.push(FieldError::required(format!("{path}[{key}]"), want)),
            Some(v) if v != want => errs.push(FieldError::invalid(
                format!("{path}[{key}]"),
                go::raw(go::string_map(labels)),
                format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null())
        && let Ok(parsed) = label_selector_from_object(sel)
    {
        let expected = json!({ CONTROLLER_UID_LABEL: uid });
        if !parsed.matches(expected.as_object()) {
            errs.push(FieldError::invalid(
                "spec.selector",
                go::raw(go::label_selector(sel)),
                "`selector` not auto-generated",
            ));
        }
    }
    errs
}

/// `ValidateJobSpec`'s selector part: required, valid, and matching the template's labels.
fn selector_matches_template(spec: &Value, path: &str, required: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else {
        if required {
            errs.push(FieldError::required(format!("{path}.selector"), ""));
        }
        return errs;
    };
    errs.extend(super::meta::labels(
        sel.get("matchLabels"),
        &format!("{path}.selector.matchLabels"),
    ));
    match label_selector_from_object(sel) {
        Ok(parsed) => {
            let labels = spec
                .pointer("/template/metadata/labels")
                .and_then(Value::as_object);
            if !parsed.matches(labels) {
                errs.push(FieldError::invalid(
                    format!("{path}.template.metadata.labels"),
                    go::raw(go::string_map(labels)),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        Err(_) => errs.push(FieldError::invalid(
            format!("{path}.selector"),
            go::raw(go::label_selector(sel)),
            "invalid label selector",
        )),
    }
    errs
}

/// `validateJobSpec`: what a Job's and a CronJob's job template share.
fn job_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        errs.extend(non_negative(spec, field, path));
    }
    for field in ["backoffLimitPerIndex", "maxFailedIndexes", "successPolicy"] {
        if is_set(spec, field) {
            errs.push(FieldError::forbidden(
                format!("{path}.{field}"),
                "not supported by Baton",
            ));
        }
    }
    if let Some(managed_by) = spec.get("managedBy").and_then(Value::as_str) {
        for msg in names::qualified_name(managed_by) {
            errs.push(FieldError::invalid(
                format!("{path}.managedBy"),
                json!(managed_by),
                msg,
            ));
        }
    }
    if let Some(mode) = spec.get("completionMode").and_then(Value::as_str) {
        match mode {
            "NonIndexed" => {}
            "Indexed" => {
                if !is_set(spec, "completions") {
                    errs.push(FieldError::required(
                        format!("{path}.completions"),
                        "when completion mode is Indexed",
                    ));
                }
                if let Some(p) = spec.get("parallelism").and_then(Value::as_i64)
                    && p > MAX_INDEXED_PARALLELISM
                {
                    errs.push(FieldError::invalid(
                        format!("{path}.parallelism"),
                        json!(p),
                        format!(
                            "must be less than or equal to {MAX_INDEXED_PARALLELISM} when completion mode is Indexed"
                        ),
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                format!("{path}.completionMode"),
                json!(other),
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    let failure_policy = spec.get("podFailurePolicy").filter(|p| !p.is_null());
    if let Some(policy) = failure_policy {
        errs.extend(pod_failure_policy(
            spec,
            policy,
            &format!("{path}.podFailurePolicy"),
        ));
    }
    if let Some(r) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let field = format!("{path}.podReplacementPolicy");
        if failure_policy.is_some() {
            if r != "Failed" {
                errs.push(FieldError::not_supported(field, json!(r), &["Failed"]));
            }
        } else if r != "Failed" && r != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                field,
                json!(r),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(super::pod::template(template, &format!("{path}.template")));
    let restart = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let restart_path = format!("{path}.template.spec.restartPolicy");
    match restart {
        "" | "Always" => errs.push(FieldError::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if failure_policy.is_some() => errs.push(FieldError::invalid(
            restart_path,
            json!(restart),
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            restart_path,
            json!(other),
            &["OnFailure", "Never"],
        )),
    }
    errs
}

/// `validatePodFailurePolicy`.
fn pod_failure_policy(spec: &Value, policy: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if rules.len() > MAX_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            format!("{path}.rules"),
            rules.len(),
            MAX_FAILURE_POLICY_RULES,
        ));
    }
    let containers: BTreeSet<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| {
            spec.pointer(&format!("/template/spec/{k}"))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let rule_path = format!("{path}.rules[{i}]");
        let action_path = format!("{rule_path}.action");
        match rule
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "" => errs.push(FieldError::required(
                action_path,
                format!("valid values: {}", quoted_list(ACTIONS)),
            )),
            "FailIndex" => errs.push(FieldError::invalid(
                action_path,
                json!("FailIndex"),
                "requires the backoffLimitPerIndex to be set",
            )),
            "Count" | "FailJob" | "Ignore" => {}
            other => errs.push(FieldError::not_supported(
                action_path,
                json!(other),
                ACTIONS,
            )),
        }
        let on_exit = rule.get("onExitCodes").filter(|v| !v.is_null());
        let on_conditions = rule
            .get("onPodConditions")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty());
        if let Some(on_exit) = on_exit {
            errs.extend(on_exit_codes(
                on_exit,
                &format!("{rule_path}.onExitCodes"),
                &containers,
            ));
        }
        for (j, pattern) in on_conditions.into_iter().flatten().enumerate() {
            let pattern_path = format!("{rule_path}.onPodConditions[{j}]");
            let ty = pattern
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for msg in names::qualified_name(ty) {
                errs.push(FieldError::invalid(
                    format!("{pattern_path}.type"),
                    json!(ty),
                    msg,
                ));
            }
            let statuses = ["False", "True", "Unknown"];
            match pattern
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "" => errs.push(FieldError::required(
                    format!("{pattern_path}.status"),
                    format!("valid values: {}", quoted_list(&statuses)),
                )),
                s if statuses.contains(&s) => {}
                s => errs.push(FieldError::not_supported(
                    format!("{pattern_path}.status"),
                    json!(s),
                    &statuses,
                )),
            }
        }
        match (on_exit.is_some(), on_conditions.is_some()) {
            (true, true) => errs.push(FieldError::invalid(
                rule_path,
                go::raw("<omitted>"),
                "specifying both OnExitCodes and OnPodConditions is not supported",
            )),
            (false, false) => errs.push(FieldError::invalid(
                rule_path,
                go::raw("<omitted>"),
                "specifying one of OnExitCodes and OnPodConditions is required",
            )),
            _ => {}
        }
    }
    errs
}

fn on_exit_codes(req: &Value, path: &str, containers: &BTreeSet<&str>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let operator = req
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match operator {
        "" => errs.push(FieldError::required(
            format!("{path}.operator"),
            format!("valid values: {}", quoted_list(&["In", "NotIn"])),
        )),
        "In" | "NotIn" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.operator"),
            json!(other),
            &["In", "NotIn"],
        )),
    }
    if let Some(name) = req.get("containerName").and_then(Value::as_str)
        && !containers.contains(name)
    {
        errs.push(FieldError::invalid(
            format!("{path}.containerName"),
            json!(name),
            "must be one of the container or initContainer names in the pod template",
        ));
    }
    let values: Vec<i64> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let int32s = || {
        let v: Vec<String> = values.iter().map(i64::to_string).collect();
        go::raw(format!("[]int32{{{}}}", v.join(", ")))
    };
    let values_path = format!("{path}.values");
    if values.is_empty() {
        errs.push(FieldError::invalid(
            values_path,
            go::raw("[]int32(nil)"),
            "at least one value is required",
        ));
    } else if values.len() > MAX_EXIT_CODES {
        errs.push(FieldError::too_many(
            values_path,
            values.len(),
            MAX_EXIT_CODES,
        ));
    } else {
        let mut seen = BTreeSet::new();
        for (j, &v) in values.iter().enumerate() {
            if operator == "In" && v == 0 {
                errs.push(FieldError::invalid(
                    format!("{values_path}[{j}]"),
                    json!(v),
                    "must not be 0 for the In operator",
                ));
            }
            if !seen.insert(v) {
                errs.push(FieldError::duplicate(
                    format!("{values_path}[{j}]"),
                    json!(v),
                ));
            }
        }
        if values.windows(2).any(|w| w[0] > w[1]) {
            errs.push(FieldError::invalid(
                values_path,
                int32s(),
                "must be ordered",
            ));
        }
    }
    errs
}

/// `ValidateJobSpecUpdate`: what may not change once a Job exists.
fn job_spec_update(spec: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable = |field: &str, shown: Value| {
        FieldError::invalid(format!("spec.{field}"), shown, "field is immutable")
    };
    let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    if spec.get("completions") != old.get("completions") {
        // Elastic Indexed Jobs: completions may change together with parallelism.
        if indexed {
            if spec.get("completions") != spec.get("parallelism") {
                errs.push(FieldError::invalid(
                    "spec.completions",
                    spec.get("completions").cloned().unwrap_or(Value::Null),
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
        } else {
            errs.push(immutable(
                "completions",
                spec.get("completions").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    if spec.get("selector") != old.get("selector") {
        let shown = spec
            .get("selector")
            .map_or(Value::Null, |s| go::raw(go::label_selector(s)));
        errs.push(immutable("selector", shown));
    }
    if spec.get("template") != old.get("template") {
        errs.push(immutable("template", go::raw("core.PodTemplateSpec{...}")));
    }
    for field in ["completionMode", "podFailurePolicy", "managedBy"] {
        if spec.get(field) != old.get(field) {
            let shown = match spec.get(field) {
                Some(Value::String(s)) => json!(s),
                Some(v) if !v.is_null() => go::raw(format!("{v}")),
                _ => Value::Null,
            };
            errs.push(immutable(field, shown));
        }
    }
    errs
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate`.
pub(super) fn cron_job(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.map(|o| o.get("spec").unwrap_or(&Value::Null));
    let schedule = spec
        .get("schedule")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let time_zone = spec.get("timeZone").filter(|v| !v.is_null());
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        let allow_tz = old_spec
            .and_then(|o| o.get("schedule"))
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("TZ"));
        if let Err(e) = cron::parse(schedule) {
            errs.push(FieldError::invalid("spec.schedule", json!(schedule), e));
        }
        if allow_tz && schedule.contains("TZ") && time_zone.is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                json!(schedule),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                json!(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(non_negative(spec, "startingDeadlineSeconds", "spec"));
    if old_spec.is_none_or(|o| o.get("timeZone").filter(|v| !v.is_null()) != time_zone) {
        errs.extend(time_zone.and_then(|tz| check_time_zone(tz.as_str().unwrap_or_default())));
    }
    match spec
        .get("concurrencyPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            json!(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let job_spec_value = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
    errs.extend(super::meta::labels(
        spec.pointer("/jobTemplate/metadata/labels"),
        "spec.jobTemplate.metadata.labels",
    ));
    errs.extend(job_spec(job_spec_value, "spec.jobTemplate.spec"));
    if let Some(sel) = job_spec_value.get("selector").filter(|s| !s.is_null()) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            go::raw(go::label_selector(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec_value
        .get("manualSelector")
        .and_then(Value::as_bool)
        == Some(true)
    {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            go::raw("true"),
            &["nil", "false"],
        ));
    }
    for field in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(non_negative(spec, field, "spec"));
    }
    // The controller names Jobs `<name>-<minutes>`, 11 characters more, within 63.
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if old.is_none() && name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be no more than 52 characters",
        ));
    }
    errs
}

/// `validateTimeZone`: a plausible tz database name that the system's database has.
fn check_time_zone(tz: &str) -> Option<FieldError> {
    let invalid = |msg: String| Some(FieldError::invalid("spec.timeZone", json!(tz), msg));
    if tz.is_empty() {
        return invalid("timeZone must be nil or non-empty string".into());
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !tz.split('/').all(part_ok) {
        return invalid(format!("unknown time zone {tz}"));
    }
    cron::load_location(tz).err().and_then(invalid)
}
