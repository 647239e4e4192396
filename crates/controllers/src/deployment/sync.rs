//! One sync of a Deployment (Kubernetes' `sync.go` and `syncDeployment`): its ReplicaSets
//! from the shared cache (overlaid with this controller's writes the cache does not show
//! yet), the new ReplicaSet found or created with the next revision, proportional scaling
//! when the size changed, the strategy's step (`rolling.rs`, `recreate.rs`), history
//! cleanup, and the status from `status.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;

use super::{
    Ctx, DESIRED, HASH_LABEL, MAX_REPLICAS, NOT_COPIED, REVISION, REVISION_HISTORY, ROLLBACK_TO,
    Shared, available, hash, recreate, rollback, rolling, same_template, spec_replicas, status,
};
use crate::error::{self, Error};
use baton_api::events::Kind;

/// The resourceVersion as a number (Baton's and etcd's are), if it is one.
fn version(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata.resource_version.as_deref()?.parse().ok()
}

/// The Deployment's ReplicaSets: from the cache, each replaced by the object one of our
/// writes returned while the cache has not caught up with it (and ReplicaSets we created
/// that the cache does not hold yet), oldest first.
fn owned_replica_sets(shared: &Shared, ns: &str, uid: &str) -> Vec<ReplicaSet> {
    let mut written = shared.written.lock().unwrap_or_else(|p| p.into_inner());
    // The cache has seen these writes (or later ones): it is the newer view.
    written.retain(|_, rs| version(rs).is_some_and(|v| !shared.replica_sets.seen(&v.to_string())));
    let ours = |rs: &ReplicaSet| {
        rs.metadata.namespace.as_deref() == Some(ns)
            && rs
                .owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
    };
    let mut all: Vec<ReplicaSet> = shared
        .replica_sets
        .store()
        .state_filter(|rs| ours(rs))
        .into_iter()
        .map(|rs| {
            rs.metadata
                .uid
                .as_ref()
                .and_then(|u| written.get(u))
                .cloned()
                .unwrap_or_else(|| rs.as_ref().clone())
        })
        .collect();
    for rs in written.values().filter(|rs| ours(rs)) {
        if !all.iter().any(|a| a.metadata.uid == rs.metadata.uid) {
            all.push(rs.clone());
        }
    }
    all.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then(a.name_any().cmp(&b.name_any()))
    });
    all
}

/// `sets` with each one this sync wrote replaced by what the API server returned.
fn as_written(shared: &Shared, sets: impl IntoIterator<Item = ReplicaSet>) -> Vec<ReplicaSet> {
    let written = shared.written.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<ReplicaSet> = Vec::new();
    for rs in sets {
        if out.iter().any(|o| o.metadata.uid == rs.metadata.uid) {
            continue;
        }
        let newer = rs
            .metadata
            .uid
            .as_ref()
            .and_then(|u| written.get(u))
            .filter(|w| version(w) > version(&rs));
        out.push(newer.cloned().unwrap_or(rs));
    }
    out
}

/// Reconciles one Deployment.
pub(super) async fn reconcile(d: Arc<Deployment>, shared: Arc<Shared>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let client = &shared.client;
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let all = owned_replica_sets(&shared, &ns, &uid);

    if let Some(to) = d.annotations().get(ROLLBACK_TO) {
        return rollback::rollback(client, &shared.events, &d, &all, to).await;
    }
    let replicas = d.spec.replicas.unwrap_or(1);
    let strategy = d.spec.strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("Recreate");
    let ru = strategy.rolling_update.unwrap_or_default();
    let (surge, unavail) =
        rolling::resolve_fenceposts(ru.max_surge.as_ref(), ru.max_unavailable.as_ref(), replicas);
    let ctx = Ctx {
        shared: &shared,
        client,
        d: &d,
        rs_api,
        max_surge: if rolling { surge } else { 0 },
        max_unavailable: rolling::max_unavailable(rolling, replicas, unavail),
        rolling,
    };
    let paused = d.spec.paused == Some(true);
    let mut new_rs = all.iter().find(|rs| same_template(rs, &d)).cloned();
    let olds: Vec<ReplicaSet> = all
        .iter()
        .filter(|rs| Some(rs.name_any()) != new_rs.as_ref().map(|n| n.name_any()))
        .cloned()
        .collect();
    let max_old_rev = olds.iter().map(super::revision).max().unwrap_or(0);

    if !paused {
        match new_rs.as_mut() {
            Some(rs) => sync_revision(&ctx, rs, max_old_rev).await?,
            None => {
                let initial = if rolling {
                    let total: i32 = olds.iter().map(spec_replicas).sum();
                    rolling::new_rs_new_replicas(replicas, ctx.max_surge, total, 0)
                } else {
                    0
                };
                new_rs = Some(create_new_rs(&ctx, max_old_rev + 1, initial).await?);
            }
        }
    }
    let mut changed = false;
    if paused || is_scaling_event(&ctx, new_rs.as_ref(), &olds) {
        changed = scale(&ctx, new_rs.as_ref(), &olds).await?;
    } else if let Some(new) = new_rs.as_ref() {
        changed = if rolling {
            rolling::rollout(&ctx, new, &olds).await?
        } else {
            recreate::rollout(&ctx, new, &olds).await?
        };
    }
    // The ReplicaSets as this sync left them, so the status reflects what it just did.
    let all_now = as_written(&shared, all.iter().cloned().chain(new_rs.clone()));
    let new_name = new_rs.as_ref().map(|r| r.name_any());
    let out = status::calculate(&status::Input {
        deployment: &d,
        replica_sets: &all_now,
        new_rs: new_name.as_deref(),
        max_unavailable: ctx.max_unavailable,
        now: baton_api::clock::now(),
    });
    if out.complete || paused {
        cleanup(&ctx, &all_now, new_name.as_deref()).await?;
    }
    let status_before = d.status.clone().unwrap_or_default();
    if comparable(&out.status) != comparable(&status_before) {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let patch = serde_json::json!({ "status": out.status });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => {
                return Err(Error::api(format!(
                    "updating status of deployment {ns}/{name}"
                ))(e));
            }
        }
    }
    // Annotate the deployment with the new RS's revision.
    if let Some(n) = new_rs.as_ref() {
        let rev = n.annotations().get(REVISION).cloned().unwrap_or_default();
        if d.annotations().get(REVISION) != Some(&rev) && !rev.is_empty() {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
            let patch = serde_json::json!({"metadata": {"annotations": {REVISION: rev}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::api(format!("annotating deployment {ns}/{name}")))?;
        }
    }
    Ok(match out.recheck {
        Some(d) => Action::requeue(d),
        None if changed => Action::requeue(Duration::from_millis(200)),
        None => Action::requeue(Duration::from_secs(60)),
    })
}

/// The status without timestamps that only move when something else changed.
fn comparable(s: &DeploymentStatus) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or_default()
}

