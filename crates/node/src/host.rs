//! Everything the agent asks of the machine — runc, network namespaces and veths, overlay
//! mounts, cgroups, process exits — behind one trait, [`Host`], so the pod logic is tested
//! with a fake and the real machine is only touched by [`LinuxHost`] (tested as root).
//!
//! `LinuxHost` drives Debian's `runc` and iproute2's `ip` as commands (their CLIs are the
//! stable interface both projects document) and mounts with `nix`. The agent's own files
//! (`pods/<uid>/state.json`, bundles, `/etc` files of pods) and the probes' connections go
//! through the trait too, so a test sees every effect a pod worker has. [`fake::FakeHost`]
//! is the in-memory machine of the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::process::Command;

/// A failed host operation, with the command's own words.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl HostError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HostError::Io {
            what: what.into(),
            source,
        }
    }
}

/// How a container process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Gone, but not our child (adopted after a restart): its status is unknown.
    Unknown,
}

impl Exit {
    /// The exit code Kubernetes shows (128 + signal for signals).
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
            Exit::Unknown => 137,
        }
    }
}

/// A signal the agent sends to a container's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: please stop.
    Term,
    /// SIGKILL: stop now.
    Kill,
}

impl Signal {
    /// The name runc takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// How a command run inside a container (an exec probe) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub success: bool,
    /// Its stdout and stderr, for the probe's failure message.
    pub output: String,
}

/// A container runc knows about.
#[derive(Clone, Debug)]
pub struct RuncContainer {
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
}

/// The pod network of one pod.
#[derive(Clone, Debug)]
pub struct PodNet<'a> {
    pub netns: &'a str,
    pub veth: &'a str,
    pub bridge: &'a str,
    pub ip: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: std::net::Ipv4Addr,
}

