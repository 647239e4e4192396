//! The nftables ruleset of a [`Snapshot`], as the text of one `nft -f` transaction (pure).
//!
//! The shape is kube-proxy's nftables mode: one table of our own; a `service-ips` verdict map
//! keyed on `ip daddr . meta l4proto . th dport` and a `service-nodeports` map keyed on
//! `meta l4proto . th dport` send the first packet of a connection to a chain per Service
//! port, which picks an endpoint chain with `numgen random mod N vmap`; endpoint chains DNAT.
//! Filter chains hooked before DNAT reject connections to Service ports without endpoints and
//! to unknown ports of a ClusterIP, and drop the rest of the service CIDR; after DNAT, a packet
//! of an existing connection still addressed to the service CIDR (conntrack found it invalid,
//! so it skipped NAT) is refused rather than routed off the machine. Packets we DNAT get
//! a mark so that postrouting masquerades those that come from the pod CIDR or loopback: the
//! pod's reply then comes back through the host, which undoes the translation (a pod reaching
//! its own Service, or another pod on the same bridge, would otherwise be answered directly).
//!
//! TCP connections to Services carry a conntrack timeout policy ([`FORGET_ON_RESET`]) whose
//! CLOSE state lasts 0 s: once a connection is reset (a pod that exits resets the connections
//! it had not finished), its entry is gone at once. With the kernel's 10 s default, a new
//! connection that reuses the client port within those seconds matches the old entry, skips
//! our rules and is sent to the old pod's address, where nothing listens any more: "connection
//! refused" in the middle of a rollout (seen once in ~50,000 new connections).
//!
//! Every sync replaces the table's whole content in one transaction, so the kernel never
//! shows a half-written table. The first sync of a process deletes and re-creates the table
//! (whatever an earlier version left is gone); later ones rewrite only the chains whose
//! content changed, refill the maps, and delete what is stale, which also keeps the
//! session-affinity sets' entries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::model::{Port, Protocol, Service, Snapshot};

/// The packet mark our endpoint chains set, read by postrouting to masquerade (kube-proxy's).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// The conntrack timeout policy of Service TCP connections: a reset connection's entry is
/// forgotten at once (CLOSE: 0 s), every other state keeps the kernel's default.
pub const FORGET_ON_RESET: &str = "forget-on-reset";

/// The policy's declaration, also used to probe whether the kernel supports it.
pub fn forget_on_reset_decl(t: &str) -> String {
    format!(
        "add ct timeout {t} {FORGET_ON_RESET} {{ protocol tcp ; l3proto ip ; policy = {{ close : 0 }} ; }}"
    )
}

/// An IPv4 prefix such as `10.244.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The prefix with host bits cleared (what nft prints and expects).
    pub fn network(self) -> Ipv4Addr {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        };
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (want a.b.c.d/n)"))?;
        let addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{p:?} is not a prefix length (0-32)"))?;
        Ok(Ipv4Cidr { addr, prefix })
    }
}

/// What the ruleset depends on besides the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleOptions {
    /// The `ip` family table we own (`baton`).
    pub table: String,
    pub pod_cidr: Ipv4Cidr,
    pub service_cidr: Ipv4Cidr,
    /// Addresses NodePorts answer on besides 127.0.0.1; empty means every local address.
    pub node_ips: Vec<Ipv4Addr>,
    /// The kernel has conntrack timeout policies: Service TCP connections get
    /// [`FORGET_ON_RESET`] (see the module's documentation).
    pub forget_on_reset: bool,
}

/// The chains (with a hash of their content) and sets (maps included) a ruleset creates:
/// the next sync rewrites only the chains whose content changed and deletes what is no
/// longer wanted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub chains: BTreeMap<String, u64>,
    pub sets: BTreeSet<String>,
}

impl Objects {
    /// The same objects with their contents unknown: the next sync rewrites every chain
    /// (a periodic full resync), still keeping the affinity sets' entries.
    pub fn forget_contents(&self) -> Objects {
        Objects {
            chains: self.chains.keys().map(|k| (k.clone(), 0)).collect(),
            sets: self.sets.clone(),
        }
    }
}

/// One `nft -f` transaction and the objects it leaves in the table.
#[derive(Clone, Debug)]
pub struct Ruleset {
    pub script: String,
    pub objects: Objects,
    /// Endpoint chains written (one per routable endpoint of each Service port).
    pub endpoints: usize,
}

