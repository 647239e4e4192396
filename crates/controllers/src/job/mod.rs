//! The Job controller, modelled on Kubernetes 1.30's `pkg/controller/job` (the TTL-after-
//! finished controller folded in). Each sync of a Job:
//!
//! 1. counts its finished pods the Kubernetes way, through the tracking finalizer
//!    `batch.kubernetes.io/job-tracking` on every pod it creates: a newly finished pod's uid
//!    goes to `status.uncountedTerminatedPods` (an Indexed Job's success to
//!    `completedIndexes`) and that status is written *before* the finalizer is removed; once
//!    it is gone the uid moves into `succeeded`/`failed`. So a count never depends on the pod
//!    still existing, and is never taken twice;
//! 2. decides whether the Job has failed (`backoffLimit` exceeded — failed pods, or container
//!    restarts with `restartPolicy: OnFailure` —, `activeDeadlineSeconds` passed, or a pod
//!    failure policy `FailJob` rule matched, announced first as a `FailureTarget` condition),
//!    deleting its active pods if so; else, unless suspended (then its active pods are
//!    deleted and `Suspended` is True), creates or deletes pods so that
//!    `min(parallelism, completions - succeeded)` are active — replacements of failed pods
//!    wait out the back-off (10 s doubling to 6 min since the last success) — Indexed Jobs
//!    giving each pod its index (annotation and label `batch.kubernetes.io/job-completion-index`,
//!    env `JOB_COMPLETION_INDEX`, hostname `<job>-<index>`);
//! 3. once every finished pod is counted, writes `Complete` (with `completionTime`) or
//!    `Failed`, and after `ttlSecondsAfterFinished` deletes the Job.
//!
//! Pods come from the shared pod cache (`informer.rs`); a sync never lists, and creations
//! and deletions are expectations (`expectations.rs`) the cache must show before the next
//! sync creates or deletes again. The pure rules live in `tracking.rs`. A pod whose Job is
//! gone has its finalizer removed by [`release_orphans`].

pub mod tracking;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_api::events::{Kind, Recorder};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::expectations::{self, Expectations};
use crate::informer::{Informer, Informers};
use crate::pods;
use crate::replicas::PodView;
use tracking::{Backoff, FailureAction, TRACKING_FINALIZER};

/// The controller's name in `spec.managedBy`, events and field managers.
const MANAGER: &str = "kubernetes.io/job-controller";

struct Ctx {
    client: Client,
    events: Recorder,
    pods: Informer<Pod>,
    expectations: Expectations,
    /// Failures since the last success per Job (`namespace/name`), for the back-off.
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Pods (uids, per Job) whose finalizer this controller removed and the cache may still
    /// show: Kubernetes' finalizer expectations, so that a lagging cache never has a pod
    /// counted twice.
    released: Mutex<HashMap<String, HashSet<String>>>,
}

/// Runs the Job controller and the release of orphaned pods' finalizers.
pub async fn run(client: Client, informers: Informers) {
    let jobs = informers.jobs.clone();
    let pods = informers.pods.clone();
    if jobs.synced().await.is_err() || pods.synced().await.is_err() {
        return;
    }
    tokio::spawn(release_orphans(client.clone(), jobs.clone(), pods.clone()));
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), "job-controller", None),
        client,
        pods: pods.clone(),
        expectations: Expectations::default(),
        backoff: Mutex::new(HashMap::new()),
        released: Mutex::new(HashMap::new()),
    });
    Controller::for_shared_stream(jobs.subscribe(), jobs.store())
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .watches_shared_stream(pods.subscribe(), |pod: Arc<Pod>| job_of(&pod))
        .run(reconcile, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// The Job that controls `pod`, if any.
fn job_of(pod: &Pod) -> Option<ObjectRef<Job>> {
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "Job")?;
    Some(ObjectRef::new(&owner.name).within(&pod.namespace().unwrap_or_default()))
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

/// Removes the tracking finalizer (the pod's other finalizers kept; optimistic on its
/// resourceVersion). True when it is gone (or the pod is).
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<bool, Error> {
    let keep: Vec<&String> = pod
        .finalizers()
        .iter()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "finalizers": keep,
        "resourceVersion": pod.metadata.resource_version,
    }});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if error::is_not_found(&e) => Ok(true),
        Err(e) if error::is_conflict(&e) => Ok(false),
        Err(e) => Err(Error::api(format!(
            "removing the finalizer of pod {}",
            pod.name_any()
        ))(e)),
    }
}

