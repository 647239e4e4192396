//! Deployment, ReplicaSet and ReplicationController defaults, per version: the legacy
//! versions default the selector from the template labels and have their own rollout knobs.

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, set_default, set_default_if_empty, str_of};

use super::pod::pod_template;

/// `math.MaxInt32`, extensions/v1beta1's "never" for history and progress deadlines.
pub const MAX_INT32: i64 = 2_147_483_647;

/// Which version's `SetDefaults_Deployment` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeploymentFlavor {
    /// apps/v1 and apps/v1beta2: 25%/25%, history 10, deadline 600.
    AppsV1,
    /// apps/v1beta1: selector and labels from the template, 25%/25%, history 2, deadline 600.
    AppsV1beta1,
    /// extensions/v1beta1: selector and labels from the template, 1/1, history and deadline MaxInt32.
    ExtensionsV1beta1,
}

pub(super) fn deployment(m: &mut Map<String, Value>, flavor: DeploymentFlavor) {
    if flavor != DeploymentFlavor::AppsV1 {
        selector_and_labels_from_template(m);
    }
    let (surge, unavailable, history, deadline) = match flavor {
        DeploymentFlavor::AppsV1 => (json!("25%"), json!("25%"), 10, 600),
        DeploymentFlavor::AppsV1beta1 => (json!("25%"), json!("25%"), 2, 600),
        DeploymentFlavor::ExtensionsV1beta1 => (json!(1), json!(1), MAX_INT32, MAX_INT32),
    };
    let spec = child(m, "spec");
    set_default(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set_default_if_empty(strategy, "type", json!("RollingUpdate"));
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", unavailable);
        set_default(ru, "maxSurge", surge);
    }
    set_default(spec, "revisionHistoryLimit", json!(history));
    set_default(spec, "progressDeadlineSeconds", json!(deadline));
    pod_template(child(spec, "template"));
}

/// apps/v1 (`legacy` false) or extensions/v1beta1 (`legacy` true) ReplicaSet.
pub(super) fn replica_set(m: &mut Map<String, Value>, legacy: bool) {
    if legacy {
        selector_and_labels_from_template(m);
    }
    let spec = child(m, "spec");
    set_default(spec, "replicas", json!(1));
    pod_template(child(spec, "template"));
}

/// core/v1 ReplicationController: its map selector and labels default to the template labels.
pub(super) fn replication_controller(m: &mut Map<String, Value>) {
    let labels = template_labels(m);
    if let Some(labels) = labels {
        let spec = child(m, "spec");
        set_default_if_empty(spec, "selector", Value::Object(labels.clone()));
        set_default_if_empty(child(m, "metadata"), "labels", Value::Object(labels));
    }
    let spec = child(m, "spec");
    set_default(spec, "replicas", json!(1));
    if let Some(t) = child_opt(spec, "template") {
        pod_template(t);
    }
}

fn template_labels(m: &Map<String, Value>) -> Option<Map<String, Value>> {
    m.get("spec")?
        .get("template")?
        .get("metadata")?
        .get("labels")?
        .as_object()
        .cloned()
}

/// The legacy versions' `selector: {matchLabels: <template labels>}` and object labels.
pub(super) fn selector_and_labels_from_template(m: &mut Map<String, Value>) {
    let Some(labels) = template_labels(m) else {
        return;
    };
    if labels.is_empty() {
        return;
    }
    set_default(
        child(m, "spec"),
        "selector",
        json!({ "matchLabels": labels.clone() }),
    );
    set_default_if_empty(child(m, "metadata"), "labels", Value::Object(labels));
}
