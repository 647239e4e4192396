//! The CronJob controller, modelled on Kubernetes 1.30's `pkg/controller/cronjob`
//! (`cronjob_controllerv2.go`). Each sync of a CronJob:
//!
//! 1. deletes its oldest finished Jobs beyond `successfulJobsHistoryLimit` and
//!    `failedJobsHistoryLimit` (by start time);
//! 2. reconciles `status.active` with the Jobs it controls (finished ones leave it,
//!    `lastSuccessfulTime` follows the latest completion, vanished ones are dropped);
//! 3. unless suspended or being deleted, finds the latest start time due (`schedule.rs`:
//!    from the last start or the creation, within `startingDeadlineSeconds`, in
//!    `spec.timeZone` or the machine's zone) and starts the Job `<name>-<minutes>` for it —
//!    not with `concurrencyPolicy: Forbid` while one is active, after deleting the active
//!    ones with `Replace` —, recording it in `active` and `lastScheduleTime`;
//! 4. comes back just after the next start time.
//!
//! Jobs come from the shared Job cache; the controller never lists. Schedules are parsed by
//! `baton_api::cron`, which validation uses too.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use baton_api::events::{Kind, Recorder};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::informer::{Informer, Informers};
use crate::job::tracking;
use crate::pods;
use schedule::{Facts, Missed};

/// The annotation with the start time a Job was made for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct Ctx {
    client: Client,
    events: Recorder,
    jobs: Informer<Job>,
}

