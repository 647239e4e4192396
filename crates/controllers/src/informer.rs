//! Shared informers: one watch per kind per process, as client-go's shared informer factory.
//! Each [`Informer`] runs one `kube` watcher (list once, then watch from that revision,
//! re-listing only when the watch falls out of the server's history window), keeps the
//! objects in a `kube` reflector [`Store`] (one writer, many cheap readers), and fans every
//! change out to its subscribers — the `kube` Controllers of the Deployment, ReplicaSet and
//! ReplicationController controllers, the scheduler, the simulated nodes and the endpoints
//! controller — as a stream of `Arc` objects that
//! [`Controller::for_shared_stream`](kube::runtime::Controller::for_shared_stream) and
//! `watches_shared_stream` accept.
//!
//! Unlike `kube`'s own `ReflectHandle`, deletions reach subscribers too (the deleted object
//! is sent; it is no longer in the store), and a re-list sends the objects that vanished
//! meanwhile as deletions, so a controller that maps a pod to its owner hears of every pod
//! that went away. A late subscriber first receives every object already in the store.
//! [`Informer::notices`] says which of these each object is, and when a (re-)list is
//! complete: the garbage collector builds its ownership graph from it.
//!
//! Controllers wait for [`Informer::synced`] of every kind they read before acting, and
//! [`Informer::seen`] tells the expectations (`expectations.rs`) whether the cache has
//! caught up with a write.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The informer stopped before its cache was filled.
#[derive(Debug, thiserror::Error)]
#[error("the informer stopped before its first list")]
pub struct Stopped;

/// What an informer can hold: a typed, namespaced or cluster-scoped Kubernetes object.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

/// One kind's cache and its subscribers.
pub struct Informer<K: Kind> {
    store: Store<K>,
    shared: Arc<Shared<K>>,
}

impl<K: Kind> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            store: self.store.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What a subscriber of [`Informer::notices`] hears.
#[derive(Debug)]
pub enum Notice<K> {
    /// The object as the cache has it now (added, changed, or listed).
    Applied(Arc<K>),
    /// The object was deleted (or vanished while the watch was re-listing).
    Deleted(Arc<K>),
    /// A list is complete: everything listed has been sent before this.
    Synced,
}

impl<K> Clone for Notice<K> {
    fn clone(&self) -> Self {
        match self {
            Notice::Applied(o) => Notice::Applied(o.clone()),
            Notice::Deleted(o) => Notice::Deleted(o.clone()),
            Notice::Synced => Notice::Synced,
        }
    }
}

/// One subscriber: sends it what it takes of a notice; false once it is gone.
type Subscriber<K> = Box<dyn FnMut(&Notice<K>) -> bool + Send>;

struct Shared<K: Kind> {
    subscribers: Mutex<Vec<Subscriber<K>>>,
    /// True once the first list is in the cache. (`Store::wait_until_ready` wakes only the
    /// last of several concurrent waiters: its readiness is a oneshot receiver with one waker.)
    synced: tokio::sync::watch::Sender<bool>,
    /// The highest resourceVersion seen in an event (Baton's and etcd's are numbers).
    seen: AtomicU64,
}

/// The writing half of an informer: applies watch events to the cache and tells the
/// subscribers. [`Informer::start`] feeds it a `kube` watcher; tests feed it events.
struct Feed<K: Kind> {
    writer: Writer<K>,
    store: Store<K>,
    shared: Arc<Shared<K>>,
}

impl<K: Kind> Informer<K> {
    /// An informer with an empty cache, and the feed that fills it.
    fn new() -> (Self, Feed<K>) {
        let (store, writer) = reflector::store();
        let shared = Arc::new(Shared {
            subscribers: Mutex::new(Vec::new()),
            synced: tokio::sync::watch::Sender::new(false),
            seen: AtomicU64::new(0),
        });
        let informer = Informer {
            store: store.clone(),
            shared: shared.clone(),
        };
        (
            informer,
            Feed {
                writer,
                store,
                shared,
            },
        )
    }

