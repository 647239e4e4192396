//! The pure part of the PV controller: which PersistentVolume a claim binds to
//! (`findMatchingVolume` of Kubernetes' `pkg/controller/volume/persistentvolume/index.go`),
//! the phase each side should show, and whether a volume's node affinity admits a node (the
//! scheduler's `VolumeBinding` filter reads it too).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, PersistentVolume, PersistentVolumeClaim,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;

use baton_api::quantity::Quantity;

/// Annotations Kubernetes' PV controller writes.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Where the scheduler records the node it chose for a WaitForFirstConsumer claim.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Old objects name their class in this annotation instead of `storageClassName`.
const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The class of a claim (`""`: none).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> String {
    pvc.annotations()
        .get(BETA_CLASS)
        .cloned()
        .or_else(|| pvc.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

/// The class of a volume (`""`: none).
pub fn volume_class(pv: &PersistentVolume) -> String {
    pv.annotations()
        .get(BETA_CLASS)
        .cloned()
        .or_else(|| pv.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

/// The claim's storage request.
pub fn requested(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    let q = pvc
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    Quantity::try_from(q).ok()
}

/// The volume's storage capacity.
pub fn capacity(pv: &PersistentVolume) -> Option<Quantity> {
    let q = pv.spec.as_ref()?.capacity.as_ref()?.get("storage")?;
    Quantity::try_from(q).ok()
}

fn access_modes_of(modes: Option<&Vec<String>>) -> &[String] {
    modes.map_or(&[], Vec::as_slice)
}

/// True when the volume's `claimRef` names this claim (and, if it says, this uid).
pub fn is_pre_bound_to(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name.as_deref() == pvc.metadata.name.as_deref()
        && r.namespace.as_deref() == pvc.metadata.namespace.as_deref()
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == pvc.metadata.uid.as_deref())
}

/// Whether `pv` could serve `pvc`: same class, the access modes asked for, enough capacity,
/// the selector's labels, the same volume mode; not being deleted; free or pre-bound to it.
pub fn fits(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let (Some(spec), Some(cspec)) = (pv.spec.as_ref(), pvc.spec.as_ref()) else {
        return false;
    };
    if pv.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if spec.claim_ref.is_some() && !is_pre_bound_to(pv, pvc) {
        return false;
    }
    if volume_class(pv) != claim_class(pvc) {
        return false;
    }
    let mode = |m: Option<&String>| m.map_or("Filesystem", String::as_str).to_string();
    if mode(spec.volume_mode.as_ref()) != mode(cspec.volume_mode.as_ref()) {
        return false;
    }
    let have = access_modes_of(spec.access_modes.as_ref());
    if !access_modes_of(cspec.access_modes.as_ref())
        .iter()
        .all(|m| have.contains(m))
    {
        return false;
    }
    match (capacity(pv), requested(pvc)) {
        (Some(c), Some(r)) if c >= r => {}
        _ => return false,
    }
    if let Some(sel) = &cspec.selector {
        let Ok(value) = serde_json::to_value(sel) else {
            return false;
        };
        let Ok(sel) = baton_api::selectors::label_selector_from_object(&value) else {
            return false;
        };
        if !sel.matches_map(pv.labels()) {
            return false;
        }
    }
    true
}

/// The volume `pvc` should bind to: one pre-bound to it if any fits, else the smallest that
/// fits (then the first by name), as Kubernetes picks.
pub fn find_match<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: &'a [Arc<PersistentVolume>],
) -> Option<&'a Arc<PersistentVolume>> {
    let mut fitting: Vec<&Arc<PersistentVolume>> =
        volumes.iter().filter(|pv| fits(pv, pvc)).collect();
    if let Some(pre) = fitting.iter().find(|pv| is_pre_bound_to(pv, pvc)) {
        return Some(pre);
    }
    fitting.sort_by(|a, b| {
        capacity(a)
            .cmp(&capacity(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    fitting.first().copied()
}

/// The phase a volume should show, given whether the claim its `claimRef` names exists
/// (with the uid it names).
pub fn volume_phase(pv: &PersistentVolume, claim_exists: bool) -> &'static str {
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        None => "Available",
        Some(_) if claim_exists => "Bound",
        Some(r) if r.uid.as_deref().is_none_or(str::is_empty) => "Available",
        Some(_) => "Released",
    }
}

/// The volume binding mode of `class` (Immediate when unset).
pub fn waits_for_consumer(class: Option<&StorageClass>) -> bool {
    class.and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer")
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether the volume's required node affinity admits `node` (no affinity: every node).
pub fn node_admits(pv: &PersistentVolume, node: &Node) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let labels: &BTreeMap<String, String> = node.labels();
    let name = node.name_any();
    required.node_selector_terms.iter().any(|t| {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        let fields = t.match_fields.as_deref().unwrap_or_default();
        (!exprs.is_empty() || !fields.is_empty())
            && exprs
                .iter()
                .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
            && fields
                .iter()
                .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, size: &str, modes: &[&str], class: &str) -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"tier": name}},
                "spec": {"capacity": {"storage": size}, "accessModes": modes,
                         "storageClassName": class, "hostPath": {"path": "/x"}},
            }))
            .expect("pv"),
        )
    }

    fn pvc(size: &str, modes: &[&str], class: Option<&str>) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": modes, "storageClassName": class,
                     "resources": {"requests": {"storage": size}}},
        }))
        .expect("pvc")
    }

    #[test]
    fn the_smallest_fitting_volume_of_the_class_wins() {
        let volumes = vec![
            pv("big", "10Gi", &["ReadWriteOnce"], ""),
            pv("small", "1Gi", &["ReadWriteOnce"], ""),
            pv("tiny", "100Mi", &["ReadWriteOnce"], ""),
            pv("other-class", "1Gi", &["ReadWriteOnce"], "fast"),
            pv("read-only", "1Gi", &["ReadOnlyMany"], ""),
        ];
        let name = |c: &PersistentVolumeClaim| find_match(c, &volumes).map(|v| v.name_any());
        assert_eq!(
            name(&pvc("500Mi", &["ReadWriteOnce"], None)).as_deref(),
            Some("small")
        );
        assert_eq!(
            name(&pvc("1Gi", &["ReadWriteOnce"], Some(""))).as_deref(),
            Some("small")
        );
        assert_eq!(
            name(&pvc("1Gi", &["ReadWriteOnce"], Some("fast"))).as_deref(),
            Some("other-class")
        );
        assert_eq!(
            name(&pvc("20Gi", &["ReadWriteOnce"], None)),
            None,
            "too big"
        );
        assert_eq!(
            name(&pvc("1Gi", &["ReadWriteMany"], None)),
            None,
            "no volume offers RWX"
        );
        assert_eq!(
            name(&pvc("1Gi", &["ReadOnlyMany"], None)).as_deref(),
            Some("read-only")
        );
    }

    #[test]
    fn bound_volumes_are_taken_and_pre_bound_ones_are_preferred() {
        let mut taken = (*pv("small", "1Gi", &["ReadWriteOnce"], "")).clone();
        taken.spec.as_mut().expect("spec").claim_ref = Some(
            serde_json::from_value(json!({"namespace": "default", "name": "other", "uid": "u2"}))
                .expect("ref"),
        );
        let mut pre = (*pv("big", "10Gi", &["ReadWriteOnce"], "")).clone();
        pre.spec.as_mut().expect("spec").claim_ref = Some(
            serde_json::from_value(json!({"namespace": "default", "name": "data"})).expect("ref"),
        );
        let claim = pvc("1Gi", &["ReadWriteOnce"], None);
        let volumes = vec![Arc::new(taken), Arc::new(pre)];
        assert_eq!(
            find_match(&claim, &volumes)
                .map(|v| v.name_any())
                .as_deref(),
            Some("big")
        );
        assert_eq!(find_match(&claim, &volumes[..1]), None);
    }

    #[test]
    fn a_selector_limits_the_volumes() {
        let volumes = vec![
            pv("a", "1Gi", &["ReadWriteOnce"], ""),
            pv("b", "1Gi", &["ReadWriteOnce"], ""),
        ];
        let mut claim = pvc("1Gi", &["ReadWriteOnce"], None);
        claim.spec.as_mut().expect("spec").selector =
            Some(serde_json::from_value(json!({"matchLabels": {"tier": "b"}})).expect("sel"));
        assert_eq!(
            find_match(&claim, &volumes)
                .map(|v| v.name_any())
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn phases_follow_the_claim_reference() {
        let free = pv("a", "1Gi", &["ReadWriteOnce"], "");
        assert_eq!(volume_phase(&free, false), "Available");
        let mut bound = (*free).clone();
        bound.spec.as_mut().expect("spec").claim_ref = Some(
            serde_json::from_value(json!({"namespace": "default", "name": "data", "uid": "u1"}))
                .expect("ref"),
        );
        assert_eq!(volume_phase(&bound, true), "Bound");
        assert_eq!(volume_phase(&bound, false), "Released");
    }

    #[test]
    fn node_affinity_admits_the_named_node_only() {
        let mut v = (*pv("a", "1Gi", &["ReadWriteOnce"], "")).clone();
        v.spec.as_mut().expect("spec").node_affinity = Some(
            serde_json::from_value(
                json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}),
            )
            .expect("affinity"),
        );
        let node = |name: &str| -> Node {
            serde_json::from_value(json!({"metadata": {"name": name,
                "labels": {"kubernetes.io/hostname": name}}}))
            .expect("node")
        };
        assert!(node_admits(&v, &node("n1")));
        assert!(!node_admits(&v, &node("n2")));
        assert!(node_admits(
            &pv("b", "1Gi", &["ReadWriteOnce"], ""),
            &node("n2")
        ));
    }
}
