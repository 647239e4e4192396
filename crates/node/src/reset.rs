//! `baton reset` (like `kubeadm reset`), the node's part: stops and removes what the node
//! agent of one data dir made on this machine — the server still running on it, runc
//! containers, processes left in pod cgroups, mounts under the data dir, pod cgroup dirs in
//! every hierarchy, pod network namespaces and veths, the bridge — and says what it removed,
//! one line each. Idempotent: a second run finds nothing.
//!
//! It is scoped by the data dir and the bridge, not by name patterns alone: pods are the ones
//! the data dir knows (pod dirs, runc state) plus any network namespace whose veth hangs on
//! the bridge, so another Baton on the same machine (another data dir and bridge) is left
//! alone. The service proxy's nftables table and route are removed by `baton-traffic`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::cgroup::Cgroups;

/// What to reset.
#[derive(Clone, Debug)]
pub struct ResetOptions {
    /// The server's data dir (`--data-dir`); the agent's state is `<data_dir>/node`.
    pub data_dir: PathBuf,
    /// The pods' bridge (`--bridge`).
    pub bridge: String,
    /// Also delete the data dir itself (store, certificates, images).
    pub remove_data: bool,
}

/// What a reset did: one line per removed thing, one per thing it could not remove.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub removed: Vec<String>,
    pub failed: Vec<String>,
}

impl Report {
    fn ok(&mut self, line: String) {
        self.removed.push(line);
    }
    fn err(&mut self, what: String, e: impl std::fmt::Display) {
        self.failed.push(format!("{what}: {e}"));
    }
}

/// Runs every step; a failed step is reported and the others still run.
pub async fn reset(opts: &ResetOptions) -> Report {
    let mut r = Report::default();
    // The same path spelled as the server spelled it, so mounts and flags compare equal.
    let data_dir = std::fs::canonicalize(&opts.data_dir).unwrap_or(opts.data_dir.clone());
    let node_dir = data_dir.join("node");
    let runc_root = node_dir.join("runc");

    stop_servers_into(&data_dir, &mut r).await;

    let mut uids: BTreeSet<String> = read_dir_names(&node_dir.join("pods")).into_iter().collect();
    let containers = runc_list(&runc_root).await;
    for id in &containers {
        if let Some(uid) = uid_of_container(id) {
            uids.insert(uid);
        }
    }
    for ns in netns_on_bridge(&opts.bridge).await {
        if let Some(uid) = ns.strip_prefix("baton-") {
            uids.insert(uid.to_string());
        }
    }

    for id in &containers {
        let _ = runc(&runc_root, &["kill", id, "KILL"]).await;
        match runc(&runc_root, &["delete", "--force", id]).await {
            Ok(()) => r.ok(format!("container {id}")),
            Err(e) => r.err(format!("container {id}"), e),
        }
    }

    for uid in &uids {
        kill_cgroup_processes(uid, &mut r).await;
    }

    for m in mounts_under(&data_dir) {
        match nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => r.ok(format!("mount {}", m.display())),
            Err(e) => r.err(format!("mount {}", m.display()), e.desc()),
        }
    }

    for uid in &uids {
        remove_cgroups(&format!("baton/{uid}"), &mut r);
    }
    remove_empty_cgroup_parent(&mut r);

    let existing = read_dir_names(Path::new("/run/netns"));
    for uid in &uids {
        let ns = format!("baton-{uid}");
        if existing.contains(&ns) {
            match ip(&["netns", "del", &ns]).await {
                Ok(()) => r.ok(format!("network namespace {ns}")),
                Err(e) => r.err(format!("network namespace {ns}"), e),
            }
        }
    }
    // Veths whose namespace went some other way (or a half-built pod network).
    // The kernel removes a deleted namespace's veth pairs a moment later: one that vanished
    // between listing and deleting went with its namespace.
    let gone = |veth: &str| !Path::new("/sys/class/net").join(veth).exists();
    for veth in veths_on_bridge(&opts.bridge).await {
        match ip(&["link", "del", &veth]).await {
            Ok(()) => r.ok(format!("veth {veth}")),
            Err(_) if gone(&veth) => {}
            Err(e) => r.err(format!("veth {veth}"), e),
        }
    }
    for uid in &uids {
        let (_, veth) = crate::pod::net_names(uid);
        if !gone(&veth) {
            match ip(&["link", "del", &veth]).await {
                Ok(()) => r.ok(format!("veth {veth}")),
                Err(_) if gone(&veth) => {}
                Err(e) => r.err(format!("veth {veth}"), e),
            }
        }
    }

    if Path::new("/sys/class/net")
        .join(&opts.bridge)
        .join("bridge")
        .exists()
    {
        match ip(&["link", "del", &opts.bridge]).await {
            Ok(()) => r.ok(format!("bridge {}", opts.bridge)),
            Err(e) => r.err(format!("bridge {}", opts.bridge), e),
        }
    }

    if opts.remove_data && data_dir.exists() {
        if data_dir == Path::new("/") || data_dir.as_os_str().is_empty() {
            r.err(
                format!("data dir {}", data_dir.display()),
                "refusing to delete /",
            );
        } else {
            match std::fs::remove_dir_all(&data_dir) {
                Ok(()) => r.ok(format!("data dir {}", data_dir.display())),
                Err(e) => r.err(format!("data dir {}", data_dir.display()), e),
            }
        }
    }
    r
}

