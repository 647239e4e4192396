//! Deployment status: the counts summed over its ReplicaSets and the Available and
//! Progressing conditions with Kubernetes' reasons and messages (`calculateStatus`,
//! `syncRolloutStatus`), including the progress deadline.

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// One condition to set.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// Kubernetes' `SetDeploymentCondition`: no change when status and reason are unchanged;
/// the transition time is kept when only the reason changes.
pub fn set(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let type_ = c.type_.clone().unwrap_or_default();
    if let Some(cur) = get(s, &type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(s, &type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(type_));
    }
}

/// The inputs of the Progressing decision.
pub struct Rollout<'a> {
    pub replicas: i32,
    pub deadline: Option<i32>,
    pub new_rs: Option<&'a str>,
    pub generation: Option<i64>,
    pub paused: bool,
}

/// Complete: every replica updated and available, and the latest spec observed.
pub fn complete(r: &Rollout, s: &DeploymentStatus) -> bool {
    s.updated_replicas.unwrap_or(0) == r.replicas
        && s.replicas.unwrap_or(0) == r.replicas
        && s.available_replicas.unwrap_or(0) == r.replicas
        && s.observed_generation >= r.generation
}

fn progressed(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let g = |v: Option<i32>| v.unwrap_or(0);
    g(new.updated_replicas) > g(old.updated_replicas)
        || g(new.replicas) - g(new.updated_replicas) < g(old.replicas) - g(old.updated_replicas)
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// Sets Progressing on `new` given the previous status `old`; returns when to check the
/// deadline again.
pub fn sync_progressing(
    r: &Rollout,
    old: &DeploymentStatus,
    new: &mut DeploymentStatus,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let Some(deadline) = r.deadline.filter(|d| *d != i32::MAX) else {
        remove(new, "Progressing");
        return None;
    };
    if r.paused {
        return None;
    }
    let cur = get(old, "Progressing").cloned();
    if new.replicas == new.updated_replicas
        && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE)
    {
        return None;
    }
    let rs = r.new_rs.unwrap_or("");
    if complete(r, new) {
        set(
            new,
            condition(
                "Progressing",
                "True",
                NEW_RS_AVAILABLE,
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
                now,
            ),
        );
        return None;
    }
    if progressed(old, new) {
        let mut c = condition(
            "Progressing",
            "True",
            RS_UPDATED,
            format!("ReplicaSet \"{rs}\" is progressing."),
            now,
        );
        if let Some(cur) = cur.as_ref().filter(|c| c.status.as_deref() == Some("True")) {
            c.last_transition_time = cur.last_transition_time.clone();
        }
        remove(new, "Progressing");
        new.conditions.get_or_insert_with(Vec::new).push(c);
        return Some(std::time::Duration::from_secs(deadline.max(0) as u64 + 1));
    }
    let cur = cur?;
    let timed_out = cur.reason.as_deref() == Some(TIMED_OUT)
        || cur
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + SignedDuration::from_secs(i64::from(deadline)) < now);
    if timed_out && cur.reason.as_deref() != Some(NEW_RS_AVAILABLE) {
        set(
            new,
            condition(
                "Progressing",
                "False",
                TIMED_OUT,
                format!("ReplicaSet \"{rs}\" has timed out progressing."),
                now,
            ),
        );
        return None;
    }
    cur.last_update_time.as_ref().map(|t| {
        let left = (t.0 + SignedDuration::from_secs(i64::from(deadline))).duration_since(now);
        std::time::Duration::from_millis(left.as_millis().max(0) as u64 + 100)
    })
}

/// Available condition from the counts.
pub fn sync_available(
    new: &mut DeploymentStatus,
    replicas: i32,
    max_unavailable: i32,
    now: Timestamp,
) {
    if new.available_replicas.unwrap_or(0) >= replicas - max_unavailable {
        set(
            new,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            new,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(replicas: i32, updated: i32, available: i32, gen_: i64) -> DeploymentStatus {
        DeploymentStatus {
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ready_replicas: Some(available),
            observed_generation: Some(gen_),
            ..Default::default()
        }
    }

    fn reason(s: &DeploymentStatus) -> Option<String> {
        get(s, "Progressing").and_then(|c| c.reason.clone())
    }

    #[test]
    fn progressing_reasons() {
        let now = Timestamp::from_second(10_000).expect("ts");
        let r = Rollout {
            replicas: 3,
            deadline: Some(600),
            new_rs: Some("d-abc"),
            generation: Some(2),
            paused: false,
        };
        let mut done = st(3, 3, 3, 2);
        sync_progressing(&r, &st(3, 2, 2, 2), &mut done, now);
        assert_eq!(reason(&done).as_deref(), Some(NEW_RS_AVAILABLE));
        let mut moving = st(4, 2, 3, 2);
        sync_progressing(&r, &st(4, 1, 3, 2), &mut moving, now);
        assert_eq!(reason(&moving).as_deref(), Some(RS_UPDATED));
        // No progress for longer than the deadline.
        let mut old = st(4, 1, 3, 2);
        set(
            &mut old,
            condition(
                "Progressing",
                "True",
                RS_UPDATED,
                "x".into(),
                Timestamp::from_second(1000).expect("ts"),
            ),
        );
        let mut stuck = old.clone();
        sync_progressing(&r, &old, &mut stuck, now);
        assert_eq!(reason(&stuck).as_deref(), Some(TIMED_OUT));
        assert_eq!(
            get(&stuck, "Progressing").map(|c| c.status.as_deref().unwrap_or("")),
            Some("False")
        );
        // No deadline: no condition.
        let mut none = st(3, 3, 3, 2);
        sync_progressing(
            &Rollout {
                deadline: Some(i32::MAX),
                ..r
            },
            &old,
            &mut none,
            now,
        );
        assert_eq!(reason(&none), None);
    }

    #[test]
    fn available_condition() {
        let now = Timestamp::from_second(1).expect("ts");
        let mut s = st(3, 3, 2, 1);
        sync_available(&mut s, 3, 1, now);
        assert_eq!(
            get(&s, "Available").map(|c| c.status.as_deref().unwrap_or("")),
            Some("True")
        );
        let mut s = st(3, 3, 1, 1);
        sync_available(&mut s, 3, 1, now);
        assert_eq!(
            get(&s, "Available").and_then(|c| c.reason.as_deref()),
            Some("MinimumReplicasUnavailable")
        );
    }
}
