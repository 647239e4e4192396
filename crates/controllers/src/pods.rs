//! Pod predicates shared by every controller (ready, available, active) and the order in
//! which a controller deletes pods when it scales down, as Kubernetes ranks them.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

/// The objects of kind `K` a pod event concerns (`getPodController`, else the orphan's
/// `getPod<Kind>s`): the pod's controller when it is a `K` (nothing when another kind controls
/// it), and for an orphan every `K` of its namespace that would adopt it (`adopts`: its
/// selector, and for a StatefulSet the pod's name), so that one of them claims it.
pub fn controllers_to_sync<K>(
    store: &Store<K>,
    pod: &Pod,
    adopts: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let ns = pod.namespace().unwrap_or_default();
    if let Some(owner) = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    {
        return if owner.kind == K::kind(&()) {
            vec![ObjectRef::new(&owner.name).within(&ns)]
        } else {
            Vec::new()
        };
    }
    store
        .state()
        .iter()
        .filter(|c| c.meta().namespace.as_deref() == Some(ns.as_str()))
        .filter(|c| adopts(c))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The controller reference a controller puts on what it creates (`metav1.NewControllerRef`).
pub fn controller_ref<K: Resource<DynamicType = ()>>(obj: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: obj.name_any(),
        uid: obj.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod from a controller's template (`GetPodFromTemplate`): the template's labels,
/// annotations, finalizers and spec, owned by `owner`; the caller names it.
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: Option<String>,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            namespace,
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The pod's phase, or "" when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted: what a controller counts as one of its replicas.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// When the Ready condition became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

/// The Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t + SignedDuration::from_secs(i64::from(min_ready_seconds)) < now,
    }
}

/// How long until a ready pod becomes available, if it is ready but not yet available.
pub fn until_available(
    pod: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let since = ready_since(pod)??;
    if min_ready_seconds <= 0 {
        return None;
    }
    let at = since + SignedDuration::from_secs(i64::from(min_ready_seconds));
    let left = at.duration_since(now);
    if left.is_negative() {
        return None;
    }
    Some(std::time::Duration::from_millis(
        left.as_millis() as u64 + 1,
    ))
}

/// The facts Kubernetes' `ActivePodsWithRanks` compares, extracted from a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct RankFacts {
    pub assigned: bool,
    /// Pending 0, Unknown 1, Running 2.
    pub phase_rank: u8,
    pub ready: bool,
    pub deletion_cost: i32,
    /// Number of the controller's pods on the same node.
    pub colocated: usize,
    pub ready_since: Option<Timestamp>,
    pub restarts: i32,
    pub created: Option<Timestamp>,
}

impl RankFacts {
    /// Facts about `pod`, with `colocated` from the caller's view of sibling pods.
    pub fn of(pod: &Pod, colocated: usize) -> RankFacts {
        let status = pod.status.as_ref();
        RankFacts {
            assigned: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty()),
            phase_rank: match phase(pod) {
                "Pending" | "" => 0,
                "Unknown" => 1,
                _ => 2,
            },
            ready: is_ready(pod),
            deletion_cost: pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            colocated,
            ready_since: ready_since(pod).flatten(),
            restarts: status
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
                .unwrap_or(0),
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        }
    }
}

/// Deletion order: `Less` means `a` is deleted before `b`.
pub fn deletion_order(a: &RankFacts, b: &RankFacts) -> Ordering {
    // Unassigned pods go first, then Pending < Unknown < Running, then not-ready.
    a.assigned
        .cmp(&b.assigned)
        .then(a.phase_rank.cmp(&b.phase_rank))
        .then(a.ready.cmp(&b.ready))
        // Lower deletion cost first; more doubled-up pods first.
        .then(a.deletion_cost.cmp(&b.deletion_cost))
        .then(b.colocated.cmp(&a.colocated))
        // Ready more recently first (only when both are ready).
        .then(if a.ready && b.ready {
            newer_first(a.ready_since, b.ready_since)
        } else {
            Ordering::Equal
        })
        // More restarts first, then newer pods first.
        .then(b.restarts.cmp(&a.restarts))
        .then(newer_first(a.created, b.created))
}

/// A missing time sorts first, then the later time.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    }
}

/// The `n` pods to delete from `pods` (all active, all owned by one controller).
pub fn pick_for_deletion(pods: &[&Pod], n: usize) -> Vec<usize> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in pods {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, RankFacts)> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let colocated = node.and_then(|n| per_node.get(n).copied()).unwrap_or(0);
            (i, RankFacts::of(p, colocated))
        })
        .collect();
    ranked.sort_by(|a, b| deletion_order(&a.1, &b.1));
    ranked.into_iter().take(n).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RankFacts {
        RankFacts {
            assigned: true,
            phase_rank: 2,
            ready: true,
            deletion_cost: 0,
            colocated: 1,
            ready_since: Some(Timestamp::from_second(1000).expect("ts")),
            restarts: 0,
            created: Some(Timestamp::from_second(900).expect("ts")),
        }
    }

    #[test]
    fn ranking_table() {
        let t = |s| Some(Timestamp::from_second(s).expect("ts"));
        // (first, second): `first` must be deleted before `second`.
        let cases: Vec<(&str, RankFacts, RankFacts)> = vec![
            (
                "unassigned first",
                RankFacts {
                    assigned: false,
                    ..base()
                },
                base(),
            ),
            (
                "pending before running",
                RankFacts {
                    phase_rank: 0,
                    ..base()
                },
                base(),
            ),
            (
                "unknown before running",
                RankFacts {
                    phase_rank: 1,
                    ..base()
                },
                base(),
            ),
            (
                "not ready first",
                RankFacts {
                    ready: false,
                    ..base()
                },
                base(),
            ),
            (
                "lower cost first",
                RankFacts {
                    deletion_cost: -5,
                    ..base()
                },
                base(),
            ),
            (
                "doubled-up first",
                RankFacts {
                    colocated: 3,
                    ..base()
                },
                base(),
            ),
            (
                "ready more recently first",
                RankFacts {
                    ready_since: t(2000),
                    ..base()
                },
                base(),
            ),
            (
                "more restarts first",
                RankFacts {
                    restarts: 4,
                    ..base()
                },
                base(),
            ),
            (
                "newer first",
                RankFacts {
                    created: t(950),
                    ..base()
                },
                base(),
            ),
            (
                "no creation time first",
                RankFacts {
                    created: None,
                    ..base()
                },
                base(),
            ),
        ];
        for (what, a, b) in cases {
            assert_eq!(deletion_order(&a, &b), Ordering::Less, "{what}");
            assert_eq!(
                deletion_order(&b, &a),
                Ordering::Greater,
                "{what} (reversed)"
            );
        }
        assert_eq!(deletion_order(&base(), &base()), Ordering::Equal);
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let since = Timestamp::from_second(1000).expect("ts");
        let pod = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(since)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = |s| Timestamp::from_second(s).expect("ts");
        assert!(is_available(&pod, 0, at(1000)));
        assert!(!is_available(&pod, 5, at(1005)));
        assert!(is_available(&pod, 5, at(1006)));
        assert!(until_available(&pod, 5, at(1002)).is_some());
    }
}
