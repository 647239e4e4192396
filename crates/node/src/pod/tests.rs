//! The pod worker against [`FakeHost`] and an in-memory API, under tokio's paused time: back-off,
//! restart policy, adoption after an agent restart, graceful deletion (with the drain wait) and
//! probes, checked as a user sees them (calls made to the machine, the status, the events) —
//! without root, runc or real sleeps.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, PersistentVolume,
    PersistentVolumeClaim, Pod, PodSpec, Probe, Secret, SecretEnvSource, SecretKeySelector,
    SleepAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::api::PodApi;
use super::saved::{SavedContainer, SavedPod};
use crate::host::fake::{Behaviour, Call, FakeHost};
use crate::host::{Exit, Signal};
use crate::{Agent, AgentOptions, Images, PullError, PulledImage};
use baton_api::events::Kind;

const UID: &str = "0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11";

mod storage;
mod volumes;

/// The API server as the worker sees it: statuses, events and deletions are recorded.
#[derive(Default)]
struct FakeApi {
    statuses: Mutex<Vec<Value>>,
    events: Mutex<Vec<(String, String)>>,
    deleted: Mutex<Vec<String>>,
    /// ConfigMaps by name (volumes and env refs read them).
    config_maps: Mutex<BTreeMap<String, ConfigMap>>,
    /// Secrets by name (env refs read them).
    secrets: Mutex<BTreeMap<String, Secret>>,
    /// Claims and volumes by name (persistentVolumeClaim volumes read them).
    claims: Mutex<BTreeMap<String, PersistentVolumeClaim>>,
    volumes: Mutex<BTreeMap<String, PersistentVolume>>,
}

#[async_trait]
impl PodApi for FakeApi {
    async fn patch_status(&self, _ns: &str, _name: &str, status: &Value) -> Result<(), String> {
        lock(&self.statuses).push(status.clone());
        Ok(())
    }
    async fn record_event(&self, _pod: &Pod, _c: &str, _kind: Kind, reason: &str, msg: &str) {
        lock(&self.events).push((reason.to_string(), msg.to_string()));
    }
    async fn config_map(&self, _ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        Ok(lock(&self.config_maps).get(name).cloned())
    }
    async fn secret(&self, _ns: &str, name: &str) -> Result<Option<Secret>, String> {
        Ok(lock(&self.secrets).get(name).cloned())
    }
    async fn claim(&self, _ns: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, String> {
        Ok(lock(&self.claims).get(name).cloned())
    }
    async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, String> {
        Ok(lock(&self.volumes).get(name).cloned())
    }
    async fn delete_pod(&self, _ns: &str, name: &str, uid: &str) -> Result<bool, String> {
        lock(&self.deleted).push(format!("{name}/{uid}"));
        Ok(true)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every image is there, except those named `missing…`.
struct FakeImages;

#[async_trait]
impl Images for FakeImages {
    async fn ensure(&self, image: &str, _: &str, _: &[Vec<u8>]) -> Result<PulledImage, PullError> {
        if image.starts_with("missing") {
            return Err(PullError {
                reason: "ErrImagePull".into(),
                message: "manifest unknown".into(),
            });
        }
        Ok(PulledImage {
            image_id: format!("{image}@sha256:0"),
            rootfs: PathBuf::from("/images").join(image),
            config: crate::ImageRunConfig {
                cmd: vec!["serve".into()],
                ..Default::default()
            },
            size: 1234,
        })
    }

    /// Images named `pulled…` are fetched (and so are the missing ones, in vain).
    async fn pulls(&self, image: &str, _: &str) -> bool {
        image.starts_with("pulled") || image.starts_with("missing")
    }
}

fn options(drain_timeout: Option<Duration>) -> AgentOptions {
    AgentOptions {
        data_dir: PathBuf::from("/data/node"),
        node_name: "n1".into(),
        node_ip: Ipv4Addr::LOCALHOST,
        pod_cidr: "10.244.0.0/24".parse().expect("a valid CIDR"),
        bridge: "baton0".into(),
        kubelet_listen: "127.0.0.1:0".parse().expect("a valid address"),
        token: String::new(),
        drain_timeout,
        dns: crate::dns::DnsOptions {
            cluster_dns: Some("10.96.0.10".parse().expect("a valid address")),
            ..Default::default()
        },
        disks: crate::disk::Disks::new(
            PathBuf::from("/data/node"),
            baton_image::MinFree::Percent(10.0),
            PathBuf::from("/data/images"),
            baton_image::MinFree::Percent(15.0),
        ),
    }
}

fn container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: Some("app:v1".into()),
        ..Default::default()
    }
}

fn pod(policy: &str, containers: Vec<Container>) -> Pod {
    let mut p = Pod {
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            containers,
            ..Default::default()
        }),
        ..Default::default()
    };
    p.metadata.name = Some("web".into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(UID.into());
    p
}

fn id(name: &str) -> String {
    super::container_id(UID, name)
}

fn pod_dir() -> PathBuf {
    PathBuf::from("/data/node/pods").join(UID)
}

/// An agent on `host` whose pod workers talk to `api`.
fn agent_on(host: Arc<FakeHost>, api: Arc<FakeApi>, opts: AgentOptions) -> Arc<Agent> {
    // Never called: the worker reaches the API only through `api`.
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a valid URL"));
    let client = kube::Client::try_from(config).expect("a client that connects lazily");
    Agent::with_api(client, host, Arc::new(FakeImages), api, opts)
}

/// One pod worker on a fake machine.
struct Harness {
    agent: Arc<Agent>,
    host: Arc<FakeHost>,
    api: Arc<FakeApi>,
    pod: Pod,
    tx: watch::Sender<Option<Pod>>,
    worker: JoinHandle<()>,
}

impl Harness {
    fn start(host: FakeHost, pod: Pod) -> Self {
        Self::start_with(host, pod, options(None), None)
    }

    fn start_with(
        host: FakeHost,
        pod: Pod,
        opts: AgentOptions,
        leases: Option<kube::runtime::reflector::Store<Lease>>,
    ) -> Self {
        Self::start_on(Arc::new(host), pod, opts, leases)
    }

    fn start_on(
        host: Arc<FakeHost>,
        pod: Pod,
        opts: AgentOptions,
        leases: Option<kube::runtime::reflector::Store<Lease>>,
    ) -> Self {
        let api = Arc::new(FakeApi::default());
        let agent = agent_on(host.clone(), api.clone(), opts);
        if let Some(leases) = leases {
            assert!(agent.traffic_leases.set(leases).is_ok());
        }
        Self::start_worker(agent, host, api, pod)
    }

    fn start_worker(agent: Arc<Agent>, host: Arc<FakeHost>, api: Arc<FakeApi>, pod: Pod) -> Self {
        let (tx, rx) = watch::channel(Some(pod.clone()));
        let worker = tokio::spawn(super::worker(agent.clone(), UID.into(), rx));
        Harness {
            agent,
            host,
            api,
            pod,
            tx,
            worker,
        }
    }

