//! An in-memory machine for tests: containers are records whose processes end when a test
//! says so (or as their [`Behaviour`] scripts it when they start or get a signal), files live
//! in a map, network namespaces and mounts in sets, and every call is logged with the tokio
//! time it was made at — so a test under `tokio::time::pause` reads exactly when the worker
//! restarted, signalled or removed something, without root, runc or real sleeps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::process::Command;
use tokio::time::Instant;

use super::{ExecOutput, Exit, Host, HostError, PodNet, RuncContainer, Signal};

/// One thing the worker asked of the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Run(String),
    Kill(String, Signal),
    Delete(String),
    CreateNetwork(String),
    DeleteNetwork(String),
    Mount(PathBuf),
    Unmount(PathBuf),
    ForgetConnections(Ipv4Addr),
    RemoveCgroup(String),
    Exec(String, Vec<String>),
}

/// How the containers of one name behave.
#[derive(Clone, Debug, Default)]
pub(crate) struct Behaviour {
    /// The process exits with this code as soon as it starts.
    pub exit_at_start: Option<i32>,
    /// What SIGTERM does: `None`, the process ignores it (only SIGKILL ends it).
    pub on_term: Option<Exit>,
    /// `runc run` fails with this message.
    pub start_error: Option<String>,
    /// Exec probes in it fail with this output.
    pub exec_fails: Option<String>,
}

#[derive(Debug)]
struct FakeContainer {
    pid: i32,
    bundle: PathBuf,
    exit: Option<Exit>,
    on_term: Option<Exit>,
    exec_fails: Option<String>,
}

#[derive(Default)]
struct State {
    containers: BTreeMap<String, FakeContainer>,
    next_pid: i32,
    calls: Vec<(Instant, Call)>,
    files: BTreeMap<PathBuf, Vec<u8>>,
    mounts: BTreeSet<PathBuf>,
    /// Volume directories made.
    dirs: BTreeSet<PathBuf>,
    /// Network namespaces and the address of their eth0.
    netns: BTreeMap<String, Option<Ipv4Addr>>,
    /// By container name (the part of the id after the pod uid).
    behaviours: HashMap<String, Behaviour>,
    /// Addresses that accept connections, with the status their HTTP GETs answer.
    listening: HashMap<SocketAddr, u16>,
    oom: BTreeSet<String>,
    /// Where conntrack entries lead.
    tracked: Vec<Ipv4Addr>,
}

/// The fake machine. Cheap to share: tests keep an `Arc` and hand a clone to the agent.
#[derive(Default)]
pub(crate) struct FakeHost {
    state: Mutex<State>,
}

/// The container name in a container id `<uid>-<name>` (uids are 36 characters).
fn name_of(id: &str) -> &str {
    id.get(37..).unwrap_or(id)
}

impl FakeHost {
    pub fn new() -> Self {
        let host = FakeHost::default();
        host.lock().next_pid = 1000;
        host
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock fails anyway; go on with its state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, call: Call) {
        self.lock().calls.push((Instant::now(), call));
    }

    /// Scripts how containers named `name` behave from their next start on.
    pub fn behave(&self, name: &str, b: Behaviour) {
        self.lock().behaviours.insert(name.to_string(), b);
    }

    /// Ends the running container `id` with `exit`.
    pub fn exit(&self, id: &str, exit: Exit) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.exit.get_or_insert(exit);
        }
    }

    /// A container that runc runs but this agent did not start (one from before a restart).
    pub fn add_running(&self, id: &str, pid: i32) {
        self.lock().containers.insert(
            id.to_string(),
            FakeContainer {
                pid,
                bundle: PathBuf::from("/adopted").join(id),
                exit: None,
                on_term: Some(Exit::Signal(15)),
                exec_fails: None,
            },
        );
    }

    /// Makes `addr` accept connections, answering HTTP GETs with `status`.
    pub fn listen(&self, addr: SocketAddr, status: u16) {
        self.lock().listening.insert(addr, status);
    }

    /// Makes exec probes in the running container `id` fail (`Some`) or succeed again.
    pub fn set_exec_fails(&self, id: &str, output: Option<&str>) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.exec_fails = output.map(str::to_string);
        }
    }

    /// Marks the cgroup `path` as one the OOM killer killed in.
    pub fn oom(&self, path: &str) {
        self.lock().oom.insert(path.to_string());
    }

    /// When `call` was made, each time.
    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.iter().map(|(_, c)| c.clone()).collect()
    }

    pub fn times_of(&self, call: &Call) -> Vec<Instant> {
        self.lock()
            .calls
            .iter()
            .filter(|(_, c)| c == call)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Whether the container `id` exists and runs.
    pub fn running(&self, id: &str) -> bool {
        self.lock()
            .containers
            .get(id)
            .is_some_and(|c| c.exit.is_none())
    }

    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).cloned()
    }

    pub fn put_file(&self, path: &Path, body: &[u8]) {
        self.lock().files.insert(path.to_path_buf(), body.to_vec());
    }

    /// Whether any file lives under `dir`.
    pub fn has_files_under(&self, dir: &Path) -> bool {
        self.lock().files.keys().any(|p| p.starts_with(dir))
    }

    /// A network namespace left by an earlier run (with `ip` on its eth0).
    pub fn add_netns(&self, name: &str, ip: Option<Ipv4Addr>) {
        self.lock().netns.insert(name.to_string(), ip);
    }

    pub fn netns(&self) -> Vec<String> {
        self.lock().netns.keys().cloned().collect()
    }

    /// Conntrack entries lead to `ips`.
    pub fn track(&self, ips: &[Ipv4Addr]) {
        self.lock().tracked = ips.to_vec();
    }
}

