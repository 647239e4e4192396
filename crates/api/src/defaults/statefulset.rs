//! StatefulSet defaults per version (`SetDefaults_StatefulSet` of apps/v1, v1beta2, v1beta1).
//! apps/v1beta1 rolls `OnDelete` by default and takes its selector and labels from the
//! template; the later versions roll `RollingUpdate` with `partition: 0`.
//! `rollingUpdate.maxUnavailable` is honoured when given but not defaulted, as Kubernetes
//! does while its `MaxUnavailableStatefulSet` gate is off by default.

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, set_default, set_default_if_empty, str_of};

use super::pod::pod_template;

/// The apps/v1 and apps/v1beta2 defaults (`legacy` false) or apps/v1beta1's (`legacy` true).
pub(super) fn stateful_set(m: &mut Map<String, Value>, legacy: bool) {
    if legacy {
        super::workloads::selector_and_labels_from_template(m);
    }
    let spec = child(m, "spec");
    set_default_if_empty(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = child(spec, "updateStrategy");
    if str_of(strategy, "type").is_empty() {
        if legacy {
            strategy.insert("type".into(), json!("OnDelete"));
        } else {
            strategy.insert("type".into(), json!("RollingUpdate"));
            set_default(strategy, "rollingUpdate", json!({}));
        }
    }
    if str_of(strategy, "type") == "RollingUpdate"
        && let Some(ru) = child_opt(strategy, "rollingUpdate")
    {
        set_default(ru, "partition", json!(0));
    }
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set_default_if_empty(retention, "whenDeleted", json!("Retain"));
    set_default_if_empty(retention, "whenScaled", json!("Retain"));
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    pod_template(child(spec, "template"));
}
