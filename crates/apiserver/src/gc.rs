//! Deletion machinery: propagation policies recorded as finalizers (`orphan`,
//! `foregroundDeletion`), and a minimal in-process garbage collector and namespace finalizer
//! that finish what those records ask for.
//!
//! Interim: the full garbage collector and namespace controller belong to the controllers
//! crate (issue 4) and will talk to the API over HTTP; this loop uses the store directly
//! through the same handler functions so that `kubectl delete --cascade=…` and
//! `kubectl delete namespace` complete today.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use baton_api::registry::{self, ResourceDef};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::objects::{self, meta_str, metadata_mut};
use crate::registry::{self as handlers, DeleteOptions};
use crate::state::AppState;

use crate::registry::deletion::{FOREGROUND, ORPHAN, deletion_finished};

fn finalizers(obj: &Value) -> Vec<String> {
    objects::metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_namespace(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Namespace")
}

fn owner_uids(obj: &Value) -> Vec<String> {
    objects::metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Storage rows of every kind (each kind once).
fn storage_kinds() -> impl Iterator<Item = &'static ResourceDef> {
    registry::RESOURCES
        .iter()
        .filter(|r| r.is_storage_version())
}

/// The ownership graph, kept from the watch so that finding an object's dependents, or
/// whether an owner still exists, costs a map lookup instead of a scan of the store.
#[derive(Default)]
pub struct Graph {
    /// uid → store key of every object seen.
    keys: HashMap<String, String>,
    /// owner uid → store keys of its dependents.
    dependents: HashMap<String, HashSet<String>>,
    /// store key → (uid, owner uids), to undo an object's edges when it changes or goes.
    nodes: HashMap<String, (String, Vec<String>)>,
}

impl Graph {
    pub fn observe(&mut self, key: &str, obj: &Value) {
        self.forget(key);
        let Some(uid) = meta_str(obj, "uid").map(str::to_string) else {
            return;
        };
        let owners = owner_uids(obj);
        for o in &owners {
            self.dependents
                .entry(o.clone())
                .or_default()
                .insert(key.to_string());
        }
        self.keys.insert(uid.clone(), key.to_string());
        self.nodes.insert(key.to_string(), (uid, owners));
    }

    pub fn forget(&mut self, key: &str) {
        if let Some((uid, owners)) = self.nodes.remove(key) {
            if self.keys.get(&uid).is_some_and(|k| k == key) {
                self.keys.remove(&uid);
            }
            for o in owners {
                if let Some(set) = self.dependents.get_mut(&o) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&o);
                    }
                }
            }
        }
    }

    pub fn exists(&self, uid: &str) -> bool {
        self.keys.contains_key(uid)
    }

    fn key_of(&self, uid: &str) -> Option<&str> {
        self.keys.get(uid).map(String::as_str)
    }

    fn dependent_keys(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Reads one object by store key, with its registry row.
async fn read_key(st: &AppState, key: &str) -> Option<(&'static ResourceDef, Value)> {
    let def = def_for_key(key)?;
    let kv = st.store.get(key).await.ok()??;
    let obj = handlers::decode_stored(&kv).ok()?;
    Some((def, obj))
}

/// Objects (storage version) owned by `uid`.
async fn dependents(st: &AppState, graph: &Graph, uid: &str) -> Vec<(&'static ResourceDef, Value)> {
    let mut out = Vec::new();
    for key in graph.dependent_keys(uid) {
        if let Some((def, obj)) = read_key(st, &key).await
            && owner_uids(&obj).iter().any(|u| u == uid)
        {
            out.push((def, obj));
        }
    }
    out
}

/// Removes `finalizer` from an object (storage version) and writes it back, completing the
/// deletion when it was the last one.
async fn remove_finalizer(st: &AppState, def: &'static ResourceDef, obj: &Value, finalizer: &str) {
    let Some(name) = objects::name(obj).map(str::to_string) else {
        return;
    };
    let ns = meta_str(obj, "namespace").map(str::to_string);
    let mut new = obj.clone();
    let fins: Vec<String> = finalizers(obj)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    metadata_mut(&mut new).insert("finalizers".into(), json!(fins));
    if fins.is_empty() {
        metadata_mut(&mut new).remove("finalizers");
    }
    write_back(st, def, ns.as_deref(), &name, obj, new).await;
}

async fn write_back(
    st: &AppState,
    def: &'static ResourceDef,
    ns: Option<&str>,
    name: &str,
    old: &Value,
    new: Value,
) {
    let key = def.key(ns, name);
    let Some(rev) = meta_str(old, "resourceVersion").and_then(|r| r.parse().ok()) else {
        return;
    };
    if deletion_finished(&new) {
        let _ = st.store.delete(&key, Some(rev)).await;
        return;
    }
    if let Ok(bytes) = objects::encode(&new) {
        let _ = st.store.update(&key, bytes, Some(rev)).await;
    }
}

/// Handles one object that has, or just lost, a reason to be collected.
async fn process(st: &AppState, graph: &Graph, def: &'static ResourceDef, obj: &Value) {
    let Some(uid) = meta_str(obj, "uid").map(str::to_string) else {
        return;
    };
    if meta_str(obj, "deletionTimestamp").is_none() {
        return;
    }
    let fins = finalizers(obj);
    if fins.iter().any(|f| f == ORPHAN) {
        for (ddef, dep) in dependents(st, graph, &uid).await {
            let mut new = dep.clone();
            if let Some(refs) = new
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
            }
            if new
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                metadata_mut(&mut new).remove("ownerReferences");
            }
            if let Some(name) = objects::name(&dep).map(str::to_string) {
                let dns = meta_str(&dep, "namespace").map(str::to_string);
                write_back(st, ddef, dns.as_deref(), &name, &dep, new).await;
            }
        }
        remove_finalizer(st, def, obj, ORPHAN).await;
    } else if fins.iter().any(|f| f == FOREGROUND) {
        let deps = dependents(st, graph, &uid).await;
        if deps.is_empty() {
            remove_finalizer(st, def, obj, FOREGROUND).await;
        } else {
            let opts = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..Default::default()
            };
            for (ddef, dep) in deps {
                if let Some(name) = objects::name(&dep) {
                    let dns = meta_str(&dep, "namespace");
                    let _ = handlers::delete(st, ddef, dns, name, &opts).await;
                }
            }
        }
    } else if is_namespace(obj) {
        finalize_namespace(st, def, obj).await;
    }
}

