//! The Deployment's status from its ReplicaSets (Kubernetes' `calculateStatus` and the
//! condition handling of `syncRolloutStatus`): counts summed over the ReplicaSets, updated
//! replicas from the new one, the Available condition, the paused/resumed Progressing
//! reasons, `NewReplicaSetCreated`, and the progress deadline through [`progress`]. Pure:
//! the reconcile in `sync.rs` writes what this returns.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::progress;
use super::{available, spec_replicas};

/// What the status is computed from.
pub struct Input<'a> {
    pub deployment: &'a Deployment,
    /// Every ReplicaSet the Deployment owns, as of the end of this sync.
    pub replica_sets: &'a [ReplicaSet],
    /// The name of the ReplicaSet with the Deployment's template, if there is one.
    pub new_rs: Option<&'a str>,
    /// The resolved maxUnavailable (`rolling::max_unavailable`).
    pub max_unavailable: i32,
    pub now: Timestamp,
}

/// The status to write and what follows from it.
#[derive(Debug)]
pub struct Output {
    pub status: DeploymentStatus,
    /// When to look at the progress deadline again.
    pub recheck: Option<Duration>,
    /// Every replica updated and available, and the latest spec observed.
    pub complete: bool,
}

/// The Deployment's new status.
pub fn calculate(input: &Input) -> Output {
    let d = input.deployment;
    let now = input.now;
    let replicas = d.spec.replicas.unwrap_or(1);
    let paused = d.spec.paused == Some(true);
    let before = d.status.clone().unwrap_or_default();
    let all = input.replica_sets;
    let new_now = all
        .iter()
        .find(|r| Some(r.name_any().as_str()) == input.new_rs);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(
            all.iter()
                .map(|r| r.status.as_ref().map_or(0, |s| s.replicas))
                .sum(),
        ),
        updated_replicas: Some(
            new_now
                .and_then(|r| r.status.as_ref())
                .map_or(0, |s| s.replicas),
        ),
        ready_replicas: Some(
            all.iter()
                .map(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0)
                })
                .sum(),
        ),
        available_replicas: Some(all.iter().map(available).sum()),
        collision_count: before.collision_count,
        conditions: before.conditions.clone(),
        ..Default::default()
    };
    let spec_total: i32 = all.iter().map(spec_replicas).sum();
    status.unavailable_replicas =
        Some((spec_total - status.available_replicas.unwrap_or(0)).max(0));
    progress::sync_available(&mut status, replicas, input.max_unavailable, now);
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
    if let Some(n) = input.new_rs.filter(|_| !paused) {
        let cond = progress::get(&status, "Progressing").and_then(|c| c.reason.clone());
        if cond.is_none() || cond.as_deref() == Some(progress::RESUMED) {
            progress::set(
                &mut status,
                progress::condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{n}\""),
                    now,
                ),
            );
        }
    }
    let rollout = progress::Rollout {
        replicas,
        deadline: d.spec.progress_deadline_seconds,
        new_rs: input.new_rs,
        generation: d.metadata.generation,
        paused,
    };
    let recheck = progress::sync_progressing(&rollout, &before, &mut status, now);
    let complete = progress::complete(&rollout, &status);
    Output {
        status,
        recheck,
        complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32, paused: bool, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": {
                "replicas": replicas,
                "paused": paused,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}}
            },
            "status": status
        }))
        .expect("deployment")
    }

    /// A ReplicaSet: spec size, then status replicas, ready, available.
    fn rs(name: &str, spec: i32, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": spec, "selector": {}},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}
        }))
        .expect("replica set")
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    fn reason<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a str> {
        progress::get(s, type_).and_then(|c| c.reason.as_deref())
    }

    #[test]
    fn counts_sum_over_replica_sets_and_updated_comes_from_the_new_one() {
        let d = deployment(10, false, json!({"collisionCount": 1}));
        let sets = [rs("web-old", 6, 7, 7, 6), rs("web-new", 5, 4, 3, 2)];
        let out = calculate(&Input {
            deployment: &d,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 2,
            now: at(1000),
        });
        let s = &out.status;
        assert_eq!(s.replicas, Some(11));
        assert_eq!(s.updated_replicas, Some(4));
        assert_eq!(s.ready_replicas, Some(10));
        assert_eq!(s.available_replicas, Some(8));
        // spec total 11 − available 8.
        assert_eq!(s.unavailable_replicas, Some(3));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.collision_count, Some(1), "kept from the previous status");
        assert_eq!(reason(s, "Available"), Some("MinimumReplicasAvailable"));
        assert_eq!(reason(s, "Progressing"), Some(progress::RS_UPDATED));
        assert!(!out.complete);
        assert!(
            out.recheck.is_some(),
            "the deadline is watched while progressing"
        );
    }

    #[test]
    fn below_minimum_availability() {
        let d = deployment(10, false, json!({}));
        let sets = [rs("web-new", 10, 10, 7, 7)];
        let out = calculate(&Input {
            deployment: &d,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 2,
            now: at(1000),
        });
        assert_eq!(
            reason(&out.status, "Available"),
            Some("MinimumReplicasUnavailable")
        );
    }

    #[test]
    fn complete_rollout() {
        let d = deployment(3, false, json!({}));
        let sets = [rs("web-old", 0, 0, 0, 0), rs("web-new", 3, 3, 3, 3)];
        let out = calculate(&Input {
            deployment: &d,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 0,
            now: at(1000),
        });
        assert!(out.complete);
        assert_eq!(
            reason(&out.status, "Progressing"),
            Some(progress::NEW_RS_AVAILABLE)
        );
        assert_eq!(out.recheck, None);
    }

    #[test]
    fn new_replica_set_created_when_nothing_moved_yet() {
        let d = deployment(3, false, json!({}));
        let sets = [rs("web-new", 1, 0, 0, 0)];
        let out = calculate(&Input {
            deployment: &d,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 0,
            now: at(1000),
        });
        let c = progress::get(&out.status, "Progressing").expect("condition");
        assert_eq!(c.reason.as_deref(), Some("NewReplicaSetCreated"));
        assert_eq!(
            c.message.as_deref(),
            Some("Created new replica set \"web-new\"")
        );
    }

    #[test]
    fn paused_then_resumed() {
        let d = deployment(3, true, json!({}));
        let sets = [rs("web-new", 3, 3, 3, 3)];
        let paused = calculate(&Input {
            deployment: &d,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 0,
            now: at(1000),
        });
        let c = progress::get(&paused.status, "Progressing").expect("condition");
        assert_eq!(c.status.as_deref(), Some("Unknown"));
        assert_eq!(c.reason.as_deref(), Some(progress::PAUSED));
        assert_eq!(paused.recheck, None);

        let mut resumed = d.clone();
        resumed.spec.paused = Some(false);
        resumed.status = Some(paused.status);
        let out = calculate(&Input {
            deployment: &resumed,
            replica_sets: &sets,
            new_rs: Some("web-new"),
            max_unavailable: 0,
            now: at(1001),
        });
        // Resumed, then (the rollout being done) NewReplicaSetAvailable.
        assert!(out.complete);
        assert_eq!(
            reason(&out.status, "Progressing"),
            Some(progress::NEW_RS_AVAILABLE)
        );
    }
}
