//! The StatefulSet controller, as Kubernetes' `pkg/controller/statefulset`: pods with stable
//! names `<set>-<ordinal>`, hostnames and subdomains, created, rolled and scaled in ordinal
//! order (`OrderedReady`) or all at once (`Parallel`), their revisions kept in
//! ControllerRevisions so that `kubectl rollout history|undo` read and restore them.
//!
//! - [`plan`]: one step, pure — which pods to create, delete or relabel, and the status;
//! - [`revision`]: the revisions' data, hash, names and order, pure.
//!
//! This file does the I/O: pods and ControllerRevisions come from the shared caches
//! (`informer.rs`, a sync never lists), orphans matching the selector are adopted and pods no
//! longer matching released; the pods a sync created or deleted are expectations
//! (`expectations.rs`) the cache must show before the next sync writes pods again; the
//! ControllerRevisions it wrote are remembered until the cache shows them. Each claim of
//! `volumeClaimTemplates` is created before its pod, owned by the set when
//! `persistentVolumeClaimRetentionPolicy.whenDeleted` is `Delete`, and by a pod removed by a
//! scale-down when `whenScaled` is `Delete`; a claim that cannot be created is a
//! `FailedCreate` event and its pod waits.

pub mod plan;
pub mod revision;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_api::events::{Kind, Recorder};
use baton_api::selectors::{LabelSelector, label_selector_from_object};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::expectations::{self, Expectations};
use crate::informer::{Informer, Informers};
use crate::pods;
use crate::replicas::{PodView, adopt, release};
use plan::{Plan, Revision, Write};

const COMPONENT: &str = "statefulset-controller";
/// Most pods created or deleted at once in a Parallel step (`MaxBatchSize`).
const MAX_BATCH: usize = 500;

/// What every sync shares.
pub struct Shared {
    client: Client,
    events: Recorder,
    pods: Informer<Pod>,
    revisions: Informer<ControllerRevision>,
    expectations: Expectations,
    /// ControllerRevisions this controller wrote that the cache may not show yet, by uid.
    written: Mutex<HashMap<String, ControllerRevision>>,
}

/// Runs the StatefulSet controller once its caches are filled.
pub async fn run(client: Client, informers: Informers) {
    for synced in [
        informers.stateful_sets.synced().await,
        informers.controller_revisions.synced().await,
        informers.pods.synced().await,
    ] {
        if synced.is_err() {
            return;
        }
    }
    let sets = informers.stateful_sets.store();
    let shared = Arc::new(Shared {
        events: Recorder::new(client.clone(), COMPONENT, None),
        client,
        pods: informers.pods.clone(),
        revisions: informers.controller_revisions.clone(),
        expectations: Expectations::default(),
        written: Mutex::new(HashMap::new()),
    });
    Controller::for_shared_stream(
        informers.stateful_sets.subscribe(),
        informers.stateful_sets.store(),
    )
    .owns_shared_stream(informers.controller_revisions.subscribe())
    .watches_shared_stream(informers.pods.subscribe(), move |pod: Arc<Pod>| {
        pods::controllers_to_sync(&sets, &pod, |s: &StatefulSet| {
            plan::is_member(&s.name_any(), &pod)
                && selector(s).is_some_and(|sel| sel.matches_map(pod.labels()))
        })
    })
    .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
    .run(reconcile, error::policy, shared)
    .for_each(|_| async {})
    .await;
}

/// The set's selector, kept only when it can select something.
fn selector(set: &StatefulSet) -> Option<LabelSelector> {
    let value = serde_json::to_value(&set.spec.selector).ok()?;
    let parsed = label_selector_from_object(&value).ok()?;
    (!parsed.is_empty()).then_some(parsed)
}

fn resource_version(cr: &ControllerRevision) -> Option<u64> {
    cr.metadata.resource_version.as_deref()?.parse().ok()
}

/// The set's ControllerRevisions (its own, and orphans its selector matches), from the cache
/// overlaid with this controller's writes the cache does not show yet; sorted.
fn revisions_of(
    shared: &Shared,
    ns: &str,
    uid: &str,
    sel: Option<&LabelSelector>,
) -> Vec<ControllerRevision> {
    let mut written = shared.written.lock().unwrap_or_else(|p| p.into_inner());
    written.retain(|_, cr| {
        resource_version(cr).is_some_and(|v| !shared.revisions.seen(&v.to_string()))
    });
    let ours = |cr: &ControllerRevision| {
        cr.metadata.namespace.as_deref() == Some(ns)
            && match cr
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true))
            {
                Some(o) => o.uid == uid,
                None => sel.is_some_and(|s| s.matches_map(cr.labels())),
            }
    };
    let mut all: Vec<ControllerRevision> = shared
        .revisions
        .store()
        .state_filter(|cr| ours(cr))
        .into_iter()
        .map(|cr| {
            cr.metadata
                .uid
                .as_ref()
                .and_then(|u| written.get(u))
                .cloned()
                .unwrap_or_else(|| cr.as_ref().clone())
        })
        .collect();
    for cr in written.values().filter(|cr| ours(cr)) {
        if !all.iter().any(|a| a.metadata.uid == cr.metadata.uid) {
            all.push(cr.clone());
        }
    }
    revision::sort(&mut all);
    all
}

