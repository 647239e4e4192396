//! The scheduler: binds each pending pod (no `spec.nodeName`, scheduler `default-scheduler`)
//! to a Ready node that fits — resource requests against allocatable (exact, as kube-scheduler
//! counts them: [`amount`]), pod count, nodeSelector and required node affinity,
//! taints and tolerations (`placement.rs`) — preferring the node with the fewest pods of the same controller,
//! then the fewest pods. Binding goes through `POST pods/{name}/binding`; a pod that fits
//! nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event.
//!
//! Decisions are made one at a time against the shared node cache (`informer.rs`) and a
//! usage cache kept from pod events — per node, what its pods request and how many of each
//! controller it runs — plus the "assumed" bindings this scheduler made that the events have
//! not shown yet, as kube-scheduler does.
//!
//! Persistent volumes (kube-scheduler's `VolumeBinding` plugin, see [`ClaimNeeds`]): a pod
//! waits while a claim it names is missing, being deleted, or unbound in an `Immediate` class;
//! a node must satisfy the node affinity of the volumes its claims are bound to. Claims of a
//! `WaitForFirstConsumer` class that are not bound yet get the chosen node in
//! `volume.kubernetes.io/selected-node`, and the pod is bound only once the provisioner's
//! volumes are bound to them (pinned to that node by their affinity).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Node, PersistentVolume, PersistentVolumeClaim, Pod, Taint, Toleration,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::informer::Informers;
use crate::placement;
use crate::pods;
use baton_api::events::{Kind, Recorder};
use baton_api::quantity::Quantity;

const NAME: &str = "default-scheduler";

struct Ctx {
    client: Client,
    events: Recorder,
    nodes: Store<Node>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    usage: Mutex<Usage>,
    decide: tokio::sync::Mutex<()>,
}

/// Runs the scheduler until the task is dropped.
pub async fn run(client: Client, informers: Informers) {
    if informers.nodes.synced().await.is_err()
        || informers.pods.synced().await.is_err()
        || informers.persistent_volume_claims.synced().await.is_err()
        || informers.persistent_volumes.synced().await.is_err()
        || informers.storage_classes.synced().await.is_err()
    {
        return;
    }
    let pods = informers.pods.store();
    let changes = informers.pods.subscribe();
    let mut usage = Usage::default();
    for p in pods.state() {
        usage.observe(p.metadata.uid.as_deref().unwrap_or(""), Some(&p));
    }
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), NAME, None),
        client,
        nodes: informers.nodes.store(),
        claims: informers.persistent_volume_claims.store(),
        volumes: informers.persistent_volumes.store(),
        classes: informers.storage_classes.store(),
        usage: Mutex::new(usage),
        decide: tokio::sync::Mutex::new(()),
    });
    // The usage cache follows every pod change (the cache's current state of that pod).
    let follow = {
        let ctx = ctx.clone();
        changes.for_each(move |p| {
            let current = pods
                .get(&ObjectRef::from_obj(p.as_ref()))
                .filter(|c| c.metadata.uid == p.metadata.uid);
            ctx.usage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(p.metadata.uid.as_deref().unwrap_or(""), current.as_deref());
            async {}
        })
    };
    let schedule =
        Controller::for_shared_stream(informers.pods.subscribe(), informers.pods.store())
            .run(reconcile, error::policy, ctx)
            .for_each(|_| async {});
    futures::future::join(follow, schedule).await;
}

/// What one pod takes on its node.
#[derive(Clone, Debug, PartialEq)]
struct Placed {
    node: String,
    requests: BTreeMap<String, i128>,
    /// The uid of its controller, for spreading siblings.
    owner: Option<String>,
}

impl Placed {
    /// What `pod` takes on `node`.
    fn of(pod: &Pod, node: &str) -> Placed {
        Placed {
            node: node.to_string(),
            // A bound pod whose amounts cannot be read (the API refuses them; only an object
            // stored before it did) counts for nothing it asked.
            requests: requests(pod).unwrap_or_default(),
            owner: controller_uid(pod).map(str::to_string),
        }
    }
}

/// One node's sums.
#[derive(Clone, Debug, Default, PartialEq)]
struct NodeUse {
    requests: BTreeMap<String, i128>,
    pods: usize,
    by_owner: HashMap<String, usize>,
}

/// kube-scheduler's cache: what the pods bound to each node take, kept up to date from pod
/// events (so a decision costs O(nodes), not O(pods)), plus the bindings this scheduler
/// made that the events have not shown yet ("assumed").
#[derive(Debug, Default)]
struct Usage {
    placed: HashMap<String, Placed>,
    nodes: HashMap<String, NodeUse>,
    assumed: HashMap<String, Placed>,
}

