//! What the proxies route: one immutable [`Snapshot`] of every Service with the endpoints of
//! each of its ports, and every Ingress this node serves, built from the API's Services,
//! EndpointSlices and Ingresses. Both proxies (the nftables service proxy and the Ingress
//! proxy) consume the same snapshots and report which version they have put live; that is what
//! lets the node acknowledge a terminating pod as unrouted before its containers get SIGTERM.
//!
//! Pure: built from objects, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service as ApiService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;

/// A Service's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// L4 protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Protocol {
        match s {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }

    /// The nftables / Kubernetes spelling in lower case (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// The pod behind an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One address:port a Service port can send to, with its EndpointSlice conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// The target port, resolved per pod by the endpoints controller.
    pub port: u16,
    pub pod: Option<PodRef>,
    pub node: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The port's name ("" when the Service has one unnamed port).
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Every endpoint of this port, ready or not, sorted by address.
    pub endpoints: Vec<Endpoint>,
}

impl Port {
    /// The endpoints traffic goes to: the ready ones; when none is ready, the ones still
    /// serving while terminating (kube-proxy's ProxyTerminatingEndpoints fallback).
    pub fn routable(&self) -> Vec<&Endpoint> {
        let ready: Vec<&Endpoint> = self.endpoints.iter().filter(|e| e.ready).collect();
        if !ready.is_empty() {
            return ready;
        }
        self.endpoints
            .iter()
            .filter(|e| e.serving && e.terminating)
            .collect()
    }
}

/// A Service as the proxies see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    /// The virtual IP; `None` for headless (`clusterIP: None`) and ExternalName Services.
    pub cluster_ip: Option<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub session_affinity: Option<Duration>,
    pub ports: Vec<Port>,
}

impl Service {
    /// The port a backend reference names: by number or by name.
    pub fn port(&self, number: Option<u16>, name: Option<&str>) -> Option<&Port> {
        self.ports.iter().find(|p| match (number, name) {
            (Some(n), _) => p.port == n,
            (None, Some(name)) => p.name == name,
            (None, None) => false,
        })
    }
}

/// Everything the proxies route at one moment. Versions grow by one per change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub services: BTreeMap<ServiceKey, Service>,
    /// The Ingresses of Baton's class (or of no class), in networking.k8s.io/v1 form, sorted
    /// by namespace and name.
    pub ingresses: Vec<Ingress>,
}

impl Snapshot {
    /// Builds a snapshot from the objects the watches hold. `ingress_class` is the class this
    /// proxy serves; Ingresses without a class are served when `serve_classless` is true (the
    /// default class is Baton's).
    pub fn build(
        version: u64,
        services: &[ApiService],
        slices: &[EndpointSlice],
        ingresses: &[Ingress],
        ingress_class: &str,
        serve_classless: bool,
    ) -> Snapshot {
        let mut by_service: BTreeMap<ServiceKey, Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            by_service
                .entry(ServiceKey {
                    namespace: s.metadata.namespace.clone().unwrap_or_default(),
                    name: svc.clone(),
                })
                .or_default()
                .push(s);
        }
        let mut out = BTreeMap::new();
        for svc in services {
            let key = ServiceKey {
                namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                name: svc.metadata.name.clone().unwrap_or_default(),
            };
            let Some(spec) = svc.spec.as_ref() else {
                continue;
            };
            if spec.type_.as_deref() == Some("ExternalName") {
                continue;
            }
            let cluster_ip = spec
                .cluster_ip
                .as_deref()
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
            let session_affinity =
                (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
                    let secs = spec
                        .session_affinity_config
                        .as_ref()
                        .and_then(|c| c.client_ip.as_ref())
                        .and_then(|c| c.timeout_seconds)
                        .unwrap_or(10_800);
                    Duration::from_secs(secs.max(1) as u64)
                });
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let ports = spec
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    let name = p.name.clone().unwrap_or_default();
                    let protocol = Protocol::parse(p.protocol.as_deref());
                    Port {
                        endpoints: endpoints_for(slices, &name, protocol),
                        name,
                        protocol,
                        port: p.port.clamp(0, u16::MAX as i32) as u16,
                        node_port: p
                            .node_port
                            .filter(|n| *n > 0 && *n <= u16::MAX as i32)
                            .map(|n| n as u16),
                    }
                })
                .collect();
            out.insert(
                key.clone(),
                Service {
                    key,
                    cluster_ip,
                    session_affinity,
                    ports,
                },
            );
        }
        let mut ingresses: Vec<Ingress> = ingresses
            .iter()
            .filter(|i| {
                match i
                    .spec
                    .as_ref()
                    .and_then(|s| s.ingress_class_name.as_deref())
                    .or_else(|| {
                        i.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("kubernetes.io/ingress.class"))
                            .map(String::as_str)
                    }) {
                    Some(c) => c == ingress_class,
                    None => serve_classless,
                }
            })
            .cloned()
            .collect();
        ingresses.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        Snapshot {
            version,
            services: out,
            ingresses,
        }
    }

    /// Pods that are terminating in this snapshot and that no Service port routes to: what a
    /// proxy that has put this snapshot live may acknowledge as drained.
    pub fn unrouted_terminating_pods(&self) -> BTreeSet<PodRef> {
        let mut terminating = BTreeSet::new();
        let mut routed = BTreeSet::new();
        for svc in self.services.values() {
            for port in &svc.ports {
                for e in &port.endpoints {
                    if let Some(pod) = &e.pod
                        && e.terminating
                    {
                        terminating.insert(pod.clone());
                    }
                }
                for e in port.routable() {
                    if let Some(pod) = &e.pod {
                        routed.insert(pod.uid.clone());
                    }
                }
            }
        }
        terminating.retain(|p| !routed.contains(&p.uid));
        terminating
    }
}