impl Shared {
    fn wrote(&self, cr: &ControllerRevision) {
        if let Some(uid) = cr.metadata.uid.clone() {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid, cr.clone());
        }
    }

    fn forget(&self, cr: &ControllerRevision) {
        if let Some(uid) = &cr.metadata.uid {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
        }
    }
}

async fn reconcile(set: Arc<StatefulSet>, shared: Arc<Shared>) -> Result<Action, Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let key = format!("{ns}/{name}");
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let sel = selector(&set);
    let owner = pods::controller_ref(set.as_ref());
    let pods_api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    let cr_api: Api<ControllerRevision> = Api::namespaced(shared.client.clone(), &ns);

    // Read the expectations before the pods: a pod event between the two then only makes
    // this sync more careful, never less.
    let view = PodView {
        pods: &shared.pods,
        ns: &ns,
    };
    let caught_up = shared.expectations.satisfied(&key, &view);
    let owned = claim_pods(&shared, &set, &pods_api, sel.as_ref(), &uid, deleting).await?;

    // Revisions: adopt orphans, then the current and update revisions.
    let mut revisions = revisions_of(&shared, &ns, &uid, sel.as_ref());
    for cr in revisions.iter_mut() {
        if cr
            .owner_references()
            .iter()
            .all(|o| o.controller != Some(true))
            && !deleting
        {
            let mut refs = cr.owner_references().to_vec();
            refs.push(owner.clone());
            let patch =
                serde_json::json!({"metadata": {"ownerReferences": refs, "uid": cr.metadata.uid}});
            match cr_api
                .patch(
                    &cr.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(adopted) => {
                    shared.wrote(&adopted);
                    *cr = adopted;
                }
                Err(e) if error::is_not_found(&e) || error::is_conflict(&e) => {}
                Err(e) => {
                    return Err(Error::api(format!("adopting revision {}", cr.name_any()))(
                        e,
                    ));
                }
            }
        }
    }
    let (current, update, collision_count) =
        revisions_for(&shared, &set, &cr_api, &owner, &revisions).await?;
    let revisions = revisions_of(&shared, &ns, &uid, sel.as_ref());

    let owned_refs: Vec<&Pod> = owned.iter().map(Arc::as_ref).collect();
    let now = baton_api::clock::now();
    let input = plan::Input {
        set: &set,
        owner: &owner,
        pods: &owned_refs,
        current: &current,
        update: &update,
        collision_count,
        now,
    };
    let Plan {
        writes,
        mut status,
        parallel,
    } = plan::step(&input);
    if deleting {
        shared.expectations.forget(&key);
    } else if caught_up {
        carry_out(&shared, &set, &key, &pods_api, writes, parallel).await?;
    }
    plan::complete_rolling_update(&set, &mut status);
    write_status(&shared, &set, &status).await?;
    truncate_history(&shared, &set, &cr_api, &owned_refs, &revisions, &status).await?;

    // Wake up when a ready pod becomes available.
    let min_ready = plan::min_ready(&set);
    let next = owned_refs
        .iter()
        .filter_map(|p| pods::until_available(p, min_ready, now))
        .min();
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// `ClaimPods` with `isMemberOf`: the set's pods, orphans adopted, non-matching released.
async fn claim_pods(
    shared: &Shared,
    set: &StatefulSet,
    pods_api: &Api<Pod>,
    sel: Option<&LabelSelector>,
    uid: &str,
    deleting: bool,
) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let mut owned = Vec::new();
    let ns_pods = shared
        .pods
        .store()
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()));
    for pod in ns_pods {
        let controller = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .cloned();
        let matches =
            sel.is_some_and(|s| s.matches_map(pod.labels())) && plan::is_member(&name, &pod);
        match controller {
            Some(c) if c.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    release(pods_api, &pod, uid).await?;
                }
            }
            None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                if let Some(p) = adopt(pods_api, &pod, pods::controller_ref(set)).await? {
                    owned.push(Arc::new(p));
                }
            }
            _ => {}
        }
    }
    Ok(owned)
}

