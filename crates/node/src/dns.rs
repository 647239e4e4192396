//! A pod's name service files as the kubelet writes them (`pkg/kubelet/network/dns` and
//! `managedHostsFileContent`), pure: `/etc/resolv.conf` from the pod's `dnsPolicy` and
//! `dnsConfig`, `/etc/hosts` with its `hostname`/`subdomain` and `hostAliases`, and the
//! container hostname.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use baton_api::resolv::ResolvConf;
use k8s_openapi::api::core::v1::{Pod, PodSpec};

/// The kubelet's limits (`validation.MaxDNSNameservers` and friends).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// The node's DNS settings (the kubelet's `--cluster-dns`, `--cluster-domain`, `--resolv-conf`).
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// The cluster DNS address pods with `dnsPolicy: ClusterFirst` use; `None` when no
    /// cluster DNS runs (those pods then get the host's configuration, as with the kubelet).
    pub cluster_dns: Option<IpAddr>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// The host's resolver configuration: `dnsPolicy: Default` and the host's search domains.
    pub resolv_conf: PathBuf,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            cluster_dns: None,
            cluster_domain: "cluster.local".into(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// The pod's `/etc/resolv.conf`, from the host's (`host`, as read from `--resolv-conf`).
pub fn resolv_conf(pod: &Pod, opts: &DnsOptions, host: &ResolvConf) -> ResolvConf {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = opts.cluster_domain.trim_matches('.');
    // hostNetwork is refused by validation, so ClusterFirstWithHostNet is ClusterFirst.
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let mut conf = match (policy, opts.cluster_dns) {
        ("None", _) => ResolvConf::default(),
        ("ClusterFirst" | "ClusterFirstWithHostNet", Some(dns)) => ResolvConf {
            nameservers: vec![dns.to_string()],
            searches: [
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ]
            .into_iter()
            .chain(host.searches.iter().cloned())
            .collect(),
            options: vec!["ndots:5".into()],
        },
        // Default, or ClusterFirst without a cluster DNS (the kubelet's fallback).
        _ => host_config(host, opts.cluster_dns),
    };
    if let Some(dc) = &spec.dns_config {
        for n in dc.nameservers.iter().flatten() {
            if !conf.nameservers.contains(n) {
                conf.nameservers.push(n.clone());
            }
        }
        for s in dc.searches.iter().flatten() {
            let s = s.trim_end_matches('.').to_string();
            if !s.is_empty() && !conf.searches.contains(&s) {
                conf.searches.push(s);
            }
        }
        // Options by name: the pod's replace the policy's of the same name.
        for o in dc.options.iter().flatten() {
            let Some(name) = o.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            match conf
                .options
                .iter_mut()
                .find(|e| e.split(':').next() == Some(name))
            {
                Some(e) => *e = text,
                None => conf.options.push(text),
            }
        }
    }
    fit_limits(&mut conf);
    conf
}

/// The host's configuration for a pod. A pod in its own network namespace cannot reach the
/// host's loopback, so loopback nameservers (systemd-resolved's 127.0.0.53, a local dnsmasq)
/// are left out; with none left the pod asks the cluster DNS, which forwards to them.
fn host_config(host: &ResolvConf, cluster_dns: Option<IpAddr>) -> ResolvConf {
    let mut conf = host.clone();
    conf.nameservers
        .retain(|n| !n.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    if conf.nameservers.is_empty()
        && let Some(dns) = cluster_dns
    {
        conf.nameservers.push(dns.to_string());
    }
    conf
}

/// The kubelet's `formDNSConfigFitsLimits`: at most 3 nameservers, 32 search domains and
/// 2048 characters of search list (it logs and trims; so does this).
fn fit_limits(conf: &mut ResolvConf) {
    conf.nameservers.truncate(MAX_NAMESERVERS);
    conf.searches.truncate(MAX_SEARCHES);
    while conf.searches.join(" ").len() > MAX_SEARCH_CHARS {
        conf.searches.pop();
    }
}

/// The pod's hostname (`spec.hostname`, else its name cut to 63 characters as the kubelet
/// does) and, with a `subdomain`, its domain `<subdomain>.<ns>.svc.<cluster domain>`.
pub fn hostname(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| {
            let n = pod.metadata.name.clone().unwrap_or_default();
            if n.len() <= 63 {
                n
            } else {
                n[..63].trim_end_matches(['-', '.']).to_string()
            }
        });
    let domain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{sub}.{}.svc.{}",
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                cluster_domain.trim_matches('.')
            )
        });
    (name, domain)
}

