//! Upstream endpoints: one [`Endpoint`] per backend `ip:port`, holding its keep-alive pool of
//! idle HTTP/1.1 connections and the count of requests in flight to it.
//!
//! The in-flight count is what makes draining exact. A request enters an endpoint
//! ([`Endpoint::enter`]) before it re-checks that the route table it picked the endpoint from
//! is still the live one; the drainer publishes the new table before it reads the counts of
//! the endpoints the table dropped. Both sides use sequentially consistent atomics, so either
//! the request sees the new table (and picks again) or the drainer sees the request (and waits
//! for it). A retired endpoint keeps no idle connection and takes none back.
//!
//! Idle connections are kept per worker thread of the proxy (see [`set_worker`]): a worker
//! reuses the connections its own runtime registered, so a request reads and writes its
//! upstream socket on the thread that polls it, as nginx's per-worker keepalive caches do.
//! Threads that are not workers (the TLS listener's) share one more pool.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::upstream::Conn;

/// Idle connections kept per endpoint and worker (ingress-nginx keeps 320 per upstream).
const MAX_IDLE: usize = 320;
/// Pools (and per-worker counters elsewhere) per endpoint: one per worker thread (workers
/// beyond `SHARDS - 1` share) and the last for every other thread.
pub(crate) const SHARDS: usize = 9;

/// A value on cache lines of its own, so that one worker writing its shard does not take the
/// line away from another worker writing the next one (false sharing).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(SHARDS - 1) };
}

/// Marks the current thread as the proxy's worker `i`: its requests use pool shard `i`.
pub(crate) fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i % (SHARDS - 1)));
}

/// The shard of the current thread: its worker's, or the last for other threads.
pub(crate) fn shard() -> usize {
    WORKER.with(|w| w.get())
}
/// Idle connections older than this are not reused (backends close theirs after 5–75 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Why a connection to an endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect to {addr} timed out after {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl ConnectError {
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One backend address and its connections.
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// `namespace/name` of the pod behind it, for logs.
    pub(crate) pod: Option<String>,
    /// Written by every worker per request: on a line of its own.
    inflight: Padded<AtomicUsize>,
    retired: AtomicBool,
    idle: [Padded<Mutex<VecDeque<Idle>>>; SHARDS],
    /// Woken when a retired endpoint's last request finishes (shared with the drainer).
    drained: Arc<Notify>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "{} (pod {pod})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, pod: Option<String>, drained: Arc<Notify>) -> Endpoint {
        Endpoint {
            addr,
            pod,
            inflight: Padded(AtomicUsize::new(0)),
            retired: AtomicBool::new(false),
            idle: Default::default(),
            drained,
        }
    }

    /// Counts a request as in flight to this endpoint until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.inflight.0.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight.0.load(Ordering::SeqCst)
    }

    /// No longer routable: close idle connections now, take none back.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        for shard in &self.idle {
            let idle = std::mem::take(&mut *shard.0.lock().unwrap_or_else(|e| e.into_inner()));
            // Dropping a sender closes its idle connection.
            drop(idle);
        }
    }

    /// An idle pooled connection that can still carry a request (newest first).
    pub(crate) fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle[shard()]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while let Some(mut c) = idle.pop_back() {
            if c.since.elapsed() < IDLE_TIMEOUT && c.conn.is_reusable() {
                return Some(c.conn);
            }
        }
        None
    }

    /// Returns a connection whose exchange finished to the pool (dropped when retired or
    /// full); connections idle for too long are closed on the way.
    pub(crate) fn checkin(&self, conn: Conn) {
        let now = Instant::now();
        let mut idle = self.idle[shard()]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Checked under the shard's lock: `retire` sets the flag before it empties the shards,
        // so a connection pushed after the check is taken by `retire`.
        if self.retired.load(Ordering::SeqCst) || idle.len() >= MAX_IDLE {
            return;
        }
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
    }

    /// Opens a new connection.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Conn, ConnectError> {
        let addr = self.addr;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnectError::Timeout { addr, timeout }),
            Ok(Err(source)) => return Err(ConnectError::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }
}

/// A request in flight to an endpoint.
pub(crate) struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub(crate) fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ep = &self.0;
        if ep.inflight.0.fetch_sub(1, Ordering::SeqCst) == 1 && ep.retired.load(Ordering::SeqCst) {
            ep.drained.notify_one();
        }
    }
}
