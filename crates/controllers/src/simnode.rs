//! Simulated nodes, Baton's answer to kwok: `--simulated-nodes N` registers N Ready Nodes
//! that keep their Leases fresh, and runs a container-less lifecycle for the pods bound to
//! them: Pending → Running → Ready after a delay, with pod IPs from the node's pod CIDR (10.244.<index+1>.0/24: 10.244.0.0/24 is
//! the real node's).
//!
//! Annotations on a pod (usually set on the template) steer its simulated life:
//! - `sim.baton.dev/ready-after`: readiness delay (`250ms`, `2s`, `1m`, or bare milliseconds);
//! - `sim.baton.dev/never-ready: "true"`: runs but never becomes Ready;
//! - `sim.baton.dev/crash-loop`: the container crashes that many times, one second apart,
//!   before it runs (`always` or `-1`: forever, in CrashLoopBackOff);
//! - `sim.baton.dev/exit-after` (+ `sim.baton.dev/exit-code`, default 1): the pod ends,
//!   Failed (or Succeeded for code 0), that long after it started;
//! - `sim.baton.dev/cpu`, `sim.baton.dev/memory` (quantities: `250m`, `64Mi`): the pod's CPU
//!   and memory use as the metrics API (`metrics.k8s.io`, what `kubectl top` and the
//!   HorizontalPodAutoscaler read) reports it while the pod is Running — the whole pod's use
//!   on its first container. Set them on the pods themselves (`kubectl annotate pods -l …
//!   --overwrite sim.baton.dev/cpu=400m`) to change the load at once; a Running pod with
//!   neither has no metrics (as one not measured yet). The API server's `metricsapi.rs` reads
//!   them for pods bound to a node annotated `sim.baton.dev/simulated: "true"`.
//!
//! A pod deleted gracefully (the API server keeps it with a deletionTimestamp) is finished
//! by its node at once, with gracePeriodSeconds=0, as a kubelet would after SIGTERM.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::{Client, ResourceExt};

use crate::error::{self, Error};
use crate::informer::Informer;

/// Annotation prefix for the simulation knobs.
pub const PREFIX: &str = "sim.baton.dev/";

/// How the simulated nodes look and behave.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// How many nodes to register (0: none).
    pub nodes: u32,
    /// Node names are this prefix plus the index.
    pub name_prefix: String,
    /// Capacity of each node.
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Default delay from Running to Ready.
    pub ready_delay: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 0,
            name_prefix: "sim-node-".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
            ready_delay: Duration::ZERO,
        }
    }
}

impl SimOptions {
    fn node_names(&self) -> Vec<String> {
        (0..self.nodes)
            .map(|i| format!("{}{i}", self.name_prefix))
            .collect()
    }
}

/// Parses `250ms`, `2s`, `1m`, `1h` or bare milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: f64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3600e3,
        _ => return None,
    };
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_micros((ms * 1e3) as u64))
}

fn node_object(opts: &SimOptions, index: usize, name: &str) -> Node {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        ("type", "simulated"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                format!("{PREFIX}simulated"),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(format!("10.244.{}.0/24", index + 1)),
            pod_cidrs: Some(vec![format!("10.244.{}.0/24", index + 1)]),
            ..Default::default()
        }),
        status: Some(node_status(opts, index, name)),
    }
}

fn node_status(opts: &SimOptions, index: usize, name: &str) -> NodeStatus {
    let now = Time(baton_api::clock::now());
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", opts.cpu.clone()),
        ("memory", opts.memory.clone()),
        ("pods", opts.pods.to_string()),
        ("ephemeral-storage", "100Gi".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v)))
    .collect();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            cond(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: host_ip(index),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.into(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: format!("sim-{index}"),
            container_runtime_version: "sim://0.1.0".into(),
            kernel_version: "simulated".into(),
            kube_proxy_version: String::new(),
            kubelet_version: "v1.33.0-baton".into(),
            machine_id: format!("sim-{index}"),
            operating_system: "linux".into(),
            os_image: "Baton simulated node".into(),
            system_uuid: format!("sim-{index}"),
            ..Default::default()
        }),
        phase: None,
        ..Default::default()
    }
}

