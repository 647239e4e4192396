//! The endpoints controller: keeps each Service's core/v1 Endpoints and discovery.k8s.io/v1
//! EndpointSlices current from the pods its selector matches, as Kubernetes' endpoints and
//! endpointslice controllers do — `ready` / `serving` / `terminating` conditions, named
//! `targetPort`s resolved per pod, several ports, `publishNotReadyAddresses`, headless
//! Services. A Service without a selector keeps the Endpoints its user writes; those are
//! mirrored into EndpointSlices (Kubernetes' endpointslice-mirroring controller), so the
//! proxies read one kind only.
//!
//! Pods, Services, Endpoints and EndpointSlices are read from the shared caches
//! (`informer.rs`); a sync never lists from the API. [`desired`] is pure; [`run`] is the I/O around it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, Endpoints, ObjectReference, Pod,
    Service,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;

use crate::informer::{Informer, Informers, Notice};
use crate::pods;

/// `endpointslice.kubernetes.io/managed-by` of the slices this controller writes.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// … and of the slices mirrored from user-managed Endpoints.
pub const MIRRORED_BY: &str = "endpointslicemirroring-controller.k8s.io";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Kubernetes' default `--max-endpoints-per-slice`.
const MAX_PER_SLICE: usize = 100;

/// What a Service's endpoints should be.
#[derive(Debug, Default, PartialEq)]
pub struct Desired {
    /// The Endpoints object, when this controller owns it (Services with a selector).
    pub endpoints: Option<Endpoints>,
    pub slices: Vec<EndpointSlice>,
}

/// The Service's Endpoints and EndpointSlices given the pods of its namespace (for a Service
/// with a selector) or the user's Endpoints (for one without).
pub fn desired(svc: &Service, ns_pods: &[Arc<Pod>], user_endpoints: Option<&Endpoints>) -> Desired {
    let Some(spec) = svc.spec.as_ref() else {
        return Desired::default();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Desired::default();
    }
    match spec.selector.as_ref().filter(|s| !s.is_empty()) {
        Some(selector) => from_pods(svc, selector, ns_pods),
        None => Desired {
            endpoints: None,
            slices: user_endpoints.map(|e| mirror(svc, e)).unwrap_or_default(),
        },
    }
}

fn from_pods(svc: &Service, selector: &BTreeMap<String, String>, ns_pods: &[Arc<Pod>]) -> Desired {
    let spec = svc.spec.as_ref().cloned().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_name = svc.name_any();
    // Resolved port list → endpoints (slices), and → (ready, not ready) addresses (Endpoints).
    let mut groups: BTreeMap<Vec<PortKey>, Vec<Endpoint>> = BTreeMap::new();
    let mut subsets: BTreeMap<Vec<PortKey>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    let mut matching: Vec<&Arc<Pod>> = ns_pods.iter().filter(|p| selects(selector, p)).collect();
    matching.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in matching {
        if matches!(pods::phase(pod), "Succeeded" | "Failed") {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .filter(|ip| !ip.is_empty() && !ip.contains(':'))
        else {
            continue;
        };
        let ports: Vec<PortKey> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|sp| resolve_port(sp, pod))
            .collect();
        if ports.is_empty() && spec.ports.as_ref().is_some_and(|p| !p.is_empty()) {
            // No port of the Service resolves on this pod: it cannot be an endpoint.
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let pod_ready = pods::is_ready(pod);
        let ready = publish_not_ready || (pod_ready && !terminating);
        let serving = publish_not_ready || pod_ready;
        let spec_p = pod.spec.as_ref();
        let hostname = spec_p
            .and_then(|s| s.hostname.clone())
            .filter(|_| spec_p.and_then(|s| s.subdomain.as_deref()) == Some(svc_name.as_str()));
        let target = ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        };
        let node = spec_p.and_then(|s| s.node_name.clone());
        groups.entry(ports.clone()).or_default().push(Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname.clone(),
            node_name: node.clone(),
            target_ref: Some(target.clone()),
            ..Default::default()
        });
        // Endpoints (core/v1) leave terminating pods out unless not-ready ones are published.
        if terminating && !publish_not_ready {
            continue;
        }
        let addr = EndpointAddress {
            ip: ip.to_string(),
            hostname,
            node_name: node,
            target_ref: Some(target),
        };
        let entry = subsets.entry(ports).or_default();
        if ready {
            entry.0.push(addr);
        } else {
            entry.1.push(addr);
        }
    }
    // Kubernetes lists Endpoints addresses by IP.
    for (ready, not_ready) in subsets.values_mut() {
        ready.sort_by_key(|a| a.ip.parse::<std::net::Ipv4Addr>().ok());
        not_ready.sort_by_key(|a| a.ip.parse::<std::net::Ipv4Addr>().ok());
    }
    let endpoints = Endpoints {
        metadata: ObjectMeta {
            name: Some(svc_name.clone()),
            namespace: svc.namespace(),
            labels: Some(endpoints_labels(svc)),
            ..Default::default()
        },
        subsets: Some(
            subsets
                .into_iter()
                .map(|(ports, (ready, not_ready))| EndpointSubset {
                    addresses: (!ready.is_empty()).then_some(ready),
                    not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                    ports: (!ports.is_empty()).then(|| ports.iter().map(PortKey::core).collect()),
                })
                .collect::<Vec<_>>(),
        )
        .filter(|s| !s.is_empty()),
    };
    // A Service with no endpoints still gets one empty slice, as Kubernetes writes it.
    if groups.is_empty() {
        let ports = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|sp| match &sp.target_port {
                Some(IntOrString::String(_)) => None,
                _ => resolve_port(sp, &Pod::default()),
            })
            .collect();
        groups.insert(ports, Vec::new());
    }
    let slices = slices_for(svc, MANAGED_BY, groups);
    Desired {
        endpoints: Some(endpoints),
        slices,
    }
}

