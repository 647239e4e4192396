//! Namespace lifecycle, as Kubernetes' namespace controller: a Terminating namespace (one
//! with a deletionTimestamp) has everything in it deleted, kind by kind with
//! `deletecollection`; once nothing is left, its `kubernetes` finalizer is removed through the
//! `finalize` subresource, which completes its deletion.
//!
//! What is left is read from the collector's graph; before finalizing, one `deletecollection`
//! per namespaced kind confirms the namespace is empty (an object created just before the
//! namespace turned Terminating may not have reached the graph yet).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::graph::{Graph, Kind};
use super::source::api_for;
use crate::error::{Error, is_conflict, is_not_found};

/// The finalizer the namespace controller owns.
pub const KUBERNETES: &str = "kubernetes";

/// Empties namespace `name` if it is Terminating, and finalizes it once empty.
pub async fn sync(
    client: &kube::Client,
    graph: &Graph,
    kinds: &[Kind],
    name: &str,
) -> Result<(), Error> {
    if !graph.namespace(name).is_some_and(|n| n.deleting) {
        return Ok(());
    }
    let left = graph.in_namespace(name);
    if !left.is_empty() {
        // Each kind that still has objects not yet being deleted.
        let kinds: BTreeMap<&str, Kind> = left
            .iter()
            .filter(|n| !n.deleting)
            .map(|n| (n.kind.resource, n.kind))
            .collect();
        for kind in kinds.into_values() {
            delete_all(client, kind, name).await?;
        }
        return Ok(());
    }
    let mut found = 0;
    for kind in kinds.iter().filter(|k| k.namespaced) {
        found += delete_all(client, kind, name).await?;
    }
    if found > 0 {
        // Their deletions will arrive as changes, and sync again.
        return Ok(());
    }
    finalize(client, name).await
}

/// `deletecollection` of one kind in the namespace (background propagation); returns how
/// many objects it found.
async fn delete_all(client: &kube::Client, kind: Kind, ns: &str) -> Result<usize, Error> {
    let dp = DeleteParams::background();
    match api_for(client, kind, Some(ns))
        .delete_collection(&dp, &ListParams::default())
        .await
    {
        Ok(either) => Ok(either.left().map(|l| l.items.len()).unwrap_or(0)),
        Err(e) if is_not_found(&e) => Ok(0),
        Err(e) => Err(Error::api(format!(
            "deleting {} in namespace {ns}",
            kind.resource
        ))(e)),
    }
}

/// Removes the `kubernetes` finalizer through `namespaces/{name}/finalize`.
async fn finalize(client: &kube::Client, name: &str) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = match api.get_opt(name).await {
        Ok(Some(ns)) => ns,
        Ok(None) => return Ok(()),
        Err(e) => return Err(Error::api(format!("reading namespace {name}"))(e)),
    };
    let Some(spec) = ns.spec.as_mut() else {
        return Ok(());
    };
    let fins = spec.finalizers.get_or_insert_with(Vec::new);
    if !fins.iter().any(|f| f == KUBERNETES) {
        return Ok(());
    }
    fins.retain(|f| f != KUBERNETES);
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = name, "namespace finalized");
            Ok(())
        }
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("finalizing namespace {name}"))(e)),
    }
}
