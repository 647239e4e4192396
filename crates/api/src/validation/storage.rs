//! PersistentVolume, PersistentVolumeClaim (`pkg/apis/core/validation`) and StorageClass
//! (`pkg/apis/storage/validation`) validation, with Kubernetes' paths and messages. What the
//! node agent cannot mount is refused with a 422 naming the field: volume sources other than
//! `hostPath` and `local`, block volumes, claims populated from a data source.

use serde_json::{Map, Value, json};

use super::volumes::HOST_PATH_TYPES;
use super::{FieldError, go, names};
use crate::quantity::Quantity;
use crate::selectors::label_selector_from_object;

const DETAIL: &str = "not supported by Baton";
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const PV_RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const CLASS_RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
/// The volume sources a PersistentVolume may have; the agent mounts the first two.
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "local",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "storageos",
    "csi",
];
/// The provisioner of Baton's built-in local-path StorageClass (k3s's name for it).
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Access modes: known ones, ReadWriteOncePod alone.
fn access_modes(spec: &Value, at: &str, detail: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes = spec
        .get("accessModes")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if modes.is_empty() {
        errs.push(FieldError::required(format!("{at}.accessModes"), detail));
    }
    let (mut once_pod, mut other) = (false, false);
    for m in modes {
        let s = m.as_str().unwrap_or_default();
        if !ACCESS_MODES.contains(&s) {
            errs.push(FieldError::not_supported(
                format!("{at}.accessModes"),
                m.clone(),
                ACCESS_MODES,
            ));
        } else if s == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        errs.push(FieldError::forbidden(
            format!("{at}.accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// `ValidateClassName`: a DNS subdomain.
fn class_name(v: &Value, at: &str) -> Vec<FieldError> {
    let name = v.as_str().unwrap_or_default();
    names::dns1123_subdomain(name)
        .into_iter()
        .map(|m| FieldError::invalid(at, json!(name), m))
        .collect()
}

/// `ValidatePositiveQuantityValue` of a storage amount.
fn positive(q: &Value, at: &str) -> Vec<FieldError> {
    match Quantity::from_json(q) {
        Err(e) => vec![FieldError::invalid(at, q.clone(), e.to_string())],
        Ok(v) if v.is_negative() || v.is_zero() => vec![FieldError::invalid(
            at,
            json!(v.to_string()),
            "must be greater than zero",
        )],
        Ok(_) => Vec::new(),
    }
}

fn volume_mode(spec: &Value, at: &str) -> Vec<FieldError> {
    match spec.get("volumeMode").filter(|m| !m.is_null()) {
        None => Vec::new(),
        Some(m) if !VOLUME_MODES.contains(&m.as_str().unwrap_or_default()) => {
            vec![FieldError::not_supported(
                format!("{at}.volumeMode"),
                m.clone(),
                VOLUME_MODES,
            )]
        }
        Some(m) if m == "Block" => vec![FieldError::forbidden(format!("{at}.volumeMode"), DETAIL)],
        Some(_) => Vec::new(),
    }
}

/// `ValidatePersistentVolumeClaimSpec` at `at` (`spec`, or a StatefulSet's
/// `spec.volumeClaimTemplates[0].spec`).
pub(crate) fn claim_spec(spec: &Value, at: &str) -> Vec<FieldError> {
    let mut errs = access_modes(spec, at, "at least 1 access mode is required");
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null())
        && label_selector_from_object(sel).is_err()
    {
        errs.push(FieldError::invalid(
            format!("{at}.selector"),
            go::raw(go::label_selector(sel)),
            "invalid label selector",
        ));
    }
    match spec.pointer("/resources/requests/storage") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(format!("{at}.resources[storage]"), ""));
        }
        Some(q) => errs.extend(positive(q, &format!("{at}.resources[storage]"))),
    }
    if let Some(c) = spec
        .get("storageClassName")
        .filter(|c| c.as_str().is_some_and(|s| !s.is_empty()))
    {
        errs.extend(class_name(c, &format!("{at}.storageClassName")));
    }
    errs.extend(volume_mode(spec, at));
    for f in ["dataSource", "dataSourceRef", "volumeAttributesClassName"] {
        if spec.get(f).is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(format!("{at}.{f}"), DETAIL));
        }
    }
    errs
}

