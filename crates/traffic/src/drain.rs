//! The traffic agent's half of the drain handshake (`baton_api::drain`): keeps this machine's
//! traffic Lease fresh, and acknowledges each terminating pod once every proxy of this machine
//! has put live a snapshot that no longer routes to it.
//!
//! The proxies report the snapshot version they have applied on their own `watch` channels;
//! a version counts as live once all of them reached it. A pod is acknowledged when it is
//! terminating and no snapshot from the oldest live version to the newest one routes to it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use baton_api::drain;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::model::Snapshot;

/// Runs the traffic agent of `holder` (the node name) until the task is dropped.
pub async fn run(
    client: Client,
    holder: String,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut applied: Vec<watch::Receiver<u64>>,
) {
    tokio::spawn(keep_lease(client.clone(), holder.clone()));
    let changed = Arc::new(Notify::new());
    let pods = pod_cache(client.clone(), changed.clone());
    if pods.wait_until_ready().await.is_err() {
        return;
    }
    let annotation = drain::ack_annotation(&holder);
    // Snapshots not older than the oldest version every proxy has applied.
    let mut history: BTreeMap<u64, Arc<Snapshot>> = BTreeMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    loop {
        let latest = snapshots.borrow_and_update().clone();
        history.insert(latest.version, latest);
        let live = applied
            .iter_mut()
            .map(|a| *a.borrow_and_update())
            .min()
            .unwrap_or(0);
        let newest_live = applied.iter().map(|a| *a.borrow()).max().unwrap_or(0);
        // Older snapshots than the live one are gone from every proxy.
        if let Some((&floor, _)) = history.range(..=live).next_back() {
            history.retain(|v, _| *v >= floor);
        }
        if live > 0 {
            let routed: HashSet<String> = history
                .range(..=newest_live)
                .flat_map(|(_, s)| routed_pods(s))
                .collect();
            let terminating: Vec<Arc<PartialObjectMeta<Pod>>> = pods
                .state()
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some())
                .collect();
            acked.retain(|uid| terminating.iter().any(|p| p.uid().as_deref() == Some(uid)));
            for p in terminating {
                let uid = p.uid().unwrap_or_default();
                if routed.contains(&uid)
                    || acked.contains(&uid)
                    || p.annotations().contains_key(&annotation)
                {
                    continue;
                }
                if ack(&client, &p, &annotation).await {
                    acked.insert(uid);
                }
            }
        }
        let wait_applied = futures::future::select_all(
            applied
                .iter_mut()
                .map(|a| Box::pin(a.changed()))
                .collect::<Vec<_>>(),
        );
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { return; },
            (r, _, _) = wait_applied => if r.is_err() { return; },
            _ = changed.notified() => {},
            // A failed acknowledgement is tried again.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
    }
}

/// The uids of the pods a snapshot sends traffic to.
fn routed_pods(s: &Snapshot) -> impl Iterator<Item = String> + '_ {
    s.services
        .values()
        .flat_map(|svc| svc.ports.iter())
        .flat_map(|p| p.routable())
        .filter_map(|e| e.pod.as_ref().map(|p| p.uid.clone()))
}

async fn ack(client: &Client, pod: &PartialObjectMeta<Pod>, annotation: &str) -> bool {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let now = baton_api::clock::now_rfc3339_micro();
    let patch = json!({"metadata": {
        "uid": pod.uid(),
        "annotations": {annotation: now}
    }});
    match api
        .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::debug!(pod = %format!("{ns}/{name}"), "acknowledged as unrouted");
            true
        }
        // Gone already, or a newer pod of the same name: nothing to acknowledge.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => true,
        Err(e) => {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "acknowledging a drained pod failed");
            false
        }
    }
}

fn pod_cache(client: Client, changed: Arc<Notify>) -> Store<PartialObjectMeta<Pod>> {
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<PartialObjectMeta<Pod>>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p)) if p.metadata.deletion_timestamp.is_some() => {
                    changed.notify_one()
                }
                Ok(watcher::Event::InitDone) => changed.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "traffic pod watch error"),
            }
        }
    });
    store
}

/// Creates this traffic agent's Lease and renews it every 10 s.
async fn keep_lease(client: Client, holder: String) {
    let api: Api<Lease> = Api::namespaced(client, drain::LEASE_NAMESPACE);
    let name = drain::lease_name(&holder);
    loop {
        let now = MicroTime(baton_api::clock::now());
        let result = match api.get_opt(&name).await {
            Ok(Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.renew_time = Some(now);
                spec.holder_identity = Some(holder.clone());
                spec.lease_duration_seconds = Some(drain::LEASE_SECONDS);
                api.replace(&name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Ok(None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([(drain::PROXY_LABEL.to_string(), "true".to_string())].into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(holder.clone()),
                        lease_duration_seconds: Some(drain::LEASE_SECONDS),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        ..Default::default()
                    }),
                };
                api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "renewing the traffic lease failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}