#[async_trait]
pub trait Host: Send + Sync + 'static {
    /// Creates the bridge with the gateway address, if missing.
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: std::net::Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError>;
    /// Creates the pod's network namespace and veth, idempotently.
    async fn create_pod_network(&self, net: &PodNet<'_>) -> Result<(), HostError>;
    /// Deletes the namespace (and with it the veth pair); absent is fine.
    async fn delete_pod_network(&self, netns: &str) -> Result<(), HostError>;
    /// Forgets the host's connection-tracking entries of connections to a removed pod's
    /// address ([`CAPTURING_TCP_STATES`], and UDP). A half-closed entry (FIN_WAIT, CLOSE_WAIT,
    /// LAST_ACK) left by a pod that went away mid-close would otherwise capture a new
    /// connection that reuses its client port and send it, with the old NAT, to an address
    /// nobody answers any more.
    async fn forget_connections(&self, ip: std::net::Ipv4Addr);
    /// The addresses that conntrack entries [`Host::forget_connections`] would delete lead
    /// to, for forgetting those no pod holds any more.
    async fn tracked_addresses(&self) -> Vec<std::net::Ipv4Addr>;
    /// Has conntrack record when each connection began (`nf_conntrack_timestamp`), which
    /// [`Host::young_connections`] reads. Entries made before it was on have no age.
    async fn record_connection_ages(&self) {}
    /// Connections to `ip` that began less than a second ago and are not closing yet
    /// (SYN_SENT, SYN_RECV, ESTABLISHED): what a pod just taken out of the Service rules may
    /// still be in the middle of answering.
    async fn young_connections(&self, _ip: std::net::Ipv4Addr) -> usize {
        0
    }
    /// Network namespaces that exist, by name.
    async fn list_netns(&self) -> Result<Vec<String>, HostError>;
    /// The IPv4 address of `eth0` in the network namespace `netns`, if it exists and has one.
    async fn pod_address(&self, netns: &str) -> Option<std::net::Ipv4Addr>;
    /// Mounts an overlay of `lower` with `upper`/`work` at `target`, unless mounted already.
    async fn mount_overlay(
        &self,
        lower: &Path,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), HostError>;
    /// Unmounts `target`; not mounted is fine.
    async fn unmount(&self, target: &Path) -> Result<(), HostError>;
    /// Starts the container detached, its stdout/stderr appended to `log`, with a monitor
    /// that outlives the agent and records how the container ends in the bundle (see
    /// [`crate::shim`]). Returns the container's pid.
    async fn run(
        &self,
        id: &str,
        bundle: &Path,
        log: &Path,
        stdio: crate::shim::Stdio,
    ) -> Result<i32, HostError>;
    /// Connects to the attach socket of the running container whose bundle is `bundle`.
    async fn attach(&self, bundle: &Path) -> Result<tokio::net::UnixStream, HostError>;
    /// Sends `signal` to the container's processes.
    async fn kill(&self, id: &str, signal: Signal) -> Result<(), HostError>;
    /// Forgets a stopped (or forcibly, a running) container.
    async fn delete(&self, id: &str) -> Result<(), HostError>;
    /// The containers runc has in our state root.
    async fn list(&self) -> Result<Vec<RuncContainer>, HostError>;
    /// Whether the container process `pid` started from `bundle` has ended, and how; None
    /// while it runs. Its monitor's record answers even when the agent was down at the time.
    fn try_exit(&self, pid: i32, bundle: &Path) -> Option<Exit>;
    /// A command that runs `cmd` in the container (`kubectl exec`, streamed); with `tty`, on a
    /// terminal runc makes (its own stdin must then be a terminal).
    fn exec_command(&self, id: &str, cmd: &[String], tty: bool) -> Command;
    /// Runs `cmd` in the container to its end (exec probes; the caller bounds the time).
    async fn exec(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, String>;
    /// Opens a TCP connection to `addr` and closes it (tcpSocket probes, implicit readiness).
    async fn tcp_connect(&self, addr: SocketAddr) -> Result<(), String>;
    /// A plain HTTP/1.1 GET of `path` from `addr` (httpGet probes): the status code (0 for
    /// an unreadable answer), or why no answer came.
    async fn http_get(&self, addr: SocketAddr, path: &str) -> Result<u16, String>;
    /// Removes the cgroup directories under `path` in every hierarchy.
    async fn remove_cgroup(&self, path: &str);
    /// Whether the kernel's OOM killer killed a process in the cgroup `path`.
    async fn oom_killed(&self, path: &str) -> bool;
    /// The host's resolver configuration at `path` (`--resolv-conf`, `/etc/resolv.conf`);
    /// empty when it cannot be read.
    async fn resolv_conf(&self, path: &Path) -> String;
    /// Reads one of the agent's files.
    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError>;
    /// Writes one of the agent's files whole and durably (a reader, also after a crash or a
    /// power loss, sees the old or the new body, never a part), creating its directory.
    async fn write_file(&self, path: &Path, body: &[u8]) -> Result<(), HostError>;
    /// Creates a directory and its parents.
    async fn create_dir_all(&self, path: &Path) -> Result<(), HostError>;
    /// The names in a directory of the agent's; absent or unreadable is empty.
    async fn list_dir(&self, path: &Path) -> Vec<String>;
    /// Removes a directory and what it holds; absent is fine. Never called on a live mount.
    async fn remove_dir_all(&self, path: &Path);
    /// Removes a file of the agent's; absent is fine.
    async fn remove_file(&self, path: &Path);
    /// Whether something is mounted at `path`.
    async fn is_mounted(&self, path: &Path) -> bool;
    /// The bytes allocated to the tree at `path` (its blocks, as `du -x`): symbolic links are
    /// not followed, other filesystems mounted below are not entered, a file with several
    /// links counts once; absent or unreadable parts count nothing.
    async fn disk_usage(&self, path: &Path) -> u64;
    /// Creates (or empties) a file any user may write, with its directory: a container's
    /// termination message file, bind-mounted at its terminationMessagePath.
    async fn create_message_file(&self, path: &Path) -> Result<(), HostError>;
    /// The last `max` bytes of a file (a termination message, the end of a log); absent or
    /// unreadable is empty.
    async fn read_tail(&self, path: &Path, max: usize) -> Vec<u8>;
    /// Mounts a tmpfs of at most `size` bytes (the kernel's default without) at `target`,
    /// unless something is mounted there already.
    async fn mount_tmpfs(&self, target: &Path, size: Option<u64>) -> Result<(), HostError>;
    /// Makes `link` a symbolic link to `target` (replacing what was there).
    async fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError>;
    /// Creates a volume's directory (and its parents) with `mode`, group-owned by `gid` with
    /// the set-group-id bit when set; an existing one gets the mode and group.
    async fn create_volume_dir(
        &self,
        path: &Path,
        mode: u32,
        gid: Option<u32>,
    ) -> Result<(), HostError>;
    /// Writes the files of a configMap, secret, downwardAPI or projected volume into `dir` as
    /// the kubelet's atomic writer does ([`crate::volume::fs::write_atomic`]); returns whether
    /// anything changed.
    async fn write_projection(
        &self,
        dir: &Path,
        files: &crate::volume::Payload,
        gid: Option<u32>,
    ) -> Result<bool, HostError>;
    /// The kubelet's hostPath `type` check (creating what an `…OrCreate` type asks for); the
    /// error is the kubelet's message.
    async fn check_host_path(&self, path: &Path, kind: &str) -> Result<(), String>;
    /// Binds `sub` of the volume at `volume` onto `target`, refused when it resolves outside
    /// the volume ([`crate::volume::fs::bind_subpath`]).
    async fn bind_subpath(&self, volume: &Path, sub: &str, target: &Path) -> Result<(), String>;
}

/// The real machine: runc with its state under `runc_root`.
#[derive(Clone, Debug)]
pub struct LinuxHost {
    pub runc_root: PathBuf,
    /// How the containers' monitors rotate their logs (a monitor keeps the rotation it was
    /// started with until its container ends).
    pub log_rotation: crate::logs::rotate::Rotation,
}

async fn run_cmd(what: &str, cmd: &mut Command) -> Result<String, HostError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| HostError::io(what, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(HostError::Command {
            what: what.to_string(),
            message: stderr.trim().to_string(),
        })
    }
}

