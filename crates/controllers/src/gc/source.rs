//! Where the collector's view of the cluster comes from: a stream of [`Change`]s. The kinds
//! the controllers' shared informers already watch (pods, nodes, ReplicaSets, RCs,
//! Deployments, Services, Endpoints, EndpointSlices) come from those informers
//! ([`informer_changes`]), so no kind is watched twice in the process; every other stored
//! kind gets one metadata-only watch ([`metadata_watches`]: only `ObjectMeta` is asked for,
//! `Accept: application/json;as=PartialObjectMetadata`).

use baton_api::registry::{self, ResourceDef};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};

use super::graph::Kind;
use crate::informer::{self, Informer, Informers, Notice};

/// One change the collector hears of.
#[derive(Debug)]
pub enum Change {
    /// An object exists with this metadata (added, modified, or listed).
    Applied(Kind, ObjectMeta),
    /// An object was deleted.
    Deleted(Kind, ObjectMeta),
    /// A kind's watch (re)starts listing: what it lists until [`Change::Listed`] is all
    /// that exists of it.
    Relisting(Kind),
    /// A kind's list is complete.
    Listed(Kind),
}

/// The kinds the collector follows: every stored kind, each once.
pub fn kinds() -> Vec<Kind> {
    registry::RESOURCES
        .iter()
        .filter(|r| r.is_storage_version())
        .collect()
}

/// The `kube` dynamic type of a registry row.
pub fn api_resource(def: &ResourceDef) -> ApiResource {
    ApiResource {
        group: def.group.to_string(),
        version: def.version.to_string(),
        api_version: def.api_version(),
        kind: def.kind.to_string(),
        plural: def.resource.to_string(),
    }
}

/// The dynamic API of `kind`, in namespace `ns` when the kind is namespaced.
pub fn api_for(client: &kube::Client, kind: Kind, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = api_resource(kind);
    match ns.filter(|_| kind.namespaced) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Every change of every kind in `kinds`: from `informers` where one watches the kind,
/// from a metadata watch of its own otherwise.
pub fn changes(
    client: &kube::Client,
    kinds: &[Kind],
    informers: &Informers,
) -> impl Stream<Item = Change> + Send + 'static {
    let mut streams = Vec::new();
    let mut rest = Vec::new();
    for &kind in kinds {
        let i = informers;
        let shared = None
            .or_else(|| informer_changes(kind, &i.pods))
            .or_else(|| informer_changes(kind, &i.nodes))
            .or_else(|| informer_changes(kind, &i.replica_sets))
            .or_else(|| informer_changes(kind, &i.replication_controllers))
            .or_else(|| informer_changes(kind, &i.deployments))
            .or_else(|| informer_changes(kind, &i.stateful_sets))
            .or_else(|| informer_changes(kind, &i.controller_revisions))
            .or_else(|| informer_changes(kind, &i.persistent_volume_claims))
            .or_else(|| informer_changes(kind, &i.persistent_volumes))
            .or_else(|| informer_changes(kind, &i.storage_classes))
            .or_else(|| informer_changes(kind, &i.services))
            .or_else(|| informer_changes(kind, &i.endpoints))
            .or_else(|| informer_changes(kind, &i.endpoint_slices))
            .or_else(|| informer_changes(kind, &i.hpas));
        match shared {
            Some(s) => streams.push(s),
            None => rest.push(kind),
        }
    }
    streams.push(metadata_watches(client, &rest).boxed());
    futures::stream::select_all(streams)
}

/// The changes of `kind` as `informer` tells them, when it is `informer`'s kind (same group,
/// version and resource).
pub fn informer_changes<K: informer::Kind>(
    kind: Kind,
    informer: &Informer<K>,
) -> Option<futures::stream::BoxStream<'static, Change>> {
    let same = kind.api_version() == K::api_version(&())
        && kind.resource == K::plural(&())
        && kind.kind == K::kind(&());
    same.then(|| {
        // Projected as sent: the collector can fall behind, and then queues metadata only.
        informer
            .notices_as(move |n| match n {
                Notice::Applied(o) => Change::Applied(kind, o.meta().clone()),
                Notice::Deleted(o) => Change::Deleted(kind, o.meta().clone()),
                Notice::Synced => Change::Listed(kind),
            })
            .boxed()
    })
}

/// One metadata-only watch per kind in `kinds`, merged. Watch errors are logged and the
/// watch restarts with back-off.
pub fn metadata_watches(
    client: &kube::Client,
    kinds: &[Kind],
) -> impl Stream<Item = Change> + Send + 'static {
    let streams = kinds.iter().map(|&kind| {
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(client.clone(), &api_resource(kind));
        watcher(api, watcher::Config::default())
            .default_backoff()
            .filter_map(move |ev| async move {
                match ev {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        Some(Change::Applied(kind, o.metadata))
                    }
                    Ok(watcher::Event::Delete(o)) => Some(Change::Deleted(kind, o.metadata)),
                    Ok(watcher::Event::Init) => Some(Change::Relisting(kind)),
                    Ok(watcher::Event::InitDone) => Some(Change::Listed(kind)),
                    Err(e) => {
                        tracing::warn!(resource = kind.resource, error = %e, "garbage collector watch failed; retrying");
                        None
                    }
                }
            })
            .boxed()
    });
    futures::stream::select_all(streams)
}
