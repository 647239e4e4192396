//! `metrics.k8s.io/v1beta1` (what metrics-server serves, and `kubectl top` reads): NodeMetrics
//! and PodMetrics, computed on request, never stored. The Nodes and Pods come from the store;
//! the figures from each node agent's `/stats/summary` (its kubelet endpoint, as in
//! through [`crate::kubelet`]). Nodes without a kubelet endpoint or whose agent does not answer
//! are left out rather than failing the list, as metrics-server does.
//!
//! Pods on simulated nodes (annotated `sim.baton.dev/simulated: "true"`, see
//! `baton_controllers::simnode`) have no cgroups: their figures are what the pod's own
//! annotations `sim.baton.dev/cpu` and `sim.baton.dev/memory` say (quantities, the whole pod's
//! use, reported on its first container, the others at zero), measured "now" over a 1 s
//! window. A Running pod with neither annotation (or an unparsable one), and a pod that is not
//! Running, has no metrics, as a pod the kubelet has not measured yet. Simulated nodes
//! themselves have no NodeMetrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use baton_api::quantity::{Format, Quantity};
use baton_api::registry;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::kubelet::{self, Kubelet};
use crate::registry::{Selectors, decode_stored, read};
use crate::request::Query;
use crate::response;
use crate::state::AppState;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const API_VERSION: &str = "metrics.k8s.io/v1beta1";
/// The node annotation that marks a simulated node (`simnode.rs` writes it).
const SIM_NODE: &str = "sim.baton.dev/simulated";
/// A simulated pod's CPU and memory use, as quantities.
const SIM_CPU: &str = "sim.baton.dev/cpu";
const SIM_MEMORY: &str = "sim.baton.dev/memory";
/// How long one node agent may take to answer (its first summary waits a second for a rate).
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(5);

/// The group as listed in `/apis`.
pub fn group_json() -> Value {
    let gv = json!({"groupVersion": API_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [gv], "preferredVersion": gv})
}

fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

/// What a path under `/apis/metrics.k8s.io` addresses.
#[derive(Debug, PartialEq)]
enum Path {
    Group,
    Resources,
    Nodes(Option<String>),
    Pods {
        namespace: Option<String>,
        name: Option<String>,
    },
}

fn parse(path: &str) -> Option<Path> {
    let rest = path
        .trim_end_matches('/')
        .strip_prefix("/apis/metrics.k8s.io")?;
    if rest.is_empty() {
        return Some(Path::Group);
    }
    let rest = rest.strip_prefix("/v1beta1")?;
    let segs: Vec<&str> = rest.split('/').skip(1).collect();
    let own = |s: &str| Some(s.to_string());
    Some(match segs.as_slice() {
        [] => Path::Resources,
        ["nodes"] => Path::Nodes(None),
        ["nodes", name] => Path::Nodes(own(name)),
        ["pods"] => Path::Pods {
            namespace: None,
            name: None,
        },
        ["namespaces", ns, "pods"] => Path::Pods {
            namespace: own(ns),
            name: None,
        },
        ["namespaces", ns, "pods", name] => Path::Pods {
            namespace: own(ns),
            name: own(name),
        },
        _ => return None,
    })
}

/// True for paths this module answers (checked after authentication, before routing).
pub fn is_metrics_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p == "/apis/metrics.k8s.io" || p.starts_with("/apis/metrics.k8s.io/")
}

