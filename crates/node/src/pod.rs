//! One pod's life on this node: a worker task per pod that sets up its network, pulls its
//! images, starts its containers with runc, watches them exit, restarts them by the pod's
//! `restartPolicy` with the kubelet's back-off, runs probes, reports status, and on deletion
//! stops the containers (SIGTERM, the grace period, SIGKILL), removes every trace of them and
//! finally deletes the pod object.
//!
//! The worker is split the kubelet's way: each pass *observes* (which processes ended), asks
//! the pure [`decide`] step what follows (restart now or after a back-off, SIGKILL, start,
//! ImagePullBackOff), *carries it out* through [`Host`](crate::host::Host) (the machine) and
//! [`PodApi`] (the API server), and reports the status computed by [`status`]. What the
//! worker knows is saved in `pods/<uid>/state.json` ([`saved`]), so an agent restarted after
//! a crash adopts the running containers instead of starting them again.
//!
//! # Layout
//! - [`decide`]: the container state machine, restart policy, back-off, what to do next (pure).
//! - [`status`]: the pod status document (pure).
//! - [`saved`]: state.json and adoption after a restart.
//! - [`eviction`]: local ephemeral storage limits (emptyDir `sizeLimit`, `ephemeral-storage`),
//!   measured and enforced by eviction as the kubelet's eviction manager does.
//! - [`api`]: the API calls a worker makes, behind [`PodApi`].
//! - this file: the worker loop and the I/O that carries out the decisions.

pub mod api;
pub(crate) mod decide;
pub mod eviction;
pub mod saved;
pub(crate) mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_api::clock::now_rfc3339;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, PodSpec, Probe};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::bundle::{self, BundleContext};
use crate::host::{PodNet, Signal};
use crate::probe;
use crate::security;
use crate::{Agent, PullError, fresh_holders};
pub use api::PodApi;
use baton_api::events::Kind;
pub(crate) use decide::container_id;
use decide::{
    ContainerRun, PodRun, RestartPolicy, all_containers, compute_pod_actions, find_container,
    next_wake, stop_order,
};
pub use saved::{SavedContainer, SavedPod, load_saved};

/// The network namespace and host-side veth names of a pod (veth names max 15 bytes).
pub fn net_names(uid: &str) -> (String, String) {
    let hex: String = uid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(12)
        .collect();
    (format!("baton-{uid}"), format!("bv{hex}"))
}

/// The OCI bundle directory of container `name` of the pod whose directory is `pod_dir`.
fn bundle_dir(pod_dir: &std::path::Path, name: &str) -> PathBuf {
    pod_dir.join(name).join("bundle")
}

/// The writable layer of container `name` (the overlay's upper directory), fresh for each run.
fn upper_dir(pod_dir: &std::path::Path, name: &str) -> PathBuf {
    pod_dir.join(name).join("upper")
}

/// The overlay's work directory beside [`upper_dir`].
fn work_dir(pod_dir: &std::path::Path, name: &str) -> PathBuf {
    pod_dir.join(name).join("work")
}

/// Where the pod's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` are written.
fn etc_dir(pod_dir: &std::path::Path) -> PathBuf {
    pod_dir.join("etc")
}

/// The cgroup of a pod (`container` empty) or of one of its containers.
fn cgroup_path(uid: &str, container: &str) -> String {
    if container.is_empty() {
        format!("/baton/{uid}")
    } else {
        format!("/baton/{uid}/{container}")
    }
}

impl Agent {
    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.opts.data_dir.join("pods").join(uid)
    }

    /// Where the pod's containers' runtime configs are: on the agent's tmpfs
    /// ([`crate::RUN_DIR`]), since they hold secrets' values.
    fn config_dir(&self, uid: &str) -> PathBuf {
        self.opts.data_dir.join(crate::RUN_DIR).join(uid)
    }

    /// The directory of a pod's logs: one directory per container, as the kubelet's
    /// `/var/log/pods/<ns>_<pod>_<uid>`.
    fn pod_log_dir(&self, ns: &str, pod: &str, uid: &str) -> PathBuf {
        self.opts
            .data_dir
            .join("logs")
            .join(format!("{ns}_{pod}_{uid}"))
    }

    /// The log file of a container's `n`th run.
    pub fn log_path(&self, ns: &str, pod: &str, uid: &str, container: &str, n: u32) -> PathBuf {
        self.pod_log_dir(ns, pod, uid)
            .join(container)
            .join(format!("{n}.log"))
    }
}

/// Runs one pod until it is gone. `rx` carries the latest object (None: deleted from the API).
pub async fn worker(agent: Arc<Agent>, uid: String, mut rx: watch::Receiver<Option<Pod>>) {
    let dir = agent.pod_dir(&uid);
    let host = agent.host.clone();
    if let Err(e) = host.create_dir_all(&dir).await {
        tracing::warn!(uid = %uid, error = %e, "cannot create the pod's directory");
    }
    let mut saved = load_saved(&*host, &dir).await.unwrap_or_default();
    let runc_list = host.list().await.unwrap_or_default();
    let spec = rx
        .borrow()
        .as_ref()
        .and_then(|p| p.spec.clone())
        .unwrap_or_default();
    let exit_of = |name: &str, pid| host.try_exit(pid, &bundle_dir(&dir, name));
    let containers = saved::adopt(
        &saved,
        &runc_list,
        exit_of,
        |name| match saved.evicted {
            Some(_) => RestartPolicy::Never,
            None => RestartPolicy::for_container(&spec, name, false),
        },
        Instant::now(),
        &now_rfc3339(),
    );
    if let Some(ip) = saved.ip
        && !agent.reserve_ip(ip, &uid)
    {
        tracing::warn!(uid = %uid, %ip, "the saved address is another pod's: choosing a new one");
        saved.ip = None;
    }
    let mut run = PodRun {
        uid: uid.clone(),
        dir,
        network_ready: false,
        saved,
        containers,
        transitions: BTreeMap::new(),
        last_status: None,
        volumes: Default::default(),
        storage_measured: None,
    };
    // The last object seen: a pod force-deleted meanwhile is stopped by its spec.
    let mut last: Option<Pod> = None;
    loop {
        let pod = rx.borrow_and_update().clone();
        let Some(pod) = pod else {
            agent
                .teardown(last.as_ref(), &mut run, Duration::ZERO, &mut rx)
                .await;
            break;
        };
        last = Some(pod.clone());
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64;
            let grace = Duration::from_secs(grace);
            let waited = agent.await_drained(&pod, &mut rx, grace).await;
            // Time spent draining counts against the grace period, as a preStop hook's does,
            // but the containers keep at least two seconds (the kubelet's minimum after preStop).
            let left = grace
                .saturating_sub(waited)
                .max(grace.min(Duration::from_secs(2)));
            agent.teardown(Some(&pod), &mut run, left, &mut rx).await;
            agent.finish_deletion(&pod, &uid).await;
            break;
        }
        let wait = agent.sync(&pod, &mut run, &rx).await;
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    agent.teardown(Some(&pod), &mut run, Duration::ZERO, &mut rx).await;
                    break;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    agent.forget_worker(&uid);
}