/// Empties a terminating namespace, then drops its `kubernetes` finalizer.
async fn finalize_namespace(st: &AppState, def: &'static ResourceDef, obj: &Value) {
    let Some(name) = objects::name(obj).map(str::to_string) else {
        return;
    };
    let mut remaining = 0usize;
    let opts = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };
    for kdef in storage_kinds().filter(|d| d.namespaced) {
        let Ok(page) = st
            .store
            .list(&kdef.namespace_prefix(Some(&name)), None, None)
            .await
        else {
            remaining += 1;
            continue;
        };
        for kv in page.items {
            remaining += 1;
            let Ok(o) = handlers::decode_stored(&kv) else {
                continue;
            };
            if let Some(n) = objects::name(&o) {
                let _ = handlers::delete(st, kdef, Some(&name), n, &opts).await;
            }
        }
    }
    if remaining == 0 {
        let mut new = obj.clone();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("finalizers".into(), json!([]));
        }
        write_back(st, def, None, &name, obj, new).await;
    }
}

/// After an owner is gone, deletes dependents whose every owner is gone (background policy).
async fn collect_orphans_of(st: &AppState, graph: &Graph, owner: &Value) {
    let Some(uid) = meta_str(owner, "uid").map(str::to_string) else {
        return;
    };
    let opts = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };
    for (ddef, dep) in dependents(st, graph, &uid).await {
        // Only when no other owner of the dependent still exists.
        let others_alive = owner_uids(&dep)
            .iter()
            .any(|other| *other != uid && graph.exists(other));
        if !others_alive && let Some(name) = objects::name(&dep) {
            let dns = meta_str(&dep, "namespace");
            let _ = handlers::delete(st, ddef, dns, name, &opts).await;
        }
    }
}

