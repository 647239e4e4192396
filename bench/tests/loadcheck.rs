//! `baton-loadcheck` against small HTTP/1.1 servers written here, each with a behaviour to
//! count: a share of 503s, keep-alive connections closed under a request, refused connections,
//! a body that changes mid-run, slow answers (the deadline), the stop file and SIGTERM.
//! Every run is bounded by `--requests` and `--max-seconds`, on 127.0.0.1 only.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Clone)]
enum Action {
    Respond {
        status: u16,
        body: String,
        chunked: bool,
        close: bool,
        delay_ms: u64,
    },
    /// Close the connection without answering (as a server whose idle timeout fired just as
    /// the request arrived).
    Drop,
    /// Send the head and part of the body, then close.
    Partial,
}

fn ok(body: &str) -> Action {
    Action::Respond {
        status: 200,
        body: body.into(),
        chunked: false,
        close: false,
        delay_ms: 0,
    }
}

/// Facts handed to the server's decision: the request's index on its connection and overall.
#[derive(Clone, Copy)]
struct Req {
    on_conn: u64,
    global: u64,
}

struct Server {
    addr: SocketAddr,
    answered: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

fn server(decide: impl Fn(Req) -> Action + Send + Sync + 'static) -> Server {
    server_with_idle(None, decide)
}

/// `idle`: close a kept-alive connection when no next request arrives within it.
fn server_with_idle(
    idle: Option<Duration>,
    decide: impl Fn(Req) -> Action + Send + Sync + 'static,
) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let decide = Arc::new(decide);
    let answered = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let global = Arc::new(AtomicU64::new(0));
    let (a, c) = (answered.clone(), connections.clone());
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, idle, decide.clone(), global.clone(), a.clone()));
        }
    });
    Server {
        addr,
        answered,
        connections,
        _rt: rt,
    }
}

async fn serve(
    mut s: TcpStream,
    idle: Option<Duration>,
    decide: Arc<dyn Fn(Req) -> Action + Send + Sync>,
    global: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
) {
    let mut buf = Vec::new();
    let mut on_conn = 0;
    loop {
        // One request head (GET, no body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = s.read(&mut chunk);
            let read = match idle {
                Some(d) if buf.is_empty() && on_conn > 0 => {
                    match tokio::time::timeout(d, read).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                _ => read.await,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end);
        let client_close = head.contains("connection: close");
        let req = Req {
            on_conn,
            global: global.fetch_add(1, Ordering::SeqCst),
        };
        on_conn += 1;
        match decide(req) {
            Action::Drop => return,
            Action::Partial => {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nThis is v")
                    .await;
                return;
            }
            Action::Respond {
                status,
                body,
                chunked,
                close,
                delay_ms,
            } => {
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n");
                if close {
                    out.push_str("Connection: close\r\n");
                }
                if chunked {
                    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                    let (a, b) = body.split_at(body.len() / 2);
                    for part in [a, b] {
                        if !part.is_empty() {
                            out.push_str(&format!("{:x};ext=1\r\n{part}\r\n", part.len()));
                        }
                    }
                    out.push_str("0\r\nX-Trailer: t\r\n\r\n");
                } else {
                    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
                }
                if s.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                answered.fetch_add(1, Ordering::SeqCst);
                if close || client_close {
                    return;
                }
            }
        }
    }
}

fn loadcheck(args: &[&str]) -> (Value, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_baton-loadcheck"))
        .args(args)
        .output()
        .expect("run baton-loadcheck");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON summary on stdout");
    (v, took)
}

fn url(s: &Server) -> String {
    format!("http://{}/", s.addr)
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {path} in {v}"))
}

#[test]
fn counts_2xx_and_503_exactly() {
    let s = server(|r| {
        if r.global % 10 == 3 {
            Action::Respond {
                status: 503,
                body: "no endpoints for default/hello".into(),
                chunked: false,
                close: false,
                delay_ms: 0,
            }
        } else {
            Action::Respond {
                status: 200,
                body: "This is version 1.\n".into(),
                chunked: r.global % 2 == 0,
                close: false,
                delay_ms: 0,
            }
        }
    });
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--host",
        "rolling-update-test.traefik.io",
        "--requests",
        "1000",
        "--concurrency",
        "4",
        "--mode",
        "mixed",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/total"), 1000, "{v}");
    assert_eq!(n(&v, "/non_2xx/503"), 100, "{v}");
    assert_eq!(n(&v, "/ok"), 900, "{v}");
    assert_eq!(n(&v, "/failed"), 100, "{v}");
    assert_eq!(n(&v, "/connect_errors") + n(&v, "/other_errors"), 0, "{v}");
    assert_eq!(n(&v, "/bodies/This is version 1."), 900, "{v}");
    assert_eq!(s.answered.load(Ordering::SeqCst), 1000);
    assert_eq!(n(&v, "/by_mode/keepalive/total"), 500, "{v}");
    assert_eq!(n(&v, "/by_mode/new/total"), 500, "{v}");
    // New-connection requests each had their own connection; kept-alive ones shared a few.
    let conns = s.connections.load(Ordering::SeqCst);
    assert!((502..=520).contains(&conns), "{conns} connections");
    assert_eq!(v["stopped_by"], "requests");
    assert!(v["p50_ms"].is_number() && v["p99_ms"].is_number());
    let sample = v["errors_sample"].as_array().expect("sample");
    assert!(
        sample
            .iter()
            .any(|e| e["status"] == 503 && e["body"] == "no endpoints for default/hello")
    );
}

/// The server answers three requests per connection and closes the connection when the
/// fourth arrives, without answering it.
fn closing_server() -> Server {
    server(|r| {
        if r.on_conn == 3 {
            Action::Drop
        } else {
            ok("v1")
        }
    })
}

#[test]
fn closed_keepalive_connections_are_resent_once_not_failed() {
    let s = closing_server();
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "300",
        "--concurrency",
        "2",
        "--mode",
        "keepalive",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/total"), 300, "{v}");
    assert_eq!(n(&v, "/ok"), 300, "{v}");
    assert_eq!(n(&v, "/failed"), 0, "{v}");
    assert!(n(&v, "/stale_retries") >= 90, "{v}");
    assert!(
        !v["stale_retry_sample"]
            .as_array()
            .expect("sample")
            .is_empty()
    );

    // Switched off, the same races are failures, and only those.
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "300",
        "--concurrency",
        "2",
        "--mode",
        "keepalive",
        "--max-seconds",
        "30",
        "--no-stale-retry",
    ]);
    assert_eq!(n(&v, "/stale_retries"), 0, "{v}");
    assert!(n(&v, "/other_errors") >= 70, "{v}");
    assert_eq!(
        n(&v, "/other_errors_by_kind/no_response"),
        n(&v, "/other_errors")
    );
    assert_eq!(n(&v, "/ok") + n(&v, "/other_errors"), 300, "{v}");
}