impl Agent {
    /// One pass over the pod: network, then observe, decide, act for the containers, probes,
    /// status. Returns when to look again. `rx` tells a hook in progress that the pod is
    /// being deleted.
    async fn sync(
        &self,
        pod: &Pod,
        run: &mut PodRun,
        rx: &watch::Receiver<Option<Pod>>,
    ) -> Duration {
        run.saved.namespace = pod.metadata.namespace.clone().unwrap_or_default();
        run.saved.name = pod.metadata.name.clone().unwrap_or_default();
        if run.saved.start_time.is_none() {
            run.saved.start_time = Some(now_rfc3339());
        }
        let spec = pod.spec.clone().unwrap_or_default();
        if !run.network_ready {
            match self.ensure_network(pod, run).await {
                Ok(()) => run.network_ready = true,
                Err(e) => {
                    tracing::warn!(pod = %run.saved.name, error = %e, "pod network setup failed");
                    run.network_failed(&spec, &e);
                    self.report(pod, run).await;
                    return Duration::from_secs(2);
                }
            }
        }
        let ip = IpAddr::V4(run.ip().unwrap_or(Ipv4Addr::LOCALHOST));
        run.track(&spec);

        // Observe: which processes ended.
        let finishing = run.finishing(&spec);
        for c in all_containers(&spec) {
            let policy = run.policy(&spec, &c.name, finishing);
            let Some(r) = run.containers.get_mut(&c.name) else {
                continue;
            };
            let Some(pid) = r.running_pid() else { continue };
            let Some(exit) = self.host.try_exit(pid, &bundle_dir(&run.dir, &c.name)) else {
                continue;
            };
            let oom = self.host.oom_killed(&cgroup_path(&run.uid, &c.name)).await;
            tracing::info!(container = %r.saved.id, code = exit.code(), oom, "container exited");
            let _ = self.host.delete(&r.saved.id).await;
            let message = self
                .termination_message(pod, c, &run.uid, r.saved.restart_count, exit.code())
                .await;
            r.exited(exit, oom, message, policy, Instant::now(), &now_rfc3339());
            self.backoff_event(pod, &c.name, r).await;
        }

        // Volumes: containers start once every volume was set up.
        let volumes_ready = match &run.saved.evicted {
            None => self.sync_volumes(pod, &run.dir, &mut run.volumes).await,
            Some(_) => {
                self.release_evicted(&spec, run).await;
                false
            }
        };
        if let Some(message) = self.local_storage_eviction(&spec, run).await {
            self.evict(pod, run, message, rx).await;
        }

        // Decide, then act.
        let mut actions = compute_pod_actions(&spec, run, Instant::now());
        if !volumes_ready {
            actions.start.clear();
        }
        for name in &actions.kill {
            if let Some(r) = run.containers.get(name) {
                let _ = self.host.kill(&r.saved.id, Signal::Kill).await;
            }
        }
        for name in &actions.stop {
            let (Some(c), Some(r)) = (find_container(&spec, name), run.containers.get_mut(name))
            else {
                continue;
            };
            let grace = grace_period(&spec);
            let kill_at = self.stop_one(pod, c, r, ip, grace, rx).await;
            r.stopping(kill_at);
        }
        for name in &actions.start {
            let (Some(c), Some(r)) = (find_container(&spec, name), run.containers.get_mut(name))
            else {
                continue;
            };
            let policy = RestartPolicy::for_container(&spec, name, false);
            self.start_container(pod, c, r, &run.uid, ip, policy, rx)
                .await;
        }
        for (name, next) in actions.pull_backoff {
            let Some(r) = run.containers.get_mut(&name) else {
                continue;
            };
            r.state = next;
            r.pull_error = None;
            let image = find_container(&spec, &name)
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let msg = format!("Back-off pulling image \"{image}\"");
            self.event(pod, &name, Kind::Normal, "BackOff", &msg).await;
            self.event(
                pod,
                &name,
                Kind::Warning,
                "Failed",
                "Error: ImagePullBackOff",
            )
            .await;
        }

        // Probe what runs.
        for c in all_containers(&spec) {
            if let Some(r) = run.containers.get_mut(&c.name)
                && r.running_pid().is_some()
            {
                self.run_probes(pod, c, r, ip).await;
            }
        }
        let wake = next_wake(&spec, run, Instant::now());
        saved::save(&*self.host, &run.dir, &run.to_saved()).await;
        self.report(pod, run).await;
        wake
    }

