//! The rows of PersistentVolumes, PersistentVolumeClaims and StorageClasses, as
//! `printPersistentVolume`, `printPersistentVolumeClaim` and `printStorageClass` print them.

use serde_json::{Value, json};

use super::{Column, age_col, col, list, s};

/// The annotations that mark a StorageClass as the cluster's default (GA and beta).
pub const DEFAULT_CLASS_ANNOTATIONS: &[&str] = &[
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

#[rustfmt::skip]
pub(super) fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "PersistentVolume" => vec![
            col("Capacity", "string", 0, "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
            col("Access Modes", "string", 0, "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
            col("Reclaim Policy", "string", 0, "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
            col("Status", "string", 0, "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
            col("Claim", "string", 0, "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
            col("StorageClass", "string", 0, "StorageClass of the pv"),
            col("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pv"),
            col("Reason", "string", 0, "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            age_col(),
            col("VolumeMode", "string", 1, "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec."),
        ],
        "PersistentVolumeClaim" => vec![
            col("Status", "string", 0, "phase represents the current phase of PersistentVolumeClaim."),
            col("Volume", "string", 0, "volumeName is the binding reference to the PersistentVolume backing this claim."),
            col("Capacity", "string", 0, "capacity represents the actual resources of the underlying volume."),
            col("Access Modes", "string", 0, "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
            col("StorageClass", "string", 0, "StorageClass of the pvc"),
            col("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pvc"),
            age_col(),
            col("VolumeMode", "string", 1, "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec."),
        ],
        _ => vec![
            col("Provisioner", "string", 0, "provisioner indicates the type of the provisioner."),
            col("ReclaimPolicy", "string", 0, "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
            col("VolumeBindingMode", "string", 0, "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
            col("AllowVolumeExpansion", "string", 0, "allowVolumeExpansion shows whether the storage class allow volume expand."),
            age_col(),
        ],
    }
}

/// `GetAccessModesAsString`: the modes present, abbreviated, in Kubernetes' fixed order.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The class of a PV or PVC: `spec.storageClassName`, or the beta annotation of old objects.
fn class(obj: &Value) -> String {
    let annotated = s(
        obj,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    );
    if !annotated.is_empty() {
        return annotated.to_string();
    }
    s(obj, "/spec/storageClassName").to_string()
}

fn phase(obj: &Value) -> Value {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        json!("Terminating")
    } else {
        json!(s(obj, "/status/phase"))
    }
}

fn or_unset(v: &str) -> Value {
    json!(if v.is_empty() { "<unset>" } else { v })
}

pub(super) fn cells(kind: &str, obj: &Value, name: Value, age: Value) -> Vec<Value> {
    match kind {
        "PersistentVolume" => {
            let claim = obj
                .pointer("/spec/claimRef")
                .filter(|c| !c.is_null())
                .map_or(String::new(), |c| {
                    format!("{}/{}", s(c, "/namespace"), s(c, "/name"))
                });
            vec![
                name,
                json!(s(obj, "/spec/capacity/storage")),
                json!(access_modes(list(obj, "/spec/accessModes"))),
                json!(s(obj, "/spec/persistentVolumeReclaimPolicy")),
                phase(obj),
                json!(claim),
                json!(class(obj)),
                or_unset(s(obj, "/spec/volumeAttributesClassName")),
                json!(s(obj, "/status/reason")),
                age,
                or_unset(s(obj, "/spec/volumeMode")),
            ]
        }
        "PersistentVolumeClaim" => {
            let bound = !s(obj, "/spec/volumeName").is_empty();
            let (capacity, modes) = if bound {
                (
                    s(obj, "/status/capacity/storage").to_string(),
                    access_modes(list(obj, "/status/accessModes")),
                )
            } else {
                (String::new(), String::new())
            };
            vec![
                name,
                phase(obj),
                json!(s(obj, "/spec/volumeName")),
                json!(capacity),
                json!(modes),
                json!(class(obj)),
                or_unset(s(obj, "/spec/volumeAttributesClassName")),
                age,
                or_unset(s(obj, "/spec/volumeMode")),
            ]
        }
        _ => {
            let default = DEFAULT_CLASS_ANNOTATIONS.iter().any(|a| {
                obj.pointer(&format!("/metadata/annotations/{}", a.replace('/', "~1")))
                    .and_then(Value::as_str)
                    == Some("true")
            });
            let name = match (default, name.as_str()) {
                (true, Some(n)) => json!(format!("{n} (default)")),
                _ => name,
            };
            let policy = s(obj, "/reclaimPolicy");
            let mode = s(obj, "/volumeBindingMode");
            vec![
                name,
                json!(s(obj, "/provisioner")),
                json!(if policy.is_empty() { "Delete" } else { policy }),
                json!(if mode.is_empty() { "Immediate" } else { mode }),
                json!(obj.get("allowVolumeExpansion") == Some(&json!(true))),
                age,
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use crate::registry::find;
    use crate::table::{cells, columns};

    fn names(group: &str, resource: &str) -> Vec<&'static str> {
        let def = find(group, "v1", resource).expect("registered");
        columns(def).iter().map(|c| c.name).collect()
    }

    #[test]
    fn columns_are_kube_apiservers() {
        assert_eq!(
            names("", "persistentvolumes"),
            [
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
                "VolumeMode",
            ]
        );
        assert_eq!(
            names("", "persistentvolumeclaims"),
            [
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age",
                "VolumeMode",
            ]
        );
        assert_eq!(
            names("storage.k8s.io", "storageclasses"),
            [
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age",
            ]
        );
    }

    #[test]
    fn rows_print_as_kubectl_shows_them() {
        let now = Utc::now();
        let pv = json!({"metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "1Gi"},
                     "accessModes": ["ReadOnlyMany", "ReadWriteOnce", "ReadWriteOncePod"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
                     "volumeMode": "Filesystem", "claimRef": {"namespace": "ns", "name": "data"}},
            "status": {"phase": "Bound"}});
        let row = cells(find("", "v1", "persistentvolumes").expect("pv"), &pv, now);
        assert_eq!(
            row[..9],
            [
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,ROX,RWOP"),
                json!("Delete"),
                json!("Bound"),
                json!("ns/data"),
                json!("local-path"),
                json!("<unset>"),
                json!(""),
            ]
        );
        let pending = json!({"metadata": {"name": "data", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"storageClassName": "local-path"},
            "status": {"phase": "Pending", "capacity": {"storage": "1Gi"}}});
        let row = cells(
            find("", "v1", "persistentvolumeclaims").expect("pvc"),
            &pending,
            now,
        );
        assert_eq!(
            row[..7],
            [
                json!("data"),
                json!("Terminating"),
                json!(""),
                json!(""),
                json!(""),
                json!("local-path"),
                json!("<unset>"),
            ]
        );
        let class = json!({"metadata": {"name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        let row = cells(
            find("storage.k8s.io", "v1", "storageclasses").expect("sc"),
            &class,
            now,
        );
        assert_eq!(
            row[..5],
            [
                json!("local-path (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
            ]
        );
    }
}