async fn ip(args: &[&str]) -> Result<String, HostError> {
    run_cmd(
        &format!("ip {}", args.join(" ")),
        Command::new("ip").args(args),
    )
    .await
}

/// Runs `ip [-n NETNS] -batch -` with one command per line; stops at the first failure.
async fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<(), HostError> {
    use tokio::io::AsyncWriteExt;
    let what = format!("ip -batch ({})", lines.join("; "));
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::io(what.clone(), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = lines.join("\n");
        input.push('\n');
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| HostError::io(what.clone(), e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| HostError::io(what.clone(), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HostError::Command {
            what,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl LinuxHost {
    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.runc_root);
        c
    }
}

#[async_trait]
impl Host for LinuxHost {
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: std::net::Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError> {
        if ip(&["link", "show", bridge]).await.is_err() {
            ip(&["link", "add", bridge, "type", "bridge"]).await?;
        }
        let addr = format!("{gateway}/{prefix}");
        let shown = ip(&["-4", "addr", "show", "dev", bridge]).await?;
        if !shown.contains(&format!("inet {addr}")) {
            ip(&["addr", "add", &addr, "dev", bridge]).await?;
        }
        ip(&["link", "set", bridge, "up"]).await?;
        Ok(())
    }

    async fn create_pod_network(&self, net: &PodNet<'_>) -> Result<(), HostError> {
        let exists = self.list_netns().await?.iter().any(|n| n == net.netns);
        if exists {
            // A namespace without its eth0 is a half-built one: start over.
            let ok = ip(&["-n", net.netns, "link", "show", "eth0"]).await.is_ok();
            if ok {
                return Ok(());
            }
            ip(&["netns", "del", net.netns]).await?;
        }
        // Two `ip -batch` runs (host side, then inside the namespace) instead of one process
        // per step: fork/exec of `ip` is most of a pod network's set-up time.
        if Path::new("/sys/class/net").join(net.veth).exists() {
            let _ = ip(&["link", "del", net.veth]).await;
        }
        let host_side = [
            format!("netns add {}", net.netns),
            format!(
                "link add {} type veth peer name eth0 netns {}",
                net.veth, net.netns
            ),
            format!("link set {} master {}", net.veth, net.bridge),
            format!("link set {} type bridge_slave hairpin on", net.veth),
            format!("link set {} up", net.veth),
        ];
        ip_batch(None, &host_side).await?;
        let inside = [
            format!("addr add {}/{} dev eth0", net.ip, net.prefix),
            "link set eth0 up".to_string(),
            "link set lo up".to_string(),
            format!("route add default via {}", net.gateway),
        ];
        ip_batch(Some(net.netns), &inside).await?;
        Ok(())
    }

    async fn delete_pod_network(&self, netns: &str) -> Result<(), HostError> {
        if self.list_netns().await?.iter().any(|n| n == netns) {
            ip(&["netns", "del", netns]).await?;
        }
        Ok(())
    }

    async fn tracked_addresses(&self) -> Vec<std::net::Ipv4Addr> {
        conntrack_forgettable(&conntrack_list(&["-L", "-f", "ipv4"]).await)
            .into_keys()
            .collect()
    }

    async fn record_connection_ages(&self) {
        let path = "/proc/sys/net/netfilter/nf_conntrack_timestamp";
        if !std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
            && let Err(e) = std::fs::write(path, "1")
        {
            tracing::warn!(error = %e, "cannot turn on conntrack timestamps: a pod that exits at once on SIGTERM can drop a request that reached it just before it left the Service rules");
        }
    }

    async fn young_connections(&self, ip: std::net::Ipv4Addr) -> usize {
        young_connections(
            &conntrack_list(&["-L", "-p", "tcp", "--reply-src", &ip.to_string()]).await,
        )
    }

    async fn forget_connections(&self, ip: std::net::Ipv4Addr) {
        // One listing first: the deletes (one per state: `--state` takes one) only run for what
        // is there, which after a drained pod is usually nothing.
        let listing = conntrack_list(&["-L", "--reply-src", &ip.to_string()]).await;
        let Some(kinds) = conntrack_forgettable(&listing).remove(&ip) else {
            return;
        };
        for args in forget_commands(ip, &kinds) {
            // conntrack exits 1 when nothing matched: not an error.
            let out = Command::new("conntrack")
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .await;
            if let Err(e) = out {
                tracing::debug!(error = %e, "conntrack not run");
                return;
            }
        }
    }

    async fn list_netns(&self) -> Result<Vec<String>, HostError> {
        match std::fs::read_dir("/run/netns") {
            Ok(dir) => Ok(dir
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(HostError::io("listing /run/netns", e)),
        }
    }

    async fn pod_address(&self, netns: &str) -> Option<std::net::Ipv4Addr> {
        if !self.list_netns().await.ok()?.iter().any(|n| n == netns) {
            return None;
        }
        let out = ip(&["-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"])
            .await
            .ok()?;
        inet_address(&out)
    }

    async fn mount_overlay(
        &self,
        lower: &Path,
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), HostError> {
        if is_mountpoint(target) {
            return Ok(());
        }
        for d in [upper, work, target] {
            std::fs::create_dir_all(d)
                .map_err(|e| HostError::io(format!("mkdir {}", d.display()), e))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| HostError::Command {
            what: format!("mounting overlay at {}", target.display()),
            message: e.desc().to_string(),
        })
    }

    async fn unmount(&self, target: &Path) -> Result<(), HostError> {
        if !is_mountpoint(target) {
            return Ok(());
        }
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
            HostError::Command {
                what: format!("unmounting {}", target.display()),
                message: e.desc().to_string(),
            }
        })
    }

    async fn run(
        &self,
        id: &str,
        bundle: &Path,
        log: &Path,
        stdio: crate::shim::Stdio,
    ) -> Result<i32, HostError> {
        use tokio::io::AsyncBufReadExt;
        if let Some(dir) = log.parent() {
            self.create_dir_all(dir).await?;
        }
        // The monitor is this binary's `shim` subcommand (`/proc/self/exe` stays valid even if
        // the file was replaced since the agent started).
        let mut shim = Command::new("/proc/self/exe");
        shim.arg(crate::shim::SUBCOMMAND)
            .arg("--runc-root")
            .arg(&self.runc_root)
            .arg("--bundle")
            .arg(bundle)
            .arg("--log")
            .arg(log)
            .arg("--log-max-size")
            .arg(self.log_rotation.max_size.to_string())
            .arg("--log-max-files")
            .arg(self.log_rotation.max_files.to_string());
        for (on, flag) in [
            (stdio.stdin, "--stdin"),
            (stdio.stdin_once, "--stdin-once"),
            (stdio.tty, "--tty"),
        ] {
            if on {
                shim.arg(flag);
            }
        }
        let mut child = shim
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HostError::io("starting the container monitor", e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = tokio::io::BufReader::new(out).read_line(&mut line).await;
        }
        // The monitor lives on until the container ends (and after this agent): reap it
        // whenever it exits.
        let monitor = tokio::spawn(async move { child.wait().await });
        if line.trim() != crate::shim::STARTED {
            let _ = monitor.await;
            // runc wrote its reason to its stderr, which the monitor logged as the
            // container's: hand the last line back.
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let message = text
                .lines()
                .rev()
                .map(crate::logs::record_content)
                .find(|l| !l.trim().is_empty())
                .map(runc_message)
                .unwrap_or_else(|| "runc run failed".into());
            return Err(HostError::Command {
                what: "runc run".into(),
                message,
            });
        }
        let pid_file = bundle.join("pid");
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| HostError::io("reading runc's pid file", e))?;
        pid.trim().parse().map_err(|_| HostError::Command {
            what: "runc run".into(),
            message: format!("unreadable pid file: {pid:?}"),
        })
    }

    async fn attach(&self, bundle: &Path) -> Result<tokio::net::UnixStream, HostError> {
        let (_dir, path) = crate::attach::short_path(bundle, crate::attach::SOCKET)
            .map_err(|e| HostError::io("opening the container's bundle", e))?;
        tokio::net::UnixStream::connect(&path)
            .await
            .map_err(|e| HostError::io("connecting to the container's monitor", e))
    }

    async fn kill(&self, id: &str, signal: Signal) -> Result<(), HostError> {
        let sig = signal.as_str();
        run_cmd("runc kill", self.runc().args(["kill", "--all", id, sig]))
            .await
            .map(|_| ())
    }

    async fn delete(&self, id: &str) -> Result<(), HostError> {
        run_cmd("runc delete", self.runc().args(["delete", "--force", id]))
            .await
            .map(|_| ())
    }

    async fn list(&self) -> Result<Vec<RuncContainer>, HostError> {
        let out = run_cmd("runc list", self.runc().args(["list", "--format", "json"])).await?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(RuncContainer {
                    id: c.get("id")?.as_str()?.to_string(),
                    pid: c.get("pid").and_then(|p| p.as_i64()).unwrap_or(0) as i32,
                    status: c.get("status")?.as_str()?.to_string(),
                    bundle: PathBuf::from(c.get("bundle")?.as_str()?),
                })
            })
            .collect())
    }

    fn try_exit(&self, pid: i32, bundle: &Path) -> Option<Exit> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        use nix::unistd::Pid;
        // A container whose monitor died is reparented to the agent (its subreaper).
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(Exit::Signal(sig as i32)),
            Ok(_) => return None,
            Err(_) => {}
        }
        if let Some(exit) = crate::shim::recorded_exit(bundle, pid) {
            return Some(exit);
        }
        // Alive, or a zombie its monitor is about to record: not ended yet. Gone without a
        // record (its monitor was killed): ended, how is unknown.
        match std::fs::metadata(format!("/proc/{pid}")) {
            Ok(_) => None,
            Err(_) => crate::shim::recorded_exit(bundle, pid).or(Some(Exit::Unknown)),
        }
    }

    fn exec_command(&self, id: &str, cmd: &[String], tty: bool) -> Command {
        let mut c = self.runc();
        c.arg("exec");
        if tty {
            c.arg("--tty");
        }
        c.arg(id).args(cmd);
        c
    }

    async fn exec(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, String> {
        let out = self
            .exec_command(id, cmd, false)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| e.to_string())?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(ExecOutput {
            success: out.status.success(),
            output: output.trim().to_string(),
        })
    }

    async fn tcp_connect(&self, addr: SocketAddr) -> Result<(), String> {
        tokio::net::TcpStream::connect(addr)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn http_get(&self, addr: SocketAddr, path: &str) -> Result<u16, String> {
        http_get(addr, path).await
    }

    async fn remove_cgroup(&self, path: &str) {
        for (dir, e) in crate::cgroup::Cgroups::host().remove(path) {
            tracing::debug!(cgroup = %dir.display(), error = %e, "cgroup not removed");
        }
    }

    async fn oom_killed(&self, path: &str) -> bool {
        crate::cgroup::Cgroups::host().oom_killed(path)
    }

    async fn resolv_conf(&self, path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        tokio::fs::read(path)
            .await
            .map_err(|e| HostError::io(format!("reading {}", path.display()), e))
    }

    async fn write_file(&self, path: &Path, body: &[u8]) -> Result<(), HostError> {
        let (path, body) = (path.to_path_buf(), body.to_vec());
        tokio::task::spawn_blocking(move || {
            write_durably(&path, &body)
                .map_err(|e| HostError::io(format!("writing {}", path.display()), e))
        })
        .await
        .map_err(|e| HostError::io("writing a file", std::io::Error::other(e)))?
    }

    async fn create_dir_all(&self, path: &Path) -> Result<(), HostError> {
        tokio::fs::create_dir_all(path)
            .await
            .map_err(|e| HostError::io(format!("creating {}", path.display()), e))
    }

    async fn list_dir(&self, path: &Path) -> Vec<String> {
        let Ok(mut dir) = tokio::fs::read_dir(path).await else {
            return Vec::new();
        };
        let mut names = Vec::new();
        while let Ok(Some(e)) = dir.next_entry().await {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names
    }

    async fn remove_dir_all(&self, path: &Path) {
        if let Err(e) = tokio::fs::remove_dir_all(path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(path = %path.display(), error = %e, "removing a directory failed");
        }
    }

    async fn remove_file(&self, path: &Path) {
        if let Err(e) = tokio::fs::remove_file(path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(path = %path.display(), error = %e, "removing a file failed");
        }
    }

    async fn is_mounted(&self, path: &Path) -> bool {
        is_mountpoint(path)
    }

    async fn disk_usage(&self, path: &Path) -> u64 {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || allocated_bytes(&path))
            .await
            .unwrap_or_default()
    }

    async fn create_message_file(&self, path: &Path) -> Result<(), HostError> {
        use std::os::unix::fs::PermissionsExt;
        let what = || format!("creating {}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| HostError::io(what(), e))?;
        }
        std::fs::File::create(path).map_err(|e| HostError::io(what(), e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| HostError::io(what(), e))
    }

    async fn read_tail(&self, path: &Path, max: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if let Ok(mut f) = std::fs::File::open(&path) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let from = len.saturating_sub(max as u64);
                if f.seek(SeekFrom::Start(from)).is_ok() {
                    let _ = f.take(max as u64).read_to_end(&mut out);
                }
            }
            out
        })
        .await
        .unwrap_or_default()
    }

    async fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError> {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(target, link)
            .map_err(|e| HostError::io(format!("linking {}", link.display()), e))
    }

    async fn mount_tmpfs(&self, target: &Path, size: Option<u64>) -> Result<(), HostError> {
        if is_mountpoint(target) {
            return Ok(());
        }
        std::fs::create_dir_all(target)
            .map_err(|e| HostError::io(format!("mkdir {}", target.display()), e))?;
        // The volume's root is world-writable as an emptyDir on disk (the kubelet's 0777).
        let mut opts = "mode=0777".to_string();
        if let Some(size) = size {
            opts.push_str(&format!(",size={size}"));
        }
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .map_err(|e| HostError::Command {
            what: format!("mounting a tmpfs at {}", target.display()),
            message: e.desc().to_string(),
        })
    }

    async fn create_volume_dir(
        &self,
        path: &Path,
        mode: u32,
        gid: Option<u32>,
    ) -> Result<(), HostError> {
        use std::os::unix::fs::PermissionsExt;
        let what = || format!("creating {}", path.display());
        std::fs::create_dir_all(path).map_err(|e| HostError::io(what(), e))?;
        let mut mode = mode;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| HostError::io(what(), e))?;
            mode |= 0o2000;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| HostError::io(what(), e))
    }

    async fn write_projection(
        &self,
        dir: &Path,
        files: &crate::volume::Payload,
        gid: Option<u32>,
    ) -> Result<bool, HostError> {
        let (dir, files) = (dir.to_path_buf(), files.clone());
        tokio::task::spawn_blocking(move || {
            crate::volume::fs::write_atomic(&dir, &files, gid)
                .map_err(|e| HostError::io(format!("writing the files of {}", dir.display()), e))
        })
        .await
        .map_err(|e| HostError::io("writing a volume", std::io::Error::other(e)))?
    }

    async fn check_host_path(&self, path: &Path, kind: &str) -> Result<(), String> {
        crate::volume::fs::check_host_path(path, kind)
    }

    async fn bind_subpath(&self, volume: &Path, sub: &str, target: &Path) -> Result<(), String> {
        crate::volume::fs::bind_subpath(volume, sub, target)
    }
}