impl Usage {
    /// The pod with `uid` is now `pod` (`None`: gone). A bound pod counts on its node until
    /// it finishes; seeing it bound (or gone) ends its assumption.
    fn observe(&mut self, uid: &str, pod: Option<&Pod>) {
        if let Some(old) = self.placed.remove(uid) {
            self.add(&old, -1);
        }
        let node = pod
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        if pod.is_none() || node.is_some() {
            self.assumed.remove(uid);
        }
        if let (Some(p), Some(node)) = (pod, node)
            && !matches!(pods::phase(p), "Succeeded" | "Failed")
        {
            let placed = Placed::of(p, node);
            self.add(&placed, 1);
            self.placed.insert(uid.to_string(), placed);
        }
    }

    fn add(&mut self, p: &Placed, sign: i32) {
        let n = self.nodes.entry(p.node.clone()).or_default();
        for (k, v) in &p.requests {
            let sum = n.requests.entry(k.clone()).or_insert(0);
            *sum = sum.saturating_add(i128::from(sign) * v);
        }
        n.pods = n.pods.saturating_add_signed(sign as isize);
        if let Some(o) = &p.owner {
            let c = n.by_owner.entry(o.clone()).or_insert(0);
            *c = c.saturating_add_signed(sign as isize);
            if *c == 0 {
                n.by_owner.remove(o);
            }
        }
        if n.pods == 0 {
            self.nodes.remove(&p.node);
        }
    }

    /// Requests, pod count and pods of `owner` on each node with any, assumed bindings
    /// included: one pass over the assumed bindings for a whole decision.
    fn view(&self, owner: Option<&str>) -> HashMap<&str, NodeView> {
        let mut out: HashMap<&str, NodeView> = self
            .nodes
            .iter()
            .map(|(name, u)| {
                let siblings = owner.and_then(|o| u.by_owner.get(o)).copied().unwrap_or(0);
                (name.as_str(), (u.requests.clone(), u.pods, siblings))
            })
            .collect();
        for (uid, a) in &self.assumed {
            if self.placed.contains_key(uid) {
                continue;
            }
            let v = out.entry(a.node.as_str()).or_default();
            for (k, amount) in &a.requests {
                let sum = v.0.entry(k.clone()).or_insert(0);
                *sum = sum.saturating_add(*amount);
            }
            v.1 += 1;
            if owner.is_some() && a.owner.as_deref() == owner {
                v.2 += 1;
            }
        }
        out
    }

    /// [`Usage::view`] of one node.
    #[cfg(test)]
    fn on(&self, node: &str, owner: Option<&str>) -> NodeView {
        self.view(owner).remove(node).unwrap_or_default()
    }
}

/// Requests, pod count, and pods of the deciding pod's owner on one node.
type NodeView = (BTreeMap<String, i128>, usize, usize);

/// An amount of `resource` as kube-scheduler counts it (`framework.Resource`): CPU in
/// millicores (`MilliValue()`), everything else in whole units (`Value()`), both rounded up
/// and exact.
pub fn amount(
    resource: &str,
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Result<i128, String> {
    let parsed = Quantity::try_from(q).map_err(|e| format!("{resource} {:?}: {e}", q.0))?;
    Ok(if resource == "cpu" {
        parsed.milli_value()
    } else {
        i128::from(parsed.value())
    })
}

/// The pod's requests per resource (sum over its containers), or why one cannot be read.
fn requests(pod: &Pod) -> Result<BTreeMap<String, i128>, String> {
    let mut out = BTreeMap::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for (k, v) in c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .into_iter()
            .flatten()
        {
            let sum: &mut i128 = out.entry(k.clone()).or_insert(0);
            *sum = sum.saturating_add(amount(k, v)?);
        }
    }
    Ok(out)
}

fn tolerates(tols: &[Toleration], key: &str, value: Option<&str>, effect: &str) -> bool {
    let taint = Taint {
        key: key.to_string(),
        value: value.map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    };
    tols.iter().any(|t| placement::tolerates(t, &taint))
}

