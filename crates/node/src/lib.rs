//! Baton's node agent (the kubelet's part): registers this machine as a Node and runs the pods
//! bound to it as real OCI containers with `runc`, each pod in its own network namespace on a
//! bridge, with probes, restarts, logs and graceful deletion. It talks to the API server only
//! through the Kubernetes API (the `kube` client), like a kubelet on another machine would.
//!
//! # Layout
//! - [`node`]: the Node object, its Lease and status heartbeats.
//! - [`pod`]: the per-pod worker: network, containers, restarts, probes, status, deletion;
//!   a pure decision step (`pod::decide`, `pod::status`) and the I/O that carries it out.
//! - [`bundle`]: the OCI runtime config of a container (pure: the pod spec merged with the image).
//! - [`security`]: the container's confinement from its `securityContext` over containerd's
//!   defaults; [`seccomp`]: the runtime-default syscall profile, as data.
//! - [`probe`]: httpGet / tcpSocket / exec checks and their thresholds.
//! - [`ipam`]: pod addresses from the node's pod CIDR.
//! - [`host`]: runc, netns/veth, mounts, cgroups, the agent's files and the probes'
//!   connections behind the [`host::Host`] trait (with an in-memory fake for tests).
//! - [`shim`]: the per-container monitor: owns the container's stdio (logs, attach) and
//!   records exit codes while no agent runs; [`attach`]: the protocol of its attach socket.
//! - [`server`]: the kubelet's HTTP endpoints (container logs, exec, port-forward).
//! - [`stats`]: `/stats/summary`, CPU and memory of the node and its containers.
//! - [`logs`]: container log files: their CRI records, rotation by size (`logs::rotate`),
//!   reading them back (tail, limit, follow).
//! - [`reset`]: `baton reset`, removing what the agent made on this machine.
//! - [`dns`]: a pod's `/etc/resolv.conf`, `/etc/hosts` and hostname, as the kubelet writes them.
//! - [`volume`]: pod volumes (emptyDir, configMap, secret, downwardAPI, projected, hostPath)
//!   and the containers' bind mounts of them.

pub mod attach;
pub mod bundle;
pub mod cgroup;
pub mod disk;
pub mod dns;
pub mod host;
pub mod images;
pub mod ipam;
pub mod logs;
pub mod node;
pub mod pod;
pub mod probe;
pub mod reset;
pub mod seccomp;
pub mod security;
pub mod server;
pub mod shim;
pub mod stats;
pub mod volume;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton_api::events::Recorder;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

pub use bundle::ImageRunConfig;
pub use ipam::Cidr;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The agent's own directory (`<data-dir>/node`): pods, logs, runc state.
    pub data_dir: PathBuf,
    pub node_name: String,
    /// The node's InternalIP (where its kubelet endpoint listens).
    pub node_ip: Ipv4Addr,
    pub pod_cidr: Cidr,
    /// The Linux bridge pods attach to.
    pub bridge: String,
    /// Where the kubelet endpoints listen (port 0: any free port, published in the Node).
    pub kubelet_listen: SocketAddr,
    /// The bearer token callers of the kubelet endpoints must present.
    pub token: String,
    /// How long a deleted pod's containers wait, before SIGTERM, for every traffic agent to
    /// confirm it no longer routes to the pod (`baton_api::drain`); `None`: no wait, as with
    /// the kubelet.
    pub drain_timeout: Option<std::time::Duration>,
    /// Cluster DNS address, cluster domain and the host's resolv.conf, for the pods' files.
    pub dns: dns::DnsOptions,
    /// The filesystems watched for `DiskPressure` and what is kept free on them.
    pub disks: disk::Disks,
}

/// An image ready to run: its unpacked root filesystem and config.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// What `imageID` shows, e.g. `127.0.0.1:5000/hello@sha256:…`.
    pub image_id: String,
    /// The read-only, flattened root filesystem (overlay lower dir).
    pub rootfs: PathBuf,
    pub config: ImageRunConfig,
    /// The image's size in bytes (config and layers, as registries count it).
    pub size: u64,
}

/// Why an image is not available, in the kubelet's words.
#[derive(Clone, Debug)]
pub struct PullError {
    /// `ErrImagePull`, `ErrImageNeverPull`, `InvalidImageName`, …
    pub reason: String,
    pub message: String,
}

