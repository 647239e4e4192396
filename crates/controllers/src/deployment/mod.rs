//! The Deployment controller: owns ReplicaSets named `<deployment>-<pod-template-hash>`,
//! rolls between them (RollingUpdate or Recreate) with Kubernetes' arithmetic, keeps the
//! revision annotations, honours the legacy rollback request, trims history, and reports
//! status and conditions so `kubectl rollout status` reads exactly as against Kubernetes.
//!
//! - [`rolling`]: the pure rollout arithmetic.
//! - [`hash`]: the pod-template-hash.
//! - [`progress`]: status counts and the Available/Progressing conditions.

pub mod hash;
pub mod progress;
pub mod rolling;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::events::{self, Kind};
use crate::pods;

const COMPONENT: &str = "deployment-controller";
const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Deployment annotations not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    ROLLBACK_TO,
];

/// Runs the Deployment controller.
pub async fn run(client: Client) {
    Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
    .run(reconcile, error::policy, Arc::new(client))
    .for_each(|_| async {})
    .await;
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The template without the hash label, for comparing against the deployment's.
pub fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(HASH_LABEL);
    }
    t
}

fn same_template(rs: &ReplicaSet, d: &Deployment) -> bool {
    rs.spec
        .template
        .as_ref()
        .is_some_and(|t| templates_equal(t, &d.spec.template))
}

/// Kubernetes' semantic equality of templates, ignoring the hash label: absent, null, empty
/// objects and empty lists are all the same (`resources: {}` equals no `resources`).
pub fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let canon = |t: &PodTemplateSpec| {
        hash::prune(serde_json::to_value(without_hash(t)).unwrap_or_default())
    };
    canon(a) == canon(b)
}

struct Ctx<'a> {
    client: &'a Client,
    d: &'a Deployment,
    rs_api: Api<ReplicaSet>,
    max_surge: i32,
    max_unavailable: i32,
    rolling: bool,
}

