//! The scheduler: binds each pending pod (no `spec.nodeName`, scheduler `default-scheduler`)
//! to a Ready node that fits — resource requests against allocatable, pod count, nodeSelector,
//! taints and tolerations — preferring the node with the fewest pods of the same controller,
//! then the fewest pods. Binding goes through `POST pods/{name}/binding`; a pod that fits
//! nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event.
//!
//! Decisions are made one at a time against the watch caches plus an "assumed" map of the
//! bindings this scheduler made that the cache has not shown yet, as kube-scheduler does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::events::{self, Kind};
use crate::pods;

const NAME: &str = "default-scheduler";

struct Ctx {
    client: Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    /// Pod uid → node, for bindings not yet seen in the cache.
    assumed: Mutex<HashMap<String, String>>,
    decide: tokio::sync::Mutex<()>,
}

/// Runs the scheduler until the task is dropped.
pub async fn run(client: Client) {
    let (nodes, writer) = reflector::store();
    let node_watch = reflector::reflector(
        writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|_| async {});
    tokio::spawn(node_watch);
    let controller = Controller::new(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let ctx = Arc::new(Ctx {
        client,
        nodes,
        pods: controller.store(),
        assumed: Mutex::new(HashMap::new()),
        decide: tokio::sync::Mutex::new(()),
    });
    if ctx.nodes.wait_until_ready().await.is_err() {
        return;
    }
    controller
        .run(reconcile, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// Parses a Kubernetes quantity into its value (CPU in cores, memory in bytes).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// The pod's requests per resource (sum over its containers).
fn requests(pod: &Pod) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for (k, v) in c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .into_iter()
            .flatten()
        {
            *out.entry(k.clone()).or_insert(0.0) += parse_quantity(&v.0).unwrap_or(0.0);
        }
    }
    out
}

fn tolerates(tols: &[Toleration], key: &str, value: Option<&str>, effect: &str) -> bool {
    tols.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == effect);
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == key);
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == value.unwrap_or(""),
        };
        effect_ok
            && key_ok
            && (value_ok
                || (t.key.as_deref().unwrap_or("").is_empty()
                    && t.operator.as_deref() == Some("Exists")))
    })
}

/// Why a node does not fit a pod, worded as kube-scheduler words it.
pub fn misfit(
    pod: &Pod,
    node: &Node,
    used: &BTreeMap<String, f64>,
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
    if spec.unschedulable == Some(true) {
        return Some("node(s) were unschedulable".into());
    }
    let tols = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
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
    let labels = node.labels();
    let selector = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let alloc = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    let max_pods = alloc
        .get("pods")
        .and_then(|q| parse_quantity(&q.0))
        .unwrap_or(110.0);
    if pods_on_node as f64 + 1.0 > max_pods {
        return Some("Too many pods".into());
    }
    for (res, want) in requests(pod) {
        let have = alloc
            .get(&res)
            .and_then(|q| parse_quantity(&q.0))
            .unwrap_or(0.0);
        if used.get(&res).copied().unwrap_or(0.0) + want > have + 1e-9 {
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
        if let Some(uid) = pod.metadata.uid.as_deref() {
            ctx.assumed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
        }
        return Ok(Action::await_change());
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let guard = ctx.decide.lock().await;
    let chosen = {
        let assumed = ctx.assumed.lock().unwrap_or_else(|p| p.into_inner());
        if assumed.contains_key(&uid) {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        // Usage per node from the cache, plus what we assumed.
        let mut used: HashMap<String, (BTreeMap<String, f64>, usize, usize)> = HashMap::new();
        let owner = controller_uid(&pod);
        for p in ctx.pods.state() {
            let node = match p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty())
            {
                Some(n) => n,
                None => match p.metadata.uid.as_ref().and_then(|u| assumed.get(u)) {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            if matches!(pods::phase(&p), "Succeeded" | "Failed") {
                continue;
            }
            let e = used.entry(node).or_default();
            for (k, v) in requests(&p) {
                *e.0.entry(k).or_insert(0.0) += v;
            }
            e.1 += 1;
            if owner.is_some() && controller_uid(&p) == owner {
                e.2 += 1;
            }
        }
        let nodes = ctx.nodes.state();
        let mut reasons = Vec::new();
        let mut best: Option<(usize, usize, String)> = None;
        for n in &nodes {
            let name = n.name_any();
            let (u, count, siblings) = used.get(&name).cloned().unwrap_or_default();
            match misfit(&pod, n, &u, count) {
                Some(r) => reasons.push(r),
                None => {
                    let key = (siblings, count, name);
                    if best.as_ref().is_none_or(|b| key < *b) {
                        best = Some(key);
                    }
                }
            }
        }
        match best {
            Some((_, _, node)) => Ok(node),
            None => Err(unschedulable_message(nodes.len(), &reasons)),
        }
    };
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match chosen {
        Ok(node) => {
            ctx.assumed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid.clone(), node.clone());
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
                    events::record(
                        &ctx.client,
                        NAME,
                        pod.as_ref(),
                        Kind::Normal,
                        "Scheduled",
                        format!("Successfully assigned {ns}/{name} to {node}"),
                    )
                    .await;
                    Ok(Action::await_change())
                }
                Err(e) => {
                    ctx.assumed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
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
                    "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
                }]}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(Error::api(format!("marking pod {ns}/{name} unschedulable")))?;
                events::record(
                    &ctx.client,
                    NAME,
                    pod.as_ref(),
                    Kind::Warning,
                    "FailedScheduling",
                    message,
                )
                .await;
            }
            Ok(Action::requeue(Duration::from_secs(3)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("100m", Some(0.1)),
            ("2", Some(2.0)),
            ("1Gi", Some(1073741824.0)),
            ("512Mi", Some(536870912.0)),
            ("1k", Some(1000.0)),
            ("1e3", Some(1000.0)),
            ("abc", None),
        ];
        for (q, want) in cases {
            assert_eq!(parse_quantity(q), want, "{q}");
        }
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