/// The hostname the pod's containers see (the UTS namespace's and `/etc/hostname`): the
/// [`hostname`], or with `setHostnameAsFQDN` and a subdomain the fully qualified name, which
/// like the kubelet refuses past 64 characters (the kernel's limit).
pub fn uts_hostname(pod: &Pod, cluster_domain: &str) -> Result<String, String> {
    let (name, domain) = hostname(pod, cluster_domain);
    let as_fqdn = pod
        .spec
        .as_ref()
        .and_then(|s| s.set_hostname_as_fqdn)
        .unwrap_or(false);
    match domain {
        Some(domain) if as_fqdn => {
            let fqdn = format!("{name}.{domain}");
            if fqdn.len() > 64 {
                return Err(format!(
                    "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long (64 characters is the max, {} characters requested)",
                    fqdn.len()
                ));
            }
            Ok(fqdn)
        }
        _ => Ok(name),
    }
}

/// The pod's `/etc/hosts`, as the kubelet's `managedHostsFileContent`.
pub fn hosts_file(pod: &Pod, ip: Ipv4Addr, cluster_domain: &str) -> String {
    let (name, domain) = hostname(pod, cluster_domain);
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    match domain {
        Some(d) => out.push_str(&format!("{ip}\t{name}.{d}\t{name}\n")),
        None => out.push_str(&format!("{ip}\t{name}\n")),
    }
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s: &PodSpec| s.host_aliases.as_ref())
        .filter(|a| !a.is_empty());
    if let Some(aliases) = aliases {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default();
            if !names.is_empty() {
                out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfig, PodDNSConfigOption};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn opts() -> DnsOptions {
        DnsOptions {
            cluster_dns: Some("10.244.0.1".parse().expect("ip")),
            ..Default::default()
        }
    }

    fn host() -> ResolvConf {
        ResolvConf::parse(
            "nameserver 192.0.2.53\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0\n",
        )
    }

    #[test]
    fn cluster_first_is_the_kubelets() {
        let c = resolv_conf(&pod(PodSpec::default()), &opts(), &host());
        assert_eq!(
            c.render(),
            "nameserver 10.244.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"
        );
        // Without a cluster DNS, the host's (loopback servers left out).
        let none = DnsOptions::default();
        let c = resolv_conf(&pod(PodSpec::default()), &none, &host());
        assert_eq!(c.nameservers, ["192.0.2.53"]);
    }

    #[test]
    fn default_is_the_hosts_without_loopback() {
        let spec = PodSpec {
            dns_policy: Some("Default".into()),
            ..Default::default()
        };
        let c = resolv_conf(&pod(spec.clone()), &opts(), &host());
        assert_eq!(
            c.render(),
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
        );
        // Only a local stub: the pod asks the cluster DNS, which forwards to it.
        let stub = ResolvConf::parse("nameserver 127.0.0.53\noptions edns0 trust-ad\n");
        let c = resolv_conf(&pod(spec), &opts(), &stub);
        assert_eq!(c.nameservers, ["10.244.0.1"]);
    }

    #[test]
    fn dns_config_completes_or_replaces() {
        let config = PodDNSConfig {
            nameservers: Some(vec!["192.0.2.1".into(), "10.244.0.1".into()]),
            searches: Some(vec!["a.example.".into(), "svc.cluster.local".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("single-request".into()),
                    value: None,
                },
            ]),
        };
        let spec = PodSpec {
            dns_config: Some(config.clone()),
            ..Default::default()
        };
        let c = resolv_conf(&pod(spec), &opts(), &host());
        assert_eq!(c.nameservers, ["10.244.0.1", "192.0.2.1"]);
        assert_eq!(
            c.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "a.example"
            ]
        );
        assert_eq!(c.options, ["ndots:2", "single-request"]);
        let none = PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(config),
            ..Default::default()
        };
        let c = resolv_conf(&pod(none), &opts(), &host());
        assert_eq!(
            c.render(),
            "nameserver 192.0.2.1\nnameserver 10.244.0.1\nsearch a.example svc.cluster.local\noptions ndots:2 single-request\n"
        );
    }

    #[test]
    fn limits_are_fitted() {
        let config = PodDNSConfig {
            nameservers: Some((1..=5).map(|i| format!("192.0.2.{i}")).collect()),
            searches: Some(
                (0..40)
                    .map(|i| format!("d{i}.{}", "x".repeat(60)))
                    .collect(),
            ),
            options: None,
        };
        let spec = PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(config),
            ..Default::default()
        };
        let c = resolv_conf(&pod(spec), &opts(), &host());
        assert_eq!(c.nameservers.len(), 3);
        assert!(c.searches.len() <= 32);
        assert!(c.searches.join(" ").len() <= 2048);
    }

    #[test]
    fn hostname_as_fqdn() {
        let mut p = Pod::default();
        p.metadata.name = Some("web-0".into());
        p.metadata.namespace = Some("shop".into());
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            subdomain: Some("web".into()),
            set_hostname_as_fqdn: Some(true),
            ..Default::default()
        });
        assert_eq!(
            uts_hostname(&p, "cluster.local"),
            Ok("web-0.web.shop.svc.cluster.local".into())
        );
        // Without a subdomain there is no FQDN: the short name stays.
        if let Some(s) = p.spec.as_mut() {
            s.subdomain = None;
        }
        assert_eq!(uts_hostname(&p, "cluster.local"), Ok("web-0".into()));
        if let Some(s) = p.spec.as_mut() {
            s.subdomain = Some("s".repeat(40));
        }
        let err = uts_hostname(&p, "cluster.local").expect_err("too long");
        assert!(
            err.contains("is too long (64 characters is the max, 69 characters requested)"),
            "{err}"
        );
    }

    #[test]
    fn hosts_and_hostname() {
        let spec = PodSpec {
            hostname: Some("db-0".into()),
            subdomain: Some("db".into()),
            host_aliases: Some(vec![
                HostAlias {
                    ip: "192.0.2.9".into(),
                    hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
                },
                HostAlias {
                    ip: "192.0.2.10".into(),
                    hostnames: None,
                },
            ]),
            ..Default::default()
        };
        let p = pod(spec);
        assert_eq!(
            hostname(&p, "cluster.local"),
            ("db-0".into(), Some("db.shop.svc.cluster.local".into()))
        );
        let hosts = hosts_file(&p, Ipv4Addr::new(10, 244, 0, 7), "cluster.local");
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(
            hosts.ends_with("10.244.0.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n# Entries added by HostAliases.\n192.0.2.9\tfoo.local\tbar.local\n"),
            "{hosts}"
        );
        let plain = pod(PodSpec::default());
        assert_eq!(hostname(&plain, "cluster.local"), ("web-0".into(), None));
        assert!(
            hosts_file(&plain, Ipv4Addr::new(10, 244, 0, 8), "x")
                .ends_with("fe00::2\tip6-allrouters\n10.244.0.8\tweb-0\n")
        );
        let mut long = pod(PodSpec::default());
        long.metadata.name = Some(format!("{}-{}", "a".repeat(62), "b".repeat(10)));
        assert_eq!(hostname(&long, "x").0, "a".repeat(62));
    }
}
