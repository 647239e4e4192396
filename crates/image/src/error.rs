//! The errors a user can cause or see, with the kubelet's reasons (`ErrImagePull`,
//! `ErrImageNeverPull`, `InvalidImageName`) so the runtime can put them in container status
//! as they are, and messages that carry the registry's own words.

use std::path::PathBuf;

/// What went wrong talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{reference}: not found")]
    NotFound { reference: String },
    #[error("{reference}: failed to connect to {host}: {message}")]
    Connect {
        reference: String,
        host: String,
        message: String,
    },
    #[error("{reference}: {message}")]
    Unauthorized { reference: String, message: String },
    #[error("{reference}: unexpected status {status} from {url}: {message}")]
    Status {
        reference: String,
        status: u16,
        url: String,
        message: String,
    },
    #[error("{reference}: {message}")]
    Transport { reference: String, message: String },
    #[error(
        "{reference}: digest mismatch for {what}: expected {expected}, got {actual} (corrupt content)"
    )]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{reference}: invalid {what}: {message}")]
    Invalid {
        reference: String,
        what: String,
        message: String,
    },
    #[error("{reference}: no manifest for linux/amd64 in the manifest list")]
    NoPlatform { reference: String },
    #[error("{reference}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    /// The pull would leave less free on the store's disk than is kept free.
    #[error("{reference}: not enough disk space for images on {message}")]
    NoSpace { reference: String, message: String },
    #[error("{reference}: {source}")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
}

/// Local storage failures: they name the path and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image index {path} is corrupt: {message}")]
    Index { path: PathBuf, message: String },
    #[error("unpacking layer {layer}: {message}")]
    Unpack { layer: String, message: String },
    #[error("layer {layer}: content digest {actual} does not match diff id {expected} (corrupt)")]
    DiffId {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("blob {digest} is missing from the store")]
    MissingBlob { digest: String },
    #[error("invalid image config {digest}: {message}")]
    Config { digest: String, message: String },
}

impl StoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}

/// The error of every public operation.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: {reason}"
    )]
    InvalidName { image: String, reason: String },
    #[error("Container image {image:?} is not present with pull policy of Never")]
    NeverPull { image: String },
    #[error("failed to pull image {image:?}: {source}")]
    Pull {
        image: String,
        #[source]
        source: Box<PullError>,
    },
    #[error("failed to import {path}: {message}")]
    Import { path: PathBuf, message: String },
    #[error("image {image:?} not found")]
    NotFound { image: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImageError {
    /// The kubelet's reason for a container waiting on this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::InvalidName { .. } => "InvalidImageName",
            ImageError::NeverPull { .. } => "ErrImageNeverPull",
            _ => "ErrImagePull",
        }
    }

    /// The message for container status (`state.waiting.message`) and events.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_messages_match_the_kubelet() {
        let never = ImageError::NeverPull {
            image: "hello:v1".into(),
        };
        assert_eq!(never.reason(), "ErrImageNeverPull");
        assert_eq!(
            never.message(),
            r#"Container image "hello:v1" is not present with pull policy of Never"#
        );
        let pull = ImageError::Pull {
            image: "127.0.0.1:5000/nope:v1".into(),
            source: Box::new(PullError::NotFound {
                reference: "127.0.0.1:5000/nope:v1".into(),
            }),
        };
        assert_eq!(pull.reason(), "ErrImagePull");
        assert_eq!(
            pull.message(),
            r#"failed to pull image "127.0.0.1:5000/nope:v1": 127.0.0.1:5000/nope:v1: not found"#
        );
        let bad = ImageError::InvalidName {
            image: "Bad".into(),
            reason: "x".into(),
        };
        assert_eq!(bad.reason(), "InvalidImageName");
    }
}
