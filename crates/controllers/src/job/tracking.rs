//! The pure part of the Job controller (`pkg/controller/job`): which of a Job's pods count
//! as succeeded, failed or active, completion indexes and their `completedIndexes` text, the
//! pod failure policy, the back-off before replacing failed pods, how many pods should run,
//! and the conditions a finished Job gets.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// The finalizer that keeps a finished pod until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) with an Indexed Job's pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable with the completion index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Kubernetes' `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff` (1.30).
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(6 * 60);
/// The most pods created or deleted in one sync (`MaxPodCreateDeletePerSync`).
pub const MAX_PER_SYNC: usize = 500;

fn spec_of(job: &Job) -> k8s_openapi::api::batch::v1::JobSpec {
    job.spec.clone().unwrap_or_default()
}

pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

pub fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// A condition of `type_` that is True.
pub fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_ && c.status == "True"))
}

/// Complete or Failed: the controller is done with it.
pub fn is_finished(job: &Job) -> bool {
    condition(job, "Complete").is_some() || condition(job, "Failed").is_some()
}

/// `podReplacementPolicy: Failed` (always so with a pod failure policy): a replacement
/// waits until the old pod is Failed, not merely terminating.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = spec_of(job);
    spec.pod_replacement_policy.as_deref() == Some("Failed") || spec.pod_failure_policy.is_some()
}

/// The pod's completion index, from the annotation (the label as fallback).
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let from = |m: Option<&std::collections::BTreeMap<String, String>>| {
        m.and_then(|m| m.get(COMPLETION_INDEX))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|i| *i >= 0)
    };
    from(pod.metadata.annotations.as_ref()).or_else(|| from(pod.metadata.labels.as_ref()))
}

/// A pod whose node has finished it while it was being deleted (Baton's agents and simulated
/// nodes delete with grace 0 once the containers are gone): the pod will not report a
/// phase any more, so it counts as Failed — Kubernetes' PodGC marks such pods Failed.
fn finished_by_node(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod.metadata.deletion_grace_period_seconds == Some(0)
}

/// Succeeded or Failed (or finished by its node while deleted).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pods::phase(pod), "Succeeded" | "Failed") || finished_by_node(pod)
}

/// `isPodFailed`: a Failed pod, or one deleted before it succeeded (an orphan never gets
/// the chance to fail) unless only Failed pods are replaced. Pods deleted because the Job
/// was suspended are not failures.
pub fn is_failed(pod: &Pod, job: &Job) -> bool {
    let phase = pods::phase(pod);
    if phase == "Failed" || (finished_by_node(pod) && phase != "Succeeded") {
        return true;
    }
    if only_replace_failed(job) || is_suspended(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase != "Succeeded"
}

/// Being deleted but not finished: `status.terminating`.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !is_terminal(pod)
}

/// Indexes as `completedIndexes` writes them: `1,3-5,7`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Parses `completedIndexes`, keeping indexes below `completions`.
pub fn parse_indexes(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<i32>(), b.trim().parse::<i32>()) {
            set.extend((a.max(0)..=b.min(completions - 1)).filter(|i| *i >= a));
        }
    }
    set
}

/// The lowest `n` indexes below `completions` neither completed nor held by an active pod.
pub fn first_pending_indexes(
    completions: i32,
    completed: &BTreeSet<i32>,
    active: &BTreeSet<i32>,
    n: usize,
) -> Vec<i32> {
    (0..completions)
        .filter(|i| !completed.contains(i) && !active.contains(i))
        .take(n)
        .collect()
}

/// How many pods should be active (`manageJob`'s `wantActive`).
pub fn want_active(completions: Option<i32>, parallelism: i32, succeeded: i32, active: i32) -> i32 {
    match completions {
        // Any success finishes the work: let what runs run, start nothing new.
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism.max(0)),
    }
}

/// The Job is done successfully (`complete` in `syncJob`).
pub fn is_complete(completions: Option<i32>, succeeded: i32, active: i32) -> bool {
    match completions {
        None => succeeded > 0 && active == 0,
        Some(c) => succeeded >= c && active == 0,
    }
}