/// `getStatefulSetRevisions`: the update revision made from the set's template (an equal
/// older one renumbered to be the newest, as a rollback does, or a new one created), the
/// current one named by the status (or the update one), and the collision count.
async fn revisions_for(
    shared: &Shared,
    set: &StatefulSet,
    api: &Api<ControllerRevision>,
    owner: &OwnerReference,
    revisions: &[ControllerRevision],
) -> Result<(Revision, Revision, i32), Error> {
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let data = revision::patch(set);
    let next = revision::next(revisions);
    let labels = set
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let candidate = |collision_count: i32| {
        let hash = revision::hash_of(&data, collision_count);
        let mut labels: BTreeMap<String, String> = labels.clone();
        labels.insert(revision::HASH_LABEL.into(), hash.clone());
        let annotations = set.metadata.annotations.clone().unwrap_or_default();
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(revision::name(&set.name_any(), &hash)),
                namespace: set.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            data: RawExtension(data.clone()),
            revision: Some(next),
        }
    };
    let wanted = candidate(collision_count);
    let equal: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| revision::equal(r, &wanted))
        .collect();
    let update = match (equal.last(), revisions.last()) {
        (Some(e), Some(last)) if revision::equal(last, e) => last.clone(),
        (Some(e), _) => {
            // A rollback: the equal revision becomes the newest.
            let patch = serde_json::json!({"revision": next});
            let cr = api
                .patch(
                    &e.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(Error::api(format!("renumbering revision {}", e.name_any())))?;
            shared.wrote(&cr);
            cr
        }
        (None, _) => loop {
            let cr = candidate(collision_count);
            match api.create(&PostParams::default(), &cr).await {
                Ok(created) => {
                    shared.wrote(&created);
                    break created;
                }
                Err(e) if error::is_conflict(&e) => {
                    let name = cr.name_any();
                    let existing = api
                        .get(&name)
                        .await
                        .map_err(Error::api(format!("reading revision {name}")))?;
                    if revision::data(&existing).map(revision::go_json)
                        == Some(revision::go_json(&data))
                    {
                        break existing;
                    }
                    collision_count += 1;
                }
                Err(e) => {
                    return Err(Error::api(format!("creating revision {}", cr.name_any()))(
                        e,
                    ));
                }
            }
        },
    };
    let current_name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .unwrap_or_default();
    let current = revisions
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(current_name.as_str()))
        .unwrap_or(&update);
    let as_revision = |cr: &ControllerRevision| -> Result<Revision, Error> {
        Ok(Revision {
            name: cr.name_any(),
            template: revision::template(cr).ok_or_else(|| {
                Error::Invalid(format!("revision {} has no pod template", cr.name_any()))
            })?,
        })
    };
    Ok((
        as_revision(current)?,
        as_revision(&update)?,
        collision_count,
    ))
}

/// Makes the plan's writes: one at a time (OrderedReady), or at once in slow-start batches
/// (Parallel) stopping at the first failed batch.
async fn carry_out(
    shared: &Shared,
    set: &StatefulSet,
    key: &str,
    pods_api: &Api<Pod>,
    writes: Vec<Write>,
    parallel: bool,
) -> Result<(), Error> {
    let mut left = writes.as_slice();
    let mut batch = 1;
    while !left.is_empty() {
        let n = if parallel { batch.min(left.len()) } else { 1 };
        let (now, rest) = left.split_at(n);
        let results =
            futures::future::join_all(now.iter().map(|w| write(shared, set, key, pods_api, w)))
                .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        left = rest;
        batch = (batch * 2).min(MAX_BATCH);
    }
    Ok(())
}

