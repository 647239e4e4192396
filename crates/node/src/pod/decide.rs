//! The pure half of the pod worker, the kubelet's `computePodActions`: what the worker knows
//! of each container ([`ContainerRun`]), how an observation changes it (an exit, a start, a
//! failed pull or start) by the container's restart policy and the kubelet's back-off, and —
//! given the spec and that knowledge at an instant — what to do next ([`compute_pod_actions`])
//! and when to look again ([`next_wake`]). Init containers run one at a time in order, each to
//! its successful end, before the app containers; a sidecar (an init container with
//! `restartPolicy: Always`) starts in its turn, must be started (startup probe) before the
//! next one, runs alongside the app containers and stops after them, in reverse order.
//! Nothing here touches the machine or the API; the worker in [`super`] observes, calls these,
//! and carries out what they return.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::saved::{SavedContainer, SavedPod};
use crate::host::Exit;
use crate::probe::ProbeState;

/// The kubelet's restart back-off: 10 s doubling up to 5 min (the first restart is at once).
pub(crate) fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let secs = 10u64.saturating_mul(1 << (restarts - 1).min(5));
    Duration::from_secs(secs.min(300))
}

/// How long ErrImagePull shows before the status says ImagePullBackOff (the kubelet shows it
/// on its next sync after the failure).
pub(crate) const PULL_ERROR_SHOWN: Duration = Duration::from_secs(1);

/// How soon a container whose configuration was refused is tried again (the kubelet's pod
/// worker back-off after a failed sync).
pub(crate) const CONFIG_RETRY: Duration = Duration::from_secs(10);

/// How long a SIGTERM sent for a failed liveness or startup probe has before SIGKILL.
pub(crate) const PROBE_KILL_GRACE: Duration = Duration::from_secs(2);

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The spec's policy; `Always` when unset (or unknown: validation rejects those).
    pub fn of(spec: &PodSpec) -> Self {
        match spec.restart_policy.as_deref() {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// The policy container `name` ends by: the pod's for an app container; for an init
    /// container `OnFailure` (`Never` in a `Never` pod: it runs to a successful end once);
    /// `Always` for a sidecar, until the pod's work is over (`finishing`).
    pub fn for_container(spec: &PodSpec, name: &str, finishing: bool) -> Self {
        let pod = RestartPolicy::of(spec);
        match role(spec, name) {
            Role::App => pod,
            Role::Init if pod == RestartPolicy::Never => RestartPolicy::Never,
            Role::Init => RestartPolicy::OnFailure,
            Role::Sidecar if finishing => RestartPolicy::Never,
            Role::Sidecar => RestartPolicy::Always,
        }
    }

    /// Whether a container that ended with `exit_code` starts again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// The part a container plays in its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// An init container: runs to its successful end before the next one.
    Init,
    /// An init container with `restartPolicy: Always` (Kubernetes 1.29's sidecars).
    Sidecar,
    /// One of `containers`.
    App,
}

/// Whether `c`, an init container, is a sidecar.
pub(crate) fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The init containers of the spec, in order.
pub(crate) fn init_containers(spec: &PodSpec) -> &[Container] {
    spec.init_containers.as_deref().unwrap_or_default()
}

/// Every container of the spec: the init containers in order, then the app containers.
pub(crate) fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    init_containers(spec).iter().chain(spec.containers.iter())
}

/// The container named `name` (names are unique across init and app containers).
pub(crate) fn find_container<'a>(spec: &'a PodSpec, name: &str) -> Option<&'a Container> {
    all_containers(spec).find(|c| c.name == name)
}

/// The part container `name` plays (an unknown name counts as an app container).
pub(crate) fn role(spec: &PodSpec, name: &str) -> Role {
    match init_containers(spec).iter().find(|c| c.name == name) {
        Some(c) if is_sidecar(c) => Role::Sidecar,
        Some(_) => Role::Init,
        None => Role::App,
    }
}

