//! Ingress and IngressClass defaults.

use serde_json::{Map, Value, json};

use crate::json::{child_opt, each_object, set_default};

/// extensions/v1beta1 Ingress: each HTTP path's `pathType` defaults to `ImplementationSpecific`
/// (networking.k8s.io/v1 requires it instead).
pub(super) fn ingress_v1beta1(m: &mut Map<String, Value>) {
    let Some(spec) = child_opt(m, "spec") else {
        return;
    };
    each_object(spec, "rules", |rule| {
        if let Some(http) = child_opt(rule, "http") {
            each_object(http, "paths", |p| {
                set_default(p, "pathType", json!("ImplementationSpecific"))
            });
        }
    });
}

/// `SetDefaults_IngressClass`: parameters without a scope are cluster-scoped.
pub(super) fn ingress_class(m: &mut Map<String, Value>) {
    if let Some(params) = child_opt(m, "spec").and_then(|s| child_opt(s, "parameters")) {
        set_default(params, "scope", json!("Cluster"));
    }
}