fn host_ip(index: usize) -> String {
    format!("10.240.{}.{}", index / 250, index % 250 + 1)
}

/// Registers the nodes (creating or refreshing them) and their Leases.
pub async fn register(client: &Client, opts: &SimOptions) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    for (i, name) in opts.node_names().iter().enumerate() {
        let node = node_object(opts, i, name);
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(e) if error::is_conflict(&e) => {}
            Err(e) => return Err(Error::api(format!("registering node {name}"))(e)),
        }
        // Creation may drop status, as it does for kubelets: write it through the subresource.
        let status = serde_json::json!({ "status": node_status(opts, i, name) });
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(Error::api(format!("setting status of node {name}")))?;
        renew_lease(client, name).await?;
    }
    tracing::info!(nodes = opts.nodes, "simulated nodes registered");
    Ok(())
}

async fn renew_lease(client: &Client, node: &str) -> Result<(), Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = MicroTime(baton_api::clock::now());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some("kube-node-lease".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_string()),
            lease_duration_seconds: Some(40),
            renew_time: Some(now),
            ..Default::default()
        }),
    };
    let patch = serde_json::json!({"spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": lease.spec.as_ref().and_then(|s| s.renew_time.clone())}});
    match leases
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => leases
            .create(&PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(Error::api(format!("creating lease {node}"))),
        Err(e) => Err(Error::api(format!("renewing lease {node}"))(e)),
    }
}

/// Renews every node's Lease each 10 s and its Ready heartbeat each minute, as kubelets do.
pub async fn heartbeat(client: Client, opts: SimOptions) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        tick += 1;
        for (i, name) in opts.node_names().iter().enumerate() {
            if let Err(e) = renew_lease(&client, name).await {
                tracing::warn!(node = %name, error = %e, "lease renewal failed");
            }
            if tick.is_multiple_of(6) {
                let status = serde_json::json!({ "status": node_status(&opts, i, name) });
                if let Err(e) = nodes
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                {
                    tracing::warn!(node = %name, error = %e, "node heartbeat failed");
                }
            }
        }
    }
}

struct Ctx {
    client: Client,
    opts: SimOptions,
    /// Node name → its index (for the pod CIDR and host IP).
    nodes: HashMap<String, usize>,
    /// Node name → last pod IP host part handed out.
    next_ip: Mutex<HashMap<String, u32>>,
    /// Pod UID → when it started, to the nanosecond. The status' `startTime` is stored to the
    /// second (as Kubernetes stores it): timers measured from it (`exit-after`,
    /// `ready-after`) would fire up to a second early.
    started: Mutex<HashMap<String, Timestamp>>,
}

