//! One pod's life on this node: a worker task per pod that sets up its network, pulls its
//! images, starts its containers with runc, watches them exit, restarts them by the pod's
//! `restartPolicy` with the kubelet's back-off, runs probes, reports status, and on deletion
//! stops the containers (SIGTERM, the grace period, SIGKILL), removes every trace of them and
//! finally deletes the pod object.
//!
//! What the worker knows is saved in `pods/<uid>/state.json`, so an agent restarted after a
//! crash adopts the running containers instead of starting them again.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::bundle::{self, BundleContext};
use crate::events::{self, Kind};
use crate::host::{Exit, PodNet};
use crate::probe::{self, ProbeState};
use crate::{Agent, PullError, fresh_holders};

/// The kubelet's restart back-off: 10 s doubling up to 5 min (the first restart is at once).
fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let secs = 10u64.saturating_mul(1 << (restarts - 1).min(5));
    Duration::from_secs(secs.min(300))
}

/// How long ErrImagePull shows before the status says ImagePullBackOff (the kubelet shows it
/// on its next sync after the failure).
const PULL_ERROR_SHOWN: Duration = Duration::from_secs(1);

/// The ImagePullBackOff state that follows a failed pull of `image` (`message`, at `failed`),
/// once the ErrImagePull has shown long enough; None while it should still show.
fn pull_backoff_state(
    state: &State,
    image: &str,
    failed: Instant,
    message: &str,
    now: Instant,
) -> Option<State> {
    let showing_error = matches!(state, State::Waiting { reason, .. } if reason == "ErrImagePull");
    (showing_error && now.saturating_duration_since(failed) >= PULL_ERROR_SHOWN).then(|| {
        State::Waiting {
            reason: "ImagePullBackOff".into(),
            message: format!("Back-off pulling image \"{image}\": {message}"),
        }
    })
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A container's saved record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SavedContainer {
    pub id: String,
    pub pid: Option<i32>,
    pub started_at: Option<String>,
    pub restart_count: u32,
    pub image_id: String,
}

/// What survives an agent restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SavedPod {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub start_time: Option<String>,
    pub containers: BTreeMap<String, SavedContainer>,
}

/// A container's state as the status shows it.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Waiting { reason: String, message: String },
    Running { started_at: String },
    Terminated(Terminated),
}

#[derive(Clone, Debug, PartialEq)]
struct Terminated {
    exit_code: i32,
    reason: String,
    message: String,
    started_at: String,
    finished_at: String,
}