/// A container's state as the status shows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum State {
    Waiting { reason: String, message: String },
    Running { started_at: String },
    Terminated(Terminated),
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub started_at: String,
    pub finished_at: String,
}

impl Terminated {
    pub fn json(&self, id: &str) -> Value {
        let mut v = json!({"exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at, "containerID": format!("runc://{id}")});
        if !self.message.is_empty() {
            v["message"] = json!(self.message);
        }
        v
    }
}

/// The ImagePullBackOff state that follows a failed pull of `image` (`message`, at `failed`),
/// once the ErrImagePull has shown long enough; None while it should still show.
pub(crate) fn pull_backoff_state(
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

/// What the worker knows of one container.
#[derive(Debug)]
pub(crate) struct ContainerRun {
    pub saved: SavedContainer,
    pub state: State,
    pub last: Option<Terminated>,
    /// When the container may be (re)started.
    pub start_after: Option<Instant>,
    /// When it started, for probe timing.
    pub started: Option<Instant>,
    /// Failed pulls in a row, for ImagePullBackOff.
    pub pull_failures: u32,
    /// When the last pull failed and why, until the status moves on to ImagePullBackOff.
    pub pull_error: Option<(Instant, String)>,
    /// Finished for good (restartPolicy says no more).
    pub done: bool,
    pub liveness: ProbeState,
    pub readiness: ProbeState,
    pub startup: ProbeState,
    /// A kill is under way (liveness failure): SIGKILL after this instant.
    pub kill_at: Option<Instant>,
    /// A sidecar being stopped because the pod's work is over (SIGTERM sent).
    pub stopping: bool,
    /// Why its postStart hook failed, shown (`PostStartHookError`) until it starts again.
    pub hook_error: Option<String>,
}

impl ContainerRun {
    pub fn new(saved: SavedContainer) -> Self {
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
            stopping: false,
            hook_error: None,
        }
    }

    /// Whether it ran to its end with exit code 0 and will not run again.
    pub fn succeeded(&self) -> bool {
        self.done && matches!(&self.state, State::Terminated(t) if t.exit_code == 0)
    }

    /// Whether it failed and will not run again.
    pub fn failed(&self) -> bool {
        self.done && matches!(&self.state, State::Terminated(t) if t.exit_code != 0)
    }

    /// Whether it runs and its startup probe (if any) succeeded: the status's `started`.
    pub fn is_started(&self) -> bool {
        self.running_pid().is_some() && self.startup.verdict == Some(true)
    }

    pub fn running_pid(&self) -> Option<i32> {
        matches!(self.state, State::Running { .. })
            .then_some(self.saved.pid)
            .flatten()
    }

    /// Whether the container just went into CrashLoopBackOff (its BackOff event is due).
    pub fn in_crash_loop(&self) -> bool {
        matches!(&self.state, State::Waiting { reason, .. } if reason == "CrashLoopBackOff")
    }

    /// The number of the run a start now begins (its log file's name and restartCount).
    pub fn next_run(&self) -> u32 {
        let restarting = self.last.is_some() || self.saved.started_at.is_some();
        self.saved.restart_count + u32::from(restarting)
    }

    /// The process ended with `exit` (`oom`: the OOM killer did it), observed at `now`
    /// (`at` as the status shows it); `message` is its termination message.
    pub fn exited(
        &mut self,
        exit: Exit,
        oom: bool,
        message: String,
        policy: RestartPolicy,
        now: Instant,
        at: &str,
    ) {
        let started_at = match &self.state {
            State::Running { started_at } => started_at.clone(),
            _ => String::new(),
        };
        let code = exit.code();
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
            message,
            started_at,
            finished_at: at.to_string(),
        };
        self.saved.pid = None;
        self.kill_at = None;
        self.stopping = false;
        self.started = None;
        self.readiness = ProbeState::default();
        self.liveness = ProbeState::default();
        self.startup = ProbeState::default();
        self.terminated(t, policy, now);
        // The kubelet shows why a postStart hook killed it until the next start.
        if let Some(message) = self.hook_error.take()
            && matches!(self.state, State::Terminated(_))
            && !self.done
        {
            self.state = State::Waiting {
                reason: "PostStartHookError".into(),
                message,
            };
        }
    }

    /// runc started run number `n` as `pid` from the image `image_id`.
    pub fn started(&mut self, pid: i32, n: u32, image_id: &str, now: Instant, at: &str) {
        self.saved.pid = Some(pid);
        self.saved.started_at = Some(at.to_string());
        self.saved.restart_count = n;
        self.saved.image_id = image_id.to_string();
        self.state = State::Running {
            started_at: at.to_string(),
        };
        self.started = Some(now);
        self.start_after = None;
    }

    /// Run number `n` could not start (`message`: runc's or the bundle's reason).
    pub fn start_failed(
        &mut self,
        n: u32,
        message: String,
        policy: RestartPolicy,
        now: Instant,
        at: &str,
    ) {
        self.saved.restart_count = n;
        self.saved.started_at = Some(at.to_string());
        let t = Terminated {
            exit_code: 128,
            reason: "StartError".into(),
            message,
            started_at: "1970-01-01T00:00:00Z".into(),
            finished_at: at.to_string(),
        };
        self.terminated(t, policy, now);
    }

    /// The image could not be had (`reason`: ErrImagePull, ErrImageNeverPull, …). Each
    /// failure shows its reason, then ImagePullBackOff while backing off.
    pub fn pull_failed(&mut self, reason: String, message: String, now: Instant) {
        self.pull_failures += 1;
        let delay = backoff(self.pull_failures);
        self.start_after = Some(now + delay.max(Duration::from_secs(1)));
        if reason == "ErrImagePull" {
            self.pull_error = Some((now, message.clone()));
        }
        self.state = State::Waiting { reason, message };
    }

    /// The container's configuration cannot be run (`CreateContainerConfigError`): it waits,
    /// saying why, and is tried again after [`CONFIG_RETRY`] (the spec or a ConfigMap may
    /// change meanwhile).
    pub fn config_failed(&mut self, message: String, now: Instant) {
        self.start_after = Some(now + CONFIG_RETRY);
        self.state = State::Waiting {
            reason: "CreateContainerConfigError".into(),
            message,
        };
    }

    /// The image is there.
    pub fn pulled(&mut self) {
        self.pull_failures = 0;
        self.pull_error = None;
    }

    /// A liveness or startup probe (or the postStart hook) failed: SIGTERM went out, SIGKILL
    /// follows if needed.
    pub fn killing_for_probe(&mut self, now: Instant) {
        self.kill_at = Some(now + PROBE_KILL_GRACE);
        self.liveness = ProbeState::default();
        self.startup.verdict = None;
    }

    /// A sidecar got SIGTERM because the pod's work is over; SIGKILL at `kill_at`.
    pub fn stopping(&mut self, kill_at: Instant) {
        self.kill_at = Some(kill_at);
        self.stopping = true;
    }

    /// What follows a termination: a restart (after the back-off) or the end.
    fn terminated(&mut self, t: Terminated, policy: RestartPolicy, now: Instant) {
        if policy.restarts(t.exit_code) {
            let delay = backoff(self.saved.restart_count);
            self.start_after = Some(now + delay);
            self.state = if delay.is_zero() {
                State::Terminated(t.clone())
            } else {
                State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!("back-off {}s restarting failed container", delay.as_secs()),
                }
            };
            self.last = Some(t);
        } else {
            self.done = true;
            self.state = State::Terminated(t);
        }
    }
}

