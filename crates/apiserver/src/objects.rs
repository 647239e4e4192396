//! Object metadata machinery shared by every handler: system fields set on create and kept on
//! update (uid, creationTimestamp, generation), resourceVersion from store revisions,
//! generateName, and reading metadata out of untyped JSON objects.

use baton_api::clock;
use baton_api::registry::ResourceDef;
use baton_store::Revision;
use rand::Rng;
use serde_json::{Map, Value, json};

pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The object's `metadata`, created if missing (non-object metadata is replaced).
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let m = obj.as_object_mut().expect("just made an object");
    let meta = m.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("just made an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    metadata(obj)?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|s| !s.is_empty())
}

pub fn set_resource_version(obj: &mut Value, rev: Revision) {
    metadata_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
}

/// The bytes stored for an object: its JSON without `resourceVersion`, which is the store's
/// revision and is stamped on every read instead. An object larger than
/// [`MAX_OBJECT_BYTES`](crate::state::MAX_OBJECT_BYTES) is refused with 413 — every write
/// (create, update, patch, subresources) stores through here, so a patch or an expanding
/// body cannot grow one past the limit.
pub fn encode(obj: &Value) -> Result<Vec<u8>, crate::errors::ApiError> {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    let bytes =
        serde_json::to_vec(&o).map_err(|e| crate::errors::ApiError::internal(e.to_string()))?;
    if bytes.len() > crate::state::MAX_OBJECT_BYTES {
        return Err(crate::errors::ApiError::too_large(
            crate::state::MAX_OBJECT_BYTES,
        ));
    }
    Ok(bytes)
}

/// Parses a client-supplied resourceVersion ("" and absent mean none).
pub fn parse_resource_version(s: Option<&str>) -> Result<Option<Revision>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<Revision>()
            .map(Some)
            .map_err(|_| format!("invalid resource version: {v}")),
    }
}

/// `generateName` + five random characters from Kubernetes' alphabet (no vowels, no
/// look-alike digits).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Kinds whose `metadata.generation` tracks spec changes.
pub fn tracks_generation(def: &ResourceDef) -> bool {
    matches!(
        def.kind,
        "Job"
            | "CronJob"
            | "Deployment"
            | "StatefulSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "HorizontalPodAutoscaler"
            | "Ingress"
            | "Pod"
            | "DaemonSet"
            | "PodDisruptionBudget"
    )
}

/// Kinds whose `status` is written only through the `/status` subresource.
pub fn has_status_subresource(def: &ResourceDef) -> bool {
    def.has_subresource("status")
}

