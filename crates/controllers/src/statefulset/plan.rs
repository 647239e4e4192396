//! One step of a StatefulSet, pure: Kubernetes' `updateStatefulSet` and
//! `updateStatefulSetAfterInvariantEstablished` (`stateful_set_control.go`) over the pods the
//! set owns, returning the writes to make and the status to report. `mod.rs` carries the
//! writes out.
//!
//! - Pods `<set>-<ordinal>` for ordinals `[start, start + replicas)`: missing ones are created
//!   at the current revision below the partition and at the update revision from it (what
//!   `newVersionedStatefulSetPod` decides), failed or succeeded ones deleted to be recreated.
//! - `OrderedReady` is monotonic: one creation at a time in ordinal order, each after its
//!   predecessors are Running, Ready and available; scale-down deletes from the highest
//!   ordinal, one at a time, only once every other pod is healthy. `Parallel` does each
//!   step for every pod at once.
//! - Updates (`RollingUpdate`) delete the highest-ordinal pod not at the update revision,
//!   down to `partition`, one at a time and only while no updated pod is unavailable; with
//!   `maxUnavailable` up to that many pods may be unavailable at once. `OnDelete` never
//!   deletes for an update: a deleted pod comes back at the update revision.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// The pod label naming the pod (`apps.StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pod label holding its ordinal (`apps.PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The pod label naming its revision (`apps.ControllerRevisionHashLabelKey`).
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// A revision: its ControllerRevision's name and the template it restores.
#[derive(Clone, Debug)]
pub struct Revision {
    pub name: String,
    pub template: PodTemplateSpec,
}

/// What one step writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Create this pod (and its claims first).
    Create(Box<Pod>),
    /// Delete this pod (name, uid); `why` for the log.
    Delete {
        name: String,
        uid: String,
        why: &'static str,
    },
    /// Set these labels on an existing pod (its identity was lost).
    Relabel {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

/// The counts and revisions of `status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    pub observed_generation: Option<i64>,
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    pub current_revision: String,
    pub update_revision: String,
    pub collision_count: i32,
}

/// The result of [`step`]: the writes, in order, and the status to report.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub status: Status,
    /// Parallel management: the writes may be made at once (in slow-start batches).
    pub parallel: bool,
}

/// `getParentNameAndOrdinal`: `<parent>-<ordinal>`, or `None`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()?))
}

fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref()?).map(|(_, o)| o)
}

/// The pod belongs to the set by name (`isMemberOf`).
pub fn is_member(set_name: &str, pod: &Pod) -> bool {
    pod.metadata
        .name
        .as_deref()
        .and_then(parent_and_ordinal)
        .is_some_and(|(p, _)| p == set_name)
}

fn spec_of(set: &StatefulSet) -> k8s_openapi::api::apps::v1::StatefulSetSpec {
    set.spec.clone()
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.replicas.unwrap_or(1).max(0)
}

fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

pub fn min_ready(set: &StatefulSet) -> i32 {
    set.spec.min_ready_seconds.unwrap_or(0)
}

fn is_created(pod: &Pod) -> bool {
    !pods::phase(pod).is_empty()
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn is_running_and_ready(pod: &Pod) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod)
}

fn is_running_and_available(pod: &Pod, min_ready: i32, now: Timestamp) -> bool {
    pods::phase(pod) == "Running" && pods::is_available(pod, min_ready, now)
}

/// `isUnavailable`: not healthy (Running, Ready, not terminating) or not available yet.
fn is_unavailable(pod: &Pod, min_ready: i32, now: Timestamp) -> bool {
    !(is_running_and_ready(pod) && !is_terminating(pod) && pods::is_available(pod, min_ready, now))
}

pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map_or("", String::as_str)
}

/// The claim a pod of ordinal `ordinal` uses for the claim template `claim`.
pub fn claim_name(claim: &str, set_name: &str, ordinal: i32) -> String {
    format!("{claim}-{set_name}-{ordinal}")
}

/// The labels of a pod's identity (`updateIdentity`).
fn identity_labels(name: &str, ordinal: i32) -> [(String, String); 2] {
    [
        (POD_NAME_LABEL.to_string(), name.to_string()),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ]
}

