//! Pure functions over ReplicationController and Pod objects: the new controller derived
//! from the old one for `--image` (name = old name + hash, deployment label on selector and
//! template), the annotations that make an update resumable, and the checks the old command
//! made before touching anything.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use md5::{Digest, Md5};

use crate::error::Error;

/// The old command's annotations (prefix `kubectl.kubernetes.io/`), kept identical so that
/// an update started by an old kubectl can be finished by the plugin and the reverse.
pub const SOURCE_ID: &str = "kubectl.kubernetes.io/update-source-id";
pub const DESIRED_REPLICAS: &str = "kubectl.kubernetes.io/desired-replicas";
pub const ORIGINAL_REPLICAS: &str = "kubectl.kubernetes.io/original-replicas";
pub const NEXT_CONTROLLER: &str = "kubectl.kubernetes.io/next-controller-id";

const UPDATE_ANNOTATIONS: [&str; 4] = [
    SOURCE_ID,
    DESIRED_REPLICAS,
    ORIGINAL_REPLICAS,
    NEXT_CONTROLLER,
];

/// The object's name ("" when unset).
pub fn name(rc: &ReplicationController) -> &str {
    rc.metadata.name.as_deref().unwrap_or("")
}

/// `spec.replicas`, 0 when unset (as kubectl's `valOrZero`).
pub fn replicas(rc: &ReplicationController) -> i32 {
    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `spec.selector`, empty when unset.
pub fn selector(rc: &ReplicationController) -> BTreeMap<String, String> {
    rc.spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// One annotation's value.
pub fn annotation<'a>(rc: &'a ReplicationController, key: &str) -> Option<&'a str> {
    rc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Sets one annotation.
pub fn set_annotation(rc: &mut ReplicationController, key: &str, value: &str) {
    rc.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

/// Removes annotations.
pub fn remove_annotations(rc: &mut ReplicationController, keys: &[&str]) {
    if let Some(a) = rc.metadata.annotations.as_mut() {
        for k in keys {
            a.remove(*k);
        }
        // As kubectl's Go objects (omitempty): no `annotations: {}` left on the controller.
        if a.is_empty() {
            rc.metadata.annotations = None;
        }
    }
}

/// `name:uid`, the update-source-id the new controller records.
pub fn source_id(rc: &ReplicationController) -> String {
    format!("{}:{}", name(rc), rc.metadata.uid.as_deref().unwrap_or(""))
}

/// A label selector in query form (`a=b,c=d`).
pub fn selector_query(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The hash kubectl gave an object: MD5 of its serialized form, in hex. The old command
/// hashed the controller as read from the server (resourceVersion included) after changing
/// the image, so repeating an identical update still yields a new name.
pub fn hash(rc: &ReplicationController) -> Result<String, Error> {
    let bytes = serde_json::to_vec(rc).map_err(|e| Error::Encode {
        what: format!("replicationcontroller {}", name(rc)),
        message: e.to_string(),
    })?;
    let digest = Md5::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The name of the controller an update goes to: the second argument, else the one the old
/// controller recorded in `next-controller-id` (a resumed update).
pub fn find_new_name(second_arg: Option<&str>, old: &ReplicationController) -> Option<String> {
    second_arg
        .map(str::to_string)
        .or_else(|| annotation(old, NEXT_CONTROLLER).map(str::to_string))
        .filter(|n| !n.is_empty())
}

/// Index of the container `--image` changes.
pub fn container_index(
    rc: &ReplicationController,
    container: Option<&str>,
) -> Result<usize, Error> {
    let containers = rc
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let index = match container {
        Some(want) => containers
            .iter()
            .position(|c| c.name == want)
            .ok_or_else(|| Error::ContainerNotFound(want.to_string()))?,
        None => 0,
    };
    if containers.len() > 1 && container.is_none() {
        return Err(Error::MultiContainer);
    }
    if containers.is_empty() {
        return Err(Error::NoContainers(name(rc).to_string()));
    }
    Ok(index)
}

/// The image of the container at `index`.
pub fn image_at(rc: &ReplicationController, index: usize) -> Option<&str> {
    rc.spec
        .as_ref()?
        .template
        .as_ref()?
        .spec
        .as_ref()?
        .containers
        .get(index)?
        .image
        .as_deref()
}

/// Builds the next controller for `--image`: a copy of `old` with the image (and pull
/// policy) changed, named `new_name` or `<old>-<hash>`, whose selector and template carry
/// `<key>=<hash>`. Metadata is reduced to what a create accepts.
pub fn next_for_image(
    old: &ReplicationController,
    image: &str,
    container: Option<&str>,
    pull_policy: Option<&str>,
    new_name: Option<&str>,
    key: &str,
) -> Result<ReplicationController, Error> {
    let index = container_index(old, container)?;
    let mut next = old.clone();
    if let Some(c) = next
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.get_mut(index))
    {
        c.image = Some(image.to_string());
        if let Some(p) = pull_policy {
            c.image_pull_policy = Some(p.to_string());
        }
    }
    let hash = hash(&next)?;
    let name = new_name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}-{hash}", name(old)));
    let mut next = for_create(&next, &name);
    remove_annotations(&mut next, &UPDATE_ANNOTATIONS);
    set_deployment_label(&mut next, key, &hash);
    Ok(next)
}

/// Puts `key=value` on the selector and the pod template's labels (not on existing pods).
pub fn set_deployment_label(rc: &mut ReplicationController, key: &str, value: &str) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    spec.selector
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
    spec.template
        .get_or_insert_with(Default::default)
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

/// A copy fit for a create under `name`: server-set metadata and status dropped.
pub fn for_create(rc: &ReplicationController, name: &str) -> ReplicationController {
    ReplicationController {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: rc.metadata.namespace.clone(),
            labels: rc.metadata.labels.clone(),
            annotations: rc.metadata.annotations.clone(),
            ..Default::default()
        },
        spec: rc.spec.clone(),
        status: None,
    }
}

/// Whether the new selector has a key of the old one with another value, which is what
/// keeps each controller's pods apart.
pub fn selectors_differ(old: &ReplicationController, new: &ReplicationController) -> bool {
    let new_sel = selector(new);
    selector(old)
        .iter()
        .any(|(k, v)| new_sel.get(k).is_some_and(|nv| nv != v))
}

/// The controller manager has seen the latest spec and runs that many pods (kubectl's
/// scaler condition: `observedGeneration` caught up and `status.replicas` equal).
pub fn synced(rc: &ReplicationController) -> bool {
    let generation = rc.metadata.generation.unwrap_or(0);
    let status = rc.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let have = status.map(|s| s.replicas).unwrap_or(0);
    observed >= generation && have == replicas(rc)
}

/// Ready and not being deleted (kubectl's "available" with minReadySeconds 0).
pub fn pod_available(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Not being deleted.
pub fn pod_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(name: &str, images: &[(&str, &str)], replicas: i32) -> ReplicationController {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": name, "namespace": "spark-cluster", "uid": "u-1", "resourceVersion": "7",
                          "annotations": {NEXT_CONTROLLER: "stale"}},
            "spec": {"replicas": replicas, "selector": {"app": "z"},
                     "template": {"metadata": {"labels": {"app": "z"}},
                                  "spec": {"containers": images.iter().map(|(n, i)| serde_json::json!({"name": n, "image": i})).collect::<Vec<_>>()}}},
            "status": {"replicas": replicas}
        }))
        .expect("valid rc")
    }

    #[test]
    fn md5_of_serialized_object() {
        // RFC 1321 test vector, through the same hex formatting.
        let d = Md5::digest(b"abc");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "900150983cd24fb0d6963f7d28e17f72");
        let h = hash(&rc("z", &[("c", "v1")], 1)).expect("hash");
        assert_eq!(h.len(), 32);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn next_controller_for_image() {
        let old = rc("zeppelin-controller", &[("zeppelin", "zeppelin:0.7.0")], 1);
        let next =
            next_for_image(&old, "zeppelin:0.7.1", None, None, None, "deployment").expect("next");
        let n = name(&next);
        let hash = n
            .strip_prefix("zeppelin-controller-")
            .expect("old name + hash");
        assert_eq!(hash.len(), 32);
        assert_eq!(
            selector(&next).get("deployment").map(String::as_str),
            Some(hash)
        );
        assert_eq!(selector(&next).get("app").map(String::as_str), Some("z"));
        assert_eq!(image_at(&next, 0), Some("zeppelin:0.7.1"));
        assert_eq!(next.metadata.uid, None);
        assert_eq!(next.metadata.resource_version, None);
        assert_eq!(annotation(&next, NEXT_CONTROLLER), None);
        assert_eq!(replicas(&next), 1);
        // The hash depends on the image, and on the resourceVersion read.
        let other =
            next_for_image(&old, "zeppelin:0.7.2", None, None, None, "deployment").expect("next");
        assert_ne!(name(&other), n);
        let mut later = old.clone();
        later.metadata.resource_version = Some("8".into());
        let again =
            next_for_image(&later, "zeppelin:0.7.1", None, None, None, "deployment").expect("next");
        assert_ne!(name(&again), n);
        let named =
            next_for_image(&old, "i", None, Some("Always"), Some("z2"), "track").expect("named");
        assert_eq!(name(&named), "z2");
        assert!(selector(&named).contains_key("track"));
    }

    #[test]
    fn container_choice() {
        let two = rc("z", &[("a", "1"), ("b", "2")], 1);
        assert!(matches!(
            container_index(&two, None),
            Err(Error::MultiContainer)
        ));
        assert_eq!(container_index(&two, Some("b")).expect("b"), 1);
        assert!(
            matches!(container_index(&two, Some("c")), Err(Error::ContainerNotFound(c)) if c == "c")
        );
        let none = rc("z", &[], 1);
        assert!(matches!(
            container_index(&none, None),
            Err(Error::NoContainers(_))
        ));
        let next = next_for_image(&two, "new", Some("b"), None, None, "deployment").expect("next");
        assert_eq!(
            (image_at(&next, 0), image_at(&next, 1)),
            (Some("1"), Some("new"))
        );
    }

    #[test]
    fn selector_difference() {
        let old = rc("z", &[("c", "1")], 1);
        let mut new = old.clone();
        assert!(!selectors_differ(&old, &new));
        set_deployment_label(&mut new, "deployment", "h");
        // A key the old selector lacks does not separate the pods.
        assert!(!selectors_differ(&old, &new));
        let mut old2 = old.clone();
        set_deployment_label(&mut old2, "deployment", "h-orig");
        assert!(selectors_differ(&old2, &new));
    }

    #[test]
    fn new_name_sources() {
        let mut old = rc("z", &[("c", "1")], 1);
        assert_eq!(find_new_name(Some("z2"), &old).as_deref(), Some("z2"));
        assert_eq!(find_new_name(None, &old).as_deref(), Some("stale"));
        remove_annotations(&mut old, &[NEXT_CONTROLLER]);
        assert_eq!(find_new_name(None, &old), None);
    }

    #[test]
    fn removing_the_last_annotation_leaves_none() {
        let mut rc = rc("z", &[("c", "1")], 1);
        set_annotation(&mut rc, "keep", "me");
        remove_annotations(&mut rc, &[NEXT_CONTROLLER, DESIRED_REPLICAS]);
        assert_eq!(annotation(&rc, "keep"), Some("me"));
        assert_eq!(rc.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
        remove_annotations(&mut rc, &["keep"]);
        // Not `annotations: {}`: an update would store the empty map.
        assert_eq!(rc.metadata.annotations, None);
        let json = serde_json::to_value(&rc.metadata).expect("encodes");
        assert!(json.get("annotations").is_none(), "{json}");
    }
}
