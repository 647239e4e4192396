//! Baton's cluster DNS (CoreDNS's place in a Kubernetes cluster): Services and their endpoints
//! under the cluster domain, every other name forwarded to the host's resolvers. It reads
//! Services and EndpointSlices from the controllers' shared informers (no API call per query)
//! and rebuilds its [`records::Zone`] on each change.
//!
//! # Layout
//! - [`records`]: the zone, pure: which names exist and what they answer.
//! - [`server`]: the hickory-server request handler: zone answers encoded, forwarding.

pub mod records;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton_controllers::informer::Informer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::watch;

pub use records::Zone;
pub use server::{Handler, Upstreams};

/// What the cluster DNS serves, and where.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// UDP and TCP address it answers on (the pods' `nameserver`, port 53).
    pub listen: SocketAddr,
    /// Where names outside the cluster domain go.
    pub upstreams: Upstreams,
}

/// Idle TCP connections are closed after this long.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `opts.listen` (UDP and TCP) and serves until `shutdown`; the zone follows the
/// informers. An address that cannot be bound is the error.
pub async fn start(
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
    opts: Options,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let udp = tokio::net::UdpSocket::bind(opts.listen).await?;
    let addr = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let (tx, rx) = watch::channel(None);
    let handler = Handler::new(&opts.domain, rx, opts.upstreams.clone(), addr);
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64 * 1024);
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = server.block_until_done() => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "cluster DNS stopped");
                }
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                let _ = server.shutdown_gracefully().await;
            }
        }
    });
    let mut stop = shutdown;
    tokio::spawn(async move {
        tokio::select! {
            _ = follow(services, slices, opts.domain, tx) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {}
        }
    });
    Ok(addr)
}

/// Publishes a new zone once both caches are listed, then after every change (a burst of
/// changes makes one zone).
async fn follow(
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
    domain: String,
    tx: watch::Sender<Option<Arc<Zone>>>,
) {
    let changes = futures::stream::select(
        services.subscribe().map(|_| ()),
        slices.subscribe().map(|_| ()),
    );
    let mut changes = std::pin::pin!(changes);
    if services.synced().await.is_err() || slices.synced().await.is_err() {
        return;
    }
    loop {
        // Take every change already queued, then build once.
        while futures::FutureExt::now_or_never(changes.next())
            .flatten()
            .is_some()
        {}
        let svcs = services.store().state();
        let sls = slices.store().state();
        let zone = Zone::build(&domain, svcs.iter().map(|s| &**s), sls.iter().map(|s| &**s));
        tracing::debug!(
            services = svcs.len(),
            slices = sls.len(),
            "cluster DNS zone rebuilt"
        );
        tx.send_replace(Some(Arc::new(zone)));
        if changes.next().await.is_none() {
            return;
        }
    }
}