/// A minimal HTTP/1.1 GET: the status code of the answer (0 when unreadable).
async fn http_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 512];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Writes `path` so that after a crash or power loss it holds the old or the new body: a
/// temporary file written and synced, renamed over `path`, and the directory synced (the
/// rename is only durable once the directory is).
pub fn write_durably(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The address of the first `inet` line of `ip -o -4 addr show` output.
fn inet_address(out: &str) -> Option<std::net::Ipv4Addr> {
    let mut words = out.split_whitespace();
    words.find(|w| *w == "inet")?;
    words.next()?.split('/').next()?.parse().ok()
}

/// The bytes allocated under `root` (see [`Host::disk_usage`]), walked without recursion.
pub fn allocated_bytes(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    let dev = top.dev();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut pending = vec![(root.to_path_buf(), top)];
    while let Some((path, meta)) = pending.pop() {
        if meta.dev() != dev {
            continue;
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
            continue;
        }
        total = total.saturating_add(meta.blocks().saturating_mul(512));
        if !meta.is_dir() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            // DirEntry::metadata does not follow a symbolic link.
            if let Ok(m) = e.metadata() {
                pending.push((e.path(), m));
            }
        }
    }
    total
}

/// `p` and every directory below it, parents first.
pub(crate) fn collect_dirs(p: &Path, out: &mut Vec<PathBuf>) {
    if !p.is_dir() {
        return;
    }
    out.push(p.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The `msg="…"` of a runc log line (logfmt), or the line itself.
/// The TCP states of a connection to a removed pod that [`Host::forget_connections`] deletes:
/// those in which conntrack lets a SYN that reuses the client port ride the old entry (and
/// its NAT) to the dead address. TIME_WAIT and CLOSE entries are left alone: a SYN reopens
/// them with a fresh NAT decision anyway (the timeout policy of Service connections forgets
/// CLOSE at once), and `conntrack -D` deletes by the dumped entry's original tuple, so one
/// that a reused client port reopened between the dump and the delete would take the new,
/// live connection with it (seen: a request to a ClusterIP hung 10 s mid-rollout).
pub const CAPTURING_TCP_STATES: [&str; 6] = [
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
];

/// What kind of conntrack entry [`Host::forget_connections`] deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Forgettable {
    /// A TCP connection in one of [`CAPTURING_TCP_STATES`].
    Tcp(&'static str),
    Udp,
}

/// `conntrack` run with `args`: its listing (empty when it could not run).
async fn conntrack_list(args: &[&str]) -> String {
    let listed = Command::new("conntrack")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    match listed {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => {
            tracing::debug!(error = %e, "conntrack not run");
            String::new()
        }
    }
}

/// The entries of a `conntrack -L` listing that [`Host::forget_connections`] deletes, by the
/// address their answers come from (the reply's source: the pod a connection went to,
/// directly or through NAT).
pub fn conntrack_forgettable(listing: &str) -> BTreeMap<std::net::Ipv4Addr, BTreeSet<Forgettable>> {
    let mut out: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    for line in listing.lines() {
        let mut words = line.split_whitespace();
        let kind = match words.next() {
            // `tcp 6 <timeout> <STATE> src=…`
            Some("tcp") => match words
                .nth(2)
                .and_then(|w| CAPTURING_TCP_STATES.iter().find(|s| **s == w))
            {
                Some(state) => Forgettable::Tcp(state),
                None => continue,
            },
            Some("udp") => Forgettable::Udp,
            _ => continue,
        };
        let reply_source = line
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("src="))
            .nth(1)
            .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok());
        if let Some(ip) = reply_source {
            out.entry(ip).or_default().insert(kind);
        }
    }
    out
}