/// Answers a request under `/apis/metrics.k8s.io`.
pub async fn serve(st: Arc<AppState>, method: &Method, path: &str, q: &Query) -> Response {
    let Some(p) = parse(path) else {
        return ApiError::no_route().into_response();
    };
    if method != Method::GET {
        return ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            match p {
                Path::Nodes(_) => "nodes.metrics.k8s.io",
                _ => "pods.metrics.k8s.io",
            }
        ))
        .into_response();
    }
    let r = match p {
        Path::Group => {
            let mut g = group_json();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            Ok(g)
        }
        Path::Resources => Ok(resource_list()),
        Path::Nodes(name) => nodes(&st, name.as_deref(), q).await,
        Path::Pods { namespace, name } => pods(&st, namespace.as_deref(), name.as_deref(), q).await,
    };
    match r {
        Ok(v) => response::json(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

fn not_found(resource: &str, name: &str) -> ApiError {
    let mut e = ApiError::new(
        404,
        "NotFound",
        format!("{resource}.metrics.k8s.io \"{name}\" not found"),
    );
    e.details = Some(json!({"name": name, "group": GROUP, "kind": resource}));
    e
}

async fn list_stored(
    st: &AppState,
    def: &registry::ResourceDef,
    ns: Option<&str>,
    q: &Query,
) -> ApiResult<Vec<Value>> {
    let sel = Selectors::parse(def, q)?;
    let page = st
        .store
        .list(&def.namespace_prefix(ns), None, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut out = Vec::new();
    for kv in &page.items {
        let obj = decode_stored(kv)?;
        if sel.matches(def, &obj) {
            out.push(obj);
        }
    }
    Ok(out)
}

fn core(resource: &str) -> ApiResult<&'static registry::ResourceDef> {
    registry::find("", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} are not registered")))
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// The `/stats/summary` of one node agent, or why there is none.
async fn fetch_summary(agent: Kubelet<'_>) -> Result<Value, kubelet::KubeletError> {
    tokio::time::timeout(SUMMARY_TIMEOUT, agent.get_json("/stats/summary"))
        .await
        .unwrap_or(Err(kubelet::KubeletError::Timeout))
}

/// The summaries of the named nodes that answer, by node name.
async fn summaries(st: &AppState, nodes: &[Value]) -> HashMap<String, Value> {
    let fetches = nodes.iter().filter_map(|n| {
        let name = str_at(n, "/metadata/name")?.to_string();
        let addr = kubelet::endpoint(n)?;
        let token = st.token.as_str();
        Some(async move {
            let s = fetch_summary(Kubelet { addr, token }).await;
            if let Err(e) = &s {
                tracing::debug!(node = %name, %addr, error = %e, "no stats summary from the node agent");
            }
            (name, s.ok())
        })
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .filter_map(|(n, s)| Some((n, s?)))
        .collect()
}

/// CPU nanocores as a quantity, as metrics-server prints them (`NewScaledQuantity(n, Nano)`:
/// `123n`, `5m`).
pub fn cpu_quantity(nanocores: u64) -> String {
    Quantity::from_nanos(i128::from(nanocores), Format::DecimalSI).to_string()
}

/// Bytes as a quantity, as metrics-server prints them (`NewQuantity(b, BinarySI)`: `2Ki`,
/// `1000`).
pub fn memory_quantity(bytes: u64) -> String {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    Quantity::from_value(bytes, Format::BinarySI).to_string()
}

fn usage(stats: &Value) -> Value {
    let cpu = stats
        .pointer("/cpu/usageNanoCores")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mem = stats
        .pointer("/memory/workingSetBytes")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)})
}

fn timestamp(stats: &Value) -> Value {
    stats
        .pointer("/cpu/time")
        .or_else(|| stats.pointer("/memory/time"))
        .cloned()
        .unwrap_or_else(|| json!(baton_api::clock::now_rfc3339()))
}

fn window(summary: &Value) -> Value {
    summary.get("window").cloned().unwrap_or(json!("10s"))
}

fn metadata(obj: &Value) -> Value {
    let mut m = json!({"name": str_at(obj, "/metadata/name").unwrap_or(""), "creationTimestamp": baton_api::clock::now_rfc3339()});
    if let Some(ns) = str_at(obj, "/metadata/namespace") {
        m["namespace"] = json!(ns);
    }
    if let Some(l) = obj.pointer("/metadata/labels").filter(|l| l.is_object()) {
        m["labels"] = l.clone();
    }
    m
}

/// The NodeMetrics of a node from its summary.
pub fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let stats = summary.get("node")?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(node),
        "timestamp": timestamp(stats),
        "window": window(summary),
        "usage": usage(stats),
    }))
}

