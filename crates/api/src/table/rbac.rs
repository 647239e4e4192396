//! Roles, ClusterRoles and their bindings, as Kubernetes' `printRole`, `printClusterRole`,
//! `printRoleBinding` and `printClusterRoleBinding` print them.

use serde_json::{Value, json};

use super::{AGE_DOC, Column, age_col, col, list, s};

const ROLE_REF_DOC: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";

pub(super) fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Role" | "ClusterRole" => vec![col("Created At", "date", 0, AGE_DOC)],
        _ => vec![
            col("Role", "string", 0, ROLE_REF_DOC),
            age_col(),
            col("Users", "string", 1, "Users in the roleBinding"),
            col("Groups", "string", 1, "Groups in the roleBinding"),
            col(
                "ServiceAccounts",
                "string",
                1,
                "ServiceAccounts in the roleBinding",
            ),
        ],
    }
}

pub(super) fn cells(kind: &str, obj: &Value, name: Value, age: Value) -> Vec<Value> {
    match kind {
        "Role" | "ClusterRole" => vec![name, json!(s(obj, "/metadata/creationTimestamp"))],
        _ => {
            let (mut users, mut groups, mut accounts) = (vec![], vec![], vec![]);
            for subject in list(obj, "/subjects") {
                let n = s(subject, "/name").to_string();
                match s(subject, "/kind") {
                    "User" => users.push(n),
                    "Group" => groups.push(n),
                    "ServiceAccount" => match s(subject, "/namespace") {
                        "" => accounts.push(n),
                        ns => accounts.push(format!("{ns}/{n}")),
                    },
                    _ => {}
                }
            }
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s(obj, "/roleRef/kind"),
                    s(obj, "/roleRef/name")
                )),
                age,
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(accounts.join(", ")),
            ]
        }
    }
}