    /// The agent dies (its worker stops where it is, as with `kill -9`: nothing is cleaned up,
    /// the containers run on) and a new agent starts on the same machine with the same pod.
    async fn restart(self) -> Self {
        self.worker.abort();
        let _ = self.worker.await;
        let api = Arc::new(FakeApi::default());
        let agent = agent_on(self.host.clone(), api.clone(), options(None));
        agent.recover_addresses().await;
        Self::start_worker(agent, self.host, api, self.pod)
    }

    fn status(&self) -> Value {
        lock(&self.api.statuses).last().cloned().unwrap_or_default()
    }

    fn container_status(&self, name: &str) -> Value {
        let s = self.status();
        s["containerStatuses"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_default()
    }

    fn condition(&self, t: &str) -> Value {
        let s = self.status();
        s["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == t).cloned())
            .unwrap_or_default()["status"]
            .clone()
    }

    fn events(&self, reason: &str) -> Vec<String> {
        lock(&self.api.events)
            .iter()
            .filter(|(r, _)| r == reason)
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn runs(&self, name: &str) -> Vec<Instant> {
        self.host.times_of(&Call::Run(id(name)))
    }

    fn pod_ip(&self) -> Ipv4Addr {
        self.status()["podIP"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("the status shows the pod IP")
    }

    /// Marks the pod deleted with `grace` seconds (as the API server does).
    fn delete(&self, grace: i64) -> Instant {
        let mut p = self.pod.clone();
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        p.metadata.deletion_grace_period_seconds = Some(grace);
        self.tx.send_replace(Some(p));
        Instant::now()
    }

    /// Waits (in paused time) for the worker to finish.
    async fn finished(self) -> Self {
        let worker = tokio::time::timeout(Duration::from_secs(600), self.worker)
            .await
            .expect("the worker finishes");
        assert!(worker.is_ok(), "the worker did not panic");
        Harness {
            worker: tokio::spawn(async {}),
            ..self
        }
    }
}

async fn advance(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

fn crashing(code: i32) -> Behaviour {
    Behaviour {
        exit_at_start: Some(code),
        ..Default::default()
    }
}

/// The gaps between consecutive instants.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn crash_loop_restarts_at_once_then_after_10s_doubling_to_5_minutes() {
    let host = FakeHost::new();
    host.behave("app", crashing(1));
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1_300.0).await;
    let runs = h.runs("app");
    let expected = [0, 10, 20, 40, 80, 160, 300, 300];
    assert!(runs.len() > expected.len(), "{} runs", runs.len());
    // Each exit is noticed on the next pass (100 ms while a container is young).
    for (gap, secs) in gaps(&runs).iter().zip(expected) {
        let backoff = Duration::from_secs(secs);
        assert!(
            *gap >= backoff && *gap < backoff + Duration::from_secs(1),
            "restart after {gap:?}, back-off {backoff:?} (all: {:?})",
            gaps(&runs)
        );
    }
    let c = h.container_status("app");
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(c["restartCount"], runs.len() - 1);
    let backoffs = h.events("BackOff");
    assert!(!backoffs.is_empty());
    assert_eq!(
        backoffs[0],
        format!("Back-off restarting failed container app in pod web_default({UID})")
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_keeps_the_logs_of_its_last_two_runs_only() {
    use crate::host::Host;
    let host = FakeHost::new();
    host.behave("app", crashing(1));
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;
    let dir = PathBuf::from("/data/node/logs")
        .join(format!("default_web_{UID}"))
        .join("app");
    // A rotated part of an early run's log goes with it.
    h.host
        .put_file(&dir.join("0.log.20261208-013400.000000001"), b"old");
    advance(60.0).await;
    let runs = h.runs("app").len() as u32;
    assert!(runs >= 4, "{runs} runs");
    let names: std::collections::BTreeSet<String> =
        h.host.list_dir(&dir).await.into_iter().collect();
    let want: std::collections::BTreeSet<String> =
        [runs - 2, runs - 1].map(|n| format!("{n}.log")).into();
    assert_eq!(names, want);
}

#[tokio::test(start_paused = true)]
async fn restart_policy_decides_what_follows_an_exit() {
    // (policy, exit code, restarted, phase once it stops)
    let table = [
        ("Always", 0, true, "Running"),
        ("Always", 1, true, "Running"),
        ("OnFailure", 0, false, "Succeeded"),
        ("OnFailure", 1, true, "Running"),
        ("Never", 0, false, "Succeeded"),
        ("Never", 1, false, "Failed"),
    ];
    for (policy, code, restarted, phase) in table {
        let host = FakeHost::new();
        host.behave("app", crashing(code));
        let h = Harness::start(host, pod(policy, vec![container("app")]));
        advance(60.0).await;
        let runs = h.runs("app").len();
        assert_eq!(runs > 1, restarted, "{policy} exit {code}: {runs} runs");
        let c = h.container_status("app");
        if restarted {
            assert_eq!(c["restartCount"], runs - 1, "{policy} exit {code}");
        } else {
            assert_eq!(h.status()["phase"], phase, "{policy} exit {code}");
            assert_eq!(c["state"]["terminated"]["exitCode"], code);
            assert_eq!(c["restartCount"], 0);
        }
        h.worker.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_adopts_the_containers_runc_still_runs() {
    let host = FakeHost::new();
    let saved = SavedPod {
        namespace: "default".into(),
        name: "web".into(),
        ip: Some(Ipv4Addr::new(10, 244, 0, 7)),
        start_time: Some("2026-01-01T00:00:00Z".into()),
        containers: BTreeMap::from([
            (
                "app".to_string(),
                SavedContainer {
                    id: id("app"),
                    pid: Some(4242),
                    started_at: Some("2026-01-01T00:00:01Z".into()),
                    restart_count: 2,
                    image_id: "app:v1@sha256:0".into(),
                    ..Default::default()
                },
            ),
            (
                "side".to_string(),
                SavedContainer {
                    id: id("side"),
                    pid: Some(4243),
                    started_at: Some("2026-01-01T00:00:01Z".into()),
                    restart_count: 0,
                    image_id: "app:v1@sha256:0".into(),
                    ..Default::default()
                },
            ),
        ]),
        evicted: None,
    };
    let body = serde_json::to_vec(&saved).expect("serializable");
    host.put_file(&pod_dir().join("state.json"), &body);
    // runc still runs `app` as the saved pid; `side` ended while the agent was down.
    host.add_running(&id("app"), 4242);
    let h = Harness::start(
        host,
        pod("Always", vec![container("app"), container("side")]),
    );
    advance(2.0).await;

    assert!(h.runs("app").is_empty(), "the running container is adopted");
    let app = h.container_status("app");
    assert_eq!(app["state"]["running"]["startedAt"], "2026-01-01T00:00:01Z");
    assert_eq!(app["restartCount"], 2);
    assert_eq!(app["ready"], true);
    assert_eq!(h.status()["podIP"], "10.244.0.7");
    assert_eq!(h.status()["startTime"], "2026-01-01T00:00:00Z");

    // The one that ended is restarted by the policy, its end shown as unknown (137).
    assert_eq!(h.runs("side").len(), 1);
    let side = h.container_status("side");
    assert_eq!(side["restartCount"], 1);
    assert_eq!(side["lastState"]["terminated"]["exitCode"], 137);

    // The saved address stays this pod's: a new pod gets another one.
    assert_ne!(
        h.agent.allocate_ip("other"),
        Some(Ipv4Addr::new(10, 244, 0, 7))
    );
    // The adopted process is watched like one of ours: its third restart backs off 20 s.
    h.host.exit(&id("app"), Exit::Unknown);
    advance(19.0).await;
    assert!(h.runs("app").is_empty());
    assert_eq!(
        h.container_status("app")["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    advance(2.0).await;
    assert_eq!(h.runs("app").len(), 1);
    assert_eq!(h.container_status("app")["restartCount"], 3);
    let saved: SavedPod = serde_json::from_slice(
        &h.host
            .file(&pod_dir().join("state.json"))
            .expect("state saved"),
    )
    .expect("readable state");
    assert_eq!(saved.containers["app"].restart_count, 3);
}

#[tokio::test(start_paused = true)]
async fn graceful_deletion_sends_sigterm_then_sigkill_after_the_grace_period() {
    let host = FakeHost::new();
    // The app ignores SIGTERM.
    host.behave("app", Behaviour::default());
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;
    let ip = h.pod_ip();
    let deleted = h.delete(5);
    let h = h.finished().await;

    let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    let kill = h.host.times_of(&Call::Kill(id("app"), Signal::Kill));
    assert_eq!(term.len(), 1);
    assert_eq!(kill.len(), 1);
    assert!(term[0] - deleted < Duration::from_millis(100));
    let waited = kill[0] - term[0];
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_100),
        "SIGKILL {waited:?} after SIGTERM"
    );
    // Then every trace goes, and the pod object last.
    assert_eq!(h.events("Killing"), vec!["Stopping container app"]);
    assert!(h.host.times_of(&Call::Delete(id("app")))[0] >= kill[0]);
    assert!(h.host.netns().is_empty());
    assert!(!h.host.has_files_under(&pod_dir()));
    assert_eq!(h.host.times_of(&Call::ForgetConnections(ip)).len(), 1);
    assert_eq!(*lock(&h.api.deleted), vec![format!("web/{UID}")]);
    assert!(!h.host.running(&id("app")));
}

#[tokio::test(start_paused = true)]
async fn containers_that_stop_on_sigterm_are_not_killed() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            on_term: Some(Exit::Signal(15)),
            ..Default::default()
        },
    );
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;
    let deleted = h.delete(30);
    let h = h.finished().await;
    assert!(Instant::now() - deleted < Duration::from_secs(1));
    assert_eq!(
        h.host.times_of(&Call::Kill(id("app"), Signal::Term)).len(),
        1
    );
    assert!(
        h.host
            .times_of(&Call::Kill(id("app"), Signal::Kill))
            .is_empty()
    );
    assert_eq!(lock(&h.api.deleted).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_force_deletion_kills_at_once_and_cuts_the_grace_short() {
    let host = FakeHost::new();
    host.behave("app", Behaviour::default());
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;
    h.delete(30);
    advance(3.0).await;
    // The pod object goes away (kubectl delete --force) while SIGTERM's grace runs.
    let gone = Instant::now();
    h.tx.send_replace(None);
    let h = h.finished().await;
    let kill = h.host.times_of(&Call::Kill(id("app"), Signal::Kill));
    assert_eq!(kill.len(), 1);
    assert!(kill[0] - gone < Duration::from_millis(100));
    assert!(!h.host.has_files_under(&pod_dir()));
}

fn fresh_lease(holder: &str) -> kube::runtime::reflector::Store<Lease> {
    let (store, mut writer) = kube::runtime::reflector::store::<Lease>();
    let mut lease = Lease {
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(3_600),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
        ..Default::default()
    };
    lease.metadata.name = Some(baton_api::drain::lease_name(holder));
    lease.metadata.namespace = Some(baton_api::drain::LEASE_NAMESPACE.into());
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(lease));
    store
}

#[tokio::test(start_paused = true)]
async fn sigterm_waits_for_the_traffic_agents_to_drain_the_pod() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            on_term: Some(Exit::Signal(15)),
            ..Default::default()
        },
    );
    let opts = options(Some(Duration::from_secs(10)));
    let h = Harness::start_with(
        host,
        pod("Always", vec![container("app")]),
        opts,
        Some(fresh_lease("proxy-1")),
    );
    advance(1.0).await;
    let deleted = h.delete(30);
    advance(3.0).await;
    assert!(
        h.host
            .times_of(&Call::Kill(id("app"), Signal::Term))
            .is_empty(),
        "no SIGTERM before the traffic agent acknowledged"
    );
    // The traffic agent acknowledges: SIGTERM follows.
    let mut acked = h.tx.borrow().clone().expect("the pod");
    acked.metadata.annotations = Some(BTreeMap::from([(
        baton_api::drain::ack_annotation("proxy-1"),
        "true".to_string(),
    )]));
    h.tx.send_replace(Some(acked));
    let h = h.finished().await;
    let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    assert_eq!(term.len(), 1);
    let waited = term[0] - deleted;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3_100),
        "SIGTERM {waited:?} after the deletion"
    );
    assert!(h.events("DrainTimeout").is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_drain_times_out_with_an_event() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            on_term: Some(Exit::Signal(15)),
            ..Default::default()
        },
    );
    let opts = options(Some(Duration::from_secs(10)));
    let h = Harness::start_with(
        host,
        pod("Always", vec![container("app")]),
        opts,
        Some(fresh_lease("proxy-1")),
    );
    advance(1.0).await;
    let deleted = h.delete(30);
    let h = h.finished().await;
    let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    assert_eq!(term.len(), 1);
    let waited = term[0] - deleted;
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_100),
        "SIGTERM {waited:?} after the deletion"
    );
    let timeouts = h.events("DrainTimeout");
    assert_eq!(timeouts.len(), 1);
    assert!(timeouts[0].contains("proxy-1"), "{}", timeouts[0]);
}