    /// Starts the watch of every `K` on `client`; it stops when `shutdown` turns true.
    pub fn start(client: &Client, shutdown: &tokio::sync::watch::Receiver<bool>) -> Self {
        let (informer, feed) = Informer::new();
        let api: Api<K> = Api::all(client.clone());
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = feed.run(events) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
        informer
    }

    /// The cache: read it freely, never write it.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Waits until the first list has filled the cache; any number of tasks may wait.
    pub async fn synced(&self) -> Result<(), Stopped> {
        let mut rx = self.shared.synced.subscribe();
        rx.wait_for(|synced| *synced)
            .await
            .map(|_| ())
            .map_err(|_| Stopped)
    }

    /// Every object already cached, then every object changed, added or deleted from now on.
    pub fn subscribe(&self) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        self.notices().filter_map(|n| async move {
            match n {
                Notice::Applied(o) | Notice::Deleted(o) => Some(o),
                Notice::Synced => None,
            }
        })
    }

    /// [`Informer::subscribe`] with each object's fate and the end of each list: every
    /// object already cached (then [`Notice::Synced`] if the first list is complete), then
    /// every change from now on.
    pub fn notices(&self) -> impl futures::Stream<Item = Notice<K>> + Send + 'static {
        self.notices_as(Notice::clone)
    }

    /// [`Informer::notices`], each notice projected by `project` as it is sent. A subscriber
    /// that needs only part of each object and may fall behind (the garbage collector, which
    /// takes the metadata) then queues that part, not every version of the whole object: at
    /// 5,000 pods created at once its queue held up to 15,000 pod versions.
    pub fn notices_as<T: Send + 'static>(
        &self,
        project: impl Fn(&Notice<K>) -> T + Send + 'static,
    ) -> impl futures::Stream<Item = T> + Send + 'static {
        let (tx, rx) = mpsc::unbounded();
        let mut subs = self
            .shared
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for obj in self.store.state() {
            let _ = tx.unbounded_send(project(&Notice::Applied(obj)));
        }
        if *self.shared.synced.borrow() {
            let _ = tx.unbounded_send(project(&Notice::Synced));
        }
        subs.push(Box::new(move |n| tx.unbounded_send(project(n)).is_ok()));
        rx
    }

    /// The cache has seen the write that produced `resource_version` (or a later event).
    /// An unparsable version is never seen: expectations then rely on the object's name in
    /// the cache, or on their timeout.
    pub fn seen(&self, resource_version: &str) -> bool {
        match resource_version.parse::<u64>() {
            Ok(rv) => self.shared.seen.load(Ordering::Acquire) >= rv,
            Err(_) => false,
        }
    }
}

impl<K: Kind> Shared<K> {
    fn send(&self, notices: impl IntoIterator<Item = Notice<K>>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for n in notices {
            subs.retain_mut(|send| send(&n));
        }
    }

    fn note(&self, obj: &K) {
        if let Some(rv) = obj
            .meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.seen.fetch_max(rv, Ordering::AcqRel);
        }
    }
}

impl<K: Kind> Feed<K> {
    /// Applies each watch event to the cache, then tells the subscribers.
    async fn run(self, events: impl futures::Stream<Item = watcher::Result<watcher::Event<K>>>) {
        let Feed {
            writer,
            store,
            shared,
        } = self;
        run(writer, store, shared, events).await
    }
}

