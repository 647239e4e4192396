//! The ownership graph: every object's metadata by uid, its owners, its dependents and its
//! namespace, kept from watches (one writer: the collector's task). Pure; the decisions that
//! read it are in `collector.rs` and `namespace.rs`.
//!
//! An owner that was seen deleted stays known as gone ("tombstone") while dependents still
//! point at it, so collecting a thousand dependents of a deleted owner costs no lookup of the
//! owner each; an owner never seen must be looked up before a dependent is deleted for it,
//! because each kind has its own watch and a dependent can arrive before its owner.

use std::collections::{HashMap, HashSet};

use baton_api::registry::ResourceDef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// A kind of object: its storage row in the API registry.
pub type Kind = &'static ResourceDef;

/// The `orphan` finalizer: dependents are released before the owner goes.
pub const ORPHAN: &str = "orphan";
/// The `foregroundDeletion` finalizer: dependents go before the owner.
pub const FOREGROUND: &str = "foregroundDeletion";

/// What the graph keeps of one object.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    /// It has a deletionTimestamp.
    pub deleting: bool,
}

impl Node {
    /// The node of an object's metadata; `None` without a name or uid.
    pub fn from_meta(kind: Kind, meta: &ObjectMeta) -> Option<Node> {
        Some(Node {
            kind,
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    pub fn is_namespace(&self) -> bool {
        self.kind.group.is_empty() && self.kind.resource == "namespaces"
    }
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// owner uid → uids of the objects that name it in an ownerReference.
    dependents: HashMap<String, HashSet<String>>,
    /// namespace → uids of the objects in it.
    namespaces: HashMap<String, HashSet<String>>,
    /// name → uid of each Namespace object.
    namespace_uids: HashMap<String, String>,
    /// uids seen deleted that dependents still name.
    gone: HashSet<String>,
    /// kind resource → uids seen since its watch restarted (a re-list in progress).
    relisting: HashMap<&'static str, HashSet<String>>,
    synced: HashSet<&'static str>,
}

impl Graph {
    /// Records an object as it is now; returns what was known of it before.
    pub fn apply(&mut self, node: Node) -> Option<Node> {
        if let Some(seen) = self.relisting.get_mut(node.kind.resource) {
            seen.insert(node.uid.clone());
        }
        let prev = self.unlink(&node.uid);
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        if let Some(ns) = &node.namespace {
            self.namespaces
                .entry(ns.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        if node.is_namespace() {
            self.namespace_uids
                .insert(node.name.clone(), node.uid.clone());
        }
        self.nodes.insert(node.uid.clone(), node);
        prev
    }

    /// Forgets a deleted object; returns what was known of it.
    pub fn delete(&mut self, uid: &str) -> Option<Node> {
        let prev = self.unlink(uid);
        if self.dependents.contains_key(uid) {
            self.gone.insert(uid.to_string());
        }
        prev
    }

    fn unlink(&mut self, uid: &str) -> Option<Node> {
        let prev = self.nodes.remove(uid)?;
        for o in &prev.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                    self.gone.remove(&o.uid);
                }
            }
        }
        if let Some(ns) = &prev.namespace
            && let Some(set) = self.namespaces.get_mut(ns)
        {
            set.remove(uid);
            if set.is_empty() {
                self.namespaces.remove(ns);
            }
        }
        if prev.is_namespace()
            && self
                .namespace_uids
                .get(&prev.name)
                .is_some_and(|u| u == uid)
        {
            self.namespace_uids.remove(&prev.name);
        }
        Some(prev)
    }

    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// True when the object was seen deleted.
    pub fn is_gone(&self, uid: &str) -> bool {
        self.gone.contains(uid)
    }

    /// The objects that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .collect()
    }

    /// The Namespace object called `name`.
    pub fn namespace(&self, name: &str) -> Option<&Node> {
        self.nodes.get(self.namespace_uids.get(name)?)
    }

    /// The objects in namespace `ns`.
    pub fn in_namespace(&self, ns: &str) -> Vec<&Node> {
        self.namespaces
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(|u| self.nodes.get(u))
            .collect()
    }

    /// Every object known.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// A kind's watch restarted: the objects it lists now are what exists.
    pub fn begin_relist(&mut self, kind: Kind) {
        self.relisting.insert(kind.resource, HashSet::new());
    }

    /// A kind's list is complete: returns the objects of that kind that were not listed
    /// again (deleted while the watch was down), already forgotten.
    pub fn end_relist(&mut self, kind: Kind) -> Vec<Node> {
        self.synced.insert(kind.resource);
        let Some(seen) = self.relisting.remove(kind.resource) else {
            return Vec::new();
        };
        let vanished: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.kind.group == kind.group && n.kind.resource == kind.resource)
            .filter(|n| !seen.contains(&n.uid))
            .map(|n| n.uid.clone())
            .collect();
        vanished.iter().filter_map(|u| self.delete(u)).collect()
    }

