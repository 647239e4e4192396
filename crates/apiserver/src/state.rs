//! Shared server state handed to every request handler.

use std::sync::Arc;

use baton_store::Store;

use crate::metrics::Metrics;

/// Largest request body accepted (Kubernetes' limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// The largest object stored, as JSON (Kubernetes' request limit; etcd's own is 1.5 MiB):
/// larger ones answer 413 however they were made (a body, a patch, YAML aliases).
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;
/// Operations in one JSON patch (Kubernetes' `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The admin bearer token; requests without it get 401.
    pub token: String,
    /// `host:port` clients reach the server at (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    pub metrics: Metrics,
    /// Held by Service writes from allocation to store, so cluster IPs and node ports stay
    /// unique under concurrent writes (see `services`).
    pub service_allocation: tokio::sync::Mutex<()>,
    /// The watches open now, bounded overall and per client.
    pub watches: Arc<crate::watch::Slots>,
    /// The RBAC rules every request is authorized against.
    pub rbac: crate::rbac::Authorizer,
}