/// Why a node does not fit a pod, worded as kube-scheduler words it.
pub fn misfit(
    pod: &Pod,
    node: &Node,
    used: &BTreeMap<String, i128>,
    pods_on_node: usize,
) -> Option<String> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        return Some("node(s) were not ready".into());
    }
    let spec = node.spec.clone().unwrap_or_default();
    let tols = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    // A pod that tolerates the unschedulable taint (DaemonSet pods do) ignores a cordon.
    if spec.unschedulable == Some(true)
        && !tolerates(
            &tols,
            "node.kubernetes.io/unschedulable",
            None,
            "NoSchedule",
        )
    {
        return Some("node(s) were unschedulable".into());
    }
    for t in spec.taints.iter().flatten() {
        if (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !tolerates(&tols, &t.key, t.value.as_deref(), &t.effect)
        {
            let v = t
                .value
                .as_deref()
                .map(|v| format!(": {v}"))
                .unwrap_or_default();
            return Some(format!("node(s) had untolerated taint {{{}{v}}}", t.key));
        }
    }
    if !pod
        .spec
        .as_ref()
        .is_none_or(|s| placement::fits_affinity(s, node))
    {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let alloc = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    // An allocatable amount that cannot be read offers nothing.
    let have = |res: &str| {
        alloc
            .get(res)
            .map_or(Ok(0), |q| amount(res, q))
            .unwrap_or(0)
    };
    let max_pods = if alloc.contains_key("pods") {
        have("pods")
    } else {
        110
    };
    if pods_on_node as i128 + 1 > max_pods {
        return Some("Too many pods".into());
    }
    let wanted = match requests(pod) {
        Ok(r) => r,
        Err(e) => return Some(format!("Pod has a request that is not a quantity: {e}")),
    };
    for (res, want) in wanted {
        let used = used.get(&res).copied().unwrap_or(0);
        if used.saturating_add(want) > have(&res) {
            return Some(format!("Insufficient {res}"));
        }
    }
    None
}

/// kube-scheduler's summary: "0/3 nodes are available: 2 Insufficient cpu, 1 Too many pods."
pub fn unschedulable_message(total: usize, reasons: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if parts.is_empty() {
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", parts.join(", "))
    }
}

/// What a pod's persistent volume claims ask of its node.
#[derive(Debug, Default)]
pub struct ClaimNeeds {
    /// The volumes its bound claims use: each one's node affinity must admit the node.
    pub volumes: Vec<Arc<PersistentVolume>>,
    /// Unbound claims of `WaitForFirstConsumer` classes, provisioned once a node is chosen.
    pub delayed: Vec<Arc<PersistentVolumeClaim>>,
}

impl ClaimNeeds {
    /// Why `node` cannot take the pod's volumes, as kube-scheduler words it.
    pub fn misfit(&self, node: &Node) -> Option<String> {
        let name = node.name_any();
        let conflict = self
            .volumes
            .iter()
            .any(|pv| !crate::volumes::matching::node_admits(pv, node))
            || self.delayed.iter().any(|c| {
                c.annotations()
                    .get(crate::volumes::matching::SELECTED_NODE)
                    .is_some_and(|n| *n != name)
            });
        conflict.then(|| "node(s) had volume node affinity conflict".to_string())
    }
}

/// The claims a pod names, resolved against the caches (kube-scheduler's `VolumeBinding`
/// PreFilter); an error is why no node can take the pod yet.
pub fn claim_needs(
    pod: &Pod,
    claims: &Store<PersistentVolumeClaim>,
    volumes: &Store<PersistentVolume>,
    classes: &Store<StorageClass>,
) -> Result<ClaimNeeds, String> {
    let ns = pod.namespace().unwrap_or_default();
    let mut needs = ClaimNeeds::default();
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str());
    for name in names {
        let Some(claim) = claims.get(&ObjectRef::new(name).within(&ns)) else {
            return Err(format!("persistentvolumeclaim \"{name}\" not found"));
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(format!("persistentvolumeclaim \"{name}\" is being deleted"));
        }
        let bound_to = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .filter(|v| !v.is_empty());
        match bound_to {
            Some(v) => match volumes.get(&ObjectRef::new(v)) {
                Some(pv) => needs.volumes.push(pv),
                None => return Err("pvc(s) bound to non-existent pv(s)".into()),
            },
            None => {
                let class_name = crate::volumes::matching::claim_class(&claim);
                let class = classes.get(&ObjectRef::new(&class_name));
                if crate::volumes::matching::waits_for_consumer(class.as_deref()) {
                    needs.delayed.push(claim);
                } else {
                    return Err("pod has unbound immediate PersistentVolumeClaims".into());
                }
            }
        }
    }
    Ok(needs)
}

