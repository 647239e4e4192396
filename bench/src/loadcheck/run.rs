//! The load: pools of workers (kept-alive and new-connection), the stop conditions (request
//! count, deadline, stop file, SIGTERM/SIGINT), and the one resend of a request that found its
//! reused keep-alive connection already closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::http::{self, Conn, Failure, Response};
use super::tally::{ConnMode, Outcome, Tally, round3};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Mixed,
    KeepAlive,
    New,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Mixed => "mixed",
            Mode::KeepAlive => "keepalive",
            Mode::New => "new",
        }
    }
}

pub struct Config {
    pub url: String,
    pub addr: SocketAddr,
    pub host_header: String,
    pub path: String,
    pub requests: u64,
    pub max_seconds: f64,
    pub concurrency: usize,
    pub mode: Mode,
    /// Requests per second over all workers.
    pub rate: Option<f64>,
    pub stop_file: Option<PathBuf>,
    /// The stop file is honoured only once this many requests have started, so that a test
    /// gets its minimum count even when what it measures ends early.
    pub min_requests: u64,
    pub stale_retry: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// How long requests in flight may finish after a stop before they are abandoned.
    pub grace: Duration,
    pub max_transitions: usize,
}

struct Pool {
    mode: ConnMode,
    budget: u64,
    claimed: AtomicU64,
    rate: Option<f64>,
}

struct Shared {
    cfg: Config,
    start: Instant,
    stop: watch::Sender<Option<&'static str>>,
    tally: Mutex<Tally>,
    started: AtomicU64,
    req_keep: Vec<u8>,
    req_close: Vec<u8>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.borrow().is_some()
    }

    fn stop(&self, reason: &'static str) {
        self.stop.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One attempt on `conn` (a new connection when it is empty). The connection is kept only
/// when the answer allows reuse and the pool keeps connections.
async fn attempt(sh: &Shared, conn: &mut Option<Conn>, keep: bool) -> Result<Response, Failure> {
    let req = if keep { &sh.req_keep } else { &sh.req_close };
    let c = match conn {
        Some(c) => c,
        None => conn.insert(http::connect(sh.cfg.addr, sh.cfg.connect_timeout).await?),
    };
    let r = match tokio::time::timeout(sh.cfg.timeout, c.exchange(req)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout {
            ms: sh.cfg.timeout.as_millis(),
            got_any: c.got_any(),
            conn: c.describe(),
        }),
    };
    match &r {
        Ok(resp) if keep && resp.keep_alive => c.served += 1,
        _ => *conn = None,
    }
    r
}

/// One request as a browser or Go's transport makes it: an idle connection the server has
/// closed is dropped first; a request on a reused connection that got no byte of response is
/// resent once on a new connection (when enabled).
async fn one_request(sh: &Shared, mode: ConnMode, conn: &mut Option<Conn>) -> Outcome {
    let keep = mode == ConnMode::KeepAlive;
    let mut idle_reconnect = None;
    if let Some(why) = conn.as_ref().and_then(Conn::idle_closed) {
        idle_reconnect = Some(why);
        *conn = None;
    }
    let reused = conn.is_some();
    match attempt(sh, conn, keep).await {
        Err(Failure::NoResponse(msg)) if reused && keep && sh.cfg.stale_retry => {
            *conn = None;
            let result = attempt(sh, conn, keep).await;
            Outcome {
                result,
                stale: Some(msg),
                idle_reconnect,
            }
        }
        result => Outcome {
            result,
            stale: None,
            idle_reconnect,
        },
    }
}

async fn worker(sh: Arc<Shared>, pool: Arc<Pool>) {
    let mut stop_rx = sh.stop.subscribe();
    let mut conn: Option<Conn> = None;
    loop {
        if sh.stopped() {
            break;
        }
        let seq = pool.claimed.fetch_add(1, Ordering::SeqCst);
        if seq >= pool.budget {
            break;
        }
        if let Some(rate) = pool.rate {
            let at = sh.start + Duration::from_secs_f64(seq as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = stop_rx.wait_for(Option::is_some) => break,
            }
        }
        if sh.stopped() {
            break;
        }
        sh.started.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        let outcome = one_request(&sh, pool.mode, &mut conn).await;
        let now = Instant::now();
        let t_ms = round3((now - sh.start).as_secs_f64() * 1000.0);
        sh.tally().record(pool.mode, t_ms, now - t0, outcome);
    }
}