// Chain and set names of the fixed skeleton.
const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const CLUSTER_IPS: &str = "cluster-ips";
const SERVICES: &str = "services";
const ENDPOINTS_CHECK: &str = "endpoints-check";
const CLUSTER_IPS_CHECK: &str = "cluster-ips-check";
const REJECT: &str = "reject-chain";
const MASQUERADING: &str = "masquerading";

/// Base chains: (name, type, hook, priority). Filter chains at -110 see the destination
/// before DNAT (-100); `filter-output-post-dnat` (-90) sees it after.
const BASE_CHAINS: [(&str, &str, &str, i32); 7] = [
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
];

/// Builds the transaction that makes the table hold exactly `snapshot`'s rules.
/// `previous` is what the last successful sync of this process created; `None` re-creates
/// the table from nothing (first sync, or after a failed one).
pub fn ruleset(snapshot: &Snapshot, opts: &RuleOptions, previous: Option<&Objects>) -> Ruleset {
    let t = format!("ip {}", ident(&opts.table));
    let mut objects = Objects::default();
    let mut chains: Vec<(String, Vec<String>)> = Vec::new();
    // Map and set elements, keyed so that duplicates (which nft would refuse) keep the first.
    let mut service_ips: BTreeMap<String, String> = BTreeMap::new();
    let mut service_nodeports: BTreeMap<String, String> = BTreeMap::new();
    let mut no_endpoint_services: BTreeMap<String, String> = BTreeMap::new();
    let mut no_endpoint_nodeports: BTreeMap<String, String> = BTreeMap::new();
    let mut cluster_ips: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut affinity_sets: Vec<(String, Duration)> = Vec::new();
    let mut endpoints = 0;

    for svc in snapshot.services.values() {
        let Some(vip) = svc.cluster_ip else {
            continue; // headless: DNS only
        };
        cluster_ips.insert(vip);
        for port in &svc.ports {
            let proto = port.protocol.as_str();
            let ip_key = format!("{vip} . {proto} . {}", port.port);
            let np_key = port.node_port.map(|np| format!("{proto} . {np}"));
            let routable: Vec<(Ipv4Addr, u16)> = port
                .routable()
                .into_iter()
                .filter_map(|e| match e.ip {
                    IpAddr::V4(ip) => Some((ip, e.port)),
                    IpAddr::V6(_) => None,
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if routable.is_empty() {
                let verdict = format!("goto {REJECT}");
                no_endpoint_services
                    .entry(ip_key)
                    .or_insert_with(|| verdict.clone());
                if let Some(k) = np_key {
                    no_endpoint_nodeports.entry(k).or_insert(verdict);
                }
                continue;
            }
            let svc_chain = service_chain_name(svc, port);
            let mut svc_rules = Vec::new();
            let mut picks = Vec::new();
            for (i, (ip, target)) in routable.iter().enumerate() {
                let ep_chain = endpoint_chain_name(svc, port, *ip, *target);
                let mut ep_rules = vec![format!("meta mark set meta mark | {MASQUERADE_MARK:#x}")];
                if let Some(timeout) = svc.session_affinity {
                    let set = affinity_set_name(svc, port, *ip, *target, timeout);
                    svc_rules.push(format!("ip saddr @{set} goto {ep_chain}"));
                    ep_rules.push(format!("update @{set} {{ ip saddr }}"));
                    affinity_sets.push((set, timeout));
                }
                if opts.forget_on_reset && port.protocol == Protocol::Tcp {
                    ep_rules.push(format!("ct timeout set \"{FORGET_ON_RESET}\""));
                }
                ep_rules.push(format!("meta l4proto {proto} dnat to {ip}:{target}"));
                picks.push(format!("{i} : goto {ep_chain}"));
                chains.push((ep_chain, ep_rules));
                endpoints += 1;
            }
            svc_rules.push(format!(
                "numgen random mod {} vmap {{ {} }}",
                picks.len(),
                picks.join(", ")
            ));
            let verdict = format!("goto {svc_chain}");
            if let std::collections::btree_map::Entry::Vacant(slot) = service_ips.entry(ip_key) {
                slot.insert(verdict.clone());
                if let Some(k) = np_key {
                    service_nodeports.entry(k).or_insert(verdict);
                }
                chains.push((svc_chain, svc_rules));
            }
        }
    }

    // The skeleton's rules.
    let pod = opts.pod_cidr;
    let local_nodeport = if opts.node_ips.is_empty() {
        "fib daddr type local".to_string()
    } else {
        let ips: Vec<String> = opts.node_ips.iter().map(|i| i.to_string()).collect();
        format!("ip daddr {{ {}, 127.0.0.0/8 }}", ips.join(", "))
    };
    // After DNAT nothing may still be addressed to the service CIDR. A packet that is (one
    // conntrack marks invalid, e.g. out of its window, skips the nat hooks) would be routed on
    // (to the bridge, where no one holds the address; off the machine by the default route
    // if the service CIDR's route is missing) while its sender waits for an answer that never
    // comes: it is refused instead (TCP: a reset, so the client knows at once), and counted.
    let untranslated = format!(
        "ct state != new ip daddr {} counter goto {REJECT}",
        opts.service_cidr
    );
    let skeleton: Vec<(String, Vec<String>)> = vec![
        (
            "filter-input".into(),
            vec![
                // route_localnet lets 127.0.0.1 be DNATed to pods; it must not let a
                // neighbour reach the host's loopback services (CVE-2020-8558).
                "iifname != \"lo\" ip daddr 127.0.0.0/8 ct state new drop".into(),
                format!("ct state new jump {ENDPOINTS_CHECK}"),
            ],
        ),
        (
            "filter-forward".into(),
            vec![
                format!("ct state new jump {ENDPOINTS_CHECK}"),
                format!("ct state new jump {CLUSTER_IPS_CHECK}"),
                untranslated.clone(),
            ],
        ),
        (
            "filter-output".into(),
            vec![format!("ct state new jump {ENDPOINTS_CHECK}")],
        ),
        (
            "filter-output-post-dnat".into(),
            vec![
                format!("ct state new jump {CLUSTER_IPS_CHECK}"),
                untranslated,
            ],
        ),
        ("nat-prerouting".into(), vec![format!("jump {SERVICES}")]),
        ("nat-output".into(), vec![format!("jump {SERVICES}")]),
        (
            "nat-postrouting".into(),
            vec![format!("jump {MASQUERADING}")],
        ),
        (
            MASQUERADING.into(),
            vec![format!(
                "meta mark & {MASQUERADE_MARK:#x} == {MASQUERADE_MARK:#x} ip saddr {{ {pod}, 127.0.0.0/8 }} masquerade"
            )],
        ),
        (
            SERVICES.into(),
            vec![
                format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                format!("{local_nodeport} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
            ],
        ),
        (
            ENDPOINTS_CHECK.into(),
            vec![
                format!("ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"),
                format!("{local_nodeport} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"),
            ],
        ),
        (
            CLUSTER_IPS_CHECK.into(),
            vec![
                // A ClusterIP on a port it does not serve: refused, as kube-proxy does.
                format!("ip daddr @{CLUSTER_IPS} goto {REJECT}"),
                // An address of the service CIDR no Service holds.
                format!("ip daddr {} drop", opts.service_cidr),
            ],
        ),
        (
            REJECT.into(),
            vec![
                "meta l4proto tcp reject with tcp reset".into(),
                "reject".into(),
            ],
        ),
    ];

    let mut s = String::with_capacity(256 + 200 * (endpoints + chains.len()));
    let _ = writeln!(s, "add table {t}");
    if previous.is_none() {
        let _ = writeln!(s, "delete table {t}");
        let _ = writeln!(s, "add table {t}");
    }
    if opts.forget_on_reset {
        let _ = writeln!(s, "{}", forget_on_reset_decl(&t));
    }
    // Chains: declared (and emptied, when they exist) only if their content changed; the
    // others stay as the kernel has them. A sync after one endpoint change rewrites that
    // endpoint's chain and its Service's, not the thousand others.
    let mut rewritten: Vec<(&str, &[String])> = Vec::new();
    for (name, rules) in skeleton.iter().chain(chains.iter()) {
        if objects.chains.contains_key(name) {
            continue;
        }
        let decl = BASE_CHAINS
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, kind, hook, prio)| {
                format!(" {{ type {kind} hook {hook} priority {prio} ; policy accept ; }}")
            })
            .unwrap_or_default();
        let content = fnv(&format!("{decl}\n{}", rules.join("\n")));
        objects.chains.insert(name.clone(), content);
        let before = previous.and_then(|p| p.chains.get(name));
        if before == Some(&content) {
            continue;
        }
        let _ = writeln!(s, "add chain {t} {name}{decl}");
        if before.is_some() {
            let _ = writeln!(s, "flush chain {t} {name}");
        }
        rewritten.push((name, rules));
    }
    let maps = [
        (
            SERVICE_IPS,
            "ipv4_addr . inet_proto . inet_service : verdict",
        ),
        (SERVICE_NODEPORTS, "inet_proto . inet_service : verdict"),
        (
            NO_ENDPOINT_SERVICES,
            "ipv4_addr . inet_proto . inet_service : verdict",
        ),
        (NO_ENDPOINT_NODEPORTS, "inet_proto . inet_service : verdict"),
    ];
    for (name, ty) in maps {
        let _ = writeln!(s, "add map {t} {name} {{ type {ty} ; }}");
        let _ = writeln!(s, "flush map {t} {name}");
        objects.sets.insert(name.to_string());
    }
    let _ = writeln!(s, "add set {t} {CLUSTER_IPS} {{ type ipv4_addr ; }}");
    let _ = writeln!(s, "flush set {t} {CLUSTER_IPS}");
    objects.sets.insert(CLUSTER_IPS.to_string());
    for (name, timeout) in &affinity_sets {
        if objects.sets.insert(name.clone()) {
            let _ = writeln!(
                s,
                "add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {}s ; }}",
                timeout.as_secs().max(1)
            );
        }
    }
    for (name, rules) in rewritten {
        for r in rules {
            let _ = writeln!(s, "add rule {t} {name} {r}");
        }
    }
    let mut elements = |name: &str, items: Vec<String>| {
        if !items.is_empty() {
            let _ = writeln!(s, "add element {t} {name} {{ {} }}", items.join(", "));
        }
    };
    let kv = |m: &BTreeMap<String, String>| -> Vec<String> {
        m.iter().map(|(k, v)| format!("{k} : {v}")).collect()
    };
    elements(SERVICE_IPS, kv(&service_ips));
    elements(SERVICE_NODEPORTS, kv(&service_nodeports));
    elements(NO_ENDPOINT_SERVICES, kv(&no_endpoint_services));
    elements(NO_ENDPOINT_NODEPORTS, kv(&no_endpoint_nodeports));
    elements(
        CLUSTER_IPS,
        cluster_ips.iter().map(|ip| ip.to_string()).collect(),
    );
    // Stale objects go last: by now nothing refers to them (the chains that did changed
    // content, so they were flushed; maps were flushed).
    if let Some(prev) = previous {
        for c in prev
            .chains
            .keys()
            .filter(|c| !objects.chains.contains_key(*c))
        {
            let _ = writeln!(s, "delete chain {t} {c}");
        }
        for set in prev.sets.difference(&objects.sets) {
            let _ = writeln!(s, "delete set {t} {set}");
        }
    }
    Ruleset {
        script: s,
        objects,
        endpoints,
    }
}

/// The transaction that removes the table (absent is fine: `add` first).
pub fn remove_script(table: &str) -> String {
    let t = format!("ip {}", ident(table));
    format!("add table {t}\ndelete table {t}\n")
}

/// `svc-<hash>-<ns>/<name>/<proto>/<port>`, readable in `nft list` and unique by the hash.
fn service_chain_name(svc: &Service, port: &Port) -> String {
    let id = port_id(svc, port);
    format!("svc-{}-{}", hash(&id), ident(&id))
}

fn endpoint_chain_name(svc: &Service, port: &Port, ip: Ipv4Addr, target: u16) -> String {
    let id = port_id(svc, port);
    let full = format!("{id}__{ip}/{target}");
    format!("ep-{}-{}", hash(&full), ident(&full))
}

/// The timeout is part of the name: nft cannot change a set's timeout in place.
fn affinity_set_name(
    svc: &Service,
    port: &Port,
    ip: Ipv4Addr,
    target: u16,
    timeout: Duration,
) -> String {
    let id = port_id(svc, port);
    let full = format!("{id}__{ip}/{target}@{}", timeout.as_secs());
    format!("affinity-{}-{}", hash(&full), ident(&full))
}

fn port_id(svc: &Service, port: &Port) -> String {
    let pname = if port.name.is_empty() {
        port.port.to_string()
    } else {
        port.name.clone()
    };
    let proto = match port.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    format!("{}/{}/{proto}/{pname}", svc.key.namespace, svc.key.name)
}

/// An nft identifier from any string: letters, digits and `_ - . /` pass, the rest becomes
/// `_`; it starts with a letter. Kubernetes names already fit; this guards the parser.
pub fn ident(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'x');
    }
    out
}

