//! Property tests (issue 13's fuzzing) of what a client's bytes reach first: the request
//! body decoders (JSON, YAML, protobuf) and the three patch formats. Random bytes, and
//! mutations of the committed corpus (`tests/fixtures/corpus`, `tests/fixtures/protobuf`),
//! must give an error value, never a panic; valid objects must round-trip; the size and
//! operation limits hold. Each target runs a bounded number of cases (`config`) inside the
//! ordinary `cargo test`; `PROPTEST_CASES=100000` runs them longer. A failure is saved under
//! `proptest-regressions/` (commit it) and becomes a plain test.

use std::path::PathBuf;

use http::HeaderMap;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};

use crate::patch::apply_patch;
use crate::request::{PatchType, decode_body};
use crate::state::{MAX_JSON_PATCH_OPERATIONS, MAX_OBJECT_BYTES};

/// `cases` cases, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

fn headers(content_type: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        content_type.parse().expect("a valid header value"),
    );
    h
}

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The committed corpus: every file under the two fixture directories.
fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["corpus", "protobuf"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("a fixture directory")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        paths.sort();
        for p in paths {
            out.push(std::fs::read(&p).expect("a fixture"));
        }
    }
    assert!(out.len() >= 10, "only {} corpus files", out.len());
    out
}

/// One edit of a byte string: overwrite, insert, remove, or cut it at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let n = out.len();
        match *e {
            Edit::Set(i, b) if n > 0 => out[i % n] = b,
            Edit::Insert(i, b) => out.insert(i % (n + 1), b),
            Edit::Remove(i) if n > 0 => {
                out.remove(i % n);
            }
            Edit::Truncate(i) => out.truncate(i % (n + 1)),
            _ => {}
        }
    }
    out
}

/// A decode answers an object or a client error (400 malformed, 415 protobuf it does not
/// know); never a panic and never a server error.
fn check_decode(content_type: &str, body: &[u8]) -> Result<(), TestCaseError> {
    match decode_body(&headers(content_type), body) {
        Ok(v) => prop_assert!(v.is_object()),
        Err(e) => prop_assert!(
            e.code == 400 || (e.code == 415 && content_type == PROTOBUF),
            "{content_type}: {} {}",
            e.code,
            e.message
        ),
    }
    Ok(())
}

/// Keys that the patch code and the schema give meaning to, mixed into generated documents.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "labels",
    "spec",
    "template",
    "containers",
    "env",
    "ports",
    "containerPort",
    "value",
    "volumes",
    "finalizers",
    "$patch",
    "replace",
    "delete",
    "merge",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/env",
    "$deleteFromPrimitiveList/finalizers",
    "$deleteFromPrimitiveList/args",
    "args",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

/// A JSON value of at most a few levels and a few dozen nodes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        "\\PC{0,12}".prop_map(Value::String),
        key().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

