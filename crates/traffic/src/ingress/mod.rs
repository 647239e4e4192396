//! The Ingress proxy: an HTTP/1.1 reverse proxy on hyper, running inside the server's tokio
//! runtime, that serves the snapshot's networking.k8s.io/v1 Ingresses (the legacy
//! extensions/v1beta1 form arrives converted) and never drops a request during a rollout.
//!
//! Life cycle: [`bind`] takes the listen address (so a taken or privileged port is reported at
//! once, naming `--ingress-listen`), then [`Bound::serve`] accepts connections, follows the
//! snapshots and reports on `applied` each version it has put live *and drained*: no request
//! is still in flight to an endpoint that version no longer routes to. That report is what the
//! node waits for before a terminating pod's containers get SIGTERM.
//!
//! # Layout
//! - [`routes`]: Ingress rules → route table, host and path precedence (pure).
//! - `table`: the route table resolved against a snapshot's endpoints; the live table.
//! - `drain`: puts snapshots live, retires endpoints, reports `applied`.
//! - `pool`: per-endpoint keep-alive pools and in-flight counts.
//! - `proxy`: one request: routing, headers, retries, upgrades.
//! - `body`: streamed request and answer bodies, connection leases, access log.
//! - `metrics`: Prometheus counters and histograms per backend Service.
//! - [`status`]: `status.loadBalancer` and Events for Ingresses naming missing Services or ports.

mod body;
mod drain;
mod metrics;
mod pool;
mod proxy;
pub mod routes;
pub mod status;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use metrics::Metrics;
pub use status::{IngressProblem, problems, publish_status, record_problem};

use crate::model::Snapshot;
use proxy::{ConnService, Shared};
use table::{Builder, Live, Table};

/// How the Ingress proxy runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--ingress-listen`.
    pub listen: SocketAddr,
    /// `--ingress-access-log`: one `info` line per request (target `baton::ingress::access`).
    pub access_log: bool,
    /// How long a snapshot's acknowledgement waits for requests in flight to endpoints it no
    /// longer routes to; also how long shutdown waits for open requests.
    pub drain_timeout: Duration,
    /// Connect timeout per try (ingress-nginx: 5 s).
    pub connect_timeout: Duration,
    /// Tries per request, the first included (ingress-nginx: 3).
    pub tries: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 80)),
            access_log: false,
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            tries: 3,
        }
    }
}

/// Why the Ingress proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("address {addr} is in use; move the Ingress with --ingress-listen ADDR")]
    AddressInUse { addr: SocketAddr },
    #[error(
        "permission denied binding port {} on {}: run as root (or with CAP_NET_BIND_SERVICE) or pass --ingress-listen ADDR with a port above 1023",
        addr.port(),
        addr.ip()
    )]
    PermissionDenied { addr: SocketAddr },
    #[error("cannot listen on {addr} (--ingress-listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet serving, Ingress proxy.
pub struct Bound {
    listener: TcpListener,
    local: SocketAddr,
    opts: Options,
    metrics: Metrics,
}

/// Binds the listener. Errors name the address and the `--ingress-listen` flag.
pub async fn bind(opts: Options) -> Result<Bound, Error> {
    let addr = opts.listen;
    let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::AddressInUse { addr },
        std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { addr },
        _ => Error::Bind { addr, source: e },
    })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    Ok(Bound {
        listener,
        local,
        opts,
        metrics: Metrics::default(),
    })
}

impl Bound {
    /// The address actually bound (the port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
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
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Bound {
            listener,
            local,
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
        tracing::info!(listen = %local, "Ingress proxy serving");
        let open = Arc::new(OpenConnections::default());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60))
            .keep_alive(true);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let svc = ConnService::new(shared.clone(), peer.ip());
                        let conn = http.serve_connection(TokioIo::new(stream), svc).with_upgrades();
                        let mut stop = shutdown.clone();
                        let guard = open.enter();
                        tokio::spawn(async move {
                            let _guard = guard;
                            tokio::pin!(conn);
                            tokio::select! {
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
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "Ingress accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(drain_timeout, open.wait_idle()).await;
        drainer.abort();
        tracing::info!(listen = %local, "Ingress proxy stopped");
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