#[test]
fn new_connections_are_never_resent() {
    // Every connection's first request is dropped: nothing was reused, nothing is resent.
    let s = server(|r| {
        if r.on_conn == 0 {
            Action::Drop
        } else {
            ok("v1")
        }
    });
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "40",
        "--concurrency",
        "2",
        "--mode",
        "mixed",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/total"), 40, "{v}");
    assert_eq!(n(&v, "/stale_retries"), 0, "{v}");
    assert_eq!(n(&v, "/by_mode/new/other_errors"), 20, "{v}");
    // The kept-alive worker never gets a connection past its first request either.
    assert_eq!(n(&v, "/by_mode/keepalive/other_errors"), 20, "{v}");
    assert_eq!(n(&v, "/ok"), 0, "{v}");
}

#[test]
fn idle_connections_closed_by_the_server_are_not_failures() {
    // Connection: close on every answer: honoured, so no request meets a closed connection.
    let s = server(|_| Action::Respond {
        status: 200,
        body: "v1".into(),
        chunked: false,
        close: true,
        delay_ms: 0,
    });
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "200",
        "--concurrency",
        "2",
        "--mode",
        "keepalive",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/ok"), 200, "{v}");
    assert_eq!(
        n(&v, "/stale_retries") + n(&v, "/idle_reconnects"),
        0,
        "{v}"
    );
    assert_eq!(s.connections.load(Ordering::SeqCst), 200);
}

#[test]
fn idle_timeouts_of_the_server_are_not_failures() {
    // The server closes a kept-alive connection idle for 20 ms; requests come every 50 ms, so
    // each finds its connection closed and opens a new one (or, racing, resends once).
    let s = server_with_idle(Some(Duration::from_millis(20)), |_| ok("v1"));
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "20",
        "--concurrency",
        "1",
        "--mode",
        "keepalive",
        "--rate",
        "20/s",
        "--max-seconds",
        "10",
    ]);
    assert_eq!(n(&v, "/ok"), 20, "{v}");
    assert_eq!(n(&v, "/failed"), 0, "{v}");
    assert!(
        n(&v, "/idle_reconnects") + n(&v, "/stale_retries") >= 15,
        "{v}"
    );
    assert!(s.connections.load(Ordering::SeqCst) >= 16);
}

#[test]
fn partial_responses_fail_and_are_never_resent() {
    // The fourth request on each connection gets half an answer: a failure, not resent.
    let s = server(|r| {
        if r.on_conn == 3 {
            Action::Partial
        } else {
            ok("v1")
        }
    });
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "40",
        "--concurrency",
        "1",
        "--mode",
        "keepalive",
        "--max-seconds",
        "10",
    ]);
    assert_eq!(n(&v, "/total"), 40, "{v}");
    assert_eq!(n(&v, "/stale_retries"), 0, "{v}");
    assert_eq!(n(&v, "/other_errors_by_kind/broken_response"), 10, "{v}");
    assert_eq!(n(&v, "/ok"), 30, "{v}");
    assert!(
        v["errors_sample"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("body bytes missing"),
        "{v}"
    );
}