#[async_trait]
impl Host for FakeHost {
    async fn ensure_bridge(&self, _: &str, _: Ipv4Addr, _: u8) -> Result<(), HostError> {
        Ok(())
    }

    async fn create_pod_network(&self, net: &PodNet<'_>) -> Result<(), HostError> {
        self.log(Call::CreateNetwork(net.netns.to_string()));
        // Like the real one: an existing namespace is left as it is.
        self.lock()
            .netns
            .entry(net.netns.to_string())
            .or_insert(Some(net.ip));
        Ok(())
    }

    async fn delete_pod_network(&self, netns: &str) -> Result<(), HostError> {
        self.log(Call::DeleteNetwork(netns.to_string()));
        self.lock().netns.remove(netns);
        Ok(())
    }

    async fn forget_connections(&self, ip: Ipv4Addr) {
        self.log(Call::ForgetConnections(ip));
    }

    async fn tracked_addresses(&self) -> Vec<Ipv4Addr> {
        self.lock().tracked.clone()
    }

    async fn list_netns(&self) -> Result<Vec<String>, HostError> {
        Ok(self.netns())
    }

    async fn pod_address(&self, netns: &str) -> Option<Ipv4Addr> {
        self.lock().netns.get(netns).copied().flatten()
    }

    async fn mount_overlay(
        &self,
        _lower: &Path,
        _upper: &Path,
        _work: &Path,
        target: &Path,
    ) -> Result<(), HostError> {
        self.log(Call::Mount(target.to_path_buf()));
        self.lock().mounts.insert(target.to_path_buf());
        Ok(())
    }

    async fn unmount(&self, target: &Path) -> Result<(), HostError> {
        if self.lock().mounts.remove(target) {
            self.log(Call::Unmount(target.to_path_buf()));
        }
        Ok(())
    }

