//! The `pod-template-hash`: FNV-1a (32-bit) over a stable encoding of the pod template,
//! with the deployment's collisionCount mixed in, written in Kubernetes' "safe" alphabet
//! (no vowels, so a hash never spells a word). The encoding is JSON, not Go's spew dump, so
//! values differ from Kubernetes' — the hash is opaque there too.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// Kubernetes' `SafeEncodeString` alphabet.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Drops nulls, empty objects and empty lists, recursively, so that semantically equal
/// templates encode the same way.
pub fn prune(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        v => v,
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Maps each character of `s` through the safe alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The hash label value for `template` and `collision_count`.
pub fn compute(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let value = prune(serde_json::to_value(template).unwrap_or_default());
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    let mut h = fnv1a(0x811c_9dc5, &bytes);
    if let Some(c) = collision_count {
        let mut extra = (c as u32).to_le_bytes().to_vec();
        extra.extend_from_slice(&[0, 0, 0, 0]);
        h = fnv1a(h, &extra);
    }
    safe_encode(&h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn digits_map_like_kubernetes() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let t = |img: &str| PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), img.to_string())].into()),
                ..Default::default()
            }),
            spec: None,
        };
        assert_eq!(compute(&t("a"), None), compute(&t("a"), None));
        assert_ne!(compute(&t("a"), None), compute(&t("b"), None));
        assert_ne!(compute(&t("a"), None), compute(&t("a"), Some(1)));
        assert!(
            compute(&t("a"), None)
                .chars()
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
    }

    #[test]
    fn empty_fields_do_not_change_the_hash() {
        let a: PodTemplateSpec = serde_json::from_value(serde_json::json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}})).expect("a");
        let b: PodTemplateSpec = serde_json::from_value(serde_json::json!({"metadata": {"creationTimestamp": null, "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "resources": {}}]}})).expect("b");
        assert_eq!(compute(&a, None), compute(&b, None));
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(0x811c_9dc5, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(0x811c_9dc5, b"a"), 0xe40c_292c);
    }
}