/// Where images come from: the image store (`baton-image`) in the server.
#[async_trait]
pub trait Images: Send + Sync + 'static {
    /// Makes `image` available by the pull `policy` (`Always`/`IfNotPresent`/`Never`, empty
    /// for the default rule), with registry credentials from docker config JSON documents.
    async fn ensure(
        &self,
        image: &str,
        policy: &str,
        auth: &[Vec<u8>],
    ) -> Result<PulledImage, PullError>;

    /// Whether [`Images::ensure`] by `policy` will ask the registry for `image` (it is not
    /// present, or the policy is `Always`): the kubelet's "Pulling" event, not "already
    /// present".
    async fn pulls(&self, image: &str, policy: &str) -> bool;
}

/// The agent's tmpfs under its data dir: what must never reach a disk (containers' runtime
/// configs, with secrets' values in their environment).
pub const RUN_DIR: &str = "run";

/// The size of [`RUN_DIR`]'s tmpfs (a config is a few KiB).
const RUN_DIR_SIZE: u64 = 64 << 20;

/// Shared state of the agent's tasks.
pub struct Agent {
    pub(crate) client: Client,
    pub(crate) host: Arc<dyn host::Host>,
    pub(crate) images: Arc<dyn Images>,
    /// What pod workers ask of the API server.
    pub(crate) api: Arc<dyn pod::PodApi>,
    pub(crate) opts: AgentOptions,
    ipam: Mutex<ipam::Ipam>,
    workers: Mutex<HashMap<String, watch::Sender<Option<Pod>>>>,
    /// The traffic agents' Leases (`baton_api::drain`), watched once the agent starts.
    pub(crate) traffic_leases: std::sync::OnceLock<Store<Lease>>,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("setting up the pod bridge {bridge}: {source}")]
    Bridge {
        bridge: String,
        #[source]
        source: host::HostError,
    },
    #[error("serving the kubelet endpoints on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("preparing {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting the agent's tmpfs at {path}: {source}")]
    RunDir {
        path: PathBuf,
        #[source]
        source: host::HostError,
    },
}

impl Agent {
    /// An agent recording its events (pods' and the Node's) through `events`.
    pub fn new(
        client: Client,
        host: Arc<dyn host::Host>,
        images: Arc<dyn Images>,
        opts: AgentOptions,
        events: Recorder,
    ) -> Arc<Self> {
        let api = Arc::new(pod::api::KubePodApi {
            client: client.clone(),
            events,
        });
        Self::with_api(client, host, images, api, opts)
    }

    /// An agent whose pod workers talk to `api` instead of through `client` (tests).
    pub fn with_api(
        client: Client,
        host: Arc<dyn host::Host>,
        images: Arc<dyn Images>,
        api: Arc<dyn pod::PodApi>,
        opts: AgentOptions,
    ) -> Arc<Self> {
        Arc::new(Agent {
            ipam: Mutex::new(ipam::Ipam::new(opts.pod_cidr)),
            client,
            host,
            images,
            api,
            opts,
            workers: Mutex::new(HashMap::new()),
            traffic_leases: std::sync::OnceLock::new(),
        })
    }

    pub fn options(&self) -> &AgentOptions {
        &self.opts
    }

    pub(crate) fn allocate_ip(&self, uid: &str) -> Option<Ipv4Addr> {
        self.ipam.lock().ok()?.allocate(uid)
    }

    /// Claims `ip` for the pod `uid`; false when another pod holds it.
    pub(crate) fn reserve_ip(&self, ip: Ipv4Addr, uid: &str) -> bool {
        self.ipam.lock().is_ok_and(|mut i| i.reserve(ip, uid))
    }

    /// Frees the addresses the pod `uid` holds.
    pub(crate) fn release_ips(&self, uid: &str) {
        if let Ok(mut i) = self.ipam.lock() {
            i.release(uid);
        }
    }

