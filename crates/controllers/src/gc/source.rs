//! Where the collector's view of the cluster comes from: a stream of [`Change`]s. For now
//! [`metadata_watches`] makes one metadata-only watch per stored kind (only `ObjectMeta`
//! crosses the wire: `Accept: application/json;as=PartialObjectMetadata`); the shared
//! informers can feed the same stream later without the collector changing.

use baton_api::registry::{self, ResourceDef};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};

use super::graph::Kind;

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
