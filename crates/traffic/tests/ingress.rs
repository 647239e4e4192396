//! The Ingress proxy against real hyper backends on loopback: routing, the 404/502/503
//! answers, retries, keep-alive pools, draining on a snapshot change, X-Forwarded-*, protocol
//! upgrades and streamed bodies. Snapshots are built by hand, as the feed would build them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_traffic::Snapshot;
use baton_traffic::ingress::{self, Options};
use baton_traffic::model::{Endpoint, Port, Protocol, Service, ServiceKey};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

type Body = BoxBody<Bytes, std::io::Error>;

// ---------------------------------------------------------------- backends

/// A hyper backend on an ephemeral port that answers with its name, counting connections.
struct Backend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (acc, op) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            op.fetch_add(1, Ordering::SeqCst);
            let op = op.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(name, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
                op.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Backend {
        addr,
        accepted,
        open,
    }
}

async fn handle(
    name: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let text = |s: String| -> Body { Full::new(Bytes::from(s)).map_err(|e| match e {}).boxed() };
    let resp = match path.as_str() {
        "/headers" => {
            let h = req.headers();
            let get = |n: &str| {
                h.get_all(n)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("?").to_string())
                    .collect::<Vec<_>>()
                    .join("|")
            };
            let lines = [
                "host",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "x-real-ip",
                "connection",
                "keep-alive",
                "x-private",
            ]
            .iter()
            .map(|n| format!("{n}={}\n", get(n)))
            .collect::<String>();
            Response::new(text(lines))
        }
        "/slow" => {
            let ms: u64 = query.parse().unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(text(format!("{name} slow")))
        }
        "/echo" => Response::new(req.into_body().map_err(std::io::Error::other).boxed()),
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(up) = upgrade.await else { return };
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut out = b"echo:".to_vec();
                            out.extend_from_slice(&buf[..n]);
                            if io.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .body(text(String::new()))
                .expect("101")
        }
        _ => Response::new(text(format!("{name} {path}"))),
    };
    Ok(resp)
}

/// A raw backend that reads a request head and then misbehaves: `headers_first` sends a head
/// and half a body before closing, otherwise it closes without answering.
async fn dying_backend(headers_first: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if headers_first {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf of it")
                        .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                drop(s);
            });
        }
    });
    addr
}

/// An address nothing listens on: connections are refused.
async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

// ---------------------------------------------------------------- snapshots

fn ep(addr: SocketAddr, ready: bool) -> Endpoint {
    Endpoint {
        ip: addr.ip(),
        port: addr.port(),
        pod: None,
        node: None,
        ready,
        serving: ready,
        terminating: false,
    }
}

fn service(name: &str, port: u16, endpoints: Vec<Endpoint>) -> (ServiceKey, Service) {
    let key = ServiceKey {
        namespace: "default".into(),
        name: name.into(),
    };
    let svc = Service {
        key: key.clone(),
        cluster_ip: None,
        session_affinity: None,
        ports: vec![Port {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port,
            node_port: None,
            endpoints,
        }],
    };
    (key, svc)
}

fn ingress(name: &str, spec: serde_json::Value) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": spec,
    }))
    .expect("ingress")
}

fn path(p: &str, kind: &str, svc: &str) -> serde_json::Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

/// One Ingress sending every request to `svc` port 80.
fn all_to(svc: &str) -> Vec<Ingress> {
    vec![ingress(
        "all",
        json!({"rules": [{"http": {"paths": [path("/", "Prefix", svc)]}}]}),
    )]
}

fn snapshot(
    version: u64,
    services: Vec<(ServiceKey, Service)>,
    ingresses: Vec<Ingress>,
) -> Arc<Snapshot> {
    Arc::new(Snapshot {
        version,
        services: services.into_iter().collect::<BTreeMap<_, _>>(),
        ingresses,
    })
}

// ---------------------------------------------------------------- the proxy

struct Proxy {
    addr: SocketAddr,
    snapshots: watch::Sender<Arc<Snapshot>>,
    applied: watch::Receiver<u64>,
    _shutdown: watch::Sender<bool>,
    metrics: ingress::Metrics,
    client: Client<HttpConnector, Body>,
}

async fn start(first: Arc<Snapshot>) -> Proxy {
    start_with(first, Options::default()).await
}

