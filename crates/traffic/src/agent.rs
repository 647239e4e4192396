//! The traffic agent of one machine: the snapshot feed, the Service proxy, the Ingress proxy,
//! the Ingresses' status and Events, and the drain acknowledgements, wired together. The
//! binary only says which of them run.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use baton_api::events::{Kind, Recorder};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use tokio::sync::watch;

use crate::feed::{self, FeedOptions};
use crate::model::Snapshot;
use crate::{ingress, serviceproxy};

/// What runs, and where.
#[derive(Clone, Debug)]
pub struct Options {
    /// The holder name of this machine's traffic Lease (its node name).
    pub holder: String,
    /// The Service proxy, when it runs (needs root and nftables).
    pub service_proxy: Option<serviceproxy::Options>,
    /// The Ingress proxy, when it runs.
    pub ingress: Option<ingress::Options>,
}

/// What is running, for metrics and the binary's messages.
pub struct Running {
    /// The address the Ingress proxy listens on, if it runs.
    pub ingress_addr: Option<SocketAddr>,
    /// The address of the Ingress proxy's TLS listener, if it runs.
    pub ingress_tls_addr: Option<SocketAddr>,
    pub ingress_metrics: Option<ingress::Metrics>,
    pub proxy_metrics: Option<Arc<serviceproxy::Metrics>>,
}

/// Why the traffic agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ingress(#[from] ingress::Error),
}

/// Starts what `opts` asks for. An Ingress listener that cannot be bound is an error (the
/// message names `--ingress-listen` or `--ingress-tls-listen`); the rest runs in spawned tasks
/// until `shutdown`.
pub async fn start(
    client: Client,
    opts: Options,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, Error> {
    let bound = match opts.ingress.clone() {
        Some(o) => Some(ingress::bind(o).await?),
        None => None,
    };
    let (tx, snapshots) = watch::channel(Arc::new(Snapshot::default()));
    tokio::spawn(until(
        shutdown.clone(),
        feed::run(client.clone(), FeedOptions::default(), tx),
    ));
    let mut applied = Vec::new();
    let mut running = Running {
        ingress_addr: None,
        ingress_tls_addr: None,
        ingress_metrics: None,
        proxy_metrics: None,
    };
    if let Some(o) = opts.service_proxy {
        let (atx, arx) = watch::channel(0u64);
        applied.push(arx);
        running.proxy_metrics = Some(o.metrics.clone());
        tokio::spawn(serviceproxy::run(
            o,
            snapshots.clone(),
            atx,
            shutdown.clone(),
        ));
    }
    if let Some(b) = bound {
        let (atx, arx) = watch::channel(0u64);
        applied.push(arx);
        let addr = b.local_addr();
        running.ingress_addr = Some(addr);
        running.ingress_tls_addr = b.tls_addr();
        running.ingress_metrics = Some(b.metrics());
        let (ptx, tls_problems) = watch::channel(Vec::new());
        let certs = b.certs();
        let tls_served = certs.is_some();
        if let Some(certs) = certs {
            tokio::spawn(until(
                shutdown.clone(),
                ingress::tls::run(client.clone(), snapshots.clone(), certs, ptx),
            ));
        }
        tokio::spawn(b.serve(snapshots.clone(), atx, shutdown.clone()));
        tokio::spawn(until(
            shutdown.clone(),
            ingress_status(
                client.clone(),
                snapshots.clone(),
                addr.ip(),
                tls_served.then_some(tls_problems),
            ),
        ));
    }
    if !applied.is_empty() {
        tokio::spawn(until(
            shutdown,
            crate::drain::run(client, opts.holder, snapshots, applied),
        ));
    }
    Ok(running)
}

/// Keeps `status.loadBalancer` of the served Ingresses on the proxy's address and records an
/// Event once per problem (a missing Service or port; a missing or invalid TLS Secret, from
/// `tls_problems`) as it appears. Without a TLS listener (`tls_problems` is `None`), an
/// Ingress with `spec.tls` gets a `TLSNotServed` Warning instead of being served as plain HTTP
/// silently.
async fn ingress_status(
    client: Client,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    ip: IpAddr,
    mut tls_problems: Option<watch::Receiver<Vec<ingress::IngressProblem>>>,
) {
    // An unspecified listen address is reported as loopback, where users reach it.
    let ip = if ip.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    let events = Recorder::new(client.clone(), ingress::COMPONENT, None);
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut published = 0;
    loop {
        let snap = snapshots.borrow_and_update().clone();
        if snap.version > 0 {
            if published != snap.version {
                if let Err(e) = ingress::publish_status(&client, &snap.ingresses, ip).await {
                    tracing::warn!(error = %e, "publishing Ingress status failed");
                }
                published = snap.version;
            }
            let mut problems = ingress::problems(&snap);
            match tls_problems.as_mut() {
                Some(rx) => problems.extend(rx.borrow_and_update().iter().cloned()),
                None => problems.extend(tls_not_served(&snap)),
            }
            let mut now = BTreeSet::new();
            for p in &problems {
                let key = format!("{p:?}");
                now.insert(key.clone());
                if reported.contains(&key) {
                    continue;
                }
                let found: Option<&Ingress> = snap.ingresses.iter().find(|i| {
                    i.metadata.namespace.as_deref() == Some(p.namespace.as_str())
                        && i.metadata.name.as_deref() == Some(p.name.as_str())
                });
                if let Some(ing) = found {
                    events.publish(ing, Kind::Warning, p.reason, p.message.clone());
                }
            }
            reported = now;
        }
        let tls_changed = async {
            match tls_problems.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { return },
            open = tls_changed => if !open { tls_problems = None },
        }
    }
}

/// `TLSNotServed` for each Ingress with `spec.tls` when no TLS listener runs.
fn tls_not_served(snap: &Snapshot) -> Vec<ingress::IngressProblem> {
    snap.ingresses
        .iter()
        .filter(|i| {
            i.spec
                .as_ref()
                .and_then(|s| s.tls.as_ref())
                .is_some_and(|t| !t.is_empty())
        })
        .map(|i| ingress::IngressProblem {
            namespace: i.metadata.namespace.clone().unwrap_or_default(),
            name: i.metadata.name.clone().unwrap_or_default(),
            reason: "TLSNotServed",
            message: "spec.tls is not served: the Ingress has no TLS listener (start the server with --ingress-tls-listen ADDR)".into(),
        })
        .collect()
}

async fn until(mut shutdown: watch::Receiver<bool>, task: impl Future<Output = ()>) {
    tokio::select! {
        _ = task => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}
