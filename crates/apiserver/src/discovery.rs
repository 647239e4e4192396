//! Discovery documents (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`),
//! generated from the registry so that what kubectl discovers is exactly what is routed.

use baton_api::registry::{self, ResourceDef};
use serde_json::{Value, json};

/// The Kubernetes version Baton reports: the middle of the kubectl range it is tested with,
/// so that no supported kubectl warns about version skew beyond one minor release... for most.
pub const KUBE_MINOR: &str = "30";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0+baton-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "baton",
        "gitTreeState": "clean",
        "buildDate": "2026-12-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(g: &registry::GroupInfo) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{}", g.name, v), "version": v}))
        .collect();
    json!({
        "name": g.name,
        "versions": versions,
        "preferredVersion": {"groupVersion": format!("{}/{}", g.name, g.preferred_version()), "version": g.preferred_version()},
    })
}

pub fn group_list() -> Value {
    let mut groups: Vec<Value> = registry::groups().iter().map(group_json).collect();
    groups.extend(crate::reviews::group_jsons());
    groups.push(crate::metricsapi::group_json());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Option<Value> {
    let g = registry::groups().into_iter().find(|g| g.name == name)?;
    let mut v = group_json(&g);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// The verbs of a kind that can be listed, watched and written (discovery's `verbs`).
pub(crate) const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The (group, version, kind) of a subresource's body, and its verbs.
fn subresource(
    def: &ResourceDef,
    sub: &str,
) -> (String, String, &'static str, &'static [&'static str]) {
    let same = (def.group.to_string(), def.version.to_string());
    match sub {
        "status" => (same.0, same.1, def.kind, &["get", "patch", "update"]),
        "scale" => {
            let (g, v) = if def.group == "apps" && def.version == "v1" || def.group.is_empty() {
                ("autoscaling".to_string(), "v1".to_string())
            } else {
                same
            };
            (g, v, "Scale", &["get", "patch", "update"])
        }
        "rollback" => (same.0, same.1, "DeploymentRollback", &["create"]),
        "log" => (same.0, same.1, "Pod", &["get"]),
        "exec" => (same.0, same.1, "PodExecOptions", &["create", "get"]),
        "attach" => (same.0, same.1, "PodAttachOptions", &["create", "get"]),
        "portforward" => (same.0, same.1, "PodPortForwardOptions", &["create", "get"]),
        "eviction" => ("policy".into(), "v1".into(), "Eviction", &["create"]),
        "binding" => (same.0, same.1, "Binding", &["create"]),
        "finalize" => (same.0, same.1, def.kind, &["update"]),
        _ => (same.0, same.1, def.kind, &["get"]),
    }
}

pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for def in registry::resources_in(group, version) {
        let mut r = json!({
            "name": def.resource,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": ALL_VERBS,
        });
        if !def.short_names.is_empty() {
            r["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            r["categories"] = json!(def.categories);
        }
        resources.push(r);
        for sub in def.subresources {
            let (g, v, kind, verbs) = subresource(def, sub);
            let mut r = json!({
                "name": format!("{}/{}", def.resource, sub),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if g != def.group || v != def.version {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": registry::group_version_string(group, version),
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_streaming_subresources_are_discovered() {
        let l = resource_list("", "v1");
        let rs = l["resources"].as_array().expect("resources");
        let verbs = |name: &str| {
            rs.iter()
                .find(|r| r["name"] == name)
                .map(|r| (r["kind"].clone(), r["verbs"].clone()))
        };
        assert_eq!(verbs("pods/log"), Some((json!("Pod"), json!(["get"]))));
        for (sub, kind) in [
            ("pods/exec", "PodExecOptions"),
            ("pods/attach", "PodAttachOptions"),
            ("pods/portforward", "PodPortForwardOptions"),
        ] {
            assert_eq!(
                verbs(sub),
                Some((json!(kind), json!(["create", "get"]))),
                "{sub}"
            );
        }
    }

    #[test]
    fn apps_v1_lists_deployments_with_scale_in_autoscaling() {
        let l = resource_list("apps", "v1");
        let rs = l["resources"].as_array().expect("resources");
        let d = rs
            .iter()
            .find(|r| r["name"] == "deployments")
            .expect("deployments");
        assert_eq!(d["shortNames"], json!(["deploy"]));
        let s = rs
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale");
        assert_eq!(
            (
                s["group"].as_str(),
                s["version"].as_str(),
                s["kind"].as_str()
            ),
            (Some("autoscaling"), Some("v1"), Some("Scale"))
        );
        let legacy = resource_list("extensions", "v1beta1");
        let s = legacy["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .cloned()
            .expect("scale");
        assert!(
            s.get("group").is_none(),
            "extensions scale is its own group: {s}"
        );
    }
}
