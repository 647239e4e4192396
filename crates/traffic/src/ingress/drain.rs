//! Putting snapshots live and acknowledging them exactly.
//!
//! For each snapshot the drainer builds a route table, publishes it (requests starting from
//! then on use it), retires the endpoints it no longer routes to (their idle connections are
//! closed, busy ones are not reused) and reports the snapshot's version on `applied` only when
//! no request is still in flight to any retired endpoint — or when an endpoint's drain timeout
//! passed, which it logs as a warning naming the endpoint. The node waits for that report
//! before it sends SIGTERM to a terminating pod, so a pod never receives a signal while this
//! proxy may still send it a request, nor while a request it answers is unfinished.

use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::pool::Endpoint;
use super::proxy::Shared;
use super::table::Builder;
use crate::model::Snapshot;

/// Endpoints being drained and the version waiting to be reported.
struct Drainer {
    shared: Arc<Shared>,
    builder: Builder,
    draining: Vec<(Arc<Endpoint>, Instant)>,
    unreported: Option<u64>,
}

impl Drainer {
    fn apply(&mut self, snapshot: &Snapshot) {
        let (table, retired) = self.builder.build(snapshot);
        let version = table.version;
        self.shared.live.publish(Arc::new(table));
        let deadline = Instant::now() + self.shared.opts.drain_timeout;
        for ep in retired {
            ep.retire();
            tracing::debug!(endpoint = %ep, in_flight = ep.inflight(), "endpoint no longer routed by the Ingress");
            self.draining.push((ep, deadline));
        }
        self.unreported = Some(version);
    }

    /// Drops finished (or timed-out, or routable again) endpoints; reports the version when
    /// none is left.
    fn settle(&mut self, applied: &watch::Sender<u64>) {
        let now = Instant::now();
        let builder = &self.builder;
        let version = self.unreported;
        self.draining.retain(|(ep, deadline)| {
            if ep.inflight() == 0 || builder.is_routable(&ep.addr) {
                return false;
            }
            if now >= *deadline {
                tracing::warn!(
                    endpoint = %ep,
                    in_flight = ep.inflight(),
                    version = ?version,
                    "Ingress drain timeout: requests still in flight to an endpoint no longer routed; acknowledging the snapshot anyway"
                );
                return false;
            }
            true
        });
        if self.draining.is_empty()
            && let Some(v) = self.unreported.take()
        {
            applied.send_replace(v);
            tracing::debug!(version = v, "Ingress routes live and drained");
        }
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    builder: Builder,
    drained: Arc<Notify>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    applied: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut d = Drainer {
        shared,
        builder,
        draining: Vec::new(),
        unreported: None,
    };
    let first = snapshots.borrow_and_update().clone();
    d.apply(&first);
    let mut snapshots_open = true;
    loop {
        d.settle(&applied);
        if *shutdown.borrow() {
            break;
        }
        let next_deadline = d.draining.iter().map(|(_, t)| *t).min();
        tokio::select! {
            changed = snapshots.changed(), if snapshots_open => match changed {
                Ok(()) => {
                    let snap = snapshots.borrow_and_update().clone();
                    d.apply(&snap);
                }
                Err(_) => snapshots_open = false,
            },
            _ = drained.notified(), if !d.draining.is_empty() => {}
            _ = sleep_until(next_deadline), if next_deadline.is_some() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
