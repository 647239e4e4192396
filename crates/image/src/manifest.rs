//! OCI and Docker schema 2 manifests, indexes and image configs: the subset of fields the
//! node needs, one set of types for both families (their JSON shapes are the same).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the node asks registries for, best first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The platform the node runs.
pub const OS: &str = "linux";
pub const ARCH: &str = "amd64";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// The document kind, from the Content-Type or the document's own `mediaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

/// Classifies a manifest document. `content_type` wins unless it is missing or generic.
pub fn kind_of(content_type: Option<&str>, body: &[u8]) -> Result<Kind, String> {
    let ct = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
    let from_media = |m: &str| match m {
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    };
    if let Some(k) = ct.and_then(from_media) {
        return Ok(k);
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(k) = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .and_then(from_media)
    {
        return Ok(k);
    }
    if v.get("manifests").is_some() {
        return Ok(Kind::Index);
    }
    if v.get("config").is_some() && v.get("layers").is_some() {
        return Ok(Kind::Manifest);
    }
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .or(ct)
        .unwrap_or("unknown");
    Err(format!("unsupported manifest media type {mt:?}"))
}

/// Picks the linux/amd64 entry of an index (an entry without a platform counts as a match
/// only when it is the sole entry, as single-image OCI layouts have).
pub fn select_platform(index: &Index) -> Option<&Descriptor> {
    let manifests: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| !matches!(d.media_type.as_str(), OCI_INDEX | DOCKER_LIST))
        .collect();
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == OS && p.architecture == ARCH)
        })
        .copied()
        .or_else(|| {
            if manifests.len() == 1 && manifests[0].platform.is_none() {
                Some(manifests[0])
            } else {
                None
            }
        })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// The compression a layer media type says, or `None` for unsupported types (zstd,
/// foreign layers). Unknown media types are sniffed when unpacking.
pub fn layer_compression(media_type: &str) -> Result<Option<Compression>, String> {
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Ok(Some(Compression::Gzip)),
        OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => {
            Ok(Some(Compression::None))
        }
        m if m.ends_with("+zstd") || m.contains("foreign") || m.contains("nondistributable") => {
            Err(format!("unsupported layer media type {m:?}"))
        }
        _ => Ok(None),
    }
}

/// The image config document (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The run defaults of an image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(os: &str, arch: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", if arch == ARCH { "a" } else { "b" }.repeat(64)),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: None,
            }),
            annotations: None,
        }
    }

    #[test]
    fn picks_linux_amd64() {
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                desc("linux", "arm64"),
                desc("windows", "amd64"),
                desc("linux", "amd64"),
            ],
        };
        assert_eq!(
            select_platform(&idx).map(|d| d.platform.clone()),
            Some(desc("linux", "amd64").platform)
        );
        let none = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![desc("linux", "arm64")],
        };
        assert!(select_platform(&none).is_none());
    }

    #[test]
    fn classifies_documents() {
        assert_eq!(kind_of(Some(DOCKER_LIST), b"{}"), Ok(Kind::Index));
        assert_eq!(
            kind_of(Some("application/json"), br#"{"manifests":[]}"#),
            Ok(Kind::Index)
        );
        assert_eq!(
            kind_of(
                None,
                br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
            ),
            Ok(Kind::Manifest)
        );
        assert!(kind_of(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).is_err());
    }

    #[test]
    fn run_config_field_names() {
        let c: ConfigFile = serde_json::from_str(
            r#"{"config":{"Entrypoint":["/bin/busybox","httpd"],"Cmd":null,"Env":["PATH=/bin"],
               "WorkingDir":"/www","User":"1000","ExposedPorts":{"8080/tcp":{}}},
               "rootfs":{"type":"layers","diff_ids":["sha256:x"]}}"#,
        )
        .expect("valid");
        let rc = c.config.expect("config");
        assert_eq!(
            rc.entrypoint,
            Some(vec!["/bin/busybox".to_string(), "httpd".to_string()])
        );
        assert_eq!(rc.working_dir.as_deref(), Some("/www"));
        assert!(rc.exposed_ports.is_some_and(|p| p.contains_key("8080/tcp")));
    }
}