/// The worker's view of its pod.
pub(crate) struct PodRun {
    pub uid: String,
    pub dir: PathBuf,
    pub saved: SavedPod,
    pub containers: BTreeMap<String, ContainerRun>,
    /// Condition type → (status, lastTransitionTime).
    pub transitions: BTreeMap<String, (String, String)>,
    pub last_status: Option<Value>,
    pub network_ready: bool,
    /// The pod's volumes: set up once, kept up to date ([`crate::volume`]).
    pub volumes: crate::volume::VolumeSync,
    /// When the pod's local storage was last measured ([`super::eviction`]).
    pub storage_measured: Option<Instant>,
}

pub(crate) fn container_id(uid: &str, name: &str) -> String {
    format!("{uid}-{name}")
}

impl PodRun {
    /// Starts tracking every container of the spec not tracked yet.
    pub fn track(&mut self, spec: &PodSpec) {
        for c in all_containers(spec) {
            let id = container_id(&self.uid, &c.name);
            let r = self
                .containers
                .entry(c.name.clone())
                .or_insert_with(|| ContainerRun::new(SavedContainer::default()));
            if r.saved.id.is_empty() {
                r.saved.id = id;
            }
        }
    }

    /// The pod network could not be set up: every container waits, saying why.
    pub fn network_failed(&mut self, spec: &PodSpec, message: &str) {
        self.track(spec);
        for c in all_containers(spec) {
            if let Some(r) = self.containers.get_mut(&c.name) {
                r.state = State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: format!("failed to set up the pod network: {message}"),
                };
            }
        }
    }

    /// The containers' saved records, for state.json: with the last termination and, for a
    /// container that will not run again, its end, so that a restarted agent neither starts
    /// it again nor forgets how it ended.
    pub fn to_saved(&self) -> SavedPod {
        let mut saved = self.saved.clone();
        saved.containers = self
            .containers
            .iter()
            .map(|(k, c)| {
                let mut s = c.saved.clone();
                s.last = c.last.clone();
                s.finished = match &c.state {
                    State::Terminated(t) if c.done => Some(t.clone()),
                    _ => None,
                };
                (k.clone(), s)
            })
            .collect();
        saved
    }

    /// The containers that run, as (id, name, pid).
    pub fn running(&self) -> Vec<(String, String, i32)> {
        self.containers
            .iter()
            .filter_map(|(name, c)| {
                c.running_pid()
                    .map(|p| (c.saved.id.clone(), name.clone(), p))
            })
            .collect()
    }

    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.saved.ip
    }

    /// Whether the pod is initialized (the `Initialized` condition): every init container
    /// ended successfully and every sidecar started — or an app container has run already
    /// (init containers do not run again once they have, as with the kubelet).
    pub fn initialized(&self, spec: &PodSpec) -> bool {
        let app_started = spec.containers.iter().any(|c| {
            self.containers
                .get(&c.name)
                .is_some_and(|r| r.saved.started_at.is_some())
        });
        app_started || self.incomplete_init(spec).is_empty()
    }

    /// The init containers that keep the pod from being initialized, in order.
    pub fn incomplete_init<'a>(&self, spec: &'a PodSpec) -> Vec<&'a str> {
        init_containers(spec)
            .iter()
            .filter(|c| {
                let r = self.containers.get(&c.name);
                if is_sidecar(c) {
                    !r.is_some_and(ContainerRun::is_started)
                } else {
                    !r.is_some_and(ContainerRun::succeeded)
                }
            })
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Whether an init container failed for good (a `Never` pod): the pod failed.
    pub fn init_failed(&self, spec: &PodSpec) -> bool {
        init_containers(spec)
            .iter()
            .filter(|c| !is_sidecar(c))
            .any(|c| self.containers.get(&c.name).is_some_and(|r| r.failed()))
    }

    /// The policy container `name` ends by ([`RestartPolicy::for_container`]); none of an
    /// evicted pod's containers runs again.
    pub fn policy(&self, spec: &PodSpec, name: &str, finishing: bool) -> RestartPolicy {
        if self.saved.evicted.is_some() {
            return RestartPolicy::Never;
        }
        RestartPolicy::for_container(spec, name, finishing)
    }

    /// Whether the pod's work is over: it was evicted, its initialization failed, or every
    /// app container ended and will not run again. Its sidecars then stop.
    pub fn finishing(&self, spec: &PodSpec) -> bool {
        self.saved.evicted.is_some()
            || self.init_failed(spec)
            || (!spec.containers.is_empty()
                && spec
                    .containers
                    .iter()
                    .all(|c| self.containers.get(&c.name).is_some_and(|r| r.done)))
    }
}