/// The PodMetrics of a pod from its node's summary (matched by uid, else namespace/name).
pub fn pod_metrics(pod: &Value, summary: &Value) -> Option<Value> {
    let uid = str_at(pod, "/metadata/uid");
    let ns = str_at(pod, "/metadata/namespace");
    let name = str_at(pod, "/metadata/name");
    let entry = summary.get("pods")?.as_array()?.iter().find(|p| {
        let r = |f: &str| p.pointer(&format!("/podRef/{f}")).and_then(Value::as_str);
        match (uid, r("uid")) {
            (Some(a), Some(b)) => a == b,
            _ => r("namespace") == ns && r("name") == name,
        }
    })?;
    let containers: Vec<Value> = entry
        .get("containers")?
        .as_array()?
        .iter()
        .map(|c| json!({"name": c.get("name").cloned().unwrap_or(json!("")), "usage": usage(c)}))
        .collect();
    let first = entry
        .get("containers")
        .and_then(|c| c.get(0))
        .cloned()
        .unwrap_or(Value::Null);
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(pod),
        "timestamp": timestamp(&first),
        "window": window(summary),
        "containers": containers,
    }))
}

fn is_simulated(node: &Value) -> bool {
    node.pointer("/metadata/annotations")
        .and_then(|a| a.get(SIM_NODE))
        .and_then(Value::as_str)
        == Some("true")
}

/// The PodMetrics of a pod on a simulated node, from its `sim.baton.dev/cpu` and
/// `sim.baton.dev/memory` annotations (see the module doc), or `None` when it reports none.
pub fn sim_pod_metrics(pod: &Value) -> Option<Value> {
    if str_at(pod, "/status/phase") != Some("Running") {
        return None;
    }
    let ann = pod.pointer("/metadata/annotations");
    let read = |key: &str| -> Option<Option<Quantity>> {
        match ann.and_then(|a| a.get(key)).and_then(Value::as_str) {
            None => Some(None),
            Some(text) => Quantity::parse(text.trim()).ok().map(Some),
        }
    };
    let (cpu, memory) = (read(SIM_CPU)?, read(SIM_MEMORY)?);
    if cpu.is_none() && memory.is_none() {
        return None;
    }
    let cpu_nanos = cpu.map_or(0, |q| q.nano_value().max(0));
    let mem_bytes = memory.map_or(0, |q| q.value().max(0));
    let cpu = cpu_quantity(u64::try_from(cpu_nanos).unwrap_or(u64::MAX));
    let mem = memory_quantity(u64::try_from(mem_bytes).unwrap_or(0));
    let containers: Vec<Value> = list_at(pod, "/spec/containers")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let usage = if i == 0 {
                json!({"cpu": cpu, "memory": mem})
            } else {
                json!({"cpu": "0", "memory": "0"})
            };
            json!({"name": c.get("name").cloned().unwrap_or(json!("")), "usage": usage})
        })
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(pod),
        "timestamp": baton_api::clock::now_rfc3339(),
        "window": "1s",
        "containers": containers,
    }))
}

fn list_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": API_VERSION,
        "metadata": {},
        "items": items,
    })
}

async fn nodes(st: &AppState, name: Option<&str>, q: &Query) -> ApiResult<Value> {
    let def = core("nodes")?;
    let nodes = match name {
        Some(n) => match read(st, def, None, n).await {
            Ok(v) => vec![v],
            Err(e) if e.code == 404 => return Err(not_found("nodemetrics", n)),
            Err(e) => return Err(e),
        },
        None => list_stored(st, def, None, q).await?,
    };
    let sums = summaries(st, &nodes).await;
    let items: Vec<Value> = nodes
        .iter()
        .filter_map(|n| node_metrics(n, sums.get(str_at(n, "/metadata/name")?)?))
        .collect();
    match name {
        Some(n) => items
            .into_iter()
            .next()
            .ok_or_else(|| not_found("nodemetrics", n)),
        None => Ok(list("NodeMetrics", items)),
    }
}