/// The connections of a `conntrack -L` listing that began in the last second (`delta-time=0`,
/// whole seconds) and are not closing: SYN_SENT, SYN_RECV or ESTABLISHED.
pub fn young_connections(listing: &str) -> usize {
    listing
        .lines()
        .filter(|line| {
            let state = line.split_whitespace().nth(3).unwrap_or("");
            matches!(state, "SYN_SENT" | "SYN_RECV" | "ESTABLISHED")
                && line.split_whitespace().any(|w| w == "delta-time=0")
        })
        .count()
}

/// The `conntrack` invocations that delete the entries of `kinds` whose answers come from `ip`.
pub fn forget_commands(ip: std::net::Ipv4Addr, kinds: &BTreeSet<Forgettable>) -> Vec<Vec<String>> {
    kinds
        .iter()
        .map(|kind| {
            let mut args = vec!["-D".to_string()];
            match kind {
                Forgettable::Tcp(state) => {
                    args.extend(["-p", "tcp", "--state", state].map(String::from))
                }
                Forgettable::Udp => args.extend(["-p", "udp"].map(String::from)),
            }
            args.extend(["--reply-src".to_string(), ip.to_string()]);
            args
        })
        .collect()
}

pub fn runc_message(line: &str) -> String {
    match line.split_once("msg=\"") {
        Some((_, rest)) => {
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => break,
                    c => out.push(c),
                }
            }
            out
        }
        None => line.trim().to_string(),
    }
}

