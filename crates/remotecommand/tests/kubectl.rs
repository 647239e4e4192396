//! `kubectl exec`, `logs` and `port-forward` end to end through the real kubectl binaries:
//! the API server runs in-process, a Node object points at a test "kubelet" built on this
//! crate (commands run as ordinary host processes, logs come from a temporary file, the pod's
//! ports are on 127.0.0.1), and the API server proxies to it. kubectl 1.27 speaks SPDY/3.1 for
//! exec, 1.32 and 1.33 WebSocket v5; port-forward is SPDY (tunnelled in a WebSocket by the
//! newer ones).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use baton_remotecommand::{
    Body, ExecOptions, KubeletPath, LogOptions, PodStreams, Runner, StreamError, command_runner,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
const STEP: Duration = Duration::from_secs(60);

/// Runs commands on the host: the test's stand-in for `runc exec`.
struct HostStreams;

#[async_trait]
impl PodStreams for HostStreams {
    async fn exec(
        &self,
        _ns: &str,
        _pod: &str,
        _container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError> {
        let (first, rest) = opts
            .command
            .split_first()
            .ok_or_else(|| StreamError::Unsupported("empty command".into()))?;
        let mut c = tokio::process::Command::new(first);
        c.args(rest);
        Ok(command_runner(c, opts))
    }

    /// The stand-in container's own process is a `cat`: what is attached with `-i` comes back.
    async fn attach(
        &self,
        _ns: &str,
        _pod: &str,
        _container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError> {
        Ok(command_runner(tokio::process::Command::new("cat"), opts))
    }

    async fn pod_addr(&self, _ns: &str, _pod: &str) -> Result<IpAddr, StreamError> {
        Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

type KBody = BoxBody<Bytes, std::io::Error>;

fn boxed(r: Response<Body>) -> Response<KBody> {
    r.map(|b| b.map_err(|never| match never {}).boxed())
}

/// The test kubelet's routes: the kubelet paths, behind the API server's bearer token.
async fn kubelet(req: Request<Incoming>, token: Arc<String>, log: Arc<PathBuf>) -> Response<KBody> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {token}").as_str());
    if !authorized {
        return boxed(baton_remotecommand::status::response(401, "Unauthorized"));
    }
    let streams: Arc<dyn PodStreams> = Arc::new(HostStreams);
    let req = match baton_remotecommand::route(req, streams).await {
        Ok(r) => return boxed(r),
        Err(req) => req,
    };
    match KubeletPath::parse(req.uri().path()) {
        Some(KubeletPath::ContainerLogs { container, .. }) if container == "app" => {
            match LogOptions::from_query(req.uri().query()) {
                Ok(o) => logs(&o, &log).await,
                Err(e) => boxed(baton_remotecommand::status::response(e.code, &e.message)),
            }
        }
        _ => boxed(baton_remotecommand::status::response(404, "not found")),
    }
}

async fn logs(o: &LogOptions, file: &Path) -> Response<KBody> {
    let text = tokio::fs::read_to_string(file).await.unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(n) = o.tail_lines {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        lines = lines.split_off(lines.len().saturating_sub(n));
    }
    let follow = o.follow;
    let now: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // With follow, the first part now and one more line after a pause: the test can tell
    // streaming from buffering.
    let later = follow.then_some(Bytes::from_static(b"later\n"));
    let chunks =
        futures::stream::unfold((Some(Bytes::from(now)), later), |(now, later)| async move {
            if let Some(b) = now {
                return Some((Ok(Frame::data(b)), (None, later)));
            }
            let b = later?;
            tokio::time::sleep(Duration::from_secs(4)).await;
            Some((Ok(Frame::data(b)), (None, None)))
        });
    let mut r = Response::new(StreamBody::new(chunks).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Serves the test kubelet on a free loopback port.
async fn start_kubelet(token: String, log: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind kubelet");
    let port = listener.local_addr().expect("kubelet addr").port();
    let (token, log) = (Arc::new(token), Arc::new(log));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (token, log) = (token.clone(), log.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let (token, log) = (token.clone(), log.clone());
                    async move { Ok::<_, std::convert::Infallible>(kubelet(req, token, log).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

/// An echo server standing in for the pod's port.
async fn start_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let port = listener.local_addr().expect("echo addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

struct Cluster {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    cache: PathBuf,
    echo_port: u16,
    kubelet_port: u16,
    token: String,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

/// API server + store + test kubelet, with node `n1` and pods `web` (Running on n1, one
/// container `app`) and `pending` (not scheduled).
async fn cluster() -> Cluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = baton_store::EmbeddedStore::open(
        &dir.path().join("store.redb"),
        baton_store::EmbeddedOptions::default(),
    )
    .expect("open store");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let running = baton_apiserver::start(
        baton_apiserver::Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("listen"),
            watch_limits: Default::default(),
        },
        Arc::new(store),
        rx,
    )
    .await
    .expect("start the API server");
    let log = dir.path().join("app.log");
    std::fs::write(&log, "line1\nline2\nline3\n").expect("write log");
    let kubelet_port = start_kubelet(running.state.token.clone(), log).await;
    let echo_port = start_echo().await;
    let now = "2026-01-01T00:00:00Z";
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "00000000-0000-0000-0000-000000000001", "creationTimestamp": now},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        },
    });
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("00000000-0000-0000-0000-0000000001{}", name.len()), "creationTimestamp": now},
            "spec": {"containers": [{"name": "app", "image": "busybox", "stdin": true}]},
            "status": {"phase": if node.is_some() { "Running" } else { "Pending" }},
        });
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    };
    // A node whose agent does not answer (nothing listens on its port).
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut dead = node.clone();
    dead["metadata"]["name"] = json!("dead");
    dead["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000002");
    dead["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = json!(dead_port);
    let st = &running.state;
    for (key, obj) in [
        ("/registry/core/nodes/dead".to_string(), dead),
        (
            "/registry/core/pods/default/stranded".to_string(),
            pod("stranded", Some("dead")),
        ),
        ("/registry/core/nodes/n1".to_string(), node),
        (
            "/registry/core/pods/default/web".to_string(),
            pod("web", Some("n1")),
        ),
        (
            "/registry/core/pods/default/pending".to_string(),
            pod("pending", None),
        ),
    ] {
        st.store
            .create(&key, serde_json::to_vec(&obj).expect("json"))
            .await
            .expect("create object");
    }
    Cluster {
        cache: dir.path().join("kube-cache"),
        kubeconfig: running.kubeconfig.clone(),
        dir,
        echo_port,
        kubelet_port,
        token: running.state.token.clone(),
        _shutdown: tx,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cluster {
    fn command(&self, kubectl: &Path, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(kubectl);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .arg(format!("--cache-dir={}", self.cache.display()))
            .args(args)
            .kill_on_drop(true);
        c
    }

    async fn kubectl(&self, kubectl: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut c = self.command(kubectl, args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn kubectl");
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).await.expect("write kubectl stdin");
        }
        let out = tokio::time::timeout(STEP, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {STEP:?}"))
            .expect("kubectl output");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn kubectl_bin(version: &str) -> PathBuf {
    let p = if version == "default" {
        PathBuf::from("/usr/bin/kubectl")
    } else {
        Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"))
    };
    assert!(
        p.exists(),
        "kubectl {version} is required at {}",
        p.display()
    );
    p
}

#[track_caller]
fn expect(run: &Run, code: i32, stdout: &str, stderr_has: &str, what: &str) {
    assert!(
        run.code == code && run.stdout == stdout && run.stderr.contains(stderr_has),
        "{what}: expected exit {code}, stdout {stdout:?}, stderr containing {stderr_has:?}; got exit {}, stdout {:?}, stderr {:?}",
        run.code,
        run.stdout,
        run.stderr
    );
}

/// `kubectl exec -it` under a pseudo-terminal of the test's own (util-linux `script`): the
/// command sees a terminal, and what is typed reaches it.
async fn exec_on_a_terminal(c: &Cluster, k: &Path) {
    let kubectl = format!(
        "{} --kubeconfig={} --cache-dir={} exec -it web -- sh -c 'tty; read x; echo typed:$x'",
        k.display(),
        c.kubeconfig.display(),
        c.cache.display()
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qec", &kubectl, "/dev/null"])
        .env_remove("HTTPS_PROXY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // Typed once the command has printed its terminal (input typed before kubectl set its
    // terminal up could be flushed), so on a loaded machine too.
    let mut text = Vec::new();
    let read = tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        let mut typed = false;
        loop {
            let n = stdout.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            text.extend_from_slice(&buf[..n]);
            if !typed && String::from_utf8_lossy(&text).contains("/dev/pts/") {
                stdin.write_all(b"word\r").await.expect("typed");
                typed = true;
            }
        }
    })
    .await;
    let out = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .expect("exec -it ends")
        .expect("script output");
    let text = String::from_utf8_lossy(&text);
    assert!(
        read.is_ok()
            && out.status.success()
            && text.contains("/dev/pts/")
            && text.contains("typed:word"),
        "exec -it: exit {:?}, output {text:?}, stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn exec_and_logs(version: &str) {
    let k = kubectl_bin(version);
    let c = cluster().await;
    let r = c
        .kubectl(&k, &["exec", "web", "--", "echo", "hello"], None)
        .await;
    expect(&r, 0, "hello\n", "", "exec echo");
    let r = c
        .kubectl(
            &k,
            &[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
            None,
        )
        .await;
    expect(&r, 3, "out\n", "err\n", "exec exit 3");
    assert!(
        r.stderr.contains("command terminated with exit code 3"),
        "exit code message: {:?}",
        r.stderr
    );
    let r = c
        .kubectl(
            &k,
            &["exec", "-i", "web", "--", "cat"],
            Some(b"data\nmore\n"),
        )
        .await;
    expect(&r, 0, "data\nmore\n", "", "exec -i cat");
    // Output far beyond one frame or message.
    let r = c
        .kubectl(
            &k,
            &["exec", "web", "--", "head", "-c", "3000000", "/dev/zero"],
            None,
        )
        .await;
    assert_eq!(
        (r.code, r.stdout.len()),
        (0, 3_000_000),
        "large output: {}",
        r.stderr
    );
    let r = c.kubectl(&k, &["exec", "nope", "--", "echo"], None).await;
    expect(
        &r,
        1,
        "",
        "pods \"nope\" not found",
        "exec on a missing pod",
    );
    let r = c
        .kubectl(&k, &["exec", "web", "-c", "bad", "--", "echo"], None)
        .await;
    expect(
        &r,
        1,
        "",
        "container bad is not valid for pod web",
        "exec in a bad container",
    );

    let r = c.kubectl(&k, &["logs", "web"], None).await;
    expect(&r, 0, "line1\nline2\nline3\n", "", "logs");
    let r = c.kubectl(&k, &["logs", "web", "--tail=1"], None).await;
    expect(&r, 0, "line3\n", "", "logs --tail=1");
    let r = c.kubectl(&k, &["logs", "web", "-c", "bad"], None).await;
    expect(
        &r,
        1,
        "",
        "container bad is not valid for pod web",
        "logs of a bad container",
    );
    let r = c.kubectl(&k, &["logs", "nope"], None).await;
    expect(
        &r,
        1,
        "",
        "pods \"nope\" not found",
        "logs of a missing pod",
    );
    let r = c
        .kubectl(&k, &["exec", "web", "--", "/no/such/command"], None)
        .await;
    expect(&r, 1, "", "/no/such/command", "exec of a missing command");
    // `kubectl cp` is tar over exec, both ways (stdin end-of-file matters for the upload).
    let src = c.dir.path().join("upload.txt");
    std::fs::write(&src, "copied\n").expect("write upload");
    let remote = c.dir.path().join(format!("remote-{version}"));
    std::fs::create_dir_all(&remote).expect("remote dir");
    let into = format!("web:{}/file.txt", remote.display());
    let r = c
        .kubectl(&k, &["cp", &src.display().to_string(), &into], None)
        .await;
    expect(&r, 0, "", "", "cp to the pod");
    let back = c.dir.path().join(format!("back-{version}.txt"));
    let r = c
        .kubectl(&k, &["cp", &into, &back.display().to_string()], None)
        .await;
    assert_eq!(r.code, 0, "cp from the pod: {}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&back).ok().as_deref(),
        Some("copied\n")
    );
    let r = c
        .kubectl(&k, &["attach", "-i", "web"], Some(b"attached\n"))
        .await;
    expect(&r, 0, "attached\n", "", "attach -i");
    exec_on_a_terminal(&c, &k).await;
    let r = c.kubectl(&k, &["logs", "stranded"], None).await;
    expect(&r, 1, "", "node \"dead\"", "logs on an unreachable node");
    follow_streams(&c, &k).await;
    port_forward(&c, &k).await;
}

/// `kubectl logs -f` shows what the agent has written before the agent's answer ends.
async fn follow_streams(c: &Cluster, k: &Path) {
    let mut child = c
        .command(k, &["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl logs -f");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(3), out.next_line()).await;
    assert!(
        matches!(first, Ok(Ok(Some(ref l))) if l == "line1"),
        "kubectl logs -f did not stream the first line promptly: {first:?}"
    );
    let mut rest = Vec::new();
    while let Ok(Ok(Some(l))) = tokio::time::timeout(STEP, out.next_line()).await {
        rest.push(l);
    }
    assert_eq!(rest, ["line2", "line3", "later"]);
    let status = tokio::time::timeout(STEP, child.wait()).await;
    assert!(
        matches!(status, Ok(Ok(ref s)) if s.success()),
        "kubectl logs -f: {status:?}"
    );
}

/// `kubectl port-forward pod/web L:R` to the echo server, two connections in turn.
async fn port_forward(c: &Cluster, k: &Path) {
    let local = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mapping = format!("{local}:{}", c.echo_port);
    let mut child = c
        .command(k, &["port-forward", "pod/web", &mapping])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl port-forward");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(STEP, out.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(ref l))) if l.starts_with("Forwarding from 127.0.0.1")),
        "kubectl port-forward did not start: {ready:?}"
    );
    for round in 0..2 {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, local));
        let echoed = tokio::time::timeout(Duration::from_secs(20), async {
            let s = TcpStream::connect(addr).await?;
            // The second round carries a megabyte, written while the echo is read back.
            let mut msg = format!("ping {round}\n");
            if round == 1 {
                msg.push_str(&"x".repeat(1 << 20));
            }
            let (mut r, mut w) = s.into_split();
            let sent = msg.clone();
            let writer = tokio::spawn(async move { w.write_all(sent.as_bytes()).await });
            let mut buf = vec![0u8; msg.len()];
            r.read_exact(&mut buf).await?;
            writer.await.map_err(std::io::Error::other)??;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
        })
        .await;
        match echoed {
            Ok(Ok(got)) => assert!(
                got.starts_with(&format!("ping {round}\n"))
                    && got.len() == if round == 1 { 7 + (1 << 20) } else { 7 },
                "port-forward round {round} echoed {} bytes",
                got.len()
            ),
            other => {
                let _ = child.start_kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut err))
                            .await;
                }
                panic!("port-forward round {round}: {other:?}; kubectl stderr: {err}");
            }
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_exec_over_spdy_logs_and_port_forward() {
    exec_and_logs("1.27").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_29_exec_over_spdy_logs_and_port_forward() {
    exec_and_logs("1.29").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_30_exec_over_websocket_logs_and_port_forward() {
    exec_and_logs("1.30").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_32_exec_over_websocket_logs_and_port_forward() {
    exec_and_logs("default").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_exec_over_websocket_logs_and_port_forward() {
    exec_and_logs("1.33").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_an_unscheduled_pod_are_empty() {
    let k = kubectl_bin("1.33");
    let c = cluster().await;
    let r = c.kubectl(&k, &["logs", "pending"], None).await;
    expect(&r, 0, "", "", "logs of an unscheduled pod");
}

/// The WebSocket channel form of port-forward (`?port=N`, `v4.channel.k8s.io`), which kubectl
/// does not use but other clients do, straight against the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_websocket_channels() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let c = cluster().await;
    let url = format!(
        "ws://127.0.0.1:{}/portForward/default/web?port={}",
        c.kubelet_port, c.echo_port
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", c.token).parse().expect("header"),
    );
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "v4.channel.k8s.io".parse().expect("header"),
    );
    let tcp = TcpStream::connect(("127.0.0.1", c.kubelet_port))
        .await
        .expect("connect kubelet");
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("websocket handshake");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v4.channel.k8s.io")
    );
    let port = c.echo_port.to_le_bytes();
    let mut next = async || match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    };
    let mut first = vec![next().await, next().await];
    first.sort();
    assert_eq!(
        first,
        vec![vec![0, port[0], port[1]], vec![1, port[0], port[1]]]
    );
    ws.send(Message::Binary(Bytes::from_static(b"\0hello")))
        .await
        .expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    assert!(
        matches!(echoed, Ok(Some(Ok(Message::Binary(ref b)))) if b.as_ref() == b"\0hello"),
        "{echoed:?}"
    );
}