pub(super) fn persistent_volume_claim(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = spec_of(obj);
    let mut errs = claim_spec(spec, "spec");
    let Some(old) = old else { return errs };
    let old_spec = spec_of(old);
    // Kubernetes' ValidatePersistentVolumeClaimUpdate: volumeName may be set once, the storage
    // request of a bound claim may grow; everything else is fixed.
    let mut new_cmp = spec.clone();
    let mut old_cmp = old_spec.clone();
    if str_at(old_spec, "volumeName").is_empty() {
        set(
            &mut old_cmp,
            "volumeName",
            new_cmp.get("volumeName").cloned(),
        );
    }
    // A class may be set on a claim that had none (the default class arriving later).
    if old_spec.get("storageClassName").is_none_or(Value::is_null) {
        set(
            &mut old_cmp,
            "storageClassName",
            new_cmp.get("storageClassName").cloned(),
        );
    }
    let bound = obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if bound {
        let old_request = old_spec.pointer("/resources/requests/storage").cloned();
        if let Some(r) = new_cmp
            .pointer_mut("/resources/requests")
            .and_then(Value::as_object_mut)
        {
            match old_request {
                Some(q) => r.insert("storage".into(), q),
                None => r.remove("storage"),
            };
        }
    }
    if new_cmp != old_cmp {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                changed_fields(&old_cmp, &new_cmp)
            ),
        ));
    }
    let size = |v: &Value| {
        v.pointer("/resources/requests/storage")
            .and_then(|q| Quantity::from_json(q).ok())
    };
    if let (Some(new), Some(old)) = (size(spec), size(old_spec))
        && new < old
    {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
    errs
}

fn set(v: &mut Value, key: &str, value: Option<Value>) {
    if let Some(m) = v.as_object_mut() {
        match value {
            Some(x) => m.insert(key.into(), x),
            None => m.remove(key),
        };
    }
}

/// The top-level spec fields that differ, `- old` / `+ new` as a diff shows them.
fn changed_fields(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        if o.get(k) != n.get(k) {
            if let Some(v) = o.get(k) {
                out.push(format!("-\t{k}: {v}"));
            }
            if let Some(v) = n.get(k) {
                out.push(format!("+\t{k}: {v}"));
            }
        }
    }
    out.join("\n")
}

pub(super) fn persistent_volume(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = spec_of(obj);
    let mut errs = access_modes(spec, "spec", "");
    let capacity = spec.get("capacity").and_then(Value::as_object);
    match capacity {
        None => errs.push(FieldError::required("spec.capacity", "")),
        Some(c) if c.is_empty() => errs.push(FieldError::required("spec.capacity", "")),
        Some(_) => {}
    }
    if let Some(c) = capacity
        && (!c.contains_key("storage") || c.len() > 1)
    {
        errs.push(FieldError::not_supported(
            "spec.capacity",
            go::raw(go::string_map(Some(c))),
            &["storage"],
        ));
    }
    for (k, q) in capacity.into_iter().flatten() {
        errs.extend(positive(q, &format!("spec.capacity[{k}]")));
    }
    let policy = str_at(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !PV_RECLAIM_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            json!(policy),
            PV_RECLAIM_POLICIES,
        ));
    } else if policy == "Recycle" {
        errs.push(FieldError::forbidden(
            "spec.persistentVolumeReclaimPolicy",
            DETAIL,
        ));
    }
    let affinity = spec.get("nodeAffinity").filter(|a| !a.is_null());
    if let Some(a) = affinity {
        let terms = a
            .pointer("/required/nodeSelectorTerms")
            .and_then(Value::as_array);
        if a.get("required").is_some_and(|r| !r.is_null()) && terms.is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(
                "spec.nodeAffinity.required.nodeSelectorTerms",
                "must have at least one node selector term",
            ));
        }
    }
    let sources: Vec<&str> = PV_SOURCES
        .iter()
        .copied()
        .filter(|s| spec.get(*s).is_some_and(|v| !v.is_null()))
        .collect();
    match sources.first() {
        None => errs.push(FieldError::required("spec", "must specify a volume type")),
        Some(first) => {
            for s in &sources[1..] {
                errs.push(FieldError::forbidden(
                    format!("spec.{s}"),
                    "may not specify more than 1 volume type",
                ));
            }
            match *first {
                "hostPath" | "local" => {
                    let p = spec
                        .pointer(&format!("/{first}/path"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if p.is_empty() {
                        errs.push(FieldError::required(format!("spec.{first}.path"), ""));
                    } else if p.split('/').any(|e| e == "..") {
                        errs.push(FieldError::invalid(
                            format!("spec.{first}.path"),
                            json!(p),
                            "must not contain '..'",
                        ));
                    }
                    if *first == "local" && affinity.is_none() {
                        errs.push(FieldError::required(
                            "spec.nodeAffinity",
                            "Local volume requires node affinity",
                        ));
                    }
                    let t = str_at(&spec[*first], "type");
                    if *first == "hostPath" && !HOST_PATH_TYPES.contains(&t) {
                        errs.push(FieldError::not_supported(
                            "spec.hostPath.type",
                            json!(t),
                            &HOST_PATH_TYPES[1..],
                        ));
                    }
                }
                other => errs.push(FieldError::forbidden(format!("spec.{other}"), DETAIL)),
            }
        }
    }
    if let Some(c) = spec
        .get("storageClassName")
        .filter(|c| c.as_str().is_some_and(|s| !s.is_empty()))
    {
        errs.extend(class_name(c, "spec.storageClassName"));
    }
    errs.extend(volume_mode(spec, "spec"));
    for f in ["volumeAttributesClassName", "mountOptions"] {
        if spec.get(f).is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(format!("spec.{f}"), DETAIL));
        }
    }
    let Some(old) = old else { return errs };
    let old_spec = spec_of(old);
    if PV_SOURCES.iter().any(|s| spec.get(*s) != old_spec.get(*s)) {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    if spec.get("volumeMode") != old_spec.get("volumeMode") {
        errs.push(FieldError::invalid(
            "volumeMode",
            spec.get("volumeMode").cloned().unwrap_or(Value::Null),
            "field is immutable",
        ));
    }
    if old_spec.get("nodeAffinity").is_some_and(|a| !a.is_null())
        && spec.get("nodeAffinity") != old_spec.get("nodeAffinity")
    {
        errs.push(FieldError::invalid(
            "nodeAffinity",
            spec.get("nodeAffinity").cloned().unwrap_or(Value::Null),
            "field is immutable",
        ));
    }
    errs
}