async fn reconcile(d: Arc<Deployment>, client: Arc<Client>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.as_ref().clone(), &ns);
    let mut all: Vec<ReplicaSet> = rs_api
        .list(&ListParams::default())
        .await
        .map_err(Error::api(format!(
            "listing replica sets for deployment {ns}/{name}"
        )))?
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect();
    all.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then(a.name_any().cmp(&b.name_any()))
    });

    if let Some(to) = d.annotations().get(ROLLBACK_TO) {
        return rollback(client.as_ref(), &d, &all, to).await;
    }
    let replicas = d.spec.replicas.unwrap_or(1);
    let strategy = d.spec.strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("Recreate");
    let ru = strategy.rolling_update.unwrap_or_default();
    let (surge, unavail) =
        rolling::resolve_fenceposts(ru.max_surge.as_ref(), ru.max_unavailable.as_ref(), replicas);
    let ctx = Ctx {
        client: client.as_ref(),
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
    let max_old_rev = olds.iter().map(revision).max().unwrap_or(0);

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
    let status_before = d.status.clone().unwrap_or_default();
    let mut changed = false;
    if paused || is_scaling_event(&ctx, new_rs.as_ref(), &olds) {
        changed = scale(&ctx, new_rs.as_ref(), &olds).await?;
    } else if let Some(new) = new_rs.as_ref() {
        changed = if rolling {
            rollout_rolling(&ctx, new, &olds).await?
        } else {
            rollout_recreate(&ctx, new, &olds).await?
        };
    }
    // Re-read after scaling so the status reflects what we just did.
    let all_now: Vec<ReplicaSet> = if changed {
        let mut v = Vec::new();
        for rs in all.iter().chain(new_rs.iter()) {
            if let Ok(fresh) = ctx.rs_api.get(&rs.name_any()).await
                && !v
                    .iter()
                    .any(|x: &ReplicaSet| x.name_any() == fresh.name_any())
            {
                v.push(fresh);
            }
        }
        v
    } else {
        let mut v = all.clone();
        if let Some(n) = new_rs
            .as_ref()
            .filter(|n| !all.iter().any(|a| a.name_any() == n.name_any()))
        {
            v.push(n.clone());
        }
        v
    };
    let new_name = new_rs.as_ref().map(|r| r.name_any());
    let new_now = all_now.iter().find(|r| Some(r.name_any()) == new_name);
    let now = Timestamp::now();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(
            all_now
                .iter()
                .map(|r| r.status.as_ref().map_or(0, |s| s.replicas))
                .sum(),
        ),
        updated_replicas: Some(
            new_now
                .and_then(|r| r.status.as_ref())
                .map_or(0, |s| s.replicas),
        ),
        ready_replicas: Some(
            all_now
                .iter()
                .map(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0)
                })
                .sum(),
        ),
        available_replicas: Some(all_now.iter().map(available).sum()),
        collision_count: status_before.collision_count,
        conditions: status_before.conditions.clone(),
        ..Default::default()
    };
    let spec_total: i32 = all_now.iter().map(spec_replicas).sum();
    status.unavailable_replicas =
        Some((spec_total - status.available_replicas.unwrap_or(0)).max(0));
    progress::sync_available(&mut status, replicas, ctx.max_unavailable, now);
    let rollout = progress::Rollout {
        replicas,
        deadline: d.spec.progress_deadline_seconds,
        new_rs: new_name.as_deref(),
        generation: d.metadata.generation,
        paused,
    };
    if paused {
        progress::set(
            &mut status,
            progress::condition(
                "Progressing",
                "Unknown",
                progress::PAUSED,
                "Deployment is paused".into(),
                now,
            ),
        );
    } else if progress::get(&status, "Progressing")
        .is_some_and(|c| c.reason.as_deref() == Some(progress::PAUSED))
    {
        progress::set(
            &mut status,
            progress::condition(
                "Progressing",
                "Unknown",
                progress::RESUMED,
                "Deployment is resumed".into(),
                now,
            ),
        );
    }
    if let Some(n) = new_rs.as_ref().filter(|_| !paused) {
        let cond = progress::get(&status, "Progressing").and_then(|c| c.reason.clone());
        if cond.is_none() || cond.as_deref() == Some(progress::RESUMED) {
            progress::set(
                &mut status,
                progress::condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{}\"", n.name_any()),
                    now,
                ),
            );
        }
    }
    let recheck = progress::sync_progressing(&rollout, &status_before, &mut status, now);
    let complete = progress::complete(&rollout, &status);
    if complete || paused {
        cleanup(&ctx, &all_now, new_name.as_deref()).await?;
    }
    if comparable(&status) != comparable(&status_before) {
        let api: Api<Deployment> = Api::namespaced(client.as_ref().clone(), &ns);
        let patch = serde_json::json!({ "status": status });
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
            let api: Api<Deployment> = Api::namespaced(client.as_ref().clone(), &ns);
            let patch = serde_json::json!({"metadata": {"annotations": {REVISION: rev}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::api(format!("annotating deployment {ns}/{name}")))?;
        }
    }
    Ok(match recheck {
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
            if initial > 0 {
                events::record(
                    ctx.client,
                    COMPONENT,
                    d,
                    Kind::Normal,
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {name} to {initial}"),
                )
                .await;
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
    let cur = revision(rs);
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
    Ok(())
}

/// Sets an RS's size with the desired/max annotations and the ScalingReplicaSet event.
async fn scale_rs(ctx: &Ctx<'_>, rs: &ReplicaSet, size: i32) -> Result<bool, Error> {
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
    ctx.rs_api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(format!("scaling replica set {}", rs.name_any())))?;
    if from != size {
        let dir = if size > from { "up" } else { "down" };
        events::record(
            ctx.client,
            COMPONENT,
            ctx.d,
            Kind::Normal,
            "ScalingReplicaSet",
            format!(
                "Scaled {dir} replica set {} to {size} from {from}",
                rs.name_any()
            ),
        )
        .await;
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

async fn rollout_rolling(
    ctx: &Ctx<'_>,
    new: &ReplicaSet,
    olds: &[ReplicaSet],
) -> Result<bool, Error> {
    let replicas = ctx.d.spec.replicas.unwrap_or(1);
    let all_total: i32 =
        new.spec.replicas.unwrap_or(0) + olds.iter().map(spec_replicas).sum::<i32>();
    let new_size =
        rolling::new_rs_new_replicas(replicas, ctx.max_surge, all_total, spec_replicas(new));
    if scale_rs(ctx, new, new_size).await? {
        return Ok(true);
    }
    let active_olds: Vec<&ReplicaSet> = olds.iter().filter(|o| spec_replicas(o) > 0).collect();
    if active_olds.is_empty() {
        return Ok(false);
    }
    let min_available = replicas - ctx.max_unavailable;
    let budget =
        rolling::max_scaled_down(all_total, min_available, spec_replicas(new), available(new));
    if budget <= 0 {
        return Ok(false);
    }
    let views: Vec<rolling::Old> = active_olds
        .iter()
        .map(|o| rolling::Old {
            spec: spec_replicas(o),
            available: available(o),
        })
        .collect();
    let (sizes, cleaned) = rolling::cleanup_unhealthy(&views, budget);
    let total_available: i32 = available(new) + olds.iter().map(available).sum::<i32>();
    let (sizes, _) = rolling::scale_down_old(&sizes, total_available, min_available);
    let _ = cleaned;
    let mut changed = false;
    for (o, size) in active_olds.iter().zip(sizes) {
        changed |= scale_rs(ctx, o, size).await?;
    }
    Ok(changed)
}

async fn rollout_recreate(
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
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = pods
        .list(&ListParams::default())
        .await
        .map_err(Error::api("listing pods for recreate"))?;
    let old_uids: Vec<String> = olds.iter().filter_map(|o| o.metadata.uid.clone()).collect();
    let old_running = listed.items.iter().any(|p| {
        p.owner_references()
            .iter()
            .any(|r| old_uids.contains(&r.uid))
            && !matches!(pods::phase(p), "Succeeded" | "Failed")
    });
    if old_running {
        return Ok(false);
    }
    scale_rs(ctx, new, ctx.d.spec.replicas.unwrap_or(1)).await
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
    old.sort_by_key(|r| revision(r));
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

/// Serves the legacy rollback request (`deprecated.deployment.rollback.to`).
async fn rollback(
    client: &Client,
    d: &Deployment,
    all: &[ReplicaSet],
    to: &str,
) -> Result<Action, Error> {
    let mut target: i64 = to.parse().unwrap_or(0);
    if target == 0 {
        // The previous revision: the highest one below the current maximum.
        let mut revs: Vec<i64> = all.iter().map(revision).collect();
        revs.sort_unstable();
        revs.dedup();
        target = if revs.len() >= 2 {
            revs[revs.len() - 2]
        } else {
            0
        };
    }
    let mut updated = d.clone();
    let ann = updated
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    ann.remove(ROLLBACK_TO);
    match all.iter().find(|rs| target > 0 && revision(rs) == target) {
        None => {
            events::record(
                client,
                COMPONENT,
                d,
                Kind::Warning,
                "DeploymentRollbackRevisionNotFound",
                "Unable to find the revision to rollback to.".into(),
            )
            .await;
        }
        Some(rs) if same_template(rs, d) => {
            events::record(
                client,
                COMPONENT,
                d,
                Kind::Warning,
                "DeploymentRollbackTemplateUnchanged",
                format!(
                    "The rollback revision contains the same template as current deployment \"{}\"",
                    d.name_any()
                ),
            )
            .await;
        }
        Some(rs) => {
            if let Some(t) = rs.spec.template.as_ref() {
                updated.spec.template = without_hash(t);
            }
            for (k, v) in rs
                .annotations()
                .iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()) && k.as_str() != REVISION)
            {
                ann.insert(k.clone(), v.clone());
            }
            events::record(
                client,
                COMPONENT,
                d,
                Kind::Normal,
                "DeploymentRollback",
                format!(
                    "Rolled back deployment \"{}\" to revision {target}",
                    d.name_any()
                ),
            )
            .await;
        }
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    updated.status = None;
    api.replace(&d.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::api(format!(
            "rolling back deployment {}",
            d.name_any()
        )))?;
    Ok(Action::await_change())
}
