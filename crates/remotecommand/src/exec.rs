//! `exec`: runs the agent's command with the requested stdio and carries it over the
//! negotiated transport. The command's run ([`run`]) knows nothing of transports: it reads
//! stdin from a channel and sends `(channel, bytes)` output; each transport routes those to its
//! streams and finally writes the exit `Status` on the error stream.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, Response};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::spdy::{self, Event, Session};
use crate::upgrade::{self, Transport};
use crate::websocket::{self, Incoming, STDERR, STDIN, STDOUT};
use crate::{Body, PodStreams, status};

/// How long a SPDY client has to open the streams its query announced.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The query of an exec (or attach) request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Parses `command=a&command=b&stdin=1&stdout=true&…` (both `1` and `true` are accepted).
    pub fn from_query(query: Option<&str>) -> Self {
        let mut o = ExecOptions::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let on = matches!(v.as_ref(), "1" | "true" | "True" | "TRUE");
            match k.as_ref() {
                "command" => o.command.push(v.into_owned()),
                "stdin" | "input" => o.stdin = on,
                "stdout" | "output" => o.stdout = on,
                "stderr" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        o
    }
}

/// Serves `/exec/{namespace}/{pod}/{container}`: negotiates WebSocket (`v5`/`v4.channel.k8s.io`)
/// or SPDY/3.1 (`v4.channel.k8s.io`), answers `101`, and runs the command in a spawned task.
pub async fn serve_exec<B>(
    mut req: Request<B>,
    streams: Arc<dyn PodStreams>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    let opts = ExecOptions::from_query(req.uri().query());
    if opts.command.is_empty() {
        return status::response(400, "you must specify at least 1 command");
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return status::response(
            400,
            "you must specify at least one of stdin, stdout, stderr",
        );
    }
    if opts.tty {
        return status::response(
            400,
            "a terminal (tty) is not supported by this node yet; run the command without -t",
        );
    }
    let Some(transport) = upgrade::transport(req.headers()) else {
        return status::response(400, "exec requires an upgrade to WebSocket or SPDY/3.1");
    };
    let supported: &[&'static str] = match transport {
        Transport::WebSocket => &[websocket::V5_CHANNEL, websocket::V4_CHANNEL],
        Transport::Spdy => &[websocket::V4_CHANNEL],
    };
    let protocol = match upgrade::negotiate(req.headers(), transport, supported) {
        Ok(p) => p,
        Err(m) => return status::response(403, &m),
    };
    let cmd = match streams
        .exec_command(namespace, pod, container, &opts.command, opts.tty)
        .await
    {
        Ok(c) => c,
        Err(e) => return status::response(e.code(), &e.to_string()),
    };
    let response = match transport {
        Transport::WebSocket => match upgrade::websocket_switching(req.headers(), protocol) {
            Some(r) => r,
            None => return status::response(400, "missing Sec-WebSocket-Key"),
        },
        Transport::Spdy => upgrade::spdy_switching(protocol),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let target = format!("{namespace}/{pod}/{container}");
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%target, error = %e, "exec upgrade failed");
                return;
            }
        };
        tracing::info!(%target, command = ?opts.command, protocol, "exec");
        match transport {
            Transport::WebSocket => {
                let ws = websocket::server(upgraded).await;
                exec_websocket(ws, protocol == websocket::V5_CHANNEL, cmd, opts).await;
            }
            Transport::Spdy => {
                let session = Session::start(hyper_util::rt::TokioIo::new(upgraded));
                exec_spdy(session, cmd, opts).await;
            }
        }
    });
    response
}

/// Serves `/attach/…`: not supported yet (the agent does not keep a container's stdio open).
pub async fn serve_attach<B>(
    _req: Request<B>,
    _streams: Arc<dyn PodStreams>,
    _namespace: &str,
    _pod: &str,
    _container: &str,
) -> Response<Body> {
    status::response(501, "attach is not supported by this node yet; use exec")
}

