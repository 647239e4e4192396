//! The per-container monitor (containerd's shim, reduced to what Baton needs): a small process
//! of its own session that starts the container with `runc run --detach`, owns its stdio
//! (stdout and stderr pipes, or a terminal, written to the log as CRI records and rotated by
//! size: [`crate::logs::rotate`]; stdin for
//! attach sessions, served on a socket: [`crate::attach`]), becomes the container's parent (it is a child subreaper, so the container's init is reparented to it
//! when runc exits), waits for it to end and records how in `<bundle>/exit`, durably, before
//! reaping it. It does not depend on the agent: when the server is killed or restarted the
//! monitor stays, and the next agent reads the record ([`recorded_exit`]) to report the exit
//! code of a container that ended while no agent ran.
//!
//! It is the binary's hidden `shim` subcommand ([`SUBCOMMAND`]), started by
//! [`crate::host::LinuxHost::run`]; it writes [`STARTED`] on its stdout once the container
//! runs and closes it, or exits when runc failed (runc's reason is in the log).
//! Synchronous code, no runtime: it sleeps in `waitid` until the container ends; one thread
//! per output and per attach session.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::host::Exit;
use crate::logs::rotate::{LogWriter, Rotation};
use crate::logs::{MAX_RECORD, Stream, encode_record};

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

/// How the container's stdio is set up (the container spec's `stdin`, `stdinOnce`, `tty`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stdio {
    /// Keep the container's stdin open for attach sessions (else it reads /dev/null).
    pub stdin: bool,
    /// Close stdin when the first attach session that wrote to it ends.
    pub stdin_once: bool,
    /// The container runs on a terminal (`process.terminal` in its config).
    pub tty: bool,
}

/// The monitor: starts container `id` from `bundle` with runc (state under `runc_root`), writes
/// its output to `log` as CRI log records ([`crate::logs`]) rotated by `rotation`, serves
/// attach sessions ([`crate::attach`]), waits for it to end and records how. Returns the
/// process's exit code (0 once the record is written).
pub fn run(
    runc_root: &Path,
    bundle: &Path,
    log: &Path,
    rotation: Rotation,
    id: &str,
    stdio: Stdio,
) -> i32 {
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
    let _ = std::fs::remove_file(bundle.join(crate::attach::SOCKET));
    let _ = std::fs::remove_file(bundle.join(CONSOLE_SOCKET));
    // A leftover stopped container of the same id (an earlier attempt) goes first.
    let _ = Command::new("runc")
        .arg("--root")
        .arg(runc_root)
        .args(["delete", "--force", id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let Ok(writer) = LogWriter::open(log, rotation) else {
        return 1;
    };
    let log = Arc::new(Mutex::new(writer));
    let Ok(started) = start(runc_root, bundle, id, stdio) else {
        return 1;
    };
    let Started {
        stdout,
        stderr,
        stdin,
        console,
        runc_ok,
    } = started;
    let hub = Arc::new(Hub::default());
    // runc's own messages arrive on the stderr pipe (it is the container's too): they are
    // logged like the container's, so the agent reads a failed start's reason from the log.
    let mut outputs = vec![pump(stderr, Stream::Stderr, log.clone(), hub.clone())];
    if let Some(out) = stdout {
        outputs.push(pump(out, Stream::Stdout, log.clone(), hub.clone()));
    }
    if !runc_ok {
        for o in outputs {
            let _ = o.join();
        }
        return 1;
    }
    let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return 1;
    };
    let input = match (console, stdin) {
        (Some(master), _) => {
            let reader = master.try_clone().ok();
            if let Some(r) = reader {
                outputs.push(pump(r.into(), Stream::Stdout, log.clone(), hub.clone()));
            }
            Some(Input::Terminal(master))
        }
        (None, Some(pipe)) => Some(Input::Pipe(pipe)),
        (None, None) => None,
    };
    *hub.input.lock().unwrap_or_else(|e| e.into_inner()) = input;
    serve_attach(bundle, hub.clone(), stdio.stdin_once);
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{STARTED}");
        let _ = stdout.flush();
    }
    // Close stdout so that the agent's read ends (the agent waits for that line only).
    let _ = nix::unistd::close(1);
    watch(bundle, pid, outputs, &hub)
}

/// The console socket's file name in the bundle directory (runc sends a terminal's master
/// side there).
const CONSOLE_SOCKET: &str = "console.sock";

struct Started {
    /// The stdout pipe (None on a terminal: output comes from the master side).
    stdout: Option<OwnedFd>,
    stderr: OwnedFd,
    /// The write side of the container's stdin pipe.
    stdin: Option<std::fs::File>,
    /// A terminal's master side.
    console: Option<std::fs::File>,
    runc_ok: bool,
}

