//! `exec` and `attach`: a session's [`Runner`] (the agent's command with the requested stdio,
//! on a terminal when `tty=1`, or an attach to a running container) carried over the
//! negotiated transport. A runner knows nothing of transports: it reads stdin and terminal
//! sizes from channels and sends `(channel, bytes)` output ([`SessionIo`]); each transport
//! routes those to its streams and finally writes the runner's `Status` on the error stream.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use http::{Request, Response};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::spdy::{self, Event, Session};
use crate::upgrade::{self, Transport};
use crate::websocket::{self, Incoming, RESIZE, STDERR, STDIN, STDOUT};
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

/// A terminal size, as kubectl sends it on the resize stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// A session's streams as its runner sees them.
pub struct SessionIo {
    /// The client's stdin (None when it sends none); closed when the client closes it.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal sizes (only a terminal session gets any).
    pub resize: mpsc::Receiver<TermSize>,
    /// Output, as `(STDOUT | STDERR, bytes)`.
    pub out: mpsc::Sender<(u8, Bytes)>,
}

/// What a session runs: given its streams, it ends with the `Status` to report.
pub type Runner = Box<dyn FnOnce(SessionIo) -> BoxFuture<'static, Value> + Send>;

/// A runner for a command (`runc exec …`): with pipes, or on a pseudo-terminal of its own when
/// `opts.tty` (the command then sees a terminal on stdin, stdout and stderr, as its
/// controlling terminal, so it gets `SIGWINCH` when the client's window changes).
pub fn command_runner(cmd: tokio::process::Command, opts: &ExecOptions) -> Runner {
    let opts = opts.clone();
    Box::new(move |io: SessionIo| {
        Box::pin(async move {
            if opts.tty {
                crate::tty::run(cmd, &opts, io).await
            } else {
                run(cmd, &opts, io.stdin, io.out).await
            }
        })
    })
}

/// Serves `/exec/{namespace}/{pod}/{container}`: negotiates WebSocket (`v5`/`v4.channel.k8s.io`)
/// or SPDY/3.1 (`v4.channel.k8s.io`), answers `101`, and runs the command in a spawned task.
pub async fn serve_exec<B>(
    req: Request<B>,
    streams: Arc<dyn PodStreams>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    serve_session(req, streams, Target::new(namespace, pod, container), "exec").await
}

/// Serves `/attach/{namespace}/{pod}/{container}`: the container's own stdin and output (it
/// must have been started with `stdin: true` to take input), over the same transports as exec.
pub async fn serve_attach<B>(
    req: Request<B>,
    streams: Arc<dyn PodStreams>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    serve_session(
        req,
        streams,
        Target::new(namespace, pod, container),
        "attach",
    )
    .await
}

/// The container a session is for.
struct Target {
    namespace: String,
    pod: String,
    container: String,
}

impl Target {
    fn new(namespace: &str, pod: &str, container: &str) -> Self {
        Target {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        }
    }
}