/// A subnormal number (found by `objects_round_trip_through_json_and_yaml`) reads back
/// exactly from JSON.
#[test]
fn a_subnormal_float_reads_back_exactly() {
    let v = serde_json::json!({"n": 2.74208511473298e-309});
    let json = serde_json::to_vec(&v).expect("encodes");
    assert_eq!(decode_body(&headers(JSON), &json).expect("decodes"), v);
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn random_bytes_decode_to_an_error_or_an_object(
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check_decode(JSON, &body)?;
        check_decode(YAML, &body)?;
        check_decode(PROTOBUF, &body)?;
        // Past the magic number the protobuf decoder reads the envelope itself.
        let mut pb = b"k8s\0".to_vec();
        pb.extend_from_slice(&body);
        check_decode(PROTOBUF, &pb)?;
    }

    #[test]
    fn mutated_corpus_bodies_decode_to_an_error_or_an_object(
        seed in prop::sample::select(corpus()),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let body = mutate(&seed, &edits);
        check_decode(JSON, &body)?;
        check_decode(YAML, &body)?;
        check_decode(PROTOBUF, &body)?;
    }

}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn objects_round_trip_through_json_and_yaml(v in object()) {
        // Exact, floats included: serde_json's `float_roundtrip` reads a float as Go does
        // (without it, one unit in the last place off, and more for subnormal numbers).
        let json = serde_json::to_vec(&v).expect("encodes");
        let read = decode_body(&headers(JSON), &json).expect("JSON decodes");
        prop_assert_eq!(&read, &v, "{} read as {}", v, read);
        let yaml = serde_yaml_ng::to_string(&v).expect("encodes");
        let back = decode_body(&headers(YAML), yaml.as_bytes());
        prop_assert!(back.is_ok(), "{yaml}: {:?}", back.err().map(|e| e.message));
        prop_assert_eq!(&back.expect("checked"), &v, "{}", yaml);
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Nesting within serde's limit (128) decodes; deeper nesting is a 400, never a stack
    /// overflow, in JSON, YAML flow style and YAML block style.
    #[test]
    fn nesting_is_bounded(depth in 1usize..400) {
        let json = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let yaml_flow = format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
        let mut yaml_block = String::from("a:\n");
        for i in 0..depth {
            yaml_block.push_str(&" ".repeat(i + 1));
            yaml_block.push_str("-\n");
        }
        for (ct, body) in [(JSON, json), (YAML, yaml_flow), (YAML, yaml_block)] {
            let r = decode_body(&headers(ct), body.as_bytes());
            if depth < 100 {
                prop_assert!(r.is_ok(), "{ct} depth {depth}: {:?}", r.err().map(|e| e.message));
            } else if depth > 130 {
                prop_assert_eq!(r.map(|_| ()).map_err(|e| e.code), Err(400), "{} depth {}", ct, depth);
            }
        }
    }
}

/// A ConfigMap written as Go's protobuf marshaller writes it (the `k8s\0` envelope).
mod pb {
    use prost::encoding::{WireType, encode_key, encode_varint};

    pub fn bytes(number: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(number, WireType::LengthDelimited, &mut out);
        encode_varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }

    pub fn message(number: u32, fields: &[Vec<u8>]) -> Vec<u8> {
        bytes(number, &fields.concat())
    }

    pub fn entry(number: u32, key: &str, value: &str) -> Vec<u8> {
        message(
            number,
            &[bytes(1, key.as_bytes()), bytes(2, value.as_bytes())],
        )
    }

    pub fn configmap(
        name: &str,
        labels: &[(String, String)],
        data: &[(String, String)],
    ) -> Vec<u8> {
        // Go writes the zero creationTimestamp as an empty message.
        let mut meta = vec![bytes(1, name.as_bytes()), bytes(8, &[])];
        meta.extend(labels.iter().map(|(k, v)| entry(11, k, v)));
        let mut fields = vec![message(1, &meta)];
        fields.extend(data.iter().map(|(k, v)| entry(2, k, v)));
        let mut out = b"k8s\0".to_vec();
        out.extend(message(1, &[bytes(1, b"v1"), bytes(2, b"ConfigMap")]));
        out.extend(message(2, &fields));
        out
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn protobuf_configmaps_round_trip(
        name in "[a-z0-9][a-z0-9.-]{0,20}",
        labels in prop::collection::btree_map("\\PC{1,10}", "\\PC{0,10}", 0..4),
        data in prop::collection::btree_map("\\PC{1,10}", "\\PC{0,20}", 1..5),
    ) {
        let labels: Vec<_> = labels.into_iter().collect();
        let data: Vec<_> = data.into_iter().collect();
        let body = pb::configmap(&name, &labels, &data);
        let got = decode_body(&headers(PROTOBUF), &body).expect("decodes");
        let mut meta = json!({"name": name, "creationTimestamp": null});
        if !labels.is_empty() {
            meta["labels"] = Value::Object(labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
        }
        let want = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": Value::Object(data.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
        });
        prop_assert_eq!(got, want);
    }
}