/// Pods that keep the tracking finalizer after their Job is gone (deleted with background
/// propagation, or its namespace emptied) would never go: remove it, after asking the API
/// server that the Job is really gone (the cache may lag behind a new Job).
async fn release_orphans(client: Client, jobs: Informer<Job>, pods: Informer<Pod>) {
    let mut stream = std::pin::pin!(pods.subscribe());
    while let Some(pod) = stream.next().await {
        if !has_finalizer(&pod) {
            continue;
        }
        let Some(owner) = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "Job")
        else {
            continue;
        };
        let ns = pod.namespace().unwrap_or_default();
        let cached = jobs
            .store()
            .get(&ObjectRef::new(&owner.name).within(&ns))
            .is_some_and(|j| j.metadata.uid.as_deref() == Some(owner.uid.as_str()));
        if cached {
            continue;
        }
        let api: Api<Job> = Api::namespaced(client.clone(), &ns);
        let gone = match api.get_opt(&owner.name).await {
            Ok(None) => true,
            Ok(Some(j)) => j.metadata.uid.as_deref() != Some(owner.uid.as_str()),
            Err(e) => {
                tracing::debug!(error = %e, "looking up the job of an orphaned pod");
                false
            }
        };
        if gone {
            let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            if let Err(e) = remove_finalizer(&pods_api, &pod).await {
                tracing::debug!(error = %e, pod = %pod.name_any(), "releasing an orphaned job pod");
            }
        }
    }
}

/// The Job's status as this sync builds it.
struct Draft {
    status: JobStatus,
    uncounted_succeeded: Vec<String>,
    uncounted_failed: Vec<String>,
}

impl Draft {
    fn of(job: &Job) -> Draft {
        let status = job.status.clone().unwrap_or_default();
        let u = status.uncounted_terminated_pods.clone().unwrap_or_default();
        Draft {
            uncounted_succeeded: u.succeeded.unwrap_or_default(),
            uncounted_failed: u.failed.unwrap_or_default(),
            status,
        }
    }

    fn finish(&self) -> JobStatus {
        let mut s = self.status.clone();
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        s.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: some(&self.uncounted_succeeded),
            failed: some(&self.uncounted_failed),
        });
        s
    }

    fn conditions(&mut self) -> &mut Vec<k8s_openapi::api::batch::v1::JobCondition> {
        self.status.conditions.get_or_insert_with(Vec::new)
    }
}