/// Runs the pod lifecycle for pods bound to the simulated nodes, fed by the shared pod cache.
pub async fn run(client: Client, opts: SimOptions, pods: Informer<Pod>) {
    if pods.synced().await.is_err() {
        return;
    }
    let ctx = Arc::new(Ctx {
        nodes: opts
            .node_names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect(),
        next_ip: Mutex::new(HashMap::new()),
        started: Mutex::new(HashMap::new()),
        client,
        opts,
    });
    Controller::for_shared_stream(pods.subscribe(), pods.store())
        .run(reconcile, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// What the annotations ask for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knobs {
    pub ready_after: Option<Duration>,
    pub never_ready: bool,
    /// `Some(None)`: crash forever.
    pub crash_loop: Option<Option<u32>>,
    pub exit_after: Option<Duration>,
    pub exit_code: i32,
}

impl Knobs {
    /// Reads the `sim.baton.dev/` annotations; malformed values are ignored.
    pub fn from_annotations(a: &BTreeMap<String, String>) -> Knobs {
        let get = |k: &str| a.get(&format!("{PREFIX}{k}")).map(String::as_str);
        Knobs {
            ready_after: get("ready-after").and_then(parse_duration),
            never_ready: get("never-ready") == Some("true"),
            crash_loop: get("crash-loop").and_then(|v| match v {
                "always" | "-1" | "true" => Some(None),
                n => n.parse().ok().map(Some),
            }),
            exit_after: get("exit-after").and_then(parse_duration),
            exit_code: get("exit-code").and_then(|v| v.parse().ok()).unwrap_or(1),
        }
    }
}

fn since(start: Timestamp, d: Duration) -> Timestamp {
    start + SignedDuration::from_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(Action::await_change());
    };
    let Some(&node_index) = ctx.nodes.get(&node) else {
        return Ok(Action::await_change());
    };
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let finished = matches!(old.phase.as_deref(), Some("Succeeded" | "Failed"));
    if pod.metadata.deletion_timestamp.is_some() || finished {
        ctx.forget_start(&uid);
    }
    if pod.metadata.deletion_timestamp.is_some() {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        return match api.delete(&name, &dp).await {
            Ok(_) => Ok(Action::await_change()),
            Err(e) if error::is_not_found(&e) || error::is_conflict(&e) => {
                Ok(Action::await_change())
            }
            Err(e) => Err(Error::api(format!("finishing deletion of pod {ns}/{name}"))(e)),
        };
    }
    if finished {
        return Ok(Action::await_change());
    }
    let knobs = Knobs::from_annotations(pod.annotations());
    let now = baton_api::clock::now();
    let started = ctx.start(&uid, old.start_time.as_ref().map(|t| t.0), now);
    let pod_ip = match old.pod_ip.clone().filter(|ip| !ip.is_empty()) {
        Some(ip) => ip,
        None => ctx.allocate_ip(&node, node_index),
    };
    let (status, next) = simulate(
        &pod,
        &old,
        &knobs,
        ctx.opts.ready_delay,
        started,
        now,
        &pod_ip,
        &host_ip(node_index),
    );
    if !same_status(&old, &status) {
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::api(format!("updating status of pod {ns}/{name}"))(e)),
        }
    }
    Ok(match next {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

impl Ctx {
    /// When the pod started: remembered from its first status, else the stored `startTime`
    /// (after a restart), else now.
    fn start(&self, uid: &str, stored: Option<Timestamp>, now: Timestamp) -> Timestamp {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        *started
            .entry(uid.to_string())
            .or_insert_with(|| stored.unwrap_or(now))
    }

    fn forget_start(&self, uid: &str) {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        started.remove(uid);
    }

    fn allocate_ip(&self, node: &str, node_index: usize) -> String {
        let mut next = self.next_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = next.entry(node.to_string()).or_insert(1);
        *n = *n % 253 + 1;
        format!("10.244.{}.{}", node_index + 1, *n + 1)
    }
}

fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
    a.phase == b.phase
        && a.pod_ip == b.pod_ip
        && a.conditions == b.conditions
        && a.container_statuses == b.container_statuses
}

/// The status a pod has at `now`, and when to look again. Pure: the pod's times come from
/// its current status so repeated calls agree.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    pod: &Pod,
    old: &PodStatus,
    knobs: &Knobs,
    default_delay: Duration,
    started: Timestamp,
    now: Timestamp,
    pod_ip: &str,
    host_ip: &str,
) -> (PodStatus, Option<Duration>) {
    let mut next: Option<Duration> = None;
    let mut wake = |at: Timestamp| {
        let d = at.duration_since(now);
        if !d.is_negative() {
            let d = Duration::from_millis(d.as_millis() as u64 + 1);
            next = Some(next.map_or(d, |n: Duration| n.min(d)));
        }
    };
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let mut phase = "Running";
    let mut restarts = 0i32;
    let mut crashing = false;
    let mut running_since = started;
    if let Some(limit) = knobs.crash_loop {
        let elapsed = now.duration_since(started).as_secs().max(0) as u64;
        let done = limit.map(u64::from);
        restarts = done.map_or(elapsed, |d| elapsed.min(d)) as i32;
        crashing = done.is_none_or(|d| elapsed < d);
        running_since = since(started, Duration::from_secs(restarts as u64));
        if crashing {
            wake(since(started, Duration::from_secs(restarts as u64 + 1)));
        }
    }
    let mut exited = false;
    if let Some(after) = knobs.exit_after {
        let at = since(started, after);
        if now >= at {
            exited = true;
            phase = if knobs.exit_code == 0 {
                "Succeeded"
            } else {
                "Failed"
            };
        } else {
            wake(at);
        }
    }
    let ready_at = since(running_since, knobs.ready_after.unwrap_or(default_delay));
    let ready = !crashing && !exited && !knobs.never_ready && now >= ready_at;
    if !crashing && !exited && !knobs.never_ready && !ready {
        wake(ready_at);
    }
    let old_cond = |t: &str| {
        old.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .cloned()
    };
    let cond = |t: &str, on: bool| {
        let status = if on { "True" } else { "False" };
        match old_cond(t) {
            Some(c) if c.status == status => c,
            _ => PodCondition {
                type_: t.into(),
                status: status.into(),
                last_transition_time: Some(Time(now)),
                reason: (!on && t != "PodScheduled" && t != "Initialized").then(|| {
                    if exited {
                        "PodCompleted"
                    } else {
                        "ContainersNotReady"
                    }
                    .to_string()
                }),
                message: None,
                last_probe_time: None,
                ..Default::default()
            },
        }
    };
    let conditions = vec![
        cond("PodReadyToStartContainers", !exited),
        cond("Initialized", true),
        cond("Ready", ready),
        cond("ContainersReady", ready),
        cond("PodScheduled", true),
    ];
    let statuses = containers
        .iter()
        .map(|c| {
            let state = if exited {
                ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: knobs.exit_code,
                        reason: Some(
                            if knobs.exit_code == 0 {
                                "Completed"
                            } else {
                                "Error"
                            }
                            .into(),
                        ),
                        started_at: Some(Time(running_since)),
                        finished_at: Some(Time(since(
                            started,
                            knobs.exit_after.unwrap_or_default(),
                        ))),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            } else if crashing {
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(format!(
                            "back-off restarting failed container {} in pod {}",
                            c.name,
                            pod.name_any()
                        )),
                    }),
                    ..Default::default()
                }
            } else {
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(Time(running_since)),
                    }),
                    ..Default::default()
                }
            };
            // Kubernetes always writes `lastState` (at least `{}`), and the API server
            // completes it so; keeping the stored one lets the status read back equal to
            // the one written, so a starting pod's status is patched once, not twice.
            let last_state = old
                .container_statuses
                .iter()
                .flatten()
                .find(|s| s.name == c.name)
                .and_then(|s| s.last_state.clone())
                .or_else(|| Some(ContainerState::default()));
            ContainerStatus {
                name: c.name.clone(),
                last_state,
                image: c.image.clone().unwrap_or_default(),
                image_id: format!("sim://{}", c.image.as_deref().unwrap_or("")),
                container_id: Some(format!(
                    "sim://{}-{}",
                    pod.metadata.uid.as_deref().unwrap_or(""),
                    c.name
                )),
                ready,
                started: Some(!crashing && !exited),
                restart_count: restarts,
                state: Some(state),
                ..Default::default()
            }
        })
        .collect();
    let status = PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.into()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: host_ip.into(),
        }]),
        pod_ip: Some(pod_ip.into()),
        pod_ips: Some(vec![PodIP { ip: pod_ip.into() }]),
        start_time: Some(Time(started)),
        container_statuses: Some(statuses),
        qos_class: old.qos_class.clone().or_else(|| Some("BestEffort".into())),
        ..Default::default()
    };
    (status, next)
}

