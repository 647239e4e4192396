//! A StatefulSet's revisions, as Kubernetes keeps them in ControllerRevisions
//! (`pkg/controller/history` and the statefulset controller's `getPatch`/`newRevision`).
//!
//! A revision's `data` is the patch that restores the set's template:
//! `{"spec":{"template":{"$patch":"replace", ...}}}`, the template encoded as Go encodes the
//! apps/v1 object (every field Kubernetes always writes, keys sorted, `<`, `>`, `&` escaped),
//! so that `kubectl rollout undo` — which sends this patch back and compares it byte for byte
//! with its own encoding of the set — and `kubectl rollout history --revision=N` read it as
//! they read Kubernetes'. The revision is named `<set>-<hash>`: FNV-1 (32-bit) over those
//! bytes and the decimal collision count, in Kubernetes' safe alphabet.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use crate::deployment::hash;

/// The label naming the revision's hash (`history.ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Longest prefix of a revision name (`history.ControllerRevisionName`).
const MAX_PREFIX: usize = 223;

/// `value` as Go's `encoding/json` writes a decoded `map[string]interface{}`: object keys
/// sorted, and `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go(value, &mut out);
    out
}

fn write_go(value: &Value, out: &mut String) {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_go(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    let quoted = Value::String(s.to_string()).to_string();
    for c in quoted.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

/// The set's template as the API server writes it (Go's always-written fields included).
fn template_value(template: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    baton_schema::wire::complete_definition("io.k8s.api.core.v1.PodTemplateSpec", &mut v);
    v
}

/// `getPatch`: the revision data that restores `set`'s template.
pub fn patch(set: &StatefulSet) -> Value {
    let template = set.spec.template.clone();
    let mut t = template_value(&template);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    let data = json!({"spec": {"template": t}});
    // With its keys in Go's order: the API server keeps a revision's data as it was written
    // and kubectl compares those bytes with its own encoding.
    serde_json::from_str(&go_json(&data)).unwrap_or(data)
}

/// FNV-1 (32-bit), Go's `hash/fnv.New32`.
fn fnv1(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(*b);
    }
    h
}

/// `HashControllerRevision`: the hash of a revision's data and the collision count.
pub fn hash_of(data: &Value, collision_count: i32) -> String {
    let mut h = fnv1(0x811c_9dc5, go_json(data).as_bytes());
    h = fnv1(h, collision_count.to_string().as_bytes());
    hash::safe_encode(&h.to_string())
}

/// `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 bytes.
pub fn name(set_name: &str, hash: &str) -> String {
    let mut prefix = set_name;
    if prefix.len() > MAX_PREFIX {
        let mut end = MAX_PREFIX;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        prefix = &prefix[..end];
    }
    format!("{prefix}-{hash}")
}

/// The data of a stored revision (`None` when it has none).
pub fn data(cr: &ControllerRevision) -> Option<&Value> {
    (!cr.data.0.is_null()).then_some(&cr.data.0)
}

/// `history.EqualRevision`: the same data (and hash labels, where both parse as numbers).
pub fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let label = |cr: &ControllerRevision| {
        cr.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .and_then(|h| h.parse::<i32>().ok())
    };
    if let (Some(x), Some(y)) = (label(a), label(b))
        && x != y
    {
        return false;
    }
    data(a).map(go_json) == data(b).map(go_json)
}

/// `history.SortControllerRevisions`: by revision, then creation time, then name.
pub fn sort(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t =
                    |cr: &ControllerRevision| cr.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).partial_cmp(&t(b)).unwrap_or(Ordering::Equal)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// `nextRevision`: one past the highest (revisions sorted), 1 for the first.
pub fn next(revisions: &[ControllerRevision]) -> i64 {
    revisions.last().map_or(1, |r| r.revision.unwrap_or(0) + 1)
}

/// The template a revision restores (`ApplyRevision`: its data replaces `spec.template`).
pub fn template(cr: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = data(cr)?.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn set(image: &str) -> StatefulSet {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .expect("template");
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            spec: StatefulSetSpec {
                template,
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn patch_is_go_encoded() {
        let p = go_json(&patch(&set("nginx:1")));
        // Keys sorted, `$patch` first among the template's, the always-written fields there.
        assert_eq!(
            p,
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1","name":"web","resources":{}}]}}}}"#
        );
        // Written in that order too (the API server returns it as written).
        assert_eq!(serde_json::to_string(&patch(&set("nginx:1"))).ok(), Some(p));
        assert_eq!(
            go_json(&json!({"a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }

    #[test]
    fn hash_and_name() {
        assert_eq!(fnv1(0x811c_9dc5, b"a"), 0x050c_5d7e);
        let a = hash_of(&patch(&set("nginx:1")), 0);
        assert_eq!(a, hash_of(&patch(&set("nginx:1")), 0));
        assert_ne!(a, hash_of(&patch(&set("nginx:2")), 0));
        assert_ne!(a, hash_of(&patch(&set("nginx:1")), 1));
        assert_eq!(name("web", &a), format!("web-{a}"));
        assert_eq!(name(&"x".repeat(300), "h").len(), 225);
    }

    #[test]
    fn template_round_trips_through_the_data() {
        let s = set("nginx:1");
        let cr = ControllerRevision {
            data: k8s_openapi::apimachinery::pkg::runtime::RawExtension(patch(&s)),
            ..Default::default()
        };
        let back = template(&cr).expect("template");
        assert_eq!(
            back.spec.expect("spec").containers[0].image.as_deref(),
            Some("nginx:1")
        );
    }
}
