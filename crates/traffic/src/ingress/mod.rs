//! The Ingress proxy: an HTTP/1.1 (and, over TLS, HTTP/2) reverse proxy on hyper, running inside the server's tokio
//! runtime, that serves the snapshot's networking.k8s.io/v1 Ingresses (the legacy
//! extensions/v1beta1 form arrives converted) and never drops a request during a rollout.
//!
//! Life cycle: [`bind`] takes the listen addresses (so a taken or privileged port is reported
//! at once, naming `--ingress-listen` or `--ingress-tls-listen`), then [`Bound::serve`] accepts connections, follows the
//! snapshots and reports on `applied` each version it has put live *and drained*: no request
//! is still in flight to an endpoint that version no longer routes to. That report is what the
//! node waits for before a terminating pod's containers get SIGTERM.
//!
//! # Layout
//! - [`routes`]: Ingress rules → route table, host and path precedence (pure).
//! - `table`: the route table resolved against a snapshot's endpoints; the live table.
//! - `drain`: puts snapshots live, retires endpoints, reports `applied`.
//! - `pool`: per-endpoint keep-alive pools and in-flight counts.
//! - `upstream`: HTTP/1.1 to an endpoint, written and read by the request's own task.
//! - `proxy`: one request: routing, headers, retries, upgrades.
//! - `body`: streamed answers, in-flight leases until their body ends, access log.
//! - `metrics`: Prometheus counters and histograms per backend Service.
//! - [`status`]: `status.loadBalancer` and Events for Ingresses naming missing Services or ports.
//! - [`tls`]: the TLS listener's certificates from `spec.tls` Secrets, chosen by SNI.

mod body;
mod drain;
mod metrics;
mod pool;
mod proxy;
pub mod routes;
pub mod status;
mod table;
pub mod tls;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use metrics::Metrics;
pub use status::{COMPONENT, IngressProblem, problems, publish_status};

use crate::model::Snapshot;
use proxy::{ConnService, Scheme, Shared};
use table::{Builder, Live, Table};

/// How the Ingress proxy runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--ingress-listen`.
    pub listen: SocketAddr,
    /// `--ingress-tls-listen`: the HTTPS listener (certificates from the Ingresses' `tls`
    /// Secrets, HTTP/2 or HTTP/1.1 by ALPN); none when unset.
    pub tls_listen: Option<SocketAddr>,
    /// `--ingress-access-log`: one `info` line per request (target `baton::ingress::access`).
    pub access_log: bool,
    /// How long a snapshot's acknowledgement waits for requests in flight to endpoints it no
    /// longer routes to; also how long shutdown waits for open requests.
    pub drain_timeout: Duration,
    /// Connect timeout per try (ingress-nginx: 5 s).
    pub connect_timeout: Duration,
    /// Tries per request, the first included (ingress-nginx: 3).
    pub tries: u32,
    /// Threads serving the plain HTTP listener, each with a runtime of its own (nginx's
    /// worker processes); default: one per CPU, at most 8.
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 80)),
            tls_listen: None,
            access_log: false,
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            tries: 3,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, 8),
        }
    }
}

/// Why the Ingress proxy could not start. Each names the flag that moves the listener
/// (`--ingress-listen` or `--ingress-tls-listen`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("address {addr} is in use; move the Ingress with {flag} ADDR")]
    AddressInUse {
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "permission denied binding port {} on {}: run as root (or with CAP_NET_BIND_SERVICE) or pass {flag} ADDR with a port above 1023",
        addr.port(),
        addr.ip()
    )]
    PermissionDenied {
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Bind {
        addr: SocketAddr,
        flag: &'static str,
        source: std::io::Error,
    },
    #[error("TLS configuration of the Ingress ({flag}): {source}")]
    Tls {
        flag: &'static str,
        source: rustls::Error,
    },
}

impl Error {
    /// Whether the TLS listener failed (the plain HTTP one may still run).
    pub fn is_tls(&self) -> bool {
        let flag = match self {
            Error::AddressInUse { flag, .. }
            | Error::PermissionDenied { flag, .. }
            | Error::Bind { flag, .. }
            | Error::Tls { flag, .. } => flag,
        };
        *flag == TLS_FLAG
    }
}

