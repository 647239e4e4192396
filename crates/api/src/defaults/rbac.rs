//! RBAC defaults (`pkg/apis/rbac/v1/defaults.go`): a binding's `roleRef.apiGroup` and a User
//! or Group subject's `apiGroup` default to the RBAC group.

use serde_json::{Map, Value, json};

use crate::json::{child_opt, each_object, set_default_if_empty, str_of};
use crate::registry::RBAC_GROUP;

/// RoleBinding and ClusterRoleBinding.
pub(super) fn binding(m: &mut Map<String, Value>) {
    if let Some(role_ref) = child_opt(m, "roleRef") {
        set_default_if_empty(role_ref, "apiGroup", json!(RBAC_GROUP));
    }
    each_object(m, "subjects", |s| {
        if matches!(str_of(s, "kind"), "User" | "Group") {
            set_default_if_empty(s, "apiGroup", json!(RBAC_GROUP));
        }
    });
}
