//! The disruption controller (Kubernetes' `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — the pods it selects (`expectedPods`), the healthy ones
//! among them (`currentHealthy`: Ready, not being deleted, not just evicted), how many must
//! stay (`desiredHealthy`, from minAvailable or maxUnavailable against the pods' controllers'
//! scale) and so `disruptionsAllowed`, with the `DisruptionAllowed` condition — which the
//! eviction subresource reads and decrements. Evictions recorded in `disruptedPods` are
//! forgotten once the pod is gone or after two minutes, as Kubernetes does.
//!
//! Budgets, pods, ReplicaSets, ReplicationControllers and Deployments come from the shared
//! caches (`informer.rs`); a sync never lists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::SignedDuration;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::error::{self, Error};
use crate::informer::Informers;
use crate::pods;

/// How long an eviction recorded in `disruptedPods` keeps its pod out of the healthy count.
const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

struct Ctx {
    client: Client,
    informers: Informers,
}

/// Runs the disruption controller once its caches are filled.
pub async fn run(client: Client, informers: Informers) {
    for synced in [
        informers.pod_disruption_budgets.synced().await,
        informers.pods.synced().await,
        informers.replica_sets.synced().await,
        informers.replication_controllers.synced().await,
        informers.deployments.synced().await,
    ] {
        if synced.is_err() {
            return;
        }
    }
    let budgets = informers.pod_disruption_budgets.store();
    let for_pods = budgets.clone();
    let ctx = Arc::new(Ctx {
        client,
        informers: informers.clone(),
    });
    Controller::for_shared_stream(informers.pod_disruption_budgets.subscribe(), budgets)
        .watches_shared_stream(informers.pods.subscribe(), move |pod: Arc<Pod>| {
            selecting(&for_pods, &pod)
        })
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .run(reconcile, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

fn selector(pdb: &PodDisruptionBudget) -> Option<baton_api::selectors::LabelSelector> {
    let sel = pdb.spec.as_ref()?.selector.as_ref()?;
    baton_api::selectors::label_selector_from_object(&serde_json::to_value(sel).ok()?).ok()
}

/// The budgets of the pod's namespace that select it.
fn selecting(store: &Store<PodDisruptionBudget>, pod: &Pod) -> Vec<ObjectRef<PodDisruptionBudget>> {
    let ns = pod.namespace();
    store
        .state()
        .iter()
        .filter(|b| b.namespace() == ns)
        .filter(|b| selector(b).is_some_and(|s| s.matches_map(pod.labels())))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// `GetScaledValueFromIntOrPercent` with rounding up.
fn scaled(v: &IntOrString, total: i32) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * i64::from(total) + 99) / 100) as i32
        }
    }
}