/// Writes `status` (a full update on the Job's resourceVersion, as Kubernetes' UpdateStatus)
/// when it differs; returns the Job as stored.
async fn write_status(api: &Api<Job>, job: &Job, status: JobStatus) -> Result<Job, Error> {
    if job.status.as_ref() == Some(&status) {
        return Ok(job.clone());
    }
    let mut next = job.clone();
    next.status = Some(status);
    api.replace_status(&job.name_any(), &PostParams::default(), &next)
        .await
        .map_err(Error::api(format!(
            "updating the status of job {}",
            job.name_any()
        )))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let spec = job.spec.clone().unwrap_or_default();
    if spec.managed_by.as_deref().is_some_and(|m| m != MANAGER) {
        return Ok(Action::await_change());
    }
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let key = format!("{ns}/{name}");
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let now = baton_api::clock::now();
    let view = PodView {
        pods: &ctx.pods,
        ns: &ns,
    };
    let caught_up = ctx.expectations.satisfied(&key, &view);
    let owned: Vec<Arc<Pod>> = ctx.pods.store().state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns.as_str())
            && p.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
    });

    if job.metadata.deletion_timestamp.is_some() || tracking::is_finished(&job) {
        for pod in owned.iter().filter(|p| has_finalizer(p)) {
            remove_finalizer(&pods_api, pod).await?;
        }
        ctx.released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if job.metadata.deletion_timestamp.is_some() {
            ctx.expectations.forget(&key);
            return Ok(Action::await_change());
        }
        return expire_after_ttl(&ctx, &jobs_api, &job, now).await;
    }

    // Pods whose finalizer removal the cache does not show yet count as without it.
    let released: HashSet<String> = {
        let mut all = ctx.released.lock().unwrap_or_else(|p| p.into_inner());
        let set = all.entry(key.clone()).or_default();
        set.retain(|u| {
            owned
                .iter()
                .any(|p| p.metadata.uid.as_deref() == Some(u.as_str()) && has_finalizer(p))
        });
        set.clone()
    };
    let tracked = |p: &Pod| {
        has_finalizer(p) && !released.contains(p.metadata.uid.as_deref().unwrap_or_default())
    };
    let mut draft = Draft::of(&job);
    let indexed = tracking::is_indexed(&job);
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1);

    // 1a. Uncounted pods whose finalizer is gone are counted now.
    let with_finalizer: HashSet<String> = owned
        .iter()
        .filter(|p| tracked(p))
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let (keep, counted): (Vec<String>, Vec<String>) =
        std::mem::take(&mut draft.uncounted_succeeded)
            .into_iter()
            .partition(|u| with_finalizer.contains(u));
    draft.uncounted_succeeded = keep;
    if !indexed {
        draft.status.succeeded = Some(draft.status.succeeded.unwrap_or(0) + counted.len() as i32);
    }
    let (keep, counted): (Vec<String>, Vec<String>) = std::mem::take(&mut draft.uncounted_failed)
        .into_iter()
        .partition(|u| with_finalizer.contains(u));
    draft.uncounted_failed = keep;
    draft.status.failed = Some(draft.status.failed.unwrap_or(0) + counted.len() as i32);

    // 1b. Newly finished pods are recorded.
    let mut completed = completions.map_or_else(BTreeSet::new, |c| {
        tracking::parse_indexes(draft.status.completed_indexes.as_deref().unwrap_or(""), c)
    });
    let mut needs_flush = false;
    let mut new_succeeded_times = Vec::new();
    let mut new_failed_times = Vec::new();
    let mut fail_job: Option<String> = None;
    let mut release: Vec<&Pod> = Vec::new();
    for pod in owned.iter().map(Arc::as_ref).filter(|p| tracked(p)) {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if pods::phase(pod) == "Succeeded" {
            if indexed {
                if let Some(ix) = tracking::completion_index(pod)
                    && completions.is_some_and(|c| ix < c)
                    && completed.insert(ix)
                {
                    needs_flush = true;
                    new_succeeded_times.push(tracking::finish_time(pod, now));
                }
            } else if !draft.uncounted_succeeded.contains(&pod_uid) {
                needs_flush = true;
                draft.uncounted_succeeded.push(pod_uid);
                new_succeeded_times.push(tracking::finish_time(pod, now));
            }
            release.push(pod);
        } else if tracking::is_failed(pod, &job) {
            if !draft.uncounted_failed.contains(&pod_uid) {
                match tracking::match_failure_policy(&job, pod) {
                    FailureAction::Ignore => {}
                    action => {
                        if let FailureAction::FailJob(msg) = action {
                            fail_job.get_or_insert(msg);
                        }
                        needs_flush = true;
                        draft.uncounted_failed.push(pod_uid);
                        new_failed_times.push(tracking::finish_time(pod, now));
                    }
                }
            }
            release.push(pod);
        } else if pod.metadata.deletion_timestamp.is_some() && tracking::is_suspended(&job) {
            // Deleted for the suspension: not a failure, nothing to count.
            release.push(pod);
        }
    }
    if indexed {
        draft.status.completed_indexes = Some(tracking::format_indexes(&completed));
    }
    let succeeded = if indexed {
        completed.len() as i32
    } else {
        draft.status.succeeded.unwrap_or(0) + draft.uncounted_succeeded.len() as i32
    };
    let failed = draft.status.failed.unwrap_or(0) + draft.uncounted_failed.len() as i32;
    let backoff = {
        let mut records = ctx.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let b = records
            .get(&key)
            .copied()
            .unwrap_or_default()
            .update(new_succeeded_times, new_failed_times);
        records.insert(key.clone(), b);
        b
    };

    // 2. Failed, or pods to create and delete.
    let mut active_pods: Vec<&Pod> = owned
        .iter()
        .map(Arc::as_ref)
        .filter(|p| pods::is_active(p))
        .collect();
    let mut terminating = owned.iter().filter(|p| tracking::is_terminating(p)).count() as i32;
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let mut requeue: Option<Duration> = None;
    let mut finished: Option<k8s_openapi::api::batch::v1::JobCondition> = None;
    let mut created = 0usize;
    if let Some(target) = tracking::condition(&job, "FailureTarget") {
        let reason = target.reason.clone().unwrap_or_default();
        let message = target.message.clone().unwrap_or_default();
        finished = Some(tracking::new_condition("Failed", &reason, &message, now));
    } else if let Some(msg) = fail_job {
        draft.conditions().push(tracking::new_condition(
            "FailureTarget",
            "PodFailurePolicy",
            &msg,
            now,
        ));
        finished = Some(tracking::new_condition(
            "Failed",
            "PodFailurePolicy",
            &msg,
            now,
        ));
    } else if failed > backoff_limit || tracking::past_backoff_limit_on_failure(&job, &active_pods)
    {
        finished = Some(tracking::new_condition(
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            now,
        ));
    } else if let Some(deadline) = spec.active_deadline_seconds
        && !tracking::is_suspended(&job)
        && let Some(start) = draft.status.start_time.as_ref()
    {
        let ends = start.0 + SignedDuration::from_secs(deadline);
        if now >= ends {
            finished = Some(tracking::new_condition(
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                now,
            ));
        } else {
            requeue = Some(Duration::from_millis(
                ends.duration_since(now).as_millis().max(0) as u64 + 1,
            ));
        }
    }

    if finished.is_some() {
        // Failed: stop what still runs; the condition waits until every pod is counted.
        let deleted = delete_pods(&ctx, &key, &job, &pods_api, &active_pods).await?;
        terminating += deleted as i32;
        if deleted != active_pods.len() || !caught_up {
            finished = None;
        }
        active_pods.clear();
    } else {
        let suspended = tracking::is_suspended(&job);
        if suspended {
            if tracking::ensure_condition(
                draft.conditions(),
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                ctx.events
                    .publish(job.as_ref(), Kind::Normal, "Suspended", "Job suspended");
            }
        } else if tracking::ensure_condition(
            draft.conditions(),
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            ctx.events
                .publish(job.as_ref(), Kind::Normal, "Resumed", "Job resumed");
            // The deadline counts from the resumption.
            draft.status.start_time = Some(Time(now));
        }
        if draft.status.start_time.is_none() && !suspended {
            draft.status.start_time = Some(Time(now));
            if let Some(d) = spec.active_deadline_seconds {
                requeue = Some(Duration::from_secs(d.max(0) as u64));
            }
        }
        if caught_up {
            let active = active_pods.len() as i32;
            let want = if suspended {
                0
            } else {
                tracking::want_active(completions, parallelism, succeeded, active)
            };
            if active > want {
                let victims = pods_for_removal(&job, &active_pods, (active - want) as usize);
                let victims: Vec<&Pod> = victims.into_iter().take(tracking::MAX_PER_SYNC).collect();
                let deleted = delete_pods(&ctx, &key, &job, &pods_api, &victims).await?;
                terminating += deleted as i32;
                let gone: HashSet<&str> = victims
                    .iter()
                    .filter_map(|p| p.metadata.uid.as_deref())
                    .collect();
                active_pods
                    .retain(|p| !gone.contains(p.metadata.uid.as_deref().unwrap_or_default()));
            } else {
                let waiting = if tracking::only_replace_failed(&job) {
                    terminating
                } else {
                    0
                };
                let diff = (want - active - waiting).max(0) as usize;
                if diff > 0 {
                    let remaining = backoff.remaining(now);
                    if remaining > Duration::ZERO {
                        requeue = Some(requeue.map_or(remaining, |r| r.min(remaining)));
                    } else {
                        let indexes: Vec<Option<i32>> = match completions.filter(|_| indexed) {
                            Some(c) => {
                                let held: BTreeSet<i32> = active_pods
                                    .iter()
                                    .filter_map(|p| tracking::completion_index(p))
                                    .collect();
                                tracking::first_pending_indexes(
                                    c,
                                    &completed,
                                    &held,
                                    diff.min(tracking::MAX_PER_SYNC),
                                )
                                .into_iter()
                                .map(Some)
                                .collect()
                            }
                            None => vec![None; diff.min(tracking::MAX_PER_SYNC)],
                        };
                        created = create_pods(&ctx, &key, &job, &pods_api, &indexes).await?;
                    }
                }
            }
            let active = (active_pods.len() + created) as i32;
            if tracking::is_complete(completions, succeeded, active) && !suspended {
                finished = Some(tracking::new_condition("Complete", "", "", now));
            }
        }
    }

    // Status counts of what is running now.
    let active = (active_pods.len() + created) as i32;
    draft.status.active = Some(active);
    draft.status.ready = Some(active_pods.iter().filter(|p| pods::is_ready(p)).count() as i32);
    draft.status.terminating = Some(terminating);
    if !indexed {
        draft.status.completed_indexes = None;
    }

    // 3. Record newly finished pods before their finalizers go.
    let mut current = job.as_ref().clone();
    if needs_flush {
        current = write_status(&jobs_api, &current, draft.finish()).await?;
    }
    let mut removed: HashSet<String> = HashSet::new();
    for pod in release {
        if remove_finalizer(&pods_api, pod).await? {
            removed.extend(pod.metadata.uid.clone());
        }
    }
    ctx.released
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_default()
        .extend(removed.iter().cloned());
    let (gone, keep): (Vec<String>, Vec<String>) = std::mem::take(&mut draft.uncounted_succeeded)
        .into_iter()
        .partition(|u| removed.contains(u));
    draft.uncounted_succeeded = keep;
    if !indexed {
        draft.status.succeeded = Some(draft.status.succeeded.unwrap_or(0) + gone.len() as i32);
    } else {
        draft.status.succeeded = Some(succeeded);
    }
    let (gone, keep): (Vec<String>, Vec<String>) = std::mem::take(&mut draft.uncounted_failed)
        .into_iter()
        .partition(|u| removed.contains(u));
    draft.uncounted_failed = keep;
    draft.status.failed = Some(draft.status.failed.unwrap_or(0) + gone.len() as i32);

    // 4. Finished once everything is counted.
    let all_counted = draft.uncounted_succeeded.is_empty() && draft.uncounted_failed.is_empty();
    if let Some(cond) = finished.filter(|_| all_counted) {
        let complete = cond.type_ == "Complete";
        if complete {
            draft.status.completion_time = Some(Time(now));
            ctx.events
                .publish(job.as_ref(), Kind::Normal, "Completed", "Job completed");
        } else {
            let reason = cond.reason.clone().unwrap_or_default();
            let message = cond.message.clone().unwrap_or_default();
            ctx.events
                .publish(job.as_ref(), Kind::Warning, &reason, message);
        }
        draft.conditions().push(cond);
        ctx.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        requeue = None;
    }
    let zero_to_none = |n: Option<i32>| n.filter(|n| *n != 0);
    draft.status.succeeded = zero_to_none(draft.status.succeeded);
    draft.status.failed = zero_to_none(draft.status.failed);
    draft.status.active = zero_to_none(draft.status.active);
    match write_status(&jobs_api, &current, draft.finish()).await {
        Ok(_) => {}
        Err(Error::Api { source, .. }) if error::is_not_found(&source) => {
            ctx.expectations.forget(&key);
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// `activePodsForRemoval`: an Indexed Job first drops pods of a repeated or out-of-range
/// index; then Kubernetes' deletion rank (not ready, unscheduled, younger first).
fn pods_for_removal<'a>(job: &Job, active: &[&'a Pod], n: usize) -> Vec<&'a Pod> {
    let mut out: Vec<&Pod> = Vec::new();
    if tracking::is_indexed(job) {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let mut seen = BTreeSet::new();
        for p in active {
            let keep =
                tracking::completion_index(p).is_some_and(|i| i < completions && seen.insert(i));
            if !keep {
                out.push(p);
            }
        }
    }
    let rest: Vec<&Pod> = active
        .iter()
        .copied()
        .filter(|p| !out.iter().any(|o| std::ptr::eq(*o, *p)))
        .collect();
    for i in pods::pick_for_deletion(&rest, n.saturating_sub(out.len())) {
        out.push(rest[i]);
    }
    out
}

