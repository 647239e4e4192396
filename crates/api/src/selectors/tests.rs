//! Selector tests: parsing, errors worded as Kubernetes words them, matching, rendering.

use serde_json::{Value, json};

use super::{FieldSelector, LabelSelector, SelectorError, label_selector_from_object};
use crate::registry::find;

fn labels(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn label_selectors_match() {
    let l = labels(json!({ "app": "web", "tier": "fe", "n": "5" }));
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app!=web", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("app in (web,db)", true),
        ("app notin (web)", false),
        ("tier", true),
        ("!tier", false),
        ("!legacy", true),
        ("app=web,tier=be", false),
        ("app in (web), tier notin (be)", true),
        ("n>4", true),
        ("n<4", false),
        ("app in (in,notin)", false),
        ("app=", false),
    ];
    for (s, want) in cases {
        let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(sel.matches(Some(&l)), want, "{s}");
    }
    assert!(
        LabelSelector::parse("app=web")
            .expect("parses")
            .matches(Some(&labels(json!({ "app": "web" }))))
    );
    assert!(!LabelSelector::parse("app").expect("parses").matches(None));
}

#[test]
fn label_selector_errors_are_kubernetes_messages() {
    let cases = [
        ("app=web,", "found '', expected: identifier after ','"),
        (
            "app=web web",
            "found 'web', expected: ',' or 'end of string'",
        ),
        (
            "app web",
            "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "=web",
            "found '=', expected: !, identifier, or 'end of string'",
        ),
        (
            "app in web",
            "unable to parse requirement: found 'web' expected: '('",
        ),
        (
            "app in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'",
        ),
        (
            "app=(",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "app!",
            "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(
            LabelSelector::parse(s),
            Err(SelectorError::Parse(want.into())),
            "{s}"
        );
    }
    let Err(SelectorError::Parse(msg)) = LabelSelector::parse("a@b=c") else {
        panic!("a@b=c parsed")
    };
    assert!(
        msg.starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"a@b\": name part must consist of"
        ),
        "{msg}"
    );
    let Err(SelectorError::Parse(msg)) = LabelSelector::parse("app=a@b") else {
        panic!("app=a@b parsed")
    };
    assert!(msg.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"a@b\": a valid label must be"), "{msg}");
    let Err(SelectorError::Parse(msg)) = LabelSelector::parse("n>x") else {
        panic!("n>x parsed")
    };
    assert!(
        msg.contains("for 'Gt', 'Lt' operators, the value must be an integer"),
        "{msg}"
    );
}

