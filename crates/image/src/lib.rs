//! The node agent's image subsystem: pull images from OCI / Docker v2 registries, import
//! `docker save` and OCI-layout archives, keep them in a content-addressed store, and give
//! every image one flattened, read-only root filesystem that all of its containers share
//! (the runtime mounts an overlay on top of it).
//!
//! The runtime's entry points are [`ImageStore::ensure`] (pull policy applied; returns an
//! [`Image`] with `rootfs`, `config` and `id`), [`ImageStore::import`], [`ImageStore::list`],
//! [`ImageStore::remove`] and [`ImageStore::gc`]. Errors carry the kubelet's reason
//! ([`ImageError::reason`]: `ErrImagePull`, `ErrImageNeverPull`, `InvalidImageName`).
//!
//! ## Why a registry client of our own
//! `oci-client` was the first choice. It does speak plain http to listed hosts and the
//! bearer-token flow, but it brings reqwest 0.13 whose rustls feature builds aws-lc-rs (a C
//! and cmake build that costs minutes on the 2-core CI machine, next to the `ring` the rest of
//! the workspace uses), and its errors lose the registry's own wording that pod status must
//! show (`unauthorized: authentication required`). The distribution API a node needs is four
//! GETs and one challenge, so [`registry`] implements it in ~400 lines on hyper, hyper-util
//! and hyper-rustls (ring), all already in the workspace's dependency graph.
//!
//! ## Layout
//! - [`reference`]: image names normalised as Docker does (`busybox` →
//!   `docker.io/library/busybox:latest`).
//! - [`policy`]: `PullPolicy` and the Kubernetes default rule.
//! - [`auth`]: docker config JSON credentials (pull secrets) and `WWW-Authenticate` parsing.
//! - [`registry`]: the HTTP client: manifests, blobs, auth, http for loopback/insecure hosts.
//! - [`manifest`]: OCI / Docker schema 2 manifests, indexes, configs, platform choice.
//! - [`store`]: the on-disk store (blobs, index, rootfs dirs), list, remove, gc.
//! - [`pull`]: `ensure` and `pull`.
//! - [`space`]: free space and the share of it kept free (pulls refused below it).
//! - [`archive`]: `import` of `docker save` and OCI layout tarballs.
//! - [`unpack`]: layer application with whiteouts and path-escape protection.
//! - [`digest`]: sha256 digests and hashing readers/writers.
//! - [`error`]: `ImageError` with kubelet reasons.
//! - [`cli`]: `baton image import|ls|rm|pull`.

pub mod archive;
pub mod auth;
pub mod cli;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod policy;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod space;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod properties;

pub use auth::{Credentials, RegistryAuth};
pub use error::{ImageError, PullError, StoreError};
pub use policy::PullPolicy;
pub use reference::Reference;
pub use space::{MinFree, Space};
pub use store::{GcReport, Image, ImageConfig, ImageStore, ImageSummary};
pub use unpack::UnpackLimits;

/// Parses an image name as the kubelet does, with its `InvalidImageName` error.
pub fn parse_reference(image: &str) -> Result<Reference, ImageError> {
    Reference::parse(image).map_err(|e| ImageError::InvalidName {
        image: image.to_string(),
        reason: e.0,
    })
}