/// Runs `cmd` with the requested stdio: stdin from `stdin` (closed when the channel is),
/// output as `(channel, bytes)` on `out`. Returns the `Status` to report.
pub async fn run(
    mut cmd: tokio::process::Command,
    opts: &ExecOptions,
    stdin: Option<mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<(u8, Bytes)>,
) -> Value {
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(opts.stdin && stdin.is_some()))
        .stdout(pipe(opts.stdout))
        .stderr(pipe(opts.stderr))
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return status::failure(
                500,
                "InternalError",
                &format!(
                    "Internal error occurred: error executing command in container: failed to start {:?}: {e}",
                    opts.command.first().map(String::as_str).unwrap_or("")
                ),
            );
        }
    };
    if let (Some(mut pipe), Some(mut rx)) = (child.stdin.take(), stdin) {
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if pipe.write_all(&b).await.is_err() {
                    return;
                }
            }
            // Dropping the pipe closes it: the command sees end-of-file.
        });
    }
    let pumps = [
        child.stdout.take().map(|p| pump(p, STDOUT, out.clone())),
        child.stderr.take().map(|p| pump(p, STDERR, out.clone())),
    ];
    drop(out);
    let exit = child.wait().await;
    for p in pumps.into_iter().flatten() {
        let _ = p.await;
    }
    match exit {
        Ok(s) => match exit_code(s) {
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

#[cfg(unix)]
fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    // A command killed by a signal reports 128+signal, as shells and runc do.
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

#[cfg(not(unix))]
fn exit_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or(1)
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    channel: u8,
    out: mpsc::Sender<(u8, Bytes)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out
                        .send((channel, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    })
}

fn status_bytes(s: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(s).unwrap_or_default())
}

async fn exec_websocket(
    ws: websocket::Socket,
    v5: bool,
    cmd: tokio::process::Command,
    opts: ExecOptions,
) {
    let (mut sink, mut source) = ws.split();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut stdin_tx = opts.stdin.then_some(stdin_tx);
    let run = run(cmd, &opts, opts.stdin.then_some(stdin_rx), out_tx);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            s = &mut run => break Some(s),
            Some((ch, data)) = out_rx.recv() => {
                if sink.send(websocket::encode(ch, &data)).await.is_err() {
                    break None;
                }
            }
            msg = source.next() => match msg {
                Some(Ok(Message::Binary(b))) => match websocket::decode(b, v5) {
                    Some(Incoming::Data { channel: STDIN, data }) => {
                        if let Some(tx) = &stdin_tx && !data.is_empty() && tx.send(data).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                    Some(Incoming::Close { channel: STDIN }) => stdin_tx = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client is gone: stop the command.
                    break None;
                }
                Some(Ok(_)) => {}
            },
        }
    };
    let Some(result) = result else { return };
    while let Some((ch, data)) = out_rx.recv().await {
        if sink.send(websocket::encode(ch, &data)).await.is_err() {
            return;
        }
    }
    let _ = sink
        .send(websocket::encode(websocket::ERROR, &status_bytes(&result)))
        .await;
    // A normal-closure code: kubectl reads it as the end of every stream (an empty close
    // frame is an error to it).
    let _ = sink.send(websocket::normal_close()).await;
    let _ = sink.close().await;
    // Let the client's close frame arrive so the connection ends cleanly.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = source.next().await {}
    })
    .await;
}

