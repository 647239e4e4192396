//! TLS for the Ingress proxy: the certificates of the Ingresses' `spec.tls` Secrets, chosen by
//! SNI during the handshake.
//!
//! [`CertTable::build`] is pure: from the served Ingresses and a lookup of Secrets it makes the
//! table of host → certificate and the problems to report (a missing Secret, one that is not
//! `kubernetes.io/tls`, lacks `tls.crt`/`tls.key`, does not parse, or whose key does not match
//! its certificate). A host whose Secret is broken stays in the table as broken, so its
//! handshake fails rather than being answered with another Ingress's (wrong) certificate. Hosts
//! match as Ingress rules do: exactly, or `*.example.com` for one label. A `tls` entry without
//! hosts supplies the certificate for names no entry lists (and for clients sending no SNI).
//!
//! [`run`] keeps the table current: it watches Secrets and the snapshots, rebuilds on either
//! change (parsed certificates are cached by the Secret's resourceVersion, so an endpoint
//! change costs no parsing) and publishes the problems for the Ingress status writer. A Secret
//! updated in place is used by the next handshake.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::{Notify, watch};

use super::status::IngressProblem;
use crate::model::Snapshot;

/// Reason of the Event for a `spec.tls` entry whose Secret does not exist (or is not named).
pub const SECRET_NOT_FOUND: &str = "TLSSecretNotFound";
/// Reason of the Event for a Secret that exists but gives no usable certificate and key.
pub const SECRET_INVALID: &str = "TLSSecretInvalid";

/// What a host name leads to.
#[derive(Clone)]
enum Entry {
    Cert(Arc<CertifiedKey>),
    /// The Ingress naming this host has no usable Secret: refuse the handshake.
    Broken,
}

/// Host → certificate, as the handshake looks it up.
#[derive(Clone, Default)]
pub struct CertTable {
    exact: HashMap<String, Entry>,
    /// `*.example.com` entries, keyed by `example.com`.
    wildcard: HashMap<String, Entry>,
    /// From a `tls` entry without hosts.
    default: Option<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<&String> = self.exact.keys().collect();
        exact.sort();
        let mut wildcard: Vec<&String> = self.wildcard.keys().collect();
        wildcard.sort();
        f.debug_struct("CertTable")
            .field("exact", &exact)
            .field("wildcard", &wildcard)
            .field("default", &self.default.is_some())
            .finish()
    }
}

/// A parsed Secret, or why it cannot be used.
type Parsed = Result<Arc<CertifiedKey>, String>;

/// Parsed Secrets by namespace/name, valid while the resourceVersion is the same.
#[derive(Default)]
pub struct ParseCache {
    entries: HashMap<(String, String), (Option<String>, Parsed)>,
}

impl CertTable {
    /// The certificate for a handshake naming `sni` (`None`: no SNI sent).
    pub fn lookup(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let found = self.exact.get(&name).or_else(|| {
            name.split_once('.')
                .and_then(|(_, parent)| self.wildcard.get(parent))
        });
        match found {
            Some(Entry::Cert(c)) => Some(c.clone()),
            Some(Entry::Broken) => None,
            None => self.default.clone(),
        }
    }

    /// The table for `ingresses` (sorted by namespace and name, as in a snapshot: the first
    /// Ingress naming a host gives its certificate), the Secrets reached through `secret`, and
    /// the problems to report on the Ingresses. `cache` keeps parsed Secrets between builds.
    pub fn build<'a>(
        ingresses: &[Ingress],
        secret: impl Fn(&str, &str) -> Option<&'a Secret>,
        cache: &mut ParseCache,
    ) -> (CertTable, Vec<IngressProblem>) {
        let mut table = CertTable::default();
        let mut problems = Vec::new();
        let mut used = HashMap::new();
        for ing in ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            let ing_name = ing.metadata.name.as_deref().unwrap_or_default();
            let tls = ing.spec.as_ref().and_then(|s| s.tls.as_ref());
            for (i, t) in tls.into_iter().flatten().enumerate() {
                let entry = match t.secret_name.as_deref().filter(|n| !n.is_empty()) {
                    None => Err((
                        SECRET_NOT_FOUND,
                        format!(
                            "spec.tls[{i}] names no secretName: its hosts are not served over TLS"
                        ),
                    )),
                    Some(name) => match secret(ns, name) {
                        None => Err((
                            SECRET_NOT_FOUND,
                            format!(
                                "secret \"{ns}/{name}\" (spec.tls[{i}].secretName) not found: its hosts are not served over TLS"
                            ),
                        )),
                        Some(s) => {
                            let key = (ns.to_string(), name.to_string());
                            let rv = s.metadata.resource_version.clone();
                            let parsed = match cache.entries.get(&key) {
                                Some((v, p)) if *v == rv && rv.is_some() => p.clone(),
                                _ => parse_secret(s),
                            };
                            used.insert(key, (rv, parsed.clone()));
                            parsed.map_err(|why| {
                                (
                                    SECRET_INVALID,
                                    format!("secret \"{ns}/{name}\" (spec.tls[{i}].secretName): {why}: its hosts are not served over TLS"),
                                )
                            })
                        }
                    },
                };
                let entry = match entry {
                    Ok(cert) => Entry::Cert(cert),
                    Err((reason, message)) => {
                        let p = IngressProblem {
                            namespace: ns.to_string(),
                            name: ing_name.to_string(),
                            reason,
                            message,
                        };
                        if !problems.contains(&p) {
                            problems.push(p);
                        }
                        Entry::Broken
                    }
                };
                let hosts = t.hosts.as_deref().unwrap_or_default();
                if hosts.is_empty() {
                    if let (None, Entry::Cert(c)) = (&table.default, &entry) {
                        table.default = Some(c.clone());
                    }
                    continue;
                }
                for h in hosts {
                    let h = h.trim_end_matches('.').to_ascii_lowercase();
                    let (map, key) = match h.strip_prefix("*.") {
                        Some(parent) => (&mut table.wildcard, parent.to_string()),
                        None => (&mut table.exact, h),
                    };
                    // The first usable certificate for a host wins; a broken entry only holds
                    // the host until one is found.
                    match map.get(&key) {
                        Some(Entry::Cert(_)) => {}
                        Some(Entry::Broken) if matches!(entry, Entry::Broken) => {}
                        _ => {
                            map.insert(key, entry.clone());
                        }
                    }
                }
            }
        }
        cache.entries = used;
        (table, problems)
    }
}