/// Deletes `victims` (as expectations of `key`); how many it deleted.
async fn delete_pods(
    ctx: &Ctx,
    key: &str,
    job: &Job,
    api: &Api<Pod>,
    victims: &[&Pod],
) -> Result<usize, Error> {
    let results = futures::future::join_all(victims.iter().map(|pod| async move {
        let name = pod.name_any();
        let gone = expectations::Deleted {
            name: name.clone(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(Some(gone)),
            Err(e) if error::is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::api(format!("deleting pod {name}"))(e)),
        }
    }))
    .await;
    let mut deleted = Vec::new();
    let mut failed = None;
    for r in results {
        match r {
            Ok(Some(d)) => {
                ctx.events.publish(
                    job,
                    Kind::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", d.name),
                );
                deleted.push(d);
            }
            Ok(None) => {}
            Err(e) => failed = Some(e),
        }
    }
    let n = deleted.len();
    ctx.expectations.expect_deletions(key, deleted);
    match failed {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// The pod of `index` (an Indexed Job's) or of no index, from the Job's template.
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let template = job.spec.clone().unwrap_or_default().template;
    let mut pod = pods::from_template(&template, job.namespace(), pods::controller_ref(job));
    let name = job.name_any();
    let meta = &mut pod.metadata;
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    match index {
        None => meta.generate_name = Some(format!("{}-", truncate(&name, 58))),
        Some(ix) => {
            let ix_text = ix.to_string();
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(tracking::COMPLETION_INDEX.into(), ix_text.clone());
            meta.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(tracking::COMPLETION_INDEX.into(), ix_text.clone());
            meta.generate_name = Some(format!(
                "{}-{ix_text}-",
                truncate(&name, 57 - ix_text.len().min(57))
            ));
            if let Some(spec) = pod.spec.as_mut() {
                spec.hostname = Some(format!("{name}-{ix_text}"));
                let env = EnvVar {
                    name: tracking::INDEX_ENV.into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!(
                                "metadata.annotations['{}']",
                                tracking::COMPLETION_INDEX
                            ),
                        }),
                        ..Default::default()
                    }),
                };
                let containers = spec
                    .containers
                    .iter_mut()
                    .chain(spec.init_containers.iter_mut().flatten());
                for c in containers {
                    let vars = c.env.get_or_insert_with(Vec::new);
                    if !vars.iter().any(|v| v.name == tracking::INDEX_ENV) {
                        vars.push(env.clone());
                    }
                }
            }
        }
    }
    pod
}

