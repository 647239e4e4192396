//! The Deployment controller: owns ReplicaSets named `<deployment>-<pod-template-hash>`,
//! rolls between them (RollingUpdate or Recreate) with Kubernetes' arithmetic, keeps the
//! revision annotations, honours the legacy rollback request, trims history, and reports
//! status and conditions so `kubectl rollout status` reads exactly as against Kubernetes.
//! Split as Kubernetes' `pkg/controller/deployment`:
//!
//! - [`sync`]: one reconcile — the ReplicaSets from the shared cache, the new one found or
//!   created, revisions, proportional scaling, history cleanup, status written;
//! - [`rolling`]: RollingUpdate (its pure arithmetic, then the step that applies it);
//! - [`recreate`]: Recreate (old pods gone before the new ones start);
//! - [`rollback`]: the legacy `deprecated.deployment.rollback.to` request;
//! - [`status`]: the status calculation, pure;
//! - [`progress`]: the Available/Progressing conditions and the progress deadline;
//! - [`hash`]: the pod-template-hash.
//!
//! ReplicaSets and pods are read from the shared caches (`informer.rs`); a sync never
//! lists. The controller's own ReplicaSet writes are remembered until the cache shows them,
//! so that a sync running before the cache caught up does not act on a size it already
//! changed.

pub mod hash;
pub mod progress;
pub mod recreate;
pub mod rollback;
pub mod rolling;
pub mod status;
pub mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::{Client, ResourceExt};

use crate::error;
use crate::informer::{Informer, Informers};
use baton_api::events::Recorder;

const COMPONENT: &str = "deployment-controller";
const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Deployment annotations not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    ROLLBACK_TO,
];

/// What every sync shares: the client, the caches, and the ReplicaSets this controller
/// wrote that the cache may not show yet (uid → the object the API server returned).
pub struct Shared {
    client: Client,
    events: Recorder,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    written: Mutex<HashMap<String, ReplicaSet>>,
}

/// Runs the Deployment controller once its caches are filled.
pub async fn run(client: Client, informers: Informers) {
    for synced in [
        informers.deployments.synced().await,
        informers.replica_sets.synced().await,
        informers.pods.synced().await,
    ] {
        if synced.is_err() {
            return;
        }
    }
    let rs_store = informers.replica_sets.store();
    let d_store = informers.deployments.store();
    let shared = Arc::new(Shared {
        events: Recorder::new(client.clone(), COMPONENT, None),
        client,
        replica_sets: informers.replica_sets.clone(),
        pods: informers.pods.clone(),
        written: Mutex::new(HashMap::new()),
    });
    Controller::for_shared_stream(informers.deployments.subscribe(), d_store.clone())
        .owns_shared_stream(informers.replica_sets.subscribe())
        .watches_shared_stream(informers.pods.subscribe(), move |pod: Arc<Pod>| {
            recreate::waiting_on(&rs_store, &d_store, &pod)
        })
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .run(sync::reconcile, error::policy, shared)
        .for_each(|_| async {})
        .await;
}

/// What one sync of one Deployment works with.
struct Ctx<'a> {
    shared: &'a Shared,
    client: &'a Client,
    d: &'a Deployment,
    rs_api: Api<ReplicaSet>,
    max_surge: i32,
    max_unavailable: i32,
    rolling: bool,
}

impl Ctx<'_> {
    /// Remembers a ReplicaSet the API server returned for one of our writes.
    fn wrote(&self, rs: &ReplicaSet) {
        if let Some(uid) = rs.metadata.uid.clone() {
            self.shared
                .written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid, rs.clone());
        }
    }
}

pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

pub(crate) fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The template without the hash label, for comparing against the deployment's.
pub fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(HASH_LABEL);
    }
    t
}

pub(crate) fn same_template(rs: &ReplicaSet, d: &Deployment) -> bool {
    rs.spec
        .template
        .as_ref()
        .is_some_and(|t| templates_equal(t, &d.spec.template))
}

/// Kubernetes' semantic equality of templates, ignoring the hash label: absent, null, empty
/// objects and empty lists are all the same (`resources: {}` equals no `resources`).
pub fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let canon = |t: &PodTemplateSpec| {
        hash::prune(serde_json::to_value(without_hash(t)).unwrap_or_default())
    };
    canon(a) == canon(b)
}