    /// Pulls the image and starts a container, then runs its postStart hook (a failed hook
    /// kills it, as the kubelet does); records how it went.
    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        r: &mut ContainerRun,
        uid: &str,
        ip: IpAddr,
        policy: RestartPolicy,
        rx: &watch::Receiver<Option<Pod>>,
    ) {
        let image = c.image.clone().unwrap_or_default();
        let pull_policy = c.image_pull_policy.clone().unwrap_or_default();
        let secrets = self.pull_secrets(pod).await;
        // The kubelet's image events: Pulling and how long it took, or already present.
        let pulls = self.images.pulls(&image, &pull_policy).await;
        if pulls {
            let msg = format!("Pulling image \"{image}\"");
            self.event(pod, &c.name, Kind::Normal, "Pulling", &msg)
                .await;
        }
        let began = Instant::now();
        let img = match self.images.ensure(&image, &pull_policy, &secrets).await {
            Ok(i) => {
                let msg = if pulls {
                    let took = baton_api::clock::go_duration_string(began.elapsed());
                    format!(
                        "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {} bytes.",
                        i.size
                    )
                } else {
                    format!("Container image \"{image}\" already present on machine")
                };
                self.event(pod, &c.name, Kind::Normal, "Pulled", &msg).await;
                r.pulled();
                i
            }
            Err(PullError { reason, message }) => {
                tracing::info!(pod = ?pod.metadata.name, image = %image, reason = %reason, "image not available");
                if reason == "ErrImagePull" {
                    let msg = format!("Failed to pull image \"{image}\": {message}");
                    self.event(pod, &c.name, Kind::Warning, "Failed", &msg)
                        .await;
                } else {
                    self.event(pod, &c.name, Kind::Warning, &reason, &message)
                        .await;
                }
                let msg = format!("Error: {reason}");
                self.event(pod, &c.name, Kind::Warning, "Failed", &msg)
                    .await;
                r.pull_failed(reason, message, Instant::now());
                return;
            }
        };
        let n = r.next_run();
        match self.launch(pod, c, &r.saved.id, &img, uid, ip, n).await {
            Ok(pid) => {
                r.started(pid, n, &img.image_id, Instant::now(), &now_rfc3339());
                tracing::info!(container = %r.saved.id, pid, restarts = n, "container started");
                let created = format!("Created container: {}", c.name);
                self.event(pod, &c.name, Kind::Normal, "Created", &created)
                    .await;
                let started = format!("Started container {}", c.name);
                self.event(pod, &c.name, Kind::Normal, "Started", &started)
                    .await;
                let post_start = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
                if let Some(h) = post_start {
                    // The next container waits for the hook; a deletion does not.
                    let outcome = tokio::select! {
                        res = self.run_hook(pod, c, &r.saved.id, h, ip) => Some(res),
                        _ = deleting(rx.clone()) => None,
                    };
                    if let Some(Err(message)) = outcome {
                        tracing::info!(container = %r.saved.id, error = %message, "postStart hook failed");
                        // The event leaves the hook's output out (it may hold secrets).
                        self.event(
                            pod,
                            &c.name,
                            Kind::Warning,
                            "FailedPostStartHook",
                            "PostStartHook failed",
                        )
                        .await;
                        r.hook_error = Some(message);
                        self.kill_for_restart(r).await;
                    }
                }
            }
            Err(LaunchError::Config(message)) => {
                tracing::info!(container = %r.saved.id, error = %message, "container config refused");
                let msg = format!("Error: {message}");
                self.event(pod, &c.name, Kind::Warning, "Failed", &msg)
                    .await;
                r.config_failed(message, Instant::now());
            }
            Err(LaunchError::Start(message)) => {
                tracing::info!(container = %r.saved.id, error = %message, "container failed to start");
                let _ = self.host.delete(&r.saved.id).await;
                let msg = format!("Error: {message}");
                self.event(pod, &c.name, Kind::Warning, "Failed", &msg)
                    .await;
                r.start_failed(n, message, policy, Instant::now(), &now_rfc3339());
                self.backoff_event(pod, &c.name, r).await;
            }
        }
    }

    /// Records an event about container `container` of `pod`.
    async fn event(&self, pod: &Pod, container: &str, kind: Kind, reason: &str, message: &str) {
        self.api
            .record_event(pod, container, kind, reason, message)
            .await;
    }

    /// The BackOff event of a container that just went into CrashLoopBackOff.
    async fn backoff_event(&self, pod: &Pod, container: &str, r: &ContainerRun) {
        if r.in_crash_loop() {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let msg = format!(
                "Back-off restarting failed container {container} in pod {name}_{ns}({uid})"
            );
            self.event(pod, container, Kind::Warning, "BackOff", &msg)
                .await;
        }
    }

    /// Writes the bundle and runs it. Returns the pid, or why the container could not start.
    #[allow(clippy::too_many_arguments)]
    async fn launch(
        &self,
        pod: &Pod,
        c: &Container,
        id: &str,
        img: &crate::PulledImage,
        uid: &str,
        ip: IpAddr,
        n: u32,
    ) -> Result<i32, LaunchError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let cdir = self.pod_dir(uid).join(&c.name);
        let bundle_dir = bundle_dir(&self.pod_dir(uid), &c.name);
        let rootfs = bundle_dir.join("rootfs");
        let upper = upper_dir(&self.pod_dir(uid), &c.name);
        let work = work_dir(&self.pod_dir(uid), &c.name);
        // A restart gets a fresh writable layer, like a new container in Kubernetes.
        self.host
            .unmount(&rootfs)
            .await
            .map_err(|e| LaunchError::Start(e.to_string()))?;
        self.host.remove_dir_all(&upper).await;
        self.host.remove_dir_all(&work).await;
        self.host
            .mount_overlay(&img.rootfs, &upper, &work, &rootfs)
            .await
            .map_err(|e| LaunchError::Start(e.to_string()))?;
        let mut fields = BTreeMap::new();
        fields.insert("metadata.name".to_string(), name.clone());
        fields.insert("metadata.namespace".to_string(), ns.clone());
        fields.insert("metadata.uid".to_string(), uid.to_string());
        fields.insert("status.podIP".to_string(), ip.to_string());
        fields.insert("status.hostIP".to_string(), self.opts.node_ip.to_string());
        fields.insert("spec.nodeName".to_string(), self.opts.node_name.clone());
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        fields.insert("spec.serviceAccountName".to_string(), sa);
        let sources = self
            .env_sources(pod, c)
            .await
            .map_err(LaunchError::Config)?;
        let env = bundle::environment(c, &img.config, &fields, &sources)
            .map_err(|e| LaunchError::Config(e.to_string()))?;
        let read = |f: &'static str| {
            let path = img.rootfs.join(f);
            async move {
                let body = self.host.read_file(&path).await.unwrap_or_default();
                String::from_utf8_lossy(&body).into_owned()
            }
        };
        let passwd = read("etc/passwd").await;
        let group = read("etc/group").await;
        let spec = pod.spec.clone().unwrap_or_default();
        let security = security::resolve(
            &spec,
            c,
            &security::pod_ref(&name, &ns, uid),
            &img.config.user,
            &passwd,
            &group,
        )
        .map_err(LaunchError::Config)?;
        let etc = etc_dir(&self.pod_dir(uid));
        let mut etc_files: Vec<(String, String)> = ["hostname", "hosts", "resolv.conf"]
            .iter()
            .map(|f| (format!("/etc/{f}"), etc.join(f).display().to_string()))
            .collect();
        // The termination message file, empty for each run (the kubelet's is world-writable:
        // any user of the container may write its last words).
        if let Some(dest) = message_path(c) {
            let file = cdir.join(TERMINATION_LOG);
            self.host
                .create_message_file(&file)
                .await
                .map_err(|e| LaunchError::Start(e.to_string()))?;
            etc_files.push((dest.to_string(), file.display().to_string()));
        }
        let (netns, _) = net_names(uid);
        let cgroups_path = cgroup_path(uid, &c.name);
        let annotations = BTreeMap::from([
            ("io.kubernetes.pod.namespace".to_string(), ns.clone()),
            ("io.kubernetes.pod.name".to_string(), name.clone()),
            ("io.kubernetes.pod.uid".to_string(), uid.to_string()),
            ("io.kubernetes.container.name".to_string(), c.name.clone()),
        ]);
        let netns_path = format!("/run/netns/{netns}");
        let volume_mounts = self
            .bind_mounts(pod, c, &self.pod_dir(uid))
            .await
            .map_err(LaunchError::Config)?;
        let hostname = crate::dns::uts_hostname(pod, &self.opts.dns.cluster_domain)
            .map_err(LaunchError::Config)?;
        let ctx = BundleContext {
            hostname: &hostname,
            netns_path: &netns_path,
            etc_files: &etc_files,
            volume_mounts: &volume_mounts,
            field_values: &fields,
            cgroups_path: &cgroups_path,
            security: &security,
            annotations,
        };
        let config = bundle::runtime_config(c, &img.config, &env, &ctx)
            .map_err(|e| LaunchError::Start(e.to_string()))?;
        let body =
            serde_json::to_vec_pretty(&config).map_err(|e| LaunchError::Start(e.to_string()))?;
        // The config holds the environment, secrets' values included: it lives on the
        // agent's tmpfs, and the bundle links to it.
        let config_dir = self.config_dir(uid);
        let config_file = config_dir.join(format!("{}.json", c.name));
        let written = async {
            self.host.create_dir_all(&config_dir).await?;
            self.host.write_file(&config_file, &body).await?;
            self.host
                .symlink(&config_file, &bundle_dir.join("config.json"))
                .await
        };
        written
            .await
            .map_err(|e| LaunchError::Start(format!("writing the bundle: {e}")))?;
        let log = self.log_path(&ns, &name, uid, &c.name, n);
        if let Some(parent) = log.parent() {
            self.host
                .create_dir_all(parent)
                .await
                .map_err(|e| LaunchError::Start(format!("creating the log dir: {e}")))?;
            // A crash loop's logs stay bounded: the previous run's are kept, older ones go.
            for old in crate::logs::expired(&self.host.list_dir(parent).await, n) {
                self.host.remove_file(&parent.join(old)).await;
            }
        }
        let stdio = crate::shim::Stdio {
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
        };
        self.host
            .run(id, &bundle_dir, &log, stdio)
            .await
            .map_err(|e| {
                LaunchError::Start(match e {
                    crate::host::HostError::Command { message, .. } => message,
                    other => other.to_string(),
                })
            })
    }

    /// What the API holds for the container's environment ([`bundle::EnvSources`]), read as
    /// the kubelet's `makeEnvironmentVariables` reads it: each ConfigMap or Secret once; a
    /// missing one that is not optional (`configmap "x" not found`) or a missing key of a
    /// `valueFrom` reference that is not optional is the error of a CreateContainerConfigError.
    /// Every key of an `envFrom` source becomes a variable, whatever its characters: kubelets
    /// since 1.30 no longer skip keys that are not C identifiers (1.27–1.29 skipped them with
    /// an `InvalidEnvironmentVariableNames` event); ConfigMap and Secret keys are
    /// `[-._a-zA-Z0-9]+` anyway.
    async fn env_sources(&self, pod: &Pod, c: &Container) -> Result<bundle::EnvSources, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut maps: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
        let mut secrets: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
        let mut out = bundle::EnvSources::default();
        for f in c.env_from.iter().flatten() {
            let prefix = f.prefix.as_deref().unwrap_or_default();
            let data = if let Some(r) = &f.config_map_ref {
                self.env_object(&ns, &r.name, r.optional, Source::ConfigMap, &mut maps)
                    .await?
            } else if let Some(r) = &f.secret_ref {
                self.env_object(&ns, &r.name, r.optional, Source::Secret, &mut secrets)
                    .await?
            } else {
                None
            };
            for (k, v) in data.into_iter().flatten() {
                out.from.push((format!("{prefix}{k}"), v));
            }
        }
        for (i, e) in c.env.iter().flatten().enumerate() {
            let Some(from) = &e.value_from else { continue };
            let (source, name, key, optional, cache) = if let Some(r) = &from.config_map_key_ref {
                (Source::ConfigMap, &r.name, &r.key, r.optional, &mut maps)
            } else if let Some(r) = &from.secret_key_ref {
                (Source::Secret, &r.name, &r.key, r.optional, &mut secrets)
            } else {
                continue;
            };
            let Some(data) = self.env_object(&ns, name, optional, source, cache).await? else {
                continue;
            };
            match data.get(key) {
                Some(v) => {
                    out.refs.insert(i, v.clone());
                }
                None if optional == Some(true) => {}
                None => {
                    let kind = source.kind();
                    return Err(format!("couldn't find key {key} in {kind} {ns}/{name}"));
                }
            }
        }
        Ok(out)
    }

    /// The data of ConfigMap or Secret `name` (read once per container, kept in `cache`), or
    /// None when it is missing and `optional`.
    async fn env_object(
        &self,
        ns: &str,
        name: &str,
        optional: Option<bool>,
        source: Source,
        cache: &mut BTreeMap<String, Option<BTreeMap<String, String>>>,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        if !cache.contains_key(name) {
            let data = match source {
                Source::ConfigMap => self
                    .api
                    .config_map(ns, name)
                    .await?
                    .map(|cm| cm.data.unwrap_or_default()),
                Source::Secret => self.api.secret(ns, name).await?.map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
            };
            cache.insert(name.to_string(), data);
        }
        match cache.get(name).cloned().flatten() {
            Some(data) => Ok(Some(data)),
            None if optional == Some(true) => Ok(None),
            None => Err(format!("{} \"{name}\" not found", source.resource())),
        }
    }

    /// The pod's imagePullSecrets as docker config JSON documents.
    async fn pull_secrets(&self, pod: &Pod) -> Vec<Vec<u8>> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut out = Vec::new();
        for r in pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
        {
            if let Ok(Some(s)) = self.api.secret(&ns, &r.name).await
                && let Some(data) = s.data
            {
                for key in [".dockerconfigjson", ".dockercfg"] {
                    if let Some(v) = data.get(key) {
                        out.push(v.0.clone());
                    }
                }
            }
        }
        out
    }

    async fn run_probes(&self, pod: &Pod, c: &Container, r: &mut ContainerRun, ip: IpAddr) {
        let Some(started) = r.started else { return };
        let since = started.elapsed();
        // Startup first: the others wait until it has succeeded.
        if let Some(p) = &c.startup_probe {
            if r.startup.verdict != Some(true) {
                // As the kubelet's prober, no more checks once it is killed for a failure.
                if r.startup.due(p, since) && r.kill_at.is_none() {
                    let (ok, msg) = self.probe(pod, c, p, "Startup", &r.saved.id, ip).await;
                    r.startup.record(p, ok, msg, since);
                    if r.startup.verdict == Some(false) {
                        tracing::info!(container = %r.saved.id, "startup probe failed, restarting");
                        let msg = format!(
                            "Container {} failed startup probe, will be restarted",
                            c.name
                        );
                        self.event(pod, &c.name, Kind::Normal, "Killing", &msg)
                            .await;
                        self.kill_for_restart(r).await;
                    }
                }
                return;
            }
        } else {
            r.startup.verdict = Some(true);
        }
        if let Some(p) = &c.liveness_probe
            && r.liveness.due(p, since)
            && r.kill_at.is_none()
        {
            let (ok, msg) = self.probe(pod, c, p, "Liveness", &r.saved.id, ip).await;
            r.liveness.record(p, ok, msg, since);
            if r.liveness.verdict == Some(false) {
                tracing::info!(container = %r.saved.id, message = %r.liveness.last_message, "liveness probe failed, restarting");
                let msg = format!(
                    "Container {} failed liveness probe, will be restarted",
                    c.name
                );
                self.event(pod, &c.name, Kind::Normal, "Killing", &msg)
                    .await;
                self.kill_for_restart(r).await;
            }
        }
        match &c.readiness_probe {
            Some(p) => {
                if r.readiness.due(p, since) {
                    let (ok, msg) = self.probe(pod, c, p, "Readiness", &r.saved.id, ip).await;
                    r.readiness.record(p, ok, msg, since);
                }
            }
            None => {
                if r.readiness.verdict != Some(true) && self.ports_accept(c, ip, since).await {
                    r.readiness.verdict = Some(true);
                }
            }
        }
    }

    /// Runs one check of probe `p` (`kind`: Startup, Liveness, Readiness) against container
    /// `id`; a failure is the kubelet's `Unhealthy` event (`Readiness probe failed: <output>`),
    /// which the recorder counts when it repeats.
    async fn probe(
        &self,
        pod: &Pod,
        c: &Container,
        p: &Probe,
        kind: &str,
        id: &str,
        ip: IpAddr,
    ) -> (bool, String) {
        let (ok, msg) = probe::check(p, c, ip, &*self.host, id).await;
        if !ok {
            let event = format!("{kind} probe failed: {msg}");
            self.event(pod, &c.name, Kind::Warning, "Unhealthy", &event)
                .await;
        }
        (ok, msg)
    }

    async fn kill_for_restart(&self, r: &mut ContainerRun) {
        let _ = self.host.kill(&r.saved.id, Signal::Term).await;
        r.killing_for_probe(Instant::now());
        tracing::debug!(container = %r.saved.id, "sent SIGTERM for a probe failure");
    }

    /// Readiness of a container without a readiness probe. The kubelet calls it ready as soon
    /// as it runs, so a Service sends it connections before it listens; Baton waits until
    /// every TCP port the container declares accepts a connection, or [`IMPLICIT_READY_LIMIT`]
    /// passed.
    async fn ports_accept(&self, c: &Container, ip: IpAddr, since: Duration) -> bool {
        let ports: Vec<u16> = c
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        if ports.is_empty() || since >= IMPLICIT_READY_LIMIT {
            return true;
        }
        for port in ports {
            let connect = self.host.tcp_connect((ip, port).into());
            match tokio::time::timeout(Duration::from_millis(200), connect).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
        true
    }

    async fn ensure_network(&self, pod: &Pod, run: &mut PodRun) -> Result<(), String> {
        let (netns, veth) = net_names(&run.uid);
        let ip = match run.saved.ip {
            Some(ip) => ip,
            None => {
                // A namespace left from an earlier run whose state was lost keeps its address,
                // unless another pod holds it.
                let kept = match self.host.pod_address(&netns).await {
                    Some(a) if self.reserve_ip(a, &run.uid) => Some(a),
                    _ => None,
                };
                let ip = match kept {
                    Some(a) => a,
                    None => self.allocate_ip(&run.uid).ok_or_else(|| {
                        format!("no free address in the pod CIDR {}", self.opts.pod_cidr)
                    })?,
                };
                run.saved.ip = Some(ip);
                saved::save(&*self.host, &run.dir, &run.to_saved()).await;
                ip
            }
        };
        let net = PodNet {
            netns: &netns,
            veth: &veth,
            bridge: &self.opts.bridge,
            ip,
            prefix: self.opts.pod_cidr.prefix,
            gateway: self.opts.pod_cidr.gateway(),
        };
        self.host
            .create_pod_network(&net)
            .await
            .map_err(|e| e.to_string())?;
        // The namespace may predate this run: it must have the pod's address, or the pod
        // would answer on an address the agent may give to another pod.
        let actual = self.host.pod_address(&netns).await;
        if actual != Some(ip) {
            if !run.running().is_empty() {
                return Err(format!(
                    "the pod's network namespace has address {}, not its own {ip}",
                    actual
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "none".into())
                ));
            }
            tracing::warn!(pod = %run.saved.name, ?actual, %ip, "recreating a network namespace with the wrong address");
            self.host
                .delete_pod_network(&netns)
                .await
                .map_err(|e| e.to_string())?;
            self.host
                .create_pod_network(&net)
                .await
                .map_err(|e| e.to_string())?;
        }
        let etc = etc_dir(&run.dir);
        let dns = &self.opts.dns;
        let hostname = crate::dns::uts_hostname(pod, &dns.cluster_domain)?;
        let hosts = crate::dns::hosts_file(pod, ip, &dns.cluster_domain);
        let host_resolv = self.host.resolv_conf(&dns.resolv_conf).await;
        let resolv = crate::dns::resolv_conf(
            pod,
            dns,
            &baton_api::resolv::ResolvConf::parse(&host_resolv),
        )
        .render();
        for (f, body) in [
            ("hostname", format!("{hostname}\n")),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            self.host
                .write_file(&etc.join(f), body.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Waits, before a deleted pod's containers get SIGTERM, until every traffic agent with a
    /// fresh Lease has acknowledged that none of its proxies routes to the pod any more
    /// (`baton_api::drain`), at most the drain timeout and the grace period; on timeout a
    /// Warning event says which did not answer. Returns the time spent.
    async fn await_drained(
        &self,
        pod: &Pod,
        rx: &mut watch::Receiver<Option<Pod>>,
        grace: Duration,
    ) -> Duration {
        let started = Instant::now();
        let (Some(timeout), Some(leases)) = (self.opts.drain_timeout, self.traffic_leases.get())
        else {
            return Duration::ZERO;
        };
        if grace.is_zero() {
            return Duration::ZERO;
        }
        let limit = timeout.min(grace);
        loop {
            let current = rx.borrow().clone();
            let Some(current) = current else {
                return started.elapsed();
            };
            if current.metadata.deletion_grace_period_seconds == Some(0) {
                return started.elapsed();
            }
            let holders = fresh_holders(&leases.state());
            let missing = baton_api::drain::missing_acks(
                current.metadata.annotations.as_ref(),
                holders.iter().map(String::as_str),
            );
            if missing.is_empty() {
                self.settle_connections(&current, limit.saturating_sub(started.elapsed()))
                    .await;
                tracing::debug!(pod = %current.metadata.name.as_deref().unwrap_or(""), waited_ms = started.elapsed().as_millis() as u64, "drained");
                return started.elapsed();
            }
            if started.elapsed() >= limit {
                let msg = format!(
                    "traffic agents {} did not confirm within {}s that they stopped routing to the pod; stopping its containers anyway",
                    missing.join(", "),
                    limit.as_secs()
                );
                tracing::warn!(pod = %current.metadata.name.as_deref().unwrap_or(""), "{msg}");
                self.event(pod, "", Kind::Warning, "DrainTimeout", &msg)
                    .await;
                return started.elapsed();
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return started.elapsed(); },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Once no proxy routes to the pod any more: waits (at most [`SETTLE_LIMIT`] and `left`)
    /// while connections that reached it in the last second are still open. A Service
    /// connection made just before the rules changed may not have had its request answered
    /// yet; an app that exits at once on SIGTERM would drop it (the Ingress waits for its own
    /// requests in flight before acknowledging; the kernel's NAT has no such count).
    async fn settle_connections(&self, pod: &Pod, left: Duration) {
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
        else {
            return;
        };
        let until = Instant::now() + SETTLE_LIMIT.min(left);
        while self.host.young_connections(ip).await > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every container and removes all the pod left on the machine. The app containers
    /// (and an init container still running) stop first, then the sidecars, the last one
    /// first. Each group runs its preStop hooks, gets SIGTERM, and SIGKILL once the grace
    /// period is over — the hooks' time counts against it, but SIGTERM is followed by at least
    /// two seconds (the kubelet's minimum). A force deletion arriving on `rx` meanwhile cuts
    /// everything short. `pod` is the last object seen (None: never seen).
    async fn teardown(
        &self,
        pod: Option<&Pod>,
        run: &mut PodRun,
        grace: Duration,
        rx: &mut watch::Receiver<Option<Pod>>,
    ) {
        let spec = pod.and_then(|p| p.spec.clone()).unwrap_or_default();
        let deadline = Instant::now() + grace;
        for group in stop_order(&spec, run) {
            self.stop_group(pod, &spec, run, &group, grace, deadline, rx)
                .await;
        }
        self.remove_pod_files(
            &run.uid,
            &run.saved,
            run.containers.keys().cloned().collect(),
        )
        .await;
    }

    /// Evicts the pod as the kubelet's eviction manager does (over a local storage limit,
    /// see [`eviction`]): the Warning event `Evicted`, the status Failed / Evicted with `message`
    /// at once, then every container stopped with [`EVICTION_GRACE`] (preStop hooks, SIGTERM,
    /// SIGKILL), whatever its grace period. The pod object stays, for its owner to replace;
    /// its containers do not run again.
    async fn evict(
        &self,
        pod: &Pod,
        run: &mut PodRun,
        message: String,
        rx: &watch::Receiver<Option<Pod>>,
    ) {
        tracing::info!(pod = %run.saved.name, %message, "evicting the pod");
        self.event(pod, "", Kind::Warning, "Evicted", &message)
            .await;
        run.saved.evicted = Some(message);
        saved::save(&*self.host, &run.dir, &run.to_saved()).await;
        self.report(pod, run).await;
        let spec = pod.spec.clone().unwrap_or_default();
        let deadline = Instant::now() + EVICTION_GRACE;
        let mut rx = rx.clone();
        for group in stop_order(&spec, run) {
            self.stop_group(
                Some(pod),
                &spec,
                run,
                &group,
                EVICTION_GRACE,
                deadline,
                &mut rx,
            )
            .await;
        }
    }

    /// Frees the disk an evicted pod held once its containers all stopped, as the kubelet's
    /// container garbage collection and volume manager do for an evicted pod: the containers'
    /// writable layers (unmounted and removed) and the volumes ([`Agent::release_volumes`]).
    /// The logs stay, for `kubectl logs`, until the pod is deleted.
    async fn release_evicted(&self, spec: &PodSpec, run: &mut PodRun) {
        if run.volumes.released || !run.running().is_empty() {
            return;
        }
        for c in all_containers(spec) {
            let rootfs = bundle_dir(&run.dir, &c.name).join("rootfs");
            if self.host.unmount(&rootfs).await.is_ok() && !self.host.is_mounted(&rootfs).await {
                self.host
                    .remove_dir_all(&upper_dir(&run.dir, &c.name))
                    .await;
                self.host.remove_dir_all(&work_dir(&run.dir, &c.name)).await;
            }
        }
        self.release_volumes(&run.dir, &mut run.volumes).await;
    }

    /// Stops the running containers among `names` (see [`Agent::teardown`]) by `deadline`,
    /// the end of the pod's grace period `grace`.
    #[allow(clippy::too_many_arguments)]
    async fn stop_group(
        &self,
        pod: Option<&Pod>,
        spec: &PodSpec,
        run: &PodRun,
        names: &[String],
        grace: Duration,
        deadline: Instant,
        rx: &mut watch::Receiver<Option<Pod>>,
    ) {
        let running: Vec<(String, String, i32)> = run
            .running()
            .into_iter()
            .filter(|(_, name, _)| names.contains(name))
            .collect();
        if running.is_empty() {
            return;
        }
        let ip = IpAddr::V4(run.ip().unwrap_or(Ipv4Addr::LOCALHOST));
        if let Some(pod) = pod {
            for (_, name, _) in &running {
                let msg = format!("Stopping container {name}");
                self.event(pod, name, Kind::Normal, "Killing", &msg).await;
            }
        }
        if let Some(pod) = pod
            && !grace.is_zero()
            && rx.borrow().is_some()
        {
            let hooks = running.iter().filter_map(|(id, name, _)| {
                let c = find_container(spec, name)?;
                let h = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
                Some(self.pre_stop(pod, c, id, h, ip))
            });
            let hooks = futures::future::join_all(hooks);
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = tokio::time::timeout(left, hooks) => {}
                _ = gone(rx) => {}
            }
        }
        let sig = if grace.is_zero() || rx.borrow().is_none() {
            Signal::Kill
        } else {
            Signal::Term
        };
        for (id, _, _) in &running {
            if let Err(e) = self.host.kill(id, sig).await {
                tracing::debug!(container = %id, error = %e, "kill failed");
            }
        }
        let deadline = deadline.max(Instant::now() + grace.min(MIN_GRACE_AFTER_HOOKS));
        let mut killed = sig == Signal::Kill;
        loop {
            let alive = running
                .iter()
                .filter(|(_, name, pid)| {
                    let bundle = bundle_dir(&run.dir, name);
                    self.host.try_exit(*pid, &bundle).is_none()
                })
                .count();
            if alive == 0 {
                break;
            }
            if !killed && (Instant::now() >= deadline || rx.borrow().is_none()) {
                for (id, _, _) in &running {
                    let _ = self.host.kill(id, Signal::Kill).await;
                }
                killed = true;
            }
            if killed && Instant::now() >= deadline + Duration::from_secs(10) {
                tracing::warn!(pod = %run.saved.name, "containers did not die after SIGKILL");
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = rx.changed() => {}
            }
        }
    }

    /// Runs container `c`'s preStop hook; a failure is a `FailedPreStopHook` event and the
    /// container stops all the same.
    async fn pre_stop(&self, pod: &Pod, c: &Container, id: &str, h: &LifecycleHandler, ip: IpAddr) {
        if let Err(message) = self.run_hook(pod, c, id, h, ip).await {
            tracing::info!(container = %id, error = %message, "preStop hook failed");
            self.event(pod, &c.name, Kind::Warning, "FailedPreStopHook", &message)
                .await;
        }
    }

    /// Stops one sidecar of a pod whose work is over: its preStop hook, SIGTERM. Returns when
    /// SIGKILL is due (the grace period less the hook's time, at least two seconds).
    async fn stop_one(
        &self,
        pod: &Pod,
        c: &Container,
        r: &ContainerRun,
        ip: IpAddr,
        grace: Duration,
        rx: &watch::Receiver<Option<Pod>>,
    ) -> Instant {
        let started = Instant::now();
        let pre_stop = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
        if let Some(h) = pre_stop
            && !grace.is_zero()
        {
            tokio::select! {
                _ = tokio::time::timeout(grace, self.pre_stop(pod, c, &r.saved.id, h, ip)) => {}
                _ = deleting(rx.clone()) => {}
            }
        }
        let sig = if grace.is_zero() {
            Signal::Kill
        } else {
            Signal::Term
        };
        let _ = self.host.kill(&r.saved.id, sig).await;
        let left = grace
            .saturating_sub(started.elapsed())
            .max(grace.min(MIN_GRACE_AFTER_HOOKS));
        Instant::now() + left
    }

    /// Runs lifecycle hook `h` of container `c` (runc id `id`) of `pod` at `ip`; the error is
    /// the kubelet's message. An httpGet hook fails only when no answer comes (its status
    /// code does not count, as with the kubelet); a sleep hook sleeps in the agent.
    async fn run_hook(
        &self,
        pod: &Pod,
        c: &Container,
        id: &str,
        h: &LifecycleHandler,
        ip: IpAddr,
    ) -> Result<(), String> {
        let who = format!(
            "Container {:?} in Pod {:?}",
            c.name,
            security::pod_ref(
                pod.metadata.name.as_deref().unwrap_or_default(),
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.uid.as_deref().unwrap_or_default(),
            )
        );
        if let Some(e) = &h.exec {
            let cmd = e.command.clone().unwrap_or_default();
            let shown = cmd.join(" ");
            return match self.host.exec(id, &cmd).await {
                Ok(out) if out.success => Ok(()),
                Ok(out) => Err(format!(
                    "Exec lifecycle hook ([{shown}]) for {who} failed - error: command '{shown}' exited with a non-zero code: {}, message: {:?}",
                    out.output, out.output
                )),
                Err(e) => Err(format!(
                    "Exec lifecycle hook ([{shown}]) for {who} failed - error: {e}, message: \"\""
                )),
            };
        }
        if let Some(g) = &h.http_get {
            let path = g.path.clone().unwrap_or_default();
            let Some(port) = probe::port_of(&g.port, c) else {
                return Err(format!(
                    "HTTP lifecycle hook ({path}) for {who} failed - error: couldn't find port: {:?}",
                    g.port
                ));
            };
            let host_ip = g.host.as_deref().and_then(|h| h.parse().ok()).unwrap_or(ip);
            let addr = SocketAddr::new(host_ip, port);
            let target = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            return match self.host.http_get(addr, &target).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "HTTP lifecycle hook ({path}) for {who} failed - error: Get \"http://{addr}{target}\": {e}"
                )),
            };
        }
        if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
            return Ok(());
        }
        Err("Cannot run handler: invalid handler".into())
    }

    /// The termination message of container `c`'s run `n`, which ended with `code`: the end
    /// of the file at its terminationMessagePath (4096 bytes), or — with
    /// `FallbackToLogsOnError`, a failure and an empty file — the end of its log (80 lines,
    /// at most 2048 bytes), as the kubelet reads them.
    async fn termination_message(
        &self,
        pod: &Pod,
        c: &Container,
        uid: &str,
        n: u32,
        code: i32,
    ) -> String {
        let mut message = Vec::new();
        if message_path(c).is_some() {
            let file = self.pod_dir(uid).join(&c.name).join(TERMINATION_LOG);
            message = self.host.read_tail(&file, MAX_MESSAGE_BYTES).await;
        }
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        if message.is_empty() && code != 0 && fallback {
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let log = self.log_path(ns, name, uid, &c.name, n);
            const READ: usize = 64 * 1024;
            let tail = self.host.read_tail(&log, READ).await;
            let (lines, bytes) = (MAX_MESSAGE_LOG_LINES as u64, MAX_MESSAGE_LOG_BYTES);
            message = crate::logs::last_lines(&tail, tail.len() == READ, lines, bytes);
        }
        String::from_utf8_lossy(&message).into_owned()
    }

    /// Removes containers, mounts, cgroups, network and files of a pod (also for orphans).
    pub(crate) async fn remove_pod_files(&self, uid: &str, saved: &SavedPod, names: Vec<String>) {
        let dir = self.pod_dir(uid);
        let rootfs = |name: &str| dir.join(name).join("bundle").join("rootfs");
        for name in &names {
            let id = container_id(uid, name);
            let _ = self.host.delete(&id).await;
            let _ = self.host.unmount(&rootfs(name)).await;
            self.host.remove_cgroup(&cgroup_path(uid, name)).await;
        }
        self.host.remove_cgroup(&cgroup_path(uid, "")).await;
        let (netns, _) = net_names(uid);
        if let Err(e) = self.host.delete_pod_network(&netns).await {
            tracing::warn!(pod = %saved.name, error = %e, "removing the pod network failed");
        }
        if let Some(ip) = saved.ip {
            self.host.forget_connections(ip).await;
        }
        self.release_ips(uid);
        self.host.remove_dir_all(&self.config_dir(uid)).await;
        // Everything is unmounted: the directory can go (never follow into a live mount).
        let mut mounted = self.unmount_volumes(&dir).await;
        for name in &names {
            mounted |= self.host.is_mounted(&rootfs(name)).await;
        }
        if !mounted {
            self.host.remove_dir_all(&dir).await;
        }
        let logs = self.pod_log_dir(&saved.namespace, &saved.name, uid);
        self.host.remove_dir_all(&logs).await;
    }

    /// The kubelet's last word on a gracefully deleted pod: delete it for good.
    async fn finish_deletion(&self, pod: &Pod, uid: &str) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        match self.api.delete_pod(&ns, &name, uid).await {
            Ok(true) => tracing::info!(pod = %name, "pod deleted after its containers stopped"),
            Ok(false) => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "final pod deletion failed"),
        }
    }

    /// Sends the pod's status when it changed.
    async fn report(&self, pod: &Pod, run: &mut PodRun) {
        let spec = pod.spec.clone().unwrap_or_default();
        let status = status::pod_status(&spec, run, self.opts.node_ip, &now_rfc3339());
        if run.last_status.as_ref() == Some(&status) {
            return;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        match self.api.patch_status(&ns, &name, &status).await {
            Ok(()) => run.last_status = Some(status),
            Err(e) => tracing::debug!(pod = %name, error = %e, "status update failed"),
        }
    }
}

