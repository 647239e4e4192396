//! `kubectl attach` (and `kubectl run -i`): the container's monitor ([`crate::shim`]) holds the
//! container's stdin (a pipe, or the terminal's master side when `tty: true`) and sees its
//! output as it is written, so it serves them on a Unix socket in the container's bundle
//! directory ([`SOCKET`]); the agent connects there for each attach session. This module is
//! the one place of that socket's protocol, spoken by both sides: frames of
//! `[kind: u8][length: u32, big-endian][payload]`.
//!
//! The agent first sends [`HELLO`] (one byte: [`WANT_STDIN`] | [`WANT_STDOUT`] |
//! [`WANT_STDERR`]), then [`STDIN`] data, [`RESIZE`] (`width: u16, height: u16`) and
//! [`CLOSE_STDIN`]; the monitor sends [`STDOUT`] and [`STDERR`] data and closes the socket
//! when the container has ended.
//!
//! Socket paths under a data dir easily pass the 108 bytes a Unix socket address can hold, so
//! both sides name the socket through an open descriptor of its directory ([`short_path`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use baton_remotecommand::{ExecOptions, Runner, SessionIo, status};

/// The socket's file name in the bundle directory.
pub const SOCKET: &str = "attach.sock";

pub const HELLO: u8 = 0;
pub const STDIN: u8 = 1;
pub const STDOUT: u8 = 2;
pub const STDERR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE_STDIN: u8 = 5;

pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// The largest payload either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// `dir/name` spelled as `/proc/<this process>/fd/<fd of dir>/name`: short whatever `dir` is,
/// and usable by other processes (runc) too. The returned handle must stay open while the
/// path is used.
pub fn short_path(dir: &Path, name: &str) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    let path = PathBuf::from(format!(
        "/proc/{}/fd/{}/{name}",
        std::process::id(),
        handle.as_raw_fd()
    ));
    Ok((handle, path))
}

/// One frame's bytes.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A [`RESIZE`] payload.
pub fn resize_payload(width: u16, height: u16) -> [u8; 4] {
    let w = width.to_be_bytes();
    let h = height.to_be_bytes();
    [w[0], w[1], h[0], h[1]]
}

/// Reads a [`RESIZE`] payload.
pub fn parse_resize(payload: &[u8]) -> Option<(u16, u16)> {
    let [a, b, c, d] = payload.try_into().ok()?;
    Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])))
}

/// The payload length a frame's head announces; None past [`MAX_FRAME`] (refused, not
/// allocated).
fn payload_len(head: &[u8; 5]) -> Option<usize> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    (len <= MAX_FRAME).then_some(len)
}

/// Reads one frame (blocking); `None` at the end of the stream or on a malformed frame.
pub fn read_frame(r: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).ok()?;
    let mut payload = vec![0u8; payload_len(&head)?];
    r.read_exact(&mut payload).ok()?;
    Some((head[0], payload))
}

/// Writes one frame (blocking).
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// Reads one frame from an async stream; `None` at the end or on a malformed frame.
pub async fn read_frame_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await.ok()?;
    let mut payload = vec![0u8; payload_len(&head)?];
    r.read_exact(&mut payload).await.ok()?;
    Some((head[0], payload))
}

/// The agent's side of an attach session: the client's stdin and window sizes go to the
/// monitor, the container's output comes back, until the container ends (the monitor closes
/// the socket) or the client goes (the runner is dropped, and with it the socket).
pub fn runner(conn: tokio::net::UnixStream, opts: &ExecOptions) -> Runner {
    let mut want = 0;
    for (on, bit) in [
        (opts.stdin, WANT_STDIN),
        (opts.stdout, WANT_STDOUT),
        // A terminal has one output: it arrives as stdout.
        (opts.stderr && !opts.tty, WANT_STDERR),
    ] {
        if on {
            want |= bit;
        }
    }
    Box::new(move |io: SessionIo| {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let (mut rd, mut wr) = conn.into_split();
            if wr.write_all(&frame(HELLO, &[want])).await.is_err() {
                return status::failure(500, "InternalError", "the container's monitor is gone");
            }
            let SessionIo {
                stdin,
                mut resize,
                out,
            } = io;
            let input = tokio::spawn(async move {
                let mut stdin = stdin;
                loop {
                    let bytes = tokio::select! {
                        b = async { stdin.as_mut()?.recv().await }, if stdin.is_some() => match b {
                            Some(data) => frame(STDIN, &data),
                            None => {
                                stdin = None;
                                frame(CLOSE_STDIN, &[])
                            }
                        },
                        Some(size) = resize.recv() => {
                            frame(RESIZE, &resize_payload(size.width, size.height))
                        }
                        // Nothing more to send; the socket's write side stays open (dropping
                        // it would end the session) until the output has ended.
                        else => std::future::pending().await,
                    };
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
            while let Some((kind, payload)) = read_frame_async(&mut rd).await {
                let channel = match kind {
                    STDOUT => baton_remotecommand::websocket::STDOUT,
                    STDERR => baton_remotecommand::websocket::STDERR,
                    _ => continue,
                };
                if out.send((channel, payload.into())).await.is_err() {
                    break;
                }
            }
            input.abort();
            status::success()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDIN, b"echo hi\n").expect("written");
        write_frame(&mut buf, RESIZE, &resize_payload(80, 24)).expect("written");
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r), Some((STDIN, b"echo hi\n".to_vec())));
        let (kind, p) = read_frame(&mut r).expect("a frame");
        assert_eq!((kind, parse_resize(&p)), (RESIZE, Some((80, 24))));
        assert_eq!(read_frame(&mut r), None);
        // A length past the limit is refused, not allocated.
        let mut huge = vec![STDIN];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(read_frame(&mut &huge[..]), None);
    }

    #[test]
    fn short_paths_reach_deep_directories() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let deep = dir.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).expect("created");
        let (_h, path) = short_path(&deep, SOCKET).expect("opened");
        assert!(path.as_os_str().len() < 50, "{}", path.display());
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bound");
        assert!(deep.join(SOCKET).exists());
        let (_h2, again) = short_path(&deep, SOCKET).expect("opened");
        let _client = std::os::unix::net::UnixStream::connect(&again).expect("connected");
        assert!(listener.accept().is_ok());
    }
}