/// SIGTERM to every `baton server` running on `data_dir` (SIGKILL after 10 s), so that
/// nothing re-creates what the reset removes. [`reset`] starts with it; callers that remove
/// more (the nftables table) call it first themselves.
pub async fn stop_servers(data_dir: &Path) -> Report {
    let mut r = Report::default();
    let data_dir = std::fs::canonicalize(data_dir).unwrap_or(data_dir.to_path_buf());
    stop_servers_into(&data_dir, &mut r).await;
    r
}

async fn stop_servers_into(data_dir: &Path, r: &mut Report) {
    let me = std::process::id();
    for pid in read_dir_names(Path::new("/proc"))
        .iter()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|p| *p as u32 != me)
    {
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // This very binary under another name counts too (a copy, a symlink).
        let same_exe =
            std::fs::read_link(format!("/proc/{pid}/exe")).ok() == std::env::current_exe().ok();
        if !is_server_of(&args, data_dir, same_exe) {
            continue;
        }
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let target = Pid::from_raw(pid);
        if kill(target, Signal::SIGTERM).is_err() {
            continue;
        }
        let mut gone = false;
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !gone {
            let _ = kill(target, Signal::SIGKILL);
        }
        r.ok(format!("server process {pid}"));
    }
}

/// Whether `args` (a command line) is `baton server` with this data dir (default
/// `/var/lib/baton`); `same_exe`: the program is the binary running the reset.
fn is_server_of(args: &[String], data_dir: &Path, same_exe: bool) -> bool {
    let Some(program) = args.first() else {
        return false;
    };
    let named_baton = Path::new(program).file_name().and_then(|n| n.to_str()) == Some("baton");
    if !(named_baton || same_exe) || args.get(1).map(String::as_str) != Some("server") {
        return false;
    }
    let mut dir = PathBuf::from("/var/lib/baton");
    let mut it = args.iter().skip(2);
    while let Some(a) = it.next() {
        if a == "--data-dir" {
            if let Some(v) = it.next() {
                dir = PathBuf::from(v);
            }
        } else if let Some(v) = a.strip_prefix("--data-dir=") {
            dir = PathBuf::from(v);
        }
    }
    // A relative --data-dir cannot be resolved from here; compare what can be.
    std::fs::canonicalize(&dir).unwrap_or(dir) == data_dir
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            == Some("Z")
    })
}

/// Container ids are `<pod uid>-<container name>`; a uid is 36 characters.
fn uid_of_container(id: &str) -> Option<String> {
    let uid = id.get(..36)?;
    (uid.chars().filter(|c| *c == '-').count() == 4 && id.as_bytes().get(36) == Some(&b'-'))
        .then(|| uid.to_string())
}

async fn kill_cgroup_processes(uid: &str, r: &mut Report) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for pid in Cgroups::host().procs(&format!("baton/{uid}")) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) => r.ok(format!("process {pid} ({}) of pod {uid}", comm.trim())),
            Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => r.err(format!("process {pid} of pod {uid}"), e.desc()),
        }
    }
}