const HTTP_FLAG: &str = "--ingress-listen";
const TLS_FLAG: &str = "--ingress-tls-listen";

/// A bound, not yet serving, Ingress proxy.
pub struct Bound {
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<TlsBound>,
    opts: Options,
    metrics: Metrics,
}

/// The TLS listener, its certificates and its handshake configuration.
struct TlsBound {
    listener: TcpListener,
    local: SocketAddr,
    certs: Arc<tls::Certs>,
    acceptor: tokio_rustls::TlsAcceptor,
}

async fn listen(addr: SocketAddr, flag: &'static str) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::AddressInUse { addr, flag },
        std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { addr, flag },
        _ => Error::Bind {
            addr,
            flag,
            source: e,
        },
    })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, flag, source })?;
    Ok((listener, local))
}

/// Binds the listeners (HTTP, and TLS when `tls_listen` is set). Errors name the address and
/// the flag that moves it.
pub async fn bind(opts: Options) -> Result<Bound, Error> {
    let (listener, local) = listen(opts.listen, HTTP_FLAG).await?;
    let tls = match opts.tls_listen {
        None => None,
        Some(addr) => {
            let (listener, local) = listen(addr, TLS_FLAG).await?;
            let certs = Arc::new(tls::Certs::default());
            let cfg = tls::server_config(certs.clone()).map_err(|source| Error::Tls {
                flag: TLS_FLAG,
                source,
            })?;
            Some(TlsBound {
                listener,
                local,
                certs,
                acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            })
        }
    };
    Ok(Bound {
        listener,
        local,
        tls,
        opts,
        metrics: Metrics::default(),
    })
}

impl Bound {
    /// The address actually bound (the port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address the TLS listener bound, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.local)
    }

    /// The TLS listener's certificate table, for [`tls::run`] to keep current.
    pub fn certs(&self) -> Option<Arc<tls::Certs>> {
        self.tls.as_ref().map(|t| t.certs.clone())
    }

    /// A handle on the proxy's metrics, valid before and after `serve` starts.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The proxy's metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.text()
    }

    /// Serves until `shutdown` turns true (or its sender goes away): follows `snapshots`,
    /// reports each version put live and drained on `applied`, then stops accepting, lets open
    /// connections finish their current request (up to the drain timeout) and returns.
    pub async fn serve(
        self,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        applied: watch::Sender<u64>,
        shutdown: watch::Receiver<bool>,
    ) {
        let Bound {
            listener,
            local,
            tls,
            opts,
            metrics,
        } = self;
        let drain_timeout = opts.drain_timeout;
        let drained = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            opts,
            live: Live::new(Table::empty()),
            metrics: metrics.clone(),
        });
        let builder = Builder::new(metrics, drained.clone());
        let drainer = tokio::spawn(drain::run(
            shared.clone(),
            builder,
            drained,
            snapshots,
            applied,
            shutdown.clone(),
        ));
        let open = Arc::new(OpenConnections::default());
        let tls_loop = tls.map(|t| {
            tracing::info!(listen = %t.local, "Ingress proxy serving TLS");
            tokio::spawn(accept_tls(
                t.listener,
                t.acceptor,
                shared.clone(),
                open.clone(),
                shutdown.clone(),
            ))
        });
        tracing::info!(listen = %local, workers = shared.opts.workers, "Ingress proxy serving");
        let workers = start_workers(listener, &shared, &shutdown);
        for w in workers {
            let _ = w.await;
        }
        if let Some(t) = tls_loop {
            let _ = t.await;
        }
        let _ = tokio::time::timeout(drain_timeout, open.wait_idle()).await;
        drainer.abort();
        tracing::info!(listen = %local, "Ingress proxy stopped");
    }
}

