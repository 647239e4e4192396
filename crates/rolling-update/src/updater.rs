//! The rolling update itself, step for step as the removed kubectl's `RollingUpdater`:
//! create (or find) the next controller at 0 replicas, then alternately grow it within the
//! surge limit, wait the update period, and shrink the old one as far as the Ready new pods
//! allow; when done, delete the old controller and (keeping the old name) rename the new
//! one. Every step is written to the API before the next, so an interrupted run resumes.

use std::time::Duration;

use k8s_openapi::api::core::v1::ReplicationController;
use tokio::time::{Instant, sleep};

use crate::arithmetic::Bounds;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::objects::{self, DESIRED_REPLICAS, ORIGINAL_REPLICAS, SOURCE_ID, name, replicas};

/// How long a rename waits for the renamed controller to go (kubectl waited 60 s).
const RENAME_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do with the old controller once the new one has all the pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Delete it (two names given, or a rollback).
    Delete,
    /// Delete it and give the new controller its name (one name given).
    Rename,
}

/// The knobs of one update.
#[derive(Clone, Debug)]
pub struct Settings {
    pub update_period: Duration,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub cleanup: Cleanup,
    /// `--progress`: a line per poll on stderr.
    pub progress: bool,
}

/// The two controllers of an update in flight, for the resume hint after a failure.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    pub old: String,
    pub new: String,
}

/// Runs the update from `old` to `next` and returns the controller that remains.
pub async fn update(
    cluster: &Cluster,
    old: ReplicationController,
    next: ReplicationController,
    settings: &Settings,
    in_flight: &mut Option<InFlight>,
) -> Result<ReplicationController, Error> {
    let source = objects::source_id(&old);
    let (mut new, existed) = target_controller(cluster, next, &source).await?;
    if existed {
        println!("Continuing update with existing controller {}.", name(&new));
    } else {
        println!("Created {}", name(&new));
    }
    *in_flight = Some(InFlight {
        old: name(&old).to_string(),
        new: name(&new).to_string(),
    });
    let desired_text = objects::annotation(&new, DESIRED_REPLICAS).unwrap_or("");
    let desired: i32 = desired_text.parse().map_err(|_| Error::BadAnnotation {
        name: name(&new).to_string(),
        key: DESIRED_REPLICAS.to_string(),
        value: desired_text.to_string(),
    })?;
    let mut old = old;
    if objects::annotation(&old, ORIGINAL_REPLICAS).is_none() {
        old = cluster
            .update_rc(name(&old), |rc| {
                let original = replicas(rc).to_string();
                objects::set_annotation(rc, ORIGINAL_REPLICAS, &original);
            })
            .await?;
    }
    let bounds = Bounds::new(
        desired,
        settings.max_surge,
        settings.max_unavailable,
        replicas(&old),
    );
    println!(
        "Scaling up {} from {} to {}, scaling down {} from {} to 0 (keep {} pods available, don't exceed {} pods)",
        name(&new),
        replicas(&new),
        desired,
        name(&old),
        replicas(&old),
        bounds.min_available,
        bounds.max_total()
    );
    let reporter = Reporter {
        cluster,
        enabled: settings.progress,
        desired,
        min_available: bounds.min_available,
    };

    let mut deadline = Instant::now() + settings.timeout;
    while replicas(&new) != desired || replicas(&old) != 0 {
        let before = (replicas(&new), replicas(&old));
        if let Some(to) = bounds.scale_up(replicas(&new), replicas(&old)) {
            println!("Scaling {} up to {}", name(&new), to);
            new = scale_and_wait(cluster, name(&new), to, settings, &reporter, &old, &new).await?;
        }
        reporter.report(&old, &new).await;
        // Let things settle between the two halves of a step.
        pause(settings, &reporter, &old, &new).await;
        if replicas(&old) != 0 {
            let available = cluster
                .pods(&objects::selector(&new))
                .await?
                .iter()
                .filter(|p| objects::pod_available(p))
                .count() as i32;
            if let Some(to) = bounds.scale_down(replicas(&new), replicas(&old), available) {
                println!("Scaling {} down to {}", name(&old), to);
                old = scale_and_wait(cluster, name(&old), to, settings, &reporter, &old, &new)
                    .await?;
            }
        }
        reporter.report(&old, &new).await;
        if (replicas(&new), replicas(&old)) != before {
            deadline = Instant::now() + settings.timeout;
        } else if Instant::now() > deadline {
            return Err(Error::NoProgress);
        }
    }
    cleanup(cluster, old, new, settings).await
}

/// Finds the next controller of an interrupted update (checking it belongs to this one),
/// or creates it at 0 replicas with the desired count in an annotation.
async fn target_controller(
    cluster: &Cluster,
    mut next: ReplicationController,
    source: &str,
) -> Result<(ReplicationController, bool), Error> {
    if let Some(existing) = cluster.get_rc_opt(name(&next)).await? {
        let found_source = objects::annotation(&existing, SOURCE_ID);
        if found_source != Some(source)
            || objects::annotation(&existing, DESIRED_REPLICAS).is_none()
        {
            return Err(Error::UnexpectedAnnotations {
                name: name(&existing).to_string(),
                expected: source.to_string(),
                found: format!(
                    "{:?}",
                    existing.metadata.annotations.clone().unwrap_or_default()
                ),
            });
        }
        return Ok((existing, true));
    }
    let want = replicas(&next);
    if want <= 0 {
        return Err(Error::InvalidReplicas {
            name: name(&next).to_string(),
            replicas: want,
        });
    }
    objects::set_annotation(&mut next, DESIRED_REPLICAS, &want.to_string());
    objects::set_annotation(&mut next, SOURCE_ID, source);
    next.spec.get_or_insert_with(Default::default).replicas = Some(0);
    Ok((cluster.create_rc(&next).await?, false))
}