async fn pods(st: &AppState, ns: Option<&str>, name: Option<&str>, q: &Query) -> ApiResult<Value> {
    let def = core("pods")?;
    let pods = match (ns, name) {
        (Some(ns), Some(n)) => match read(st, def, Some(ns), n).await {
            Ok(v) => vec![v],
            Err(e) if e.code == 404 => return Err(not_found("podmetrics", &format!("{ns}/{n}"))),
            Err(e) => return Err(e),
        },
        _ => list_stored(st, def, ns, q).await?,
    };
    let node_names: BTreeMap<&str, ()> = pods
        .iter()
        .filter_map(|p| str_at(p, "/spec/nodeName").filter(|n| !n.is_empty()))
        .map(|n| (n, ()))
        .collect();
    let node_def = core("nodes")?;
    let mut nodes = Vec::new();
    for n in node_names.keys() {
        if let Ok(v) = read(st, node_def, None, n).await {
            nodes.push(v);
        }
    }
    let simulated: HashSet<&str> = nodes
        .iter()
        .filter(|n| is_simulated(n))
        .filter_map(|n| str_at(n, "/metadata/name"))
        .collect();
    let sums = summaries(st, &nodes).await;
    let items: Vec<Value> = pods
        .iter()
        .filter_map(|p| {
            let node = str_at(p, "/spec/nodeName")?;
            if simulated.contains(node) {
                sim_pod_metrics(p)
            } else {
                pod_metrics(p, sums.get(node)?)
            }
        })
        .collect();
    match name {
        Some(n) => items
            .into_iter()
            .next()
            .ok_or_else(|| not_found("podmetrics", &format!("{}/{n}", ns.unwrap_or_default()))),
        None => Ok(list("PodMetrics", items)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("/apis/metrics.k8s.io"), Some(Path::Group));
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/"),
            Some(Path::Resources)
        );
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/nodes/n1"),
            Some(Path::Nodes(Some("n1".into())))
        );
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/namespaces/d/pods"),
            Some(Path::Pods {
                namespace: Some("d".into()),
                name: None
            })
        );
        assert_eq!(parse("/apis/metrics.k8s.io/v1/nodes"), None);
        assert!(is_metrics_path("/apis/metrics.k8s.io/"));
        assert!(!is_metrics_path("/apis/metrics.k8s.iox"));
    }

    #[test]
    fn metrics_from_a_summary() {
        let summary = json!({
            "node": {"cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 5_000_000}, "memory": {"workingSetBytes": 2048}},
            "pods": [{"podRef": {"name": "p", "namespace": "d", "uid": "u"}, "containers": [
                {"name": "c", "cpu": {"time": "2026-01-01T00:00:01Z", "usageNanoCores": 7}, "memory": {"workingSetBytes": 1000}}
            ]}],
            "window": "1.000s",
        });
        let node = json!({"metadata": {"name": "n", "labels": {"a": "b"}}});
        let m = node_metrics(&node, &summary).expect("node metrics");
        assert_eq!(m["usage"], json!({"cpu": "5m", "memory": "2Ki"}));
        assert_eq!(m["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(m["window"], "1.000s");
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}});
        let m = pod_metrics(&pod, &summary).expect("pod metrics");
        assert_eq!(
            m["containers"],
            json!([{"name": "c", "usage": {"cpu": "7n", "memory": "1k"}}])
        );
        assert_eq!(m["timestamp"], "2026-01-01T00:00:01Z");
        let other = json!({"metadata": {"name": "p", "namespace": "d", "uid": "x"}});
        assert_eq!(pod_metrics(&other, &summary), None);
    }

    #[test]
    fn simulated_pods_report_their_annotations() {
        let pod = |ann: Value, phase: &str| {
            json!({"metadata": {"name": "p", "namespace": "d", "annotations": ann},
                   "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": phase}})
        };
        let m = sim_pod_metrics(&pod(
            json!({"sim.baton.dev/cpu": "250m", "sim.baton.dev/memory": "64Mi"}),
            "Running",
        ))
        .expect("metrics");
        assert_eq!(
            m["containers"],
            json!([{"name": "a", "usage": {"cpu": "250m", "memory": "64Mi"}},
                   {"name": "b", "usage": {"cpu": "0", "memory": "0"}}])
        );
        let m =
            sim_pod_metrics(&pod(json!({"sim.baton.dev/cpu": "1"}), "Running")).expect("cpu only");
        assert_eq!(
            m["containers"][0]["usage"],
            json!({"cpu": "1", "memory": "0"})
        );
        assert_eq!(sim_pod_metrics(&pod(json!({}), "Running")), None);
        assert_eq!(
            sim_pod_metrics(&pod(json!({"sim.baton.dev/cpu": "lots"}), "Running")),
            None
        );
        assert_eq!(
            sim_pod_metrics(&pod(json!({"sim.baton.dev/cpu": "1"}), "Pending")),
            None
        );
    }

    #[test]
    fn discovery_lists_both_resources() {
        let l = resource_list();
        assert_eq!(l["groupVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(l["resources"][0]["kind"], "NodeMetrics");
        assert_eq!(l["resources"][1]["namespaced"], true);
    }
}
