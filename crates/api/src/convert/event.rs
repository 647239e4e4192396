//! events.k8s.io/v1 Event ⇄ core/v1 Event: the same object under other field names.

use serde_json::{Map, Value};

use crate::json::rename;

/// (events.k8s.io/v1 name, core/v1 name) for every renamed field; the others (`eventTime`,
/// `series`, `related`, `action`, `type`, `reason`, `reportingInstance`) are shared.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedSource", "source"),
    ("reportingController", "reportingComponent"),
];

pub(super) fn to_core(m: &mut Map<String, Value>) {
    for (events, core) in RENAMES {
        rename(m, events, core);
    }
}

pub(super) fn from_core(m: &mut Map<String, Value>) {
    for (events, core) in RENAMES {
        rename(m, core, events);
    }
}
