//! The per-container monitor (containerd's shim, reduced to what Baton needs): a small process
//! of its own session that starts the container with `runc run --detach`, becomes the
//! container's parent (it is a child subreaper, so the container's init is reparented to it
//! when runc exits), waits for it to end and records how in `<bundle>/exit`, durably, before
//! reaping it. It does not depend on the agent: when the server is killed or restarted the
//! monitor stays, and the next agent reads the record ([`recorded_exit`]) to report the exit
//! code of a container that ended while no agent ran.
//!
//! It is the binary's hidden `shim` subcommand ([`SUBCOMMAND`]), started by
//! [`crate::host::LinuxHost::run`]; it writes [`STARTED`] on its stdout once the container
//! runs and closes it, or exits when runc failed (runc's reason is in the log).
//! Synchronous code, no runtime: it sleeps in `waitid` until the container ends.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::host::Exit;

/// The subcommand of the binary that runs [`run`].
pub const SUBCOMMAND: &str = "shim";

/// What the monitor writes on its stdout once the container runs.
pub const STARTED: &str = "started";

/// The record's file name in the bundle directory.
pub const EXIT_FILE: &str = "exit";

/// How a container ended, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
}

impl Record {
    fn exit(&self) -> Exit {
        match (self.exit_code, self.signal) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Unknown,
        }
    }
}

/// How the container process `pid` of `bundle` ended, if its monitor recorded it.
pub fn recorded_exit(bundle: &Path, pid: i32) -> Option<Exit> {
    let body = std::fs::read(bundle.join(EXIT_FILE)).ok()?;
    let r: Record = serde_json::from_slice(&body).ok()?;
    (r.pid == pid).then(|| r.exit())
}

/// The monitor: starts container `id` from `bundle` with runc (state under `runc_root`, its
/// output appended to `log`), waits for it to end and records how. Returns the process's exit
/// code (0 once the record is written).
pub fn run(runc_root: &Path, bundle: &Path, log: &Path, id: &str) -> i32 {
    // Out of the agent's session and process group: signals meant for the server (a terminal's
    // ^C, a kill of its group) do not reach the monitor.
    let _ = nix::unistd::setsid();
    // Named for `ps` (it was started as /proc/self/exe).
    let _ = nix::sys::prctl::set_name(c"baton-shim");
    if nix::sys::prctl::set_child_subreaper(true).is_err() {
        return 1;
    }
    let pid_file = bundle.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let _ = std::fs::remove_file(bundle.join(EXIT_FILE));
    // A leftover stopped container of the same id (an earlier attempt) goes first.
    let _ = Command::new("runc")
        .arg("--root")
        .arg(runc_root)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    };
    let (Ok(out), Ok(err)) = (open(), open()) else {
        return 1;
    };
    let started = Command::new("runc")
        .arg("--root")
        .arg(runc_root)
        .arg("run")
        .arg("--detach")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status();
    if !started.is_ok_and(|s| s.success()) {
        return 1;
    }
    let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return 1;
    };
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{STARTED}");
        let _ = stdout.flush();
    }
    // Close stdout so that the agent's read ends, and let nothing hold the log open.
    let _ = nix::unistd::close(1);
    watch(bundle, pid)
}

/// Waits for `pid` (reparented to this subreaper when runc exited) to end, records how, then
/// reaps it; other children (processes of the container orphaned to us) are reaped on the way.
fn watch(bundle: &Path, pid: i32) -> i32 {
    use nix::errno::Errno;
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
    use nix::unistd::Pid;
    loop {
        // Look without reaping: the process stays a zombie (so the agent sees it as not yet
        // ended) until the record is on disk.
        let status = match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(_) => return 1,
        };
        let (child, record) = match status {
            WaitStatus::Exited(p, code) => (
                p,
                Record {
                    pid: p.as_raw(),
                    exit_code: Some(code),
                    signal: None,
                },
            ),
            WaitStatus::Signaled(p, sig, _) => (
                p,
                Record {
                    pid: p.as_raw(),
                    exit_code: None,
                    signal: Some(sig as i32),
                },
            ),
            _ => continue,
        };
        if child.as_raw() == pid {
            // A pod removed meanwhile (a force deletion, `baton reset`) gets no record: the
            // write would create its directory again.
            if bundle.is_dir()
                && let Ok(body) = serde_json::to_vec(&record)
            {
                let _ = crate::host::write_durably(&bundle.join(EXIT_FILE), &body);
            }
            let _ = waitpid(Pid::from_raw(pid), None);
            return 0;
        }
        let _ = waitpid(child, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_for_their_own_process_only() {
        let dir = tempfile::tempdir().expect("a temp dir");
        assert_eq!(recorded_exit(dir.path(), 42), None);
        let write = |r: &Record| {
            std::fs::write(
                dir.path().join(EXIT_FILE),
                serde_json::to_vec(r).expect("serializable"),
            )
            .expect("written")
        };
        write(&Record {
            pid: 42,
            exit_code: Some(3),
            signal: None,
        });
        assert_eq!(recorded_exit(dir.path(), 42), Some(Exit::Code(3)));
        // An earlier run's record says nothing about a later process.
        assert_eq!(recorded_exit(dir.path(), 43), None);
        write(&Record {
            pid: 43,
            exit_code: None,
            signal: Some(9),
        });
        assert_eq!(recorded_exit(dir.path(), 43).map(Exit::code), Some(137));
    }
}
