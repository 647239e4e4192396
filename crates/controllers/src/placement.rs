//! Where a pod may run, as Kubernetes decides it (`component-helpers/scheduling/corev1`,
//! `v1helper.TolerationsTolerateTaint`): the node selector, the required node affinity
//! (label expressions and `metadata.name` fields), and taints against tolerations. Shared by
//! the scheduler and the DaemonSet controller; pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};
use kube::ResourceExt;

/// `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref() {
        None | Some("") | Some("Equal") => {
            t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        Some("Exists") => true,
        Some(_) => false,
    }
}

/// `FindMatchingUntoleratedTaint`: the first taint `filter` selects that no toleration
/// tolerates.
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// The node's taints.
pub fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// `GetRequiredNodeAffinity(pod).Match(node)`: the node selector and the required node
/// affinity's terms (any term; within one, every expression and field).
pub fn fits_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.labels();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, &node.name_any())),
    }
}

/// One `NodeSelectorTerm`; an empty term matches nothing.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement(r, Some(name)))
}

fn requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(want)) = (
                value.and_then(number),
                values.first().and_then(|s| number(s)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// The node a pod runs on or is pinned to (`GetTargetNodeName`): `spec.nodeName`, else the
/// single `metadata.name` of its required node affinity, as a DaemonSet pod carries it.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.as_str()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}),
        )
        .expect("node")
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn affinity_by_labels_and_name() {
        let n = node("a", json!({"zone": "x", "gen": "5"}), json!([]));
        assert!(fits_affinity(&spec(json!({"containers": []})), &n));
        assert!(!fits_affinity(
            &spec(json!({"containers": [], "nodeSelector": {"zone": "y"}})),
            &n
        ));
        let pinned = |name: &str| {
            spec(
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]}]}}}}),
            )
        };
        assert!(fits_affinity(&pinned("a"), &n));
        assert!(!fits_affinity(&pinned("b"), &n));
        let expr = |op: &str, v: &[&str]| {
            spec(
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": op, "values": v}]}]}}}}),
            )
        };
        assert!(fits_affinity(&expr("Gt", &["4"]), &n));
        assert!(!fits_affinity(&expr("Lt", &["4"]), &n));
        assert!(fits_affinity(&expr("NotIn", &["1"]), &n));
        assert!(!fits_affinity(&expr("DoesNotExist", &[]), &n));
        let pod: Pod = serde_json::from_value(json!({"spec": pinned("a")})).expect("pod");
        assert_eq!(target_node(&pod), Some("a"));
    }

    #[test]
    fn taints_and_tolerations() {
        let n = node(
            "a",
            json!({}),
            json!([{"key": "k", "value": "v", "effect": "NoSchedule"}]),
        );
        let tol =
            |v: serde_json::Value| -> Vec<Toleration> { serde_json::from_value(v).expect("tol") };
        let any = |_: &Taint| true;
        assert!(untolerated(taints(&n), &[], any).is_some());
        assert!(untolerated(taints(&n), &tol(json!([{"key": "k", "value": "v"}])), any).is_none());
        assert!(untolerated(taints(&n), &tol(json!([{"key": "k", "value": "w"}])), any).is_some());
        assert!(untolerated(taints(&n), &tol(json!([{"operator": "Exists"}])), any).is_none());
        assert!(
            untolerated(
                taints(&n),
                &tol(json!([{"key": "k", "operator": "Exists", "effect": "NoExecute"}])),
                any
            )
            .is_some()
        );
    }
}
