//! The ReplicaSet controller and the ReplicationController manager: one engine for both
//! kinds. Each sync claims the pods its selector matches (adopting orphans, releasing pods
//! whose labels no longer match, never touching pods another controller owns), creates or
//! deletes pods until `spec.replicas` are active — deleting in Kubernetes' rank order — and
//! writes the status fields `kubectl` and the Deployment controller read.
//!
//! Pods are read from the shared pod cache (`informer.rs`); a sync never lists. Because that
//! cache lags the engine's own writes, each sync records the pods it created and deleted as
//! expectations (`expectations.rs`) and the next one only creates or deletes once the cache
//! shows them, as Kubernetes' ReplicaSet controller does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use baton_api::selectors::{LabelSelector, label_selector_from_object};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::error::{self, Error};
use crate::expectations::{self, Expectations};
use crate::informer::{Informer, Informers};
use crate::pods;
use baton_api::events::{Kind, Recorder};

/// Most pods created or deleted in one sync (Kubernetes' burstReplicas).
const BURST: usize = 500;

/// What the engine needs from a ReplicaSet or a ReplicationController.
pub trait Replicated:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Component name used in events.
    const COMPONENT: &'static str;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    /// The selector, or `None` when it cannot select anything (unset, empty or invalid):
    /// controllers treat an empty selector as selecting nothing, not everything.
    fn selector(&self) -> Option<LabelSelector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn status(&self) -> ReplicaStatus;
}

/// The status fields the engine owns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: Option<i64>,
}

impl ReplicaStatus {
    fn to_json(&self) -> serde_json::Value {
        let opt = |n: i32| {
            if n == 0 {
                serde_json::Value::Null
            } else {
                n.into()
            }
        };
        serde_json::json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": opt(self.fully_labeled),
            "readyReplicas": opt(self.ready),
            "availableReplicas": opt(self.available),
            "observedGeneration": self.observed_generation,
        }})
    }
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.min_ready_seconds.unwrap_or(0)
    }
    fn selector(&self) -> Option<LabelSelector> {
        usable(serde_json::to_value(&self.spec.selector).ok())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }
    fn status(&self) -> ReplicaStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation,
        }
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let spec = self.spec.as_ref();
        let map = match spec.and_then(|s| s.selector.as_ref()) {
            Some(m) if !m.is_empty() => Some(m),
            // An RC without a selector selects its template's labels.
            _ => spec
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref()),
        };
        usable(map.and_then(|m| serde_json::to_value(m).ok()))
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status(&self) -> ReplicaStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation,
        }
    }
}

/// Runs the ReplicaSet controller.
pub async fn run_replicasets(client: Client, informers: Informers) {
    let own = informers.replica_sets.clone();
    run_kind::<ReplicaSet>(client, own, informers.pods).await
}

/// Runs the ReplicationController manager.
pub async fn run_replication_controllers(client: Client, informers: Informers) {
    let own = informers.replication_controllers.clone();
    run_kind::<ReplicationController>(client, own, informers.pods).await
}

/// What a sync reads besides the object itself.
struct Ctx {
    client: Client,
    events: Recorder,
    pods: Informer<Pod>,
    expectations: Expectations,
}

async fn run_kind<K: Replicated>(client: Client, own: Informer<K>, pods: Informer<Pod>) {
    if own.synced().await.is_err() || pods.synced().await.is_err() {
        return;
    }
    let store: Store<K> = own.store();
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), K::COMPONENT, None),
        client,
        pods: pods.clone(),
        expectations: Expectations::default(),
    });
    Controller::for_shared_stream(own.subscribe(), own.store())
        .with_config(controller::Config::default().debounce(Duration::from_millis(20)))
        .watches_shared_stream(pods.subscribe(), move |pod: Arc<Pod>| {
            pods::controllers_to_sync(&store, &pod, |c: &K| {
                c.selector().is_some_and(|s| s.matches_map(pod.labels()))
            })
        })
        .run(reconcile::<K>, error::policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// The pod cache as the expectations see it, within one namespace.
pub(crate) struct PodView<'a> {
    pub(crate) pods: &'a Informer<Pod>,
    pub(crate) ns: &'a str,
}

impl expectations::View for PodView<'_> {
    fn created(&self, c: &expectations::Created) -> bool {
        self.pods.seen(&c.resource_version)
            || self
                .pods
                .store()
                .get(&ObjectRef::new(&c.name).within(self.ns))
                .is_some()
    }

    fn deleted(&self, d: &expectations::Deleted) -> bool {
        self.pods
            .store()
            .get(&ObjectRef::new(&d.name).within(self.ns))
            .is_none_or(|p| {
                p.metadata.uid.as_deref() != Some(d.uid.as_str())
                    || p.metadata.deletion_timestamp.is_some()
            })
    }
}

