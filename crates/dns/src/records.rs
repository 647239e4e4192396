//! The cluster zone, pure: [`Zone::build`] turns Services and EndpointSlices into the names of
//! Kubernetes' DNS specification (`cluster/addons/dns` "DNS-Based Service Discovery"), and
//! [`Zone::answer`] answers one question about them. No I/O: the server (`server.rs`) encodes
//! the answer, and decides what to forward.
//!
//! Names served, `<zone>` being the cluster domain (`cluster.local`):
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA of a Service's ClusterIPs; of each ready endpoint of a
//!   headless Service; a CNAME to an ExternalName Service's name.
//! - `<host>.<svc>.<ns>.svc.<zone>`: A/AAAA of a headless Service's endpoint, `<host>` being the
//!   endpoint's hostname (a pod's `hostname` whose `subdomain` names the Service) or its
//!   address with dashes (`10-244-0-5`), as CoreDNS.
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV of each named port (one per ready endpoint
//!   for headless Services), the targets' addresses as additional records; an SRV question on
//!   `<svc>.<ns>.svc.<zone>` gets every named port.
//! - `<a-b-c-d>.<ns>.pod.<zone>`: the address itself (CoreDNS's `pods insecure`, kubeadm's).
//! - PTR of every ClusterIP and headless endpoint address (`d.c.b.a.in-addr.arpa`); other
//!   reverse names are not the cluster's.
//!
//! Any other name under the zone does not exist (NXDOMAIN); a name that exists without records
//! of the asked type has none (NODATA); names outside it are [`Answer::NotOurs`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Seconds a cluster answer may be cached: CoreDNS's `kubernetes` plugin default.
pub const TTL: u32 = 5;

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Record data, owner names without the trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub name: String,
    pub data: Data,
}

/// The question types the zone knows; any other type gets no records (NODATA) for a name that
/// exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qtype {
    A,
    Aaaa,
    Srv,
    Ptr,
    Cname,
    Any,
    Other,
}

/// What the zone says about a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not a cluster name: the server forwards it.
    NotOurs,
    /// A cluster name that does not exist.
    NxDomain,
    /// The name exists; these records answer (none: NODATA).
    Records {
        answers: Vec<Rec>,
        additionals: Vec<Rec>,
    },
}

impl Answer {
    fn records(answers: Vec<Rec>, additionals: Vec<Rec>) -> Answer {
        Answer::Records {
            answers,
            additionals,
        }
    }

    fn empty() -> Answer {
        Answer::records(Vec::new(), Vec::new())
    }
}

/// A named port of a Service (ClusterIP) or of its endpoints (headless).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NamedPort {
    name: String,
    /// Lower case (`tcp`, `udp`, `sctp`), as in the SRV owner name.
    protocol: String,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    ip: IpAddr,
    /// The hostname label: the endpoint's hostname, else its address with dashes.
    host: String,
    ports: Vec<NamedPort>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    ClusterIp(Vec<IpAddr>),
    Headless(Vec<Endpoint>),
    ExternalName(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Svc {
    kind: Kind,
    ports: Vec<NamedPort>,
}

/// The cluster's names at one moment. Cheap to query; rebuilt on every change of Services or
/// EndpointSlices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    /// The cluster domain, lower case, no leading or trailing dot.
    domain: String,
    /// (namespace, name) → Service.
    services: BTreeMap<(String, String), Svc>,
    namespaces: BTreeSet<String>,
    /// Address → the name its PTR record gives.
    reverse: BTreeMap<IpAddr, String>,
}