/// Runs `runc run --detach` with the container's stdio: pipes, or a terminal whose master side
/// runc hands over on the console socket.
fn start(runc_root: &Path, bundle: &Path, id: &str, stdio: Stdio) -> std::io::Result<Started> {
    use nix::fcntl::OFlag;
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from);
    let (err_r, err_w) = pipe()?;
    let mut cmd = Command::new("runc");
    cmd.arg("--root").arg(runc_root).arg("run").arg("--detach");
    let mut stdout = None;
    let mut stdin = None;
    let mut console = None;
    // Held open until runc has run: the console socket's path names it.
    let mut _dir = None;
    if stdio.tty {
        let (dir, path) = crate::attach::short_path(bundle, CONSOLE_SOCKET)?;
        _dir = Some(dir);
        let listener = UnixListener::bind(&path)?;
        cmd.arg("--console-socket").arg(&path);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(err_w.try_clone()?));
        console = Some(listener);
    } else {
        let (out_r, out_w) = pipe()?;
        cmd.stdout(std::process::Stdio::from(out_w));
        stdout = Some(out_r);
        if stdio.stdin {
            let (in_r, in_w) = pipe()?;
            cmd.stdin(std::process::Stdio::from(in_r));
            stdin = Some(std::fs::File::from(in_w));
        } else {
            cmd.stdin(std::process::Stdio::null());
        }
    }
    cmd.stderr(std::process::Stdio::from(err_w))
        .arg("--bundle")
        .arg(bundle)
        .arg("--pid-file")
        .arg(bundle.join("pid"))
        .arg(id);
    let runc_ok = cmd.status().is_ok_and(|s| s.success());
    // `cmd` (and with it the pipes' write sides this process held) is dropped here: the
    // readers see end-of-file once the container's processes close theirs.
    drop(cmd);
    let console = match console {
        Some(listener) if runc_ok => {
            let master = receive_fd(&listener);
            let _ = std::fs::remove_file(bundle.join(CONSOLE_SOCKET));
            Some(master?)
        }
        _ => None,
    };
    Ok(Started {
        stdout,
        stderr: err_r,
        stdin,
        console,
        runc_ok,
    })
}

/// Accepts runc's connection on the console socket and takes the descriptor it sends.
fn receive_fd(listener: &UnixListener) -> std::io::Result<std::fs::File> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    use std::mem::MaybeUninit;
    listener.set_nonblocking(true)?;
    // runc has sent the descriptor before `runc run --detach` returned: it is queued.
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(false)?;
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    recvmsg(&conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(std::fs::File::from(fd));
        }
    }
    Err(std::io::Error::other("runc sent no terminal"))
}

/// Where attach sessions' input goes.
enum Input {
    Pipe(std::fs::File),
    Terminal(std::fs::File),
}

/// The attach sessions of a container: who gets its output, and its stdin.
#[derive(Default)]
struct Hub {
    sessions: Mutex<Vec<Session>>,
    input: Mutex<Option<Input>>,
    next: std::sync::atomic::AtomicU64,
}

struct Session {
    id: u64,
    conn: UnixStream,
    stdout: bool,
    stderr: bool,
}

impl Hub {
    /// Sends `data` of `stream` to every session that asked for it; a session that cannot
    /// take it within a second is dropped (the container's output never waits on a client).
    fn broadcast(&self, stream: Stream, data: &[u8]) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.is_empty() {
            return;
        }
        let kind = match stream {
            Stream::Stdout => crate::attach::STDOUT,
            Stream::Stderr => crate::attach::STDERR,
        };
        let bytes = crate::attach::frame(kind, data);
        sessions.retain_mut(|s| {
            let wanted = match stream {
                Stream::Stdout => s.stdout,
                Stream::Stderr => s.stderr,
            };
            !wanted || (&s.conn).write_all(&bytes).is_ok()
        });
    }

    /// Ends every session (the container has ended).
    fn close_all(&self) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for s in sessions.drain(..) {
            let _ = s.conn.shutdown(std::net::Shutdown::Both);
        }
    }

    fn forget(&self, id: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|s| s.id != id);
    }

    fn write_input(&self, data: &[u8]) -> bool {
        let mut input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        let ok = match input.as_mut() {
            Some(Input::Pipe(f)) | Some(Input::Terminal(f)) => f.write_all(data).is_ok(),
            None => false,
        };
        if !ok {
            *input = None;
        }
        ok
    }

    fn resize(&self, width: u16, height: u16) {
        let input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Input::Terminal(master)) = input.as_ref() {
            baton_remotecommand::tty::set_size(master, width, height);
        }
    }

    /// Closes the container's stdin: a pipe's reader sees end-of-file; a terminal gets an
    /// end-of-file character (closing its master side would hang it up).
    fn close_input(&self) {
        let mut input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Input::Terminal(master)) = input.as_mut() {
            let _ = master.write_all(&[4]);
        }
        *input = None;
    }
}