/// A selector parsed by baton-api, kept only when it can select something: an unset or
/// empty selector, or one validation should have refused, selects no pods.
fn usable(selector: Option<serde_json::Value>) -> Option<LabelSelector> {
    let parsed = label_selector_from_object(&selector?).ok()?;
    (!parsed.is_empty()).then_some(parsed)
}

fn owner_ref<K: Replicated>(obj: &K) -> OwnerReference {
    pods::controller_ref(obj)
}

/// The status of `owned` (active pods) as the controller reports it.
pub fn compute_status(
    owned: &[&Pod],
    template_labels: &BTreeMap<String, String>,
    min_ready_seconds: i32,
    generation: Option<i64>,
    now: Timestamp,
) -> ReplicaStatus {
    let count = |f: &dyn Fn(&Pod) -> bool| owned.iter().filter(|p| f(p)).count() as i32;
    ReplicaStatus {
        replicas: owned.len() as i32,
        fully_labeled: count(&|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        }),
        ready: count(&|p| pods::is_ready(p)),
        available: count(&|p| pods::is_available(p, min_ready_seconds, now)),
        observed_generation: generation,
    }
}

async fn reconcile<K: Replicated>(obj: Arc<K>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let client = &ctx.client;
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = format!("{ns}/{name}");
    let uid = obj.meta().uid.clone().unwrap_or_default();
    let deleting = obj.meta().deletion_timestamp.is_some();
    let selector = obj.selector();
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Read the expectations before the pods: a pod event between the two then only makes
    // this sync more careful, never less.
    let view = PodView {
        pods: &ctx.pods,
        ns: &ns,
    };
    let caught_up = ctx.expectations.satisfied(&key, &view);
    let ns_pods = ctx
        .pods
        .store()
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()));
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in ns_pods {
        let controller = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .cloned();
        let matches = selector
            .as_ref()
            .is_some_and(|s| s.matches_map(pod.labels()));
        match controller {
            Some(c) if c.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    release(&pods_api, &pod, &uid).await?;
                }
            }
            None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                if let Some(p) = adopt(&pods_api, &pod, owner_ref(obj.as_ref())).await? {
                    owned.push(Arc::new(p));
                }
            }
            _ => {}
        }
    }
    let active: Vec<&Pod> = owned
        .iter()
        .map(Arc::as_ref)
        .filter(|p| pods::is_active(p))
        .collect();
    let now = baton_api::clock::now();
    let template_labels = obj
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = obj.min_ready_seconds();
    let status = compute_status(
        &active,
        &template_labels,
        min_ready,
        obj.meta().generation,
        now,
    );
    if deleting {
        ctx.expectations.forget(&key);
    } else if caught_up {
        manage(&ctx, &key, obj.as_ref(), &pods_api, &active).await?;
    }
    if status != obj.status() {
        let api: Api<K> = Api::namespaced(client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&status.to_json()),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if error::is_not_found(&e) => {
                ctx.expectations.forget(&key);
                return Ok(Action::await_change());
            }
            Err(e) => return Err(Error::api(format!("updating status of {ns}/{name}"))(e)),
        }
    }
    // Wake up when a ready pod becomes available.
    let next = active
        .iter()
        .filter_map(|p| pods::until_available(p, min_ready, now))
        .min();
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Creates or deletes pods until `spec.replicas` are active, recording each write as an
/// expectation under `key`. Events are written in the background, so that a burst of pods
/// does not wait on its own events.
async fn manage<K: Replicated>(
    ctx: &Ctx,
    key: &str,
    obj: &K,
    pods_api: &Api<Pod>,
    active: &[&Pod],
) -> Result<(), Error> {
    let want = obj.replicas().max(0) as usize;
    let name = obj.name_any();
    if active.len() < want {
        let Some(template) = obj.template() else {
            return Err(Error::Invalid(format!("{name} has no pod template")));
        };
        let mut left = (want - active.len()).min(BURST);
        // Slow start, as Kubernetes: batches of 1, 2, 4 ... stop at the first failure.
        let mut batch = 1;
        while left > 0 {
            let n = batch.min(left);
            let results =
                futures::future::join_all((0..n).map(|_| create_pod(pods_api, obj, template)))
                    .await;
            let mut failed = None;
            let mut created = Vec::new();
            for r in results {
                match r {
                    Ok(c) => created.push(c),
                    Err(e) => failed = Some(e),
                }
            }
            let mut events: Vec<(Kind, &'static str, String)> = created
                .iter()
                .map(|c| {
                    let msg = format!("Created pod: {}", c.name);
                    (Kind::Normal, "SuccessfulCreate", msg)
                })
                .collect();
            ctx.expectations.expect_creations(key, created);
            if let Some(e) = &failed {
                events.push((
                    Kind::Warning,
                    "FailedCreate",
                    format!("Error creating: {e}"),
                ));
            }
            publish(&ctx.events, obj, events);
            if let Some(e) = failed {
                return Err(e);
            }
            left -= n;
            batch *= 2;
        }
    } else if active.len() > want {
        let n = (active.len() - want).min(BURST);
        let victims = pods::pick_for_deletion(active, n);
        let deletes = victims.iter().map(|&i| {
            let pod = active[i];
            let gone = expectations::Deleted {
                name: pod.name_any(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
            };
            async move {
                match pods_api.delete(&gone.name, &DeleteParams::default()).await {
                    Ok(_) => Ok((gone, true)),
                    Err(e) if error::is_not_found(&e) => Ok((gone, false)),
                    Err(e) => Err(Error::api(format!("deleting pod {}", gone.name))(e)),
                }
            }
        });
        let mut deleted = Vec::new();
        let mut events = Vec::new();
        let mut failed = None;
        for r in futures::future::join_all(deletes).await {
            match r {
                Ok((gone, by_us)) => {
                    if by_us {
                        let msg = format!("Deleted pod: {}", gone.name);
                        events.push((Kind::Normal, "SuccessfulDelete", msg));
                    }
                    deleted.push(gone);
                }
                Err(e) => failed = Some(e),
            }
        }
        ctx.expectations.expect_deletions(key, deleted);
        publish(&ctx.events, obj, events);
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Records `events` about `obj`, in order.
fn publish<K: Replicated>(recorder: &Recorder, obj: &K, events: Vec<(Kind, &'static str, String)>) {
    for (kind, reason, message) in events {
        recorder.publish(obj, kind, reason, message);
    }
}

async fn create_pod<K: Replicated>(
    api: &Api<Pod>,
    obj: &K,
    template: &PodTemplateSpec,
) -> Result<expectations::Created, Error> {
    let mut pod = pods::from_template(template, obj.namespace(), owner_ref(obj));
    pod.metadata.generate_name = Some(format!("{}-", obj.name_any()));
    let created = api
        .create(&PostParams::default(), &pod)
        .await
        .map_err(Error::api(format!("creating a pod for {}", obj.name_any())))?;
    Ok(expectations::Created {
        name: created.name_any(),
        resource_version: created.resource_version().unwrap_or_default(),
    })
}

pub(crate) async fn adopt(
    api: &Api<Pod>,
    pod: &Pod,
    owner: OwnerReference,
) -> Result<Option<Pod>, Error> {
    let mut refs = pod.owner_references().to_vec();
    refs.push(owner);
    let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(p) => Ok(Some(p)),
        Err(e) if error::is_not_found(&e) || error::is_conflict(&e) => Ok(None),
        Err(e) => Err(Error::api(format!("adopting pod {}", pod.name_any()))(e)),
    }
}

pub(crate) async fn release(api: &Api<Pod>, pod: &Pod, uid: &str) -> Result<(), Error> {
    let refs: Vec<&OwnerReference> = pod
        .owner_references()
        .iter()
        .filter(|o| o.uid != uid)
        .collect();
    let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) || error::is_conflict(&e) => Ok(()),
        Err(e) => Err(Error::api(format!("releasing pod {}", pod.name_any()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(labels: &[(&str, &str)], ready_at: Option<i64>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: ready_at.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(Timestamp::from_second(s).expect("ts"))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn status_counts() {
        let tl: BTreeMap<String, String> = [("app", "a"), ("tier", "web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pods = [
            pod(&[("app", "a"), ("tier", "web")], Some(100)),
            pod(&[("app", "a")], Some(108)),
            pod(&[("app", "a"), ("tier", "web")], None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let now = Timestamp::from_second(110).expect("ts");
        let s = compute_status(&refs, &tl, 5, Some(3), now);
        assert_eq!(
            s,
            ReplicaStatus {
                replicas: 3,
                fully_labeled: 2,
                ready: 2,
                available: 1,
                observed_generation: Some(3)
            }
        );
        let s0 = compute_status(&refs, &tl, 0, Some(3), now);
        assert_eq!(s0.available, 2);
    }
}
