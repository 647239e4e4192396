//! The garbage collector and the namespace lifecycle, as controllers over the API (they
//! used to run inside the API server against the store).
//!
//! The API server records a deletion request (`DeleteOptions.propagationPolicy` as the
//! `orphan` / `foregroundDeletion` finalizers, a namespace as Terminating); these finish it:
//! - [`graph`]: the ownership graph (pure), from the metadata of every object;
//! - [`source`]: the [`Change`](source::Change)s it is built from — the controllers' shared
//!   informers for the kinds they watch, one metadata-only watch for every other kind; the
//!   collector takes any stream of them;
//! - [`collector`]: background, foreground and orphan propagation;
//! - [`namespace`]: emptying a Terminating namespace and removing its `kubernetes` finalizer.

pub mod collector;
pub mod graph;
pub mod namespace;
pub mod source;

/// Runs the garbage collector and namespace controller on `client`, fed by the shared
/// `informers` and metadata watches of the other kinds, until they end (the caller stops it
/// at shutdown).
pub async fn run(client: kube::Client, informers: crate::informer::Informers) {
    let kinds = source::kinds();
    let changes = source::changes(&client, &kinds, &informers);
    collector::Collector::new(client, kinds).run(changes).await
}