fn probe(period: i32, failures: i32) -> Probe {
    Probe {
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let host = FakeHost::new();
    // The app ignores SIGTERM: SIGKILL follows two seconds after it.
    host.behave("app", Behaviour::default());
    let mut c = container("app");
    c.liveness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["healthy".into()]),
        }),
        ..probe(1, 3)
    });
    let h = Harness::start(host, pod("Always", vec![c]));
    advance(5.0).await;
    assert!(
        h.host
            .times_of(&Call::Kill(id("app"), Signal::Term))
            .is_empty()
    );
    let probes = h
        .host
        .times_of(&Call::Exec(id("app"), vec!["healthy".into()]));
    assert!(probes.len() >= 4, "probed every second: {probes:?}");
    let failing = Instant::now();
    h.host.set_exec_fails(&id("app"), Some("unhealthy"));
    advance(10.0).await;
    let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    let kill = h.host.times_of(&Call::Kill(id("app"), Signal::Kill));
    assert_eq!(term.len(), 1);
    // Three failures a second apart.
    let after = term[0] - failing;
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(4),
        "{after:?}"
    );
    assert_eq!(kill.len(), 1);
    let grace = kill[0] - term[0];
    assert!(
        grace >= Duration::from_secs(2) && grace < Duration::from_millis(2_600),
        "{grace:?}"
    );
    assert_eq!(h.runs("app").len(), 2);
    let c = h.container_status("app");
    assert_eq!(c["restartCount"], 1);
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(
        h.events("Killing"),
        vec!["Container app failed liveness probe, will be restarted"]
    );
    // Each failed check is the kubelet's Unhealthy event, with the probe's output.
    assert_eq!(
        h.events("Unhealthy"),
        vec!["Liveness probe failed: unhealthy"; 3]
    );
    assert_eq!(h.events("Started"), vec!["Started container app"; 2]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_startup_probe_restarts_the_container_with_unhealthy_events() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            exec_fails: Some("not yet".into()),
            ..Default::default()
        },
    );
    let mut c = container("app");
    c.startup_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["started".into()]),
        }),
        ..probe(1, 2)
    });
    let h = Harness::start(host, pod("Always", vec![c]));
    advance(1.5).await;
    assert_eq!(
        h.events("Unhealthy"),
        vec!["Startup probe failed: not yet"; 2]
    );
    assert_eq!(
        h.events("Killing"),
        vec!["Container app failed startup probe, will be restarted"]
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_follows_the_http_probe() {
    let mut c = container("app");
    c.readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            port: IntOrString::Int(8080),
            path: Some("/ready".into()),
            ..Default::default()
        }),
        ..probe(1, 2)
    });
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c]));
    advance(3.0).await;
    assert_eq!(h.condition("Ready"), "False");
    let addr = SocketAddr::new(h.pod_ip().into(), 8080);
    h.host.listen(addr, 200);
    advance(1.5).await;
    assert_eq!(h.condition("Ready"), "True");
    assert_eq!(h.container_status("app")["ready"], true);
    // Two failures in a row: not ready, and no restart (readiness only flips Ready).
    h.host.listen(addr, 503);
    advance(3.0).await;
    assert_eq!(h.condition("Ready"), "False");
    assert_eq!(h.runs("app").len(), 1);
    // Every failed check is an Unhealthy event in the kubelet's words: refused before the
    // app listened, then its 503s.
    let unhealthy = h.events("Unhealthy");
    let refused = format!(
        "Readiness probe failed: Get \"http://{addr}/ready\": dial tcp {addr}: connect: connection refused"
    );
    let status = "Readiness probe failed: HTTP probe failed with statuscode: 503";
    assert!(unhealthy.len() >= 5, "{unhealthy:?}");
    assert!(
        unhealthy.iter().take(3).all(|m| *m == refused),
        "{unhealthy:?}"
    );
    assert!(
        unhealthy.iter().rev().take(2).all(|m| m == status),
        "{unhealthy:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_readiness_probe_declared_ports_must_accept_first() {
    let mut c = container("app");
    c.ports = Some(vec![ContainerPort {
        container_port: 80,
        ..Default::default()
    }]);
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c]));
    advance(2.0).await;
    assert_eq!(h.condition("Ready"), "False");
    h.host.listen(SocketAddr::new(h.pod_ip().into(), 80), 200);
    advance(0.5).await;
    assert_eq!(h.condition("Ready"), "True");

    // Ports that never accept count as ready after ten seconds.
    let mut c = container("app");
    c.ports = Some(vec![ContainerPort {
        container_port: 81,
        ..Default::default()
    }]);
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c]));
    advance(9.0).await;
    assert_eq!(h.condition("Ready"), "False");
    advance(1.5).await;
    assert_eq!(h.condition("Ready"), "True");
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_backs_off_and_says_why() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            start_error: Some("exec: \"serve\": executable file not found in $PATH".into()),
            ..Default::default()
        },
    );
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(15.0).await;
    // At once, then after 10 s.
    assert_eq!(h.runs("app").len(), 3);
    let c = h.container_status("app");
    assert_eq!(c["lastState"]["terminated"]["reason"], "StartError");
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(h.events("Failed")[0].contains("executable file not found"));
}