#[test]
fn selectors_render_canonically() {
    let cases = [
        ("tier in (b,a),app=web", "app=web,tier in (a,b)"),
        ("!legacy,app==x", "app==x,!legacy"),
        ("x notin (z,y), y", "x notin (y,z),y"),
    ];
    for (s, want) in cases {
        assert_eq!(
            LabelSelector::parse(s).expect("parses").to_string(),
            want,
            "{s}"
        );
    }
    let obj = json!({ "matchLabels": { "app": "web" }, "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["b", "a"] }, { "key": "legacy", "operator": "DoesNotExist" }] });
    assert_eq!(
        label_selector_from_object(&obj).expect("ok").to_string(),
        "app=web,!legacy,tier in (a,b)"
    );
    assert_eq!(
        label_selector_from_object(&json!({ "b": "2", "a": "1" }))
            .expect("ok")
            .to_string(),
        "a=1,b=2"
    );
    assert!(
        label_selector_from_object(&json!({}))
            .expect("ok")
            .is_empty()
    );
    assert_eq!(
        label_selector_from_object(
            &json!({ "matchExpressions": [{ "key": "a", "operator": "Foo" }] })
        ),
        Err(SelectorError::Parse(
            "\"Foo\" is not a valid label selector operator".into()
        ))
    );
}

#[test]
fn field_selectors() {
    let pods = find("", "v1", "pods").expect("pods");
    let pod = json!({ "metadata": { "name": "p", "namespace": "default" }, "spec": { "nodeName": "n1" }, "status": { "phase": "Running" } });
    let cases = [
        ("", true),
        ("metadata.name=p", true),
        ("metadata.name==p", true),
        ("metadata.name!=p", false),
        ("spec.nodeName=n1,status.phase=Running", true),
        ("status.phase!=Running", false),
        ("spec.nodeName=", false),
        ("spec.hostNetwork=false", true),
        ("status.podIP=", true),
    ];
    for (s, want) in cases {
        let sel = FieldSelector::parse(pods, s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(sel.matches(pods, &pod), want, "{s}");
    }
    let deploy = find("apps", "v1", "deployments").expect("deployments");
    assert_eq!(
        FieldSelector::parse(deploy, "status.replicas=1"),
        Err(SelectorError::Parse(
            "field label not supported: status.replicas".into()
        ))
    );
    assert_eq!(
        FieldSelector::parse(pods, "metadata.name"),
        Err(SelectorError::Parse(
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'".into()
        ))
    );
    let events = find("events.k8s.io", "v1", "events").expect("events");
    let ev = json!({ "involvedObject": { "kind": "Pod", "name": "p" }, "source": { "component": "kubelet" }, "type": "Normal" });
    let sel = FieldSelector::parse(events, "involvedObject.kind=Pod,source=kubelet,type=Normal")
        .expect("ok");
    assert!(sel.matches(events, &ev));
    let rs = find("apps", "v1", "replicasets").expect("rs");
    assert!(
        FieldSelector::parse(rs, "status.replicas=0")
            .expect("ok")
            .matches(rs, &json!({}))
    );
    let nodes = find("", "v1", "nodes").expect("nodes");
    assert!(
        FieldSelector::parse(nodes, "spec.unschedulable=false")
            .expect("ok")
            .matches(nodes, &json!({ "spec": {} }))
    );
}

#[test]
fn field_selectors_take_any_utf8() {
    // Byte offsets inside a character used to panic the request (issue 13).
    let pods = find("", "v1", "pods").expect("pods");
    let pod = json!({ "metadata": { "name": "é€", "namespace": "default" } });
    for s in [
        "metadata.name=é€",
        "métadata.name=x",
        "é",
        "\\é=x",
        "metadata.name=\\€",
        "€!=€,é==é",
    ] {
        let _ = FieldSelector::parse(pods, s);
    }
    let sel = FieldSelector::parse(pods, "metadata.name=é€").expect("parses");
    assert!(sel.matches(pods, &pod));
    assert!(
        !FieldSelector::parse(pods, "metadata.name!=é€")
            .expect("parses")
            .matches(pods, &pod)
    );
    assert_eq!(
        FieldSelector::parse(pods, "é"),
        Err(SelectorError::Parse(
            "invalid selector: 'é'; can't understand 'é'".into()
        ))
    );
    for s in ["é=x", "a=é,ü!=b", "a in (é)", "!é"] {
        let _ = LabelSelector::parse(s);
    }
}

#[test]
fn typed_label_map_matches_like_json() {
    let sel = LabelSelector::parse("app=web,tier in (a,b),!canary").expect("parses");
    let map = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(sel.matches_map(&map(&[("app", "web"), ("tier", "a")])));
    assert!(!sel.matches_map(&map(&[("app", "web"), ("tier", "c")])));
    assert!(!sel.matches_map(&map(&[("app", "web"), ("tier", "a"), ("canary", "1")])));
    assert!(!sel.matches_map(&map(&[])));
}

/// Property tests (issue 13's fuzzing): any text given as a selector parses or fails, never
/// panics, and a parsed label selector printed and parsed again is the same selector. A
/// bounded number of cases runs in the ordinary `cargo test` (`PROPTEST_CASES` asks for more);
/// failures are saved under `proptest-regressions/`.
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::{Map, Value, json};

    use super::super::{FieldSelector, LabelSelector, label_selector_from_object};
    use crate::registry::find;

    fn config(cases: u32) -> Config {
        let mut c = Config::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            c.cases = cases;
        }
        c
    }

    /// Text made mostly of the selector grammar's tokens, so that many cases parse.
    fn selector_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            6 => "[a-z0-9]{1,6}",
            1 => "[a-z]{1,4}\\.[a-z]{1,4}/[a-z]{1,4}",
            1 => "-?[0-9]{1,20}",
            4 => prop::sample::select(&[
                "=", "==", "!=", "!", ",", " in ", " notin ", "(", ")", ">", "<", " ", "\\",
                "-", "_", ".", "/", "é", "\u{0}", "\u{202e}",
            ][..])
            .prop_map(String::from),
        ];
        prop::collection::vec(token, 0..16).prop_map(|t| t.concat())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![selector_text(), any::<String>(), "\\PC{0,40}"]
    }

    fn labels() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-z0-9]{1,3}", "[a-z0-9]{0,3}|-?[0-9]{1,3}", 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, json!(v))).collect())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::String),
            prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", "key"][..])
                .prop_map(Value::from),
        ];
        let key = prop::sample::select(
            &[
                "matchLabels",
                "matchExpressions",
                "key",
                "operator",
                "values",
                "app",
                "a.b/c",
            ][..],
        )
        .prop_map(String::from);
        leaf.prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(config(4_000))]

        #[test]
        fn label_selectors_parse_or_fail_and_print_back(s in text(), l in labels()) {
            if let Ok(sel) = LabelSelector::parse(&s) {
                let printed = sel.to_string();
                let again = LabelSelector::parse(&printed);
                prop_assert_eq!(again.as_ref().ok(), Some(&sel), "{:?} printed as {:?}", s, printed);
                let _ = sel.matches(Some(&l));
                prop_assert_eq!(sel.matches(None), sel.matches(Some(&Map::new())));
            }
        }

        #[test]
        fn label_selector_objects_convert_or_fail_and_print_back(v in json_value()) {
            if let Ok(sel) = label_selector_from_object(&v) {
                let printed = sel.to_string();
                let again = LabelSelector::parse(&printed);
                prop_assert_eq!(again.as_ref().ok(), Some(&sel), "{} printed as {:?}", v, printed);
            }
        }

        #[test]
        fn field_selectors_parse_or_fail_and_match_without_panicking(
            s in text(),
            name in text(),
            node in text(),
        ) {
            let pods = find("", "v1", "pods").expect("pods");
            let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": node}});
            if let Ok(sel) = FieldSelector::parse(pods, &s) {
                let _ = sel.matches(pods, &pod);
                let _ = sel.matches(pods, &Value::Null);
            }
        }

        /// A value escaped as `fields.EscapeValue` escapes it selects exactly that value.
        #[test]
        fn escaped_field_values_select_exactly_that_value(name in text(), other in text()) {
            let pods = find("", "v1", "pods").expect("pods");
            let escape = |v: &str| v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=");
            let pod = json!({"metadata": {"name": name}});
            let eq = FieldSelector::parse(pods, &format!("metadata.name={}", escape(&name)))
                .expect("parses");
            prop_assert!(eq.matches(pods, &pod));
            let ne = FieldSelector::parse(pods, &format!("metadata.name!={}", escape(&name)))
                .expect("parses");
            prop_assert!(!ne.matches(pods, &pod));
            let sel = FieldSelector::parse(pods, &format!("metadata.name={}", escape(&other)))
                .expect("parses");
            prop_assert_eq!(sel.matches(pods, &pod), name == other);
        }
    }
}
