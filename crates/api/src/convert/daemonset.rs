//! extensions/v1beta1 DaemonSet ⇄ apps/v1: the deprecated `spec.templateGeneration` lives in
//! apps/v1 as the annotation `deprecated.daemonset.template.generation`, which the API server
//! keeps (one more on each template change, as Kubernetes' strategy does).

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt};

/// The annotation apps/v1 keeps the template generation in.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The field is system-set: the API server's strategy decides it, so it is dropped here.
pub(super) fn to_v1(m: &mut Map<String, Value>) {
    if let Some(spec) = child_opt(m, "spec") {
        spec.shift_remove("templateGeneration");
    }
}

pub(super) fn from_v1(m: &mut Map<String, Value>) {
    let generation = child_opt(m, "metadata")
        .and_then(|meta| child_opt(meta, "annotations"))
        .and_then(|a| a.shift_remove(TEMPLATE_GENERATION))
        .and_then(|v| v.as_str().and_then(|s| s.parse::<i64>().ok()));
    if let Some(meta) = child_opt(m, "metadata")
        && child_opt(meta, "annotations").is_some_and(|a| a.is_empty())
    {
        meta.shift_remove("annotations");
    }
    if let Some(g) = generation {
        child(m, "spec").insert("templateGeneration".into(), json!(g));
    }
}