/// Starts the plain listener's worker threads, each accepting on the listener and serving its
/// connections in a current-thread runtime of its own: a client connection, its requests and
/// the upstream connections they use (pooled per worker) stay on one thread, with no hand-off
/// between threads per request. The receivers complete when the workers have stopped (after
/// shutdown, once their connections finished or the drain timeout passed).
fn start_workers(
    listener: TcpListener,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::sync::oneshot::Receiver<()>> {
    let n = shared.opts.workers.max(1);
    let std_listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "Ingress listener cannot be handed to its worker threads: not serving HTTP");
            return Vec::new();
        }
    };
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let l = match std_listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, worker = i, "Ingress worker not started");
                continue;
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("baton-ingress-{i}"))
            .spawn(move || {
                let _done = tx;
                pool::set_worker(i);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, worker = i, "Ingress worker runtime not started");
                        return;
                    }
                };
                rt.block_on(async move {
                    let drain_timeout = shared.opts.drain_timeout;
                    // The worker's own shutdown signal and connection count: its connections
                    // watch and count on this thread's cache lines, not on ones every worker
                    // writes (a shared watch's waiter list is a lock taken per poll).
                    let (local_tx, local_rx) = watch::channel(false);
                    let mut shutdown = shutdown;
                    tokio::spawn(async move {
                        // A closed channel means shutdown too.
                        let _ = shutdown.wait_for(|s| *s).await;
                        let _ = local_tx.send(true);
                    });
                    let open = Arc::new(OpenConnections::default());
                    match TcpListener::from_std(l) {
                        Ok(l) => accept_http(l, shared, open.clone(), local_rx).await,
                        Err(e) => {
                            tracing::error!(error = %e, worker = i, "Ingress worker cannot listen");
                            return;
                        }
                    }
                    // The runtime ends with this thread: let its connections finish first.
                    let _ = tokio::time::timeout(drain_timeout, open.wait_idle()).await;
                });
            });
        match spawned {
            Ok(_) => done.push(rx),
            Err(e) => tracing::error!(error = %e, worker = i, "Ingress worker thread not started"),
        }
    }
    done
}

/// The plain listener's accept loop: a task per connection serving HTTP/1.1 until shutdown.
async fn accept_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    open: Arc<OpenConnections>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            biased;
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let svc = ConnService::new(shared.clone(), peer.ip(), Scheme::Http);
                    let conn = http.serve_connection(TokioIo::new(stream), svc).with_upgrades();
                    let mut stop = shutdown.clone();
                    let guard = open.enter();
                    tokio::spawn(async move {
                        let _guard = guard;
                        tokio::pin!(conn);
                        tokio::select! {
                            biased;
                            r = conn.as_mut() => {
                                if let Err(e) = r {
                                    tracing::debug!(client = %peer, error = %e, "Ingress client connection ended");
                                }
                                return;
                            }
                            _ = stop.wait_for(|s| *s) => {}
                        }
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    });
                }
                Err(e) => accept_failed(e).await,
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// How long a client may take to send a request's head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Out of file descriptors and the like: wait instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "Ingress accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The TLS listener's accept loop: a task per connection does the handshake (the certificate
/// chosen by SNI) and then serves HTTP/2 or HTTP/1.1, whichever ALPN chose, until shutdown.
async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    open: Arc<OpenConnections>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    http.http2().timer(TokioTimer::new());
    let http = Arc::new(http);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let guard = open.enter();
        let (acceptor, shared, http, mut stop) = (
            acceptor.clone(),
            shared.clone(),
            http.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let _guard = guard;
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(client = %peer, error = %e, "Ingress TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %peer, "Ingress TLS handshake timed out");
                        return;
                    }
                };
            let svc = ConnService::new(shared, peer.ip(), Scheme::Https);
            let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(client = %peer, error = %e, "Ingress TLS client connection ended");
                    }
                    return;
                }
                _ = stop.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
}

/// Counts open client connections so shutdown can wait for them.
#[derive(Default)]
struct OpenConnections {
    count: AtomicUsize,
    idle: Notify,
}

struct OpenGuard(Arc<OpenConnections>);

impl OpenConnections {
    fn enter(self: &Arc<Self>) -> OpenGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        OpenGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