    /// Before any pod is admitted: claims for each pod this agent ran before its saved address
    /// and the address its network namespace has, so that no new pod is given one of them.
    pub async fn recover_addresses(&self) {
        let pods_dir = self.opts.data_dir.join("pods");
        for uid in self.host.list_dir(&pods_dir).await {
            let saved = pod::load_saved(&*self.host, &pods_dir.join(&uid)).await;
            if let Some(ip) = saved.and_then(|s| s.ip)
                && !self.reserve_ip(ip, &uid)
            {
                tracing::warn!(uid = %uid, %ip, "two pods saved the same address");
            }
        }
        for ns in self.host.list_netns().await.unwrap_or_default() {
            let Some(uid) = ns.strip_prefix("baton-") else {
                continue;
            };
            if let Some(ip) = self.host.pod_address(&ns).await
                && !self.reserve_ip(ip, uid)
            {
                tracing::warn!(netns = %ns, %ip, "a network namespace has another pod's address");
            }
        }
        self.host.record_connection_ages().await;
        // Connections to pods that went while no agent ran (a killed server, `baton reset`,
        // an earlier cluster on this data dir's addresses) were never forgotten: a stale
        // entry, established for days, would capture a new connection that reuses its client
        // port and send it, with the old NAT, to whichever pod holds that address now.
        let stale: Vec<Ipv4Addr> = {
            let tracked = self.host.tracked_addresses().await;
            let Ok(ipam) = self.ipam.lock() else { return };
            tracked
                .into_iter()
                .filter(|ip| ipam.assignable(*ip) && ipam.holder(*ip).is_none())
                .collect()
        };
        for ip in stale {
            tracing::debug!(%ip, "forgetting connections to an address no pod holds");
            self.host.forget_connections(ip).await;
        }
    }

    pub(crate) fn forget_worker(&self, uid: &str) {
        if let Ok(mut w) = self.workers.lock() {
            w.remove(uid);
        }
    }

    /// Hands the latest pod object to its worker, starting one if needed.
    fn dispatch(self: &Arc<Self>, uid: &str, pod: Option<Pod>) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        if let Some(tx) = workers.get(uid) {
            let _ = tx.send(pod);
            return;
        }
        if pod.is_none() && !self.opts.data_dir.join("pods").join(uid).exists() {
            return;
        }
        let (tx, rx) = watch::channel(pod);
        workers.insert(uid.to_string(), tx);
        tokio::spawn(pod::worker(self.clone(), uid.to_string(), rx));
    }

    /// Removes what pods no longer in the API left behind: saved pod dirs, runc containers and
    /// network namespaces of ours. Runs once the first list of pods is known.
    pub(crate) async fn clean_orphans(self: &Arc<Self>, live: &HashSet<String>) {
        let pods_dir = self.opts.data_dir.join("pods");
        for uid in self.host.list_dir(&pods_dir).await {
            if live.contains(&uid) {
                continue;
            }
            // A pod dir with a worker gets cleaned by that worker.
            if self.workers.lock().is_ok_and(|w| w.contains_key(&uid)) {
                continue;
            }
            let saved = pod::load_saved(&*self.host, &pods_dir.join(&uid))
                .await
                .unwrap_or_default();
            tracing::info!(pod = %saved.name, uid = %uid, "removing an orphaned pod");
            let names = saved.containers.keys().cloned().collect();
            let runs: Vec<_> = self.host.list().await.unwrap_or_default();
            for c in runs.iter().filter(|c| c.id.starts_with(&uid)) {
                let _ = self.host.kill(&c.id, host::Signal::Kill).await;
            }
            self.remove_pod_files(&uid, &saved, names).await;
        }
        for c in self.host.list().await.unwrap_or_default() {
            let uid = c.id.get(..36).unwrap_or("");
            if !live.contains(uid) && !self.workers.lock().is_ok_and(|w| w.contains_key(uid)) {
                tracing::info!(container = %c.id, "removing an orphaned container");
                let _ = self.host.kill(&c.id, host::Signal::Kill).await;
                let _ = self.host.delete(&c.id).await;
            }
        }
        for ns in self.host.list_netns().await.unwrap_or_default() {
            if let Some(uid) = ns.strip_prefix("baton-")
                && !live.contains(uid)
                && !self.workers.lock().is_ok_and(|w| w.contains_key(uid))
            {
                let _ = self.host.delete_pod_network(&ns).await;
            }
        }
    }
}