/// The certificate and key of a `kubernetes.io/tls` Secret, or why there is none.
fn parse_secret(s: &Secret) -> Parsed {
    let ty = s.type_.as_deref().unwrap_or("Opaque");
    if ty != "kubernetes.io/tls" {
        return Err(format!("type is {ty}, not kubernetes.io/tls"));
    }
    let data = s.data.as_ref();
    let get = |k: &str| {
        data.and_then(|d| d.get(k))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| format!("no {k}"))
    };
    let (crt, key) = (get("tls.crt")?, get("tls.key")?);
    let certs = rustls_pemfile::certs(&mut &crt[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if certs.is_empty() {
        return Err("tls.crt holds no PEM certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| format!("tls.key: {e}"))?
        .ok_or_else(|| "tls.key holds no PEM private key".to_string())?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key: {e}"))?;
    let ck = CertifiedKey::new(certs, signer);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err("tls.key does not match the certificate in tls.crt".into());
        }
        Err(e) => return Err(format!("tls.crt: {e}")),
    }
    Ok(Arc::new(ck))
}

/// The live table, read by every handshake.
#[derive(Default)]
pub struct Certs {
    table: RwLock<Arc<CertTable>>,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Certs").field(&self.load()).finish()
    }
}

impl Certs {
    fn load(&self) -> Arc<CertTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `table` live for the handshakes that start from now on.
    pub fn publish(&self, table: CertTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name();
        let found = self.load().lookup(sni);
        if found.is_none() {
            tracing::debug!(sni = ?sni, "no usable certificate for this TLS handshake");
        }
        found
    }
}

