//! The Ingress route table: which backend a request's host and path go to, following
//! networking.k8s.io/v1's rules. Pure: built once per snapshot from the Ingresses, looked up
//! per request without allocating (unless the host has upper-case letters).
//!
//! Precedence, as Kubernetes documents it and ingress controllers implement it:
//! - hosts: an exact host rule, then a wildcard rule (`*.foo.com` matches exactly one label
//!   before `foo.com`), then rules without a host; the first of these whose paths match wins,
//!   then the `defaultBackend` (like Traefik, a host with no matching path falls through to the
//!   less specific rules rather than answering 404 at once);
//! - paths: `Exact` before `Prefix`; the longest `Prefix` wins; a prefix matches by path
//!   elements (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`; `/` matches everything);
//!   `ImplementationSpecific` is treated as `Prefix`;
//! - several Ingresses: their rules for the same host are merged; when two name the same
//!   host, path and type, the oldest Ingress wins (then namespace/name order), as with
//!   ingress-nginx. The first such Ingress with a `defaultBackend` supplies it.
//!
//! Hosts are compared without a port, without a trailing dot, case-insensitively.

use std::borrow::Cow;
use std::collections::HashMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use crate::model::{Endpoint, Service, ServiceKey, Snapshot};

/// How an Ingress names a Service port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => write!(f, "{n}"),
        }
    }
}

/// What an Ingress backend points at, in the Ingress's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackendRef {
    /// `backend.service`: a Service and one of its ports.
    Service {
        namespace: String,
        name: String,
        port: PortRef,
    },
    /// Something Baton cannot send to: a `resource` backend, or a service backend without a
    /// port. The string says what, for the 503 body and the Event.
    Unsupported { namespace: String, what: String },
}

impl BackendRef {
    /// Reads one `IngressBackend` of an Ingress in `namespace`.
    pub fn from_api(namespace: &str, b: &IngressBackend) -> BackendRef {
        if let Some(svc) = &b.service {
            let port = svc.port.as_ref().and_then(|p| match (p.number, &p.name) {
                (Some(n), _) if n > 0 && n <= i32::from(u16::MAX) => {
                    Some(PortRef::Number(n as u16))
                }
                (_, Some(name)) if !name.is_empty() => Some(PortRef::Name(name.clone())),
                _ => None,
            });
            return match port {
                Some(port) => BackendRef::Service {
                    namespace: namespace.to_string(),
                    name: svc.name.clone(),
                    port,
                },
                None => BackendRef::Unsupported {
                    namespace: namespace.to_string(),
                    what: format!("service {namespace}/{} names no port", svc.name),
                },
            };
        }
        let what = match &b.resource {
            Some(r) => format!("resource backend {}/{} is not supported", r.kind, r.name),
            None => "backend names neither a service nor a resource".to_string(),
        };
        BackendRef::Unsupported {
            namespace: namespace.to_string(),
            what,
        }
    }
}

/// The path rules of one host (or of the rules without a host).
#[derive(Debug, Default)]
struct PathRules {
    exact: HashMap<String, usize>,
    /// Normalised prefixes (no trailing `/`; `/` itself is ""), longest first.
    prefixes: Vec<(String, usize)>,
}

impl PathRules {
    fn add(&mut self, kind: PathKind, path: &str, backend: usize) {
        match kind {
            PathKind::Exact => {
                self.exact.entry(path.to_string()).or_insert(backend);
            }
            PathKind::Prefix => {
                let p = path.trim_end_matches('/');
                if !self.prefixes.iter().any(|(q, _)| q == p) {
                    self.prefixes.push((p.to_string(), backend));
                }
            }
        }
    }