/// Records the chosen node on the pod's unbound `WaitForFirstConsumer` claims, for the
/// provisioner.
async fn select_node(ctx: &Ctx, needs: &ClaimNeeds, node: &str) -> Result<(), Error> {
    for claim in &needs.delayed {
        if claim
            .annotations()
            .get(crate::volumes::matching::SELECTED_NODE)
            .is_some_and(|n| n == node)
        {
            continue;
        }
        let ns = claim.namespace().unwrap_or_default();
        let name = claim.name_any();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({"metadata": {"annotations": {
            crate::volumes::matching::SELECTED_NODE: node}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::api(format!(
                "selecting node {node} for claim {ns}/{name}"
            )))?;
    }
    Ok(())
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let spec = pod.spec.as_ref();
    let bound = spec
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let ours = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|s| s == NAME);
    if bound || !ours || pod.metadata.deletion_timestamp.is_some() || !pods::is_active(&pod) {
        return Ok(Action::await_change());
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let guard = ctx.decide.lock().await;
    let chosen = {
        let usage = ctx.usage.lock().unwrap_or_else(|p| p.into_inner());
        if usage.assumed.contains_key(&uid) {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let owner = controller_uid(&pod);
        let nodes = ctx.nodes.state();
        let needs = claim_needs(&pod, &ctx.claims, &ctx.volumes, &ctx.classes);
        let view = usage.view(owner);
        let empty = NodeView::default();
        let mut reasons = Vec::new();
        let mut best: Option<(usize, usize, String)> = None;
        for n in &nodes {
            let name = n.name_any();
            let (u, count, siblings) = view.get(name.as_str()).unwrap_or(&empty);
            let (count, siblings) = (*count, *siblings);
            let volume_misfit = match &needs {
                Ok(needs) => needs.misfit(n),
                Err(_) => None,
            };
            match misfit(&pod, n, u, count).or(volume_misfit) {
                Some(r) => reasons.push(r),
                None => {
                    let key = (siblings, count, name);
                    if best.as_ref().is_none_or(|b| key < *b) {
                        best = Some(key);
                    }
                }
            }
        }
        match (best, needs) {
            (_, Err(why)) => Err(format!("0/{} nodes are available: {why}.", nodes.len())),
            (Some((_, _, node)), Ok(needs)) => Ok((node, needs)),
            (None, Ok(_)) => Err(unschedulable_message(nodes.len(), &reasons)),
        }
    };
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match chosen {
        Ok((node, needs)) if !needs.delayed.is_empty() => {
            // Bound once the provisioned volumes are bound to the claims.
            drop(guard);
            select_node(&ctx, &needs, &node).await?;
            Ok(Action::requeue(Duration::from_millis(500)))
        }
        Ok((node, _)) => {
            ctx.usage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .assumed
                .insert(uid.clone(), Placed::of(&pod, &node));
            drop(guard);
            let binding = serde_json::json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let res: Result<serde_json::Value, _> = api
                .create_subresource("binding", &name, &PostParams::default(), &binding)
                .await;
            match res {
                Ok(_) => {
                    ctx.events.publish(
                        pod.as_ref(),
                        Kind::Normal,
                        "Scheduled",
                        format!("Successfully assigned {ns}/{name} to {node}"),
                    );
                    Ok(Action::await_change())
                }
                Err(e) => {
                    ctx.usage
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .assumed
                        .remove(&uid);
                    if error::is_not_found(&e) || error::is_conflict(&e) {
                        Ok(Action::await_change())
                    } else {
                        Err(Error::api(format!("binding pod {ns}/{name} to {node}"))(e))
                    }
                }
            }
        }
        Err(message) => {
            drop(guard);
            let already = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
                .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(&message));
            if !already {
                let patch = serde_json::json!({"status": {"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastProbeTime": null,
                    "lastTransitionTime": baton_api::clock::now_rfc3339(),
                }]}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(Error::api(format!("marking pod {ns}/{name} unschedulable")))?;
                ctx.events
                    .publish(pod.as_ref(), Kind::Warning, "FailedScheduling", message);
            }
            Ok(Action::requeue(Duration::from_secs(3)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, node: Option<&str>, cpu: &str, owner: &str, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": uid, "uid": uid,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": owner, "uid": owner, "controller": true}]},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu}}}
            ]},
            "status": {"phase": phase}
        }))
        .expect("pod")
    }

    #[test]
    fn usage_follows_pod_events() {
        let mut u = Usage::default();
        u.observe("a", Some(&pod("a", Some("n1"), "500m", "rs1", "Running")));
        u.observe("b", Some(&pod("b", Some("n1"), "250m", "rs2", "Running")));
        u.observe("c", Some(&pod("c", None, "1", "rs1", "Pending")));
        let (req, count, siblings) = u.on("n1", Some("rs1"));
        assert_eq!(count, 2);
        assert_eq!(siblings, 1);
        assert_eq!(req["cpu"], 750);
        // c assumed on n1: counted until its binding is seen, then counted once.
        u.assumed.insert(
            "c".into(),
            Placed::of(&pod("c", None, "1", "rs1", "Pending"), "n1"),
        );
        assert_eq!(u.on("n1", Some("rs1")).1, 3);
        u.observe("c", Some(&pod("c", Some("n1"), "1", "rs1", "Running")));
        assert!(u.assumed.is_empty());
        assert_eq!(u.on("n1", Some("rs1")).1, 3);
        assert_eq!(u.on("n1", Some("rs1")).2, 2);
        // A finished pod and a deleted one stop counting.
        u.observe("a", Some(&pod("a", Some("n1"), "500m", "rs1", "Succeeded")));
        u.observe("b", None);
        let (req, count, siblings) = u.on("n1", Some("rs1"));
        assert_eq!((count, siblings), (1, 1));
        assert_eq!(req["cpu"], 1000);
        u.observe("c", None);
        assert!(u.nodes.is_empty() && u.placed.is_empty());
    }

    /// Requests against allocatable exactly as kube-scheduler counts them: millicores rounded
    /// up for CPU, whole units for the rest, no floating point.
    #[test]
    fn fit_is_exact() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "allocatable": {"cpu": "2", "memory": "1Gi", "pods": "3",
                                       "example.com/gpu": "1"}}
        }))
        .expect("node");
        let wants = |requests: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]}
            }))
            .expect("pod")
        };
        let used = BTreeMap::from([("cpu".to_string(), 500)]);
        let fit = |requests, count| misfit(&wants(requests), &node, &used, count);
        use serde_json::json;
        assert_eq!(fit(json!({"cpu": "1.5", "memory": "1073741824"}), 0), None);
        assert_eq!(fit(json!({"cpu": "1500m"}), 2), None);
        assert_eq!(fit(json!({"cpu": "1"}), 3), Some("Too many pods".into()));
        // 0.5m is a whole millicore, as MilliValue() rounds it.
        assert_eq!(
            fit(json!({"cpu": "1.5", "memory": "0.5m"}), 0),
            None,
            "memory 0.5m is 1 byte"
        );
        assert_eq!(
            fit(json!({"cpu": "1.5005"}), 0),
            Some("Insufficient cpu".into())
        );
        assert_eq!(
            fit(json!({"memory": "1073741825"}), 0),
            Some("Insufficient memory".into())
        );
        assert_eq!(
            fit(json!({"memory": "1Pi"}), 0),
            Some("Insufficient memory".into())
        );
        assert_eq!(fit(json!({"example.com/gpu": "1"}), 0), None);
        assert_eq!(
            fit(json!({"example.com/gpu": "2"}), 0),
            Some("Insufficient example.com/gpu".into())
        );
        assert_eq!(
            fit(json!({"cpu": "1x"}), 0),
            Some(
                "Pod has a request that is not a quantity: cpu \"1x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                    .into()
            )
        );
        let q = |s: &str| k8s_openapi::apimachinery::pkg::api::resource::Quantity(s.into());
        assert_eq!(amount("cpu", &q("0.5m")), Ok(1));
        assert_eq!(amount("cpu", &q("1k")), Ok(1_000_000));
        assert_eq!(amount("memory", &q("512974848m")), Ok(512_975));
        assert_eq!(amount("memory", &q("1Ei")), Ok(1 << 60));
        assert_eq!(amount("pods", &q("1e3")), Ok(1000));
    }

    #[test]
    fn message_counts_reasons() {
        let r = vec![
            "Insufficient cpu".to_string(),
            "Insufficient cpu".to_string(),
            "Too many pods".to_string(),
        ];
        assert_eq!(
            unschedulable_message(3, &r),
            "0/3 nodes are available: 2 Insufficient cpu, 1 Too many pods."
        );
    }

    #[test]
    fn taints_and_tolerations() {
        let tol = |key: &str, op: &str, value: &str, effect: &str| Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        assert!(tolerates(
            &[tol("k", "Equal", "v", "NoSchedule")],
            "k",
            Some("v"),
            "NoSchedule"
        ));
        assert!(!tolerates(
            &[tol("k", "Equal", "w", "NoSchedule")],
            "k",
            Some("v"),
            "NoSchedule"
        ));
        assert!(tolerates(
            &[tol("k", "Exists", "", "")],
            "k",
            Some("v"),
            "NoExecute"
        ));
        assert!(tolerates(
            &[tol("", "Exists", "", "")],
            "any",
            None,
            "NoSchedule"
        ));
        assert!(!tolerates(&[], "k", None, "NoSchedule"));
    }
}
