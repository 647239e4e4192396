//! The garbage collector's decisions and the API calls that carry them out, as Kubernetes'
//! `pkg/controller/garbagecollector`:
//! - an object whose every owner is gone is deleted in the background (an owner absent from
//!   the graph and not seen deleted is looked up first: it may just not have arrived yet);
//! - an owner with the `orphan` finalizer has its ownerReference removed from every dependent,
//!   then loses the finalizer;
//! - an owner with the `foregroundDeletion` finalizer has its dependents deleted (in the
//!   foreground too) and loses the finalizer once none is left;
//! - a Terminating namespace is emptied and finalized (`namespace.rs`).
//!
//! One task owns the graph; it acts when a change arrives and once every kind has been
//! listed. Work that fails is logged and retried every second.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::{Value, json};

use super::graph::{FOREGROUND, Graph, Kind, Node, ORPHAN};
use super::namespace;
use super::source::{Change, api_for};
use crate::error::{Error, is_conflict, is_not_found};

/// How often failed work is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Attempts of one metadata write against concurrent writers before it is retried later.
const WRITE_ATTEMPTS: usize = 5;

/// Something to reconcile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// The object with this uid: collect it, or finish its orphan/foreground deletion.
    Object(String),
    /// The namespace of this name: empty and finalize it when Terminating.
    Namespace(String),
}

pub struct Collector {
    client: kube::Client,
    graph: Graph,
    kinds: Vec<Kind>,
    /// True once every kind has been listed: before that, an absent owner means nothing.
    started: bool,
    retry: BTreeSet<Work>,
}

impl Collector {
    pub fn new(client: kube::Client, kinds: Vec<Kind>) -> Self {
        Collector {
            client,
            graph: Graph::default(),
            kinds,
            started: false,
            retry: BTreeSet::new(),
        }
    }