fn new_rs_annotations(
    d: &Deployment,
    revision: i64,
    replicas: i32,
    max_surge: i32,
) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = d
        .annotations()
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    a.insert(REVISION.into(), revision.to_string());
    a.insert(DESIRED.into(), replicas.to_string());
    a.insert(MAX_REPLICAS.into(), (replicas + max_surge).to_string());
    a
}

async fn create_new_rs(ctx: &Ctx<'_>, revision: i64, initial: i32) -> Result<ReplicaSet, Error> {
    let d = ctx.d;
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = hash::compute(&d.spec.template, collision);
    let name = format!("{}-{hash}", d.name_any());
    let mut template = d.spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.clone());
    let mut selector: LabelSelector = d.spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.clone());
    let replicas = d.spec.replicas.unwrap_or(1);
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.namespace(),
            labels: meta.labels.clone(),
            annotations: Some(new_rs_annotations(d, revision, replicas, ctx.max_surge)),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: d.name_any(),
                uid: d.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(initial),
            min_ready_seconds: d.spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    };
    match ctx.rs_api.create(&PostParams::default(), &rs).await {
        Ok(created) => {
            ctx.wrote(&created);
            if initial > 0 {
                ctx.shared.events.publish(
                    d,
                    Kind::Normal,
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {name} to {initial}"),
                );
            }
            Ok(created)
        }
        Err(e) if error::is_conflict(&e) => {
            // AlreadyExists: ours with our template is fine; anything else is a collision.
            let existing = ctx
                .rs_api
                .get(&name)
                .await
                .map_err(Error::api(format!("reading replica set {name}")))?;
            let ours = existing
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == d.metadata.uid.as_ref());
            if ours && same_template(&existing, d) {
                return Ok(existing);
            }
            let api: Api<Deployment> =
                Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
            let patch =
                serde_json::json!({"status": {"collisionCount": collision.unwrap_or(0) + 1}});
            api.patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(Error::api("bumping collisionCount"))?;
            Err(Error::Invalid(format!(
                "hash collision for replica set {name}"
            )))
        }
        Err(e) => Err(Error::api(format!("creating replica set {name}"))(e)),
    }
}

/// An existing new RS whose revision is behind gets the next one, keeping its history.
async fn sync_revision(ctx: &Ctx<'_>, rs: &mut ReplicaSet, max_old_rev: i64) -> Result<(), Error> {
    let cur = super::revision(rs);
    if cur > max_old_rev {
        return Ok(());
    }
    let mut ann = serde_json::Map::new();
    ann.insert(REVISION.into(), (max_old_rev + 1).to_string().into());
    if cur > 0 {
        let hist = rs
            .annotations()
            .get(REVISION_HISTORY)
            .filter(|h| !h.is_empty())
            .map(|h| format!("{h},{cur}"))
            .unwrap_or_else(|| cur.to_string());
        if hist.len() <= 2000 {
            ann.insert(REVISION_HISTORY.into(), hist.into());
        }
    }
    for (k, v) in ctx
        .d
        .annotations()
        .iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
    {
        ann.insert(k.clone(), v.clone().into());
    }
    let patch = serde_json::json!({"metadata": {"annotations": ann}});
    *rs = ctx
        .rs_api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api("updating replica set revision"))?;
    ctx.wrote(rs);
    Ok(())
}

