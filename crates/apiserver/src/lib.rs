//! Baton's API server: the Kubernetes HTTP API over HTTPS, backed by any [`baton_store::Store`].
//!
//! # Layout
//! - [`server`]: TLS accept loop (client certificates checked against the cluster CA),
//!   top-level dispatch.
//! - [`auth`]: who a request is from (client certificate, admin token), impersonation.
//! - [`rbac`]: the RBAC authorizer asked on every request, its in-memory rules, the 403
//!   message, the ClusterRole aggregation controller.
//! - [`reviews`]: SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
//!   SelfSubjectRulesReview and SelfSubjectReview (`kubectl auth can-i`, `kubectl auth whoami`).
//! - [`route`]: URL → what it addresses.
//! - [`request`] / [`response`]: query parameters, body decoding, content negotiation, replies.
//! - [`json`]: JSON bytes as Kubernetes' (Go's) encoder writes them.
//! - [`protobuf`]: Kubernetes protobuf request bodies decoded into JSON.
//! - [`discovery`]: `/api`, `/apis`, resource lists, `/version`.
//! - [`handlers`]: get/list/create/update/patch/delete for resources and `status` (HTTP only).
//! - [`subresources`]: `scale`, `rollback`, `binding`, `finalize` (HTTP only).
//! - [`eviction`]: `pods/eviction` against the PodDisruptionBudgets.
//! - [`registry`]: every read and write of an object: read, list, create,
//!   `guaranteed_update` (the one read-modify-write retry on conflict), delete with
//!   Kubernetes' deletion semantics (`registry::deletion`).
//! - [`patch`]: JSON, merge and strategic merge patches applied to an object.
//! - [`nodeproxy`]: `pods/log`, `exec`, `attach`, `portforward`, proxied to the pod's node agent.
//! - [`kubelet`]: the one client of the node agents (their endpoint, a request with the
//!   server's token), used by `nodeproxy` and `metricsapi`.
//! - [`watch`]: streaming watches with bookmarks and `410 Gone`.
//! - [`tables`]: server-side Table output.
//! - [`objects`]: metadata machinery (uid, generation, resourceVersion, generateName).
//! - [`admission`]: namespace checks, the default IngressClass, Service allocations on
//!   create and update.
//! - [`services`]: Service cluster IPs and node ports, kept and dropped on update as
//!   Kubernetes does.
//! - [`bootstrap`]: default namespaces, the `kubernetes` Service, the `baton` IngressClass,
//!   the default ClusterRoles and their bindings.
//! - [`pki`]: CA, serving certificate, token and kubeconfig in the data dir.
//! - [`errors`]: `Status` errors.
//! - [`metrics`]: Prometheus `/metrics`.
//! - [`metricsapi`]: `metrics.k8s.io/v1beta1` (`kubectl top`) from the node agents' summaries.

pub mod admission;
pub mod auth;
pub mod bootstrap;
pub mod discovery;
pub mod errors;
pub mod eviction;
pub mod handlers;
pub mod json;
pub mod kubelet;
pub mod metrics;
pub mod metricsapi;
pub mod nodeproxy;
pub mod objects;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod request;
pub mod response;
pub mod reviews;
pub mod route;
pub mod server;
pub mod services;
pub mod state;
pub mod subresources;
pub mod tables;
pub mod watch;
pub mod yaml;

#[cfg(test)]
mod properties;

pub use server::{Config, Running, ServerError, start};