/// `getExpectedScale`: the replicas of the pods' controllers (a ReplicaSet a Deployment
/// controls counts the Deployment's), each controller once; a pod of any other controller,
/// or of none, counts itself.
fn expected_scale(informers: &Informers, ns: &str, selected: &[&Pod]) -> i32 {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut total = 0;
    let find = |kind: &str, name: &str| -> Option<(String, i32)> {
        match kind {
            "ReplicaSet" => {
                let rs = informers
                    .replica_sets
                    .store()
                    .get(&ObjectRef::new(name).within(ns))?;
                if let Some(d) = rs
                    .owner_references()
                    .iter()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
                    && let Some(dep) = informers
                        .deployments
                        .store()
                        .get(&ObjectRef::new(&d.name).within(ns))
                {
                    return Some((d.uid.clone(), dep.spec.replicas.unwrap_or(1)));
                }
                Some((rs.uid()?, rs.spec.replicas.unwrap_or(1)))
            }
            "ReplicationController" => {
                let rc = informers
                    .replication_controllers
                    .store()
                    .get(&ObjectRef::new(name).within(ns))?;
                Some((rc.uid()?, rc.spec.as_ref()?.replicas.unwrap_or(1)))
            }
            _ => None,
        }
    };
    for p in selected {
        let owner = p
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true));
        match owner.and_then(|o| find(&o.kind, &o.name)) {
            Some((uid, replicas)) => {
                if seen.insert(uid) {
                    total += replicas;
                }
            }
            None => total += 1,
        }
    }
    total
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = pdb.namespace().unwrap_or_default();
    let name = pdb.name_any();
    let spec = pdb.spec.clone().unwrap_or_default();
    let sel = selector(&pdb);
    let all = ctx
        .informers
        .pods
        .store()
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()));
    let selected: Vec<&Pod> = all
        .iter()
        .map(Arc::as_ref)
        .filter(|p| sel.as_ref().is_some_and(|s| s.matches_map(p.labels())))
        .collect();
    let now = baton_api::clock::now();
    let status = pdb.status.clone().unwrap_or_default();
    // Evictions the API server recorded, kept while their pod is still about and recent.
    let mut disrupted: BTreeMap<String, String> = BTreeMap::new();
    let mut recheck: Option<Duration> = None;
    for (pod_name, at) in status.disrupted_pods.iter().flatten() {
        let alive = selected
            .iter()
            .any(|p| p.name_any() == *pod_name && p.metadata.deletion_timestamp.is_none());
        let expires = at.0 + DELETION_TIMEOUT;
        if alive && expires > now {
            disrupted.insert(pod_name.clone(), baton_api::clock::rfc3339(at.0));
            let left = Duration::from_millis(expires.duration_since(now).as_millis().max(0) as u64);
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
        }
    }
    let healthy = selected
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pods::is_ready(p))
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .count() as i32;
    let (expected, desired) = match (&spec.max_unavailable, &spec.min_available) {
        (Some(max), _) => {
            let expected = expected_scale(&ctx.informers, &ns, &selected);
            (expected, (expected - scaled(max, expected)).max(0))
        }
        (None, Some(IntOrString::Int(n))) => (selected.len() as i32, *n),
        (None, Some(min)) => {
            let expected = expected_scale(&ctx.informers, &ns, &selected);
            (expected, scaled(min, expected))
        }
        (None, None) => (selected.len() as i32, selected.len() as i32),
    };
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let generation = pdb.metadata.generation.unwrap_or(0);
    let (cond_status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let old_cond = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed");
    let transition = match old_cond {
        Some(c) if c.status == cond_status => baton_api::clock::rfc3339(c.last_transition_time.0),
        _ => baton_api::clock::rfc3339(now),
    };
    // A merge patch keeps map keys it does not name: forgotten evictions are set to null.
    let disrupted_patch = if disrupted.is_empty() {
        serde_json::Value::Null
    } else {
        let mut m = serde_json::Map::new();
        for k in status.disrupted_pods.iter().flatten().map(|(k, _)| k) {
            m.insert(k.clone(), serde_json::Value::Null);
        }
        for (k, v) in &disrupted {
            m.insert(k.clone(), json!(v));
        }
        serde_json::Value::Object(m)
    };
    let new_status = json!({
        "observedGeneration": generation,
        "disruptedPods": disrupted_patch,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [{
            "type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": "",
            "observedGeneration": generation, "lastTransitionTime": transition,
        }],
    });
    let changed = status.observed_generation != Some(generation)
        || status.disruptions_allowed != Some(allowed)
        || status.current_healthy != Some(healthy)
        || status.desired_healthy != Some(desired)
        || status.expected_pods != Some(expected)
        || status.disrupted_pods.as_ref().map_or(0, BTreeMap::len) != disrupted.len()
        || old_cond.is_none_or(|c| c.status != cond_status || c.reason != reason);
    if changed {
        let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": new_status});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::api(format!("updating status of {ns}/{name}"))(e)),
        }
    }
    Ok(recheck.map_or_else(Action::await_change, Action::requeue))
}