/// Mirrors a selectorless Service's user-managed Endpoints into slices.
fn mirror(svc: &Service, e: &Endpoints) -> Vec<EndpointSlice> {
    let mut groups: BTreeMap<Vec<PortKey>, Vec<Endpoint>> = BTreeMap::new();
    for subset in e.subsets.iter().flatten() {
        let ports: Vec<PortKey> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| PortKey {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port,
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let group = groups.entry(ports).or_default();
        for (addrs, ready) in [
            (&subset.addresses, true),
            (&subset.not_ready_addresses, false),
        ] {
            for a in addrs.iter().flatten().filter(|a| !a.ip.contains(':')) {
                group.push(Endpoint {
                    addresses: vec![a.ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some(ready),
                        serving: Some(ready),
                        terminating: Some(false),
                    }),
                    hostname: a.hostname.clone(),
                    node_name: a.node_name.clone(),
                    target_ref: a.target_ref.clone(),
                    ..Default::default()
                });
            }
        }
    }
    slices_for(svc, MIRRORED_BY, groups)
}

/// A Service port resolved for one pod: the slice's (and Endpoints') port entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    protocol: String,
    port: i32,
    app_protocol: Option<String>,
}

impl PortKey {
    fn slice(&self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name.clone()),
            protocol: Some(self.protocol.clone()),
            port: Some(self.port),
            app_protocol: self.app_protocol.clone(),
        }
    }

    fn core(&self) -> CorePort {
        CorePort {
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            protocol: Some(self.protocol.clone()),
            port: self.port,
            app_protocol: self.app_protocol.clone(),
        }
    }
}

/// The pod's port for a Service port: `targetPort` as a number, as the name of one of the
/// pod's container ports (same protocol), or the Service port when unset.
fn resolve_port(sp: &k8s_openapi::api::core::v1::ServicePort, pod: &Pod) -> Option<PortKey> {
    let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
    let port = match &sp.target_port {
        None => sp.port,
        Some(IntOrString::Int(0)) => sp.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => {
                pod.spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| {
                        p.name.as_deref() == Some(name.as_str())
                            && p.protocol.as_deref().unwrap_or("TCP") == protocol
                    })?
                    .container_port
            }
        },
    };
    Some(PortKey {
        name: sp.name.clone().unwrap_or_default(),
        protocol,
        port,
        app_protocol: sp.app_protocol.clone(),
    })
}

fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.labels().clone();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// Slices of at most [`MAX_PER_SLICE`] endpoints per resolved port list, with stable names.
fn slices_for(
    svc: &Service,
    managed_by: &str,
    groups: BTreeMap<Vec<PortKey>, Vec<Endpoint>>,
) -> Vec<EndpointSlice> {
    let name = svc.name_any();
    let prefix: String = name.chars().take(56).collect();
    let mut labels = endpoints_labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), managed_by.into());
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: svc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut out = Vec::new();
    for (ports, endpoints) in groups {
        let chunks: Vec<Vec<Endpoint>> = if endpoints.is_empty() {
            vec![Vec::new()]
        } else {
            endpoints
                .chunks(MAX_PER_SLICE)
                .map(<[Endpoint]>::to_vec)
                .collect()
        };
        for (i, chunk) in chunks.into_iter().enumerate() {
            let id = format!("{ports:?}/{i}");
            out.push(EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(format!("{prefix}-{}", short_hash(&id))),
                    namespace: svc.namespace(),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints: Some(chunk),
                ports: Some(ports.iter().map(PortKey::slice).collect()),
            });
        }
    }
    out
}

/// Five lowercase alphanumerics from FNV-1a: stable across restarts.
fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// A Service's namespace and name.
type Key = (String, String);

struct Caches {
    services: Store<Service>,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
    endpoints: Store<Endpoints>,
}

/// Runs the controller until the task is dropped, over the shared caches.
pub async fn run(client: Client, informers: Informers) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Key>();
    forward(
        &informers.endpoint_slices,
        tx.clone(),
        |s: &EndpointSlice| {
            s.labels()
                .get(SERVICE_NAME_LABEL)
                .filter(|_| is_ours(s))
                .map(|n| vec![(s.namespace().unwrap_or_default(), n.clone())])
                .unwrap_or_default()
        },
    );
    forward(&informers.endpoints, tx.clone(), |e: &Endpoints| {
        vec![(e.namespace().unwrap_or_default(), e.name_any())]
    });
    // A pod change concerns the Services whose selector matches it now, and those it was a
    // member of (its labels may have left one); Services without a selector never (their
    // Endpoints are their user's). A Service change records its members, so a Service whose
    // selector came to match a pod is among that pod's Services when the pod changes later.
    let members = Arc::new(std::sync::Mutex::new(Memberships::default()));
    {
        let members = members.clone();
        let pods = informers.pods.store();
        forward(&informers.services, tx.clone(), move |s: &Service| {
            let ns = s.namespace().unwrap_or_default();
            if let Some(sel) = selector(s) {
                let key = (ns.clone(), s.name_any());
                let mut m = members.lock().unwrap_or_else(|e| e.into_inner());
                for p in pods.state() {
                    if p.metadata.namespace.as_deref() == Some(ns.as_str()) && selects(sel, &p) {
                        m.record(&p, std::iter::once(key.clone()));
                    }
                }
            }
            vec![(ns, s.name_any())]
        });
    }
    let svc_index = informers.services.store();
    forward_notices(&informers.pods, tx.clone(), move |p: &Pod, deleted| {
        let ns = p.namespace().unwrap_or_default();
        let now: Vec<Key> = svc_index
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|s| selector(s).is_some_and(|sel| selects(sel, p)))
            .map(|s| (ns.clone(), s.name_any()))
            .collect();
        members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .change(p, now, deleted)
    });
    for ready in [
        informers.services.synced().await,
        informers.pods.synced().await,
        informers.endpoint_slices.synced().await,
        informers.endpoints.synced().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    let caches = Caches {
        services: informers.services.store(),
        pods: informers.pods.store(),
        slices: informers.endpoint_slices.store(),
        endpoints: informers.endpoints.store(),
    };
    for s in caches.services.state() {
        let _ = tx.send((s.namespace().unwrap_or_default(), s.name_any()));
    }
    tracing::info!("endpoints controller started");
    loop {
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut dirty = BTreeSet::from([first]);
        while let Ok(k) = rx.try_recv() {
            dirty.insert(k);
        }
        for key in dirty {
            if let Err(e) = sync(&client, &caches, &key).await {
                let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409 || s.code == 404);
                if !conflict {
                    tracing::warn!(service = %format!("{}/{}", key.0, key.1), error = %e, "endpoints sync failed");
                }
                let tx = tx.clone();
                let delay = if conflict { 50 } else { 500 };
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let _ = tx.send(key);
                });
            }
        }
    }
}