/// `name` cut to at most `max` bytes, at a character boundary.
fn truncate(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Creates one pod per entry of `indexes` in Kubernetes' slow-start batches (1, 2, 4, ...),
/// stopping at the first failure.
async fn create_pods(
    ctx: &Ctx,
    key: &str,
    job: &Job,
    api: &Api<Pod>,
    indexes: &[Option<i32>],
) -> Result<usize, Error> {
    let mut total = 0;
    let mut rest = indexes;
    let mut batch = 1;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        rest = later;
        batch *= 2;
        let results = futures::future::join_all(now.iter().map(|ix| {
            let pod = pod_for(job, *ix);
            async move { api.create(&PostParams::default(), &pod).await }
        }))
        .await;
        let mut created = Vec::new();
        let mut failed = None;
        for r in results {
            match r {
                Ok(p) => {
                    ctx.events.publish(
                        job,
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
                    ctx.events.publish(
                        job,
                        Kind::Warning,
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    failed = Some(Error::api(format!(
                        "creating a pod for job {}",
                        job.name_any()
                    ))(e));
                }
            }
        }
        total += created.len();
        ctx.expectations.expect_creations(key, created);
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(total)
}

/// The TTL-after-finished controller: deletes a finished Job `ttlSecondsAfterFinished` after
/// it finished (foreground, on its uid), or waits until then.
async fn expire_after_ttl(
    ctx: &Ctx,
    api: &Api<Job>,
    job: &Job,
    now: Timestamp,
) -> Result<Action, Error> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let finished_at = job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
        .map(|t| t.0)
        .or_else(|| {
            tracking::condition(job, "Failed")
                .or_else(|| tracking::condition(job, "Complete"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
        });
    let Some(finished_at) = finished_at else {
        return Ok(Action::await_change());
    };
    let expires = finished_at + SignedDuration::from_secs(ttl as i64);
    if now < expires {
        let wait = expires.duration_since(now).as_millis().max(0) as u64 + 1;
        return Ok(Action::requeue(Duration::from_millis(wait)));
    }
    let params = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => {}
        Err(e) if error::is_not_found(&e) || error::is_conflict(&e) => {}
        Err(e) => {
            return Err(Error::api(format!(
                "deleting expired job {}",
                job.name_any()
            ))(e));
        }
    }
    ctx.expectations.forget(&format!(
        "{}/{}",
        job.namespace().unwrap_or_default(),
        job.name_any()
    ));
    Ok(Action::await_change())
}
