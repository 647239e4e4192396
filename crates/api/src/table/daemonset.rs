//! DaemonSet and PodDisruptionBudget rows, as `printDaemonSet` and `printPodDisruptionBudget`
//! of Kubernetes' `pkg/printers/internalversion` print them.

use serde_json::{Value, json};

use super::{Column, age_col, col, containers_and_images, n, selector_string};

pub(super) fn daemon_set_columns() -> [Column; 10] {
    [
        col(
            "Desired",
            "integer",
            0,
            "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        ),
        col(
            "Current",
            "integer",
            0,
            "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
        ),
        col(
            "Ready",
            "integer",
            0,
            "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
        ),
        col(
            "Up-to-date",
            "integer",
            0,
            "The total number of nodes that are running updated daemon pod",
        ),
        col(
            "Available",
            "integer",
            0,
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
        ),
        col(
            "Node Selector",
            "string",
            0,
            "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
        ),
        age_col(),
        col(
            "Containers",
            "string",
            1,
            "Names of each container in the template.",
        ),
        col(
            "Images",
            "string",
            1,
            "Images referenced by each container in the template.",
        ),
        col(
            "Selector",
            "string",
            1,
            "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
        ),
    ]
}

pub(super) fn daemon_set_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let (containers, images) = containers_and_images(obj);
    vec![
        name,
        json!(n(obj, "/status/desiredNumberScheduled")),
        json!(n(obj, "/status/currentNumberScheduled")),
        json!(n(obj, "/status/numberReady")),
        json!(n(obj, "/status/updatedNumberScheduled")),
        json!(n(obj, "/status/numberAvailable")),
        json!(format_labels(
            obj.pointer("/spec/template/spec/nodeSelector")
        )),
        age,
        containers,
        images,
        selector_string(obj.pointer("/spec/selector")),
    ]
}

/// `labels.FormatLabels`: `k=v` sorted by key, comma-joined; `<none>` when empty.
fn format_labels(m: Option<&Value>) -> String {
    let mut pairs: Vec<String> = m
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

pub(super) fn pdb_columns() -> [Column; 4] {
    [
        col(
            "Min Available",
            "string",
            0,
            "The minimum number of pods that must be available",
        ),
        col(
            "Max Unavailable",
            "string",
            0,
            "The maximum number of pods that may be unavailable",
        ),
        col(
            "Allowed Disruptions",
            "integer",
            0,
            "Calculated number of pods that may be disrupted at this time",
        ),
        age_col(),
    ]
}

pub(super) fn pdb_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    // `IntOrString.String()`, or N/A when unset.
    let shown = |field: &str| match obj.pointer(&format!("/spec/{field}")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_string(),
    };
    vec![
        name,
        json!(shown("minAvailable")),
        json!(shown("maxUnavailable")),
        json!(n(obj, "/status/disruptionsAllowed")),
        age,
    ]
}