/// One JSON patch operation over a few paths that exist in generated documents and some that
/// do not (`-`, escapes, indices, the root).
fn json_patch_op() -> impl Strategy<Value = Value> {
    let path = prop_oneof![
        prop::sample::select(
            &[
                "",
                "/",
                "/metadata",
                "/metadata/labels/a",
                "/spec",
                "/spec/template/spec/containers/0",
                "/spec/template/spec/containers/-",
                "/name/0",
                "/$patch",
                "/a~1b",
                "/a~0b",
                "/~2",
                "/0",
                "/-",
                "/18446744073709551616",
            ][..]
        )
        .prop_map(String::from),
        prop::collection::vec(key(), 1..4).prop_map(|k| format!("/{}", k.join("/"))),
    ];
    let op =
        prop::sample::select(&["add", "remove", "replace", "move", "copy", "test", "nope"][..]);
    (op, path.clone(), path, json_value()).prop_map(
        |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
    )
}

fn check_patch(current: &Value, pt: PatchType, body: &[u8]) -> Result<(), TestCaseError> {
    let def = baton_api::registry::find("apps", "v1", "deployments").expect("a registered kind");
    match apply_patch(def, current, pt, body) {
        Ok(v) => {
            if pt != PatchType::Json {
                prop_assert!(v.is_object(), "{pt:?} gave {v}");
            }
        }
        Err(e) => prop_assert!(
            [400, 413, 422].contains(&e.code),
            "{pt:?}: {} {}",
            e.code,
            e.message
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn patches_of_every_type_answer_a_document_or_a_client_error(
        current in object(),
        patch in json_value(),
        ops in prop::collection::vec(json_patch_op(), 0..8),
    ) {
        let patch = serde_json::to_vec(&patch).expect("encodes");
        let ops = serde_json::to_vec(&ops).expect("encodes");
        for pt in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
            check_patch(&current, pt, &patch)?;
            check_patch(&current, pt, &ops)?;
        }
    }

}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn strategic_patches_of_a_deployment_answer_a_document_or_a_client_error(
        containers in prop::collection::vec(object(), 0..4),
        patch in object(),
        patch_containers in prop::collection::vec(object(), 0..4),
    ) {
        let current = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": ["a", "b"]},
            "spec": {"template": {"spec": {"containers": containers}}},
        });
        let body = serde_json::to_vec(&json!({
            "metadata": patch,
            "spec": {"template": {"spec": {"containers": patch_containers}}},
        }))
        .expect("encodes");
        check_patch(&current, PatchType::Strategic, &body)?;
        check_patch(&current, PatchType::Merge, &body)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Copies of the whole document double it each time: whatever the chain, the copies
    /// stop at 413 once they would copy more than the object limit.
    #[test]
    fn json_patch_copies_stay_within_the_object_limit(
        size in 1usize..100_000,
        copies in 1usize..40,
    ) {
        let current = json!({"a": "x".repeat(size)});
        let ops: Vec<Value> = (0..copies)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
            .collect();
        let body = serde_json::to_vec(&ops).expect("encodes");
        let def = baton_api::registry::find("apps", "v1", "deployments").expect("a registered kind");
        match apply_patch(def, &current, PatchType::Json, &body) {
            Ok(v) => prop_assert!(
                serde_json::to_vec(&v).expect("encodes").len() <= 2 * MAX_OBJECT_BYTES,
                "{copies} copies of {size} bytes"
            ),
            Err(e) => prop_assert_eq!(e.code, 413),
        }
    }

}

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn json_patch_operation_count_is_bounded(extra in 1usize..100) {
        let ops = vec![json!({"op": "test", "path": "/a", "value": 1}); MAX_JSON_PATCH_OPERATIONS + extra];
        let body = serde_json::to_vec(&ops).expect("encodes");
        let def = baton_api::registry::find("apps", "v1", "deployments").expect("a registered kind");
        let e = apply_patch(def, &json!({"a": 1}), PatchType::Json, &body).expect_err("too many");
        prop_assert_eq!(e.code, 413);
    }
}
