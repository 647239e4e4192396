//! Label selectors: matching a label set against `matchLabels`/`matchExpressions` (apps/v1)
//! or a plain equality map (ReplicationController).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A selector ready to match label sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    equal: BTreeMap<String, String>,
    exprs: Vec<(String, Op, Vec<String>)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// From an apps/v1 LabelSelector. An unknown operator matches nothing.
    pub fn from_label_selector(sel: &LabelSelector) -> Selector {
        let mut s = Selector {
            equal: sel.match_labels.clone().unwrap_or_default(),
            exprs: Vec::new(),
        };
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                // Validation rejects others; match nothing rather than everything.
                _ => Op::In,
            };
            let values = if e.operator.as_str() == op_name(op) {
                e.values.clone().unwrap_or_default()
            } else {
                Vec::new()
            };
            s.exprs.push((e.key.clone(), op, values));
        }
        s
    }

    /// From an equality map (ReplicationController's selector).
    pub fn from_map(map: &BTreeMap<String, String>) -> Selector {
        Selector {
            equal: map.clone(),
            exprs: Vec::new(),
        }
    }

    /// An empty selector matches everything; controllers treat that as "selects nothing".
    pub fn is_empty(&self) -> bool {
        self.equal.is_empty() && self.exprs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.equal.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.exprs.iter().all(|(k, op, values)| match op {
                Op::In => labels.get(k).is_some_and(|v| values.contains(v)),
                Op::NotIn => labels.get(k).is_none_or(|v| !values.contains(v)),
                Op::Exists => labels.contains_key(k),
                Op::DoesNotExist => !labels.contains_key(k),
            })
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::In => "In",
        Op::NotIn => "NotIn",
        Op::Exists => "Exists",
        Op::DoesNotExist => "DoesNotExist",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = Selector::from_label_selector(&LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        });
        let cases = [
            (&[("app", "web"), ("tier", "a")][..], true),
            (&[("app", "web"), ("tier", "c")][..], false),
            (&[("app", "web")][..], false),
            (&[("app", "web"), ("tier", "b"), ("canary", "1")][..], false),
            (&[("app", "db"), ("tier", "a")][..], false),
        ];
        for (l, want) in cases {
            assert_eq!(sel.matches(&labels(l)), want, "{l:?}");
        }
    }

    #[test]
    fn unknown_operator_matches_nothing() {
        let sel = Selector::from_label_selector(&LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Near".into(),
                values: Some(vec!["x".into()]),
            }]),
        });
        assert!(!sel.matches(&labels(&[("a", "x")])));
    }
}