/// FNV-1a, 64 bits: stable across builds and runs (names outlive a process).
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// 8 characters of base32 [`fnv`].
fn hash(s: &str) -> String {
    let h = fnv(s);
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..8)
        .map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, ServiceKey};

    fn opts() -> RuleOptions {
        RuleOptions {
            table: "baton".into(),
            pod_cidr: "10.244.0.0/24".parse().expect("cidr"),
            service_cidr: "10.96.0.0/12".parse().expect("cidr"),
            node_ips: vec![],
            forget_on_reset: true,
        }
    }

    fn ep(ip: [u8; 4], ready: bool) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::from(ip)),
            port: 9090,
            pod: None,
            node: None,
            ready,
            serving: ready,
            terminating: false,
        }
    }

    fn service(name: &str, vip: Option<[u8; 4]>, eps: Vec<Endpoint>) -> Service {
        Service {
            key: ServiceKey {
                namespace: "default".into(),
                name: name.into(),
            },
            cluster_ip: vip.map(Ipv4Addr::from),
            session_affinity: None,
            ports: vec![Port {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
                node_port: Some(30080),
                endpoints: eps,
            }],
        }
    }

    fn snap(services: Vec<Service>) -> Snapshot {
        Snapshot {
            version: 1,
            services: services.into_iter().map(|s| (s.key.clone(), s)).collect(),
            ingresses: vec![],
        }
    }

    fn lines<'a>(r: &'a Ruleset, needle: &str) -> Vec<&'a str> {
        r.script.lines().filter(|l| l.contains(needle)).collect()
    }

    #[test]
    fn first_sync_recreates_the_table_in_the_same_transaction() {
        let r = ruleset(&snap(vec![]), &opts(), None);
        let head: Vec<&str> = r.script.lines().take(3).collect();
        assert_eq!(
            head,
            vec![
                "add table ip baton",
                "delete table ip baton",
                "add table ip baton"
            ]
        );
        assert!(r.script.contains(
            "add chain ip baton nat-prerouting { type nat hook prerouting priority -100 ; policy accept ; }"
        ));
        assert!(!r.script.contains("delete chain"));
    }

    #[test]
    fn a_service_port_dispatches_by_vip_and_nodeport_to_a_random_endpoint() {
        let s = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 2], true), ep([10, 244, 0, 3], true)],
        );
        let r = ruleset(&snap(vec![s]), &opts(), None);
        assert_eq!(r.endpoints, 2);
        let svc = lines(&r, "add element ip baton service-ips");
        assert_eq!(svc.len(), 1);
        assert!(
            svc[0].contains("10.96.0.10 . tcp . 80 : goto svc-"),
            "{svc:?}"
        );
        assert!(svc[0].contains("default/web/tcp/http"));
        let np = lines(&r, "add element ip baton service-nodeports");
        assert!(np[0].contains("tcp . 30080 : goto svc-"));
        let pick = lines(&r, "numgen random mod 2 vmap");
        assert_eq!(pick.len(), 1);
        assert!(pick[0].contains("0 : goto ep-") && pick[0].contains("1 : goto ep-"));
        let dnat = lines(&r, "dnat to");
        assert_eq!(dnat.len(), 2);
        assert!(dnat[0].ends_with("meta l4proto tcp dnat to 10.244.0.2:9090"));
        assert!(dnat[1].ends_with("meta l4proto tcp dnat to 10.244.0.3:9090"));
        assert!(lines(&r, "add element ip baton cluster-ips")[0].contains("10.96.0.10"));
        assert!(lines(&r, "add element ip baton no-endpoint-services").is_empty());
    }

    #[test]
    fn objects_are_declared_before_rules_and_rules_before_elements() {
        let s = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 2], true)],
        );
        let r = ruleset(&snap(vec![s]), &opts(), None);
        let pos = |prefix: &str| -> (usize, usize) {
            let idx: Vec<usize> = r
                .script
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(prefix))
                .map(|(i, _)| i)
                .collect();
            (idx[0], idx[idx.len() - 1])
        };
        let chains = pos("add chain");
        let maps = pos("add map");
        let rules = pos("add rule");
        let elements = pos("add element");
        assert!(chains.1 < maps.0 && maps.1 < rules.0 && rules.1 < elements.0);
    }

    #[test]
    fn a_port_without_endpoints_rejects_and_has_no_chain() {
        let s = service(
            "empty",
            Some([10, 96, 0, 11]),
            vec![ep([10, 244, 0, 9], false)],
        );
        let r = ruleset(&snap(vec![s]), &opts(), None);
        assert_eq!(r.endpoints, 0);
        assert!(lines(&r, "svc-").is_empty());
        assert_eq!(
            lines(&r, "add element ip baton no-endpoint-services"),
            vec![
                "add element ip baton no-endpoint-services { 10.96.0.11 . tcp . 80 : goto reject-chain }"
            ]
        );
        assert_eq!(
            lines(&r, "add element ip baton no-endpoint-nodeports"),
            vec!["add element ip baton no-endpoint-nodeports { tcp . 30080 : goto reject-chain }"]
        );
        assert!(
            r.script.contains(
                "add rule ip baton reject-chain meta l4proto tcp reject with tcp reset\n"
            )
        );
    }

    #[test]
    fn tcp_endpoints_forget_reset_connections_when_the_kernel_can() {
        let s = snap(vec![service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 5], true)],
        )]);
        let r = ruleset(&s, &opts(), None);
        assert_eq!(lines(&r, "add ct timeout").len(), 1, "{}", r.script);
        assert!(r.script.contains("policy = { close : 0 }"), "{}", r.script);
        let ep = lines(&r, "dnat to 10.244.0.5");
        let timeout = lines(&r, "ct timeout set");
        assert_eq!(timeout.len(), 1, "{}", r.script);
        let pos = |l: &str| r.script.find(l).unwrap_or(usize::MAX);
        assert!(pos(timeout[0]) < pos(ep[0]), "{}", r.script);
        let without = RuleOptions {
            forget_on_reset: false,
            ..opts()
        };
        let r = ruleset(&s, &without, None);
        assert!(!r.script.contains("ct timeout"), "{}", r.script);
    }

    #[test]
    fn headless_services_get_nothing() {
        let s = service("headless", None, vec![ep([10, 244, 0, 2], true)]);
        let r = ruleset(&snap(vec![s]), &opts(), None);
        assert_eq!(r.endpoints, 0);
        assert!(lines(&r, "add element").is_empty());
    }

    #[test]
    fn session_affinity_uses_one_timed_set_per_endpoint() {
        let mut s = service(
            "sticky",
            Some([10, 96, 0, 12]),
            vec![ep([10, 244, 0, 2], true), ep([10, 244, 0, 3], true)],
        );
        s.session_affinity = Some(Duration::from_secs(600));
        let r = ruleset(&snap(vec![s]), &opts(), None);
        let sets = lines(&r, "flags dynamic,timeout ; timeout 600s");
        assert_eq!(sets.len(), 2);
        let checks = lines(&r, "ip saddr @affinity-");
        assert_eq!(checks.len(), 2);
        let updates = lines(&r, "update @affinity-");
        assert_eq!(updates.len(), 2);
        // The affinity check comes before the random pick in the service chain.
        let svc_rules: Vec<&str> = r
            .script
            .lines()
            .filter(|l| l.starts_with("add rule ip baton svc-"))
            .collect();
        assert!(svc_rules[0].contains("ip saddr @affinity-"));
        assert!(svc_rules[2].contains("numgen random mod 2"));
    }

    #[test]
    fn later_syncs_flush_and_delete_only_what_is_stale() {
        let two = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 2], true), ep([10, 244, 0, 3], true)],
        );
        let first = ruleset(&snap(vec![two]), &opts(), None);
        let one = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 2], true)],
        );
        let next = ruleset(&snap(vec![one]), &opts(), Some(&first.objects));
        assert!(next.script.starts_with("add table ip baton\n"));
        assert!(!next.script.contains("delete table") && !next.script.contains("flush table"));
        // Only the Service's chain changed: the kept endpoint's chain and the skeleton stay.
        let rewritten: BTreeSet<&str> = lines(&next, "add rule")
            .iter()
            .filter_map(|l| l.split_whitespace().nth(4))
            .collect();
        assert_eq!(rewritten.len(), 1, "{rewritten:?}");
        assert!(rewritten.iter().all(|c| c.starts_with("svc-")));
        assert_eq!(lines(&next, "flush chain").len(), 1);
        // Unchanged input, nothing but the maps.
        let same = ruleset(&snap(vec![]), &opts(), None);
        let again = ruleset(&snap(vec![]), &opts(), Some(&same.objects));
        assert!(lines(&again, "add rule").is_empty());
        let full = ruleset(
            &snap(vec![]),
            &opts(),
            Some(&same.objects.forget_contents()),
        );
        assert!(!lines(&full, "add rule").is_empty());
        let deleted = lines(&next, "delete chain");
        assert_eq!(deleted.len(), 1);
        assert!(deleted[0].contains("10.244.0.3/9090"), "{deleted:?}");
        assert!(next.script.contains("flush map ip baton service-ips\n"));
        // Deletions come after everything that referred to the chain was flushed.
        let last_add = next
            .script
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|l| l.starts_with("add "))
            .expect("adds");
        let first_delete = next
            .script
            .lines()
            .position(|l| l.starts_with("delete "))
            .expect("delete");
        assert!(first_delete > last_add);
    }

    #[test]
    fn names_are_escaped_and_stable() {
        let mut s = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![ep([10, 244, 0, 2], true)],
        );
        s.key.name = "we b\"; flush ruleset".into();
        let r = ruleset(&snap(vec![s.clone()]), &opts(), None);
        assert!(!r.script.contains("\"; flush"));
        assert!(!r.script.contains("flush ruleset"));
        for l in r.script.lines() {
            assert!(!l.contains(' ') || !l.contains("we b"), "{l}");
        }
        assert_eq!(ident("9lives"), "x9lives");
        assert_eq!(ident("a b;c"), "a_b_c");
        let again = ruleset(&snap(vec![s]), &opts(), None);
        assert_eq!(r.script, again.script);
        assert_eq!(hash("default/web/tcp/http"), hash("default/web/tcp/http"));
        assert_ne!(hash("a"), hash("b"));
    }

    #[test]
    fn node_ips_restrict_nodeports_and_keep_loopback() {
        let mut o = opts();
        o.node_ips = vec![Ipv4Addr::new(192, 0, 2, 2)];
        let r = ruleset(&snap(vec![]), &o, None);
        assert!(r.script.contains(
            "add rule ip baton services ip daddr { 192.0.2.2, 127.0.0.0/8 } meta l4proto . th dport vmap @service-nodeports"
        ));
        let r = ruleset(&snap(vec![]), &opts(), None);
        assert!(r.script.contains(
            "add rule ip baton services fib daddr type local meta l4proto . th dport vmap @service-nodeports"
        ));
    }

    #[test]
    fn masquerade_is_for_marked_pod_and_loopback_sources() {
        let r = ruleset(&snap(vec![]), &opts(), None);
        assert!(r.script.contains(
            "add rule ip baton masquerading meta mark & 0x4000 == 0x4000 ip saddr { 10.244.0.0/24, 127.0.0.0/8 } masquerade"
        ));
        assert!(
            r.script
                .contains("add rule ip baton cluster-ips-check ip daddr 10.96.0.0/12 drop")
        );
    }

    #[test]
    fn packets_still_addressed_to_the_service_cidr_after_dnat_are_refused() {
        let r = ruleset(&snap(vec![]), &opts(), None);
        for chain in ["filter-forward", "filter-output-post-dnat"] {
            assert!(
                r.script.contains(&format!(
                    "add rule ip baton {chain} ct state != new ip daddr 10.96.0.0/12 counter goto reject-chain"
                )),
                "{chain}: {}",
                r.script
            );
        }
    }

    #[test]
    fn cidrs_parse_and_print_their_network() {
        let c: Ipv4Cidr = "10.244.0.1/24".parse().expect("cidr");
        assert_eq!(c.to_string(), "10.244.0.0/24");
        assert!("10.0.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Cidr>().is_err());
    }
}