/// A slice this controller writes (for a selector) or mirrors (for a user's Endpoints).
fn is_ours(s: &EndpointSlice) -> bool {
    matches!(
        s.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY | MIRRORED_BY)
    )
}

/// Sends the Service keys each change of one kind concerns.
fn forward<K, F>(informer: &Informer<K>, tx: mpsc::UnboundedSender<Key>, keys: F)
where
    K: crate::informer::Kind,
    F: Fn(&K) -> Vec<Key> + Send + 'static,
{
    let changes = informer.subscribe();
    tokio::spawn(async move {
        let mut changes = std::pin::pin!(changes);
        while let Some(obj) = changes.next().await {
            for k in keys(&obj) {
                if tx.send(k).is_err() {
                    return;
                }
            }
        }
    });
}

/// [`forward`] for pods, knowing whether the pod was deleted.
fn forward_notices<F>(informer: &Informer<Pod>, tx: mpsc::UnboundedSender<Key>, keys: F)
where
    F: Fn(&Pod, bool) -> Vec<Key> + Send + 'static,
{
    let notices = informer.notices();
    tokio::spawn(async move {
        let mut notices = std::pin::pin!(notices);
        while let Some(n) = notices.next().await {
            let found = match n {
                Notice::Applied(p) => keys(&p, false),
                Notice::Deleted(p) => keys(&p, true),
                Notice::Synced => continue,
            };
            for k in found {
                if tx.send(k).is_err() {
                    return;
                }
            }
        }
    });
}

/// A Service's selector, when it has one (an empty one selects nothing here: such a
/// Service's Endpoints are its user's).
fn selector(s: &Service) -> Option<&BTreeMap<String, String>> {
    s.spec
        .as_ref()
        .and_then(|spec| spec.selector.as_ref())
        .filter(|sel| !sel.is_empty())
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The Services each pod (namespace, name) was last seen to be selected by: a pod whose
/// labels changed must still update the Services it left.
#[derive(Default)]
struct Memberships(std::collections::HashMap<Key, BTreeSet<Key>>);

impl Memberships {
    fn pod_key(p: &Pod) -> Key {
        (p.namespace().unwrap_or_default(), p.name_any())
    }

    fn record(&mut self, p: &Pod, services: impl IntoIterator<Item = Key>) {
        self.0.entry(Self::pod_key(p)).or_default().extend(services);
    }

    /// The pod now selected by `now` (or deleted): the Services to sync, those it is selected
    /// by and those it was.
    fn change(&mut self, p: &Pod, now: Vec<Key>, deleted: bool) -> Vec<Key> {
        let key = Self::pod_key(p);
        let mut all = self.0.remove(&key).unwrap_or_default();
        if !deleted && !now.is_empty() {
            self.0.insert(key, now.iter().cloned().collect());
        }
        all.extend(now);
        all.into_iter().collect()
    }
}

async fn sync(client: &Client, c: &Caches, key: &Key) -> Result<(), kube::Error> {
    let (ns, name) = key;
    let svc = c.services.get(&ObjectRef::new(name).within(ns));
    let existing_slices: Vec<Arc<EndpointSlice>> = c
        .slices
        .state()
        .into_iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.labels().get(SERVICE_NAME_LABEL) == Some(name)
                && is_ours(s)
        })
        .collect();
    let existing_ep = c.endpoints.get(&ObjectRef::new(name).within(ns));
    let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let ep_api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let Some(svc) = svc.filter(|s| s.metadata.deletion_timestamp.is_none()) else {
        // The Service is gone: so are the objects this controller wrote for it.
        for s in existing_slices {
            delete_ignoring_missing(&slices_api, &s.name_any()).await?;
        }
        if let Some(ep) = existing_ep
            && ep.annotations().contains_key(TRIGGER_ANNOTATION)
        {
            delete_ignoring_missing(&ep_api, name).await?;
        }
        return Ok(());
    };
    let ns_pods: Vec<Arc<Pod>> = c
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    let want = desired(&svc, &ns_pods, existing_ep.as_deref());
    if let Some(mut ep) = want.endpoints {
        match existing_ep {
            Some(cur) if cur.subsets == ep.subsets && cur.metadata.labels == ep.metadata.labels => {
            }
            Some(cur) => {
                ep.metadata.resource_version = cur.metadata.resource_version.clone();
                ep.metadata.annotations = Some(trigger_annotation());
                ep_api.replace(name, &PostParams::default(), &ep).await?;
            }
            None => {
                ep.metadata.annotations = Some(trigger_annotation());
                ep_api.create(&PostParams::default(), &ep).await?;
            }
        }
    }
    let mut keep = BTreeSet::new();
    for mut s in want.slices {
        let sname = s.metadata.name.clone().unwrap_or_default();
        keep.insert(sname.clone());
        match existing_slices
            .iter()
            .find(|e| e.metadata.name.as_deref() == Some(sname.as_str()))
        {
            Some(cur)
                if cur.endpoints == s.endpoints
                    && cur.ports == s.ports
                    && cur.metadata.labels == s.metadata.labels => {}
            Some(cur) => {
                s.metadata.resource_version = cur.metadata.resource_version.clone();
                slices_api
                    .replace(&sname, &PostParams::default(), &s)
                    .await?;
            }
            None => {
                slices_api.create(&PostParams::default(), &s).await?;
            }
        }
    }
    for s in existing_slices {
        if !keep.contains(&s.name_any()) {
            delete_ignoring_missing(&slices_api, &s.name_any()).await?;
        }
    }
    Ok(())
}