async fn write(
    shared: &Shared,
    set: &StatefulSet,
    key: &str,
    pods_api: &Api<Pod>,
    w: &Write,
) -> Result<(), Error> {
    let set_name = set.name_any();
    match w {
        Write::Create(pod) => {
            let pod_name = pod.name_any();
            if let Err(e) = create_claims(shared, set, pod).await {
                let msg =
                    format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}");
                shared
                    .events
                    .publish(set, Kind::Warning, "FailedCreate", msg);
                return Err(e);
            }
            match pods_api.create(&PostParams::default(), pod).await {
                Ok(created) => {
                    shared.expectations.expect_creations(
                        key,
                        vec![expectations::Created {
                            name: created.name_any(),
                            resource_version: created.resource_version().unwrap_or_default(),
                        }],
                    );
                    let msg = format!("create Pod {pod_name} in StatefulSet {set_name} successful");
                    shared
                        .events
                        .publish(set, Kind::Normal, "SuccessfulCreate", msg);
                    Ok(())
                }
                // The cache has not shown our pod yet: the next sync sees it.
                Err(e) if error::is_conflict(&e) => Ok(()),
                Err(e) => {
                    let msg = format!(
                        "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        kube_message(&e)
                    );
                    shared
                        .events
                        .publish(set, Kind::Warning, "FailedCreate", msg);
                    Err(Error::api(format!("creating pod {pod_name}"))(e))
                }
            }
        }
        Write::Delete { name, uid, why } => {
            if *why == "scale down" {
                retain_claims_of(shared, set, name, uid).await?;
            }
            tracing::debug!(statefulset = key, pod = %name, why, "deleting pod");
            let gone = expectations::Deleted {
                name: name.clone(),
                uid: uid.clone(),
            };
            match pods_api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    shared.expectations.expect_deletions(key, vec![gone]);
                    let msg = format!("delete Pod {name} in StatefulSet {set_name} successful");
                    shared
                        .events
                        .publish(set, Kind::Normal, "SuccessfulDelete", msg);
                    Ok(())
                }
                Err(e) if error::is_not_found(&e) => Ok(()),
                Err(e) => {
                    let msg = format!(
                        "delete Pod {name} in StatefulSet {set_name} failed error: {}",
                        kube_message(&e)
                    );
                    shared
                        .events
                        .publish(set, Kind::Warning, "FailedDelete", msg);
                    Err(Error::api(format!("deleting pod {name}"))(e))
                }
            }
        }
        Write::Relabel { name, labels } => {
            let patch = serde_json::json!({"metadata": {"labels": labels}});
            match pods_api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if error::is_not_found(&e) => Ok(()),
                Err(e) => {
                    let msg = format!(
                        "update Pod {name} in StatefulSet {set_name} failed error: {}",
                        kube_message(&e)
                    );
                    shared
                        .events
                        .publish(set, Kind::Warning, "FailedUpdate", msg);
                    Err(Error::api(format!("updating pod {name}"))(e))
                }
            }
        }
    }
}

/// The API server's message for a failed call (what Kubernetes' events quote).
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn retention(set: &StatefulSet, which: &str) -> bool {
    let policy = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let value = match which {
        "whenDeleted" => policy.and_then(|p| p.when_deleted.as_deref()),
        _ => policy.and_then(|p| p.when_scaled.as_deref()),
    };
    value == Some("Delete")
}

/// `createPersistentVolumeClaims`: each claim of the pod's ordinal, from its template,
/// labelled with the selector's labels, owned by the set when `whenDeleted: Delete`.
async fn create_claims(shared: &Shared, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
    let spec = set.spec.clone();
    let templates = spec.volume_claim_templates.unwrap_or_default();
    if templates.is_empty() {
        return Ok(());
    }
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let pod_name = pod.name_any();
    let Some((_, ordinal)) = plan::parent_and_ordinal(&pod_name) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(shared.client.clone(), &ns);
    for t in templates {
        let template_name = t.metadata.name.clone().unwrap_or_default();
        let claim_name = plan::claim_name(&template_name, &set_name, ordinal);
        let mut claim = t.clone();
        claim.metadata = ObjectMeta {
            name: Some(claim_name.clone()),
            namespace: Some(ns.clone()),
            labels: {
                let mut l = t.metadata.labels.clone().unwrap_or_default();
                l.extend(spec.selector.match_labels.clone().unwrap_or_default());
                Some(l)
            },
            annotations: t.metadata.annotations.clone(),
            owner_references: retention(set, "whenDeleted").then(|| {
                vec![OwnerReference {
                    controller: None,
                    block_owner_deletion: None,
                    ..pods::controller_ref(set)
                }]
            }),
            ..Default::default()
        };
        claim.status = None;
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                let msg = format!(
                    "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                );
                shared
                    .events
                    .publish(set, Kind::Normal, "SuccessfulCreate", msg);
            }
            Err(e) if error::is_conflict(&e) => {}
            Err(e) => {
                let msg = format!(
                    "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                    kube_message(&e)
                );
                shared
                    .events
                    .publish(set, Kind::Warning, "FailedCreate", msg);
                return Err(Error::api(format!("creating claim {claim_name}"))(e));
            }
        }
    }
    Ok(())
}

