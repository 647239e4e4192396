//! Baton's traffic layer: what makes Services and Ingresses answer. Both proxies consume the
//! same [`model::Snapshot`]s (Services with their endpoints, Ingresses) built from the API's
//! watches, and each reports the snapshot version it has put live; the node's drain step uses
//! those reports to acknowledge a terminating pod as unrouted before its containers get SIGTERM.
//!
//! # Layout
//! - [`agent`]: the traffic agent of one machine: which of the parts below run, wired.
//! - [`feed`]: snapshots from the API's watches (Services, EndpointSlices, Ingresses).
//! - [`drain`]: the traffic Lease and the acknowledgements that let a node SIGTERM a pod.
//! - [`ingress`]: the Ingress HTTP reverse proxy: routes, keep-alive pools, retries, draining.
//! - [`model`]: the snapshot: Services, their ports and endpoints, Ingresses (pure).
//! - [`serviceproxy`]: Service ClusterIPs and NodePorts as one nftables table (kube-proxy's part).

pub mod agent;
pub mod drain;
pub mod feed;
pub mod ingress;
pub mod model;
pub mod serviceproxy;

pub use model::Snapshot;
