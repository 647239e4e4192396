//! discovery.k8s.io/v1 defaults: `SetDefaults_EndpointPort` gives every EndpointSlice port a
//! name (`""`) and a protocol (`TCP`), so readers can match ports by name without nil checks.

use serde_json::{Map, Value, json};

use crate::json::{each_object, set_default};

pub(super) fn endpoint_slice(m: &mut Map<String, Value>) {
    each_object(m, "ports", |p| {
        set_default(p, "name", json!(""));
        set_default(p, "protocol", json!("TCP"));
    });
}