/// Removes `rel` (e.g. `baton/<uid>`) in every cgroup hierarchy, children first; one line
/// saying in how many hierarchies it was.
fn remove_cgroups(rel: &str, r: &mut Report) {
    let cgroups = Cgroups::host();
    let found = cgroups.hierarchies_with(rel);
    if found == 0 {
        return;
    }
    // A cgroup whose last process has just been killed may take a moment to empty.
    let mut failed = cgroups.remove(rel);
    for _ in 0..20 {
        if failed.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        failed = cgroups.remove(rel);
    }
    if failed.is_empty() {
        r.ok(format!("cgroup {rel} (in {found} hierarchies)"));
    }
    for (dir, e) in failed {
        r.err(format!("cgroup {rel}"), format!("{}: {e}", dir.display()));
    }
}

/// The shared `baton` parent goes when no pod of any data dir is left in it.
fn remove_empty_cgroup_parent(r: &mut Report) {
    // Only the parent: pods' cgroups of other data dirs below it keep it (rmdir of a
    // non-empty directory fails).
    let removed = Cgroups::host()
        .each("baton")
        .iter()
        .filter(|dir| std::fs::remove_dir(dir).is_ok())
        .count();
    if removed > 0 {
        r.ok(format!("cgroup baton (in {removed} hierarchies)"));
    }
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_dir_names(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Host-side interfaces enslaved to `bridge` (the pods' veths).
async fn veths_on_bridge(bridge: &str) -> Vec<String> {
    let dir = Path::new("/sys/class/net").join(bridge).join("brif");
    read_dir_names(&dir)
}

/// Network namespaces whose veth peer hangs on `bridge`, by name.
async fn netns_on_bridge(bridge: &str) -> Vec<String> {
    let ports: BTreeSet<String> = veths_on_bridge(bridge).await.into_iter().collect();
    if ports.is_empty() {
        return Vec::new();
    }
    let links =
        match output(Command::new("ip").args(["-j", "link", "show", "master", bridge])).await {
            Ok(o) => serde_json::from_str::<serde_json::Value>(&o).unwrap_or_default(),
            Err(_) => return Vec::new(),
        };
    let ids: BTreeSet<i64> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| {
            l.get("ifname")
                .and_then(|n| n.as_str())
                .is_some_and(|n| ports.contains(n))
        })
        .filter_map(|l| l.get("link_netnsid").and_then(|i| i.as_i64()))
        .collect();
    let list = output(Command::new("ip").args(["netns", "list"]))
        .await
        .unwrap_or_default();
    // Lines look like `baton-<uid> (id: 3)`.
    list.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            let id = l.split("(id: ").nth(1)?.trim_end_matches(')').trim();
            let id: i64 = id.parse().ok()?;
            ids.contains(&id).then(|| name.to_string())
        })
        .collect()
}

async fn runc_list(root: &Path) -> Vec<String> {
    if !root.exists() {
        return Vec::new();
    }
    let mut cmd = Command::new("runc");
    cmd.arg("--root").arg(root).args(["list", "-q"]);
    output(&mut cmd)
        .await
        .map(|o| o.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

async fn runc(root: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("runc");
    cmd.arg("--root").arg(root).args(args);
    output(&mut cmd).await.map(|_| ())
}

async fn ip(args: &[&str]) -> Result<(), String> {
    output(Command::new("ip").args(args)).await.map(|_| ())
}

async fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_name_their_pod() {
        assert_eq!(
            uid_of_container("0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11-web").as_deref(),
            Some("0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11")
        );
        assert_eq!(uid_of_container("short-web"), None);
    }

    #[test]
    fn servers_are_matched_by_their_data_dir() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = Path::new("/nonexistent/d1");
        assert!(is_server_of(
            &args(&["/usr/bin/baton", "server", "--data-dir", "/nonexistent/d1"]),
            d,
            false
        ));
        assert!(is_server_of(
            &args(&["/tmp/copy", "server", "--data-dir", "/nonexistent/d1"]),
            d,
            true
        ));
        assert!(!is_server_of(
            &args(&["/tmp/other", "server", "--data-dir", "/nonexistent/d1"]),
            d,
            false
        ));
        assert!(is_server_of(
            &args(&[
                "baton",
                "server",
                "--listen",
                "x",
                "--data-dir=/nonexistent/d1"
            ]),
            d,
            false
        ));
        assert!(!is_server_of(
            &args(&["baton", "server", "--data-dir", "/nonexistent/d2"]),
            d,
            false
        ));
        assert!(!is_server_of(
            &args(&["baton", "image", "--data-dir", "/nonexistent/d1"]),
            d,
            false
        ));
        assert!(is_server_of(
            &args(&["baton", "server"]),
            Path::new("/var/lib/baton"),
            false
        ));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