/// Scales one controller and waits until its status shows the new size.
async fn scale_and_wait(
    cluster: &Cluster,
    target: &str,
    to: i32,
    settings: &Settings,
    reporter: &Reporter<'_>,
    old: &ReplicationController,
    new: &ReplicationController,
) -> Result<ReplicationController, Error> {
    cluster.scale(target, to).await?;
    let deadline = Instant::now() + settings.timeout;
    loop {
        let rc = cluster.get_rc(target).await?;
        // Someone else resized it: take their word, as kubectl's scaler did.
        if objects::synced(&rc) || replicas(&rc) != to {
            return Ok(rc);
        }
        if Instant::now() > deadline {
            return Err(Error::NotSynced(target.to_string()));
        }
        reporter.report(old, new).await;
        sleep(settings.poll_interval).await;
    }
}

/// Waits the update period, reporting progress at each poll interval meanwhile.
async fn pause(
    settings: &Settings,
    reporter: &Reporter<'_>,
    old: &ReplicationController,
    new: &ReplicationController,
) {
    let end = Instant::now() + settings.update_period;
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        let step = settings.poll_interval.max(Duration::from_millis(10));
        sleep(step.min(end - now)).await;
        if Instant::now() < end {
            reporter.report(old, new).await;
        }
    }
}

/// Removes the update's annotations from the new controller, waits for it to settle, and
/// applies the cleanup policy.
async fn cleanup(
    cluster: &Cluster,
    old: ReplicationController,
    new: ReplicationController,
    settings: &Settings,
) -> Result<ReplicationController, Error> {
    let new = cluster
        .update_rc(name(&new), |rc| {
            objects::remove_annotations(rc, &[SOURCE_ID, DESIRED_REPLICAS])
        })
        .await?;
    wait_synced(cluster, name(&new), settings).await?;
    let new = cluster.get_rc(name(&new)).await?;
    match settings.cleanup {
        Cleanup::Delete => {
            println!("Update succeeded. Deleting {}", name(&old));
            cluster.delete_rc(name(&old), false).await?;
            Ok(new)
        }
        Cleanup::Rename => {
            println!("Update succeeded. Deleting old controller: {}", name(&old));
            cluster.delete_rc(name(&old), false).await?;
            println!("Renaming {} to {}", name(&new), name(&old));
            rename(cluster, &new, name(&old), settings.poll_interval).await
        }
    }
}

async fn wait_synced(cluster: &Cluster, target: &str, settings: &Settings) -> Result<(), Error> {
    let deadline = Instant::now() + settings.timeout;
    loop {
        if objects::synced(&cluster.get_rc(target).await?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::NotSynced(target.to_string()));
        }
        sleep(settings.poll_interval).await;
    }
}

/// Gives a controller another name: delete it leaving its pods (orphan), wait until it is
/// gone, create the same controller under the new name, which adopts the pods again.
pub async fn rename(
    cluster: &Cluster,
    rc: &ReplicationController,
    to: &str,
    poll_interval: Duration,
) -> Result<ReplicationController, Error> {
    cluster.delete_rc(name(rc), true).await?;
    cluster
        .wait_rc_gone(
            name(rc),
            poll_interval.min(Duration::from_secs(5)),
            RENAME_TIMEOUT,
        )
        .await?;
    cluster.create_rc(&objects::for_create(rc, to)).await
}

/// `--progress`: one line per poll on stderr, counting pods of both controllers.
struct Reporter<'a> {
    cluster: &'a Cluster,
    enabled: bool,
    desired: i32,
    min_available: i32,
}

impl Reporter<'_> {
    async fn report(&self, old: &ReplicationController, new: &ReplicationController) {
        if !self.enabled {
            return;
        }
        let (Ok(new_pods), Ok(old_pods)) = (
            self.cluster.pods(&objects::selector(new)).await,
            self.cluster.pods(&objects::selector(old)).await,
        ) else {
            eprintln!("progress: (could not list pods)");
            return;
        };
        let count = |pods: &[k8s_openapi::api::core::v1::Pod],
                     f: fn(&k8s_openapi::api::core::v1::Pod) -> bool| {
            pods.iter().filter(|p| f(p)).count()
        };
        let ready =
            count(&new_pods, objects::pod_available) + count(&old_pods, objects::pod_available);
        eprintln!(
            "progress: ready {ready} (keep {min}), updated {updated}/{desired} ({new_name}), old {old_count} ({old_name})",
            min = self.min_available,
            desired = self.desired,
            updated = count(&new_pods, objects::pod_active),
            new_name = name(new),
            old_count = count(&old_pods, objects::pod_active),
            old_name = name(old),
        );
    }
}
