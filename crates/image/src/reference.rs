//! Image references, normalised the way Docker and the kubelet do: `busybox` is
//! `docker.io/library/busybox:latest`, a first path component is a registry host only when it
//! has a `.` or `:` or is `localhost`, and `name@sha256:…` pins a digest.

use std::fmt;

use crate::digest::Digest;

/// Docker Hub's canonical domain and the host its API is served from.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `None` when the reference has only a digest.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    /// Whether the user wrote a tag (the pull-policy default depends on it).
    pub tag_given: bool,
}

/// Why a reference is invalid (the text of an `InvalidImageName` message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl Reference {
    /// Parses and normalises `image` as Docker does.
    pub fn parse(image: &str) -> Result<Reference, ParseError> {
        if image.is_empty() {
            return Err(ParseError(
                "repository name must have at least one component".into(),
            ));
        }
        if image.len() > 4096 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError("invalid reference format".into()));
        }
        let (rest, digest) = match image.split_once('@') {
            Some((name, d)) => {
                let digest = Digest::parse(d).ok_or_else(|| {
                    ParseError(format!("invalid digest {d:?} (only sha256 is supported)"))
                })?;
                (name, Some(digest))
            }
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t)?;
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) && !has_domain(name) {
            return Err(ParseError("repository name must be lowercase".into()));
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, remainder)) if has_domain(name) => {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_domain(&registry)?;
        validate_path(&repository)?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(ParseError(
                "repository name must not be more than 255 characters".into(),
            ));
        }
        let tag_given = tag.is_some();
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
            tag_given,
        })
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to send API requests to (`docker.io` is served by `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first component names a registry when it has a `.` or `:`, is
/// `localhost`, or has an upper-case letter (which no repository may have).
fn has_domain(name: &str) -> bool {
    match name.split_once('/') {
        None => false,
        Some((first, _)) => {
            first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first != first.to_lowercase()
        }
    }
}

fn validate_tag(tag: &str) -> Result<(), ParseError> {
    let mut chars = tag.chars();
    let ok = tag.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ParseError(format!("invalid tag {tag:?}")))
    }
}

fn validate_domain(domain: &str) -> Result<(), ParseError> {
    let bad = || ParseError(format!("invalid registry host {domain:?}"));
    let (host, port) = if let Some(v6) = domain.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !h.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, separated by `/`.
fn validate_path(path: &str) -> Result<(), ParseError> {
    for component in path.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut ok = !bytes.is_empty() && alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
        let mut i = 0;
        while ok && i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        }
        if !ok {
            return Err(ParseError(format!(
                "invalid repository name component {component:?} (lower-case letters, digits and separators only)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => r.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".to_string()),
            (
                "library/busybox",
                "docker.io/library/busybox:latest".to_string(),
            ),
            (
                "index.docker.io/foo/bar:v1",
                "docker.io/foo/bar:v1".to_string(),
            ),
            ("foo/bar", "docker.io/foo/bar:latest".to_string()),
            ("localhost/foo", "localhost/foo:latest".to_string()),
            ("localhost:5000/foo:v2", "localhost:5000/foo:v2".to_string()),
            (
                "127.0.0.1:5000/a/b/c:v1",
                "127.0.0.1:5000/a/b/c:v1".to_string(),
            ),
            (
                "quay.io/coreos/etcd",
                "quay.io/coreos/etcd:latest".to_string(),
            ),
            (
                &*format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                &*format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
            ("[::1]:5000/x:y", "[::1]:5000/x:y".to_string()),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "{input}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "foo//bar",
            "foo/-bar",
            "foo bar",
            "busybox@sha256:123",
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "host:port/x",
            "a/b__-c",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn api_host_and_manifest_ref() {
        let r = Reference::parse("busybox").expect("valid");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_ref(), "latest");
        assert!(!r.tag_given);
        let r = Reference::parse("127.0.0.1:5000/hello:v1").expect("valid");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.repository, "hello");
        assert!(r.tag_given);
    }
}