/// Checks the query, negotiates the transport, asks the agent for the session's runner
/// (`what`: "exec" or "attach"), answers `101` and runs the session in a spawned task once
/// upgraded.
async fn serve_session<B>(
    mut req: Request<B>,
    streams: Arc<dyn PodStreams>,
    t: Target,
    what: &'static str,
) -> Response<Body> {
    let mut opts = ExecOptions::from_query(req.uri().query());
    let exec = what == "exec";
    if exec && opts.command.is_empty() {
        return status::response(400, "you must specify at least 1 command");
    }
    if !exec {
        opts.command.clear();
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return status::response(
            400,
            "you must specify at least one of stdin, stdout, stderr",
        );
    }
    let Some(transport) = upgrade::transport(req.headers()) else {
        let msg = format!("{what} requires an upgrade to WebSocket or SPDY/3.1");
        return status::response(400, &msg);
    };
    let supported: &[&'static str] = match transport {
        Transport::WebSocket => &[websocket::V5_CHANNEL, websocket::V4_CHANNEL],
        Transport::Spdy => &[websocket::V4_CHANNEL],
    };
    let protocol = match upgrade::negotiate(req.headers(), transport, supported) {
        Ok(p) => p,
        Err(m) => return status::response(403, &m),
    };
    let runner = if exec {
        streams
            .exec(&t.namespace, &t.pod, &t.container, &opts)
            .await
    } else {
        streams
            .attach(&t.namespace, &t.pod, &t.container, &opts)
            .await
    };
    let runner = match runner {
        Ok(r) => r,
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
    let target = format!("{}/{}/{}", t.namespace, t.pod, t.container);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%target, error = %e, what, "upgrade failed");
                return;
            }
        };
        tracing::info!(%target, command = ?opts.command, tty = opts.tty, protocol, what);
        match transport {
            Transport::WebSocket => {
                let ws = websocket::server(upgraded).await;
                session_websocket(ws, protocol == websocket::V5_CHANNEL, runner, opts).await;
            }
            Transport::Spdy => {
                let session = Session::start(hyper_util::rt::TokioIo::new(upgraded));
                session_spdy(session, runner, opts).await;
            }
        }
    });
    response
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