    /// True once each of `kinds` has been listed completely at least once.
    pub fn synced(&self, kinds: usize) -> bool {
        self.synced.len() >= kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(resource: &str) -> Kind {
        baton_api::registry::RESOURCES
            .iter()
            .find(|r| r.is_storage_version() && r.resource == resource)
            .expect("a served kind")
    }

    fn node(resource: &str, uid: &str, owners: &[&str]) -> Node {
        Node {
            kind: kind(resource),
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
            resource_version: "1".into(),
            owners: owners
                .iter()
                .map(|o| OwnerReference {
                    uid: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            finalizers: vec![],
            deleting: false,
        }
    }

    #[test]
    fn dependents_follow_owner_references_as_they_change() {
        let mut g = Graph::default();
        g.apply(node("replicasets", "rs", &[]));
        g.apply(node("pods", "p1", &["rs"]));
        g.apply(node("pods", "p2", &["rs"]));
        let mut deps: Vec<&str> = g.dependents("rs").iter().map(|n| n.name.as_str()).collect();
        deps.sort();
        assert_eq!(deps, ["p1", "p2"]);
        // p1 is orphaned: it no longer names rs.
        g.apply(node("pods", "p1", &[]));
        assert_eq!(g.dependents("rs").len(), 1);
        assert_eq!(g.in_namespace("ns").len(), 3);
    }

    #[test]
    fn a_deleted_owner_is_gone_while_dependents_name_it() {
        let mut g = Graph::default();
        g.apply(node("replicasets", "rs", &[]));
        g.apply(node("pods", "p", &["rs"]));
        assert!(!g.is_gone("rs"));
        g.delete("rs");
        assert!(g.is_gone("rs") && g.get("rs").is_none());
        assert!(!g.is_gone("never-seen"));
        g.delete("p");
        assert!(
            !g.is_gone("rs"),
            "the tombstone goes with the last dependent"
        );
        assert!(g.in_namespace("ns").is_empty());
    }

    #[test]
    fn a_relist_reports_what_vanished_meanwhile() {
        let mut g = Graph::default();
        g.apply(node("pods", "a", &[]));
        g.apply(node("pods", "b", &[]));
        g.apply(node("replicasets", "rs", &[]));
        assert!(!g.synced(2));
        g.begin_relist(kind("pods"));
        g.apply(node("pods", "a", &[]));
        let vanished: Vec<String> = g
            .end_relist(kind("pods"))
            .into_iter()
            .map(|n| n.uid)
            .collect();
        assert_eq!(vanished, ["b"]);
        assert!(g.get("rs").is_some(), "other kinds are not touched");
        g.begin_relist(kind("replicasets"));
        g.apply(node("replicasets", "rs", &[]));
        assert!(g.end_relist(kind("replicasets")).is_empty());
        assert!(g.synced(2));
    }
}