#[tokio::test(start_paused = true)]
async fn an_oom_kill_is_reported_as_such() {
    let host = FakeHost::new();
    host.behave("app", crashing(137));
    host.oom(&format!("/baton/{UID}/app"));
    let h = Harness::start(host, pod("Never", vec![container("app")]));
    advance(1.0).await;
    let c = h.container_status("app");
    assert_eq!(c["state"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(c["state"]["terminated"]["exitCode"], 137);
    assert_eq!(h.status()["phase"], "Failed");
}

#[tokio::test(start_paused = true)]
async fn a_missing_image_shows_err_image_pull_then_image_pull_backoff() {
    let mut c = container("app");
    c.image = Some("missing:v1".into());
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c]));
    advance(0.5).await;
    assert_eq!(
        h.container_status("app")["state"]["waiting"]["reason"],
        "ErrImagePull"
    );
    advance(1.0).await;
    assert_eq!(
        h.container_status("app")["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    assert!(h.runs("app").is_empty());
    assert_eq!(h.status()["phase"], "Pending");
    assert_eq!(h.events("Pulling")[0], "Pulling image \"missing:v1\"");
    assert!(h.events("Pulled").is_empty());
}

#[tokio::test(start_paused = true)]
async fn image_and_container_events_are_the_kubelets() {
    let mut pulled = container("pulled");
    pulled.image = Some("pulled:v2".into());
    let h = Harness::start(
        FakeHost::new(),
        pod("Always", vec![container("app"), pulled]),
    );
    advance(0.5).await;
    let app_image = container("app").image.unwrap_or_default();
    assert_eq!(h.events("Pulling"), vec!["Pulling image \"pulled:v2\""]);
    let pulled = h.events("Pulled");
    assert_eq!(
        pulled[0],
        format!("Container image \"{app_image}\" already present on machine")
    );
    assert!(
        pulled[1].starts_with("Successfully pulled image \"pulled:v2\" in ")
            && pulled[1].ends_with("including waiting). Image size: 1234 bytes."),
        "{}",
        pulled[1]
    );
    assert_eq!(
        h.events("Created"),
        vec!["Created container: app", "Created container: pulled"]
    );
    assert_eq!(
        h.events("Started"),
        vec!["Started container app", "Started container pulled"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_pod_gets_its_own_etc_files_and_bundle() {
    let h = Harness::start(FakeHost::new(), pod("Always", vec![container("app")]));
    advance(1.0).await;
    let etc = pod_dir().join("etc");
    let file = |p: &Path| String::from_utf8(h.host.file(p).unwrap_or_default()).unwrap_or_default();
    assert_eq!(file(&etc.join("hostname")), "web\n");
    assert!(file(&etc.join("hosts")).contains(&format!("{}\tweb", h.pod_ip())));
    // dnsPolicy ClusterFirst (the default): the cluster DNS, the namespace's search path.
    assert_eq!(
        file(&etc.join("resolv.conf")),
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    );
    let config: Value =
        serde_json::from_str(&file(&pod_dir().join("app/bundle/config.json"))).unwrap_or_default();
    assert_eq!(config["process"]["args"][0], "serve");
    assert_eq!(config["linux"]["cgroupsPath"], format!("/baton/{UID}/app"));
    assert_eq!(h.host.netns(), vec![format!("baton-{UID}")]);
    // The config (environment, secrets' values included) is written to the agent's tmpfs;
    // the bundle links to it, and it goes with the pod.
    let on_tmpfs = PathBuf::from("/data/node/run").join(UID).join("app.json");
    assert_eq!(
        file(&on_tmpfs),
        file(&pod_dir().join("app/bundle/config.json"))
    );
    h.delete(0);
    let h = h.finished().await;
    assert!(h.host.file(&on_tmpfs).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_removes_what_pods_no_longer_in_the_api_left() {
    // The agent ran `gone` before it stopped; the API no longer has that pod.
    let gone = "7f0a1c2d-0000-4000-8000-000000000001";
    let host = FakeHost::new();
    let saved = SavedPod {
        namespace: "default".into(),
        name: "old".into(),
        ip: Some(Ipv4Addr::new(10, 244, 0, 9)),
        containers: BTreeMap::from([(
            "c".to_string(),
            SavedContainer {
                id: super::container_id(gone, "c"),
                pid: Some(777),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let dir = PathBuf::from("/data/node/pods").join(gone);
    host.put_file(
        &dir.join("state.json"),
        &serde_json::to_vec(&saved).expect("serializable"),
    );
    host.add_running(&super::container_id(gone, "c"), 777);
    host.add_netns(&format!("baton-{gone}"), Some(Ipv4Addr::new(10, 244, 0, 9)));
    // And this one is live: its worker runs.
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;

    let live = std::collections::HashSet::from([UID.to_string()]);
    h.agent.clean_orphans(&live).await;
    let old = super::container_id(gone, "c");
    assert_eq!(
        h.host
            .times_of(&Call::Kill(old.clone(), Signal::Kill))
            .len(),
        1
    );
    assert!(!h.host.running(&old));
    assert!(!h.host.has_files_under(&dir));
    assert_eq!(h.host.netns(), vec![format!("baton-{UID}")]);
    assert_eq!(
        h.host
            .times_of(&Call::ForgetConnections(Ipv4Addr::new(10, 244, 0, 9)))
            .len(),
        1
    );
    // The live pod keeps its container, network and files.
    assert!(h.host.running(&id("app")));
    assert!(h.host.has_files_under(&pod_dir()));
}

#[tokio::test(start_paused = true)]
async fn a_completed_never_pod_stays_succeeded_across_an_agent_restart() {
    let host = FakeHost::new();
    host.behave("app", crashing(0));
    let h = Harness::start(host, pod("Never", vec![container("app")]));
    advance(2.0).await;
    assert_eq!(h.status()["phase"], "Succeeded");
    let finished = h.container_status("app")["state"]["terminated"].clone();
    assert_eq!(finished["exitCode"], 0);

    let h = h.restart().await;
    advance(30.0).await;
    assert_eq!(
        h.runs("app").len(),
        1,
        "the completed container is not started again"
    );
    assert_eq!(h.status()["phase"], "Succeeded");
    assert_eq!(h.container_status("app")["state"]["terminated"], finished);
    assert_eq!(h.container_status("app")["restartCount"], 0);
}

#[tokio::test(start_paused = true)]
async fn an_exit_while_the_agent_is_down_is_reported_with_its_code() {
    for (policy, phase, runs) in [("Never", "Failed", 1), ("OnFailure", "Running", 2)] {
        let host = FakeHost::new();
        host.behave("app", Behaviour::default());
        let h = Harness::start(host, pod(policy, vec![container("app")]));
        advance(1.0).await;
        assert_eq!(h.status()["phase"], "Running");
        // The agent dies; meanwhile the container exits with 3 (its monitor records it).
        h.worker.abort();
        h.host.exit(&id("app"), Exit::Code(3));
        let h = h.restart().await;
        advance(2.0).await;
        assert_eq!(h.runs("app").len(), runs, "{policy}");
        assert_eq!(h.status()["phase"], phase, "{policy}");
        let c = h.container_status("app");
        let end = if policy == "Never" {
            &c["state"]["terminated"]
        } else {
            &c["lastState"]["terminated"]
        };
        assert_eq!(end["exitCode"], 3, "{policy}: {c}");
        assert_eq!(end["reason"], "Error", "{policy}: {c}");
    }
}

#[tokio::test(start_paused = true)]
async fn saved_and_live_addresses_are_never_handed_out_again() {
    let host = Arc::new(FakeHost::new());
    let mut taken = std::collections::BTreeSet::new();
    // Twenty pods ran before the restart: ten with saved state, ten more whose state was
    // lost but whose network namespaces remain.
    for i in 0..20u8 {
        let uid = format!("7f0a1c2d-0000-4000-8000-0000000000{i:02}");
        let ip = Ipv4Addr::new(10, 244, 0, 100 + i);
        taken.insert(ip);
        if i < 10 {
            let saved = SavedPod {
                name: format!("old-{i}"),
                ip: Some(ip),
                ..Default::default()
            };
            let body = serde_json::to_vec(&saved).expect("serializable");
            host.put_file(
                &PathBuf::from("/data/node/pods")
                    .join(&uid)
                    .join("state.json"),
                &body,
            );
        } else {
            host.add_netns(&format!("baton-{uid}"), Some(ip));
        }
    }
    // Conntrack remembers connections to a held address, to two no pod holds (of pods gone
    // while no agent ran), to the gateway (the cluster DNS) and to an outside address.
    let gone = [Ipv4Addr::new(10, 244, 0, 3), Ipv4Addr::new(10, 244, 0, 99)];
    host.track(&[
        Ipv4Addr::new(10, 244, 0, 1),
        gone[0],
        gone[1],
        Ipv4Addr::new(10, 244, 0, 100),
        Ipv4Addr::new(192, 0, 2, 1),
    ]);
    let agent = agent_on(host.clone(), Arc::new(FakeApi::default()), options(None));
    agent.recover_addresses().await;
    let forgotten: Vec<Ipv4Addr> = host
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::ForgetConnections(ip) => Some(ip),
            _ => None,
        })
        .collect();
    assert_eq!(
        forgotten, gone,
        "only the entries of addresses no pod holds go"
    );
    // The whole rest of the /24 goes to new pods, none of it twice or taken.
    let mut fresh = std::collections::BTreeSet::new();
    while let Some(ip) = agent.allocate_ip(&format!("new-{}", fresh.len())) {
        assert!(!taken.contains(&ip), "{ip} handed out again");
        assert!(fresh.insert(ip), "{ip} handed out twice");
    }
    assert_eq!(fresh.len() + taken.len(), 253);
}

#[tokio::test(start_paused = true)]
async fn a_network_namespace_with_another_address_is_rebuilt() {
    let host = FakeHost::new();
    let saved = SavedPod {
        namespace: "default".into(),
        name: "web".into(),
        ip: Some(Ipv4Addr::new(10, 244, 0, 7)),
        ..Default::default()
    };
    host.put_file(
        &pod_dir().join("state.json"),
        &serde_json::to_vec(&saved).expect("serializable"),
    );
    host.add_netns(&format!("baton-{UID}"), Some(Ipv4Addr::new(10, 244, 0, 9)));
    let h = Harness::start(host, pod("Always", vec![container("app")]));
    advance(1.0).await;
    assert_eq!(h.pod_ip(), Ipv4Addr::new(10, 244, 0, 7));
    assert_eq!(
        h.host
            .times_of(&Call::DeleteNetwork(format!("baton-{UID}")))
            .len(),
        1
    );
    assert_eq!(
        h.agent.host.pod_address(&format!("baton-{UID}")).await,
        Some(Ipv4Addr::new(10, 244, 0, 7))
    );
}

#[tokio::test(start_paused = true)]
async fn run_as_non_root_with_a_root_image_is_a_config_error() {
    use k8s_openapi::api::core::v1::SecurityContext;
    let mut c = container("app");
    c.security_context = Some(SecurityContext {
        run_as_non_root: Some(true),
        ..Default::default()
    });
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c]));
    advance(1.0).await;
    assert!(h.runs("app").is_empty());
    let w = h.container_status("app")["state"]["waiting"].clone();
    assert_eq!(w["reason"], "CreateContainerConfigError");
    assert_eq!(
        w["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"web_default({UID})\", container: app)"
        )
    );
    assert_eq!(h.status()["phase"], "Pending");
    assert!(h.events("Failed")[0].starts_with("Error: container has runAsNonRoot"));
}

// --- Environment from ConfigMaps and Secrets ------------------------------------------------

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn data_config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap {
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    cm.metadata.name = Some(name.into());
    cm
}

/// The environment written into the container's bundle.
fn bundle_env(h: &Harness, container: &str) -> Vec<String> {
    let config: Value = serde_json::from_slice(
        &h.host
            .file(&pod_dir().join(container).join("bundle/config.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    config["process"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn env_from_config_maps_and_secrets_in_order_then_env_overrides() {
    let mut c = container("app");
    let source =
        |cm: Option<&str>, secret: Option<&str>, prefix: Option<&str>, optional| EnvFromSource {
            config_map_ref: cm.map(|n| ConfigMapEnvSource {
                name: n.into(),
                optional,
            }),
            secret_ref: secret.map(|n| SecretEnvSource {
                name: n.into(),
                optional,
            }),
            prefix: prefix.map(str::to_string),
        };
    c.env_from = Some(vec![
        source(Some("cfg"), None, Some("CFG_"), None),
        source(None, Some("creds"), None, None),
        // A later source's key replaces an earlier one's.
        source(Some("more"), None, Some("CFG_"), None),
        // Optional and missing: nothing.
        source(Some("absent"), None, None, Some(true)),
        source(None, Some("absent"), None, Some(true)),
    ]);
    c.env = Some(vec![
        env_var("PASSWORD", "overridden"),
        env_var("URL", "http://$(CFG_HOST):$(CFG_PORT)"),
        // An optional key reference that is missing leaves the envFrom value alone.
        EnvVar {
            name: "USER".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "creds".into(),
                    key: "nope".into(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]);
    let api = Arc::new(FakeApi::default());
    lock(&api.config_maps).insert(
        "cfg".into(),
        data_config_map(
            "cfg",
            &[("HOST", "db"), ("PORT", "5432"), ("log.level", "debug")],
        ),
    );
    lock(&api.config_maps).insert("more".into(), data_config_map("more", &[("PORT", "6543")]));
    let secret = Secret {
        data: Some(BTreeMap::from([
            ("USER".to_string(), ByteString(b"admin".to_vec())),
            ("PASSWORD".to_string(), ByteString(b"s3cret".to_vec())),
        ])),
        ..Default::default()
    };
    lock(&api.secrets).insert("creds".into(), secret);
    let host = Arc::new(FakeHost::new());
    let agent = agent_on(host.clone(), api.clone(), options(None));
    let h = Harness::start_worker(agent, host, api, pod("Always", vec![c]));
    advance(1.0).await;
    assert_eq!(h.runs("app").len(), 1);
    let env = bundle_env(&h, "app");
    let from = env.iter().position(|e| e.starts_with("CFG_HOST="));
    let expect = [
        "CFG_HOST=db",
        "CFG_PORT=6543",
        // Keys that are not C identifiers are kept, as kubelets since 1.30 keep them.
        "CFG_log.level=debug",
        "PASSWORD=overridden",
        "USER=admin",
        "URL=http://db:6543",
    ];
    let tail: Vec<&str> = env[from.unwrap_or(env.len())..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, expect, "{env:?}");
}

#[tokio::test(start_paused = true)]
async fn a_missing_env_from_source_is_a_config_error_in_the_kubelets_words() {
    let mut c = container("app");
    c.env_from = Some(vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: "missing".into(),
            optional: None,
        }),
        ..Default::default()
    }]);
    let mut s = container("side");
    s.env_from = Some(vec![EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: "gone".into(),
            optional: Some(false),
        }),
        ..Default::default()
    }]);
    let h = Harness::start(FakeHost::new(), pod("Always", vec![c, s]));
    advance(1.0).await;
    assert!(h.runs("app").is_empty());
    assert!(h.runs("side").is_empty());
    for (name, message) in [
        ("app", "configmap \"missing\" not found"),
        ("side", "secret \"gone\" not found"),
    ] {
        let w = h.container_status(name)["state"]["waiting"].clone();
        assert_eq!(w["reason"], "CreateContainerConfigError", "{name}");
        assert_eq!(w["message"], message, "{name}");
        assert!(
            h.events("Failed").contains(&format!("Error: {message}")),
            "{:?}",
            h.events("Failed")
        );
    }
    // Created later, it is read on the next try.
    lock(&h.api.config_maps).insert("missing".into(), data_config_map("missing", &[("A", "1")]));
    advance(30.0).await;
    assert_eq!(h.runs("app").len(), 1);
    assert!(bundle_env(&h, "app").contains(&"A=1".to_string()));
    assert!(h.runs("side").is_empty());
}

// --- Init containers, sidecars, lifecycle hooks, termination messages ---------------------

fn init_pod(policy: &str, init: Vec<Container>, app: Vec<Container>) -> Pod {
    let mut p = pod(policy, app);
    if let Some(s) = p.spec.as_mut() {
        s.init_containers = Some(init);
    }
    p
}

fn sidecar(name: &str) -> Container {
    Container {
        restart_policy: Some("Always".into()),
        ..container(name)
    }
}

fn init_status(h: &Harness, name: &str) -> Value {
    let s = h.status();
    s["initContainerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_default()
}

fn condition_message(h: &Harness, t: &str) -> Value {
    let s = h.status();
    s["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == t).cloned())
        .unwrap_or_default()["message"]
        .clone()
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_in_order_each_to_its_end_before_the_app() {
    let host = FakeHost::new();
    let h = Harness::start(
        host,
        init_pod(
            "Always",
            vec![container("first"), container("second")],
            vec![container("app")],
        ),
    );
    advance(1.0).await;
    assert_eq!(h.runs("first").len(), 1);
    assert!(
        h.runs("second").is_empty(),
        "the second waits for the first"
    );
    assert!(h.runs("app").is_empty());
    assert_eq!(h.status()["phase"], "Pending");
    assert_eq!(h.condition("Initialized"), "False");
    assert_eq!(
        condition_message(&h, "Initialized"),
        "containers with incomplete status: [first second]"
    );
    assert!(init_status(&h, "first")["state"]["running"].is_object());
    assert_eq!(
        init_status(&h, "second")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        h.container_status("app")["state"]["waiting"]["reason"],
        "PodInitializing"
    );

    h.host.exit(&id("first"), Exit::Code(0));
    advance(1.0).await;
    assert_eq!(h.runs("second").len(), 1);
    assert!(h.runs("app").is_empty());
    let first = init_status(&h, "first");
    assert_eq!(first["state"]["terminated"]["reason"], "Completed");
    assert_eq!(first["ready"], true);
    assert_eq!(first["restartCount"], 0);

    h.host.exit(&id("second"), Exit::Code(0));
    advance(1.0).await;
    assert_eq!(h.runs("app").len(), 1);
    assert!(h.runs("second")[0] < h.runs("app")[0]);
    assert_eq!(h.condition("Initialized"), "True");
    assert_eq!(h.status()["phase"], "Running");
    // Completed init containers stay completed under restartPolicy Always.
    advance(30.0).await;
    assert_eq!(h.runs("first").len(), 1);
    assert_eq!(h.runs("second").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_init_container_backs_off_and_the_app_never_starts() {
    let host = FakeHost::new();
    host.behave("setup", crashing(1));
    let h = Harness::start(
        host,
        init_pod("Always", vec![container("setup")], vec![container("app")]),
    );
    advance(35.0).await;
    // Restarted at once, then after 10 s, then 20 s (as app containers are).
    let runs = h.runs("setup");
    assert_eq!(runs.len(), 4, "{:?}", gaps(&runs));
    let s = init_status(&h, "setup");
    assert_eq!(s["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(s["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(s["restartCount"], 3);
    assert!(h.runs("app").is_empty());
    assert_eq!(h.status()["phase"], "Pending");
    assert!(!h.events("BackOff").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_init_container_fails_a_never_pod_and_succeeds_on_retry_otherwise() {
    let host = FakeHost::new();
    host.behave("setup", crashing(2));
    let h = Harness::start(
        host,
        init_pod("Never", vec![container("setup")], vec![container("app")]),
    );
    advance(30.0).await;
    assert_eq!(h.runs("setup").len(), 1);
    assert!(h.runs("app").is_empty());
    assert_eq!(h.status()["phase"], "Failed");
    assert_eq!(
        init_status(&h, "setup")["state"]["terminated"]["reason"],
        "Error"
    );
    assert_eq!(h.condition("Initialized"), "False");

    // OnFailure: a failed init container runs again; once it succeeds the app starts.
    let host = FakeHost::new();
    host.behave("setup", crashing(2));
    let h = Harness::start(
        host,
        init_pod(
            "OnFailure",
            vec![container("setup")],
            vec![container("app")],
        ),
    );
    advance(1.0).await;
    assert!(h.runs("app").is_empty());
    h.host.behave("setup", crashing(0));
    advance(10.0).await;
    assert_eq!(h.runs("setup").len(), 3);
    assert_eq!(h.runs("app").len(), 1);
    assert_eq!(init_status(&h, "setup")["restartCount"], 2);
    assert_eq!(h.condition("Initialized"), "True");
}

#[tokio::test(start_paused = true)]
async fn a_sidecar_starts_first_runs_alongside_and_stops_last() {
    let host = FakeHost::new();
    // The sidecar's startup probe fails until the test says otherwise.
    host.behave(
        "proxy",
        Behaviour {
            exec_fails: Some("not yet".into()),
            on_term: Some(Exit::Signal(15)),
            ..Default::default()
        },
    );
    // The app ignores SIGTERM: SIGKILL ends it when the grace period is over.
    host.behave("app", Behaviour::default());
    let mut proxy = sidecar("proxy");
    proxy.startup_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["ready".into()]),
        }),
        ..probe(1, 30)
    });
    let h = Harness::start(
        host,
        init_pod(
            "Never",
            vec![proxy, container("setup")],
            vec![container("app")],
        ),
    );
    advance(3.0).await;
    assert_eq!(h.runs("proxy").len(), 1);
    assert!(
        h.runs("setup").is_empty(),
        "the next init container waits until the sidecar has started"
    );
    assert_eq!(init_status(&h, "proxy")["started"], false);
    h.host.set_exec_fails(&id("proxy"), None);
    advance(1.5).await;
    assert_eq!(init_status(&h, "proxy")["started"], true);
    assert_eq!(h.runs("setup").len(), 1);
    h.host.exit(&id("setup"), Exit::Code(0));
    advance(1.0).await;
    assert_eq!(h.runs("app").len(), 1);
    assert_eq!(h.status()["phase"], "Running");
    assert_eq!(init_status(&h, "proxy")["ready"], true);

    // A sidecar restarts whatever the pod's policy (Never here).
    h.host.exit(&id("proxy"), Exit::Code(1));
    advance(1.0).await;
    assert_eq!(h.runs("proxy").len(), 2);
    assert_eq!(init_status(&h, "proxy")["restartCount"], 1);

    // Deletion: the app gets SIGTERM, and the sidecar only once the app has ended.
    advance(2.0).await;
    h.delete(4);
    let h = h.finished().await;
    let app_term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    let app_kill = h.host.times_of(&Call::Kill(id("app"), Signal::Kill));
    let proxy_term = h.host.times_of(&Call::Kill(id("proxy"), Signal::Term));
    assert_eq!((app_term.len(), app_kill.len()), (1, 1));
    assert_eq!(proxy_term.len(), 1);
    assert!(
        proxy_term[0] >= app_kill[0] && proxy_term[0] > app_term[0],
        "the sidecar stops last"
    );
    assert!(
        h.host
            .times_of(&Call::Kill(id("proxy"), Signal::Kill))
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn sidecars_stop_once_the_app_containers_are_done() {
    let host = FakeHost::new();
    for name in ["a", "b"] {
        host.behave(
            name,
            Behaviour {
                on_term: Some(Exit::Signal(15)),
                ..Default::default()
            },
        );
    }
    let h = Harness::start(
        host,
        init_pod(
            "Never",
            vec![sidecar("a"), sidecar("b")],
            vec![container("app")],
        ),
    );
    advance(1.0).await;
    assert_eq!(h.runs("app").len(), 1);
    h.host.exit(&id("app"), Exit::Code(0));
    advance(2.0).await;
    let a = h.host.times_of(&Call::Kill(id("a"), Signal::Term));
    let b = h.host.times_of(&Call::Kill(id("b"), Signal::Term));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(b[0] < a[0], "the last sidecar stops first");
    assert_eq!(h.runs("a").len(), 1, "not restarted");
    assert_eq!(h.status()["phase"], "Succeeded");
}

fn pre_stop(handler: LifecycleHandler) -> Lifecycle {
    Lifecycle {
        pre_stop: Some(handler),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn pre_stop_runs_before_sigterm_and_counts_against_the_grace_period() {
    // (hook seconds, grace): SIGTERM after the hook; SIGKILL at the grace period's end, but
    // at least two seconds after SIGTERM.
    for (hook, grace, term_at, kill_at) in [(3, 5, 3, 5), (10, 5, 5, 7)] {
        let host = FakeHost::new();
        host.behave("app", Behaviour::default());
        let mut c = container("app");
        c.lifecycle = Some(pre_stop(LifecycleHandler {
            sleep: Some(SleepAction { seconds: hook }),
            ..Default::default()
        }));
        let h = Harness::start(host, pod("Always", vec![c]));
        advance(1.0).await;
        let deleted = h.delete(grace);
        let h = h.finished().await;
        let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
        let kill = h.host.times_of(&Call::Kill(id("app"), Signal::Kill));
        assert_eq!((term.len(), kill.len()), (1, 1), "hook {hook}s");
        let near = |t: Instant, secs: u64| {
            let d = t - deleted;
            d >= Duration::from_secs(secs) && d < Duration::from_millis(secs * 1000 + 100)
        };
        assert!(
            near(term[0], term_at),
            "hook {hook}s: SIGTERM after {:?}",
            term[0] - deleted
        );
        assert!(
            near(kill[0], kill_at),
            "hook {hook}s: SIGKILL after {:?}",
            kill[0] - deleted
        );
    }
}

#[tokio::test(start_paused = true)]
async fn pre_stop_runs_after_the_drain_and_a_failed_one_is_an_event() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            on_term: Some(Exit::Signal(15)),
            exec_fails: Some("cannot".into()),
            ..Default::default()
        },
    );
    let mut c = container("app");
    c.lifecycle = Some(pre_stop(LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(vec!["/bin/quit".into()]),
        }),
        ..Default::default()
    }));
    let h = Harness::start_with(
        host,
        pod("Always", vec![c]),
        options(Some(Duration::from_secs(10))),
        Some(fresh_lease("proxy-1")),
    );
    advance(1.0).await;
    h.delete(30);
    advance(2.0).await;
    let hook = Call::Exec(id("app"), vec!["/bin/quit".into()]);
    assert!(
        h.host.times_of(&hook).is_empty(),
        "no preStop before the drain"
    );
    let acked_at = Instant::now();
    let mut acked = h.tx.borrow().clone().expect("the pod");
    acked.metadata.annotations = Some(BTreeMap::from([(
        baton_api::drain::ack_annotation("proxy-1"),
        "true".to_string(),
    )]));
    h.tx.send_replace(Some(acked));
    let h = h.finished().await;
    let ran = h.host.times_of(&hook);
    let term = h.host.times_of(&Call::Kill(id("app"), Signal::Term));
    assert_eq!(ran.len(), 1);
    assert!(ran[0] >= acked_at && term[0] >= ran[0]);
    let failed = h.events("FailedPreStopHook");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0],
        format!(
            "Exec lifecycle hook ([/bin/quit]) for Container \"app\" in Pod \"web_default({UID})\" failed - error: command '/bin/quit' exited with a non-zero code: cannot, message: \"cannot\""
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_start_hook_kills_the_container() {
    let host = FakeHost::new();
    host.behave(
        "app",
        Behaviour {
            on_term: Some(Exit::Signal(15)),
            ..Default::default()
        },
    );
    let mut c = container("app");
    c.lifecycle = Some(Lifecycle {
        post_start: Some(LifecycleHandler {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(9000),
                path: Some("/started".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let h = Harness::start(host, pod("Always", vec![c]));
    advance(1.0).await;
    // Nothing listens on 9000: the hook fails, the container gets SIGTERM and restarts.
    assert!(
        !h.host
            .times_of(&Call::Kill(id("app"), Signal::Term))
            .is_empty()
    );
    assert!(h.runs("app").len() >= 2);
    assert_eq!(h.events("FailedPostStartHook")[0], "PostStartHook failed");
    // Once something answers (any status: only a missing answer fails a hook), it stays up.
    h.host.listen(SocketAddr::new(h.pod_ip().into(), 9000), 500);
    advance(25.0).await;
    let runs = h.runs("app").len();
    advance(60.0).await;
    assert_eq!(h.runs("app").len(), runs);
    assert!(h.container_status("app")["state"]["running"].is_object());
}

#[tokio::test(start_paused = true)]
async fn the_termination_message_comes_from_its_file_or_the_log() {
    let host = FakeHost::new();
    host.behave("app", Behaviour::default());
    let h = Harness::start(host, pod("Never", vec![container("app")]));
    advance(1.0).await;
    let file = pod_dir().join("app").join("termination-log");
    assert_eq!(
        h.host.file(&file),
        Some(Vec::new()),
        "an empty file per run"
    );
    let config: Value = serde_json::from_slice(
        &h.host
            .file(&pod_dir().join("app/bundle/config.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let mounted = config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["destination"] == "/dev/termination-log" && m["source"] == json!(file));
    assert!(mounted, "{}", config["mounts"]);
    let long = "x".repeat(5000) + "the end";
    h.host.put_file(&file, long.as_bytes());
    h.host.exit(&id("app"), Exit::Code(0));
    advance(1.0).await;
    let message = h.container_status("app")["state"]["terminated"]["message"].clone();
    assert_eq!(message.as_str().map(str::len), Some(4096));
    assert!(message.as_str().is_some_and(|m| m.ends_with("the end")));

    // FallbackToLogsOnError: a failed container with nothing in its file shows its log's end.
    let host = FakeHost::new();
    host.behave("app", Behaviour::default());
    let mut c = container("app");
    c.termination_message_policy = Some("FallbackToLogsOnError".into());
    let h = Harness::start(host, pod("Never", vec![c]));
    advance(1.0).await;
    let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let log_file = PathBuf::from("/data/node/logs")
        .join(format!("default_web_{UID}"))
        .join("app/0.log");
    h.host.put_file(&log_file, log.as_bytes());
    h.host.exit(&id("app"), Exit::Code(3));
    advance(1.0).await;
    let want: String = (21..=100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        h.container_status("app")["state"]["terminated"]["message"],
        want
    );
}