/// Terminal sizes from a resize stream's bytes: JSON objects one after another, possibly cut
/// across frames (`buf` keeps an unfinished one).
fn sizes(buf: &mut Vec<u8>, data: &[u8]) -> Vec<TermSize> {
    buf.extend_from_slice(data);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<TermSize>();
    loop {
        match it.next() {
            Some(Ok(size)) => {
                out.push(size);
                consumed = it.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => break,
            // Not a size: drop what was sent so far.
            Some(Err(_)) => {
                consumed = buf.len();
                break;
            }
            None => {
                consumed = buf.len();
                break;
            }
        }
    }
    buf.drain(..consumed);
    // A client cannot make the server hold more than one size's worth of garbage.
    if buf.len() > 4096 {
        buf.clear();
    }
    out
}

/// The channels between a transport and its runner.
struct Plumbing {
    stdin_tx: Option<mpsc::Sender<Bytes>>,
    resize_tx: Option<mpsc::Sender<TermSize>>,
    out_rx: mpsc::Receiver<(u8, Bytes)>,
    resize_buf: Vec<u8>,
}

/// Starts `runner` with fresh channels.
fn plumb(runner: Runner, opts: &ExecOptions) -> (Plumbing, BoxFuture<'static, Value>) {
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (out_tx, out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<TermSize>(4);
    let io = SessionIo {
        stdin: opts.stdin.then_some(stdin_rx),
        resize: resize_rx,
        out: out_tx,
    };
    let plumbing = Plumbing {
        stdin_tx: opts.stdin.then_some(stdin_tx),
        resize_tx: opts.tty.then_some(resize_tx),
        out_rx,
        resize_buf: Vec::new(),
    };
    (plumbing, runner(io))
}

impl Plumbing {
    async fn stdin(&mut self, data: Bytes) {
        if let Some(tx) = &self.stdin_tx
            && !data.is_empty()
            && tx.send(data).await.is_err()
        {
            self.stdin_tx = None;
        }
    }

    fn resize(&mut self, data: &[u8]) {
        if let Some(tx) = &self.resize_tx {
            for size in sizes(&mut self.resize_buf, data) {
                // The newest size matters; one not taken yet can be dropped.
                let _ = tx.try_send(size);
            }
        }
    }
}

async fn session_websocket(ws: websocket::Socket, v5: bool, runner: Runner, opts: ExecOptions) {
    let (mut sink, mut source) = ws.split();
    let (mut p, run) = plumb(runner, &opts);
    let mut run = run;
    let result = loop {
        tokio::select! {
            s = &mut run => break Some(s),
            Some((ch, data)) = p.out_rx.recv() => {
                if sink.send(websocket::encode(ch, &data)).await.is_err() {
                    break None;
                }
            }
            msg = source.next() => match msg {
                Some(Ok(Message::Binary(b))) => match websocket::decode(b, v5) {
                    Some(Incoming::Data { channel: STDIN, data }) => p.stdin(data).await,
                    Some(Incoming::Data { channel: RESIZE, data }) => p.resize(&data),
                    Some(Incoming::Close { channel: STDIN }) => p.stdin_tx = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client is gone: stop the session.
                    break None;
                }
                Some(Ok(_)) => {}
            },
        }
    };
    let Some(result) = result else { return };
    while let Some((ch, data)) = p.out_rx.recv().await {
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

async fn session_spdy(mut session: Session, runner: Runner, opts: ExecOptions) {
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
        tracing::debug!(?ids, "the client did not open its streams");
        session.finish().await;
        return;
    }
    let id = |name: &str| ids.get(name).copied();
    let (mut p, run) = plumb(runner, &opts);
    let mut run = run;
    let stdin_id = id("stdin");
    let resize_id = id("resize");
    let sender = session.sender.clone();
    let out_id = |ch: u8| match ch {
        STDOUT => id("stdout"),
        _ => id("stderr"),
    };
    let mut reading = true;
    let result = loop {
        tokio::select! {
            s = &mut run => break Some(s),
            Some((ch, data)) = p.out_rx.recv() => {
                if let Some(sid) = out_id(ch) && sender.data(sid, data).await.is_err() {
                    break None;
                }
            }
            ev = session.events.recv(), if reading => match ev {
                Some(Event::Data { id, data, fin }) if Some(id) == stdin_id => {
                    p.stdin(data).await;
                    if fin {
                        p.stdin_tx = None;
                    }
                }
                Some(Event::Data { id, data, .. }) if Some(id) == resize_id => p.resize(&data),
                Some(Event::Reset { id }) if Some(id) == stdin_id => p.stdin_tx = None,
                Some(_) => {}
                None => {
                    // The client stopped sending; output may still be read.
                    reading = false;
                    p.stdin_tx = None;
                }
            },
        }
    };
    let Some(result) = result else {
        session.finish().await;
        return;
    };
    while let Some((ch, data)) = p.out_rx.recv().await {
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

    fn not_found(namespace: &str, pod: &str) -> crate::StreamError {
        crate::StreamError::PodNotFound {
            namespace: namespace.into(),
            pod: pod.into(),
        }
    }

    #[async_trait::async_trait]
    impl PodStreams for NoPods {
        async fn exec(
            &self,
            namespace: &str,
            pod: &str,
            _container: &str,
            _opts: &ExecOptions,
        ) -> Result<Runner, crate::StreamError> {
            Err(not_found(namespace, pod))
        }

        async fn attach(
            &self,
            namespace: &str,
            pod: &str,
            _container: &str,
            _opts: &ExecOptions,
        ) -> Result<Runner, crate::StreamError> {
            Err(not_found(namespace, pod))
        }

        async fn pod_addr(
            &self,
            namespace: &str,
            pod: &str,
        ) -> Result<std::net::IpAddr, crate::StreamError> {
            Err(not_found(namespace, pod))
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

    #[test]
    fn terminal_sizes_arrive_whole_or_in_pieces() {
        let size = |width, height| TermSize { width, height };
        let mut buf = Vec::new();
        assert_eq!(
            sizes(&mut buf, br#"{"Width":80,"Height":24}{"Width":100,"#),
            vec![size(80, 24)]
        );
        assert_eq!(sizes(&mut buf, br#""Height":30}"#), vec![size(100, 30)]);
        assert!(buf.is_empty());
        // Not a size: dropped, and what follows is read again.
        assert_eq!(sizes(&mut buf, br#""x""#), vec![]);
        assert_eq!(
            sizes(&mut buf, br#"{"Width":1,"Height":2}"#),
            vec![size(1, 2)]
        );
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