impl Terminated {
    fn json(&self, id: &str) -> Value {
        let mut v = json!({"exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at, "containerID": format!("runc://{id}")});
        if !self.message.is_empty() {
            v["message"] = json!(self.message);
        }
        v
    }
}

struct ContainerRun {
    saved: SavedContainer,
    state: State,
    last: Option<Terminated>,
    /// When the container may be (re)started.
    start_after: Option<Instant>,
    /// When it started, for probe timing.
    started: Option<Instant>,
    /// Failed pulls in a row, for ImagePullBackOff.
    pull_failures: u32,
    /// When the last pull failed and why, until the status moves on to ImagePullBackOff.
    pull_error: Option<(Instant, String)>,
    /// Finished for good (restartPolicy says no more).
    done: bool,
    liveness: ProbeState,
    readiness: ProbeState,
    startup: ProbeState,
    /// A kill is under way (liveness failure): SIGKILL after this instant.
    kill_at: Option<Instant>,
}

impl ContainerRun {
    fn new(saved: SavedContainer) -> Self {
        ContainerRun {
            saved,
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last: None,
            start_after: None,
            started: None,
            pull_failures: 0,
            pull_error: None,
            done: false,
            liveness: ProbeState::default(),
            readiness: ProbeState::default(),
            startup: ProbeState::default(),
            kill_at: None,
        }
    }

    fn running_pid(&self) -> Option<i32> {
        matches!(self.state, State::Running { .. })
            .then_some(self.saved.pid)
            .flatten()
    }
}

/// The worker's view of its pod.
pub struct PodRun {
    uid: String,
    dir: PathBuf,
    saved: SavedPod,
    containers: BTreeMap<String, ContainerRun>,
    /// Condition type → (status, lastTransitionTime).
    transitions: BTreeMap<String, (String, String)>,
    last_status: Option<Value>,
    network_ready: bool,
}

impl PodRun {
    fn save(&self) {
        let mut saved = self.saved.clone();
        saved.containers = self
            .containers
            .iter()
            .map(|(k, c)| (k.clone(), c.saved.clone()))
            .collect();
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let Ok(body) = serde_json::to_vec_pretty(&saved) else {
            return;
        };
        if std::fs::write(&tmp, body)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .is_err()
        {
            tracing::warn!(pod = %self.saved.name, "could not save pod state");
        }
    }
}

/// Reads a pod's saved state, if any.
pub fn load_saved(dir: &Path) -> Option<SavedPod> {
    let body = std::fs::read(dir.join("state.json")).ok()?;
    serde_json::from_slice(&body).ok()
}

pub(crate) fn container_id(uid: &str, name: &str) -> String {
    format!("{uid}-{name}")
}

/// The network namespace and host-side veth names of a pod (veth names max 15 bytes).
pub fn net_names(uid: &str) -> (String, String) {
    let hex: String = uid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(12)
        .collect();
    (format!("baton-{uid}"), format!("bv{hex}"))
}

impl Agent {
    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.opts.data_dir.join("pods").join(uid)
    }

    /// The log file of a container's `n`th run.
    pub fn log_path(&self, ns: &str, pod: &str, uid: &str, container: &str, n: u32) -> PathBuf {
        self.opts
            .data_dir
            .join("logs")
            .join(format!("{ns}_{pod}_{uid}"))
            .join(container)
            .join(format!("{n}.log"))
    }
}

/// Runs one pod until it is gone. `rx` carries the latest object (None: deleted from the API).
pub async fn worker(agent: Arc<Agent>, uid: String, mut rx: watch::Receiver<Option<Pod>>) {
    let dir = agent.pod_dir(&uid);
    let _ = std::fs::create_dir_all(&dir);
    let saved = load_saved(&dir).unwrap_or_default();
    let runc_list = agent.host.list().await.unwrap_or_default();
    let containers = saved
        .containers
        .iter()
        .map(|(name, s)| {
            let mut run = ContainerRun::new(s.clone());
            // Adopt a container that is still running from before a restart.
            if let Some(pid) = s.pid {
                let alive = runc_list
                    .iter()
                    .any(|c| c.id == s.id && c.pid == pid && c.status == "running");
                if alive && agent.host.try_exit(pid).is_none() {
                    run.state = State::Running {
                        started_at: s.started_at.clone().unwrap_or_else(now_rfc3339),
                    };
                    run.started = Some(Instant::now());
                    // Probes start over: the container was Ready before, keep it so until a
                    // probe says otherwise.
                    run.readiness.verdict = Some(true);
                    run.startup.verdict = Some(true);
                    tracing::info!(container = %s.id, pid, "adopted running container");
                } else {
                    run.state = State::Terminated(Terminated {
                        exit_code: 137,
                        reason: "Error".into(),
                        message: "the container ended while the node agent was down".into(),
                        started_at: s.started_at.clone().unwrap_or_default(),
                        finished_at: now_rfc3339(),
                    });
                    run.saved.pid = None;
                }
            }
            (name.clone(), run)
        })
        .collect();
    if let Some(ip) = saved.ip {
        agent.reserve_ip(ip);
    }
    let mut run = PodRun {
        uid: uid.clone(),
        dir,
        network_ready: false,
        saved,
        containers,
        transitions: BTreeMap::new(),
        last_status: None,
    };
    loop {
        let pod = rx.borrow_and_update().clone();
        let Some(pod) = pod else {
            agent.teardown(&mut run, Duration::ZERO, &mut rx).await;
            break;
        };
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
            agent.teardown(&mut run, left, &mut rx).await;
            agent.finish_deletion(&pod, &uid).await;
            break;
        }
        let wait = agent.sync(&pod, &mut run).await;
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    agent.teardown(&mut run, Duration::ZERO, &mut rx).await;
                    break;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    agent.forget_worker(&uid);
}

impl Agent {
    /// One pass over the pod: network, containers, probes, status. Returns when to look again.
    async fn sync(&self, pod: &Pod, run: &mut PodRun) -> Duration {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        run.saved.namespace = ns.clone();
        run.saved.name = name.clone();
        if run.saved.start_time.is_none() {
            run.saved.start_time = Some(now_rfc3339());
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let mut wake = Duration::from_millis(1000);
        if !run.network_ready {
            match self.ensure_network(pod, run).await {
                Ok(()) => run.network_ready = true,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "pod network setup failed");
                    for c in &spec.containers {
                        let r = run
                            .containers
                            .entry(c.name.clone())
                            .or_insert_with(|| ContainerRun::new(SavedContainer::default()));
                        r.state = State::Waiting {
                            reason: "ContainerCreating".into(),
                            message: format!("failed to set up the pod network: {e}"),
                        };
                    }
                    self.report(pod, run).await;
                    return Duration::from_secs(2);
                }
            }
        }
        let ip = run
            .saved
            .ip
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        for c in &spec.containers {
            let uid = run.uid.clone();
            let r = run.containers.entry(c.name.clone()).or_insert_with(|| {
                ContainerRun::new(SavedContainer {
                    id: container_id(&uid, &c.name),
                    ..Default::default()
                })
            });
            if r.saved.id.is_empty() {
                r.saved.id = container_id(&uid, &c.name);
            }
            // Exited?
            if let Some(pid) = r.running_pid() {
                if let Some(exit) = self.host.try_exit(pid) {
                    self.container_exited(r, exit, &policy).await;
                    self.backoff_event(pod, &c.name, r).await;
                } else if let Some(at) = r.kill_at
                    && Instant::now() >= at
                {
                    let _ = self.host.kill(&r.saved.id, "KILL").await;
                }
            }
            // Start or restart when due.
            let due = r.start_after.is_none_or(|t| Instant::now() >= t);
            if !r.done && r.running_pid().is_none() && due {
                self.start_container(pod, c, r, &uid, ip).await;
            } else if let Some((failed, message)) = &r.pull_error
                && let Some(next) = pull_backoff_state(
                    &r.state,
                    c.image.as_deref().unwrap_or_default(),
                    *failed,
                    message,
                    Instant::now(),
                )
            {
                r.state = next;
                r.pull_error = None;
                let image = c.image.clone().unwrap_or_default();
                let msg = format!("Back-off pulling image \"{image}\"");
                self.event(pod, &c.name, Kind::Normal, "BackOff", &msg)
                    .await;
                self.event(
                    pod,
                    &c.name,
                    Kind::Warning,
                    "Failed",
                    "Error: ImagePullBackOff",
                )
                .await;
            }
            if r.running_pid().is_some() {
                self.run_probes(c, r, ip).await;
                if r.started
                    .is_some_and(|s| s.elapsed() < Duration::from_secs(5))
                    || r.readiness.verdict.is_none()
                {
                    wake = wake.min(Duration::from_millis(100));
                }
                for p in [&c.readiness_probe, &c.liveness_probe, &c.startup_probe]
                    .into_iter()
                    .flatten()
                {
                    let period = p.period_seconds.unwrap_or(10).max(1) as u64;
                    wake = wake.min(Duration::from_secs(period));
                }
            } else if let Some(t) = r.start_after {
                wake = wake.min(
                    t.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(50)),
                );
            }
        }
        run.save();
        self.report(pod, run).await;
        wake.min(Duration::from_millis(500))
    }

    async fn container_exited(&self, r: &mut ContainerRun, exit: Exit, policy: &str) {
        let started_at = match &r.state {
            State::Running { started_at } => started_at.clone(),
            _ => String::new(),
        };
        let code = exit.code();
        let oom = self.oom_killed(&r.saved.id);
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let t = Terminated {
            exit_code: code,
            reason: reason.into(),
            message: String::new(),
            started_at,
            finished_at: now_rfc3339(),
        };
        tracing::info!(container = %r.saved.id, code, reason, "container exited");
        let _ = self.host.delete(&r.saved.id).await;
        r.saved.pid = None;
        r.kill_at = None;
        r.started = None;
        r.readiness = ProbeState::default();
        r.liveness = ProbeState::default();
        r.startup = ProbeState::default();
        self.after_termination(r, t, policy);
    }

    /// Decides what follows a termination: restart (with back-off) or done.
    fn after_termination(&self, r: &mut ContainerRun, t: Terminated, policy: &str) {
        let restart = match policy {
            "Never" => false,
            "OnFailure" => t.exit_code != 0,
            _ => true,
        };
        if restart {
            let delay = backoff(r.saved.restart_count);
            r.start_after = Some(Instant::now() + delay);
            r.state = if delay.is_zero() {
                State::Terminated(t.clone())
            } else {
                State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!("back-off {}s restarting failed container", delay.as_secs()),
                }
            };
            r.last = Some(t);
        } else {
            r.done = true;
            r.state = State::Terminated(t);
        }
    }

    fn oom_killed(&self, id: &str) -> bool {
        // cgroup v1: memory.oom_control reports oom_kill > 0 once the kernel killed in it.
        let uid = id.get(..36).unwrap_or(id);
        let name = id.get(37..).unwrap_or("");
        let path = format!("/sys/fs/cgroup/memory/baton/{uid}/{name}/memory.oom_control");
        std::fs::read_to_string(path).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("oom_kill ") && l.trim_end() != "oom_kill 0")
        })
    }

    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        r: &mut ContainerRun,
        uid: &str,
        ip: IpAddr,
    ) {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_default();
        let secrets = self.pull_secrets(pod).await;
        let img = match self.images.ensure(&image, &policy, &secrets).await {
            Ok(i) => {
                r.pull_failures = 0;
                r.pull_error = None;
                i
            }
            Err(PullError { reason, message }) => {
                r.pull_failures += 1;
                // Each failure shows ErrImagePull, then ImagePullBackOff while backing off.
                let delay = backoff(r.pull_failures);
                r.start_after = Some(Instant::now() + delay.max(Duration::from_secs(1)));
                tracing::info!(pod = ?pod.metadata.name, image = %image, reason = %reason, "image not available");
                if reason == "ErrImagePull" {
                    r.pull_error = Some((Instant::now(), message.clone()));
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
                r.state = State::Waiting { reason, message };
                return;
            }
        };
        let restarting = r.last.is_some() || r.saved.started_at.is_some();
        let n = if restarting {
            r.saved.restart_count + 1
        } else {
            r.saved.restart_count
        };
        match self.launch(pod, c, &r.saved.id, &img, uid, ip, n).await {
            Ok(pid) => {
                let started_at = now_rfc3339();
                r.saved.pid = Some(pid);
                r.saved.started_at = Some(started_at.clone());
                r.saved.restart_count = n;
                r.saved.image_id = img.image_id.clone();
                r.state = State::Running { started_at };
                r.started = Some(Instant::now());
                r.start_after = None;
                tracing::info!(container = %r.saved.id, pid, restarts = n, "container started");
            }
            Err(message) => {
                tracing::info!(container = %r.saved.id, error = %message, "container failed to start");
                r.saved.restart_count = n;
                r.saved.started_at = Some(now_rfc3339());
                let t = Terminated {
                    exit_code: 128,
                    reason: "StartError".into(),
                    message,
                    started_at: "1970-01-01T00:00:00Z".into(),
                    finished_at: now_rfc3339(),
                };
                let policy = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.restart_policy.clone())
                    .unwrap_or_else(|| "Always".into());
                let _ = self.host.delete(&r.saved.id).await;
                let msg = format!("Error: {}", t.message);
                self.event(pod, &c.name, Kind::Warning, "Failed", &msg)
                    .await;
                self.after_termination(r, t, &policy);
                self.backoff_event(pod, &c.name, r).await;
            }
        }
    }

    /// Records an event about container `container` of `pod`.
    async fn event(&self, pod: &Pod, container: &str, kind: Kind, reason: &str, message: &str) {
        events::record(
            &self.client,
            pod,
            container,
            &self.opts.node_name,
            kind,
            reason,
            message,
        )
        .await;
    }

    /// The BackOff event of a container that just went into CrashLoopBackOff.
    async fn backoff_event(&self, pod: &Pod, container: &str, r: &ContainerRun) {
        if matches!(&r.state, State::Waiting { reason, .. } if reason == "CrashLoopBackOff") {
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

    /// Writes the bundle and runs it. Returns the pid, or runc's reason for failing.
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
    ) -> Result<i32, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let cdir = self.pod_dir(uid).join(&c.name);
        let bundle_dir = cdir.join("bundle");
        let rootfs = bundle_dir.join("rootfs");
        let upper = cdir.join("upper");
        let work = cdir.join("work");
        // A restart gets a fresh writable layer, like a new container in Kubernetes.
        self.host
            .unmount(&rootfs)
            .await
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&upper);
        let _ = std::fs::remove_dir_all(&work);
        self.host
            .mount_overlay(&img.rootfs, &upper, &work, &rootfs)
            .await
            .map_err(|e| e.to_string())?;
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
        let resolved = self.resolve_env_refs(pod, c).await?;
        let env =
            bundle::environment(c, &img.config, &fields, &resolved).map_err(|e| e.to_string())?;
        let passwd = std::fs::read_to_string(img.rootfs.join("etc/passwd")).unwrap_or_default();
        let group = std::fs::read_to_string(img.rootfs.join("etc/group")).unwrap_or_default();
        let (mut uid_n, mut gid_n) = bundle::resolve_user(&img.config.user, &passwd, &group);
        if let Some(sc) = &c.security_context {
            if let Some(u) = sc.run_as_user {
                uid_n = u as u32;
            }
            if let Some(g) = sc.run_as_group {
                gid_n = g as u32;
            }
        }
        let etc = self.pod_dir(uid).join("etc");
        let etc_files: Vec<(String, String)> = ["hostname", "hosts", "resolv.conf"]
            .iter()
            .map(|f| (format!("/etc/{f}"), etc.join(f).display().to_string()))
            .collect();
        let (netns, _) = net_names(uid);
        let cgroups_path = format!("/baton/{uid}/{}", c.name);
        let annotations = BTreeMap::from([
            ("io.kubernetes.pod.namespace".to_string(), ns.clone()),
            ("io.kubernetes.pod.name".to_string(), name.clone()),
            ("io.kubernetes.pod.uid".to_string(), uid.to_string()),
            ("io.kubernetes.container.name".to_string(), c.name.clone()),
        ]);
        let netns_path = format!("/run/netns/{netns}");
        let ctx = BundleContext {
            hostname: &name,
            netns_path: &netns_path,
            etc_files: &etc_files,
            field_values: &fields,
            cgroups_path: &cgroups_path,
            uid: uid_n,
            gid: gid_n,
            annotations,
        };
        let config =
            bundle::runtime_config(c, &img.config, &env, &ctx).map_err(|e| e.to_string())?;
        let body = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::write(bundle_dir.join("config.json"), body)
            .map_err(|e| format!("writing the bundle: {e}"))?;
        let log = self.log_path(&ns, &name, uid, &c.name, n);
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating the log dir: {e}"))?;
        }
        self.host
            .run(id, &bundle_dir, &log)
            .await
            .map_err(|e| match e {
                crate::host::HostError::Command { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Values of `valueFrom` configMapKeyRef/secretKeyRef, by variable name.
    async fn resolve_env_refs(
        &self,
        pod: &Pod,
        c: &Container,
    ) -> Result<BTreeMap<String, String>, String> {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret};
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut out = BTreeMap::new();
        for e in c.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            if let Some(r) = &from.config_map_key_ref {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                let cm = api.get_opt(&r.name).await.map_err(|e| e.to_string())?;
                match cm.and_then(|cm| cm.data.and_then(|d| d.get(&r.key).cloned())) {
                    Some(v) => {
                        out.insert(e.name.clone(), v);
                    }
                    None if r.optional == Some(true) => {}
                    None => {
                        return Err(format!(
                            "couldn't find key {} in ConfigMap {ns}/{}",
                            r.key, r.name
                        ));
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                let s = api.get_opt(&r.name).await.map_err(|e| e.to_string())?;
                match s.and_then(|s| s.data.and_then(|d| d.get(&r.key).cloned())) {
                    Some(v) => {
                        out.insert(e.name.clone(), String::from_utf8_lossy(&v.0).into_owned());
                    }
                    None if r.optional == Some(true) => {}
                    None => {
                        return Err(format!(
                            "couldn't find key {} in Secret {ns}/{}",
                            r.key, r.name
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The pod's imagePullSecrets as docker config JSON documents.
    async fn pull_secrets(&self, pod: &Pod) -> Vec<Vec<u8>> {
        use k8s_openapi::api::core::v1::Secret;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let mut out = Vec::new();
        for r in pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
        {
            if let Ok(Some(s)) = api.get_opt(&r.name).await
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

    async fn run_probes(&self, c: &Container, r: &mut ContainerRun, ip: IpAddr) {
        let Some(started) = r.started else { return };
        let since = started.elapsed();
        let id = r.saved.id.clone();
        let host = self.host.clone();
        let exec = |cmd: &[String]| host.exec_command(&id, cmd);
        // Startup first: the others wait until it has succeeded.
        if let Some(p) = &c.startup_probe {
            if r.startup.verdict != Some(true) {
                if r.startup.due(p, since) {
                    let (ok, msg) = probe::check(p, c, ip, exec).await;
                    r.startup.record(p, ok, msg, since);
                    if r.startup.verdict == Some(false) {
                        tracing::info!(container = %id, "startup probe failed, restarting");
                        self.kill_for_restart(r, &c.name).await;
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
            let (ok, msg) = probe::check(p, c, ip, |cmd| host.exec_command(&id, cmd)).await;
            r.liveness.record(p, ok, msg, since);
            if r.liveness.verdict == Some(false) {
                tracing::info!(container = %id, message = %r.liveness.last_message, "liveness probe failed, restarting");
                self.kill_for_restart(r, &c.name).await;
            }
        }
        match &c.readiness_probe {
            Some(p) => {
                if r.readiness.due(p, since) {
                    let (ok, msg) = probe::check(p, c, ip, |cmd| host.exec_command(&id, cmd)).await;
                    r.readiness.record(p, ok, msg, since);
                }
            }
            None => {
                if r.readiness.verdict != Some(true) && ports_accept(c, ip, since).await {
                    r.readiness.verdict = Some(true);
                }
            }
        }
    }

    async fn kill_for_restart(&self, r: &mut ContainerRun, name: &str) {
        let _ = self.host.kill(&r.saved.id, "TERM").await;
        r.kill_at = Some(Instant::now() + Duration::from_secs(2));
        r.liveness = ProbeState::default();
        r.startup.verdict = None;
        tracing::debug!(container = name, "sent SIGTERM for a probe failure");
    }

    async fn ensure_network(&self, pod: &Pod, run: &mut PodRun) -> Result<(), String> {
        let ip = match run.saved.ip {
            Some(ip) => ip,
            None => {
                let ip = self.allocate_ip().ok_or_else(|| {
                    format!("no free address in the pod CIDR {}", self.opts.pod_cidr)
                })?;
                run.saved.ip = Some(ip);
                run.save();
                ip
            }
        };
        let (netns, veth) = net_names(&run.uid);
        self.host
            .create_pod_network(&PodNet {
                netns: &netns,
                veth: &veth,
                bridge: &self.opts.bridge,
                ip,
                prefix: self.opts.pod_cidr.prefix,
                gateway: self.opts.pod_cidr.gateway(),
            })
            .await
            .map_err(|e| e.to_string())?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let etc = run.dir.join("etc");
        std::fs::create_dir_all(&etc).map_err(|e| e.to_string())?;
        let hosts = format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{name}\n"
        );
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for (f, body) in [
            ("hostname", format!("{name}\n")),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            std::fs::write(etc.join(f), body).map_err(|e| e.to_string())?;
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

    /// Stops every container (SIGTERM, up to `grace`, SIGKILL) and removes all the pod left on
    /// the machine. A force deletion arriving on `rx` meanwhile cuts the grace short.
    async fn teardown(
        &self,
        run: &mut PodRun,
        grace: Duration,
        rx: &mut watch::Receiver<Option<Pod>>,
    ) {
        let running: Vec<(String, i32)> = run
            .containers
            .values()
            .filter_map(|c| c.running_pid().map(|p| (c.saved.id.clone(), p)))
            .collect();
        if !running.is_empty() {
            for (id, _) in &running {
                let sig = if grace.is_zero() { "KILL" } else { "TERM" };
                if let Err(e) = self.host.kill(id, sig).await {
                    tracing::debug!(container = %id, error = %e, "kill failed");
                }
            }
            let deadline = Instant::now() + grace;
            let mut killed = grace.is_zero();
            loop {
                let alive = running
                    .iter()
                    .filter(|(_, pid)| self.host.try_exit(*pid).is_none())
                    .count();
                if alive == 0 {
                    break;
                }
                if !killed && (Instant::now() >= deadline || rx.borrow().is_none()) {
                    for (id, _) in &running {
                        let _ = self.host.kill(id, "KILL").await;
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
        self.remove_pod_files(
            &run.uid,
            &run.saved,
            run.containers.keys().cloned().collect(),
        )
        .await;
    }

    /// Removes containers, mounts, cgroups, network and files of a pod (also for orphans).
    pub(crate) async fn remove_pod_files(&self, uid: &str, saved: &SavedPod, names: Vec<String>) {
        let dir = self.pod_dir(uid);
        for name in &names {
            let id = container_id(uid, name);
            let _ = self.host.delete(&id).await;
            let _ = self
                .host
                .unmount(&dir.join(name).join("bundle").join("rootfs"))
                .await;
            self.host
                .remove_cgroup(&format!("/baton/{uid}/{name}"))
                .await;
        }
        self.host.remove_cgroup(&format!("/baton/{uid}")).await;
        let (netns, _) = net_names(uid);
        if let Err(e) = self.host.delete_pod_network(&netns).await {
            tracing::warn!(pod = %saved.name, error = %e, "removing the pod network failed");
        }
        if let Some(ip) = saved.ip {
            self.host.forget_connections(ip).await;
            self.release_ip(ip);
        }
        // Everything is unmounted: the directory can go (never follow into a live mount).
        if !names
            .iter()
            .any(|n| crate::host::is_mountpoint(&dir.join(n).join("bundle").join("rootfs")))
        {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let logs = self
            .opts
            .data_dir
            .join("logs")
            .join(format!("{}_{}_{uid}", saved.namespace, saved.name));
        let _ = std::fs::remove_dir_all(logs);
    }

    /// The kubelet's last word on a gracefully deleted pod: delete it for good.
    async fn finish_deletion(&self, pod: &Pod, uid: &str) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!(pod = %name, "pod deleted after its containers stopped"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "final pod deletion failed"),
        }
    }

    /// Sends the pod's status when it changed.
    async fn report(&self, pod: &Pod, run: &mut PodRun) {
        let status = self.status(pod, run);
        if run.last_status.as_ref() == Some(&status) {
            return;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
        {
            Ok(_) => run.last_status = Some(status),
            Err(e) => tracing::debug!(pod = %name, error = %e, "status update failed"),
        }
    }

    fn status(&self, pod: &Pod, run: &mut PodRun) -> Value {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut statuses = Vec::new();
        let mut all_ready = !spec.containers.is_empty();
        let mut any_running = false;
        let mut all_done = !spec.containers.is_empty();
        let mut any_failed = false;
        let mut never_started = false;
        for c in &spec.containers {
            let Some(r) = run.containers.get(&c.name) else {
                all_ready = false;
                all_done = false;
                never_started = true;
                continue;
            };
            let running = r.running_pid().is_some();
            let ready =
                running && r.readiness.verdict == Some(true) && r.startup.verdict == Some(true);
            all_ready &= ready;
            any_running |= running;
            all_done &= r.done;
            if let State::Terminated(t) = &r.state
                && r.done
                && t.exit_code != 0
            {
                any_failed = true;
            }
            if r.saved.started_at.is_none() && !running {
                never_started = true;
            }
            let state = match &r.state {
                State::Waiting { reason, message } => {
                    let mut w = json!({"reason": reason});
                    if !message.is_empty() {
                        w["message"] = json!(message);
                    }
                    json!({"waiting": w})
                }
                State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
                State::Terminated(t) => json!({"terminated": t.json(&r.saved.id)}),
            };
            let mut s = json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": r.saved.image_id,
                "ready": ready,
                "started": running && r.startup.verdict == Some(true),
                "restartCount": r.saved.restart_count,
                "state": state,
                "lastState": r.last.as_ref().map(|t| json!({"terminated": t.json(&r.saved.id)})).unwrap_or(json!({})),
            });
            if r.saved.started_at.is_some() {
                s["containerID"] = json!(format!("runc://{}", r.saved.id));
            }
            statuses.push(s);
        }
        let phase = if all_done {
            if any_failed { "Failed" } else { "Succeeded" }
        } else if never_started && !any_running {
            "Pending"
        } else {
            "Running"
        };
        let ready = if all_ready { "True" } else { "False" };
        let mut conditions = Vec::new();
        for (t, s) in [
            (
                "PodReadyToStartContainers",
                if run.network_ready { "True" } else { "False" },
            ),
            ("Initialized", "True"),
            ("Ready", ready),
            ("ContainersReady", ready),
            ("PodScheduled", "True"),
        ] {
            let at = match run.transitions.get(t) {
                Some((old, at)) if old == s => at.clone(),
                _ => {
                    let at = now_rfc3339();
                    run.transitions
                        .insert(t.to_string(), (s.to_string(), at.clone()));
                    at
                }
            };
            let mut cond =
                json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": at});
            if s == "False" && (t == "Ready" || t == "ContainersReady") {
                let not_ready: Vec<&str> = spec
                    .containers
                    .iter()
                    .filter(|c| {
                        !statuses
                            .iter()
                            .any(|s| s["name"] == json!(c.name) && s["ready"] == json!(true))
                    })
                    .map(|c| c.name.as_str())
                    .collect();
                cond["reason"] = json!("ContainersNotReady");
                cond["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    not_ready.join(" ")
                ));
            }
            conditions.push(cond);
        }
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.opts.node_ip.to_string(),
            "hostIPs": [{"ip": self.opts.node_ip.to_string()}],
            "startTime": run.saved.start_time,
            "containerStatuses": statuses,
        });
        if let Some(ip) = run.saved.ip.filter(|_| run.network_ready) {
            status["podIP"] = json!(ip.to_string());
            status["podIPs"] = json!([{"ip": ip.to_string()}]);
        }
        status
    }
}

/// The start time of a running container as the status shows it (for tests and adoption).
/// How long a container without a readiness probe may take to accept connections on the TCP
/// ports it declares before it counts as ready anyway (the ports may be informational).
const IMPLICIT_READY_LIMIT: Duration = Duration::from_secs(10);

/// Readiness of a container without a readiness probe. The kubelet calls it ready as soon as
/// it runs, so a Service sends it connections before it listens; Baton waits until every TCP
/// port the container declares accepts a connection, or [`IMPLICIT_READY_LIMIT`] passed.
async fn ports_accept(c: &Container, ip: IpAddr, since: Duration) -> bool {
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
        let connect = tokio::net::TcpStream::connect((ip, port));
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
    true
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(5), Duration::from_secs(160));
        assert_eq!(backoff(6), Duration::from_secs(300));
        assert_eq!(backoff(60), Duration::from_secs(300));
    }

    #[test]
    fn err_image_pull_turns_into_image_pull_backoff() {
        let t0 = Instant::now();
        let err = State::Waiting {
            reason: "ErrImagePull".into(),
            message: "m".into(),
        };
        assert_eq!(
            pull_backoff_state(&err, "img:v1", t0, "not found", t0),
            None
        );
        let later = t0 + PULL_ERROR_SHOWN;
        assert_eq!(
            pull_backoff_state(&err, "img:v1", t0, "not found", later),
            Some(State::Waiting {
                reason: "ImagePullBackOff".into(),
                message: "Back-off pulling image \"img:v1\": not found".into(),
            })
        );
        // Only a pull error moves on (ErrImageNeverPull stays, as with the kubelet).
        let never = State::Waiting {
            reason: "ErrImageNeverPull".into(),
            message: "m".into(),
        };
        assert_eq!(pull_backoff_state(&never, "img:v1", t0, "m", later), None);
    }

    #[test]
    fn names_fit_the_kernel_limits() {
        let (ns, veth) = net_names("0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11");
        assert_eq!(ns, "baton-0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11");
        assert!(veth.len() <= 15, "{veth}");
    }
}
