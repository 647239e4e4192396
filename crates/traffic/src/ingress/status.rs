//! What the Ingress proxy writes back to the API: `status.loadBalancer.ingress` (the listen IP,
//! so `kubectl get ingress` shows an ADDRESS) and Warning Events on Ingresses that name a
//! missing Service or port. [`problems`] is pure; [`publish_status`] is the thin writer, called
//! by whoever owns the API client; the events go through baton-api's recorder.

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};

use super::routes::{BackendRef, resolve};
use crate::model::Snapshot;

/// The component name on Events.
pub const COMPONENT: &str = "baton-ingress";

/// Something wrong with one Ingress's backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressProblem {
    pub namespace: String,
    pub name: String,
    /// `ServiceNotFound`, `PortNotFound` or `UnsupportedBackend`.
    pub reason: &'static str,
    /// E.g. `service "default/x" not found`, `service "default/x" has no port 9091`.
    pub message: String,
}

/// Every backend of every Ingress in `snapshot` that names a missing Service or port (or
/// something that is not a Service), one problem per distinct message and Ingress. Backends
/// that merely have no ready endpoint are not problems of the Ingress.
pub fn problems(snapshot: &Snapshot) -> Vec<IngressProblem> {
    let mut out: Vec<IngressProblem> = Vec::new();
    for ing in &snapshot.ingresses {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let name = ing.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &ing.spec else { continue };
        let backends = spec.default_backend.iter().chain(
            spec.rules
                .iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| h.paths.iter().map(|p| &p.backend)),
        );
        for b in backends {
            let Err(why) = resolve(snapshot, &BackendRef::from_api(ns, b)) else {
                continue;
            };
            if !why.is_config_problem() {
                continue;
            }
            let problem = IngressProblem {
                namespace: ns.to_string(),
                name: name.clone(),
                reason: why.reason(),
                message: why.to_string(),
            };
            if !out.contains(&problem) {
                out.push(problem);
            }
        }
    }
    out
}

/// Why writing to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("patching status of ingress {namespace}/{name}: {source}")]
    Patch {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// Sets `status.loadBalancer.ingress` to `[{ip}]` on every Ingress where it differs (a merge
/// patch of the status subresource). Returns how many were patched; stops at the first error.
pub async fn publish_status(
    client: &kube::Client,
    ingresses: &[Ingress],
    ip: IpAddr,
) -> Result<usize, StatusError> {
    let want = serde_json::json!([{ "ip": ip.to_string() }]);
    let mut patched = 0;
    for ing in ingresses {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let name = ing.metadata.name.as_deref().unwrap_or_default();
        let have = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| serde_json::to_value(&lb.ingress).ok())
            .unwrap_or(serde_json::Value::Null);
        if have == want {
            continue;
        }
        let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
        let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": want } } });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| StatusError::Patch {
                namespace: ns.to_string(),
                name: name.to_string(),
                source,
            })?;
        patched += 1;
    }
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_services_and_ports_are_problems_not_endpoints() {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .expect("service");
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "site"},
            "spec": {
                "defaultBackend": {"service": {"name": "gone", "port": {"number": 80}}},
                "rules": [{"http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/a", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 9091}}}},
                    {"path": "/b", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "grpc"}}}},
                    {"path": "/c", "pathType": "Prefix", "backend": {"service": {"name": "gone", "port": {"number": 80}}}},
                ]}}]
            }
        }))
        .expect("ingress");
        let snap = Snapshot::build(1, &[svc], &[], &[ing], "baton", true);
        let got: Vec<(&str, String)> = problems(&snap)
            .iter()
            .map(|p| (p.reason, p.message.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "ServiceNotFound",
                    "service \"default/gone\" not found".to_string()
                ),
                (
                    "PortNotFound",
                    "service \"default/web\" has no port 9091".to_string()
                ),
                (
                    "PortNotFound",
                    "service \"default/web\" has no port grpc".to_string()
                ),
            ]
        );
    }
}