    /// Runs until `changes` ends.
    pub async fn run(mut self, changes: impl Stream<Item = Change>) {
        let mut changes = std::pin::pin!(changes);
        let mut tick = tokio::time::interval(RETRY_EVERY);
        loop {
            tokio::select! {
                ch = changes.next() => match ch {
                    Some(ch) => self.handle(ch).await,
                    None => return,
                },
                _ = tick.tick() => {
                    for w in std::mem::take(&mut self.retry) {
                        self.run_work(w).await;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, change: Change) {
        match change {
            Change::Applied(kind, meta) => {
                let Some(node) = Node::from_meta(kind, &meta) else {
                    return;
                };
                let uid = node.uid.clone();
                let namespace = (node.is_namespace() && node.deleting).then(|| node.name.clone());
                self.graph.apply(node);
                if self.started {
                    self.run_work(Work::Object(uid)).await;
                    if let Some(ns) = namespace {
                        self.run_work(Work::Namespace(ns)).await;
                    }
                }
            }
            Change::Deleted(kind, meta) => {
                let gone = match meta.uid.as_deref() {
                    Some(uid) => self.graph.delete(uid),
                    None => None,
                };
                if let Some(gone) = gone.or_else(|| Node::from_meta(kind, &meta)) {
                    self.after_delete(gone).await;
                }
            }
            Change::Relisting(kind) => self.graph.begin_relist(kind),
            Change::Listed(kind) => {
                for gone in self.graph.end_relist(kind) {
                    self.after_delete(gone).await;
                }
                if !self.started && self.graph.synced(self.kinds.len()) {
                    self.started = true;
                    tracing::info!(
                        objects = self.graph.nodes().count(),
                        "garbage collector synced"
                    );
                    self.sweep().await;
                }
            }
        }
    }

    /// Everything that may need work, once every kind has been listed.
    async fn sweep(&mut self) {
        let mut work: Vec<Work> = Vec::new();
        for n in self.graph.nodes() {
            if n.deleting || !n.owners.is_empty() {
                work.push(Work::Object(n.uid.clone()));
            }
            if n.is_namespace() && n.deleting {
                work.push(Work::Namespace(n.name.clone()));
            }
        }
        for w in work {
            self.run_work(w).await;
        }
    }

    /// An object went: its dependents may be garbage, a foreground owner may be done, its
    /// Terminating namespace may be empty.
    async fn after_delete(&mut self, gone: Node) {
        if !self.started {
            return;
        }
        let mut work: Vec<Work> = self
            .graph
            .dependents(&gone.uid)
            .iter()
            .map(|d| Work::Object(d.uid.clone()))
            .collect();
        for o in &gone.owners {
            if self
                .graph
                .get(&o.uid)
                .is_some_and(|owner| owner.deleting && owner.has_finalizer(FOREGROUND))
            {
                work.push(Work::Object(o.uid.clone()));
            }
        }
        if let Some(ns) = &gone.namespace
            && self.graph.namespace(ns).is_some_and(|n| n.deleting)
        {
            work.push(Work::Namespace(ns.clone()));
        }
        for w in work {
            self.run_work(w).await;
        }
    }

    async fn run_work(&mut self, w: Work) {
        let result = match &w {
            Work::Object(uid) => self.object(uid).await,
            Work::Namespace(name) => {
                namespace::sync(&self.client, &self.graph, &self.kinds, name).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(work = ?w, error = %e, "garbage collection failed; retrying");
            self.retry.insert(w);
        }
    }

    async fn object(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.graph.get(uid) else {
            return Ok(());
        };
        if node.deleting {
            if node.has_finalizer(ORPHAN) {
                self.orphan_dependents(node).await
            } else if node.has_finalizer(FOREGROUND) {
                self.delete_dependents_first(node).await
            } else {
                Ok(())
            }
        } else if !node.owners.is_empty() {
            self.collect_if_ownerless(node).await
        } else {
            Ok(())
        }
    }

    /// Releases every dependent of `owner`, then drops its `orphan` finalizer.
    async fn orphan_dependents(&self, owner: &Node) -> Result<(), Error> {
        for dep in self.graph.dependents(&owner.uid) {
            let owner_uid = owner.uid.clone();
            self.update_metadata(dep, move |m| {
                let refs = m.owner_references.clone().unwrap_or_default();
                if !refs.iter().any(|r| r.uid == owner_uid) {
                    return None;
                }
                let kept: Vec<OwnerReference> =
                    refs.into_iter().filter(|r| r.uid != owner_uid).collect();
                let kept = if kept.is_empty() {
                    Value::Null
                } else {
                    json!(kept)
                };
                Some(json!({"metadata": {"ownerReferences": kept}}))
            })
            .await?;
            tracing::info!(dependent = %dep.name, kind = dep.kind.kind, owner = %owner.name, "orphaned");
        }
        self.remove_finalizer(owner, ORPHAN).await
    }

    /// Deletes the dependents of `owner` (in the foreground too); once none is left, drops
    /// its `foregroundDeletion` finalizer.
    async fn delete_dependents_first(&self, owner: &Node) -> Result<(), Error> {
        let deps = self.graph.dependents(&owner.uid);
        if deps.is_empty() {
            return self.remove_finalizer(owner, FOREGROUND).await;
        }
        for dep in deps.into_iter().filter(|d| !d.deleting) {
            self.delete(dep, PropagationPolicy::Foreground, None)
                .await?;
        }
        Ok(())
    }

    /// Deletes `node` (background) when each of its owners is gone. The graph may be behind
    /// (each kind has its own watch: an orphaned dependent's update can arrive after its
    /// owner's deletion), so the decision is made on the object as it is now, and the delete
    /// carries its uid and resourceVersion as preconditions.
    async fn collect_if_ownerless(&self, node: &Node) -> Result<(), Error> {
        // An owner the graph holds is not gone (its deletion, when it comes, brings its
        // dependents back here): nothing to read. Only objects with an owner the graph lacks
        // are looked at on the server, as Kubernetes' collector queues only those.
        if node.owners.iter().any(|o| self.graph.get(&o.uid).is_some()) {
            return Ok(());
        }
        let api = self.api(node.kind, node.namespace.as_deref());
        let current = match api.get_metadata_opt(&node.name).await {
            Ok(Some(o)) if o.metadata.uid.as_deref() == Some(node.uid.as_str()) => o.metadata,
            Ok(_) => return Ok(()),
            Err(e) => {
                return Err(Error::api(format!(
                    "reading {} {}",
                    node.kind.kind, node.name
                ))(e));
            }
        };
        let owners = current.owner_references.clone().unwrap_or_default();
        if owners.is_empty() || current.deletion_timestamp.is_some() {
            return Ok(());
        }
        for owner in &owners {
            if self.graph.get(&owner.uid).is_some() {
                return Ok(());
            }
            if !self.graph.is_gone(&owner.uid)
                && self.owner_exists(owner, node.namespace.as_deref()).await?
            {
                return Ok(());
            }
        }
        self.delete(
            node,
            PropagationPolicy::Background,
            current.resource_version,
        )
        .await
    }

    /// Looks an owner up by name: true when an object of that uid exists (or its kind is
    /// not one Baton serves, so it cannot be told gone).
    async fn owner_exists(&self, owner: &OwnerReference, ns: Option<&str>) -> Result<bool, Error> {
        let Some(def) = baton_api::registry::find_kind(&owner.api_version, &owner.kind) else {
            return Ok(true);
        };
        let api = self.api(def.storage_def(), ns);
        match api.get_metadata_opt(&owner.name).await {
            Ok(Some(o)) => Ok(o.metadata.uid.as_deref() == Some(owner.uid.as_str())),
            Ok(None) => Ok(false),
            Err(e) => Err(Error::api(format!(
                "looking up owner {} {}",
                owner.kind, owner.name
            ))(e)),
        }
    }

    fn api(&self, kind: Kind, ns: Option<&str>) -> Api<DynamicObject> {
        api_for(&self.client, kind, ns)
    }

    /// Deletes one object (uid precondition: a new object of the same name is left alone).
    /// A precondition that fails (a 409) means the object changed: its change arrives as a
    /// new event and is judged again.
    async fn delete(
        &self,
        node: &Node,
        policy: PropagationPolicy,
        resource_version: Option<String>,
    ) -> Result<(), Error> {
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version,
            }),
            ..Default::default()
        };
        match self
            .api(node.kind, node.namespace.as_deref())
            .delete(&node.name, &dp)
            .await
        {
            Ok(_) => {
                tracing::info!(kind = node.kind.kind, namespace = node.namespace.as_deref().unwrap_or(""), name = %node.name, ?policy, "garbage collected");
                Ok(())
            }
            Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
            Err(e) => Err(Error::api(format!(
                "deleting {} {}",
                node.kind.kind, node.name
            ))(e)),
        }
    }

    async fn remove_finalizer(&self, node: &Node, finalizer: &'static str) -> Result<(), Error> {
        self.update_metadata(node, move |m| {
            let fins = m.finalizers.clone().unwrap_or_default();
            if !fins.iter().any(|f| f == finalizer) {
                return None;
            }
            let kept: Vec<String> = fins.into_iter().filter(|f| f != finalizer).collect();
            let kept = if kept.is_empty() {
                Value::Null
            } else {
                json!(kept)
            };
            Some(json!({"metadata": {"finalizers": kept}}))
        })
        .await
    }

    /// Read-modify-write of an object's metadata: `change` gets the current metadata and
    /// returns a merge patch (or `None` when there is nothing to do); the patch carries the
    /// read resourceVersion, and a conflict reads again.
    async fn update_metadata(
        &self,
        node: &Node,
        change: impl Fn(&ObjectMeta) -> Option<Value>,
    ) -> Result<(), Error> {
        let api = self.api(node.kind, node.namespace.as_deref());
        let what = || format!("updating {} {}", node.kind.kind, node.name);
        for _ in 0..WRITE_ATTEMPTS {
            let current = match api.get_metadata_opt(&node.name).await {
                Ok(Some(o)) if o.metadata.uid.as_deref() == Some(node.uid.as_str()) => o.metadata,
                Ok(_) => return Ok(()),
                Err(e) => return Err(Error::api(what())(e)),
            };
            let Some(mut patch) = change(&current) else {
                return Ok(());
            };
            patch["metadata"]["resourceVersion"] = json!(current.resource_version);
            match api
                .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) => continue,
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(Error::api(what())(e)),
            }
        }
        Err(Error::Invalid(format!(
            "{}: still conflicting after {WRITE_ATTEMPTS} attempts",
            what()
        )))
    }
}
