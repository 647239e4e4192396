//! The live route table: [`Routes`] with every backend resolved against one snapshot to its
//! routable [`Endpoint`]s (or to the 503 it answers), rebuilt once per snapshot by the drainer
//! and read per request through a cheaply cloned `Arc`.
//!
//! Requests read the table through [`Live`]: connections cache the `Arc` and compare one
//! atomic generation per request, so the hot path takes no lock; a retried request reloads it
//! under a read lock.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::Notify;

use super::metrics::{Metrics, ServiceMetrics};
use super::pool::{Endpoint, Padded, SHARDS, shard};
use super::routes::{BackendRef, Routes, Unavailable, resolve};
use crate::model::{ServiceKey, Snapshot};

/// A Service port with endpoints to send to.
pub(crate) struct Backend {
    pub(crate) service: ServiceKey,
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    /// Where each worker's round-robin stands (nginx's workers each keep their own too).
    next: [Padded<AtomicUsize>; SHARDS],
    pub(crate) metrics: Arc<ServiceMetrics>,
}

impl Backend {
    /// The next endpoint round-robin, skipping ones already tried while others remain.
    pub(crate) fn pick(&self, tried: &[SocketAddr]) -> &Arc<Endpoint> {
        let n = self.endpoints.len();
        let start = self.next[shard()].0.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.endpoints[(start + i) % n])
            .find(|e| !tried.contains(&e.addr))
            .unwrap_or(&self.endpoints[start % n])
    }
}

/// What a route leads to.
pub(crate) enum Target {
    Ready(Arc<Backend>),
    /// Answered 503 with this body.
    Unavailable {
        body: Bytes,
        metrics: Option<Arc<ServiceMetrics>>,
    },
}

/// One snapshot's routes, resolved.
pub(crate) struct Table {
    pub(crate) generation: u64,
    pub(crate) version: u64,
    routes: Routes,
    targets: Vec<Target>,
}

impl Table {
    pub(crate) fn empty() -> Table {
        Table {
            generation: 0,
            version: 0,
            routes: Routes::default(),
            targets: Vec::new(),
        }
    }

    /// The target of a request, or `None` for 404.
    pub(crate) fn route(&self, host: &str, path: &str) -> Option<&Target> {
        self.routes
            .lookup(host, path)
            .and_then(|i| self.targets.get(i))
    }
}

/// The table requests use now.
pub(crate) struct Live {
    generation: AtomicU64,
    table: RwLock<Arc<Table>>,
}

impl Live {
    pub(crate) fn new(table: Table) -> Live {
        Live {
            generation: AtomicU64::new(table.generation),
            table: RwLock::new(Arc::new(table)),
        }
    }

    /// The generation of the live table (one atomic load).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn load(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `table` live: every request that starts (or re-checks) after this uses it.
    pub(crate) fn publish(&self, table: Arc<Table>) {
        let generation = table.generation;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        self.generation.store(generation, Ordering::SeqCst);
    }
}

/// Builds tables, keeping one [`Endpoint`] (and so one pool) per routable address across
/// snapshots.
pub(crate) struct Builder {
    endpoints: HashMap<SocketAddr, Arc<Endpoint>>,
    generation: u64,
    drained: Arc<Notify>,
    metrics: Metrics,
}

impl Builder {
    pub(crate) fn new(metrics: Metrics, drained: Arc<Notify>) -> Builder {
        Builder {
            endpoints: HashMap::new(),
            generation: 0,
            drained,
            metrics,
        }
    }

    /// The table for `snapshot`, and the endpoints the previous table routed to that this one
    /// does not (to retire once the table is live).
    pub(crate) fn build(&mut self, snapshot: &Snapshot) -> (Table, Vec<Arc<Endpoint>>) {
        self.generation += 1;
        let routes = Routes::build(&snapshot.ingresses);
        let mut live: HashSet<SocketAddr> = HashSet::new();
        let mut targets = Vec::with_capacity(routes.backends().len());
        for b in routes.backends() {
            let metrics = match b {
                BackendRef::Service {
                    namespace, name, ..
                } => Some(self.metrics.service(&ServiceKey {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })),
                BackendRef::Unsupported { .. } => None,
            };
            let target = match resolve(snapshot, b) {
                Ok((svc, routable)) => {
                    let endpoints = routable
                        .iter()
                        .map(|e| {
                            let addr = SocketAddr::new(e.ip, e.port);
                            live.insert(addr);
                            self.endpoints
                                .entry(addr)
                                .or_insert_with(|| {
                                    Arc::new(Endpoint::new(
                                        addr,
                                        e.pod
                                            .as_ref()
                                            .map(|p| format!("{}/{}", p.namespace, p.name)),
                                        self.drained.clone(),
                                    ))
                                })
                                .clone()
                        })
                        .collect();
                    Target::Ready(Arc::new(Backend {
                        service: svc.key.clone(),
                        endpoints,
                        next: Default::default(),
                        metrics: metrics.unwrap_or_else(|| self.metrics.service(&svc.key)),
                    }))
                }
                Err(why) => Target::Unavailable {
                    body: unavailable_body(&why),
                    metrics,
                },
            };
            targets.push(target);
        }
        let mut retired = Vec::new();
        self.endpoints.retain(|addr, ep| {
            let keep = live.contains(addr);
            if !keep {
                retired.push(ep.clone());
            }
            keep
        });
        let table = Table {
            generation: self.generation,
            version: snapshot.version,
            routes,
            targets,
        };
        (table, retired)
    }

    /// Whether `addr` is routable in the last table built.
    pub(crate) fn is_routable(&self, addr: &SocketAddr) -> bool {
        self.endpoints.contains_key(addr)
    }
}

fn unavailable_body(why: &Unavailable) -> Bytes {
    Bytes::from(format!("503 Service Unavailable: {why}\n"))
}