/// Names of the simulated nodes, for callers that need to recognise them.
pub fn names(opts: &SimOptions) -> HashSet<String> {
    opts.node_names().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("250ms", Some(Duration::from_millis(250))),
            ("2s", Some(Duration::from_secs(2))),
            ("1m", Some(Duration::from_secs(60))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("40", Some(Duration::from_millis(40))),
            ("soon", None),
            ("3d", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), want, "{s}");
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    fn ready_of(st: &PodStatus) -> bool {
        st.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    #[test]
    fn lifecycle_table() {
        let pod = Pod::default();
        let knobs = |pairs: &[(&str, &str)]| {
            Knobs::from_annotations(
                &pairs
                    .iter()
                    .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
                    .collect(),
            )
        };
        // (knobs, seconds since start, phase, ready, restarts)
        let cases = [
            (knobs(&[]), 0, "Running", true, 0),
            (knobs(&[("ready-after", "2s")]), 1, "Running", false, 0),
            (knobs(&[("ready-after", "2s")]), 2, "Running", true, 0),
            (knobs(&[("never-ready", "true")]), 100, "Running", false, 0),
            (knobs(&[("crash-loop", "3")]), 1, "Running", false, 1),
            (knobs(&[("crash-loop", "3")]), 5, "Running", true, 3),
            (knobs(&[("crash-loop", "always")]), 50, "Running", false, 50),
            (knobs(&[("exit-after", "5s")]), 4, "Running", true, 0),
            (knobs(&[("exit-after", "5s")]), 5, "Failed", false, 0),
            (
                knobs(&[("exit-after", "5s"), ("exit-code", "0")]),
                6,
                "Succeeded",
                false,
                0,
            ),
        ];
        for (k, secs, phase, ready, restarts) in cases {
            let (st, _) = simulate(
                &pod,
                &PodStatus::default(),
                &k,
                Duration::ZERO,
                at(1000),
                at(1000 + secs),
                "10.244.0.2",
                "10.240.0.1",
            );
            assert_eq!(st.phase.as_deref(), Some(phase), "{k:?} at {secs}");
            assert_eq!(ready_of(&st), ready, "{k:?} at {secs}");
            let r = st
                .container_statuses
                .iter()
                .flatten()
                .map(|c| c.restart_count)
                .max()
                .unwrap_or(restarts);
            assert_eq!(r, restarts, "{k:?} at {secs}");
        }
    }

    #[test]
    fn status_is_stable_once_reached() {
        let pod = Pod::default();
        let (first, _) = simulate(
            &pod,
            &PodStatus::default(),
            &Knobs::default(),
            Duration::ZERO,
            at(1000),
            at(1000),
            "ip",
            "h",
        );
        let (again, next) = simulate(
            &pod,
            &first,
            &Knobs::default(),
            Duration::ZERO,
            at(1000),
            at(1010),
            "ip",
            "h",
        );
        assert!(same_status(&first, &again));
        assert_eq!(next, None);
    }

    /// The status the API server stores and serves back (completed with every field
    /// Kubernetes always writes, such as `lastState: {}`) is the status written: a started
    /// pod is patched once.
    #[test]
    fn status_read_back_from_the_server_needs_no_second_patch() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"nodeName": "sim-node-0", "containers": [{"name": "c", "image": "i:1"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }))
        .expect("pod");
        let old = pod.status.clone().unwrap_or_default();
        let (written, _) = simulate(
            &pod,
            &old,
            &Knobs::default(),
            Duration::ZERO,
            at(1000),
            at(1000),
            "ip",
            "h",
        );
        assert!(!same_status(&old, &written));
        let mut stored = serde_json::to_value(Pod {
            status: Some(written.clone()),
            ..pod.clone()
        })
        .expect("encode");
        baton_schema::wire::complete_definition("io.k8s.api.core.v1.Pod", &mut stored);
        let read: Pod = serde_json::from_value(stored).expect("decode");
        let read = read.status.unwrap_or_default();
        let (again, _) = simulate(
            &pod,
            &read,
            &Knobs::default(),
            Duration::ZERO,
            at(1000),
            at(1001),
            "ip",
            "h",
        );
        assert!(same_status(&read, &again), "{read:?}\n{again:?}");
    }
}