/// Runs the CronJob controller.
pub async fn run(client: Client, informers: Informers) {
    let cron_jobs = informers.cron_jobs.clone();
    let jobs = informers.jobs.clone();
    if cron_jobs.synced().await.is_err() || jobs.synced().await.is_err() {
        return;
    }
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), "cronjob-controller", None),
        client,
        jobs: jobs.clone(),
    });
    Controller::for_shared_stream(cron_jobs.subscribe(), cron_jobs.store())
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .watches_shared_stream(jobs.subscribe(), |job: Arc<Job>| {
            let owner = job
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true) && o.kind == "CronJob")?;
            Some(ObjectRef::new(&owner.name).within(&job.namespace().unwrap_or_default()))
        })
        .run(reconcile, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// Complete or Failed, and which.
fn finished_as(job: &Job) -> Option<&'static str> {
    if tracking::condition(job, "Complete").is_some() {
        Some("Complete")
    } else if tracking::condition(job, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The zone the schedule is read in: `spec.timeZone`, else the machine's.
fn zone_of(cj: &CronJob) -> Result<TimeZone, String> {
    match cj.spec.time_zone.as_deref() {
        Some(tz) => baton_api::cron::load_location(tz),
        None => Ok(baton_api::cron::local_zone()),
    }
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = cj.namespace().unwrap_or_default();
    let name = cj.name_any();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let spec = cj.spec.clone();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    let now = baton_api::clock::now();
    let children: Vec<Arc<Job>> = ctx.jobs.store().state_filter(|j| {
        j.metadata.namespace.as_deref() == Some(ns.as_str())
            && j.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
    });
    let mut status = cj.status.clone().unwrap_or_default();
    let before = status.clone();

    // 1. History limits.
    let mut deleted: Vec<String> = Vec::new();
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<&Arc<Job>> = children
            .iter()
            .filter(|j| finished_as(j) == Some(kind))
            .collect();
        let excess = finished.len().saturating_sub(limit.max(0) as usize);
        if excess == 0 {
            continue;
        }
        // Oldest first by start time (unstarted last), then name.
        finished.sort_by(|a, b| {
            let start = |j: &Job| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0)
            };
            match (start(a), start(b)) {
                (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name_any().cmp(&b.name_any())),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.name_any().cmp(&b.name_any()),
            }
        });
        for job in finished.into_iter().take(excess) {
            if delete_job(&ctx, &cj, &jobs_api, job).await? {
                deleted.push(job.metadata.uid.clone().unwrap_or_default());
            }
        }
    }
    let in_active = |status: &k8s_openapi::api::batch::v1::CronJobStatus, uid: &str| {
        status
            .active
            .iter()
            .flatten()
            .any(|r| r.uid.as_deref() == Some(uid))
    };
    if let Some(active) = status.active.as_mut() {
        active.retain(|r| !deleted.iter().any(|d| r.uid.as_deref() == Some(d.as_str())));
    }

    // 2. The active list against the Jobs.
    for job in &children {
        let job_uid = job.metadata.uid.clone().unwrap_or_default();
        if deleted.contains(&job_uid) {
            continue;
        }
        let found = in_active(&status, &job_uid);
        let finished = finished_as(job);
        if !found && finished.is_none() {
            ctx.events.publish(
                cj.as_ref(),
                Kind::Warning,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name_any()
                ),
            );
        } else if found && let Some(cond) = finished {
            if let Some(active) = status.active.as_mut() {
                active.retain(|r| r.uid.as_deref() != Some(job_uid.as_str()));
            }
            ctx.events.publish(
                cj.as_ref(),
                Kind::Normal,
                "SawCompletedJob",
                format!("Saw completed job: {}, condition: {cond}", job.name_any()),
            );
        }
        if finished == Some("Complete")
            && let Some(done) = job.status.as_ref().and_then(|s| s.completion_time.clone())
            && status
                .last_successful_time
                .as_ref()
                .is_none_or(|t| done.0 > t.0)
        {
            status.last_successful_time = Some(done);
        }
    }
    let missing: Vec<ObjectReference> = status
        .active
        .iter()
        .flatten()
        .filter(|r| !children.iter().any(|j| j.metadata.uid == r.uid))
        .cloned()
        .collect();
    for r in missing {
        // Not in the cache: ask the API server before forgetting it.
        let job_name = r.name.clone().unwrap_or_default();
        match jobs_api.get_opt(&job_name).await {
            Ok(Some(j)) if j.metadata.uid == r.uid => continue,
            Ok(_) => {}
            Err(e) => return Err(Error::api(format!("getting job {job_name}"))(e)),
        }
        ctx.events.publish(
            cj.as_ref(),
            Kind::Normal,
            "MissingJob",
            format!("Active job went missing: {job_name}"),
        );
        if let Some(active) = status.active.as_mut() {
            active.retain(|a| a.uid != r.uid);
        }
    }

    let requeue = if cj.metadata.deletion_timestamp.is_some() {
        None
    } else {
        start_due_job(&ctx, &cj, &jobs_api, &mut status, now).await?
    };
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    if status != before {
        let mut next = cj.as_ref().clone();
        next.status = Some(status);
        match cj_api
            .replace_status(&name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::api(format!("updating the status of cronjob {name}"))(e)),
        }
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Step 3 of the sync: starts the Job of the start time due, if any; when to come back.
async fn start_due_job(
    ctx: &Ctx,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    status: &mut k8s_openapi::api::batch::v1::CronJobStatus,
    now: Timestamp,
) -> Result<Option<Duration>, Error> {
    let spec = cj.spec.clone();
    let zone = match zone_of(cj) {
        Ok(z) => z,
        Err(e) => {
            let tz = spec.time_zone.clone().unwrap_or_default();
            ctx.events.publish(
                cj,
                Kind::Warning,
                "UnknownTimeZone",
                format!(
                    "invalid timeZone: {}: {e}",
                    baton_api::validation::go::quote(&tz)
                ),
            );
            return Ok(None);
        }
    };
    if spec.suspend == Some(true) {
        return Ok(None);
    }
    let sched = match baton_api::cron::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            ctx.events.publish(
                cj,
                Kind::Warning,
                "UnparseableSchedule",
                format!(
                    "unparseable schedule: {} : {e}",
                    baton_api::validation::go::quote(&spec.schedule)
                ),
            );
            return Ok(None);
        }
    };
    let facts = Facts {
        schedule: &sched,
        zone: &zone,
        created: cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
        last_schedule: status.last_schedule_time.as_ref().map(|t| t.0),
        starting_deadline: spec.starting_deadline_seconds,
    };
    let scheduled = match schedule::due_now(&facts, now) {
        Ok((t, missed)) => {
            if missed == Missed::Many && t.is_some() {
                ctx.events.publish(
                    cj,
                    Kind::Warning,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                );
            }
            t
        }
        Err(e) => {
            ctx.events.publish(
                cj,
                Kind::Warning,
                "InvalidSchedule",
                format!("invalid schedule: {} : {e}", spec.schedule),
            );
            return Ok(None);
        }
    };
    let wait = |facts: &Facts| Some(schedule::requeue_after(facts, now));
    let Some(scheduled) = scheduled else {
        return Ok(wait(&facts));
    };
    if let Some(d) = spec.starting_deadline_seconds
        && scheduled + k8s_openapi::jiff::SignedDuration::from_secs(d) < now
    {
        ctx.events.publish(
            cj,
            Kind::Warning,
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                schedule::rfc1123z(scheduled)
            ),
        );
        return Ok(wait(&facts));
    }
    let job_name = schedule::job_name(&cj.name_any(), scheduled);
    let already = status
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(job_name.as_str()))
        || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
    if already {
        return Ok(wait(&facts));
    }
    let active_now = status.active.as_ref().map_or(0, Vec::len);
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if active_now > 0 => {
            ctx.events.publish(
                cj,
                Kind::Normal,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            );
            return Ok(wait(&facts));
        }
        Some("Replace") => {
            for r in status.active.clone().into_iter().flatten() {
                let n = r.name.clone().unwrap_or_default();
                let Some(job) = jobs_api
                    .get_opt(&n)
                    .await
                    .map_err(Error::api(format!("getting job {n}")))?
                else {
                    continue;
                };
                delete_job(ctx, cj, jobs_api, &job).await?;
                if let Some(active) = status.active.as_mut() {
                    active.retain(|a| a.uid != r.uid);
                }
            }
        }
        _ => {}
    }
    let job = job_for(cj, scheduled, &zone);
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            ctx.events.publish(
                cj,
                Kind::Normal,
                "SuccessfulCreate",
                format!("Created job {}", j.name_any()),
            );
            j
        }
        Err(e) if error::is_conflict(&e) => {
            // Made before, but the status did not record it: adopt it if it is ours.
            let existing = jobs_api
                .get(&job_name)
                .await
                .map_err(Error::api(format!("getting job {job_name}")))?;
            let ours = existing.owner_references().iter().any(|o| {
                o.controller == Some(true) && o.uid == cj.metadata.uid.clone().unwrap_or_default()
            });
            if !ours
                || status
                    .active
                    .iter()
                    .flatten()
                    .any(|r| r.uid == existing.metadata.uid)
            {
                return Ok(wait(&facts));
            }
            existing
        }
        Err(e) => {
            ctx.events.publish(
                cj,
                Kind::Warning,
                "FailedCreate",
                format!("Error creating job: {e}"),
            );
            return Err(Error::api(format!("creating job {job_name}"))(e));
        }
    };
    status
        .active
        .get_or_insert_with(Vec::new)
        .push(reference(&created));
    status.last_schedule_time = Some(Time(scheduled));
    let facts = Facts {
        last_schedule: Some(scheduled),
        ..facts
    };
    Ok(wait(&facts))
}

/// `getJobFromTemplate2`: the Job for one start time.
pub fn job_for(cj: &CronJob, scheduled: Timestamp, zone: &TimeZone) -> Job {
    let template = cj.spec.job_template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        schedule::scheduled_timestamp(scheduled, zone),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(schedule::job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![pods::controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// `deleteJob`: background propagation; true when deleted by this call.
async fn delete_job(ctx: &Ctx, cj: &CronJob, api: &Api<Job>, job: &Job) -> Result<bool, Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => {
            ctx.events.publish(
                cj,
                Kind::Normal,
                "SuccessfulDelete",
                format!("Deleted job {}", job.name_any()),
            );
            Ok(true)
        }
        Err(e) if error::is_not_found(&e) => Ok(false),
        Err(e) => {
            ctx.events.publish(
                cj,
                Kind::Warning,
                "FailedDelete",
                format!("Deleted job: {e}"),
            );
            Err(Error::api(format!("deleting job {}", job.name_any()))(e))
        }
    }
}
