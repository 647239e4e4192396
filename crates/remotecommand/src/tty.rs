//! `exec -t`: the command runs on a pseudo-terminal of its own, as if typed in a terminal
//! window. `runc exec --tty` (what the agent hands over) then makes the container's terminal
//! and copies between it and this one, which must be its stdin and controlling terminal: it
//! sets it raw and follows its window size (`SIGWINCH`). The command is started through
//! util-linux's `setsid --ctty` (a new session whose controlling terminal is its stdin), so
//! no `unsafe` pre-exec hook is needed.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::exec::{ExecOptions, SessionIo};
use crate::status;
use crate::websocket::STDOUT;

/// How long output is still read after the command ended (its terminal drains).
const DRAIN: Duration = Duration::from_secs(2);

/// A new pseudo-terminal: (master, slave).
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, slave))
}

/// Sets a terminal's window size from its master side (`TIOCSWINSZ`): for `exec -t` here and
/// for attach sessions to a container's terminal in the node's monitor.
pub fn set_size(master: &impl std::os::fd::AsFd, width: u16, height: u16) {
    let ws = rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(master, ws);
}

/// Runs `cmd` on a new terminal: stdin to it, what it prints as stdout, sizes applied as they
/// come. Returns the `Status` to report.
pub async fn run(cmd: tokio::process::Command, opts: &ExecOptions, io: SessionIo) -> Value {
    let failed = |e: std::io::Error| {
        status::failure(
            500,
            "InternalError",
            &format!(
                "Internal error occurred: error executing command in container: failed to start {:?} on a terminal: {e}",
                opts.command.first().map(String::as_str).unwrap_or("")
            ),
        )
    };
    let (master, slave) = match open_pty() {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let std_cmd = cmd.as_std();
    let mut wrapped = tokio::process::Command::new("setsid");
    wrapped
        .args(["--ctty", "--wait"])
        .arg(std_cmd.get_program())
        .args(std_cmd.get_args())
        .kill_on_drop(true);
    for (key, value) in std_cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = std_cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let stdio = || slave.try_clone().map(Stdio::from);
    let (i, o, e) = match (stdio(), stdio(), stdio()) {
        (Ok(i), Ok(o), Ok(e)) => (i, o, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failed(e),
    };
    wrapped.stdin(i).stdout(o).stderr(e);
    let child = wrapped.spawn();
    // Only the command holds the terminal's other side now: its end is the master's EOF.
    drop(wrapped);
    drop(slave);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let (reader, writer) = match (master.try_clone(), master.try_clone()) {
        (Ok(r), Ok(w)) => (std::fs::File::from(r), std::fs::File::from(w)),
        (Err(e), _) | (_, Err(e)) => return failed(e),
    };
    let SessionIo {
        stdin,
        mut resize,
        out,
    } = io;
    // Blocking reads and writes on threads of their own: a terminal's master is a plain
    // character device.
    let output = read_output(reader, out);
    if let Some(rx) = stdin {
        write_input(writer, rx);
    }
    let exit = loop {
        tokio::select! {
            exit = child.wait() => break exit,
            Some(size) = resize.recv() => set_size(&master, size.width, size.height),
        }
    };
    let _ = tokio::time::timeout(DRAIN, output).await;
    drop(master);
    match exit {
        Ok(s) => match s.code().unwrap_or(1) {
            0 => status::success(),
            code => status::exit_code(&opts.command, code),
        },
        Err(e) => status::failure(
            500,
            "InternalError",
            &format!("waiting for the command: {e}"),
        ),
    }
}

/// Copies the terminal's output to `out` until its end (EIO once every slave side closed).
fn read_output(
    mut reader: std::fs::File,
    out: mpsc::Sender<(u8, Bytes)>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out
                        .blocking_send((STDOUT, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    })
}

/// Writes the client's input to the terminal until the client closes stdin.
fn write_input(mut writer: std::fs::File, mut rx: mpsc::Receiver<Bytes>) {
    tokio::task::spawn_blocking(move || {
        while let Some(b) = rx.blocking_recv() {
            if writer.write_all(&b).is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_sees_a_terminal_of_the_size_sent() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "read x; tty; stty size; echo got $x; exit 4"]);
        let opts = ExecOptions {
            command: vec!["sh".into()],
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
        let (size_tx, size_rx) = mpsc::channel(4);
        size_tx
            .send(crate::exec::TermSize {
                width: 100,
                height: 30,
            })
            .await
            .expect("size");
        let collect = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some((ch, b)) = out_rx.recv().await {
                assert_eq!(ch, STDOUT);
                got.extend_from_slice(&b);
            }
            String::from_utf8_lossy(&got).into_owned()
        });
        let io = SessionIo {
            stdin: Some(in_rx),
            resize: size_rx,
            out: out_tx,
        };
        let session = tokio::spawn(async move { run(cmd, &opts, io).await });
        // Let the size arrive before the line is read.
        tokio::time::sleep(Duration::from_millis(300)).await;
        in_tx
            .send(Bytes::from_static(b"hello\n"))
            .await
            .expect("stdin");
        let s = session.await.expect("the session ends");
        let got = collect.await.expect("collect");
        assert!(got.contains("/dev/pts/"), "{got}");
        assert!(got.contains("30 100"), "{got}");
        // A terminal echoes the input and ends lines with CRLF.
        assert!(got.contains("got hello\r\n"), "{got}");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "4");
    }
}