/// `identityMatches`: the pod's name, namespace and identity labels are the set's.
fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(name) = pod.metadata.name.as_deref() else {
        return false;
    };
    let Some((parent, ord)) = parent_and_ordinal(name) else {
        return false;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    Some(parent) == set.metadata.name.as_deref()
        && pod.metadata.namespace == set.metadata.namespace
        && identity_labels(name, ord)
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
}

/// `newStatefulSetPod` + `setPodRevision`: the pod of `ordinal` from `template` at `revision`.
pub fn new_pod(
    set: &StatefulSet,
    owner: &OwnerReference,
    template: &PodTemplateSpec,
    revision: &str,
    ordinal: i32,
) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let mut pod = pods::from_template(template, set.metadata.namespace.clone(), owner.clone());
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(identity_labels(&name, ordinal));
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    let spec = spec_of(set);
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec.hostname = Some(name.clone());
    if let Some(service) = spec.service_name.filter(|s| !s.is_empty()) {
        pod_spec.subdomain = Some(service);
    }
    // `updateStorage`: a volume per claim template, replacing a pod volume of its name.
    let claims = spec.volume_claim_templates.unwrap_or_default();
    if !claims.is_empty() {
        let claim_names: Vec<String> = claims
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        let mut volumes: Vec<Volume> = claim_names
            .iter()
            .map(|c| Volume {
                name: c.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(c, &set_name, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            })
            .collect();
        volumes.extend(
            pod_spec
                .volumes
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| !claim_names.contains(&v.name)),
        );
        pod_spec.volumes = Some(volumes);
    }
    pod
}

/// What [`step`] reads.
pub struct Input<'a> {
    pub set: &'a StatefulSet,
    pub owner: &'a OwnerReference,
    /// The pods the set owns (claimed), any order.
    pub pods: &'a [&'a Pod],
    pub current: &'a Revision,
    pub update: &'a Revision,
    pub collision_count: i32,
    pub now: Timestamp,
}

/// `updateStatus`: the counts over `pods`.
fn count(status: &mut Status, pods: &[&Pod], input: &Input<'_>) {
    let min_ready = min_ready(input.set);
    status.replicas = 0;
    status.ready = 0;
    status.available = 0;
    status.current = 0;
    status.updated = 0;
    for pod in pods {
        if is_created(pod) {
            status.replicas += 1;
        }
        if is_running_and_ready(pod) {
            status.ready += 1;
            if is_running_and_available(pod, min_ready, input.now) {
                status.available += 1;
            }
        }
        if is_created(pod) && !is_terminating(pod) {
            let rev = revision_of(pod);
            if rev == input.current.name {
                status.current += 1;
            }
            if rev == input.update.name {
                status.updated += 1;
            }
        }
    }
}

/// `getStatefulSetMaxUnavailable`: the number (or percentage of replicas, rounded down), at
/// least 1.
fn max_unavailable(v: &IntOrString, replicas: i32) -> i32 {
    let n = match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * i64::from(replicas) / 100) as i32
        }
    };
    n.max(1)
}