/// What the worker does next for its pod (containers by name, in spec order).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PodActions {
    /// Pull the image and start: a first start, or a restart whose back-off is over.
    pub start: Vec<String>,
    /// SIGKILL: the SIGTERM of a failed probe (or of a stop) did not end it in time.
    pub kill: Vec<String>,
    /// ErrImagePull showed long enough: show this ImagePullBackOff state.
    pub pull_backoff: Vec<(String, State)>,
    /// Stop this sidecar (preStop, SIGTERM, SIGKILL after the grace period): the pod's work is
    /// over and every sidecar after it has stopped.
    pub stop: Vec<String>,
}

/// Given the spec and what is known of the containers at `now`, what to do next. Exits
/// observed in this pass are already recorded (see [`ContainerRun::exited`]).
///
/// Until the pod is initialized only the init containers move, one at a time: the first that
/// has not ended successfully (or, for a sidecar, has not started) is started when due and
/// everything after it waits. Then sidecars and app containers start and restart by their
/// policies. Once the pod's work is over the sidecars stop, the last one first.
pub(crate) fn compute_pod_actions(spec: &PodSpec, run: &PodRun, now: Instant) -> PodActions {
    let mut actions = PodActions::default();
    for c in all_containers(spec) {
        if let Some(r) = run.containers.get(&c.name)
            && r.running_pid().is_some()
            && r.kill_at.is_some_and(|at| now >= at)
        {
            actions.kill.push(c.name.clone());
        }
    }
    if run.saved.evicted.is_some() {
        // The eviction stops every container at once (see `Agent::evict`).
        return actions;
    }
    if run.finishing(spec) {
        // The last sidecar that still runs stops first; the ones before it wait for it.
        let last = init_containers(spec)
            .iter()
            .rev()
            .filter(|c| is_sidecar(c))
            .find(|c| {
                run.containers
                    .get(&c.name)
                    .is_some_and(|r| r.running_pid().is_some())
            });
        if let Some(c) = last
            && run.containers.get(&c.name).is_some_and(|r| !r.stopping)
        {
            actions.stop.push(c.name.clone());
        }
        return actions;
    }
    let mut consider = |c: &Container, r: &ContainerRun| {
        let due = r.start_after.is_none_or(|t| now >= t);
        if !r.done && r.running_pid().is_none() && due {
            actions.start.push(c.name.clone());
        } else if let Some((failed, message)) = &r.pull_error
            && let Some(next) = pull_backoff_state(
                &r.state,
                c.image.as_deref().unwrap_or_default(),
                *failed,
                message,
                now,
            )
        {
            actions.pull_backoff.push((c.name.clone(), next));
        }
    };
    if !run.initialized(spec) {
        for c in init_containers(spec) {
            let Some(r) = run.containers.get(&c.name) else {
                break;
            };
            let complete = if is_sidecar(c) {
                r.is_started()
            } else {
                r.succeeded()
            };
            if complete {
                continue;
            }
            consider(c, r);
            break;
        }
        return actions;
    }
    for c in all_containers(spec) {
        if role(spec, &c.name) == Role::Init {
            continue;
        }
        if let Some(r) = run.containers.get(&c.name) {
            consider(c, r);
        }
    }
    actions
}