/// The rustls server configuration of the TLS listener: certificates from `certs`, HTTP/2
/// and HTTP/1.1 offered by ALPN.
pub fn server_config(certs: Arc<Certs>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Keeps `certs` current from the Secrets and the snapshots' Ingresses and publishes the
/// problems found on `problems`, until the task is dropped.
pub async fn run(
    client: Client,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    certs: Arc<Certs>,
    problems: watch::Sender<Vec<IngressProblem>>,
) {
    let changed = Arc::new(Notify::new());
    let secrets = crate::feed::cache::<Secret>(Api::all(client), changed.clone());
    if secrets.wait_until_ready().await.is_err() {
        return;
    }
    let mut cache = ParseCache::default();
    loop {
        let snap = snapshots.borrow_and_update().clone();
        let lookup = |ns: &str, name: &str| secrets.get(&ObjectRef::<Secret>::new(name).within(ns));
        // The store hands out Arcs; keep them alive for the build's borrows.
        let mut found: HashMap<(String, String), Arc<Secret>> = HashMap::new();
        for ing in &snap.ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            for t in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                if let Some(name) = t.secret_name.as_deref()
                    && let Some(s) = lookup(ns, name)
                {
                    found.insert((ns.to_string(), name.to_string()), s);
                }
            }
        }
        let (table, found_problems) = CertTable::build(
            &snap.ingresses,
            |ns, name| {
                found
                    .get(&(ns.to_string(), name.to_string()))
                    .map(|s| s.as_ref())
            },
            &mut cache,
        );
        tracing::debug!(version = snap.version, table = ?table, "Ingress TLS certificates");
        certs.publish(table);
        problems.send_if_modified(|p| {
            if *p == found_problems {
                return false;
            }
            *p = found_problems;
            true
        });
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { return },
            _ = changed.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A self-signed EC certificate for a.example and its key, and a second key.
    const CRT: &str = include_str!("testdata/a.example.crt");
    const KEY: &str = include_str!("testdata/a.example.key");
    const OTHER_KEY: &str = include_str!("testdata/other.key");

    fn secret(ns: &str, name: &str, ty: &str, crt: &str, key: &str) -> Secret {
        let b = |s: &str| k8s_openapi::ByteString(s.as_bytes().to_vec());
        let mut out: Secret = serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
            "type": ty,
        }))
        .expect("secret");
        out.data = Some(
            [
                ("tls.crt".to_string(), b(crt)),
                ("tls.key".to_string(), b(key)),
            ]
            .into(),
        );
        out
    }

    fn ingress(name: &str, tls: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": name},
            "spec": {"tls": tls}
        }))
        .expect("ingress")
    }

    fn build(ings: &[Ingress], secrets: &[Secret]) -> (CertTable, Vec<(&'static str, String)>) {
        let (t, p) = CertTable::build(
            ings,
            |ns, name| {
                secrets.iter().find(|s| {
                    s.metadata.namespace.as_deref() == Some(ns)
                        && s.metadata.name.as_deref() == Some(name)
                })
            },
            &mut ParseCache::default(),
        );
        (t, p.into_iter().map(|p| (p.reason, p.message)).collect())
    }

    #[test]
    fn hosts_match_exactly_or_one_label_under_a_wildcard() {
        let s = secret("default", "a", "kubernetes.io/tls", CRT, KEY);
        let ing = ingress(
            "site",
            json!([{"hosts": ["a.example", "*.b.example"], "secretName": "a"}]),
        );
        let (t, problems) = build(&[ing], &[s]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(t.lookup(Some("a.example")).is_some());
        assert!(t.lookup(Some("A.Example.")).is_some());
        assert!(t.lookup(Some("x.b.example")).is_some());
        assert!(t.lookup(Some("b.example")).is_none());
        assert!(t.lookup(Some("y.x.b.example")).is_none());
        assert!(t.lookup(Some("other.example")).is_none());
        assert!(t.lookup(None).is_none());
    }

    #[test]
    fn a_tls_entry_without_hosts_is_the_default_certificate() {
        let s = secret("default", "a", "kubernetes.io/tls", CRT, KEY);
        let (t, _) = build(&[ingress("site", json!([{"secretName": "a"}]))], &[s]);
        assert!(t.lookup(None).is_some());
        assert!(t.lookup(Some("anything.example")).is_some());
    }

    #[test]
    fn broken_secrets_are_problems_and_their_hosts_get_no_certificate() {
        let good = secret("default", "good", "kubernetes.io/tls", CRT, KEY);
        let opaque = secret("default", "opaque", "Opaque", CRT, KEY);
        let mismatched = secret("default", "mismatched", "kubernetes.io/tls", CRT, OTHER_KEY);
        let garbage = secret("default", "garbage", "kubernetes.io/tls", "junk", KEY);
        let ing = ingress(
            "site",
            json!([
                {"hosts": ["missing.example"], "secretName": "gone"},
                {"hosts": ["opaque.example"], "secretName": "opaque"},
                {"hosts": ["mismatched.example"], "secretName": "mismatched"},
                {"hosts": ["garbage.example"], "secretName": "garbage"},
                {"secretName": "good"},
            ]),
        );
        let (t, problems) = build(&[ing], &[good, opaque, mismatched, garbage]);
        let reasons: Vec<&str> = problems.iter().map(|p| p.0).collect();
        assert_eq!(
            reasons,
            vec![
                SECRET_NOT_FOUND,
                SECRET_INVALID,
                SECRET_INVALID,
                SECRET_INVALID
            ]
        );
        assert!(
            problems[0].1.contains("secret \"default/gone\""),
            "{problems:?}"
        );
        assert!(problems[1].1.contains("type is Opaque"), "{problems:?}");
        assert!(problems[2].1.contains("does not match"), "{problems:?}");
        assert!(problems[3].1.contains("no PEM certificate"), "{problems:?}");
        // Not even the default certificate answers for a host whose Secret is broken.
        for h in [
            "missing.example",
            "opaque.example",
            "mismatched.example",
            "garbage.example",
        ] {
            assert!(t.lookup(Some(h)).is_none(), "{h} got a certificate");
        }
        assert!(t.lookup(Some("elsewhere.example")).is_some());
    }

    #[test]
    fn the_first_usable_certificate_for_a_host_wins() {
        let good = secret("default", "good", "kubernetes.io/tls", CRT, KEY);
        let first = ingress("a", json!([{"hosts": ["a.example"], "secretName": "gone"}]));
        let second = ingress("b", json!([{"hosts": ["a.example"], "secretName": "good"}]));
        let (t, problems) = build(&[first, second], &[good]);
        assert_eq!(problems.len(), 1);
        assert!(t.lookup(Some("a.example")).is_some());
    }
}