/// Where the container's termination message is written (None: nowhere).
fn message_path(c: &Container) -> Option<&str> {
    let path = c
        .termination_message_path
        .as_deref()
        .unwrap_or("/dev/termination-log");
    (!path.is_empty()).then_some(path)
}

/// The host file behind each container's terminationMessagePath (in its directory).
const TERMINATION_LOG: &str = "termination-log";
/// How much of the termination message file the status shows (its end), as the kubelet.
const MAX_MESSAGE_BYTES: usize = 4096;
/// How much of the log `FallbackToLogsOnError` shows, as the kubelet.
const MAX_MESSAGE_LOG_LINES: usize = 80;
const MAX_MESSAGE_LOG_BYTES: usize = 2048;
/// The least time between SIGTERM and SIGKILL once the hooks are done (the kubelet's
/// `minimumGracePeriodInSeconds`), unless the grace period itself is shorter.
const MIN_GRACE_AFTER_HOOKS: Duration = Duration::from_secs(2);

/// The grace period of an eviction (the kubelet's `immediateEvictionGracePeriodSeconds`; its
/// pod workers never give less than one second).
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// Resolves once the pod is being deleted or gone (a hook in progress stops waiting).
async fn deleting(mut rx: watch::Receiver<Option<Pod>>) {
    loop {
        let deleted = rx
            .borrow_and_update()
            .as_ref()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        if deleted || rx.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves once the pod is gone from the API (force-deleted).
async fn gone(rx: &mut watch::Receiver<Option<Pod>>) {
    loop {
        if rx.borrow_and_update().is_none() || rx.changed().await.is_err() {
            return;
        }
    }
}

/// The pod's `terminationGracePeriodSeconds` (30 s when unset).
fn grace_period(spec: &PodSpec) -> Duration {
    Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64)
}

/// Why a container did not start.
#[derive(Debug)]
enum LaunchError {
    /// Its configuration cannot be run as asked (the kubelet's `CreateContainerConfigError`:
    /// a missing ConfigMap key, a root user under `runAsNonRoot`); nothing was started.
    Config(String),
    /// The runtime failed to start it (`StartError`).
    Start(String),
}

/// Where environment variables come from besides the spec: a ConfigMap or a Secret.
#[derive(Clone, Copy, Debug)]
enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    /// As the kubelet's key error names it (`couldn't find key k in ConfigMap ns/x`).
    fn kind(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }

    /// As the kubelet's not-found error names it (`configmap "x" not found`).
    fn resource(self) -> &'static str {
        match self {
            Source::ConfigMap => "configmap",
            Source::Secret => "secret",
        }
    }
}

/// How long a container without a readiness probe may take to accept connections on the TCP
/// ports it declares before it counts as ready anyway (the ports may be informational).
const IMPLICIT_READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a drained pod's young connections may hold its SIGTERM back
/// (`settle_connections`): ages are whole seconds, so one second and a little.
const SETTLE_LIMIT: Duration = Duration::from_millis(1200);

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limits() {
        let (ns, veth) = net_names("0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11");
        assert_eq!(ns, "baton-0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11");
        assert!(veth.len() <= 15, "{veth}");
    }
}