async fn run<K: Kind>(
    mut writer: Writer<K>,
    store: Store<K>,
    shared: Arc<Shared<K>>,
    events: impl futures::Stream<Item = watcher::Result<watcher::Event<K>>>,
) {
    let mut events = std::pin::pin!(events);
    // The cache before a re-list, to find the objects that vanished meanwhile.
    let mut before: Vec<Arc<K>> = Vec::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(kind = %K::kind(&()), error = %e, "informer watch error");
                continue;
            }
        };
        writer.apply_watcher_event(&event);
        match event {
            watcher::Event::Apply(obj) => {
                shared.note(&obj);
                shared.send(
                    store
                        .get(&reflector::ObjectRef::from_obj(&obj))
                        .map(Notice::Applied),
                );
            }
            watcher::Event::Delete(obj) => {
                shared.note(&obj);
                shared.send([Notice::Deleted(Arc::new(obj))]);
            }
            watcher::Event::Init => before = store.state(),
            watcher::Event::InitApply(obj) => shared.note(&obj),
            watcher::Event::InitDone => {
                let now = store.state();
                let gone: Vec<Arc<K>> = std::mem::take(&mut before)
                    .into_iter()
                    .filter(|old| {
                        store
                            .get(&reflector::ObjectRef::from_obj(old.as_ref()))
                            .is_none_or(|n| n.uid() != old.uid())
                    })
                    .collect();
                shared.send(
                    gone.into_iter()
                        .map(Notice::Deleted)
                        .chain(now.into_iter().map(Notice::Applied))
                        .chain([Notice::Synced]),
                );
                shared.synced.send_replace(true);
            }
        }
    }
}

/// The informers of every kind the controllers read, started once per process.
#[derive(Clone)]
pub struct Informers {
    pub pods: Informer<Pod>,
    pub nodes: Informer<Node>,
    pub replica_sets: Informer<ReplicaSet>,
    pub replication_controllers: Informer<ReplicationController>,
    pub deployments: Informer<Deployment>,
    pub jobs: Informer<Job>,
    pub cron_jobs: Informer<CronJob>,
    pub daemon_sets: Informer<DaemonSet>,
    pub pod_disruption_budgets: Informer<PodDisruptionBudget>,
    pub stateful_sets: Informer<StatefulSet>,
    pub controller_revisions: Informer<ControllerRevision>,
    pub services: Informer<Service>,
    pub endpoints: Informer<Endpoints>,
    pub endpoint_slices: Informer<EndpointSlice>,
    pub hpas: Informer<HorizontalPodAutoscaler>,
    pub persistent_volume_claims: Informer<PersistentVolumeClaim>,
    pub persistent_volumes: Informer<PersistentVolume>,
    pub storage_classes: Informer<StorageClass>,
}

