//! Request routing: turns a URL path into what it addresses (discovery, OpenAPI, health, or a
//! resource collection / object / subresource), following the Kubernetes URL layout.

use baton_api::registry::{self, ResourceDef};

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health(&'static str),
    Metrics,
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    /// `/api`
    CoreVersions,
    /// `/apis`
    GroupList,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    ResourceList {
        group: String,
        version: String,
    },
    Resource(Target),
}

/// A resource request: a collection, one object, or one object's subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// The deprecated `/watch/` path form.
    pub watch_path: bool,
}

/// Routes a request path; `None` means no such endpoint (404).
pub fn route(path: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/version" => return Some(Route::Version),
        "/healthz" => return Some(Route::Health("healthz")),
        "/livez" => return Some(Route::Health("livez")),
        "/readyz" => return Some(Route::Health("readyz")),
        "/metrics" => return Some(Route::Metrics),
        "/openapi/v2" | "/swagger.json" => return Some(Route::OpenApiV2),
        "/openapi/v3" => return Some(Route::OpenApiV3Index),
        "/api" => return Some(Route::CoreVersions),
        "/apis" => return Some(Route::GroupList),
        _ => {}
    }
    if let Some(rest) = trimmed.strip_prefix("/openapi/v3/") {
        return Some(Route::OpenApiV3(rest.to_string()));
    }
    if let Some(rest) = trimmed
        .strip_prefix("/healthz/")
        .or_else(|| trimmed.strip_prefix("/livez/"))
    {
        let _ = rest;
        return Some(Route::Health("healthz"));
    }
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Some(Route::Group(group.to_string())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        let known = registry::resources_in(group, version).next().is_some();
        return known.then(|| Route::ResourceList {
            group: group.into(),
            version: version.into(),
        });
    }
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let target = resource_target(group, version, rest)?;
    Some(Route::Resource(Target {
        watch_path,
        ..target
    }))
}

fn resource_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    // `namespaces/{ns}/{resource}/...` when {resource} is a namespaced resource; otherwise the
    // path addresses a cluster-scoped resource (namespaces themselves included).
    if let ["namespaces", ns, resource, tail @ ..] = rest
        && let Some(def) = registry::find(group, version, resource).filter(|d| d.namespaced)
    {
        return target(def, Some(ns), tail);
    }
    let (resource, tail) = rest.split_first()?;
    let def = registry::find(group, version, resource)?;
    target(def, None, tail)
}

fn target(def: &'static ResourceDef, namespace: Option<&str>, tail: &[&str]) -> Option<Target> {
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(*name), None),
        [name, sub] => (Some(*name), Some(*sub)),
        _ => return None,
    };
    if let Some(s) = sub
        && !def.has_subresource(s)
    {
        return None;
    }
    Some(Target {
        def,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
        watch_path: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> Target {
        match route(path) {
            Some(Route::Resource(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let t = res("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(
            (
                t.def.resource,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("deployments", Some("default"), Some("web"), Some("scale"))
        );
        let t = res("/api/v1/namespaces/kube-system");
        assert_eq!(
            (t.def.resource, t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("kube-system"))
        );
        let t = res("/api/v1/namespaces/x/status");
        assert_eq!(
            (t.def.resource, t.name.as_deref(), t.sub.as_deref()),
            ("namespaces", Some("x"), Some("status"))
        );
        let t = res("/api/v1/pods");
        assert_eq!((t.def.resource, t.namespace), ("pods", None));
        let t = res("/api/v1/watch/namespaces/default/pods");
        assert!(t.watch_path);
        let t = res("/apis/extensions/v1beta1/namespaces/d/deployments/x/rollback");
        assert_eq!(t.sub.as_deref(), Some("rollback"));
    }

    #[test]
    fn unknown_paths_do_not_route() {
        assert_eq!(
            route("/apis/apps/v1/namespaces/d/deployments/x/bogus"),
            None
        );
        assert_eq!(route("/apis/nope/v1/things"), None);
        assert_eq!(route("/apis/apps/v9"), None);
        assert_eq!(route("/foo"), None);
        assert_eq!(route("/apis/apps"), Some(Route::Group("apps".into())));
    }
}
