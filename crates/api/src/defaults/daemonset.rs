//! DaemonSet defaults per version (`SetDefaults_DaemonSet` of apps/v1, apps/v1beta2 and
//! extensions/v1beta1): RollingUpdate with maxUnavailable 1 and maxSurge 0, except that
//! extensions/v1beta1 defaults to OnDelete and its selector and labels to the template labels.

use serde_json::{Map, Value, json};

use crate::json::{child, set_default, set_default_if_empty, str_of};

use super::pod::pod_template;
use super::workloads::selector_and_labels_from_template;

/// `legacy`: extensions/v1beta1.
pub(super) fn daemon_set(m: &mut Map<String, Value>, legacy: bool) {
    if legacy {
        selector_and_labels_from_template(m);
    }
    let spec = child(m, "spec");
    let strategy = child(spec, "updateStrategy");
    let default_type = if legacy { "OnDelete" } else { "RollingUpdate" };
    set_default_if_empty(strategy, "type", json!(default_type));
    if str_of(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    pod_template(child(spec, "template"));
}