#[test]
fn refused_connections_are_connect_errors() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (v, _) = loadcheck(&[
        "--url",
        &format!("http://{addr}/"),
        "--requests",
        "50",
        "--concurrency",
        "2",
        "--mode",
        "mixed",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/total"), 50, "{v}");
    assert_eq!(n(&v, "/connect_errors"), 50, "{v}");
    assert_eq!(
        n(&v, "/ok") + n(&v, "/other_errors") + n(&v, "/stale_retries"),
        0,
        "{v}"
    );
    let first = &v["errors_sample"][0];
    assert_eq!(first["kind"], "connect");
    assert!(
        first["message"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{v}"
    );
}

#[test]
fn body_transitions_are_recorded() {
    let s = server(|r| {
        ok(if r.global < 150 {
            "This is version 1."
        } else {
            "This is version 2."
        })
    });
    let (v, _) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "300",
        "--concurrency",
        "2",
        "--mode",
        "mixed",
        "--max-seconds",
        "30",
    ]);
    assert_eq!(n(&v, "/bodies/This is version 1."), 150, "{v}");
    assert_eq!(n(&v, "/bodies/This is version 2."), 150, "{v}");
    assert_eq!(v["first_body"], "This is version 1.");
    assert_eq!(v["last_body"], "This is version 2.");
    let t = v["transitions"].as_array().expect("transitions");
    assert_eq!(t[0]["body"], "This is version 1.");
    assert_eq!(t[1]["body"], "This is version 2.");
    assert_eq!(t[1]["from"], "This is version 1.");
    assert!(t[1]["t_ms"].as_f64() >= t[0]["t_ms"].as_f64());
}

#[test]
fn bounded_by_max_seconds() {
    let s = server(|_| Action::Respond {
        status: 200,
        body: "slow".into(),
        chunked: false,
        close: false,
        delay_ms: 50,
    });
    let (v, took) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "1000000",
        "--concurrency",
        "4",
        "--mode",
        "mixed",
        "--max-seconds",
        "1",
    ]);
    assert_eq!(v["stopped_by"], "max_seconds", "{v}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let total = n(&v, "/total");
    assert!((20..=120).contains(&total), "{v}");
    assert_eq!(n(&v, "/failed"), 0, "{v}");
    assert_eq!(n(&v, "/abandoned_in_flight"), 0, "{v}");
}

#[test]
fn rate_is_paced() {
    let s = server(|_| ok("v1"));
    let (v, took) = loadcheck(&[
        "--url",
        &url(&s),
        "--requests",
        "50",
        "--concurrency",
        "4",
        "--rate",
        "100/s",
        "--max-seconds",
        "10",
    ]);
    assert_eq!(n(&v, "/ok"), 50, "{v}");
    assert!(took >= Duration::from_millis(450), "took {took:?}");
}

#[test]
fn stop_file_and_sigterm_stop_it_with_a_summary() {
    let s = server(|_| Action::Respond {
        status: 200,
        body: "v1".into(),
        chunked: false,
        close: false,
        delay_ms: 5,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = dir.path().join("stop");
    let out = dir.path().join("summary.json");
    let child = Command::new(env!("CARGO_BIN_EXE_baton-loadcheck"))
        .args([
            "--url",
            &url(&s),
            "--requests",
            "1000000",
            "--concurrency",
            "2",
            "--max-seconds",
            "20",
            "--stop-file",
        ])
        .arg(&stop)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&stop, "").expect("stop file");
    let t = Instant::now();
    let o = child.wait_with_output().expect("wait");
    assert!(t.elapsed() < Duration::from_secs(2));
    let v: Value = serde_json::from_slice(&o.stdout).expect("summary");
    assert_eq!(v["stopped_by"], "stop_file", "{v}");
    assert!(n(&v, "/ok") > 20 && n(&v, "/failed") == 0, "{v}");

    let child = Command::new(env!("CARGO_BIN_EXE_baton-loadcheck"))
        .args([
            "--url",
            &url(&s),
            "--requests",
            "1000000",
            "--concurrency",
            "2",
            "--max-seconds",
            "20",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).expect("summary");
    assert_eq!(v["stopped_by"], "signal", "{v}");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("--out")).expect("json");
    assert_eq!(file, v);
    assert!(!Path::new(&out.with_extension("tmp-loadcheck")).exists());
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        vec!["--url", "https://x/"],
        vec!["--url", "http://127.0.0.1:1/", "--mode", "bogus"],
        vec!["--url", "http://127.0.0.1:1/", "--rate", "fast"],
        vec![
            "--url",
            "http://127.0.0.1:1/",
            "--mode",
            "mixed",
            "--concurrency",
            "1",
        ],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_baton-loadcheck"))
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty());
    }
}