/// Runs the load and returns the summary.
pub async fn run(cfg: Config) -> Value {
    let start_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let stop_file_preexisting = cfg.stop_file.as_ref().is_some_and(|p| p.exists());
    if stop_file_preexisting {
        eprintln!(
            "baton-loadcheck: the stop file {} exists already; stopping at once",
            cfg.stop_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    let (stop_tx, mut stop_rx) = watch::channel(None);
    let sh = Arc::new(Shared {
        req_keep: http::request(&cfg.path, &cfg.host_header, false),
        req_close: http::request(&cfg.path, &cfg.host_header, true),
        tally: Mutex::new(Tally::new(cfg.max_transitions)),
        start: Instant::now(),
        stop: stop_tx,
        started: AtomicU64::new(0),
        cfg,
    });
    let cfg = &sh.cfg;

    let mut helpers = Vec::new();
    // Signals: registered before any load starts.
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            let s = sh.clone();
            helpers.push(tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => s.stop("signal"),
                    _ = int.recv() => s.stop("signal"),
                }
            }));
        }
        (Err(e), _) | (_, Err(e)) => eprintln!("baton-loadcheck: no signal handler: {e}"),
    }
    {
        let s = sh.clone();
        let d = Duration::from_secs_f64(cfg.max_seconds);
        helpers.push(tokio::spawn(async move {
            tokio::time::sleep(d).await;
            s.stop("max_seconds");
        }));
    }
    if let Some(path) = cfg.stop_file.clone() {
        let s = sh.clone();
        helpers.push(tokio::spawn(async move {
            loop {
                if path.exists() && s.started.load(Ordering::SeqCst) >= s.cfg.min_requests {
                    s.stop("stop_file");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    let pools: Vec<(Arc<Pool>, usize)> = {
        let rate_of = |share: f64| cfg.rate.map(|r| r * share);
        match cfg.mode {
            Mode::KeepAlive | Mode::New => {
                let mode = if cfg.mode == Mode::New {
                    ConnMode::New
                } else {
                    ConnMode::KeepAlive
                };
                vec![(
                    Arc::new(Pool {
                        mode,
                        budget: cfg.requests,
                        claimed: AtomicU64::new(0),
                        rate: rate_of(1.0),
                    }),
                    cfg.concurrency,
                )]
            }
            Mode::Mixed => {
                // Half of the requests (and of the workers) each way, so the halves stay
                // halves even though kept-alive requests are faster.
                let keep_budget = cfg.requests.div_ceil(2);
                let keep_workers = cfg.concurrency.div_ceil(2);
                vec![
                    (
                        Arc::new(Pool {
                            mode: ConnMode::KeepAlive,
                            budget: keep_budget,
                            claimed: AtomicU64::new(0),
                            rate: rate_of(keep_budget as f64 / cfg.requests.max(1) as f64),
                        }),
                        keep_workers,
                    ),
                    (
                        Arc::new(Pool {
                            mode: ConnMode::New,
                            budget: cfg.requests - keep_budget,
                            claimed: AtomicU64::new(0),
                            rate: rate_of(
                                (cfg.requests - keep_budget) as f64 / cfg.requests.max(1) as f64,
                            ),
                        }),
                        cfg.concurrency - keep_workers,
                    ),
                ]
            }
        }
    };
    let mut set = JoinSet::new();
    for (pool, workers) in &pools {
        for _ in 0..*workers {
            set.spawn(worker(sh.clone(), pool.clone()));
        }
    }

    let mut grace_until: Option<tokio::time::Instant> = None;
    let mut abandoned = false;
    loop {
        tokio::select! {
            r = set.join_next() => {
                if r.is_none() {
                    break;
                }
            }
            _ = stop_rx.wait_for(Option::is_some), if grace_until.is_none() => {
                grace_until = Some(tokio::time::Instant::now() + cfg.grace);
            }
            _ = async {
                match grace_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                abandoned = true;
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
    }
    let elapsed = sh.start.elapsed();
    let stopped_by = (*sh.stop.borrow()).unwrap_or("requests");
    sh.stop("done");
    for h in helpers {
        h.abort();
    }

    let started = sh.started.load(Ordering::SeqCst);
    let mut tally = sh.tally();
    let abandoned_in_flight = started - tally.total();
    let mut head = Map::new();
    let facts = json!({
        "url": cfg.url,
        "host": cfg.host_header,
        "mode": cfg.mode.name(),
        "concurrency": cfg.concurrency,
        "requests_planned": cfg.requests,
        "stopped_by": stopped_by,
        "stop_file_preexisting": stop_file_preexisting,
        "abandoned_in_flight": abandoned_in_flight,
        "grace_expired": abandoned,
        "start_unix_ms": start_unix_ms,
        "settings": {
            "stale_retry": cfg.stale_retry,
            "rate_per_s": cfg.rate,
            "max_seconds": cfg.max_seconds,
            "connect_timeout_ms": cfg.connect_timeout.as_millis() as u64,
            "timeout_ms": cfg.timeout.as_millis() as u64,
            "grace_ms": cfg.grace.as_millis() as u64,
        },
    });
    if let Value::Object(f) = facts {
        head.extend(f);
    }
    tally.summary(head, elapsed)
}