/// `whenScaled: Delete`: a pod removed by a scale-down takes its claims with it (each claim
/// gets the pod as its owner, in place of the set, before the pod is deleted).
async fn retain_claims_of(
    shared: &Shared,
    set: &StatefulSet,
    pod_name: &str,
    pod_uid: &str,
) -> Result<(), Error> {
    if !retention(set, "whenScaled") {
        return Ok(());
    }
    let spec = set.spec.clone();
    let Some((_, ordinal)) = plan::parent_and_ordinal(pod_name) else {
        return Ok(());
    };
    let ns = set.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(shared.client.clone(), &ns);
    for t in spec.volume_claim_templates.unwrap_or_default() {
        let claim_name = plan::claim_name(
            t.metadata.name.as_deref().unwrap_or_default(),
            &set.name_any(),
            ordinal,
        );
        let claim = match api.get(&claim_name).await {
            Ok(c) => c,
            Err(e) if error::is_not_found(&e) => continue,
            Err(e) => return Err(Error::api(format!("reading claim {claim_name}"))(e)),
        };
        let set_uid = set.metadata.uid.as_deref().unwrap_or_default();
        if claim.owner_references().iter().any(|o| o.uid == pod_uid)
            && claim.owner_references().iter().all(|o| o.uid != set_uid)
        {
            continue;
        }
        // As `updateClaimOwnerRefForSetAndPod`: the scaled-down pod owns the claim instead of
        // the set, so the claim goes with the pod even when `whenDeleted` is `Delete`.
        let mut refs: Vec<OwnerReference> = claim
            .owner_references()
            .iter()
            .filter(|o| o.uid != set_uid && o.uid != pod_uid)
            .cloned()
            .collect();
        refs.push(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: pod_name.to_string(),
            uid: pod_uid.to_string(),
            controller: None,
            block_owner_deletion: None,
        });
        let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": claim.metadata.resource_version}});
        api.patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::api(format!("updating claim {claim_name}")))?;
    }
    Ok(())
}

/// Writes the status when it differs from the set's (`inconsistentStatus`).
async fn write_status(
    shared: &Shared,
    set: &StatefulSet,
    status: &plan::Status,
) -> Result<(), Error> {
    let old = set.status.clone().unwrap_or_default();
    let same = old.observed_generation == status.observed_generation
        && old.replicas == status.replicas
        && old.ready_replicas.unwrap_or(0) == status.ready
        && old.available_replicas.unwrap_or(0) == status.available
        && old.current_replicas.unwrap_or(0) == status.current
        && old.updated_replicas.unwrap_or(0) == status.updated
        && old.current_revision.as_deref().unwrap_or("") == status.current_revision
        && old.update_revision.as_deref().unwrap_or("") == status.update_revision
        && old.collision_count.unwrap_or(0) == status.collision_count
        && old.collision_count.is_some();
    if same {
        return Ok(());
    }
    let opt = |n: i32| {
        if n == 0 {
            serde_json::Value::Null
        } else {
            n.into()
        }
    };
    let text = |s: &str| {
        if s.is_empty() {
            serde_json::Value::Null
        } else {
            s.into()
        }
    };
    let patch = serde_json::json!({"status": {
        "observedGeneration": status.observed_generation,
        "replicas": status.replicas,
        "readyReplicas": opt(status.ready),
        "currentReplicas": opt(status.current),
        "updatedReplicas": opt(status.updated),
        "availableReplicas": status.available,
        "currentRevision": text(&status.current_revision),
        "updateRevision": text(&status.update_revision),
        "collisionCount": status.collision_count,
    }});
    let api: Api<StatefulSet> =
        Api::namespaced(shared.client.clone(), &set.namespace().unwrap_or_default());
    match api
        .patch_status(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("updating status of {}", set.name_any()))(e)),
    }
}

/// `truncateHistory`: revisions neither current, update, nor any pod's are deleted, oldest
/// first, until `revisionHistoryLimit` remain.
async fn truncate_history(
    shared: &Shared,
    set: &StatefulSet,
    api: &Api<ControllerRevision>,
    pods: &[&Pod],
    revisions: &[ControllerRevision],
    status: &plan::Status,
) -> Result<(), Error> {
    let limit = set.spec.revision_history_limit.unwrap_or(10);
    if limit < 0 {
        return Ok(());
    }
    let live = |name: &str| {
        name == status.current_revision
            || name == status.update_revision
            || pods.iter().any(|p| plan::revision_of(p) == name)
    };
    let history: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !live(r.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let excess = history.len().saturating_sub(limit as usize);
    for cr in history.into_iter().take(excess) {
        match api.delete(&cr.name_any(), &DeleteParams::default()).await {
            Ok(_) => shared.forget(cr),
            Err(e) if error::is_not_found(&e) => shared.forget(cr),
            Err(e) => {
                return Err(Error::api(format!("deleting revision {}", cr.name_any()))(
                    e,
                ));
            }
        }
    }
    Ok(())
}
