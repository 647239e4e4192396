//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! Credentials come in the docker config JSON format that `kubernetes.io/dockerconfigjson`
//! secrets hold (`{"auths":{"host":{"username","password"|"auth"}}}`; the legacy `.dockercfg`
//! map without `auths` is accepted too). Keys may carry a scheme or a path
//! (`https://index.docker.io/v1/`); lookup is by host.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

/// A user name and password for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The `Authorization: Basic …` header value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Credentials for any number of registries, from docker config JSON.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    by_host: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

impl RegistryAuth {
    /// No credentials: anonymous pulls only.
    pub fn anonymous() -> Self {
        RegistryAuth::default()
    }

    /// Parses docker config JSON (the `.dockerconfigjson` key of a pull secret). Entries
    /// without usable credentials are skipped; a malformed document is an error.
    pub fn from_docker_config(json: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("invalid docker config JSON: {e}"))?;
        let auths = match value.get("auths") {
            Some(a) => a.clone(),
            None => value,
        };
        let entries: BTreeMap<String, Entry> = serde_json::from_value(auths)
            .map_err(|e| format!("invalid docker config \"auths\": {e}"))?;
        let mut out = RegistryAuth::default();
        for (key, entry) in entries {
            let creds = match (entry.username, entry.password, entry.auth) {
                (Some(u), Some(p), _) if !u.is_empty() => Some(Credentials {
                    username: u,
                    password: p,
                }),
                (_, _, Some(a)) if !a.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .map_err(|e| format!("invalid \"auth\" for {key}: {e}"))?;
                    let text = String::from_utf8(decoded)
                        .map_err(|_| format!("invalid \"auth\" for {key}: not UTF-8"))?;
                    let (u, p) = text.split_once(':').ok_or_else(|| {
                        format!("invalid \"auth\" for {key}: expected user:password")
                    })?;
                    Some(Credentials {
                        username: u.to_string(),
                        password: p.to_string(),
                    })
                }
                _ => None,
            };
            if let Some(c) = creds {
                out.by_host.insert(normalize_key(&key), c);
            }
        }
        Ok(out)
    }

    /// Adds credentials for one registry host.
    pub fn insert(&mut self, host: &str, creds: Credentials) {
        self.by_host.insert(normalize_key(host), creds);
    }

    /// Merges `other` into `self` (later pull secrets do not override earlier ones, as in the
    /// kubelet, which tries them in order).
    pub fn merge(&mut self, other: RegistryAuth) {
        for (k, v) in other.by_host {
            self.by_host.entry(k).or_insert(v);
        }
    }

    /// Credentials for a registry (as named in the reference, e.g. `docker.io`).
    pub fn lookup(&self, registry: &str) -> Option<&Credentials> {
        let key = normalize_key(registry);
        self.by_host.get(&key)
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/x` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `a="x, y",b=z` → [(a, "x, y"), (b, z)], honouring quotes and backslash escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockerconfigjson_with_auth_or_password() {
        let json = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
            "127.0.0.1:5000":{"username":"bob","password":"secret"},
            "empty.example":{}
        }}"#;
        let auth = RegistryAuth::from_docker_config(json).expect("valid");
        assert_eq!(
            auth.lookup("docker.io"),
            Some(&Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            auth.lookup("127.0.0.1:5000").map(|c| c.username.as_str()),
            Some("bob")
        );
        assert!(auth.lookup("empty.example").is_none());
        assert!(RegistryAuth::from_docker_config(b"[1]").is_err());
        assert!(RegistryAuth::from_docker_config(br#"{"auths":{"h":{"auth":"!!"}}}"#).is_err());
    }

    #[test]
    fn legacy_dockercfg_without_auths() {
        let auth =
            RegistryAuth::from_docker_config(br#"{"quay.io":{"username":"a","password":"b"}}"#)
                .expect("valid");
        assert!(auth.lookup("quay.io").is_some());
    }

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }
}
