//! Baton's controllers: the control loops that turn Deployments, ReplicaSets and
//! ReplicationControllers into pods, place pods on nodes, and (for tests and CI) run those
//! pods on simulated nodes. They reach the API server only through the Kubernetes API with
//! the `kube` client, exactly as an out-of-process controller would.
//!
//! # Layout
//! - [`client`]: the process's client of its own API server (a bound on requests under way).
//! - [`informer`]: the shared caches — one watch per kind per process, read by every
//!   controller below; no controller lists from the API on its sync path.
//! - [`expectations`]: the pods a sync created or deleted that the cache must show before
//!   the next sync of that controller counts pods again.
//! - [`replicas`]: the ReplicaSet and ReplicationController controllers (one engine, two kinds).
//! - [`deployment`]: the Deployment controller (`rolling`, `hash`, `progress` inside).
//! - [`daemonset`]: the DaemonSet controller (one pod per eligible node, rolling updates,
//!   ControllerRevision history; its decisions pure in `daemonset::plan`).
//! - [`disruption`]: the PodDisruptionBudget status (healthy, expected, allowed disruptions).
//! - [`placement`]: node selector, required node affinity, taints and tolerations.
//! - [`statefulset`]: the StatefulSet controller (`plan`, `revision` inside).
//! - [`job`]: the Job controller (completions, parallelism, Indexed Jobs, back-off, pod
//!   failure policy, suspend, the tracking finalizer, TTL after finished; pure rules in
//!   `job::tracking`).
//! - [`cronjob`]: the CronJob controller (start times in `cronjob::schedule`, concurrency
//!   policy, history limits).
//! - [`endpoints`]: Endpoints and EndpointSlices of every Service, from its pods.
//! - [`gc`]: the garbage collector (orphan, foreground and background propagation) and the
//!   namespace lifecycle (a Terminating namespace emptied, then finalized).
//! - [`hpa`]: the HorizontalPodAutoscaler controller (replica calculator, stabilization and
//!   policies, conditions, events) over the metrics API.
//! - [`scheduler`]: binds pending pods to Ready nodes that fit.
//! - [`simnode`]: simulated nodes and their kwok-like pod lifecycle.
//! - [`volumes`]: the PV controller (binding, reclaim, protection finalizers) and the built-in
//!   local-path provisioner; the binary starts it with the data dir ([`volumes::run`]).
//! - [`pods`]: pod predicates (ready, available, active) and the deletion ranking.
//! - [`error`]: the crate's error type and the shared error policy.
//!
//! Events go through baton-api's one recorder (`baton_api::events::Recorder`, with
//! Kubernetes' event correlation), shared with the node agent and the traffic layer.
//!
//! Label selectors are baton-api's (`baton_api::selectors`), the same code the API server
//! uses for `?labelSelector=` and validation.

pub mod client;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod error;
pub mod expectations;
pub mod gc;
pub mod hpa;
pub mod informer;
pub mod job;
pub mod placement;
pub mod pods;
pub mod replicas;
pub mod scheduler;
pub mod simnode;
pub mod statefulset;
pub mod volumes;

use std::future::Future;

pub use error::Error;
pub use simnode::SimOptions;

/// What the server passes to [`run`].
#[derive(Clone, Debug, Default)]
pub struct ControllerOptions {
    /// Simulated nodes; none when `sim.nodes` is 0.
    pub sim: SimOptions,
    /// The HorizontalPodAutoscaler controller's settings.
    pub hpa: hpa::Options,
}

/// Starts every controller on `client` and returns once they are spawned, with the shared
/// informers (the cluster DNS reads Services and EndpointSlices from them). Each one stops
/// when `shutdown` turns true.
pub async fn run(
    client: kube::Client,
    opts: ControllerOptions,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<informer::Informers, Error> {
    if opts.sim.nodes > 0 {
        simnode::register(&client, &opts.sim).await?;
        spawn_until(
            shutdown.clone(),
            simnode::heartbeat(client.clone(), opts.sim.clone()),
        );
    }
    let informers = informer::Informers::start(&client, &shutdown);
    if opts.sim.nodes > 0 {
        spawn_until(
            shutdown.clone(),
            simnode::run(client.clone(), opts.sim.clone(), informers.pods.clone()),
        );
    }
    spawn_until(
        shutdown.clone(),
        scheduler::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        replicas::run_replicasets(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        replicas::run_replication_controllers(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        deployment::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        statefulset::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        endpoints::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        daemonset::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        disruption::run(client.clone(), informers.clone()),
    );
    spawn_until(shutdown.clone(), gc::run(client.clone(), informers.clone()));
    spawn_until(
        shutdown.clone(),
        job::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        cronjob::run(client.clone(), informers.clone()),
    );
    spawn_until(
        shutdown.clone(),
        hpa::run(client.clone(), informers.clone(), opts.hpa.clone()),
    );
    tracing::info!(simulated_nodes = opts.sim.nodes, "controllers started");
    Ok(informers)
}

/// Runs `task` until it ends or `shutdown` turns true, whichever comes first.
fn spawn_until(
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    task: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = task => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
}
