//! Defaults of the storage kinds: core/v1 PersistentVolume and PersistentVolumeClaim
//! (`SetDefaults_PersistentVolume`, `SetDefaults_PersistentVolumeClaim[Spec]`) and
//! storage.k8s.io/v1 StorageClass (`SetDefaults_StorageClass`).

use serde_json::{Map, Value, json};

use crate::json::{child, child_opt, set_default, set_default_if_empty};

pub(super) fn persistent_volume(m: &mut Map<String, Value>) {
    let spec = child(m, "spec");
    set_default_if_empty(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
    set_default(spec, "volumeMode", json!("Filesystem"));
    if let Some(hp) = child_opt(spec, "hostPath") {
        set_default(hp, "type", json!(""));
    }
    set_default_if_empty(child(m, "status"), "phase", json!("Pending"));
}

pub(super) fn persistent_volume_claim(m: &mut Map<String, Value>) {
    claim_spec(child(m, "spec"));
    set_default_if_empty(child(m, "status"), "phase", json!("Pending"));
}

/// A claim's spec, also inside a StatefulSet's `volumeClaimTemplates`.
pub fn claim_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "volumeMode", json!("Filesystem"));
}

pub(super) fn storage_class(m: &mut Map<String, Value>) {
    set_default(m, "reclaimPolicy", json!("Delete"));
    set_default(m, "volumeBindingMode", json!("Immediate"));
}
