//! The DaemonSet controller, as Kubernetes' `pkg/controller/daemon`: one pod per node that
//! should run it (node selector, required node affinity, taints against the template's
//! tolerations plus the daemon tolerations — `plan.rs`), each pod pinned to its node by a
//! required node affinity on `metadata.name` and bound by the scheduler; RollingUpdate with
//! maxUnavailable or maxSurge, OnDelete; history in ControllerRevisions named
//! `<set>-<pod-template-hash>` whose data is the patch that restores the template
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`), which `kubectl rollout history|undo`
//! read; status counts and observedGeneration for `kubectl rollout status`.
//!
//! DaemonSets, pods, nodes and ControllerRevisions are read from the shared caches
//! (`informer.rs`); a sync never lists. Pod creations and deletions are remembered as
//! expectations (`expectations.rs`) until the cache shows them.

pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::deployment::{hash, templates_equal};
use crate::error::{self, Error};
use crate::expectations::{self, Expectations};
use crate::informer::{Informer, Informers};
use crate::replicas::PodView;
use crate::{placement, pods};
use baton_api::events::{Kind, Recorder};
use plan::{GENERATION_ANNOTATION, GENERATION_LABEL, HASH_LABEL, NodeState};

const COMPONENT: &str = "daemonset-controller";
/// Most pods created in one sync (Kubernetes' BurstReplicas).
const BURST: usize = 250;

pub struct Shared {
    client: Client,
    events: Recorder,
    pods: Informer<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    expectations: Expectations,
}

/// Runs the DaemonSet controller once its caches are filled.
pub async fn run(client: Client, informers: Informers) {
    for synced in [
        informers.daemon_sets.synced().await,
        informers.pods.synced().await,
        informers.nodes.synced().await,
        informers.controller_revisions.synced().await,
    ] {
        if synced.is_err() {
            return;
        }
    }
    let ds_store = informers.daemon_sets.store();
    let for_pods = ds_store.clone();
    let for_nodes = ds_store.clone();
    let shared = Arc::new(Shared {
        events: Recorder::new(client.clone(), COMPONENT, None),
        client,
        pods: informers.pods.clone(),
        nodes: informers.nodes.store(),
        revisions: informers.controller_revisions.store(),
        expectations: Expectations::default(),
    });
    Controller::for_shared_stream(informers.daemon_sets.subscribe(), ds_store)
        .owns_shared_stream(informers.controller_revisions.subscribe())
        .watches_shared_stream(informers.pods.subscribe(), move |pod: Arc<Pod>| {
            pods::controllers_to_sync(&for_pods, &pod, |d: &DaemonSet| {
                selector(d).is_some_and(|s| s.matches_map(pod.labels()))
            })
        })
        // A node that appears, changes labels or taints, or goes, may change every set.
        .watches_shared_stream(informers.nodes.subscribe(), move |_node: Arc<Node>| {
            for_nodes
                .state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .run(reconcile, error::policy, shared)
        .for_each(|_| async {})
        .await;
}

/// The set's selector when it can select something (unset, empty or invalid selects none).
fn selector(ds: &DaemonSet) -> Option<baton_api::selectors::LabelSelector> {
    let v = serde_json::to_value(&ds.spec.selector).ok()?;
    let parsed = baton_api::selectors::label_selector_from_object(&v).ok()?;
    (!parsed.is_empty()).then_some(parsed)
}

fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.annotations()
        .get(GENERATION_ANNOTATION)
        .and_then(|g| g.parse().ok())
}

/// `getPatch`: the revision data that restores the set's template.
fn revision_data(ds: &DaemonSet) -> Value {
    let mut t = serde_json::to_value(&ds.spec.template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision restores.
fn revision_template(
    cr: &ControllerRevision,
) -> Option<k8s_openapi::api::core::v1::PodTemplateSpec> {
    let mut t = cr.data.0.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

fn revision_matches(ds: &DaemonSet, cr: &ControllerRevision) -> bool {
    revision_template(cr).is_some_and(|t| templates_equal(&t, &ds.spec.template))
}

/// `constructHistory`: the current revision (created, or renumbered past the others) and
/// the old ones, oldest first.
async fn history(
    shared: &Shared,
    ds: &DaemonSet,
) -> Result<Option<(ControllerRevision, Vec<ControllerRevision>)>, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let owned: Vec<ControllerRevision> = shared
        .revisions
        .state()
        .iter()
        .filter(|cr| cr.namespace().as_deref() == Some(ns.as_str()))
        .filter(|cr| {
            cr.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .map(|cr| cr.as_ref().clone())
        .collect();
    let (mut current, mut old): (Vec<_>, Vec<_>) =
        owned.into_iter().partition(|cr| revision_matches(ds, cr));
    old.sort_by_key(|cr| cr.revision.unwrap_or(0));
    let next = old.last().map_or(0, |cr| cr.revision.unwrap_or(0)) + 1;
    let api: Api<ControllerRevision> = Api::namespaced(shared.client.clone(), &ns);
    current.sort_by_key(|cr| std::cmp::Reverse(cr.revision.unwrap_or(0)));
    let cur = match current.into_iter().next() {
        Some(cr) if cr.revision.unwrap_or(0) < next => api
            .patch(
                &cr.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"revision": next})),
            )
            .await
            .map_err(Error::api(format!(
                "renumbering revision {}",
                cr.name_any()
            )))?,
        Some(cr) => cr,
        None => {
            let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
            let template = ds.spec.template.clone();
            let h = hash::compute(&template, collisions);
            let mut labels: BTreeMap<String, String> = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(HASH_LABEL.into(), h.clone());
            let cr = ControllerRevision {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("{}-{h}", ds.name_any())),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: ds.metadata.annotations.clone(),
                    owner_references: Some(vec![pods::controller_ref(ds)]),
                    ..Default::default()
                },
                data: RawExtension(revision_data(ds)),
                revision: Some(next),
            };
            match api.create(&PostParams::default(), &cr).await {
                Ok(c) => c,
                Err(e) if error::is_conflict(&e) => {
                    // The name is taken: ours from a sync the cache has not shown yet, or a
                    // hash collision (then count it, so the next name differs).
                    let existing = api
                        .get(&cr.name_any())
                        .await
                        .map_err(Error::api(format!("reading revision {}", cr.name_any())))?;
                    if revision_matches(ds, &existing) {
                        existing
                    } else {
                        let ds_api: Api<DaemonSet> = Api::namespaced(shared.client.clone(), &ns);
                        let n = collisions.unwrap_or(0) + 1;
                        ds_api
                            .patch_status(
                                &ds.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&json!({"status": {"collisionCount": n}})),
                            )
                            .await
                            .map_err(Error::api("counting a revision hash collision"))?;
                        return Ok(None);
                    }
                }
                Err(e) => {
                    return Err(Error::api(format!("creating revision {}", cr.name_any()))(
                        e,
                    ));
                }
            }
        }
    };
    Ok(Some((cur, old)))
}

fn is_owned(pod: &Pod, uid: &str) -> bool {
    pod.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

async fn reconcile(ds: Arc<DaemonSet>, shared: Arc<Shared>) -> Result<Action, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let key = format!("{ns}/{name}");
    let uid = ds.uid().unwrap_or_default();
    if ds.meta().deletion_timestamp.is_some() {
        shared.expectations.forget(&key);
        return Ok(Action::await_change());
    }
    let spec = &ds.spec;
    let Some((current, old)) = history(&shared, &ds).await? else {
        return Ok(Action::requeue(Duration::from_millis(100)));
    };
    let hash = current
        .labels()
        .get(HASH_LABEL)
        .cloned()
        .unwrap_or_else(|| current.name_any());
    let generation = template_generation(&ds);
    let pods_api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    let view = PodView {
        pods: &shared.pods,
        ns: &ns,
    };
    let caught_up = shared.expectations.satisfied(&key, &view);
    // Claim: our pods that still match, adopt matching orphans, release the rest.
    let sel = selector(&ds);
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in shared
        .pods
        .store()
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
    {
        let matches = sel.as_ref().is_some_and(|s| s.matches_map(pod.labels()));
        let controlled = pod
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true));
        if is_owned(&pod, &uid) {
            if matches {
                owned.push(pod);
            } else {
                crate::replicas::release(&pods_api, &pod, &uid).await?;
            }
        } else if !controlled
            && matches
            && pod.metadata.deletion_timestamp.is_none()
            && let Some(p) =
                crate::replicas::adopt(&pods_api, &pod, pods::controller_ref(ds.as_ref())).await?
        {
            owned.push(Arc::new(p));
        }
    }
    // Terminal pods that are being deleted no longer count (`getNodesToDaemonPods`).
    let mut by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
    let mut nowhere: Vec<&Pod> = Vec::new();
    for p in &owned {
        let terminal = matches!(pods::phase(p), "Succeeded" | "Failed");
        if terminal && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match placement::target_node(p) {
            Some(n) => by_node.entry(n).or_default().push(p),
            None => nowhere.push(p),
        }
    }
    let daemon_spec = plan::daemon_spec(&ds);
    let node_list = shared.nodes.state();
    let mut nodes: Vec<NodeState<'_>> = node_list
        .iter()
        .map(|n| {
            let (run, keep) = plan::should_run(&daemon_spec, n);
            let name = n.name_any();
            let pods = by_node.remove(name.as_str()).unwrap_or_default();
            NodeState {
                name,
                should_run: run,
                should_continue: keep,
                pods,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    // Pods on nodes that no longer exist (or pinned nowhere) go.
    let strays: Vec<String> = by_node
        .values()
        .flatten()
        .chain(nowhere.iter())
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    let now = baton_api::clock::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy.and_then(|s| s.type_.as_deref()) != Some("OnDelete");
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let desired = nodes.iter().filter(|n| n.should_run).count() as i32;
    let max_surge = if rolling {
        plan::scaled(ru.and_then(|r| r.max_surge.as_ref()), desired)
    } else {
        0
    };
    let max_unavailable = plan::scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired);
    if caught_up {
        let mut step = plan::manage(&nodes, &hash, max_surge > 0, min_ready, now);
        step.delete.extend(strays);
        if step.is_empty() && rolling {
            step = plan::rolling_update(
                &nodes,
                &hash,
                generation,
                max_surge,
                max_unavailable,
                min_ready,
                now,
            );
        }
        if !step.is_empty() {
            let all: Vec<&Pod> = owned.iter().map(Arc::as_ref).collect();
            sync_nodes(
                &shared, &key, &ds, &pods_api, &step, &all, &hash, generation,
            )
            .await?;
        }
        cleanup_history(&shared, &ds, &old, &owned).await?;
    }
    // Status: observedGeneration only once a sync acted on this generation.
    let c = plan::counts(&nodes, &hash, generation, min_ready, now);
    let prev = ds.status.clone().unwrap_or_default();
    let observed = if caught_up {
        ds.meta().generation
    } else {
        prev.observed_generation
    };
    let status = json!({
        "desiredNumberScheduled": c.desired,
        "currentNumberScheduled": c.current,
        "numberMisscheduled": c.misscheduled,
        "numberReady": c.ready,
        "updatedNumberScheduled": c.updated,
        "numberAvailable": c.available,
        "numberUnavailable": c.desired - c.available,
        "observedGeneration": observed,
    });
    let before = json!({
        "desiredNumberScheduled": prev.desired_number_scheduled,
        "currentNumberScheduled": prev.current_number_scheduled,
        "numberMisscheduled": prev.number_misscheduled,
        "numberReady": prev.number_ready,
        "updatedNumberScheduled": prev.updated_number_scheduled.unwrap_or(0),
        "numberAvailable": prev.number_available.unwrap_or(0),
        "numberUnavailable": prev.number_unavailable.unwrap_or(0),
        "observedGeneration": prev.observed_generation,
    });
    if status != before {
        // Zeroes of the optional counts are left out, as Go's omitempty does.
        let mut patch = status.clone();
        for f in [
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
        ] {
            if patch[f] == json!(0) {
                patch[f] = Value::Null;
            }
        }
        let api: Api<DaemonSet> = Api::namespaced(shared.client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": patch})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::api(format!("updating status of {key}"))(e)),
        }
    }
    let next = owned
        .iter()
        .filter_map(|p| pods::until_available(p, min_ready, now))
        .min();
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// `syncNodes`: deletes the plan's pods and creates one on each of its nodes (batches of 1,
/// 2, 4 ... as Kubernetes' slow start), each recorded as an expectation.
#[allow(clippy::too_many_arguments)]
async fn sync_nodes(
    shared: &Shared,
    key: &str,
    ds: &DaemonSet,
    api: &Api<Pod>,
    step: &plan::Plan,
    owned: &[&Pod],
    hash: &str,
    generation: Option<i64>,
) -> Result<(), Error> {
    let mut failed = None;
    let mut deleted = Vec::new();
    let deletes = step.delete.iter().filter_map(|name| {
        let pod = owned.iter().find(|p| p.name_any() == *name)?;
        let gone = expectations::Deleted {
            name: name.clone(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        Some(async move {
            match api.delete(&gone.name, &DeleteParams::default()).await {
                Ok(_) => Ok((gone, true)),
                Err(e) if error::is_not_found(&e) => Ok((gone, false)),
                Err(e) => Err(Error::api(format!("deleting pod {}", gone.name))(e)),
            }
        })
    });
    for r in futures::future::join_all(deletes).await {
        match r {
            Ok((gone, ours)) => {
                if ours {
                    shared.events.publish(
                        ds,
                        Kind::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", gone.name),
                    );
                }
                deleted.push(gone);
            }
            Err(e) => failed = Some(e),
        }
    }
    shared.expectations.expect_deletions(key, deleted);
    let mut template = ds.spec.template.clone();
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    if let Some(g) = generation {
        labels.insert(GENERATION_LABEL.into(), g.to_string());
    }
    labels.insert(HASH_LABEL.into(), hash.to_string());
    plan::add_daemon_tolerations(template.spec.get_or_insert_with(Default::default));
    let mut left: Vec<&String> = step.create.iter().take(BURST).collect();
    let mut batch = 1;
    while !left.is_empty() && failed.is_none() {
        let now: Vec<&String> = left.drain(..batch.min(left.len())).collect();
        let creates = now.iter().map(|node| {
            let mut pod = pods::from_template(&template, ds.namespace(), pods::controller_ref(ds));
            pod.metadata.generate_name = Some(format!("{}-", ds.name_any()));
            if let Some(spec) = pod.spec.as_mut() {
                pin_to_node(&mut spec.affinity, node);
            }
            async move {
                api.create(&PostParams::default(), &pod)
                    .await
                    .map_err(Error::api(format!("creating a daemon pod for node {node}")))
            }
        });
        let mut created = Vec::new();
        for r in futures::future::join_all(creates).await {
            match r {
                Ok(p) => {
                    shared.events.publish(
                        ds,
                        Kind::Normal,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                    created.push(expectations::Created {
                        name: p.name_any(),
                        resource_version: p.resource_version().unwrap_or_default(),
                    });
                }
                Err(e) => {
                    shared.events.publish(
                        ds,
                        Kind::Warning,
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    failed = Some(e);
                }
            }
        }
        shared.expectations.expect_creations(key, created);
        batch *= 2;
    }
    failed.map_or(Ok(()), Err)
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod's required node affinity becomes the
/// one term `metadata.name In [node]`; its other affinities stay.
fn pin_to_node(affinity: &mut Option<Affinity>, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let na = affinity
        .get_or_insert_with(Default::default)
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// `cleanupHistory`: old revisions past `revisionHistoryLimit`, oldest first, unless a live
/// pod still carries their hash.
async fn cleanup_history(
    shared: &Shared,
    ds: &DaemonSet,
    old: &[ControllerRevision],
    owned: &[Arc<Pod>],
) -> Result<(), Error> {
    let limit = ds.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let mut to_kill = old.len().saturating_sub(limit);
    if to_kill == 0 {
        return Ok(());
    }
    let live: Vec<&str> = owned
        .iter()
        .filter_map(|p| p.labels().get(HASH_LABEL).map(String::as_str))
        .collect();
    let api: Api<ControllerRevision> =
        Api::namespaced(shared.client.clone(), &ds.namespace().unwrap_or_default());
    for cr in old {
        if to_kill == 0 {
            break;
        }
        if cr
            .labels()
            .get(HASH_LABEL)
            .is_some_and(|h| live.contains(&h.as_str()))
        {
            continue;
        }
        match api.delete(&cr.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(format!("deleting revision {}", cr.name_any()))(
                    e,
                ));
            }
        }
        to_kill -= 1;
    }
    Ok(())
}