/// The endpoints of one Service port across the Service's slices (matched by port name and
/// protocol, as kube-proxy does), deduplicated by address.
fn endpoints_for(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol) -> Vec<Endpoint> {
    let mut out: BTreeMap<(IpAddr, u16), Endpoint> = BTreeMap::new();
    for s in slices {
        let Some(target) = s.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref()) == protocol
        }) else {
            continue;
        };
        let Some(port) = target
            .port
            .filter(|p| *p > 0 && *p <= u16::MAX as i32)
            .map(|p| p as u16)
        else {
            continue;
        };
        for e in s.endpoints.iter().flatten() {
            let cond = e.conditions.as_ref();
            // Unset conditions mean "unknown": Kubernetes consumers treat unknown ready as ready.
            let ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            let pod = e.target_ref.as_ref().and_then(|r| {
                (r.kind.as_deref() == Some("Pod")).then(|| PodRef {
                    namespace: r
                        .namespace
                        .clone()
                        .or_else(|| s.metadata.namespace.clone())
                        .unwrap_or_default(),
                    name: r.name.clone().unwrap_or_default(),
                    uid: r.uid.clone().unwrap_or_default(),
                })
            });
            for addr in &e.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    continue;
                };
                out.entry((ip, port)).or_insert_with(|| Endpoint {
                    ip,
                    port,
                    pod: pod.clone(),
                    node: e.node_name.clone(),
                    ready,
                    serving,
                    terminating,
                });
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> ApiService {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    fn sample() -> (Vec<ApiService>, Vec<EndpointSlice>) {
        let s = svc(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
        }));
        let sl = slice(json!({
            "metadata": {"namespace": "default", "name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.2"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "ua"}},
                {"addresses": ["10.244.0.3"], "conditions": {"ready": false, "serving": true, "terminating": true},
                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "ub"}}
            ]
        }));
        (vec![s], vec![sl])
    }

    #[test]
    fn endpoints_join_their_service_port_by_name() {
        let (s, sl) = sample();
        let snap = Snapshot::build(1, &s, &sl, &[], "baton", true);
        let web = &snap.services[&ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        }];
        assert_eq!(web.cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 10)));
        let p = &web.ports[0];
        assert_eq!((p.port, p.node_port), (80, Some(30080)));
        assert_eq!(p.endpoints.len(), 2);
        let routable: Vec<_> = p.routable().iter().map(|e| e.ip.to_string()).collect();
        assert_eq!(routable, vec!["10.244.0.2"]);
    }

    #[test]
    fn terminating_pods_are_unrouted_only_when_no_port_routes_to_them() {
        let (s, sl) = sample();
        let snap = Snapshot::build(1, &s, &sl, &[], "baton", true);
        let names: Vec<_> = snap
            .unrouted_terminating_pods()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, vec!["b"]);
    }

    #[test]
    fn with_no_ready_endpoint_terminating_serving_ones_are_used() {
        let (s, mut sl) = sample();
        if let Some(e) = sl[0].endpoints.as_mut() {
            e.remove(0);
        }
        let snap = Snapshot::build(1, &s, &sl, &[], "baton", true);
        let p = &snap.services.values().next().expect("svc").ports[0];
        assert_eq!(p.routable().len(), 1);
        assert!(snap.unrouted_terminating_pods().is_empty());
    }

    #[test]
    fn ingresses_of_other_classes_are_left_alone() {
        let ing = |name: &str, class: Option<&str>| -> Ingress {
            serde_json::from_value(json!({
                "metadata": {"namespace": "default", "name": name},
                "spec": {"ingressClassName": class}
            }))
            .expect("ingress")
        };
        let all = vec![
            ing("b", None),
            ing("a", Some("baton")),
            ing("c", Some("nginx")),
        ];
        let snap = Snapshot::build(1, &[], &[], &all, "baton", true);
        let names: Vec<_> = snap
            .ingresses
            .iter()
            .map(|i| i.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        let snap = Snapshot::build(1, &[], &[], &all, "baton", false);
        assert_eq!(snap.ingresses.len(), 1);
    }
}
