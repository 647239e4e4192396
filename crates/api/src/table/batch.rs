//! Job and CronJob rows, as `printJob` and `printCronJob` of Kubernetes 1.30's
//! `pkg/printers/internalversion` print them (the Job's STATUS column since 1.28, the
//! CronJob's TIMEZONE since 1.27).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Column, age_col, col, duration, list, n, s, selector_string};

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";
const SELECTOR_DOC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

pub(super) fn job_columns() -> [Column; 7] {
    [
        col("Status", "string", 0, "Status of the job."),
        col(
            "Completions",
            "string",
            0,
            "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
        ),
        col(
            "Duration",
            "string",
            0,
            "Time required to complete the job.",
        ),
        age_col(),
        col("Containers", "string", 1, CONTAINERS_DOC),
        col("Images", "string", 1, IMAGES_DOC),
        col("Selector", "string", 1, SELECTOR_DOC),
    ]
}

pub(super) fn cron_job_columns() -> [Column; 9] {
    [
        col(
            "Schedule",
            "string",
            0,
            "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        ),
        col(
            "Timezone",
            "string",
            0,
            "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
        ),
        col(
            "Suspend",
            "boolean",
            0,
            "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
        ),
        col(
            "Active",
            "integer",
            0,
            "A list of pointers to currently running jobs.",
        ),
        col(
            "Last Schedule",
            "string",
            0,
            "Information when was the last time the job was successfully scheduled.",
        ),
        age_col(),
        col("Containers", "string", 1, CONTAINERS_DOC),
        col("Images", "string", 1, IMAGES_DOC),
        col("Selector", "string", 1, SELECTOR_DOC),
    ]
}

/// A condition of `type_` with status True.
fn has_condition(obj: &Value, type_: &str) -> bool {
    list(obj, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == type_ && s(c, "/status") == "True")
}

fn seconds_between(from: &str, to: DateTime<Utc>) -> Option<i64> {
    let from = DateTime::parse_from_rfc3339(from).ok()?;
    Some((to - from.with_timezone(&Utc)).num_seconds())
}

/// Container names and images of the pod template at `template`, comma-joined.
fn template_cells(obj: &Value, template: &str) -> (Value, Value) {
    let cs = list(obj, &format!("{template}/spec/containers"));
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

pub(super) fn job_cells(obj: &Value, name: Value, age: Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = n(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match n(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = s(obj, "/status/startTime");
    let done = s(obj, "/status/completionTime");
    let took = match (start, done) {
        ("", _) => None,
        (start, "") => seconds_between(start, now),
        (start, done) => DateTime::parse_from_rfc3339(done)
            .ok()
            .and_then(|d| seconds_between(start, d.with_timezone(&Utc))),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = template_cells(obj, "/spec/template");
    vec![
        name,
        json!(status),
        json!(completions),
        json!(took.map(duration::human).unwrap_or_default()),
        age,
        containers,
        images,
        selector_string(obj.pointer("/spec/selector")),
    ]
}

pub(super) fn cron_job_cells(
    obj: &Value,
    name: Value,
    age: Value,
    now: DateTime<Utc>,
) -> Vec<Value> {
    let last = match obj.pointer("/status/lastScheduleTime") {
        Some(t) if !t.is_null() => duration::since(Some(t), now),
        _ => "<none>".to_string(),
    };
    let time_zone = obj
        .pointer("/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (containers, images) = template_cells(obj, "/spec/jobTemplate/spec/template");
    vec![
        name,
        json!(s(obj, "/spec/schedule")),
        json!(time_zone),
        json!(suspend),
        json!(list(obj, "/status/active").len()),
        json!(last),
        age,
        containers,
        images,
        selector_string(obj.pointer("/spec/jobTemplate/spec/selector")),
    ]
}