/// `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure` the container restarts of
/// running pods count against the back-off limit.
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[&Pod]) -> bool {
    let spec = spec_of(job);
    let restart = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(pods::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    let limit = spec.backoff_limit.unwrap_or(6);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// What the pod failure policy says of a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// Fail the Job at once, with this message.
    FailJob(String),
    /// Not counted against the back-off limit.
    Ignore,
    /// Counted (also when no rule matches).
    Count,
}

/// `matchPodFailurePolicy`: the first rule matching the failed pod.
pub fn match_failure_policy(job: &Job, pod: &Pod) -> FailureAction {
    let rules = spec_of(job)
        .pod_failure_policy
        .map(|p| p.rules)
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(what) = rule_matches(rule, pod) {
            return match rule.action.as_str() {
                "FailJob" => {
                    FailureAction::FailJob(format!("{what} matching FailJob rule at index {i}"))
                }
                "Ignore" => FailureAction::Ignore,
                _ => FailureAction::Count,
            };
        }
    }
    FailureAction::Count
}

/// What in the pod matched `rule`, worded as Kubernetes' FailJob message begins.
fn rule_matches(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Some(req) = &rule.on_exit_codes {
        let status = pod.status.as_ref()?;
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for c in statuses {
            if req.container_name.as_deref().is_some_and(|n| n != c.name) {
                continue;
            }
            let Some(code) = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
            else {
                continue;
            };
            if code == 0 {
                continue;
            }
            let listed = req.values.contains(&code);
            let hit = match req.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            if hit {
                return Some(format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code}",
                    c.name
                ));
            }
        }
        return None;
    }
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    for pattern in rule.on_pod_conditions.iter().flatten() {
        let want = pattern
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("True");
        if conditions
            .iter()
            .any(|c| c.type_ == pattern.type_ && c.status == want)
        {
            return Some(
                format!("Pod {ns}/{name} has condition {} ", pattern.type_)
                    .trim_end()
                    .to_string(),
            );
        }
    }
    None
}

/// When a pod finished: its containers' last `finishedAt`, else its Ready condition's
/// transition, else its deletion, else `now` (`findLastFinishTimeOfPod`).
pub fn finish_time(pod: &Pod, now: Timestamp) -> Timestamp {
    let status = pod.status.as_ref();
    let finished = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    finished
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now)
}

/// The failures since the last success, for the replacement back-off (`backoffRecord`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

impl Backoff {
    /// The record after newly counted pods finished at these times.
    pub fn update(self, mut succeeded: Vec<Timestamp>, mut failed: Vec<Timestamp>) -> Backoff {
        succeeded.sort();
        failed.sort();
        let Some(&last_success) = succeeded.last() else {
            return match failed.last() {
                None => self,
                Some(&last) => Backoff {
                    failures_after_last_success: self.failures_after_last_success
                        + failed.len() as u32,
                    last_failure: Some(last),
                },
            };
        };
        let after: Vec<Timestamp> = failed.into_iter().filter(|f| *f > last_success).collect();
        Backoff {
            failures_after_last_success: after.len() as u32,
            last_failure: after.last().copied(),
        }
    }

    /// How long to wait before creating a replacement: 10 s doubled per failure since the
    /// last success, at most 6 minutes, counted from the last failure.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let mut backoff = BACKOFF_BASE;
        for _ in 1..self.failures_after_last_success {
            backoff *= 2;
            if backoff >= BACKOFF_MAX {
                backoff = BACKOFF_MAX;
                break;
            }
        }
        let elapsed = now.duration_since(last);
        let elapsed = Duration::from_millis(elapsed.as_millis().max(0) as u64);
        backoff.saturating_sub(elapsed)
    }
}

/// A condition as `newCondition` makes it: probe and transition time now.
pub fn new_condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
    }
}

/// `ensureJobConditionStatus`: sets an existing condition's status (or adds it when it is to
/// be True); true when something changed.
pub fn ensure_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => false,
        Some(c) => {
            c.status = status.into();
            c.last_probe_time = Some(Time(now));
            c.last_transition_time = Some(Time(now));
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            true
        }
        None if status == "True" => {
            conditions.push(new_condition(type_, reason, message, now));
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