/// The order a deleted pod's running containers stop in: all but the sidecars together,
/// then each sidecar, the last one first (names; a group may be empty of running ones by
/// the time it stops).
pub(crate) fn stop_order(spec: &PodSpec, run: &PodRun) -> Vec<Vec<String>> {
    let running: Vec<String> = run.running().into_iter().map(|(_, n, _)| n).collect();
    let sidecars: Vec<&str> = init_containers(spec)
        .iter()
        .filter(|c| is_sidecar(c))
        .map(|c| c.name.as_str())
        .collect();
    let mut groups = vec![
        running
            .iter()
            .filter(|n| !sidecars.contains(&n.as_str()))
            .cloned()
            .collect::<Vec<_>>(),
    ];
    for s in sidecars.iter().rev() {
        if running.iter().any(|n| n == s) {
            groups.push(vec![s.to_string()]);
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// When the worker looks at the pod again: soon while containers start or wait for
/// readiness, at each probe's period, when a back-off ends, and at least every 500 ms (exits
/// are noticed by looking).
pub(crate) fn next_wake(spec: &PodSpec, run: &PodRun, now: Instant) -> Duration {
    let mut wake = Duration::from_millis(500);
    for c in all_containers(spec) {
        let Some(r) = run.containers.get(&c.name) else {
            continue;
        };
        if r.running_pid().is_some() {
            let young = r
                .started
                .is_some_and(|s| now.saturating_duration_since(s) < Duration::from_secs(5));
            if young || r.readiness.verdict.is_none() {
                wake = wake.min(Duration::from_millis(100));
            }
            for p in probes(c) {
                let period = p.period_seconds.unwrap_or(10).max(1) as u64;
                wake = wake.min(Duration::from_secs(period));
            }
        } else if let Some(t) = r.start_after {
            wake = wake.min(
                t.saturating_duration_since(now)
                    .max(Duration::from_millis(50)),
            );
        }
    }
    wake
}

fn probes(c: &Container) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Probe> {
    [&c.readiness_probe, &c.liveness_probe, &c.startup_probe]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: Option<&str>, names: &[&str]) -> PodSpec {
        PodSpec {
            restart_policy: policy.map(str::to_string),
            containers: names
                .iter()
                .map(|n| Container {
                    name: n.to_string(),
                    image: Some("img:v1".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn pod_run(spec: &PodSpec) -> PodRun {
        let mut run = PodRun {
            uid: "0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11".into(),
            dir: PathBuf::from("/pods/x"),
            saved: SavedPod::default(),
            containers: BTreeMap::new(),
            transitions: BTreeMap::new(),
            last_status: None,
            network_ready: true,
            volumes: Default::default(),
            storage_measured: None,
        };
        run.track(spec);
        run
    }

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
    fn restart_policy_decides_by_exit_code() {
        let table = [
            (None, 0, true),
            (None, 1, true),
            (Some("Always"), 0, true),
            (Some("OnFailure"), 0, false),
            (Some("OnFailure"), 137, true),
            (Some("Never"), 0, false),
            (Some("Never"), 1, false),
        ];
        for (policy, code, restarts) in table {
            let p = RestartPolicy::of(&spec(policy, &[]));
            assert_eq!(p.restarts(code), restarts, "{policy:?} exit {code}");
        }
    }

    #[test]
    fn a_new_pod_starts_every_container() {
        let s = spec(None, &["a", "b"]);
        let run = pod_run(&s);
        let actions = compute_pod_actions(&s, &run, Instant::now());
        assert_eq!(actions.start, vec!["a", "b"]);
        assert!(actions.kill.is_empty());
    }

    #[test]
    fn exits_restart_after_the_backoff() {
        let s = spec(None, &["a"]);
        let mut run = pod_run(&s);
        let t0 = Instant::now();
        let policy = RestartPolicy::of(&s);
        let r = run.containers.get_mut("a").expect("tracked");
        r.started(100, 0, "img@sha256:1", t0, "t0");
        assert!(compute_pod_actions(&s, &run, t0).start.is_empty());
        // The first exit restarts at once, showing Terminated meanwhile.
        let r = run.containers.get_mut("a").expect("tracked");
        r.exited(Exit::Code(1), false, String::new(), policy, t0, "t1");
        assert!(
            matches!(&r.state, State::Terminated(t) if t.exit_code == 1 && t.reason == "Error")
        );
        assert_eq!(compute_pod_actions(&s, &run, t0).start, vec!["a"]);
        // The second exit waits 10 s in CrashLoopBackOff.
        let r = run.containers.get_mut("a").expect("tracked");
        let n = r.next_run();
        assert_eq!(n, 1);
        r.started(101, n, "img@sha256:1", t0, "t2");
        r.exited(Exit::Signal(9), false, String::new(), policy, t0, "t3");
        assert!(r.in_crash_loop());
        assert_eq!(r.last.as_ref().map(|t| t.exit_code), Some(137));
        let before = t0 + Duration::from_millis(9_999);
        assert!(compute_pod_actions(&s, &run, before).start.is_empty());
        assert_eq!(next_wake(&s, &run, before), Duration::from_millis(50));
        assert_eq!(
            compute_pod_actions(&s, &run, t0 + Duration::from_secs(10)).start,
            vec!["a"]
        );
    }

    #[test]
    fn completed_containers_stay_done_by_policy() {
        for (policy, code, done) in [
            ("Never", 0, true),
            ("Never", 2, true),
            ("OnFailure", 0, true),
            ("OnFailure", 2, false),
            ("Always", 0, false),
        ] {
            let s = spec(Some(policy), &["a"]);
            let mut run = pod_run(&s);
            let t0 = Instant::now();
            let r = run.containers.get_mut("a").expect("tracked");
            r.started(100, 0, "i", t0, "t0");
            r.exited(
                Exit::Code(code),
                false,
                String::new(),
                RestartPolicy::of(&s),
                t0,
                "t1",
            );
            assert_eq!(r.done, done, "{policy} exit {code}");
            let later = t0 + Duration::from_secs(600);
            let starts = compute_pod_actions(&s, &run, later).start;
            assert_eq!(starts.is_empty(), done, "{policy} exit {code}");
        }
    }

    #[test]
    fn oom_kills_are_named() {
        let s = spec(Some("Never"), &["a"]);
        let mut run = pod_run(&s);
        let r = run.containers.get_mut("a").expect("tracked");
        r.started(100, 0, "i", Instant::now(), "t0");
        r.exited(
            Exit::Signal(9),
            true,
            String::new(),
            RestartPolicy::Never,
            Instant::now(),
            "t1",
        );
        assert!(
            matches!(&r.state, State::Terminated(t) if t.reason == "OOMKilled" && t.exit_code == 137)
        );
    }

    #[test]
    fn a_probe_kill_escalates_after_its_grace() {
        let s = spec(None, &["a"]);
        let mut run = pod_run(&s);
        let t0 = Instant::now();
        let r = run.containers.get_mut("a").expect("tracked");
        r.started(100, 0, "i", t0, "t0");
        r.killing_for_probe(t0);
        assert!(compute_pod_actions(&s, &run, t0).kill.is_empty());
        let actions = compute_pod_actions(&s, &run, t0 + PROBE_KILL_GRACE);
        assert_eq!(actions.kill, vec!["a"]);
        assert!(actions.start.is_empty());
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
    fn failed_pulls_back_off_and_show_pull_backoff() {
        let s = spec(None, &["a"]);
        let mut run = pod_run(&s);
        let t0 = Instant::now();
        let r = run.containers.get_mut("a").expect("tracked");
        r.pull_failed("ErrImagePull".into(), "not found".into(), t0);
        // First failure: retry after 10 s; ImagePullBackOff after a second.
        assert!(compute_pod_actions(&s, &run, t0).pull_backoff.is_empty());
        let a = compute_pod_actions(&s, &run, t0 + PULL_ERROR_SHOWN);
        assert_eq!(a.pull_backoff.len(), 1);
        assert!(a.start.is_empty());
        assert_eq!(
            compute_pod_actions(&s, &run, t0 + Duration::from_secs(10)).start,
            vec!["a"]
        );
    }
}
