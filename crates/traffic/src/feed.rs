//! Builds [`Snapshot`]s from the API: watch-fed caches of Services, EndpointSlices and
//! Ingresses, and a new snapshot (next version) on every change that alters what is routed.
//! Bursts of changes coalesce into one snapshot; the proxies always get the latest.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, watch};

use crate::model::Snapshot;

/// Which Ingresses this node's proxy serves.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// The IngressClass name served (Baton's default class is `baton`).
    pub ingress_class: String,
    /// Serve Ingresses that name no class (the seed's do not).
    pub serve_classless: bool,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            ingress_class: "baton".into(),
            serve_classless: true,
        }
    }
}

/// Watches the API and publishes snapshots on `tx` until the task is dropped. The first
/// snapshot (version 1) is sent once every cache has been listed.
pub async fn run(client: Client, opts: FeedOptions, tx: watch::Sender<Arc<Snapshot>>) {
    let changed = Arc::new(Notify::new());
    let services: Store<Service> = cache(Api::all(client.clone()), changed.clone());
    let slices: Store<EndpointSlice> = cache(Api::all(client.clone()), changed.clone());
    let ingresses: Store<Ingress> = cache(Api::all(client), changed.clone());
    for ready in [
        services.wait_until_ready().await,
        slices.wait_until_ready().await,
        ingresses.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    let mut version = 0;
    let mut last: Option<Arc<Snapshot>> = None;
    loop {
        let snap = Snapshot::build(
            version + 1,
            &owned(&services),
            &owned(&slices),
            &owned(&ingresses),
            &opts.ingress_class,
            opts.serve_classless,
        );
        let same = last
            .as_ref()
            .is_some_and(|l| l.services == snap.services && l.ingresses == snap.ingresses);
        if !same {
            version += 1;
            let snap = Arc::new(snap);
            tracing::debug!(version, services = snap.services.len(), "traffic snapshot");
            last = Some(snap.clone());
            if tx.send(snap).is_err() {
                return;
            }
        }
        changed.notified().await;
    }
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}

/// A watch-fed cache of one kind that wakes `changed` on every change.
pub(crate) fn cache<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                // The store is complete again after a (re)list: one wake for all of it.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!(error = %e, "traffic watch error"),
            }
        }
    });
    store
}