/// Kubernetes' annotation on the Endpoints it writes; it also marks them as ours.
const TRIGGER_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

fn trigger_annotation() -> BTreeMap<String, String> {
    BTreeMap::from([(
        TRIGGER_ANNOTATION.to_string(),
        baton_api::clock::now_rfc3339(),
    )])
}

async fn delete_ignoring_missing<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web", "uid": "svc-uid", "labels": {"app": "web"}},
            "spec": spec
        }))
        .expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"namespace": "default", "name": name, "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [
                {"name": "http", "containerPort": 9090},
                {"name": "metrics", "containerPort": 9100}
            ]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready {"True"} else {"False"}}
            ]}
        });
        if terminating {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    fn conditions(s: &EndpointSlice) -> Vec<(String, bool, bool, bool)> {
        s.endpoints
            .iter()
            .flatten()
            .map(|e| {
                let c = e.conditions.clone().unwrap_or_default();
                (
                    e.addresses[0].clone(),
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                )
            })
            .collect()
    }

    #[test]
    fn a_pod_change_concerns_the_services_it_is_and_was_selected_by() {
        let web = ("default".to_string(), "web".to_string());
        let api = ("default".to_string(), "api".to_string());
        let p = pod("p", "10.0.0.1", true, false);
        let mut m = Memberships::default();
        assert_eq!(m.change(&p, vec![web.clone()], false), vec![web.clone()]);
        // Relabelled from web to api: both are synced, then only api.
        assert_eq!(
            m.change(&p, vec![api.clone()], false),
            vec![api.clone(), web.clone()]
        );
        assert_eq!(m.change(&p, vec![api.clone()], false), vec![api.clone()]);
        // A Service that came to select it is remembered, though the pod has not changed.
        m.record(&p, [web.clone()]);
        assert_eq!(m.change(&p, vec![], false), vec![api.clone(), web.clone()]);
        // Selected by nothing: nothing is kept for it.
        assert!(m.0.is_empty());
        m.record(&p, [web.clone()]);
        assert_eq!(m.change(&p, vec![web.clone()], true), vec![web]);
        assert!(m.0.is_empty());
    }

    #[test]
    fn conditions_follow_readiness_and_termination() {
        let s = svc(
            json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 9090}]}),
        );
        let pods = vec![
            pod("a", "10.244.0.2", true, false),
            pod("b", "10.244.0.3", false, false),
            pod("c", "10.244.0.4", true, true),
        ];
        let d = desired(&s, &pods, None);
        assert_eq!(d.slices.len(), 1);
        assert_eq!(
            conditions(&d.slices[0]),
            vec![
                ("10.244.0.2".into(), true, true, false),
                ("10.244.0.3".into(), false, false, false),
                ("10.244.0.4".into(), false, true, true),
            ]
        );
        let ep = d.endpoints.expect("endpoints");
        let subsets = ep.subsets.expect("subsets");
        let ips = |a: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            a.iter().flatten().map(|x| x.ip.clone()).collect()
        };
        // Terminating pods leave Endpoints; unready ones are listed as not ready.
        assert_eq!(ips(&subsets[0].addresses), vec!["10.244.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.244.0.3"]);
        assert_eq!(subsets[0].ports.as_ref().expect("ports")[0].port, 9090);
    }

    #[test]
    fn publish_not_ready_addresses_makes_every_address_ready() {
        let s = svc(
            json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true,
            "ports": [{"name": "http", "port": 80}]}),
        );
        let d = desired(&s, &[pod("b", "10.244.0.3", false, false)], None);
        assert_eq!(
            conditions(&d.slices[0]),
            vec![("10.244.0.3".into(), true, true, false)]
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_several_ports_are_kept() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9100, "targetPort": "metrics"}
        ]}));
        let d = desired(&s, &[pod("a", "10.244.0.2", true, false)], None);
        let ports: Vec<(String, i32)> = d.slices[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0)))
            .collect();
        assert_eq!(ports, vec![("http".into(), 9090), ("metrics".into(), 9100)]);
    }

    #[test]
    fn a_service_without_pods_gets_one_empty_slice_and_empty_endpoints() {
        let s = svc(json!({"selector": {"app": "none"}, "ports": [{"name": "http", "port": 80}]}));
        let d = desired(&s, &[pod("a", "10.244.0.2", true, false)], None);
        assert_eq!(d.slices.len(), 1);
        assert!(d.slices[0].endpoints.as_ref().is_none_or(Vec::is_empty));
        assert_eq!(d.endpoints.expect("endpoints").subsets, None);
    }

    #[test]
    fn headless_services_are_labelled_and_still_get_endpoints() {
        let s =
            svc(json!({"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let d = desired(&s, &[pod("a", "10.244.0.2", true, false)], None);
        assert!(
            d.slices[0]
                .metadata
                .labels
                .as_ref()
                .expect("labels")
                .contains_key(HEADLESS_LABEL)
        );
        assert_eq!(d.slices[0].endpoints.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn user_endpoints_of_a_selectorless_service_are_mirrored() {
        let s = svc(json!({"ports": [{"port": 80}]}));
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "notReadyAddresses": [{"ip": "10.1.2.4"}],
                          "ports": [{"port": 8080}]}]
        }))
        .expect("endpoints");
        let d = desired(&s, &[], Some(&ep));
        assert!(d.endpoints.is_none());
        assert_eq!(
            d.slices[0].metadata.labels.as_ref().expect("labels")[MANAGED_BY_LABEL],
            MIRRORED_BY
        );
        assert_eq!(
            conditions(&d.slices[0]),
            vec![
                ("10.1.2.3".into(), true, true, false),
                ("10.1.2.4".into(), false, false, false)
            ]
        );
    }

    #[test]
    fn large_services_are_split_into_slices_of_one_hundred() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Arc<Pod>> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i:03}"),
                    &format!("10.244.{}.{}", i / 200, i % 200 + 2),
                    true,
                    false,
                )
            })
            .collect();
        let d = desired(&s, &pods, None);
        let sizes: Vec<usize> = d
            .slices
            .iter()
            .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let names: BTreeSet<_> = d.slices.iter().map(|s| s.metadata.name.clone()).collect();
        assert_eq!(names.len(), 3);
    }
}
