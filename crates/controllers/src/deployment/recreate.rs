//! Recreate (Kubernetes' `recreate.go`): scale every old ReplicaSet to zero, wait until
//! none of their pods runs any more, then scale the new one up. Pod events of a Recreate
//! Deployment wake it ([`waiting_on`]), so the last old pod's disappearance starts the new
//! version without waiting for a resync.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::sync::scale_rs;
use super::{Ctx, spec_replicas};
use crate::error::Error;
use crate::pods;

/// The Recreate Deployment a pod event concerns: the one owning the pod's ReplicaSet.
pub fn waiting_on(
    replica_sets: &Store<ReplicaSet>,
    deployments: &Store<Deployment>,
    pod: &Pod,
) -> Option<ObjectRef<Deployment>> {
    let ns = pod.namespace()?;
    let controller = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
                      kind: &str| {
        refs.iter()
            .find(|o| o.controller == Some(true) && o.kind == kind)
            .map(|o| o.name.clone())
    };
    let rs_name = controller(pod.owner_references(), "ReplicaSet")?;
    let rs = replica_sets.get(&ObjectRef::new(&rs_name).within(&ns))?;
    let d_name = controller(rs.owner_references(), "Deployment")?;
    let d = deployments.get(&ObjectRef::new(&d_name).within(&ns))?;
    let recreate = d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    recreate.then(|| ObjectRef::from_obj(d.as_ref()))
}

/// One Recreate step; true when it changed a ReplicaSet's size.
pub(super) async fn rollout(
    ctx: &Ctx<'_>,
    new: &ReplicaSet,
    olds: &[ReplicaSet],
) -> Result<bool, Error> {
    let mut changed = false;
    for o in olds.iter().filter(|o| spec_replicas(o) > 0) {
        changed |= scale_rs(ctx, o, 0).await?;
    }
    if changed {
        return Ok(true);
    }
    if olds
        .iter()
        .any(|o| o.status.as_ref().is_some_and(|s| s.replicas > 0))
    {
        return Ok(false);
    }
    // Old pods that still run (being deleted, say) keep the new version waiting.
    let ns = ctx.d.namespace().unwrap_or_default();
    let old_uids: Vec<String> = olds.iter().filter_map(|o| o.metadata.uid.clone()).collect();
    let old_running = ctx.shared.pods.store().find(|p| {
        p.metadata.namespace.as_deref() == Some(ns.as_str())
            && p.owner_references()
                .iter()
                .any(|r| old_uids.contains(&r.uid))
            && !matches!(pods::phase(p), "Succeeded" | "Failed")
    });
    if old_running.is_some() {
        return Ok(false);
    }
    scale_rs(ctx, new, ctx.d.spec.replicas.unwrap_or(1)).await
}