/// One step of the set: the writes to make now and the status to report.
pub fn step(input: &Input<'_>) -> Plan {
    let set = input.set;
    let spec = spec_of(set);
    let min_ready = min_ready(set);
    let now = input.now;
    let mut status = Status {
        observed_generation: set.metadata.generation,
        current_revision: input.current.name.clone(),
        update_revision: input.update.name.clone(),
        collision_count: input.collision_count,
        ..Default::default()
    };
    count(&mut status, input.pods, input);
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let mut plan = Plan {
        writes: Vec::new(),
        status: status.clone(),
        parallel: !monotonic,
    };

    // Replicas at their ordinal's index; pods past the range are condemned.
    let n = replicas(set);
    let start = start_ordinal(set);
    let end = start + n - 1;
    let mut slots: Vec<Option<&Pod>> = vec![None; n as usize];
    let mut condemned: Vec<&Pod> = Vec::new();
    for pod in input.pods {
        match ordinal(pod) {
            Some(o) if o >= start && o <= end => slots[(o - start) as usize] = Some(pod),
            Some(_) => condemned.push(pod),
            None => {}
        }
    }
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    // `newVersionedStatefulSetPod`: below the partition (or, without one, below the current
    // count) a missing pod comes back at the current revision.
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let ru = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref());
    let current_count = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    let missing: Vec<Pod> = (0..n)
        .filter(|i| slots[*i as usize].is_none())
        .map(|i| {
            let ord = start + i;
            let at_current = rolling
                && match ru {
                    None => ord < start + current_count,
                    Some(ru) => ord < start + ru.partition.unwrap_or(0),
                };
            let rev = if at_current {
                input.current
            } else {
                input.update
            };
            new_pod(set, input.owner, &rev.template, &rev.name, ord)
        })
        .collect();
    let mut missing = missing.iter();
    let replicas: Vec<(&Pod, bool)> = slots
        .iter()
        .map(|s| match s {
            Some(p) => (*p, true),
            None => (missing.next().expect("one new pod per empty slot"), false),
        })
        .collect();

    let first_unavailable: Option<&Pod> = replicas
        .iter()
        .map(|(p, _)| *p)
        .chain(condemned.iter().rev().copied())
        .find(|p| is_unavailable(p, min_ready, now));

    if set.metadata.deletion_timestamp.is_some() {
        return plan;
    }

    // Each replica, in ordinal order (`processReplica`).
    let mut exit = false;
    for (pod, exists) in &replicas {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if *exists && matches!(pods::phase(pod), "Failed" | "Succeeded") {
            if !is_terminating(pod) {
                plan.writes.push(Write::Delete {
                    name,
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    why: "failed",
                });
            }
            if monotonic {
                exit = true;
                break;
            }
            continue;
        }
        if !exists {
            plan.writes.push(Write::Create(Box::new((*pod).clone())));
            if monotonic {
                exit = true;
                break;
            }
            continue;
        }
        if monotonic
            && (is_terminating(pod)
                || !is_running_and_ready(pod)
                || !is_running_and_available(pod, min_ready, now))
        {
            exit = true;
            break;
        }
        if !identity_matches(set, pod) {
            let mut labels = pod.metadata.labels.clone().unwrap_or_default();
            if let Some((_, ord)) = parent_and_ordinal(&name) {
                labels.extend(identity_labels(&name, ord));
            }
            plan.writes.push(Write::Relabel { name, labels });
        }
    }
    if exit {
        return plan;
    }

    // Pods past the range, highest ordinal first (`processCondemned`).
    for pod in &condemned {
        if is_terminating(pod) {
            if monotonic {
                return plan;
            }
            continue;
        }
        let first = first_unavailable.is_some_and(|f| std::ptr::eq(f, *pod));
        if monotonic
            && !first
            && (!is_running_and_ready(pod) || !is_running_and_available(pod, min_ready, now))
        {
            return plan;
        }
        plan.writes.push(Write::Delete {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            why: "scale down",
        });
        if monotonic {
            return plan;
        }
    }
    if !plan.writes.is_empty() {
        return plan;
    }
    if !rolling {
        return plan;
    }

    // The rolling update, from the highest ordinal down to the partition.
    let partition = ru.and_then(|r| r.partition).unwrap_or(0).max(0) as usize;
    let stale = |p: &Pod| revision_of(p) != input.update.name && !is_terminating(p);
    match ru.and_then(|r| r.max_unavailable.as_ref()) {
        None => {
            for target in (partition..replicas.len()).rev() {
                let pod = replicas[target].0;
                if stale(pod) {
                    plan.writes.push(Write::Delete {
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        uid: pod.metadata.uid.clone().unwrap_or_default(),
                        why: "update",
                    });
                    plan.status.current -= 1;
                    return plan;
                }
                if is_unavailable(pod, min_ready, now) {
                    return plan;
                }
            }
        }
        Some(mu) => {
            let allowed = max_unavailable(mu, n);
            let unavailable = replicas
                .iter()
                .filter(|(p, _)| is_unavailable(p, min_ready, now))
                .count() as i32;
            if unavailable > allowed {
                return plan;
            }
            let mut left = allowed - unavailable;
            for target in (partition..replicas.len()).rev() {
                if left <= 0 {
                    break;
                }
                let pod = replicas[target].0;
                if stale(pod) {
                    plan.writes.push(Write::Delete {
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        uid: pod.metadata.uid.clone().unwrap_or_default(),
                        why: "update",
                    });
                    plan.status.current -= 1;
                    left -= 1;
                }
            }
            // The deletions are independent: make them at once.
            plan.parallel = true;
        }
    }
    plan
}