/// Sets the system fields of a new object (storage version): uid, creationTimestamp,
/// generation; clears what clients may not set.
pub fn prepare_for_create(def: &ResourceDef, obj: &mut Value) {
    let gen_tracked = tracks_generation(def);
    let m = metadata_mut(obj);
    m.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    m.insert(
        "creationTimestamp".into(),
        Value::String(clock::now_rfc3339()),
    );
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if gen_tracked {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    drop_empty_meta(m);
    if def.kind == "DaemonSet" {
        set_template_generation(obj, 1);
    }
    if has_status_subresource(def)
        && def.kind != "Namespace"
        && let Some(o) = obj.as_object_mut()
    {
        let status = match def.kind {
            "Pod" | "PersistentVolumeClaim" => json!({"phase": "Pending"}),
            "PersistentVolume" => {
                json!({"phase": "Pending", "lastPhaseTransitionTime": clock::now_rfc3339()})
            }
            _ => json!({}),
        };
        o.insert("status".into(), status);
    }
    if def.kind == "Job" {
        baton_api::defaults::job_generated_selector(obj);
    }
}

/// Carries the system fields of `old` into an updated object, bumps `generation` when the
/// spec changed, and keeps `status` when written through the main resource (or keeps
/// everything but `status` when written through `/status`).
pub fn prepare_for_update(def: &ResourceDef, new: &mut Value, old: &Value, status_only: bool) {
    if status_only {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let Some(o) = merged.as_object_mut() {
            match status {
                Some(s) => o.insert("status".into(), s),
                None => o.remove("status"),
            };
        }
        *new = merged;
        return;
    }
    if has_status_subresource(def)
        && let Some(o) = new.as_object_mut()
    {
        match old.get("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.remove("status"),
        };
    }
    let old_meta = metadata(old).cloned().unwrap_or_default();
    let spec_changed = differs(def, old, new, "/spec");
    let gen_tracked = tracks_generation(def);
    let m = metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generateName",
    ] {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    if gen_tracked {
        let old_gen = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let gen_value = if spec_changed { old_gen + 1 } else { old_gen };
        m.insert("generation".into(), json!(gen_value));
    } else {
        m.remove("generation");
    }
    drop_empty_meta(m);
    if def.kind == "DaemonSet" {
        let old_gen = template_generation(old);
        let changed = differs(def, old, new, "/spec/template");
        set_template_generation(new, if changed { old_gen + 1 } else { old_gen });
    }
}

/// Go's `omitempty` on ObjectMeta's maps and lists: Kubernetes decodes every write into its Go
/// struct and encodes that, so a patch that removes the last finalizer (`finalizers: []`) or
/// label stores no `finalizers` or `labels` at all.
fn drop_empty_meta(m: &mut Map<String, Value>) {
    for field in [
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ] {
        let empty = match m.get(field) {
            Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if empty {
            m.remove(field);
        }
    }
}

/// Whether the part of two objects at `pointer` differs as Kubernetes compares them: its Go
/// structs always hold their non-pointer fields, so an object stored as a client sent it
/// (without `resources: {}` or the template's `creationTimestamp: null`) equals the same object
/// read back and written again with them (a patch applies to the completed form,
/// `registry::to_wire`). Without this, the first metadata-only write of such an object — the
/// Deployment controller's revision annotation — bumped its `generation`.
fn differs(def: &ResourceDef, old: &Value, new: &Value, pointer: &str) -> bool {
    if old.pointer(pointer) == new.pointer(pointer) {
        return false;
    }
    let completed = |v: &Value| {
        let mut v = v.clone();
        baton_schema::wire::complete(def.storage_def(), &mut v);
        v
    };
    completed(old).pointer(pointer) != completed(new).pointer(pointer)
}

/// A DaemonSet's template generation (Kubernetes' `spec.templateGeneration`, kept by apps/v1
/// in an annotation): 1 on create, one more on each template change.
fn template_generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(baton_api::convert::daemonset::TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    let annotations = metadata_mut(obj)
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[baton_api::convert::daemonset::TEMPLATE_GENERATION] = json!(generation.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::registry;

    #[test]
    fn update_keeps_system_fields_and_bumps_generation_on_spec_change() {
        let def = registry::find("apps", "v1", "deployments").expect("deployments");
        let mut old =
            json!({"metadata": {"name": "a"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        prepare_for_create(def, &mut old);
        assert_eq!(old["status"], json!({}));
        old["status"] = json!({"replicas": 1});
        let mut new = json!({"metadata": {"name": "a", "uid": "forged", "labels": {"x": "y"}}, "spec": {"replicas": 1}, "status": {"replicas": 9}});
        prepare_for_update(def, &mut new, &old, false);
        assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"]);
        assert_eq!(new["metadata"]["generation"], json!(1));
        assert_eq!(new["status"], json!({"replicas": 1}));
        let mut new2 = new.clone();
        new2["spec"]["replicas"] = json!(3);
        prepare_for_update(def, &mut new2, &new, false);
        assert_eq!(new2["metadata"]["generation"], json!(2));
    }

    #[test]
    fn go_zero_fields_added_on_a_later_write_are_no_spec_change() {
        // As the seed's YAML is created: no `resources` and no template `creationTimestamp`.
        let def = registry::find("apps", "v1", "deployments").expect("deployments");
        let template = json!({"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "web", "image": "i", "ports": [{"containerPort": 80}]}]}});
        let mut old =
            json!({"metadata": {"name": "a"}, "spec": {"replicas": 1, "template": template}});
        prepare_for_create(def, &mut old);
        // A metadata-only patch applies to the completed form and stores what it gives.
        let mut new = old.clone();
        baton_schema::wire::complete(def, &mut new);
        assert_eq!(
            new.pointer("/spec/template/spec/containers/0/resources"),
            Some(&json!({}))
        );
        new["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
        prepare_for_update(def, &mut new, &old, false);
        assert_eq!(new["metadata"]["generation"], json!(1));
        // A real change still counts.
        let mut changed = new.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        prepare_for_update(def, &mut changed, &new, false);
        assert_eq!(changed["metadata"]["generation"], json!(2));
    }

    #[test]
    fn empty_metadata_lists_and_maps_are_not_stored() {
        // A Job's pod after the controller patched its tracking finalizer away.
        let def = registry::find("", "v1", "pods").expect("pods");
        let mut old = json!({"metadata": {"name": "p", "labels": {}, "finalizers": ["f"]}});
        prepare_for_create(def, &mut old);
        assert_eq!(old["metadata"].get("labels"), None);
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!([]);
        new["metadata"]["ownerReferences"] = Value::Null;
        new["metadata"]["annotations"] = json!({"a": "b"});
        prepare_for_update(def, &mut new, &old, false);
        assert_eq!(new["metadata"].get("finalizers"), None);
        assert_eq!(new["metadata"].get("ownerReferences"), None);
        assert_eq!(new["metadata"]["annotations"], json!({"a": "b"}));
    }

    #[test]
    fn status_update_changes_only_status() {
        let def = registry::find("apps", "v1", "deployments").expect("deployments");
        let old = json!({"metadata": {"name": "a", "generation": 2}, "spec": {"replicas": 1}, "status": {}});
        let mut new =
            json!({"metadata": {"name": "a"}, "spec": {"replicas": 7}, "status": {"replicas": 1}});
        prepare_for_update(def, &mut new, &old, true);
        assert_eq!(new["spec"]["replicas"], json!(1));
        assert_eq!(new["status"]["replicas"], json!(1));
        assert_eq!(new["metadata"]["generation"], json!(2));
    }

    #[test]
    fn generated_names_use_the_prefix_and_five_safe_characters() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9, "{n}");
        assert!(
            n[4..]
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