impl Zone {
    /// The zone of `domain` from every Service and EndpointSlice of the cluster.
    pub fn build<'a>(
        domain: &str,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Zone {
        let domain = normalize(domain);
        // (namespace, service) → its slices.
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let (Some(ns), Some(svc)) = (
                s.metadata.namespace.as_deref(),
                s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME)),
            ) else {
                continue;
            };
            by_service
                .entry((ns.to_string(), svc.clone()))
                .or_default()
                .push(s);
        }
        let mut zone = Zone {
            domain,
            ..Zone::default()
        };
        for svc in services {
            let (Some(ns), Some(name)) = (
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let key = (ns.to_string(), name.to_string());
            let Some(built) = service(svc, by_service.get(&key).map(Vec::as_slice)) else {
                continue;
            };
            let fqdn = format!("{name}.{ns}.svc.{}", zone.domain);
            match &built.kind {
                Kind::ClusterIp(ips) => {
                    for ip in ips {
                        zone.reverse.insert(*ip, fqdn.clone());
                    }
                }
                Kind::Headless(eps) => {
                    for e in eps {
                        zone.reverse
                            .entry(e.ip)
                            .or_insert_with(|| format!("{}.{fqdn}", e.host));
                    }
                }
                Kind::ExternalName(_) => {}
            }
            zone.namespaces.insert(ns.to_string());
            zone.services.insert(key, built);
        }
        zone
    }

    /// The cluster domain this zone serves.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Answers `qtype` for `qname` (any case, with or without the trailing dot).
    pub fn answer(&self, qname: &str, qtype: Qtype) -> Answer {
        let qname = normalize(qname);
        if let Some(rev) = qname.strip_suffix(".in-addr.arpa") {
            return self.reverse_v4(rev, qtype);
        }
        let rest = if qname == self.domain {
            ""
        } else {
            match qname.strip_suffix(&format!(".{}", self.domain)) {
                Some(r) if !r.is_empty() => r,
                _ => return Answer::NotOurs,
            }
        };
        // Labels from the zone down: svc, <ns>, <svc>, ...
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.rsplit('.').collect()
        };
        match labels.as_slice() {
            [] => Answer::empty(),
            ["svc"] | ["pod"] => Answer::empty(),
            ["svc", ns] | ["pod", ns] => {
                if self.namespaces.contains(*ns) {
                    Answer::empty()
                } else {
                    Answer::NxDomain
                }
            }
            ["pod", _ns, host] => match dashed_ip(host) {
                Some(ip) => address_answer(&qname, &[ip], qtype),
                None => Answer::NxDomain,
            },
            ["svc", ns, svc] => self.service_answer(ns, svc, qtype),
            ["svc", ns, svc, label] => self.endpoint_answer(ns, svc, label, qtype),
            ["svc", ns, svc, proto, port] => self.srv_answer(ns, svc, proto, port, qtype),
            _ => Answer::NxDomain,
        }
    }

    fn fqdn(&self, ns: &str, svc: &str) -> String {
        format!("{svc}.{ns}.svc.{}", self.domain)
    }

    fn service_answer(&self, ns: &str, name: &str, qtype: Qtype) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        let fqdn = self.fqdn(ns, name);
        if qtype == Qtype::Srv {
            return self.srv_records(ns, name, svc, |_| true);
        }
        match &svc.kind {
            Kind::ClusterIp(ips) => address_answer(&fqdn, ips, qtype),
            Kind::Headless(eps) => {
                let ips: Vec<IpAddr> = eps.iter().map(|e| e.ip).collect();
                address_answer(&fqdn, &ips, qtype)
            }
            Kind::ExternalName(target) => match qtype {
                Qtype::Ptr | Qtype::Other => Answer::empty(),
                _ => Answer::records(
                    vec![Rec {
                        name: fqdn,
                        data: Data::Cname(target.clone()),
                    }],
                    Vec::new(),
                ),
            },
        }
    }

    /// `<host>.<svc>.<ns>.svc.<zone>`: one endpoint of a headless Service.
    fn endpoint_answer(&self, ns: &str, name: &str, host: &str, qtype: Qtype) -> Answer {
        let Some(Svc {
            kind: Kind::Headless(eps),
            ..
        }) = self.services.get(&(ns.to_string(), name.to_string()))
        else {
            return Answer::NxDomain;
        };
        let ips: Vec<IpAddr> = eps
            .iter()
            .filter(|e| e.host == host)
            .map(|e| e.ip)
            .collect();
        if ips.is_empty() {
            return Answer::NxDomain;
        }
        let owner = format!("{host}.{}", self.fqdn(ns, name));
        address_answer(&owner, &ips, qtype)
    }

    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>`.
    fn srv_answer(&self, ns: &str, name: &str, proto: &str, port: &str, qtype: Qtype) -> Answer {
        let (Some(proto), Some(port)) = (proto.strip_prefix('_'), port.strip_prefix('_')) else {
            return Answer::NxDomain;
        };
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        let matches = |p: &NamedPort| p.name == port && p.protocol == proto;
        let exists = match &svc.kind {
            Kind::Headless(eps) => eps.iter().any(|e| e.ports.iter().any(matches)),
            _ => svc.ports.iter().any(matches),
        };
        if !exists {
            return Answer::NxDomain;
        }
        if !matches!(qtype, Qtype::Srv | Qtype::Any) {
            return Answer::empty();
        }
        let owner = format!("_{port}._{proto}.{}", self.fqdn(ns, name));
        match self.srv_records(ns, name, svc, matches) {
            Answer::Records {
                mut answers,
                additionals,
            } => {
                for r in &mut answers {
                    r.name = owner.clone();
                }
                Answer::records(answers, additionals)
            }
            other => other,
        }
    }

    /// SRV records of the ports `pick` chooses, owned by the Service's name (the caller
    /// renames them), with the targets' addresses as additionals.
    fn srv_records(
        &self,
        ns: &str,
        name: &str,
        svc: &Svc,
        pick: impl Fn(&NamedPort) -> bool,
    ) -> Answer {
        let fqdn = self.fqdn(ns, name);
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        match &svc.kind {
            Kind::ClusterIp(ips) => {
                for p in svc.ports.iter().filter(|p| pick(p)) {
                    answers.push(srv(&fqdn, 100, p.port, &fqdn));
                }
                if !answers.is_empty() {
                    additionals.extend(ips.iter().map(|ip| address(&fqdn, *ip)));
                }
            }
            Kind::Headless(eps) => {
                let chosen: Vec<(&Endpoint, &NamedPort)> = eps
                    .iter()
                    .flat_map(|e| e.ports.iter().filter(|p| pick(p)).map(move |p| (e, p)))
                    .collect();
                let weight = u16::try_from(100 / chosen.len().max(1)).unwrap_or(1).max(1);
                for (e, p) in chosen {
                    let target = format!("{}.{fqdn}", e.host);
                    answers.push(srv(&fqdn, weight, p.port, &target));
                    let a = address(&target, e.ip);
                    if !additionals.contains(&a) {
                        additionals.push(a);
                    }
                }
            }
            Kind::ExternalName(_) => {}
        }
        Answer::records(answers, additionals)
    }

    /// `d.c.b.a` of `d.c.b.a.in-addr.arpa`: a PTR for addresses of the cluster's Services and
    /// endpoints, other addresses are not ours.
    fn reverse_v4(&self, rev: &str, qtype: Qtype) -> Answer {
        let octets: Vec<u8> = rev.split('.').filter_map(|o| o.parse().ok()).collect();
        let [d, c, b, a] = octets.as_slice() else {
            return Answer::NotOurs;
        };
        let ip = IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d));
        match self.reverse.get(&ip) {
            None => Answer::NotOurs,
            Some(name) if matches!(qtype, Qtype::Ptr | Qtype::Any) => Answer::records(
                vec![Rec {
                    name: format!("{rev}.in-addr.arpa"),
                    data: Data::Ptr(name.clone()),
                }],
                Vec::new(),
            ),
            Some(_) => Answer::empty(),
        }
    }
}

/// A Service as the zone keeps it; `None` for one that has no name in DNS yet (a ClusterIP
/// Service whose address is not allocated).
fn service(svc: &Service, slices: Option<&[&EndpointSlice]>) -> Option<Svc> {
    let spec = svc.spec.as_ref()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(NamedPort {
                name: p.name.clone().filter(|n| !n.is_empty())?.to_lowercase(),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    if spec.type_.as_deref() == Some("ExternalName") {
        let target = normalize(spec.external_name.as_deref()?);
        return (!target.is_empty()).then_some(Svc {
            kind: Kind::ExternalName(target),
            ports,
        });
    }
    let ips: Vec<&str> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        _ => spec.cluster_ip.as_deref().into_iter().collect(),
    };
    if ips.first() == Some(&"None") {
        return Some(Svc {
            kind: Kind::Headless(endpoints(slices.unwrap_or_default())),
            ports,
        });
    }
    let ips: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
    (!ips.is_empty()).then_some(Svc {
        kind: Kind::ClusterIp(ips),
        ports,
    })
}

/// The ready endpoints of a headless Service's slices, each address once, in address order.
fn endpoints(slices: &[&EndpointSlice]) -> Vec<Endpoint> {
    let mut out: BTreeMap<IpAddr, Endpoint> = BTreeMap::new();
    for s in slices {
        let ports: Vec<NamedPort> = s
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(NamedPort {
                    name: p.name.clone().filter(|n| !n.is_empty())?.to_lowercase(),
                    protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                    port: u16::try_from(p.port?).ok()?,
                })
            })
            .collect();
        for e in s.endpoints.iter().flatten() {
            // A missing `ready` means ready (the EndpointSlice API's rule).
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for addr in &e.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    continue;
                };
                let host = e
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.to_lowercase())
                    .unwrap_or_else(|| dashed(ip));
                out.entry(ip).or_insert_with(|| Endpoint {
                    ip,
                    host,
                    ports: ports.clone(),
                });
            }
        }
    }
    out.into_values().collect()
}

/// `10.244.0.5` → `10-244-0-5`; IPv6 colons become dashes too.
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// `10-244-0-5` → `10.244.0.5`.
fn dashed_ip(label: &str) -> Option<IpAddr> {
    let v4 = label.replace('-', ".");
    v4.parse::<Ipv4Addr>().map(IpAddr::V4).ok().or_else(|| {
        label
            .replace('-', ":")
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .ok()
    })
}

fn normalize(name: &str) -> String {
    name.trim_matches('.').to_ascii_lowercase()
}

fn address(owner: &str, ip: IpAddr) -> Rec {
    Rec {
        name: owner.to_string(),
        data: match ip {
            IpAddr::V4(v4) => Data::A(v4),
            IpAddr::V6(v6) => Data::Aaaa(v6),
        },
    }
}

fn srv(owner: &str, weight: u16, port: u16, target: &str) -> Rec {
    Rec {
        name: owner.to_string(),
        data: Data::Srv {
            priority: 0,
            weight,
            port,
            target: target.to_string(),
        },
    }
}

/// The addresses of `ips` that `qtype` asks for (A: IPv4, AAAA: IPv6, ANY: both).
fn address_answer(owner: &str, ips: &[IpAddr], qtype: Qtype) -> Answer {
    let answers = ips
        .iter()
        .filter(|ip| match qtype {
            Qtype::A => ip.is_ipv4(),
            Qtype::Aaaa => ip.is_ipv6(),
            Qtype::Any => true,
            _ => false,
        })
        .map(|ip| address(owner, *ip))
        .collect();
    Answer::records(answers, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::EndpointPort;
    use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(ns: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn port(name: &str, protocol: &str, port: i32) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            protocol: Some(protocol.into()),
            port,
            ..Default::default()
        }
    }

    fn svc(ns: &str, name: &str, cluster_ip: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: meta(ns, name),
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                cluster_ips: Some(vec![cluster_ip.into()]),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(ns: &str, svc: &str, eps: &[(&str, Option<&str>, Option<bool>)]) -> EndpointSlice {
        let mut m = meta(ns, &format!("{svc}-abc"));
        m.labels = Some([(SERVICE_NAME.to_string(), svc.to_string())].into());
        EndpointSlice {
            metadata: m,
            address_type: "IPv4".into(),
            endpoints: Some(
                eps.iter()
                    .map(|(ip, host, ready)| SliceEndpoint {
                        addresses: vec![ip.to_string()],
                        hostname: host.map(str::to_string),
                        conditions: Some(EndpointConditions {
                            ready: *ready,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: Some(8080),
                ..Default::default()
            }]),
        }
    }

    fn a(name: &str, ip: &str) -> Rec {
        Rec {
            name: name.into(),
            data: Data::A(ip.parse().expect("ip")),
        }
    }

    fn zone() -> Zone {
        let services = [
            svc(
                "default",
                "kubernetes",
                "10.96.0.1",
                vec![port("https", "TCP", 443)],
            ),
            svc(
                "web",
                "front",
                "10.96.0.20",
                vec![port("http", "TCP", 80), port("", "UDP", 53)],
            ),
            svc("web", "db", "None", vec![port("http", "TCP", 80)]),
            Service {
                metadata: meta("web", "ext"),
                spec: Some(ServiceSpec {
                    type_: Some("ExternalName".into()),
                    external_name: Some("Example.Test.".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            // Not allocated yet: no name.
            svc("web", "pending", "", vec![]),
        ];
        let slices = [
            slice(
                "web",
                "db",
                &[
                    ("10.244.0.7", Some("db-0"), Some(true)),
                    ("10.244.0.5", None, None),
                    ("10.244.0.9", Some("db-2"), Some(false)),
                ],
            ),
            // Another namespace's slice of the same name changes nothing.
            slice("other", "db", &[("10.244.0.99", None, Some(true))]),
        ];
        Zone::build("Cluster.Local.", &services, &slices)
    }

    fn answers(a: Answer) -> Vec<Rec> {
        match a {
            Answer::Records { answers, .. } => answers,
            other => panic!("expected records, got {other:?}"),
        }
    }

    #[test]
    fn cluster_ip_services_answer_their_address_in_any_case() {
        let z = zone();
        assert_eq!(
            answers(z.answer("kubernetes.default.svc.cluster.local.", Qtype::A)),
            [a("kubernetes.default.svc.cluster.local", "10.96.0.1")]
        );
        assert_eq!(
            answers(z.answer("FRONT.web.SVC.cluster.local", Qtype::A)),
            [a("front.web.svc.cluster.local", "10.96.0.20")]
        );
        // An IPv4-only Service has no AAAA: NODATA, not NXDOMAIN (resolvers then try A).
        assert_eq!(
            z.answer("front.web.svc.cluster.local", Qtype::Aaaa),
            Answer::empty()
        );
    }

    #[test]
    fn unknown_cluster_names_do_not_exist_and_others_are_forwarded() {
        let z = zone();
        for name in [
            "nope.web.svc.cluster.local",
            "front.nope.svc.cluster.local",
            "kubernetes.default.default.svc.cluster.local", // the search path's first try
            "pending.web.svc.cluster.local",
            "x.front.web.svc.cluster.local", // endpoints only for headless Services
            "a.b.c.d.e.f.svc.cluster.local",
            "web.cluster.local",
            "nope.svc.cluster.local",
            "not-an-ip.web.pod.cluster.local",
        ] {
            assert_eq!(z.answer(name, Qtype::A), Answer::NxDomain, "{name}");
        }
        for name in [
            "example.com",
            "cluster.local.example.com",
            "local",
            "xcluster.local",
        ] {
            assert_eq!(z.answer(name, Qtype::A), Answer::NotOurs, "{name}");
        }
        // The zone, svc and an existing namespace exist, with no address.
        for name in [
            "cluster.local",
            "svc.cluster.local",
            "web.svc.cluster.local",
        ] {
            assert_eq!(z.answer(name, Qtype::A), Answer::empty(), "{name}");
        }
    }

    #[test]
    fn headless_services_answer_their_ready_endpoints() {
        let z = zone();
        assert_eq!(
            answers(z.answer("db.web.svc.cluster.local", Qtype::A)),
            [
                a("db.web.svc.cluster.local", "10.244.0.5"),
                a("db.web.svc.cluster.local", "10.244.0.7"),
            ]
        );
        // A pod's hostname (its subdomain is the Service), and the dashed form of the others.
        assert_eq!(
            answers(z.answer("db-0.db.web.svc.cluster.local", Qtype::A)),
            [a("db-0.db.web.svc.cluster.local", "10.244.0.7")]
        );
        assert_eq!(
            answers(z.answer("10-244-0-5.db.web.svc.cluster.local", Qtype::A)),
            [a("10-244-0-5.db.web.svc.cluster.local", "10.244.0.5")]
        );
        // Not ready: not served.
        assert_eq!(
            z.answer("db-2.db.web.svc.cluster.local", Qtype::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn srv_records_for_named_ports() {
        let z = zone();
        let Answer::Records {
            answers,
            additionals,
        } = z.answer("_http._tcp.front.web.svc.cluster.local", Qtype::Srv)
        else {
            panic!("records")
        };
        assert_eq!(
            answers,
            [srv(
                "_http._tcp.front.web.svc.cluster.local",
                100,
                80,
                "front.web.svc.cluster.local"
            )]
        );
        assert_eq!(
            additionals,
            [a("front.web.svc.cluster.local", "10.96.0.20")]
        );
        // Wrong protocol, unnamed port: no such name.
        assert_eq!(
            z.answer("_http._udp.front.web.svc.cluster.local", Qtype::Srv),
            Answer::NxDomain
        );
        // Headless: one per ready endpoint, targets by hostname.
        let Answer::Records {
            answers,
            additionals,
        } = z.answer("_http._tcp.db.web.svc.cluster.local", Qtype::Srv)
        else {
            panic!("records")
        };
        let owner = "_http._tcp.db.web.svc.cluster.local";
        assert_eq!(
            answers,
            [
                srv(owner, 50, 8080, "10-244-0-5.db.web.svc.cluster.local"),
                srv(owner, 50, 8080, "db-0.db.web.svc.cluster.local"),
            ]
        );
        assert_eq!(
            additionals,
            [
                a("10-244-0-5.db.web.svc.cluster.local", "10.244.0.5"),
                a("db-0.db.web.svc.cluster.local", "10.244.0.7"),
            ]
        );
        // The SRV name exists: an A question there is NODATA.
        assert_eq!(z.answer(owner, Qtype::A), Answer::empty());
        // SRV on the Service name: every named port.
        assert_eq!(
            answers_of(z.answer("kubernetes.default.svc.cluster.local", Qtype::Srv)),
            [srv(
                "kubernetes.default.svc.cluster.local",
                100,
                443,
                "kubernetes.default.svc.cluster.local"
            )]
        );
    }

    fn answers_of(a: Answer) -> Vec<Rec> {
        answers(a)
    }

    #[test]
    fn external_names_pods_and_reverse_lookups() {
        let z = zone();
        assert_eq!(
            answers(z.answer("ext.web.svc.cluster.local", Qtype::A)),
            [Rec {
                name: "ext.web.svc.cluster.local".into(),
                data: Data::Cname("example.test".into()),
            }]
        );
        assert_eq!(
            answers(z.answer("10-244-0-42.web.pod.cluster.local", Qtype::A)),
            [a("10-244-0-42.web.pod.cluster.local", "10.244.0.42")]
        );
        assert_eq!(
            answers(z.answer("20.0.96.10.in-addr.arpa", Qtype::Ptr)),
            [Rec {
                name: "20.0.96.10.in-addr.arpa".into(),
                data: Data::Ptr("front.web.svc.cluster.local".into()),
            }]
        );
        assert_eq!(
            answers(z.answer("7.0.244.10.in-addr.arpa.", Qtype::Ptr)),
            [Rec {
                name: "7.0.244.10.in-addr.arpa".into(),
                data: Data::Ptr("db-0.db.web.svc.cluster.local".into()),
            }]
        );
        assert_eq!(
            z.answer("1.1.168.192.in-addr.arpa", Qtype::Ptr),
            Answer::NotOurs
        );
    }
}
