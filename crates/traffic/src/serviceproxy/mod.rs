//! The service proxy (kube-proxy's part): Service ClusterIPs and NodePorts as nftables rules
//! in one table of Baton's own, rewritten by one atomic `nft -f` transaction per snapshot.
//!
//! [`run`] applies every new [`Snapshot`] (bursts coalesce: it always takes the latest) and
//! reports on `applied` the version whose rules are live, only once `nft` has succeeded: that
//! report is what lets the node send SIGTERM to a terminating pod. Rules are left in place on
//! shutdown, so running pods stay reachable while the server restarts; [`remove`] deletes the
//! table (`baton reset`).
//!
//! # Layout
//! - [`rules`]: the ruleset of a snapshot as `nft -f` text (pure).
//! - [`nft`]: running `nft -f -`, the service CIDR route, the bridge's sysctls.
//! - [`metrics`]: sync and network-programming histograms as Prometheus text.

pub mod metrics;
pub mod nft;
pub mod rules;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::model::Snapshot;
pub use metrics::Metrics;
pub use nft::NftError;
pub use rules::{Ipv4Cidr, Objects, RuleOptions, Ruleset};

/// How the service proxy runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The nftables table (family `ip`) Baton owns; nothing else in it survives a sync.
    pub table: String,
    /// The pod bridge the service CIDR is routed to.
    pub bridge: String,
    pub pod_cidr: Ipv4Cidr,
    pub service_cidr: Ipv4Cidr,
    /// Addresses NodePorts answer on besides 127.0.0.1; empty: every local address.
    pub node_ips: Vec<Ipv4Addr>,
    /// Where sync figures go (serve `metrics.render()` on `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: "baton".into(),
            bridge: "baton0".into(),
            pod_cidr: Ipv4Cidr {
                addr: Ipv4Addr::new(10, 244, 0, 0),
                prefix: 24,
            },
            service_cidr: Ipv4Cidr {
                addr: Ipv4Addr::new(10, 96, 0, 0),
                prefix: 12,
            },
            node_ips: Vec::new(),
            metrics: Arc::default(),
        }
    }
}

impl Options {
    fn rules(&self, forget_on_reset: bool) -> RuleOptions {
        RuleOptions {
            table: self.table.clone(),
            pod_cidr: self.pod_cidr,
            service_cidr: self.service_cidr,
            node_ips: self.node_ips.clone(),
            forget_on_reset,
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the route and sysctls are retried while the bridge does not exist yet.
const HOST_RETRY: Duration = Duration::from_secs(2);
/// Syncs rewrite only changed chains; at most this long apart, one rewrites them all (as
/// kube-proxy's full sync), repairing whatever someone else changed in the table.
const FULL_RESYNC: Duration = Duration::from_secs(3600);

/// Keeps the table equal to the latest snapshot until `shutdown` turns true. Version 0 is the
/// channel's placeholder before the first real snapshot and is never applied (it would wipe
/// the rules a previous run left for running pods).
pub async fn run(
    opts: Options,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    applied: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    // When each version was first seen, for the network-programming figure: a side task
    // stamps versions as they arrive, even while a sync is running.
    let seen: Arc<Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
    let stamper = {
        let seen = seen.clone();
        let mut rx = snapshots.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let v = rx.borrow_and_update().version;
                let mut q = seen.lock().unwrap_or_else(|e| e.into_inner());
                q.push_back((v, Instant::now()));
                if q.len() > 10_000 {
                    q.pop_front();
                }
            }
        })
    };
    let forget_on_reset = nft::supports_ct_timeout().await;
    if !forget_on_reset {
        tracing::warn!(
            "service proxy: this kernel has no conntrack timeout policies (nft `ct timeout`); a new connection that reuses the client port of one a pod reset in the last 10 s can be refused"
        );
    }
    let rule_opts = opts.rules(forget_on_reset);
    let mut previous: Option<Objects> = None;
    let mut host_ready = false;
    let mut backoff = BACKOFF_MIN;
    let mut first_pick = Some(Instant::now());
    let mut last_full = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let snap = snapshots.borrow_and_update().clone();
        if !host_ready {
            match nft::ensure_host(&opts.bridge, opts.service_cidr).await {
                Ok(()) => host_ready = true,
                Err(e) => {
                    tracing::warn!(error = %e, "service proxy: service CIDR route not set yet")
                }
            }
        }
        let mut retry_in = None;
        if snap.version > 0 && *applied.borrow() != snap.version {
            let started = Instant::now();
            let base = match &previous {
                Some(p) if last_full.elapsed() > FULL_RESYNC => Some(p.forget_contents()),
                other => other.clone(),
            };
            if base.as_ref() != previous.as_ref() || base.is_none() {
                last_full = Instant::now();
            }
            let rs = rules::ruleset(&snap, &rule_opts, base.as_ref());
            match nft::apply(&rs.script).await {
                Ok(()) => {
                    let took = started.elapsed();
                    let first_seen = {
                        let mut q = seen.lock().unwrap_or_else(|e| e.into_inner());
                        let mut first = None;
                        while q.front().is_some_and(|(v, _)| *v <= snap.version) {
                            if let Some((_, t)) = q.pop_front() {
                                first = first.or(Some(t));
                            }
                        }
                        first.or(first_pick.take())
                    };
                    let programming = first_seen.map(|t| t.elapsed());
                    opts.metrics.synced(snap.version, took, programming);
                    tracing::debug!(
                        version = snap.version,
                        endpoints = rs.endpoints,
                        took_ms = took.as_secs_f64() * 1e3,
                        "service proxy: rules applied"
                    );
                    previous = Some(rs.objects);
                    backoff = BACKOFF_MIN;
                    applied.send_replace(snap.version);
                }
                Err(e) => {
                    opts.metrics.failed();
                    tracing::error!(version = snap.version, error = %e, retry_in_ms = backoff.as_millis() as u64, "service proxy: sync failed");
                    // The next attempt rebuilds the table from nothing, whatever went wrong.
                    previous = None;
                    retry_in = Some(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if retry_in.is_none() && !host_ready {
            retry_in = Some(HOST_RETRY);
        }
        // A dropped shutdown sender counts as shutdown (it could never say so any more).
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break; // the feed is gone: leave the rules as they are
                }
                if let Some(d) = retry_in {
                    // A failure backs off even when new snapshots keep coming.
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        r = shutdown.changed() => if r.is_err() { break },
                    }
                }
            }
            _ = async {
                match retry_in {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
            r = shutdown.changed() => if r.is_err() { break },
        }
    }
    stamper.abort();
    tracing::info!(table = %opts.table, "service proxy stopped; its rules stay in place");
}

/// Deletes the table and everything in it. Returns whether it existed.
pub async fn remove(table: &str) -> Result<bool, NftError> {
    if !nft::table_exists(table).await? {
        return Ok(false);
    }
    nft::apply(&rules::remove_script(table)).await?;
    Ok(true)
}