async fn start_with(first: Arc<Snapshot>, opts: Options) -> Proxy {
    let bound = ingress::bind(Options {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..opts
    })
    .await
    .expect("bind proxy");
    let addr = bound.local_addr();
    let metrics = bound.metrics();
    let version = first.version;
    let (snap_tx, snap_rx) = watch::channel(first);
    let (applied_tx, mut applied) = watch::channel(0u64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(bound.serve(snap_rx, applied_tx, shutdown_rx));
    tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|v| *v >= version))
        .await
        .expect("first snapshot applied in time")
        .expect("applied channel open");
    Proxy {
        addr,
        snapshots: snap_tx,
        applied,
        _shutdown: shutdown,
        metrics,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

impl Proxy {
    fn request(&self, method: &str, host: &str, path: &str, body: Body) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("host", host)
            .body(body)
            .expect("request")
    }

    /// GET through the proxy: status and body text.
    async fn get(&self, host: &str, path: &str) -> (StatusCode, String) {
        let resp = self
            .client
            .request(self.request("GET", host, path, empty()))
            .await
            .expect("proxy answers");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn apply(&mut self, snap: Arc<Snapshot>) {
        let v = snap.version;
        self.snapshots.send_replace(snap);
        tokio::time::timeout(Duration::from_secs(5), self.applied.wait_for(|a| *a >= v))
            .await
            .expect("snapshot applied in time")
            .expect("applied channel open");
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn routes_by_host_and_path_precedence_with_default_backend() {
    let (a, b, c, d) = (
        backend("a").await,
        backend("b").await,
        backend("c").await,
        backend("d").await,
    );
    let services = vec![
        service("a", 80, vec![ep(a.addr, true)]),
        service("b", 80, vec![ep(b.addr, true)]),
        service("c", 80, vec![ep(c.addr, true)]),
        service("d", 80, vec![ep(d.addr, true)]),
    ];
    let ingresses = vec![ingress(
        "site",
        json!({
            "defaultBackend": {"service": {"name": "d", "port": {"number": 80}}},
            "rules": [
                {"host": "foo.com", "http": {"paths": [
                    path("/", "Prefix", "a"),
                    path("/api", "Prefix", "b"),
                    path("/api/exact", "Exact", "c"),
                ]}},
                {"host": "*.bar.com", "http": {"paths": [path("/", "Prefix", "c")]}},
            ]
        }),
    )];
    let proxy = start(snapshot(1, services, ingresses)).await;
    for (host, p, want) in [
        ("foo.com", "/", "a /"),
        ("FOO.com:8080", "/x", "a /x"),
        ("foo.com", "/api", "b /api"),
        ("foo.com", "/api/v1", "b /api/v1"),
        ("foo.com", "/apiv1", "a /apiv1"),
        ("foo.com", "/api/exact", "c /api/exact"),
        ("foo.com", "/api/exact/", "b /api/exact/"),
        ("x.bar.com", "/q", "c /q"),
        ("x.y.bar.com", "/q", "d /q"),
        ("other.com", "/", "d /"),
    ] {
        let (status, body) = proxy.get(host, p).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, want), "{host}{p}");
    }
}

#[tokio::test]
async fn unknown_hosts_are_404_and_unavailable_backends_503_naming_the_service() {
    let a = backend("a").await;
    let services = vec![
        service("web", 80, vec![ep(a.addr, false)]),
        service("wrongport", 8080, vec![ep(a.addr, true)]),
    ];
    let ingresses = vec![ingress(
        "site",
        json!({"rules": [
            {"host": "web.test", "http": {"paths": [path("/", "Prefix", "web")]}},
            {"host": "missing.test", "http": {"paths": [path("/", "Prefix", "missing")]}},
            {"host": "port.test", "http": {"paths": [path("/", "Prefix", "wrongport")]}},
        ]}),
    )];
    let proxy = start(snapshot(1, services, ingresses)).await;
    let (status, body) = proxy.get("nobody.test", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("nobody.test"), "{body}");
    let (status, body) = proxy.get("web.test", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "503 Service Unavailable: no ready endpoints for service default/web\n"
    );
    let (status, body) = proxy.get("missing.test", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "503 Service Unavailable: service \"default/missing\" not found\n"
    );
    let (status, body) = proxy.get("port.test", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "503 Service Unavailable: service \"default/wrongport\" has no port 80\n"
    );
}

#[tokio::test]
async fn a_backend_dying_mid_response_fails_only_that_request() {
    let good = backend("good").await;
    let before_head = dying_backend(false).await;
    let after_head = dying_backend(true).await;
    let services = vec![
        service("good", 80, vec![ep(good.addr, true)]),
        service("before", 80, vec![ep(before_head, true)]),
        service("after", 80, vec![ep(after_head, true)]),
    ];
    let ingresses = vec![ingress(
        "site",
        json!({"rules": [{"http": {"paths": [
            path("/", "Prefix", "good"),
            path("/before", "Prefix", "before"),
            path("/after", "Prefix", "after"),
        ]}}]}),
    )];
    let proxy = Arc::new(start(snapshot(1, services, ingresses)).await);
    // A slow request to the healthy backend runs while the others fail.
    let p = proxy.clone();
    let slow = tokio::spawn(async move { p.get("x", "/slow?300").await });
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Died before answering a POST: 502 naming the backend, no retry of a sent POST.
    let resp = proxy
        .client
        .request(
            proxy.request(
                "POST",
                "x",
                "/before",
                Full::new(Bytes::from_static(b"data"))
                    .map_err(|e| match e {})
                    .boxed(),
            ),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(&before_head.to_string()),
        "{body:?}"
    );

    // Died after the head: the client's connection is aborted mid-body.
    let resp = proxy
        .client
        .request(proxy.request("GET", "x", "/after", empty()))
        .await
        .expect("head arrives");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.into_body().collect().await.is_err(),
        "truncated body must be an error"
    );

    let (status, body) = slow.await.expect("slow task");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "good slow"));
    let (status, _) = proxy.get("x", "/").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_refusing_endpoint_is_retried_on_another_and_no_request_fails() {
    let good = backend("good").await;
    let refused = refused_addr().await;
    let services = vec![service(
        "web",
        80,
        vec![ep(refused, true), ep(good.addr, true)],
    )];
    let proxy = start(snapshot(1, services, all_to("web"))).await;
    for i in 0..40 {
        let (status, body) = proxy.get("x", &format!("/{i}")).await;
        assert_eq!((status, body), (StatusCode::OK, format!("good /{i}")));
    }
    // A POST with a body is retried too: nothing of it was sent.
    for _ in 0..6 {
        let resp = proxy
            .client
            .request(
                proxy.request(
                    "POST",
                    "x",
                    "/echo",
                    Full::new(Bytes::from_static(b"payload"))
                        .map_err(|e| match e {})
                        .boxed(),
                ),
            )
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"payload");
    }
    let text = proxy.metrics.text();
    let retries = metric(
        &text,
        "baton_ingress_retries_total{namespace=\"default\",service=\"web\"}",
    );
    let errors = metric(
        &text,
        "baton_ingress_upstream_connect_errors_total{namespace=\"default\",service=\"web\"}",
    );
    assert!(
        retries >= 20 && errors >= 20,
        "retries {retries}, connect errors {errors}\n{text}"
    );
    assert_eq!(
        metric(
            &text,
            "baton_ingress_requests_total{namespace=\"default\",service=\"web\",code=\"2xx\"}"
        ),
        46
    );
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let b = backend("b").await;
    let proxy = start(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        all_to("web"),
    ))
    .await;
    // Each client request on its own connection (Connection: close), sequentially: the
    // proxy's pool still reuses one upstream connection.
    for i in 0..100 {
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        s.write_all(
            format!("GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with(&format!("b /{i}")), "{out}");
    }
    // And many concurrent keep-alive requests need at most one connection each.
    let mut tasks = Vec::new();
    let proxy = Arc::new(proxy);
    for _ in 0..8 {
        let p = proxy.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                assert_eq!(p.get("x", "/").await.0, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let accepted = b.accepted.load(Ordering::SeqCst);
    assert!(
        accepted <= 9,
        "backend accepted {accepted} connections for 500 requests"
    );
}

#[tokio::test]
async fn removed_endpoint_is_drained_before_the_snapshot_is_acknowledged() {
    let old = backend("old").await;
    let new = backend("new").await;
    let mut proxy = start(snapshot(
        1,
        vec![service("web", 80, vec![ep(old.addr, true)])],
        all_to("web"),
    ))
    .await;
    // Warm the pool with a few connections to the old endpoint.
    let proxy_ref = &proxy;
    futures::future::join_all((0..4).map(|_| async move { proxy_ref.get("x", "/slow?50").await }))
        .await;
    assert!(old.open.load(Ordering::SeqCst) >= 1);

    let client = proxy.client.clone();
    let slow_req = proxy.request("GET", "x", "/slow?800", empty());
    let slow = tokio::spawn(async move {
        let resp = client.request(slow_req).await.expect("slow answers");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // v2 routes to the new endpoint only.
    proxy.snapshots.send_replace(snapshot(
        2,
        vec![service("web", 80, vec![ep(new.addr, true)])],
        all_to("web"),
    ));
    // New requests go to the new endpoint at once…
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..5 {
        assert_eq!(proxy.get("x", "/").await.1, "new /");
    }
    // …but v2 is not acknowledged while the slow request to the old one is in flight.
    assert_eq!(
        *proxy.applied.borrow(),
        1,
        "acknowledged with a request in flight"
    );
    let (status, body) = slow.await.expect("slow task");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "old slow"));
    proxy
        .apply(snapshot(
            2,
            vec![service("web", 80, vec![ep(new.addr, true)])],
            all_to("web"),
        ))
        .await;
    // Pooled connections to the old endpoint are closed and never reused.
    tokio::time::timeout(Duration::from_secs(2), async {
        while old.open.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("old endpoint's connections closed");
    let accepted = old.accepted.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(proxy.get("x", "/").await.1, "new /");
    }
    assert_eq!(old.accepted.load(Ordering::SeqCst), accepted);
}

#[tokio::test]
async fn drain_timeout_acknowledges_anyway() {
    let old = backend("old").await;
    let new = backend("new").await;
    let opts = Options {
        drain_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    let mut proxy = start_with(
        snapshot(
            1,
            vec![service("web", 80, vec![ep(old.addr, true)])],
            all_to("web"),
        ),
        opts,
    )
    .await;
    let client = proxy.client.clone();
    let req = proxy.request("GET", "x", "/slow?3000", empty());
    let _slow = tokio::spawn(async move { client.request(req).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    proxy
        .apply(snapshot(
            2,
            vec![service("web", 80, vec![ep(new.addr, true)])],
            all_to("web"),
        ))
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn backends_see_forwarded_headers_and_no_hop_by_hop_ones() {
    let b = backend("b").await;
    let proxy = start(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        all_to("web"),
    ))
    .await;
    let req = Request::builder()
        .uri(format!("http://{}/headers", proxy.addr))
        .header("host", "shop.example:8080")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .body(empty())
        .expect("request");
    let resp = proxy.client.request(req).await.expect("answer");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    for line in [
        "host=shop.example:8080",
        "x-forwarded-for=203.0.113.9, 127.0.0.1",
        "x-forwarded-proto=http",
        "x-forwarded-host=shop.example:8080",
        "x-real-ip=127.0.0.1",
        "connection=",
        "keep-alive=",
        "x-private=",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn upgrade_requests_are_spliced_both_ways() {
    let b = backend("b").await;
    let proxy = start(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        all_to("web"),
    ))
    .await;
    let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.expect("head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in ["hello", "again"] {
        s.write_all(msg.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 5 + msg.len()];
        s.read_exact(&mut buf).await.expect("echo");
        assert_eq!(buf, format!("echo:{msg}").as_bytes());
    }
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    const TOTAL: usize = 20 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let b = backend("b").await;
    let proxy = start(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        all_to("web"),
    ))
    .await;
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let stream = tokio_stream_from(rx);
    let body: Body = BodyExt::boxed(StreamBody::new(stream));
    let client = proxy.client.clone();
    let req = proxy.request("POST", "x", "/echo", body);
    let pattern = |i: usize| Bytes::from(vec![(i % 251) as u8; CHUNK]);
    tx.send(Ok(Frame::data(pattern(0))))
        .await
        .expect("first chunk");
    let resp = client
        .request(req)
        .await
        .expect("head before the upload ends");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    // The first chunk comes back while the client still holds the rest: nothing waits for
    // the whole body.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("echo of the first chunk before the upload ends")
        .expect("frame")
        .expect("ok");
    let mut received = first.into_data().map(|d| d.len()).unwrap_or(0);
    let sender = tokio::spawn(async move {
        for i in 1..TOTAL / CHUNK {
            tx.send(Ok(Frame::data(pattern(i))))
                .await
                .expect("send chunk");
        }
    });
    let mut mismatched = 0usize;
    while let Some(frame) = body.frame().await {
        let data = frame.expect("frame").into_data().unwrap_or_default();
        for (k, byte) in data.iter().enumerate() {
            let i = (received + k) / CHUNK;
            if *byte != (i % 251) as u8 {
                mismatched += 1;
            }
        }
        received += data.len();
    }
    sender.await.expect("sender");
    assert_eq!(received, TOTAL);
    assert_eq!(mismatched, 0);
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_taken_port_names_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = ingress::bind(Options {
        listen: addr,
        ..Options::default()
    })
    .await
    .err()
    .expect("bind fails");
    let msg = err.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("--ingress-listen"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- TLS

const TLS_CRT: &str = include_str!("../src/ingress/testdata/a.example.crt");
const TLS_KEY: &str = include_str!("../src/ingress/testdata/a.example.key");

/// A proxy with a TLS listener whose certificates come from one `kubernetes.io/tls` Secret
/// for `a.example`, as the Secret watch would publish them.
async fn start_tls(first: Arc<Snapshot>) -> (SocketAddr, watch::Sender<bool>) {
    use k8s_openapi::api::core::v1::Secret;
    let bound = ingress::bind(Options {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..Options::default()
    })
    .await
    .expect("bind proxy");
    let tls_addr = bound.tls_addr().expect("TLS listener");
    let mut secret: Secret = serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": "a-tls", "resourceVersion": "1"},
        "type": "kubernetes.io/tls",
    }))
    .expect("secret");
    secret.data = Some(
        [
            (
                "tls.crt".to_string(),
                k8s_openapi::ByteString(TLS_CRT.into()),
            ),
            (
                "tls.key".to_string(),
                k8s_openapi::ByteString(TLS_KEY.into()),
            ),
        ]
        .into(),
    );
    let (table, problems) = ingress::tls::CertTable::build(
        &first.ingresses,
        |_, name| (name == "a-tls").then_some(&secret),
        &mut Default::default(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    bound.certs().expect("certs").publish(table);
    let version = first.version;
    let (_snap_tx, snap_rx) = watch::channel(first);
    let (applied_tx, mut applied) = watch::channel(0u64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _keep = _snap_tx;
        bound.serve(snap_rx, applied_tx, shutdown_rx).await
    });
    tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|v| *v >= version))
        .await
        .expect("first snapshot applied in time")
        .expect("applied channel open");
    (tls_addr, shutdown)
}

/// A TLS connection to `addr` for `sni` trusting only the test certificate, offering `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut TLS_CRT.as_bytes()) {
        roots.add(c.expect("test cert")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await?;
    let name =
        rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
    connector.connect(name, tcp).await
}

fn tls_ingress(svc: &str) -> Vec<Ingress> {
    vec![ingress(
        "secure",
        json!({
            "tls": [{"hosts": ["a.example"], "secretName": "a-tls"}],
            "rules": [{"host": "a.example", "http": {"paths": [path("/", "Prefix", svc)]}}]
        }),
    )]
}

#[tokio::test]
async fn tls_serves_http2_and_http1_by_alpn_with_the_sni_certificate() {
    let b = backend("b").await;
    let (addr, _shutdown) = start_tls(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        tls_ingress("web"),
    ))
    .await;

    // HTTP/2, chosen by ALPN.
    let tls = tls_connect(addr, "a.example", &[b"h2", b"http/1.1"])
        .await
        .expect("TLS handshake for a.example");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .uri("https://a.example/headers")
        .body(empty())
        .expect("request");
    let resp = send.send_request(req).await.expect("h2 answer");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    for line in [
        "host=a.example",
        "x-forwarded-proto=https",
        "x-forwarded-host=a.example",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }

    // HTTP/1.1 when the client offers only that.
    let tls = tls_connect(addr, "a.example", &[b"http/1.1"])
        .await
        .expect("TLS handshake for a.example");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .uri("/x")
        .header("host", "a.example")
        .body(empty())
        .expect("request");
    let resp = send.send_request(req).await.expect("h1 answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"b /x");
}

#[tokio::test]
async fn tls_refuses_names_without_a_certificate() {
    let b = backend("b").await;
    let (addr, _shutdown) = start_tls(snapshot(
        1,
        vec![service("web", 80, vec![ep(b.addr, true)])],
        tls_ingress("web"),
    ))
    .await;
    // No Ingress lists other.example in spec.tls: no certificate, so no handshake (rather
    // than a.example's certificate for the wrong name).
    assert!(
        tls_connect(addr, "other.example", &[b"http/1.1"])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_taken_tls_port_names_its_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = ingress::bind(Options {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls_listen: Some(addr),
        ..Options::default()
    })
    .await
    .err()
    .expect("bind fails");
    let msg = err.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("--ingress-tls-listen") && err.is_tls(),
        "{msg}"
    );
}
