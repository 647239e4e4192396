//! Pull policy and the Kubernetes default for it.

use std::fmt;
use std::str::FromStr;

use crate::reference::Reference;

/// A container's `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The API server's default for a container without a policy: `Always` when the tag is
    /// `latest` or there is neither tag nor digest, `IfNotPresent` otherwise (a digest pins
    /// the content, so it never needs re-resolving).
    pub fn default_for(image: &Reference) -> PullPolicy {
        let latest =
            image.tag.as_deref() == Some("latest") && (image.tag_given || image.digest.is_none());
        if latest {
            PullPolicy::Always
        } else {
            PullPolicy::IfNotPresent
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        })
    }
}

/// Parses the API spelling (`Always`, `IfNotPresent`, `Never`).
impl FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(PullPolicy::Always),
            "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Never" => Ok(PullPolicy::Never),
            other => Err(format!("unsupported pull policy {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_default_rule() {
        let d = format!("sha256:{}", "0".repeat(64));
        let cases = [
            ("busybox", PullPolicy::Always),
            ("busybox:latest", PullPolicy::Always),
            ("busybox:1.36", PullPolicy::IfNotPresent),
            ("127.0.0.1:5000/hello:v1", PullPolicy::IfNotPresent),
            (&*format!("busybox@{d}"), PullPolicy::IfNotPresent),
            (&*format!("busybox:v1@{d}"), PullPolicy::IfNotPresent),
            // Kubernetes looks at the tag only: latest stays Always even with a digest.
            (&*format!("busybox:latest@{d}"), PullPolicy::Always),
        ];
        for (image, want) in cases {
            let r = Reference::parse(image).expect("valid reference");
            assert_eq!(PullPolicy::default_for(&r), want, "{image}");
        }
    }

    #[test]
    fn parses_api_spelling() {
        assert_eq!("Never".parse::<PullPolicy>(), Ok(PullPolicy::Never));
        assert!("never".parse::<PullPolicy>().is_err());
    }
}