/// Starts the agent: bridge, kubelet endpoints, Node registration, heartbeats and the pod
/// watch. Returns once the node is registered; the work goes on in spawned tasks.
pub async fn start(
    client: Client,
    host: Arc<dyn host::Host>,
    images: Arc<dyn Images>,
    opts: AgentOptions,
) -> Result<Arc<Agent>, AgentError> {
    for d in ["pods", "logs", "runc"] {
        let path = opts.data_dir.join(d);
        std::fs::create_dir_all(&path).map_err(|source| AgentError::DataDir { path, source })?;
    }
    host.ensure_bridge(&opts.bridge, opts.pod_cidr.gateway(), opts.pod_cidr.prefix)
        .await
        .map_err(|source| AgentError::Bridge {
            bridge: opts.bridge.clone(),
            source,
        })?;
    // Containers started by runc are reparented to us when runc exits: being their
    // subreaper is how their exit codes reach us.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a subreaper: exit codes will be unknown");
    }
    // The kubelet's one event recorder: pods' events and the Node's.
    let events = Recorder::new(client.clone(), "kubelet", Some(&opts.node_name));
    let agent = Agent::new(client.clone(), host, images, opts.clone(), events.clone());
    let listener = tokio::net::TcpListener::bind(opts.kubelet_listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: opts.kubelet_listen,
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(server::serve(listener, agent.clone()));
    node::register(&client, &opts, port)
        .await
        .map_err(|source| AgentError::Register {
            node: opts.node_name.clone(),
            source,
        })?;
    tokio::spawn(node::heartbeat(client.clone(), opts.clone(), port, events));
    if opts.drain_timeout.is_some() {
        let _ = agent.traffic_leases.set(watch_traffic_leases(&client));
    }
    agent.recover_addresses().await;
    // Containers' runtime configs hold secrets' values: they are written on a tmpfs only.
    let run_dir = opts.data_dir.join(RUN_DIR);
    if !agent.host.is_mounted(&run_dir).await {
        let mounted = async {
            agent.host.create_dir_all(&run_dir).await?;
            agent.host.mount_tmpfs(&run_dir, Some(RUN_DIR_SIZE)).await
        };
        mounted.await.map_err(|source| AgentError::RunDir {
            path: run_dir.clone(),
            source,
        })?;
    }
    tokio::spawn(watch_pods(agent.clone()));
    tracing::info!(node = %opts.node_name, pod_cidr = %opts.pod_cidr, kubelet_port = port, "node agent started");
    Ok(agent)
}

/// A watch-fed cache of the traffic agents' Leases.
fn watch_traffic_leases(client: &Client) -> Store<Lease> {
    let (store, writer) = reflector::store();
    let api: Api<Lease> = Api::namespaced(client.clone(), baton_api::drain::LEASE_NAMESPACE);
    let cfg = watcher::Config::default().labels(baton_api::drain::PROXY_LABEL);
    let stream = reflector::reflector(writer, watcher::watcher(api, cfg)).default_backoff();
    tokio::spawn(stream.for_each(|_| async {}));
    store
}

/// The holders of traffic Leases renewed within their duration.
pub(crate) fn fresh_holders(leases: &[Arc<Lease>]) -> Vec<String> {
    let now = baton_api::clock::now();
    leases
        .iter()
        .filter_map(|l| {
            let spec = l.spec.as_ref()?;
            let renewed = spec.renew_time.as_ref()?.0;
            let secs = i64::from(
                spec.lease_duration_seconds
                    .unwrap_or(baton_api::drain::LEASE_SECONDS),
            );
            (renewed + k8s_openapi::jiff::SignedDuration::from_secs(secs) > now)
                .then(|| spec.holder_identity.clone())
                .flatten()
        })
        .collect()
}

/// Feeds every pod bound to this node to its worker.
async fn watch_pods(agent: Arc<Agent>) {
    let pods: Api<Pod> = Api::all(agent.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", agent.opts.node_name));
    let mut stream = watcher::watcher(pods, cfg).boxed();
    let mut listing: HashSet<String> = HashSet::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut first = true;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(p)) => {
                if let Some(uid) = p.metadata.uid.clone() {
                    listing.insert(uid.clone());
                    agent.dispatch(&uid, Some(p));
                }
            }
            Ok(watcher::Event::InitDone) => {
                for gone in known.difference(&listing) {
                    agent.dispatch(gone, None);
                }
                known = listing.clone();
                if first {
                    first = false;
                    agent.clean_orphans(&known).await;
                }
            }
            Ok(watcher::Event::Apply(p)) => {
                if let Some(uid) = p.metadata.uid.clone() {
                    known.insert(uid.clone());
                    agent.dispatch(&uid, Some(p));
                }
            }
            Ok(watcher::Event::Delete(p)) => {
                if let Some(uid) = p.metadata.uid.clone() {
                    known.remove(&uid);
                    agent.dispatch(&uid, None);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "pod watch error; the watcher retries");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