    async fn run(
        &self,
        id: &str,
        bundle: &Path,
        log: &Path,
        _stdio: crate::shim::Stdio,
    ) -> Result<i32, HostError> {
        self.log(Call::Run(id.to_string()));
        let mut s = self.lock();
        // The monitor creates the log.
        s.files.entry(log.to_path_buf()).or_default();
        let b = s.behaviours.get(name_of(id)).cloned().unwrap_or_default();
        if let Some(message) = b.start_error {
            return Err(HostError::Command {
                what: "runc run".into(),
                message,
            });
        }
        s.next_pid += 1;
        let pid = s.next_pid;
        s.containers.insert(
            id.to_string(),
            FakeContainer {
                pid,
                bundle: bundle.to_path_buf(),
                exit: b.exit_at_start.map(Exit::Code),
                on_term: b.on_term,
                exec_fails: b.exec_fails,
            },
        );
        Ok(pid)
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), HostError> {
        self.log(Call::Kill(id.to_string(), signal));
        let mut s = self.lock();
        let Some(c) = s.containers.get_mut(id).filter(|c| c.exit.is_none()) else {
            return Err(HostError::Command {
                what: "runc kill".into(),
                message: "container not running".into(),
            });
        };
        c.exit = match signal {
            Signal::Term => c.on_term,
            Signal::Kill => Some(Exit::Signal(9)),
        };
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), HostError> {
        self.log(Call::Delete(id.to_string()));
        self.lock().containers.remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RuncContainer>, HostError> {
        Ok(self
            .lock()
            .containers
            .iter()
            .map(|(id, c)| RuncContainer {
                id: id.clone(),
                pid: c.pid,
                status: if c.exit.is_none() {
                    "running"
                } else {
                    "stopped"
                }
                .into(),
                bundle: c.bundle.clone(),
            })
            .collect())
    }

    fn try_exit(&self, pid: i32, _bundle: &Path) -> Option<Exit> {
        match self.lock().containers.values().find(|c| c.pid == pid) {
            Some(c) => c.exit,
            None => Some(Exit::Unknown),
        }
    }

    fn exec_command(&self, _id: &str, cmd: &[String], _tty: bool) -> Command {
        let mut c = Command::new("false");
        c.args(cmd);
        c
    }

    async fn exec(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, String> {
        self.log(Call::Exec(id.to_string(), cmd.to_vec()));
        let s = self.lock();
        let c = s
            .containers
            .get(id)
            .filter(|c| c.exit.is_none())
            .ok_or("container not running")?;
        Ok(ExecOutput {
            success: c.exec_fails.is_none(),
            output: c.exec_fails.clone().unwrap_or_default(),
        })
    }

    async fn tcp_connect(&self, addr: SocketAddr) -> Result<(), String> {
        if self.lock().listening.contains_key(&addr) {
            Ok(())
        } else {
            Err("connection refused".into())
        }
    }

    async fn http_get(&self, addr: SocketAddr, _path: &str) -> Result<u16, String> {
        self.lock()
            .listening
            .get(&addr)
            .copied()
            .ok_or_else(|| format!("dial tcp {addr}: connect: connection refused"))
    }

    async fn remove_cgroup(&self, path: &str) {
        self.log(Call::RemoveCgroup(path.to_string()));
    }

    async fn oom_killed(&self, path: &str) -> bool {
        self.lock().oom.contains(path)
    }

    async fn resolv_conf(&self, _path: &Path) -> String {
        "nameserver 10.0.0.53\n".into()
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        self.file(path).ok_or_else(|| {
            HostError::io(
                format!("reading {}", path.display()),
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    async fn write_file(&self, path: &Path, body: &[u8]) -> Result<(), HostError> {
        self.put_file(path, body);
        Ok(())
    }

    async fn create_dir_all(&self, _path: &Path) -> Result<(), HostError> {
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> Vec<String> {
        let s = self.lock();
        let names: BTreeSet<String> = s
            .files
            .keys()
            .chain(s.mounts.iter())
            .chain(s.dirs.iter())
            .filter_map(|p| p.strip_prefix(path).ok()?.iter().next())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.into_iter().collect()
    }

    async fn remove_dir_all(&self, path: &Path) {
        let mut s = self.lock();
        s.files.retain(|p, _| !p.starts_with(path));
        s.dirs.retain(|p| !p.starts_with(path));
    }

    async fn remove_file(&self, path: &Path) {
        self.lock().files.remove(path);
    }

    /// The lengths of the files under `path` (the fake's blocks are bytes).
    async fn disk_usage(&self, path: &Path) -> u64 {
        self.lock()
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(_, body)| body.len() as u64)
            .sum()
    }

    async fn is_mounted(&self, path: &Path) -> bool {
        self.lock().mounts.contains(path)
    }

    async fn create_message_file(&self, path: &Path) -> Result<(), HostError> {
        self.put_file(path, b"");
        Ok(())
    }

    async fn attach(&self, _bundle: &Path) -> Result<tokio::net::UnixStream, HostError> {
        Err(HostError::Command {
            what: "attach".into(),
            message: "the fake host has no container stdio".into(),
        })
    }

    async fn read_tail(&self, path: &Path, max: usize) -> Vec<u8> {
        let body = self.file(path).unwrap_or_default();
        body[body.len().saturating_sub(max)..].to_vec()
    }

    /// The link reads as its target did when it was made (the fake has no links).
    async fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError> {
        let body = self.lock().files.get(target).cloned().unwrap_or_default();
        self.put_file(link, &body);
        Ok(())
    }

    async fn mount_tmpfs(&self, target: &Path, _size: Option<u64>) -> Result<(), HostError> {
        if self.lock().mounts.insert(target.to_path_buf()) {
            self.log(Call::Mount(target.to_path_buf()));
        }
        Ok(())
    }

    async fn create_volume_dir(
        &self,
        path: &Path,
        _: u32,
        _: Option<u32>,
    ) -> Result<(), HostError> {
        self.lock().dirs.insert(path.to_path_buf());
        Ok(())
    }

    /// The files land at `<dir>/<path>` (what a reader through the links sees).
    async fn write_projection(
        &self,
        dir: &Path,
        files: &crate::volume::Payload,
        _gid: Option<u32>,
    ) -> Result<bool, HostError> {
        let mut s = self.lock();
        let before: BTreeMap<PathBuf, Vec<u8>> = s
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect();
        let after: BTreeMap<PathBuf, Vec<u8>> = files
            .iter()
            .map(|(p, f)| (dir.join(p), f.data.clone()))
            .collect();
        if before == after {
            return Ok(false);
        }
        s.files.retain(|p, _| !p.starts_with(dir));
        s.files.extend(after);
        Ok(true)
    }

    /// A path exists when a file is there or below it (or a volume dir was made there).
    async fn check_host_path(&self, path: &Path, kind: &str) -> Result<(), String> {
        let exists = self.has_files_under(path);
        let is_file = self.file(path).is_some();
        let shown = path.display();
        match kind {
            "Directory" if !exists || is_file => Err(format!(
                "hostPath type check failed: {shown} is not a directory"
            )),
            "File" if !is_file => Err(format!("hostPath type check failed: {shown} is not a file")),
            _ => Ok(()),
        }
    }

    /// A subPath with a `..` element is refused (the real one refuses what resolves outside).
    async fn bind_subpath(&self, _volume: &Path, sub: &str, target: &Path) -> Result<(), String> {
        if sub.split('/').any(|e| e == "..") {
            return Err(format!("subpath {sub:?} not within volume path"));
        }
        if self.lock().mounts.insert(target.to_path_buf()) {
            self.log(Call::Mount(target.to_path_buf()));
        }
        Ok(())
    }
}