/// Sets an RS's size with the desired/max annotations and the ScalingReplicaSet event.
pub(super) async fn scale_rs(ctx: &Ctx<'_>, rs: &ReplicaSet, size: i32) -> Result<bool, Error> {
    let replicas = ctx.d.spec.replicas.unwrap_or(1);
    let from = spec_replicas(rs);
    let desired = replicas.to_string();
    let max = (replicas + ctx.max_surge).to_string();
    let annotated = rs.annotations().get(DESIRED) == Some(&desired)
        && rs.annotations().get(MAX_REPLICAS) == Some(&max);
    if from == size && annotated {
        return Ok(false);
    }
    let patch = serde_json::json!({"metadata": {"annotations": {DESIRED: desired, MAX_REPLICAS: max}}, "spec": {"replicas": size}});
    let scaled = ctx
        .rs_api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(format!("scaling replica set {}", rs.name_any())))?;
    ctx.wrote(&scaled);
    if from != size {
        let dir = if size > from { "up" } else { "down" };
        ctx.shared.events.publish(
            ctx.d,
            Kind::Normal,
            "ScalingReplicaSet",
            format!(
                "Scaled {dir} replica set {} to {size} from {from}",
                rs.name_any()
            ),
        );
    }
    Ok(from != size)
}

fn is_scaling_event(ctx: &Ctx<'_>, new: Option<&ReplicaSet>, olds: &[ReplicaSet]) -> bool {
    let want = ctx.d.spec.replicas.unwrap_or(1).to_string();
    new.into_iter()
        .chain(olds.iter())
        .filter(|rs| spec_replicas(rs) > 0)
        .any(|rs| rs.annotations().get(DESIRED).is_some_and(|v| *v != want))
}

/// Proportional scaling (`scale`): resize while keeping the old/new split.
async fn scale(
    ctx: &Ctx<'_>,
    new: Option<&ReplicaSet>,
    olds: &[ReplicaSet],
) -> Result<bool, Error> {
    let replicas = ctx.d.spec.replicas.unwrap_or(1);
    let mut active: Vec<&ReplicaSet> = new
        .into_iter()
        .chain(olds.iter())
        .filter(|rs| spec_replicas(rs) > 0)
        .collect();
    if active.len() <= 1 {
        let target = active.first().copied().or(new).or_else(|| olds.last());
        return match target {
            Some(rs) => scale_rs(ctx, rs, replicas).await,
            None => Ok(false),
        };
    }
    if let Some(n) = new.filter(|n| spec_replicas(n) == replicas && available(n) == replicas) {
        let _ = n;
        let mut changed = false;
        for o in olds.iter().filter(|o| spec_replicas(o) > 0) {
            changed |= scale_rs(ctx, o, 0).await?;
        }
        return Ok(changed);
    }
    if !ctx.rolling {
        return Ok(false);
    }
    let allowed = if replicas > 0 {
        replicas + ctx.max_surge
    } else {
        0
    };
    let total: i32 = active.iter().map(|r| spec_replicas(r)).sum();
    let to_add = allowed - total;
    if to_add == 0 {
        return Ok(false);
    }
    let created = |r: &ReplicaSet| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    active.sort_by(|a, b| {
        spec_replicas(b).cmp(&spec_replicas(a)).then(if to_add > 0 {
            created(b).cmp(&created(a))
        } else {
            created(a).cmp(&created(b))
        })
    });
    let status_replicas = ctx.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut sizes: Vec<i32> = Vec::new();
    let mut added = 0;
    for rs in &active {
        let annotated = rs
            .annotations()
            .get(MAX_REPLICAS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(status_replicas);
        let p = rolling::proportion(
            spec_replicas(rs),
            to_add,
            added,
            replicas,
            ctx.max_surge,
            annotated,
        );
        sizes.push(spec_replicas(rs) + p);
        added += p;
    }
    if let Some(first) = sizes.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    let mut changed = false;
    for (rs, size) in active.iter().zip(sizes) {
        changed |= scale_rs(ctx, rs, size).await?;
    }
    Ok(changed)
}

/// Deletes the oldest unused ReplicaSets beyond revisionHistoryLimit.
async fn cleanup(ctx: &Ctx<'_>, all: &[ReplicaSet], new: Option<&str>) -> Result<(), Error> {
    let limit = ctx.d.spec.revision_history_limit.unwrap_or(i32::MAX);
    if limit == i32::MAX {
        return Ok(());
    }
    let mut old: Vec<&ReplicaSet> = all
        .iter()
        .filter(|r| Some(r.name_any().as_str()) != new)
        .collect();
    if old.len() as i32 <= limit {
        return Ok(());
    }
    old.sort_by_key(|r| super::revision(r));
    let excess = old.len() - limit.max(0) as usize;
    for rs in old.into_iter().take(excess) {
        let st = rs.status.clone().unwrap_or_default();
        if spec_replicas(rs) != 0
            || st.replicas != 0
            || st.observed_generation < rs.metadata.generation
        {
            continue;
        }
        match ctx
            .rs_api
            .delete(&rs.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(format!(
                    "deleting old replica set {}",
                    rs.name_any()
                ))(e));
            }
        }
    }
    Ok(())
}