impl Informers {
    /// Starts one watch per kind; they stop when `shutdown` turns true.
    pub fn start(client: &Client, shutdown: &tokio::sync::watch::Receiver<bool>) -> Self {
        Informers {
            pods: Informer::start(client, shutdown),
            nodes: Informer::start(client, shutdown),
            replica_sets: Informer::start(client, shutdown),
            replication_controllers: Informer::start(client, shutdown),
            deployments: Informer::start(client, shutdown),
            jobs: Informer::start(client, shutdown),
            cron_jobs: Informer::start(client, shutdown),
            daemon_sets: Informer::start(client, shutdown),
            pod_disruption_budgets: Informer::start(client, shutdown),
            stateful_sets: Informer::start(client, shutdown),
            controller_revisions: Informer::start(client, shutdown),
            services: Informer::start(client, shutdown),
            endpoints: Informer::start(client, shutdown),
            endpoint_slices: Informer::start(client, shutdown),
            hpas: Informer::start(client, shutdown),
            persistent_volume_claims: Informer::start(client, shutdown),
            persistent_volumes: Informer::start(client, shutdown),
            storage_classes: Informer::start(client, shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, uid: &str, rv: u64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(uid.into()),
                resource_version: Some(rv.to_string()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(objs: &[Arc<Pod>]) -> Vec<String> {
        let mut v: Vec<String> = objs.iter().map(|p| p.name_any()).collect();
        v.sort();
        v
    }

    /// Runs `events` through an informer; returns it and what a subscriber received.
    async fn feed(events: Vec<watcher::Event<Pod>>) -> (Informer<Pod>, Vec<Arc<Pod>>) {
        let (informer, feed) = Informer::new();
        let sub = informer.subscribe();
        feed.run(stream::iter(events.into_iter().map(Ok))).await;
        // The informer's senders stay alive; take what was sent so far.
        let mut got = Vec::new();
        let mut sub = std::pin::pin!(sub);
        while let Some(Some(p)) = futures::FutureExt::now_or_never(sub.next()) {
            got.push(p);
        }
        (informer, got)
    }

    #[tokio::test]
    async fn deletions_reach_subscribers() {
        use watcher::Event::*;
        let (inf, got) = feed(vec![
            Init,
            InitApply(pod("a", "1", 5)),
            InitDone,
            Apply(pod("b", "2", 6)),
            Delete(pod("a", "1", 7)),
        ])
        .await;
        assert_eq!(names(&got), ["a", "a", "b"]);
        assert_eq!(names(&inf.store().state()), ["b"]);
        assert!(inf.seen("7"));
        assert!(!inf.seen("8"));
    }

    #[tokio::test]
    async fn relist_reports_what_vanished() {
        use watcher::Event::*;
        let (inf, got) = feed(vec![
            Init,
            InitApply(pod("a", "1", 5)),
            InitApply(pod("b", "2", 5)),
            InitDone,
            // The watch fell out of the history window: a re-list without `a`, and `b`
            // replaced by a new pod of the same name.
            Init,
            InitApply(pod("b", "3", 9)),
            InitDone,
        ])
        .await;
        // first list: a, b; re-list: a (gone), b (old uid gone), b (new).
        assert_eq!(names(&got), ["a", "a", "b", "b", "b"]);
        assert_eq!(inf.store().state().len(), 1);
        assert!(inf.seen("9"));
    }

    #[tokio::test]
    async fn every_waiter_hears_of_the_first_list() {
        use watcher::Event::*;
        let (informer, feed) = Informer::<Pod>::new();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let i = informer.clone();
                tokio::spawn(async move { i.synced().await.is_ok() })
            })
            .collect();
        tokio::task::yield_now().await;
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let feed = tokio::spawn(feed.run(rx));
        for e in [Init, InitApply(pod("a", "1", 5)), InitDone] {
            tx.unbounded_send(Ok(e)).expect("feed");
        }
        for w in waiters {
            let synced = tokio::time::timeout(std::time::Duration::from_secs(10), w)
                .await
                .expect("every waiter wakes")
                .expect("waiter task");
            assert!(synced);
        }
        drop(tx);
        feed.await.expect("informer task");
    }

    #[tokio::test]
    async fn notices_tell_deletions_and_the_end_of_each_list() {
        use watcher::Event::*;
        let (informer, feed) = Informer::new();
        let notices = informer.notices();
        feed.run(stream::iter(
            [
                Init,
                InitApply(pod("a", "1", 5)),
                InitDone,
                Delete(pod("a", "1", 6)),
                Init,
                InitApply(pod("b", "2", 7)),
                InitDone,
            ]
            .into_iter()
            .map(Ok),
        ))
        .await;
        let mut notices = std::pin::pin!(notices);
        let mut got = Vec::new();
        while let Some(Some(n)) = futures::FutureExt::now_or_never(notices.next()) {
            got.push(match n {
                Notice::Applied(p) => format!("+{}", p.name_any()),
                Notice::Deleted(p) => format!("-{}", p.name_any()),
                Notice::Synced => "synced".to_string(),
            });
        }
        assert_eq!(got, ["+a", "synced", "-a", "+b", "synced"]);
        // A late subscriber hears of the cache, then that it is synced.
        let late = informer.notices();
        let mut late = std::pin::pin!(late);
        let first = futures::FutureExt::now_or_never(late.next()).flatten();
        assert!(matches!(first, Some(Notice::Applied(p)) if p.name_any() == "b"));
        let second = futures::FutureExt::now_or_never(late.next()).flatten();
        assert!(matches!(second, Some(Notice::Synced)));
    }

    #[tokio::test]
    async fn late_subscribers_start_from_the_cache() {
        use watcher::Event::*;
        let (inf, _) = feed(vec![Init, InitApply(pod("a", "1", 5)), InitDone]).await;
        let late = inf.subscribe();
        let mut late = std::pin::pin!(late);
        let first = futures::FutureExt::now_or_never(late.next()).flatten();
        assert_eq!(first.map(|p| p.name_any()), Some("a".to_string()));
    }
}
