//! The DaemonSet controller's decisions, pure, as Kubernetes' `pkg/controller/daemon` makes
//! them: which nodes should run a daemon pod (`NodeShouldRunDaemonPod`), what the core loop
//! creates and deletes per node (`podsShouldBeOnNode`), what a RollingUpdate step replaces
//! (`rollingUpdate`, with maxUnavailable or maxSurge), and the status counts
//! (`updateDaemonSetStatus`).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::{placement, pods};

/// The label carrying the revision hash a pod was made from.
pub const HASH_LABEL: &str = "controller-revision-hash";
/// The label carrying the template generation a pod was made from (deprecated).
pub const GENERATION_LABEL: &str = "pod-template-generation";
/// The apps/v1 annotation with the template generation.
pub const GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `AddOrUpdateDaemonPodTolerations`: daemon pods tolerate the node conditions' taints.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // `AddOrUpdateTolerationInPodSpec`: an equal toleration is not added twice.
        if !tols.contains(&t) {
            tols.push(t);
        }
    }
}

/// The pod spec the predicates judge: the template's, with the daemon tolerations.
pub fn daemon_spec(ds: &DaemonSet) -> PodSpec {
    let mut spec = ds.spec.template.spec.clone().unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec
}

/// `NodeShouldRunDaemonPod`: (should run, should continue running).
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let name = node.name_any();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return (false, false);
    }
    if !placement::fits_affinity(spec, node) {
        return (false, false);
    }
    let tols = spec.tolerations.as_deref().unwrap_or(&[]);
    let taints = placement::taints(node);
    let schedule_or_execute =
        |t: &k8s_openapi::api::core::v1::Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
    if placement::untolerated(taints, tols, schedule_or_execute).is_some() {
        // A pod tolerating the NoExecute taints may stay where it runs.
        let keeps = placement::untolerated(taints, tols, |t| t.effect == "NoExecute").is_none();
        return (false, keeps);
    }
    (true, true)
}

/// One node as a sync sees it.
#[derive(Debug)]
pub struct NodeState<'a> {
    pub name: String,
    pub should_run: bool,
    pub should_continue: bool,
    /// The daemon pods pinned to or running on it, oldest first.
    pub pods: Vec<&'a Pod>,
}

/// What one sync does.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Nodes to create a daemon pod on.
    pub create: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// `IsPodUpdated`: made from the current revision (hash) or template generation.
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.labels();
    let by_hash = !hash.is_empty() && labels.get(HASH_LABEL).map(String::as_str) == Some(hash);
    let by_generation = generation
        .is_some_and(|g| labels.get(GENERATION_LABEL).map(String::as_str) == Some(&g.to_string()));
    by_hash || by_generation
}

/// `podByCreationTimestampAndPhase`: running pods first? No — Kubernetes sorts by creation
/// time, then name; used to keep the oldest.
pub fn sort_oldest_first(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// The core loop (`manage` / `podsShouldBeOnNode`): a pod where one should run, failed or
/// finished pods removed, extra pods removed (with surge, an old and a new pod may share a
/// node until the new one is available), pods where none may continue removed.
pub fn manage(
    nodes: &[NodeState<'_>],
    hash: &str,
    surge: bool,
    min_ready: i32,
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    for n in nodes {
        let live: Vec<&Pod> = n
            .pods
            .iter()
            .copied()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if n.should_run {
            if n.pods.is_empty() {
                plan.create.push(n.name.clone());
                continue;
            }
            let mut running = Vec::new();
            for p in live {
                if matches!(pods::phase(p), "Failed" | "Succeeded") {
                    plan.delete.push(p.name_any());
                } else {
                    running.push(p);
                }
            }
            if running.len() <= 1 {
                continue;
            }
            sort_oldest_first(&mut running);
            if !surge {
                plan.delete
                    .extend(running[1..].iter().map(|p| p.name_any()));
                continue;
            }
            let mut oldest_new: Option<&Pod> = None;
            let mut oldest_old: Option<&Pod> = None;
            for p in running {
                let slot = if p.labels().get(HASH_LABEL).map(String::as_str) == Some(hash) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(p);
                } else {
                    plan.delete.push(p.name_any());
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!pods::is_ready(old) || pods::is_available(new, min_ready, now))
            {
                plan.delete.push(old.name_any());
            }
        } else if !n.should_continue {
            plan.delete.extend(live.iter().map(|p| p.name_any()));
        }
    }
    plan
}

/// `GetScaledValueFromIntOrPercent` rounding up, as `UnavailableCount` and `SurgeCount`.
pub fn scaled(v: Option<&IntOrString>, total: i32) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * i64::from(total) + 99) / 100) as i32
        }
    }
}