/// Whether `p` is a mount point, from /proc/self/mountinfo.
pub fn is_mountpoint(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = p.to_string_lossy();
    info.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(target.as_ref()))
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_bytes_counts_blocks_once_without_following_links() {
        let dir = std::env::temp_dir().join(format!("baton-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("a temporary directory");
        let empty = allocated_bytes(&dir);
        std::fs::write(dir.join("sub/data"), vec![7u8; 300 * 1024]).expect("a file");
        std::fs::hard_link(dir.join("sub/data"), dir.join("again")).expect("a hard link");
        // A link to a big tree outside must not count it.
        std::os::unix::fs::symlink("/usr", dir.join("usr")).expect("a symbolic link");
        let used = allocated_bytes(&dir) - empty;
        assert!((300 * 1024..320 * 1024).contains(&used), "{used}");
        assert_eq!(allocated_bytes(&dir.join("absent")), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn young_connections_began_in_the_last_second_and_are_open() {
        let listing = "tcp      6 431999 ESTABLISHED src=10.244.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40000 [ASSURED] mark=0 delta-time=0 use=1\n\
tcp      6 431999 ESTABLISHED src=10.244.0.1 dst=10.96.0.10 sport=40003 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40003 [ASSURED] mark=0 delta-time=4 use=1\n\
tcp      6 117 TIME_WAIT src=10.244.0.1 dst=10.96.0.10 sport=40001 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40001 [ASSURED] mark=0 delta-time=0 use=1\n\
tcp      6 59 SYN_RECV src=10.244.0.1 dst=10.96.0.10 sport=40002 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40002 mark=0 delta-time=0 use=1\n\
tcp      6 59 SYN_RECV src=10.244.0.1 dst=10.96.0.10 sport=40004 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40004 mark=0 use=1\n";
        // The idle keep-alive (4 s old), the closed one and one without an age do not count.
        assert_eq!(young_connections(listing), 2);
    }

    #[test]
    fn forgettable_entries_are_the_capturing_ones_by_reply_source() {
        let listing = "tcp      6 431999 ESTABLISHED src=10.244.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n\
tcp      6 117 TIME_WAIT src=10.244.0.1 dst=10.96.0.10 sport=40001 dport=80 src=10.244.0.6 dst=10.244.0.1 sport=8080 dport=40001 [ASSURED] mark=0 use=1\n\
tcp      6 29 LAST_ACK src=10.244.0.1 dst=10.244.0.5 sport=40002 dport=8080 src=10.244.0.5 dst=10.244.0.1 sport=8080 dport=40002 [ASSURED] mark=0 use=1\n\
udp      17 29 src=10.244.0.7 dst=10.244.0.1 sport=5353 dport=53 src=10.244.0.1 dst=10.244.0.7 sport=53 dport=5353 mark=0 use=1\n\
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.\n";
        let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().expect("an address");
        let found = conntrack_forgettable(listing);
        // TIME_WAIT alone: nothing to forget for 10.244.0.6.
        assert_eq!(
            found.keys().copied().collect::<Vec<_>>(),
            vec![ip("10.244.0.1"), ip("10.244.0.5")]
        );
        assert_eq!(
            forget_commands(ip("10.244.0.5"), &found[&ip("10.244.0.5")]),
            vec![
                vec![
                    "-D",
                    "-p",
                    "tcp",
                    "--state",
                    "ESTABLISHED",
                    "--reply-src",
                    "10.244.0.5"
                ],
                vec![
                    "-D",
                    "-p",
                    "tcp",
                    "--state",
                    "LAST_ACK",
                    "--reply-src",
                    "10.244.0.5"
                ],
            ]
        );
        assert_eq!(
            forget_commands(ip("10.244.0.1"), &found[&ip("10.244.0.1")]),
            vec![vec!["-D", "-p", "udp", "--reply-src", "10.244.0.1"]]
        );
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn addresses_and_durable_writes() {
        let out = "2: eth0    inet 10.244.0.7/24 brd 10.244.0.255 scope global eth0\\       valid_lft forever\n";
        assert_eq!(
            inet_address(out),
            Some(std::net::Ipv4Addr::new(10, 244, 0, 7))
        );
        assert_eq!(inet_address(""), None);
        let dir = tempfile::tempdir().expect("a temp dir");
        let f = dir.path().join("a/state.json");
        write_durably(&f, b"one").expect("written");
        write_durably(&f, b"two").expect("rewritten");
        assert_eq!(std::fs::read(&f).expect("readable"), b"two");
        assert!(!dir.path().join("a/state.json.tmp").exists());
    }

    #[tokio::test]
    async fn http_get_reads_the_status_line() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 503 Service Unavailable",
                "garbage",
            ] {
                if let Ok((mut s, _)) = l.accept().await {
                    let mut b = [0u8; 256];
                    let _ = s.read(&mut b).await;
                    let _ = s
                        .write_all(format!("{answer}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                        .await;
                }
            }
        });
        assert_eq!(http_get(addr, "/").await, Ok(200));
        assert_eq!(http_get(addr, "/").await, Ok(503));
        assert_eq!(http_get(addr, "/").await, Ok(0));
    }

    /// Runs a command, panicking with its output when it fails.
    fn must(cmd: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd} not run (this test needs root and {cmd}): {e}"));
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Removes the test's nftables table however the test ends.
    struct CtTable(&'static str);
    impl Drop for CtTable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", self.0])
                .output();
        }
    }

    /// Needs root, nft and conntrack (CI runs as root with both). A dead pod's half-open
    /// entries go; its TIME_WAIT entries stay (a SYN reopens them with fresh NAT, and deleting
    /// them races with that reopening: the delete would take the new connection).
    #[tokio::test]
    async fn forgetting_a_pod_address_keeps_time_wait_entries() {
        use std::io::{Read, Write};
        // A ct expression in a hook makes the kernel track this namespace's connections.
        let table = CtTable("baton-forget-test");
        must(
            "nft",
            &[
                "add table ip baton-forget-test; add chain ip baton-forget-test out { type filter hook output priority 0 ; } ; add rule ip baton-forget-test out ct state new counter",
            ],
        );
        let ip = std::net::Ipv4Addr::new(127, 0, 0, 97);
        let l = std::net::TcpListener::bind((ip, 0)).expect("bind 127.0.0.97");
        let addr = l.local_addr().expect("addr");
        // One connection closed (TIME_WAIT), one left open (ESTABLISHED).
        let mut closed = std::net::TcpStream::connect(addr).expect("connect");
        let (mut served, _) = l.accept().expect("accept");
        served.write_all(b"x").expect("write");
        drop(served);
        let mut b = [0u8; 4];
        while closed.read(&mut b).map(|n| n > 0).unwrap_or(false) {}
        let closed_port = closed.local_addr().expect("port").port();
        drop(closed);
        let open = std::net::TcpStream::connect(addr).expect("connect");
        let (_held, _) = l.accept().expect("accept");
        let open_port = open.local_addr().expect("port").port();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let list = || {
            let out = std::process::Command::new("conntrack")
                .args(["-L", "-p", "tcp", "--reply-src", "127.0.0.97"])
                .output()
                .expect("conntrack (this test needs root and conntrack)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let entry = |listing: &str, port: u16| {
            listing
                .lines()
                .find(|l| l.contains(&format!("sport={port} ")))
                .map(|l| l.to_string())
        };
        let before = list();
        let tw = entry(&before, closed_port).expect("the closed connection is tracked");
        assert!(tw.contains("TIME_WAIT"), "{before}");
        let es = entry(&before, open_port).expect("the open connection is tracked");
        assert!(es.contains("ESTABLISHED"), "{before}");

        LinuxHost {
            runc_root: PathBuf::new(),
            log_rotation: Default::default(),
        }
        .forget_connections(ip)
        .await;
        let after = list();
        assert!(
            entry(&after, closed_port).is_some_and(|l| l.contains("TIME_WAIT")),
            "{tw} is gone: {after}"
        );
        assert_eq!(entry(&after, open_port), None, "{after}");
        drop(table);
    }
}