/// `completeRollingUpdate`: once every pod is updated and ready, the update revision is the
/// current one.
pub fn complete_rolling_update(set: &StatefulSet, status: &mut Status) {
    let rolling = set
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if rolling && status.updated == status.replicas && status.ready == status.replicas {
        status.current = status.updated;
        status.current_revision = status.update_revision.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn set(replicas: i32, extra: serde_json::Value) -> StatefulSet {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "generation": 2},
            "spec": {
                "replicas": replicas,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}
            }
        });
        if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(v).expect("set")
    }

    fn rev(name: &str, image: &str) -> Revision {
        Revision {
            name: name.into(),
            template: serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}))
            .expect("template"),
        }
    }

    /// A running pod of `ordinal` at `revision`, ready (or not), terminating (or not).
    fn pod(ordinal: i32, revision: &str, ready: bool, terminating: bool) -> Pod {
        let name = format!("web-{ordinal}");
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{ordinal}"),
                "labels": {"app": "web", POD_NAME_LABEL: name, POD_INDEX_LABEL: ordinal.to_string(),
                    REVISION_LABEL: revision}},
        }))
        .expect("pod");
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(Timestamp::from_second(1000).expect("ts"))),
                ..Default::default()
            }]),
            ..Default::default()
        });
        if terminating {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1500).expect("ts")));
        }
        p
    }

    fn run(set: &StatefulSet, pods: &[Pod], current: &Revision, update: &Revision) -> Plan {
        let owner = pods::controller_ref(set);
        let refs: Vec<&Pod> = pods.iter().collect();
        step(&Input {
            set,
            owner: &owner,
            pods: &refs,
            current,
            update,
            collision_count: 0,
            now: Timestamp::from_second(2000).expect("ts"),
        })
    }

    fn summary(plan: &Plan) -> Vec<String> {
        plan.writes
            .iter()
            .map(|w| match w {
                Write::Create(p) => format!("create {} {}", p.name_any(), revision_of(p)),
                Write::Delete { name, why, .. } => format!("delete {name} ({why})"),
                Write::Relabel { name, .. } => format!("relabel {name}"),
            })
            .collect()
    }

    use kube::ResourceExt;

    #[test]
    fn ordered_ready_creates_one_at_a_time_after_its_predecessor_is_ready() {
        let s = set(3, json!({}));
        let r1 = rev("web-a", "nginx:1");
        assert_eq!(summary(&run(&s, &[], &r1, &r1)), ["create web-0 web-a"]);
        let not_ready = [pod(0, "web-a", false, false)];
        assert!(summary(&run(&s, &not_ready, &r1, &r1)).is_empty());
        let ready = [pod(0, "web-a", true, false)];
        assert_eq!(summary(&run(&s, &ready, &r1, &r1)), ["create web-1 web-a"]);
        // The new pod has its identity.
        let plan = run(&s, &ready, &r1, &r1);
        let Write::Create(p) = &plan.writes[0] else {
            panic!("a creation")
        };
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        assert_eq!(p.labels()[POD_INDEX_LABEL], "1");
        assert_eq!(p.labels()[POD_NAME_LABEL], "web-1");
    }

    #[test]
    fn parallel_creates_every_missing_pod() {
        let s = set(3, json!({"podManagementPolicy": "Parallel"}));
        let r1 = rev("web-a", "nginx:1");
        let plan = run(&s, &[pod(1, "web-a", false, false)], &r1, &r1);
        assert_eq!(summary(&plan), ["create web-0 web-a", "create web-2 web-a"]);
        assert!(plan.parallel);
    }

    #[test]
    fn rolling_update_goes_from_the_highest_ordinal_one_at_a_time() {
        let s = set(3, json!({}));
        let (r1, r2) = (rev("web-a", "nginx:1"), rev("web-b", "nginx:2"));
        let old: Vec<Pod> = (0..3).map(|i| pod(i, "web-a", true, false)).collect();
        assert_eq!(summary(&run(&s, &old, &r1, &r2)), ["delete web-2 (update)"]);
        // Terminating: wait for it to go.
        let mut pods = old.clone();
        pods[2] = pod(2, "web-a", true, true);
        assert!(summary(&run(&s, &pods, &r1, &r2)).is_empty());
        // Gone: recreated at the update revision.
        pods.pop();
        assert_eq!(summary(&run(&s, &pods, &r1, &r2)), ["create web-2 web-b"]);
        // Updated but not ready yet: nothing else moves.
        pods.push(pod(2, "web-b", false, false));
        assert!(summary(&run(&s, &pods, &r1, &r2)).is_empty());
        pods[2] = pod(2, "web-b", true, false);
        assert_eq!(
            summary(&run(&s, &pods, &r1, &r2)),
            ["delete web-1 (update)"]
        );
        let plan = run(&s, &pods, &r1, &r2);
        assert_eq!((plan.status.current, plan.status.updated), (1, 1));
    }

    #[test]
    fn partition_keeps_lower_ordinals_at_the_current_revision() {
        let s = set(
            5,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}}),
        );
        let (r1, r2) = (rev("web-a", "nginx:1"), rev("web-b", "nginx:2"));
        let mut pods: Vec<Pod> = (0..3).map(|i| pod(i, "web-a", true, false)).collect();
        pods.push(pod(3, "web-b", true, false));
        pods.push(pod(4, "web-b", true, false));
        assert!(summary(&run(&s, &pods, &r1, &r2)).is_empty());
        // A lost pod below the partition comes back at the current revision.
        pods.remove(1);
        assert_eq!(summary(&run(&s, &pods, &r1, &r2)), ["create web-1 web-a"]);
        let plan = run(&s, &pods, &r1, &r2);
        assert_eq!(plan.status.updated, 2);
    }

    #[test]
    fn max_unavailable_deletes_that_many_at_once() {
        let s = set(
            5,
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}}),
        );
        let (r1, r2) = (rev("web-a", "nginx:1"), rev("web-b", "nginx:2"));
        let pods: Vec<Pod> = (0..5).map(|i| pod(i, "web-a", true, false)).collect();
        assert_eq!(
            summary(&run(&s, &pods, &r1, &r2)),
            ["delete web-4 (update)", "delete web-3 (update)"]
        );
        let mut one_down = pods.clone();
        one_down[4] = pod(4, "web-b", false, false);
        assert_eq!(
            summary(&run(&s, &one_down, &r1, &r2)),
            ["delete web-3 (update)"]
        );
    }

    #[test]
    fn scale_down_deletes_the_highest_ordinal_first_once_all_are_healthy() {
        let s = set(2, json!({}));
        let r1 = rev("web-a", "nginx:1");
        let pods: Vec<Pod> = (0..4).map(|i| pod(i, "web-a", true, false)).collect();
        assert_eq!(
            summary(&run(&s, &pods, &r1, &r1)),
            ["delete web-3 (scale down)"]
        );
        let mut waiting = pods.clone();
        waiting[0] = pod(0, "web-a", false, false);
        assert!(summary(&run(&s, &waiting, &r1, &r1)).is_empty());
    }

    #[test]
    fn on_delete_never_deletes_for_an_update() {
        let s = set(2, json!({"updateStrategy": {"type": "OnDelete"}}));
        let (r1, r2) = (rev("web-a", "nginx:1"), rev("web-b", "nginx:2"));
        let pods: Vec<Pod> = (0..2).map(|i| pod(i, "web-a", true, false)).collect();
        assert!(summary(&run(&s, &pods, &r1, &r2)).is_empty());
        assert_eq!(
            summary(&run(&s, &pods[..1], &r1, &r2)),
            ["create web-1 web-b"]
        );
    }

    #[test]
    fn completes_once_all_are_updated_and_ready() {
        let s = set(2, json!({}));
        let (r1, r2) = (rev("web-a", "nginx:1"), rev("web-b", "nginx:2"));
        let pods: Vec<Pod> = (0..2).map(|i| pod(i, "web-b", true, false)).collect();
        let mut status = run(&s, &pods, &r1, &r2).status;
        complete_rolling_update(&s, &mut status);
        assert_eq!(status.current_revision, "web-b");
        assert_eq!(status.current, 2);
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn ordinals() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
    }
}