/// `findUpdatedPodsOnNode`: the node's new and old pod, `None` when it has more than one of
/// either (the core loop cleans that up first).
fn updated_and_old<'a>(
    pods: &[&'a Pod],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// One RollingUpdate step (`rollingUpdate`): without surge, old pods deleted while fewer
/// than maxUnavailable are unavailable (the core loop then creates their replacements);
/// with surge, new pods created beside available old ones up to maxSurge, and an old pod
/// deleted once its node's new pod is available.
pub fn rolling_update(
    nodes: &[NodeState<'_>],
    hash: &str,
    generation: Option<i64>,
    max_surge: i32,
    max_unavailable: i32,
    min_ready: i32,
    now: Timestamp,
) -> Plan {
    let desired = nodes.iter().filter(|n| n.should_run).count() as i32;
    let (mut max_surge, mut max_unavailable) = (max_surge, max_unavailable);
    if desired > 0 && max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let available = |p: &Pod| pods::is_available(p, min_ready, now);
    let mut plan = Plan::default();
    let with_pods = nodes.iter().filter(|n| !n.pods.is_empty());
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for n in with_pods {
            let Some((new, old)) = updated_and_old(&n.pods, hash, generation) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(p), None) => {
                    if !available(p) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        replace.push(old.name_any());
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(old.name_any());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
        plan.delete = replace;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    max_surge = max_surge.max(0);
    let mut surging = 0;
    let mut allowed_new = Vec::new();
    let mut candidates = Vec::new();
    for n in with_pods {
        let Some((new, old)) = updated_and_old(&n.pods, hash, generation) else {
            surging += 1;
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if n.should_run {
                        allowed_new.push(n.name.clone());
                    } else {
                        plan.delete.push(old.name_any());
                    }
                } else if n.should_run && surging < max_surge {
                    candidates.push(n.name.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    plan.delete.push(old.name_any());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = (max_surge - surging).clamp(0, candidates.len() as i32) as usize;
    plan.create = allowed_new;
    plan.create.extend(candidates.into_iter().take(room));
    let _ = max_unavailable;
    plan
}

/// The status counts (`updateDaemonSetStatus`), judged on each node's oldest pod.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
}

pub fn counts(
    nodes: &[NodeState<'_>],
    hash: &str,
    generation: Option<i64>,
    min_ready: i32,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for n in nodes {
        let scheduled = !n.pods.is_empty();
        if !n.should_run {
            if scheduled {
                c.misscheduled += 1;
            }
            continue;
        }
        c.desired += 1;
        let mut sorted = n.pods.clone();
        sort_oldest_first(&mut sorted);
        let Some(pod) = sorted.first() else { continue };
        c.current += 1;
        if pods::is_ready(pod) {
            c.ready += 1;
            if pods::is_available(pod, min_ready, now) {
                c.available += 1;
            }
        }
        if is_updated(pod, hash, generation) {
            c.updated += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool, created: i64) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {HASH_LABEL: hash},
                         "creationTimestamp": Timestamp::from_second(created).expect("ts").to_string()},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .expect("pod")
    }

    fn node<'a>(name: &str, pods: Vec<&'a Pod>) -> NodeState<'a> {
        NodeState {
            name: name.into(),
            should_run: true,
            should_continue: true,
            pods,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1000).expect("ts")
    }

    #[test]
    fn tolerations_and_taints_decide_where_to_run() {
        let ds: DaemonSet = serde_json::from_value(
            json!({"spec": {"selector": {}, "template": {"spec": {"containers": []}}}}),
        )
        .expect("ds");
        let spec = daemon_spec(&ds);
        let n = |taints: serde_json::Value| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"taints": taints}}))
                .expect("node")
        };
        assert_eq!(should_run(&spec, &n(json!([]))), (true, true));
        assert_eq!(
            should_run(
                &spec,
                &n(json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]))
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &n(json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]))
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &n(json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]))
            ),
            (false, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &n(json!([{"key": "dedicated", "effect": "NoExecute"}]))
            ),
            (false, false)
        );
        let mut again = spec.clone();
        add_daemon_tolerations(&mut again);
        assert_eq!(again.tolerations, spec.tolerations);
    }

    #[test]
    fn max_unavailable_replaces_that_many_available_old_pods() {
        let (a, b, c) = (
            pod("a", "old", true, 1),
            pod("b", "old", true, 2),
            pod("c", "old", true, 3),
        );
        let nodes = vec![
            node("n1", vec![&a]),
            node("n2", vec![&b]),
            node("n3", vec![&c]),
        ];
        let plan = rolling_update(&nodes, "new", None, 0, 1, 0, now());
        assert_eq!(plan.delete.len(), 1);
        assert!(plan.create.is_empty());
        // A new pod not yet available uses the budget up.
        let d = pod("d", "new", false, 4);
        let nodes = vec![
            node("n1", vec![&d]),
            node("n2", vec![&b]),
            node("n3", vec![&c]),
        ];
        assert!(rolling_update(&nodes, "new", None, 0, 1, 0, now()).is_empty());
    }

    #[test]
    fn max_surge_adds_new_pods_then_removes_old_ones() {
        let (a, b) = (pod("a", "old", true, 1), pod("b", "old", true, 2));
        let nodes = vec![node("n1", vec![&a]), node("n2", vec![&b])];
        let plan = rolling_update(&nodes, "new", None, 1, 0, 0, now());
        assert_eq!(plan.create.len(), 1);
        assert!(plan.delete.is_empty());
        let fresh = pod("a2", "new", false, 5);
        let nodes = vec![node("n1", vec![&a, &fresh]), node("n2", vec![&b])];
        assert!(rolling_update(&nodes, "new", None, 1, 0, 0, now()).is_empty());
        // The core loop keeps both while the new one is not available.
        assert!(manage(&nodes, "new", true, 0, now()).is_empty());
        let ready = pod("a2", "new", true, 5);
        let nodes = vec![node("n1", vec![&a, &ready]), node("n2", vec![&b])];
        let plan = rolling_update(&nodes, "new", None, 1, 0, 0, now());
        assert_eq!(plan.delete, vec!["a".to_string()]);
    }

    #[test]
    fn the_core_loop_creates_and_trims() {
        let (a, b) = (pod("a", "h", true, 1), pod("b", "h", true, 2));
        let nodes = vec![node("n1", vec![]), node("n2", vec![&a, &b])];
        let plan = manage(&nodes, "h", false, 0, now());
        assert_eq!(plan.create, vec!["n1".to_string()]);
        assert_eq!(plan.delete, vec!["b".to_string()]);
        let c = counts(&nodes, "h", None, 0, now());
        assert_eq!((c.desired, c.current, c.ready, c.updated), (2, 1, 1, 1));
        assert_eq!(scaled(Some(&IntOrString::String("10%".into())), 5), 1);
    }
}