/// Copies one output of the container into the log (as CRI records) and to the attach
/// sessions, until its end.
fn pump(
    from: OwnedFd,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
    hub: Arc<Hub>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = std::fs::File::from(from);
        let mut buf = vec![0u8; 32 * 1024];
        let mut line: Vec<u8> = Vec::new();
        let mut records = Vec::new();
        loop {
            // A terminal's master side reads EIO once the container closed its side: the end.
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = &buf[..n];
            hub.broadcast(stream, data);
            let time = baton_api::clock::rfc3339_nano(baton_api::clock::now());
            records.clear();
            for piece in data.split_inclusive(|b| *b == b'\n') {
                let (content, ends) = match piece.strip_suffix(b"\n") {
                    Some(c) => (c, true),
                    None => (piece, false),
                };
                line.extend_from_slice(content);
                while line.len() > MAX_RECORD {
                    let rest = line.split_off(MAX_RECORD);
                    encode_record(&mut records, &time, stream, true, &line);
                    line = rest;
                }
                if ends {
                    encode_record(&mut records, &time, stream, false, &line);
                    line.clear();
                }
            }
            if !records.is_empty() {
                let _ = log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .write_records(&records);
            }
        }
        if !line.is_empty() {
            let time = baton_api::clock::rfc3339_nano(baton_api::clock::now());
            records.clear();
            encode_record(&mut records, &time, stream, true, &line);
            let _ = log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_records(&records);
        }
    })
}

/// Serves attach sessions on the bundle's socket, one thread per session.
fn serve_attach(bundle: &Path, hub: Arc<Hub>, stdin_once: bool) {
    let Ok((dir, path)) = crate::attach::short_path(bundle, crate::attach::SOCKET) else {
        return;
    };
    let Ok(listener) = UnixListener::bind(&path) else {
        return;
    };
    drop(dir);
    std::thread::spawn(move || {
        let once_used = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let hub = hub.clone();
            let once_used = once_used.clone();
            std::thread::spawn(move || session(conn, &hub, stdin_once, &once_used));
        }
    });
}

/// One attach session: registers for the output it wants, then carries its input.
fn session(
    mut conn: UnixStream,
    hub: &Hub,
    stdin_once: bool,
    once_used: &std::sync::atomic::AtomicBool,
) {
    use crate::attach::*;
    use std::sync::atomic::Ordering;
    let Some((HELLO, want)) = read_frame(&mut conn) else {
        return;
    };
    let want = want.first().copied().unwrap_or(0);
    let Ok(writer) = conn.try_clone() else {
        return;
    };
    let _ = writer.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    hub.sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Session {
            id,
            conn: writer,
            stdout: want & WANT_STDOUT != 0,
            stderr: want & WANT_STDERR != 0,
        });
    let mut writes_stdin = want & WANT_STDIN != 0;
    // `stdinOnce`: the first session that wrote to stdin closes it when it ends (closes its
    // stdin, or goes).
    let end_of_input = || {
        if stdin_once && !once_used.swap(true, Ordering::Relaxed) {
            hub.close_input();
        }
    };
    while let Some((kind, payload)) = read_frame(&mut conn) {
        match kind {
            STDIN if writes_stdin => {
                hub.write_input(&payload);
            }
            RESIZE => {
                if let Some((w, h)) = parse_resize(&payload) {
                    hub.resize(w, h);
                }
            }
            // The session still gets output until the container ends or the client goes.
            CLOSE_STDIN if writes_stdin => {
                writes_stdin = false;
                end_of_input();
            }
            _ => {}
        }
    }
    hub.forget(id);
    if writes_stdin {
        end_of_input();
    }
}

/// Waits for `pid` (reparented to this subreaper when runc exited) to end, records how, then
/// reaps it; other children (processes of the container orphaned to us) are reaped on the way.
fn watch(bundle: &Path, pid: i32, outputs: Vec<std::thread::JoinHandle<()>>, hub: &Hub) -> i32 {
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
            // The output written before the end is in the log before the end is recorded (a
            // process of the container that outlived it and still holds the pipe is not
            // waited for long).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            for o in outputs.iter() {
                while !o.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            hub.close_all();
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