async fn exec_spdy(mut session: Session, cmd: tokio::process::Command, opts: ExecOptions) {
    let mut wanted: Vec<&'static str> = vec!["error"];
    for (on, name) in [
        (opts.stdin, "stdin"),
        (opts.stdout, "stdout"),
        (opts.stderr, "stderr"),
        (opts.tty, "resize"),
    ] {
        if on {
            wanted.push(name);
        }
    }
    let mut ids: HashMap<&'static str, u32> = HashMap::new();
    let opened = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while ids.len() < wanted.len() {
            match session.events.recv().await {
                Some(Event::Opened { id, headers }) => {
                    let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                    if let Some(w) = wanted.iter().find(|w| **w == kind) {
                        ids.insert(w, id);
                    }
                }
                Some(_) => {}
                None => return false,
            }
        }
        true
    })
    .await;
    if !matches!(opened, Ok(true)) {
        tracing::debug!(?ids, "exec: the client did not open its streams");
        session.finish().await;
        return;
    }
    let id = |name: &str| ids.get(name).copied();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut stdin_tx = opts.stdin.then_some(stdin_tx);
    let stdin_id = id("stdin");
    let run = run(cmd, &opts, opts.stdin.then_some(stdin_rx), out_tx);
    tokio::pin!(run);
    let sender = session.sender.clone();
    let out_id = |ch: u8| match ch {
        STDOUT => id("stdout"),
        _ => id("stderr"),
    };
    let mut reading = true;
    let result = loop {
        tokio::select! {
            s = &mut run => break Some(s),
            Some((ch, data)) = out_rx.recv() => {
                if let Some(sid) = out_id(ch) && sender.data(sid, data).await.is_err() {
                    break None;
                }
            }
            ev = session.events.recv(), if reading => match ev {
                Some(Event::Data { id, data, fin }) if Some(id) == stdin_id => {
                    if let Some(tx) = &stdin_tx && !data.is_empty() && tx.send(data).await.is_err() {
                        stdin_tx = None;
                    }
                    if fin {
                        stdin_tx = None;
                    }
                }
                Some(Event::Reset { id }) if Some(id) == stdin_id => stdin_tx = None,
                Some(_) => {}
                None => {
                    // The client stopped sending; output may still be read.
                    reading = false;
                    stdin_tx = None;
                }
            },
        }
    };
    let Some(result) = result else {
        session.finish().await;
        return;
    };
    while let Some((ch, data)) = out_rx.recv().await {
        if let Some(sid) = out_id(ch)
            && sender.data(sid, data).await.is_err()
        {
            break;
        }
    }
    for name in ["stdout", "stderr"] {
        if let Some(sid) = id(name) {
            let _ = sender.close(sid).await;
        }
    }
    if let Some(eid) = id("error") {
        let _ = sender.data(eid, status_bytes(&result)).await;
        let _ = sender.close(eid).await;
    }
    drop(sender);
    session.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_exec_query() {
        let o = ExecOptions::from_query(Some(
            "command=sh&command=-c&command=echo+a%20b&stdin=true&stdout=1&stderr=0&tty=false",
        ));
        assert_eq!(
            o,
            ExecOptions {
                command: vec!["sh".into(), "-c".into(), "echo a b".into()],
                stdin: true,
                stdout: true,
                stderr: false,
                tty: false,
            }
        );
    }

    struct NoPods;

    #[async_trait::async_trait]
    impl PodStreams for NoPods {
        async fn exec_command(
            &self,
            namespace: &str,
            pod: &str,
            _container: &str,
            _cmd: &[String],
            _tty: bool,
        ) -> Result<tokio::process::Command, crate::StreamError> {
            Err(crate::StreamError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })
        }

        async fn pod_addr(
            &self,
            namespace: &str,
            pod: &str,
        ) -> Result<std::net::IpAddr, crate::StreamError> {
            Err(crate::StreamError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })
        }
    }

    async fn answer(uri: &str, upgrade: Option<&str>) -> (u16, String) {
        let mut b = Request::builder().uri(uri);
        if let Some(u) = upgrade {
            b = b
                .header("upgrade", u)
                .header("x-stream-protocol-version", "v4.channel.k8s.io");
        }
        let req = b.body(()).expect("request");
        let r = serve_exec(req, Arc::new(NoPods), "d", "p", "c").await;
        let code = r.status().as_u16();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
            .unwrap_or_default();
        (code, body)
    }

    #[tokio::test]
    async fn refusals_before_the_upgrade() {
        let (code, body) = answer("/exec/d/p/c?command=sh&stdout=1&tty=1", Some("SPDY/3.1")).await;
        assert_eq!(code, 400);
        assert!(body.contains("tty"), "{body}");
        let (code, _) = answer("/exec/d/p/c?stdout=1", Some("SPDY/3.1")).await;
        assert_eq!(code, 400);
        let (code, _) = answer("/exec/d/p/c?command=sh", Some("SPDY/3.1")).await;
        assert_eq!(code, 400);
        let (code, _) = answer("/exec/d/p/c?command=sh&stdout=1", None).await;
        assert_eq!(code, 400);
        let (code, body) = answer("/exec/d/p/c?command=sh&stdout=1", Some("SPDY/3.1")).await;
        assert_eq!(code, 404);
        assert!(body.contains("pod d/p not found"), "{body}");
    }

    #[tokio::test]
    async fn run_reports_output_and_exit_code() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "read x; echo out $x; echo err >&2; exit 3"]);
        let opts = ExecOptions {
            command: vec!["sh".into()],
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
        in_tx
            .send(Bytes::from_static(b"hi\n"))
            .await
            .expect("stdin");
        drop(in_tx);
        let collect = tokio::spawn(async move {
            let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
            while let Some((ch, b)) = out_rx.recv().await {
                got.entry(ch).or_default().extend_from_slice(&b);
            }
            got
        });
        let s = run(cmd, &opts, Some(in_rx), out_tx).await;
        let got = collect.await.expect("collect");
        assert_eq!(got.get(&STDOUT).map(Vec::as_slice), Some(&b"out hi\n"[..]));
        assert_eq!(got.get(&STDERR).map(Vec::as_slice), Some(&b"err\n"[..]));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