pub(super) fn storage_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let provisioner = str_at(obj, "provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for m in names::qualified_name(&provisioner.to_lowercase()) {
            errs.push(FieldError::invalid("provisioner", json!(provisioner), m));
        }
    }
    let policy = obj.get("reclaimPolicy").filter(|p| !p.is_null());
    if let Some(p) = policy
        && !p
            .as_str()
            .is_some_and(|s| s.is_empty() || CLASS_RECLAIM_POLICIES.contains(&s))
    {
        errs.push(FieldError::not_supported(
            "reclaimPolicy",
            p.clone(),
            CLASS_RECLAIM_POLICIES,
        ));
    }
    match obj.get("volumeBindingMode").filter(|m| !m.is_null()) {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some(m) if !BINDING_MODES.contains(&m.as_str().unwrap_or_default()) => {
            errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m.clone(),
                BINDING_MODES,
            ));
        }
        Some(_) => {}
    }
    if provisioner == LOCAL_PATH_PROVISIONER {
        for f in ["mountOptions", "allowedTopologies"] {
            if obj.get(f).is_some_and(|v| !v.is_null()) {
                errs.push(FieldError::forbidden(f, DETAIL));
            }
        }
    }
    let Some(old) = old else { return errs };
    if obj.get("parameters") != old.get("parameters") {
        errs.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if provisioner != str_at(old, "provisioner") {
        errs.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if obj.get("reclaimPolicy") != old.get("reclaimPolicy") {
        errs.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if obj.get("volumeBindingMode") != old.get("volumeBindingMode") {
        errs.push(FieldError::invalid(
            "volumeBindingMode",
            obj.get("volumeBindingMode").cloned().unwrap_or(Value::Null),
            "field is immutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::registry::find;
    use crate::validation::{FieldError, validate};

    fn messages(resource: &str, group: &str, obj: &Value, old: Option<&Value>) -> Vec<String> {
        let def = find(group, "v1", resource).expect("registered");
        validate(def, obj, old)
            .iter()
            .map(FieldError::to_string)
            .collect()
    }

    fn claim() -> Value {
        json!({"metadata": {"name": "data", "namespace": "default"},
               "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                        "resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}})
    }

    fn volume() -> Value {
        json!({"metadata": {"name": "pv1"},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
                        "hostPath": {"path": "/data", "type": ""}}})
    }

    #[test]
    fn claims_need_access_modes_and_a_positive_storage_request() {
        assert!(messages("persistentvolumeclaims", "", &claim(), None).is_empty());
        let empty = json!({"metadata": {"name": "data", "namespace": "default"}, "spec": {}});
        assert_eq!(
            messages("persistentvolumeclaims", "", &empty, None),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let mut bad = claim();
        bad["spec"]["accessModes"] = json!(["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"]);
        bad["spec"]["resources"]["requests"]["storage"] = json!("0");
        bad["spec"]["storageClassName"] = json!("Fast_Disks");
        bad["spec"]["dataSource"] = json!({"kind": "PersistentVolumeClaim", "name": "x"});
        assert_eq!(
            messages("persistentvolumeclaims", "", &bad, None),
            vec![
                "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
                "spec.storageClassName: Invalid value: \"Fast_Disks\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.dataSource: Forbidden: not supported by Baton",
            ]
        );
    }

    #[test]
    fn a_claim_spec_is_fixed_but_its_volume_name_once_and_a_bound_request_growing() {
        let old = claim();
        let mut named = claim();
        named["spec"]["volumeName"] = json!("pv1");
        assert!(messages("persistentvolumeclaims", "", &named, Some(&old)).is_empty());
        let mut renamed = named.clone();
        renamed["spec"]["volumeName"] = json!("pv2");
        let errs = messages("persistentvolumeclaims", "", &renamed, Some(&named));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"), "{errs:?}");
        let mut bound = named.clone();
        bound["status"]["phase"] = json!("Bound");
        let mut grown = bound.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(messages("persistentvolumeclaims", "", &grown, Some(&bound)).is_empty());
        let mut shrunk = bound.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("1Mi");
        assert_eq!(
            messages("persistentvolumeclaims", "", &shrunk, Some(&bound)),
            vec![
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
        let mut pending_grown = named.clone();
        pending_grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(
            messages("persistentvolumeclaims", "", &pending_grown, Some(&named)).len(),
            1,
            "an unbound claim's request is fixed"
        );
    }

    #[test]
    fn volumes_need_capacity_modes_and_one_source_baton_mounts() {
        assert!(messages("persistentvolumes", "", &volume(), None).is_empty());
        let none = json!({"metadata": {"name": "pv1"}, "spec": {}});
        assert_eq!(
            messages("persistentvolumes", "", &none, None),
            vec![
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                "spec: Required value: must specify a volume type",
            ]
        );
        let mut nfs = volume();
        nfs["spec"]["nfs"] = json!({"server": "s", "path": "/"});
        nfs["spec"]["capacity"]["cpu"] = json!("1");
        assert_eq!(
            messages("persistentvolumes", "", &nfs, None),
            vec![
                "spec.capacity: Unsupported value: map[string]string{\"cpu\":\"1\", \"storage\":\"1Gi\"}: supported values: \"storage\"",
                "spec.nfs: Forbidden: may not specify more than 1 volume type",
            ]
        );
        let mut local = volume();
        local["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("hostPath");
        local["spec"]["local"] = json!({"path": "/mnt/disk"});
        assert_eq!(
            messages("persistentvolumes", "", &local, None),
            vec!["spec.nodeAffinity: Required value: Local volume requires node affinity"]
        );
        let mut moved = volume();
        moved["spec"]["hostPath"]["path"] = json!("/elsewhere");
        assert_eq!(
            messages("persistentvolumes", "", &moved, Some(&volume())),
            vec![
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"
            ]
        );
    }

    #[test]
    fn classes_need_a_provisioner_and_keep_it() {
        let class = json!({"metadata": {"name": "fast"}, "provisioner": "example.com/disk",
                           "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"});
        assert!(messages("storageclasses", "storage.k8s.io", &class, None).is_empty());
        let bad = json!({"metadata": {"name": "fast"}, "reclaimPolicy": "Recycle",
                         "volumeBindingMode": "Later"});
        assert_eq!(
            messages("storageclasses", "storage.k8s.io", &bad, None),
            vec![
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ]
        );
        let mut changed = class.clone();
        changed["provisioner"] = json!("example.com/other");
        changed["volumeBindingMode"] = json!("WaitForFirstConsumer");
        assert_eq!(
            messages("storageclasses", "storage.k8s.io", &changed, Some(&class)),
            vec![
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
    }
}