fn def_for_key(key: &str) -> Option<&'static ResourceDef> {
    storage_kinds().find(|d| key.starts_with(&d.key_prefix()))
}

/// Runs until `shutdown` resolves: watches every change and finishes deletions.
pub async fn run(st: Arc<AppState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        // (Re)build the graph and catch up on anything pending (at start, and after a watch
        // is lost).
        let Ok(rev) = st.store.current_revision().await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut graph = Graph::default();
        let mut pending = Vec::new();
        for def in storage_kinds() {
            if let Ok(page) = st.store.list(&def.key_prefix(), None, None).await {
                for kv in page.items {
                    if let Ok(obj) = handlers::decode_stored(&kv) {
                        graph.observe(&kv.key, &obj);
                        if meta_str(&obj, "deletionTimestamp").is_some() {
                            pending.push((def, obj));
                        }
                    }
                }
            }
        }
        for (def, obj) in pending {
            process(&st, &graph, def, &obj).await;
        }
        let mut stream = match st.store.watch("/registry/", rev).await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                ev = stream.next() => {
                    let Some(Ok(ev)) = ev else { break };
                    let Some(def) = def_for_key(&ev.kv.key) else { continue };
                    let Ok(mut obj) = serde_json::from_slice::<Value>(&ev.kv.value) else { continue };
                    objects::set_resource_version(&mut obj, ev.kv.mod_revision);
                    match ev.kind {
                        baton_store::EventType::Deleted => {
                            graph.forget(&ev.kv.key);
                            collect_orphans_of(&st, &graph, &obj).await;
                            // A dependent gone may unblock a foreground owner.
                            resync_foreground(&st, &graph, &obj).await;
                            resync_namespace(&st, &obj).await;
                        }
                        _ => {
                            graph.observe(&ev.kv.key, &obj);
                            process(&st, &graph, def, &obj).await;
                        }
                    }
                }
            }
        }
    }
}

/// When an object in a terminating namespace goes, re-check whether the namespace is empty.
async fn resync_namespace(st: &AppState, gone: &Value) {
    let Some(ns) = meta_str(gone, "namespace") else {
        return;
    };
    let Some(def) = registry::find("", "v1", "namespaces") else {
        return;
    };
    if let Ok(Some(kv)) = st.store.get(&def.key(None, ns)).await
        && let Ok(obj) = handlers::decode_stored(&kv)
        && meta_str(&obj, "deletionTimestamp").is_some()
    {
        finalize_namespace(st, def, &obj).await;
    }
}

/// When a dependent goes, re-check its owners waiting in foreground deletion.
async fn resync_foreground(st: &AppState, graph: &Graph, dep: &Value) {
    for owner in owner_uids(dep) {
        let Some(key) = graph.key_of(&owner).map(str::to_string) else {
            continue;
        };
        if let Some((def, obj)) = read_key(st, &key).await {
            process(st, graph, def, &obj).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_tracks_dependents_and_forgets_them() {
        let mut g = Graph::default();
        let owner = json!({"metadata": {"uid": "o"}});
        let dep = json!({"metadata": {"uid": "d", "ownerReferences": [{"uid": "o"}]}});
        g.observe("/k/owner", &owner);
        g.observe("/k/dep", &dep);
        assert!(g.exists("o"));
        assert_eq!(g.dependent_keys("o"), vec!["/k/dep".to_string()]);
        // The dependent drops its owner reference (orphaned).
        g.observe("/k/dep", &json!({"metadata": {"uid": "d"}}));
        assert!(g.dependent_keys("o").is_empty());
        g.forget("/k/owner");
        assert!(!g.exists("o"));
        assert_eq!(g.key_of("d"), Some("/k/dep"));
    }
}