    fn finish(&mut self) {
        // Stable: among equal lengths the first added (oldest Ingress) stays first.
        self.prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    fn lookup(&self, path: &str) -> Option<usize> {
        if let Some(b) = self.exact.get(path) {
            return Some(*b);
        }
        self.prefixes
            .iter()
            .find(|(p, _)| prefix_matches(p, path))
            .map(|(_, b)| *b)
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// Whether a normalised prefix (no trailing slash) matches `path` element-wise.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathKind {
    Exact,
    Prefix,
}

/// Every Ingress rule of a snapshot, merged, ready for lookups.
#[derive(Debug, Default)]
pub struct Routes {
    exact_hosts: HashMap<String, PathRules>,
    /// `*.foo.com` keyed by `foo.com`.
    wildcard_hosts: HashMap<String, PathRules>,
    any_host: PathRules,
    default_backend: Option<usize>,
    backends: Vec<BackendRef>,
}

impl Routes {
    /// Builds the table from Ingresses (in any order: they are sorted oldest first here).
    pub fn build(ingresses: &[Ingress]) -> Routes {
        let mut order: Vec<&Ingress> = ingresses.iter().collect();
        order.sort_by(|a, b| {
            let key = |i: &Ingress| {
                (
                    i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    i.metadata.namespace.clone(),
                    i.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        let mut routes = Routes::default();
        let mut index: HashMap<BackendRef, usize> = HashMap::new();
        let mut intern = |b: BackendRef, backends: &mut Vec<BackendRef>| -> usize {
            *index.entry(b.clone()).or_insert_with(|| {
                backends.push(b);
                backends.len() - 1
            })
        };
        for ing in order {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = &ing.spec else { continue };
            if routes.default_backend.is_none()
                && let Some(b) = &spec.default_backend
            {
                let idx = intern(BackendRef::from_api(ns, b), &mut routes.backends);
                routes.default_backend = Some(idx);
            }
            for rule in spec.rules.iter().flatten() {
                let Some(http) = &rule.http else { continue };
                let host = rule
                    .host
                    .as_deref()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .filter(|h| !h.is_empty());
                let rules = match host {
                    None => &mut routes.any_host,
                    Some(h) => match h.strip_prefix("*.") {
                        Some(suffix) => {
                            routes.wildcard_hosts.entry(suffix.to_string()).or_default()
                        }
                        None => routes.exact_hosts.entry(h).or_default(),
                    },
                };
                for p in &http.paths {
                    let kind = if p.path_type == "Exact" {
                        PathKind::Exact
                    } else {
                        PathKind::Prefix
                    };
                    let path = p.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
                    let idx = intern(BackendRef::from_api(ns, &p.backend), &mut routes.backends);
                    rules.add(kind, path, idx);
                }
            }
        }
        routes.any_host.finish();
        for r in routes.exact_hosts.values_mut() {
            r.finish();
        }
        for r in routes.wildcard_hosts.values_mut() {
            r.finish();
        }
        routes
    }

    /// Every distinct backend the rules name; [`Routes::lookup`] answers indices into it.
    pub fn backends(&self) -> &[BackendRef] {
        &self.backends
    }

    /// Whether no rule and no default backend exist.
    pub fn is_empty(&self) -> bool {
        self.default_backend.is_none()
            && self.any_host.is_empty()
            && self.exact_hosts.is_empty()
            && self.wildcard_hosts.is_empty()
    }

    /// The backend (an index into [`Routes::backends`]) for a request's `Host` (port allowed)
    /// and path (without the query), or `None`: 404.
    pub fn lookup(&self, host: &str, path: &str) -> Option<usize> {
        let host = normalize_host(host);
        if let Some(rules) = self.exact_hosts.get(host.as_ref())
            && let Some(b) = rules.lookup(path)
        {
            return Some(b);
        }
        if !self.wildcard_hosts.is_empty()
            && let Some((first, suffix)) = host.split_once('.')
            && !first.is_empty()
            && let Some(rules) = self.wildcard_hosts.get(suffix)
            && let Some(b) = rules.lookup(path)
        {
            return Some(b);
        }
        self.any_host.lookup(path).or(self.default_backend)
    }
}

/// Why a backend cannot take traffic; worded once for the 503 body and the Ingress Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    ServiceNotFound { service: ServiceKey },
    PortNotFound { service: ServiceKey, port: PortRef },
    Unsupported { what: String },
    NoEndpoints { service: ServiceKey },
}

impl Unavailable {
    /// The Event reason Kubernetes users would look for.
    pub fn reason(&self) -> &'static str {
        match self {
            Unavailable::ServiceNotFound { .. } => "ServiceNotFound",
            Unavailable::PortNotFound { .. } => "PortNotFound",
            Unavailable::Unsupported { .. } => "UnsupportedBackend",
            Unavailable::NoEndpoints { .. } => "NoReadyEndpoints",
        }
    }

    /// Whether the Ingress itself is wrong (worth an Event), not merely its pods not ready.
    pub fn is_config_problem(&self) -> bool {
        !matches!(self, Unavailable::NoEndpoints { .. })
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::ServiceNotFound { service } => {
                write!(f, "service \"{service}\" not found")
            }
            Unavailable::PortNotFound { service, port } => {
                write!(f, "service \"{service}\" has no port {port}")
            }
            Unavailable::Unsupported { what } => f.write_str(what),
            Unavailable::NoEndpoints { service } => {
                write!(f, "no ready endpoints for service {service}")
            }
        }
    }
}

/// The Service port a backend names in `snapshot`, with its routable endpoints (never empty),
/// or why there is none.
pub fn resolve<'s>(
    snapshot: &'s Snapshot,
    backend: &BackendRef,
) -> Result<(&'s Service, Vec<&'s Endpoint>), Unavailable> {
    let (namespace, name, port) = match backend {
        BackendRef::Service {
            namespace,
            name,
            port,
        } => (namespace, name, port),
        BackendRef::Unsupported { what, .. } => {
            return Err(Unavailable::Unsupported { what: what.clone() });
        }
    };
    let key = ServiceKey {
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let Some(svc) = snapshot.services.get(&key) else {
        return Err(Unavailable::ServiceNotFound { service: key });
    };
    let found = match port {
        PortRef::Number(n) => svc.port(Some(*n), None),
        PortRef::Name(n) => svc.port(None, Some(n)),
    };
    let Some(p) = found else {
        return Err(Unavailable::PortNotFound {
            service: key,
            port: port.clone(),
        });
    };
    let routable = p.routable();
    if routable.is_empty() {
        return Err(Unavailable::NoEndpoints { service: key });
    }
    Ok((svc, routable))
}

/// The host without port or trailing dot, lower-cased (borrowed when already lower-case).
fn normalize_host(host: &str) -> Cow<'_, str> {
    let h = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: "[::1]:80" → "[::1]"
        match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ingress(name: &str, created: &str, spec: Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": name, "creationTimestamp": created},
            "spec": spec,
        }))
        .expect("ingress")
    }

    fn path(p: &str, kind: &str, svc: &str) -> Value {
        json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
    }

    /// The service name a request goes to, or "404".
    fn route(routes: &Routes, host: &str, p: &str) -> String {
        match routes.lookup(host, p) {
            None => "404".into(),
            Some(i) => match &routes.backends()[i] {
                BackendRef::Service { name, .. } => name.clone(),
                BackendRef::Unsupported { what, .. } => what.clone(),
            },
        }
    }

    #[test]
    fn precedence_follows_kubernetes() {
        let routes = Routes::build(&[
            ingress(
                "a",
                "2024-01-01T00:00:00Z",
                json!({
                    "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                    "rules": [
                        {"host": "foo.com", "http": {"paths": [
                            path("/", "Prefix", "root"),
                            path("/foo", "Prefix", "foo"),
                            path("/foo/bar", "Prefix", "foobar"),
                            path("/foo/bar", "Exact", "foobar-exact"),
                            path("/aaa/", "Prefix", "aaa"),
                            path("/impl", "ImplementationSpecific", "impl"),
                        ]}},
                        {"host": "*.wild.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                        {"host": "only-api.com", "http": {"paths": [path("/api", "Prefix", "api")]}},
                        {"http": {"paths": [path("/any", "Prefix", "anyhost")]}},
                    ]
                }),
            ),
            // Merged into foo.com; its duplicate of "/" loses to the older Ingress.
            ingress(
                "b",
                "2024-02-01T00:00:00Z",
                json!({
                    "defaultBackend": {"service": {"name": "later-default", "port": {"number": 80}}},
                    "rules": [{"host": "FOO.com", "http": {"paths": [
                        path("/", "Prefix", "newer-root"),
                        path("/baz", "Exact", "baz"),
                    ]}}]
                }),
            ),
        ]);
        let cases = [
            ("foo.com", "/", "root"),
            ("foo.com", "/foo", "foo"),
            ("foo.com", "/foo/", "foo"),
            ("foo.com", "/foobar", "root"),
            ("foo.com", "/foo/bar", "foobar-exact"),
            ("foo.com", "/foo/bar/", "foobar"),
            ("foo.com", "/foo/bar/baz", "foobar"),
            ("foo.com", "/foo/barbaz", "foo"),
            ("foo.com", "/aaa", "aaa"),
            ("foo.com", "/aaa/x", "aaa"),
            ("foo.com", "/aaax", "root"),
            ("foo.com", "/impl/x", "impl"),
            ("foo.com", "/baz", "baz"),
            ("foo.com", "/baz/", "root"),
            ("Foo.COM:8080", "/foo", "foo"),
            ("foo.com.", "/foo", "foo"),
            ("a.wild.com", "/x", "wild"),
            ("A.Wild.Com:80", "/x", "wild"),
            ("a.b.wild.com", "/x", "fallback"),
            ("wild.com", "/x", "fallback"),
            ("only-api.com", "/api/v1", "api"),
            // a host whose paths do not match falls through to host-less rules, then default
            ("only-api.com", "/any", "anyhost"),
            ("only-api.com", "/other", "fallback"),
            ("unknown.com", "/any/x", "anyhost"),
            ("unknown.com", "/", "fallback"),
            ("", "/", "fallback"),
            ("[::1]:80", "/any", "anyhost"),
        ];
        for (host, p, want) in cases {
            assert_eq!(route(&routes, host, p), want, "{host} {p}");
        }
    }

    #[test]
    fn without_a_default_backend_unmatched_requests_are_404() {
        let routes = Routes::build(&[ingress(
            "a",
            "2024-01-01T00:00:00Z",
            json!({"rules": [{"host": "foo.com", "http": {"paths": [path("/x", "Exact", "x")]}}]}),
        )]);
        assert_eq!(route(&routes, "foo.com", "/x"), "x");
        assert_eq!(route(&routes, "foo.com", "/y"), "404");
        assert_eq!(route(&routes, "bar.com", "/x"), "404");
        assert!(Routes::build(&[]).is_empty());
    }

    #[test]
    fn backends_by_port_name_number_and_unsupported() {
        let routes = Routes::build(&[ingress(
            "a",
            "2024-01-01T00:00:00Z",
            json!({"rules": [{"http": {"paths": [
                {"path": "/n", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 8080}}}},
                {"path": "/p", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"name": "http"}}}},
                {"path": "/n2", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 8080}}}},
                {"path": "/r", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}},
            ]}}]}),
        )]);
        let b = |p: &str| routes.backends()[routes.lookup("h", p).expect("route")].clone();
        let svc = |port| BackendRef::Service {
            namespace: "default".into(),
            name: "s".into(),
            port,
        };
        assert_eq!(b("/n"), svc(PortRef::Number(8080)));
        assert_eq!(b("/p"), svc(PortRef::Name("http".into())));
        assert_eq!(routes.lookup("h", "/n"), routes.lookup("h", "/n2"));
        assert_eq!(routes.backends().len(), 3);
        assert!(matches!(b("/r"), BackendRef::Unsupported { .. }));
    }
}
