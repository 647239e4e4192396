//! HorizontalPodAutoscaler (issue 12, must-holds 1 and 3) through the API: a `baton server`
//! with simulated nodes and a 1 s HPA sync period, the pods' CPU use set by their
//! `sim.baton.dev/cpu` annotation (read by the metrics API, as `kubectl top` shows it).
//!
//! Each row of the table is a target, its pods' load and an HPA; the expected replica
//! counts come from Kubernetes' documented formula, `desired = ceil(current × usage /
//! target)` over the pods that count, with the tolerance (0.1), missing and unready pods,
//! the scale-up limit, min/max and `behavior` as the reasoning beside each row says. Every
//! row's target is watched from the HPA's creation: the sequence of `spec.replicas` values
//! must be exactly the expected one, then hold for a few syncs. Then bad input: a target
//! that does not exist, has no scale subresource or an unknown kind, pods without metrics,
//! pods without requests — a condition and an Event worded as Kubernetes words them, and the
//! target's replicas untouched — and minReplicas > maxReplicas refused with a 422.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// Every request is 100m of CPU, the target utilization 50%.
const REQUEST: &str = "100m";

#[derive(Clone, Copy)]
enum Target {
    Deployment,
    /// A ReplicationController whose first `ready` pods become Ready and whose later ones
    /// never do (the template is changed to `never-ready` once they run).
    RcWithUnready {
        ready: i32,
    },
}

#[derive(Clone, Copy)]
enum Load {
    /// Every pod of the template uses this much CPU.
    Template(&'static str),
    /// Only the first `n` pods report a use (set on them); the others have no metrics.
    FirstPods(usize, &'static str),
}

struct Case {
    ns: &'static str,
    target: Target,
    replicas: i32,
    load: Load,
    min: i32,
    max: i32,
    behavior: Value,
    /// The target's `spec.replicas` values after its initial one, in order.
    expect: &'static [i32],
    /// No change before this long after the HPA's creation (a stabilization window).
    not_before: Duration,
    /// The ScalingLimited reason at the end (`None`: it depends on which pod the scale-down
    /// removed).
    limited: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let fast_down = json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
    vec![
        // Scale up within the policy: 2 pods at 100m of 100m = 100% against 50% → ratio
        // 2.0, ceil(2.0 × 2) = 4; the scale-up policy allows 1 pod per 60 s → 3 (ScaleUpLimit).
        // Then 3 pods at 100% propose ceil(2.0 × 3) = 6, but the period started at 2 pods
        // (3 less the one added within 60 s) and allows 2 + 1 = 3: it stays 3.
        Case {
            ns: "up-policy",
            target: Target::Deployment,
            replicas: 2,
            load: Load::Template("100m"),
            min: 1,
            max: 10,
            behavior: json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}),
            expect: &[3],
            not_before: Duration::ZERO,
            limited: Some("ScaleUpLimit"),
        },
        // Scale down after the window: 4 pods at 10m = 10% → ratio 0.2, ceil(0.2 × 4) = 1,
        // raised to min 2 (TooFewReplicas). The count when the HPA was first seen (4) is a
        // recommendation, so nothing happens within the 8 s scale-down window.
        Case {
            ns: "down-window",
            target: Target::Deployment,
            replicas: 4,
            load: Load::Template("10m"),
            min: 2,
            max: 10,
            behavior: json!({"scaleDown": {"stabilizationWindowSeconds": 8}}),
            expect: &[2],
            not_before: Duration::from_secs(8),
            limited: Some("TooFewReplicas"),
        },
        // Min and max, no behavior: 1 replica is below min 2 → 2 ("Current number of
        // replicas below Spec.MinReplicas"); then 2 pods at 100% → ratio 2.0, ceil(2.0 × 2)
        // = 4, within the scale-up limit max(2 × 2, 4) = 4 but above max 3 → 3
        // (TooManyReplicas), and it stays there.
        Case {
            ns: "min-max",
            target: Target::Deployment,
            replicas: 1,
            load: Load::Template("100m"),
            min: 2,
            max: 3,
            behavior: Value::Null,
            expect: &[2, 3],
            not_before: Duration::ZERO,
            limited: Some("TooManyReplicas"),
        },
        // Missing metrics on a scale-down: 3 of 4 pods at 10m (10% → ratio 0.2), the 4th
        // without metrics counts as 100% of its request: (3 × 10m + 100m) / 400m = 32% →
        // 0.64, ceil(0.64 × 4) = 3. The scale-down policy (1 pod per 600 s) then holds 3
        // (limited or not, depending on whether the pod without metrics was the one removed).
        Case {
            ns: "missing-down",
            target: Target::Deployment,
            replicas: 4,
            load: Load::FirstPods(3, "10m"),
            min: 1,
            max: 10,
            behavior: json!({"scaleDown": {"stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]}}),
            expect: &[3],
            not_before: Duration::ZERO,
            limited: None,
        },
        // Missing metrics on a scale-up: 3 of 4 pods at 100m (100% → 2.0), the 4th counts as
        // 0: 300m / 400m = 75% → 1.5, ceil(1.5 × 4) = 6. The 2 new pods have no metrics
        // either: 300m / 600m = 50% → 1.0, within the tolerance: it stays 6.
        Case {
            ns: "missing-up",
            target: Target::Deployment,
            replicas: 4,
            load: Load::FirstPods(3, "100m"),
            min: 1,
            max: 10,
            behavior: fast_down.clone(),
            expect: &[6],
            not_before: Duration::ZERO,
            limited: Some("DesiredWithinRange"),
        },
        // Unready pods on a scale-up (a ReplicationController): 2 Ready pods at 100% → 2.0,
        // the 3rd never Ready counts as 0: 200m / 300m = 66% → 1.32, ceil(1.32 × 3) = 4.
        // Then 2 Ready and 2 unready: 200m / 400m = 50% → 1.0: it stays 4.
        Case {
            ns: "unready-up",
            target: Target::RcWithUnready { ready: 2 },
            replicas: 3,
            load: Load::Template("100m"),
            min: 1,
            max: 10,
            behavior: fast_down,
            expect: &[4],
            not_before: Duration::ZERO,
            limited: Some("DesiredWithinRange"),
        },
    ]
}

fn template(load: Option<&str>, request: Option<&str>, extra: Value) -> Value {
    let mut ann = json!({});
    if let Some(cpu) = load {
        ann["sim.baton.dev/cpu"] = json!(cpu);
    }
    if let Some(m) = extra.as_object() {
        for (k, v) in m {
            ann[k] = v.clone();
        }
    }
    let resources = match request {
        Some(r) => json!({"requests": {"cpu": r}}),
        None => json!({}),
    };
    json!({
        "metadata": {"labels": {"app": "w"}, "annotations": ann},
        "spec": {"containers": [{"name": "c", "image": "example/w:1", "resources": resources}]}
    })
}

async fn namespace(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create namespace");
}

async fn create(client: &Client, ns: &str, api_version: &str, plural: &str, obj: Value) {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let ar = kube::api::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind,
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj: DynamicObject = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {plural} in {ns}: {e}"));
}

async fn deployment(client: &Client, ns: &str, replicas: i32, tmpl: Value) {
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "w"}}, "template": tmpl}});
    create(client, ns, "apps/v1", "deployments", obj).await;
}

async fn hpa(
    client: &Client,
    ns: &str,
    kind: &str,
    api_version: &str,
    name: &str,
    case: (i32, i32, Value),
) {
    let (min, max, behavior) = case;
    let mut spec = json!({
        "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
        "minReplicas": min, "maxReplicas": max,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
    });
    if !behavior.is_null() {
        spec["behavior"] = behavior;
    }
    let obj = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"}, "spec": spec});
    create(
        client,
        ns,
        "autoscaling/v2",
        "horizontalpodautoscalers",
        obj,
    )
    .await;
}

/// The target's `spec.replicas` through its scale subresource.
async fn replicas(client: &Client, ns: &str, rc: bool) -> i32 {
    let scale = if rc {
        let api: Api<k8s_openapi::api::core::v1::ReplicationController> =
            Api::namespaced(client.clone(), ns);
        api.get_scale("w").await
    } else {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), ns);
        api.get_scale("w").await
    };
    scale
        .expect("scale")
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(-1)
}

async fn running_pods(client: &Client, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn wait_running(client: &Client, ns: &str, n: usize) -> Vec<Pod> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = running_pods(client, ns).await;
        if pods.len() == n {
            return pods;
        }
        assert!(
            Instant::now() < deadline,
            "{ns}: {} of {n} pods running",
            pods.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn annotate(client: &Client, ns: &str, pod: &str, key: &str, value: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate pod");
}

async fn get_hpa(client: &Client, ns: &str) -> HorizontalPodAutoscaler {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    api.get("h").await.expect("hpa")
}

fn condition(h: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String, String)> {
    h.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn events(client: &Client, ns: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().fields("involvedObject.name=h"))
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect()
}

/// Sets up one row up to the HPA's creation; returns when that was.
async fn set_up(client: &Client, c: &Case) -> Instant {
    namespace(client, c.ns).await;
    match c.target {
        Target::Deployment => {
            let load = match c.load {
                Load::Template(cpu) => Some(cpu),
                Load::FirstPods(..) => None,
            };
            deployment(
                client,
                c.ns,
                c.replicas,
                template(load, Some(REQUEST), json!({})),
            )
            .await;
            let pods = wait_running(client, c.ns, c.replicas as usize).await;
            if let Load::FirstPods(n, cpu) = c.load {
                for p in pods.iter().take(n) {
                    annotate(client, c.ns, &p.name_any(), "sim.baton.dev/cpu", cpu).await;
                }
            }
        }
        Target::RcWithUnready { ready } => {
            let Load::Template(cpu) = c.load else {
                panic!("an RC row takes a template load")
            };
            let obj = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "w"},
                "spec": {"replicas": ready, "selector": {"app": "w"}, "template": template(Some(cpu), Some(REQUEST), json!({}))}});
            create(client, c.ns, "v1", "replicationcontrollers", obj).await;
            wait_running(client, c.ns, ready as usize).await;
            let api: Api<k8s_openapi::api::core::v1::ReplicationController> =
                Api::namespaced(client.clone(), c.ns);
            let patch = json!({"spec": {"replicas": c.replicas, "template": template(Some(cpu), Some(REQUEST), json!({"sim.baton.dev/never-ready": "true"}))}});
            api.patch("w", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("patch rc");
            wait_running(client, c.ns, c.replicas as usize).await;
        }
    }
    // Past one metric window (1 s) since the pods became Ready: within the CPU
    // initialization period a pod Ready for less than that would count as unready.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (kind, api_version) = match c.target {
        Target::Deployment => ("Deployment", "apps/v1"),
        Target::RcWithUnready { .. } => ("ReplicationController", "v1"),
    };
    hpa(
        client,
        c.ns,
        kind,
        api_version,
        "w",
        (c.min, c.max, c.behavior.clone()),
    )
    .await;
    Instant::now()
}

/// Watches one row's target until its replica sequence is the expected one and has held
/// for `hold`; returns the sequence and when each change was seen.
async fn follow(
    client: &Client,
    c: &Case,
    created: Instant,
    hold: Duration,
) -> Vec<(i32, Duration)> {
    let rc = matches!(c.target, Target::RcWithUnready { .. });
    let mut seen: Vec<(i32, Duration)> = Vec::new();
    let mut last = replicas(client, c.ns, rc).await;
    let deadline = created + Duration::from_secs(40);
    let mut stable_since = Instant::now();
    loop {
        let now = replicas(client, c.ns, rc).await;
        if now != last {
            seen.push((now, created.elapsed()));
            last = now;
            stable_since = Instant::now();
        }
        let values: Vec<i32> = seen.iter().map(|s| s.0).collect();
        if values == c.expect && stable_since.elapsed() >= hold {
            return seen;
        }
        assert!(
            Instant::now() < deadline && values.len() <= c.expect.len(),
            "{}: replicas went {values:?}, expected {:?}; hpa status {:?}",
            c.ns,
            c.expect,
            get_hpa(client, c.ns).await.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hpa_follows_kubernetes_formula_and_reports_bad_input() {
    let (_server, client) = common::start_server(
        "hpa",
        &["--simulated-nodes", "2", "--hpa-sync-period", "1s"],
    )
    .await;
    let table = cases();
    // Every row runs at once, each in its namespace.
    let runs = table.iter().map(|c| {
        let client = client.clone();
        async move {
            let created = set_up(&client, c).await;
            let seen = follow(&client, c, created, Duration::from_secs(4)).await;
            (c, seen)
        }
    });
    let bad = bad_input(&client);
    let (results, ()) = tokio::join!(futures::future::join_all(runs), bad);
    for (c, seen) in results {
        let first = seen.first().map_or(Duration::ZERO, |s| s.1);
        assert!(
            first >= c.not_before,
            "{}: first change after {first:?}, before the window {:?}",
            c.ns,
            c.not_before
        );
        let h = get_hpa(&client, c.ns).await;
        let limited = condition(&h, "ScalingLimited").map(|c| c.1);
        if let Some(want) = c.limited {
            assert_eq!(limited.as_deref(), Some(want), "{}: {:?}", c.ns, h.status);
        }
        let st = h.status.clone().unwrap_or_default();
        let last = *c.expect.last().unwrap_or(&c.replicas);
        assert_eq!(st.current_replicas, Some(last), "{}", c.ns);
        assert_eq!(st.desired_replicas, last, "{}", c.ns);
        assert!(st.last_scale_time.is_some(), "{}", c.ns);
        assert_eq!(st.observed_generation, h.metadata.generation, "{}", c.ns);
        assert_eq!(
            condition(&h, "ScalingActive").map(|c| c.1).as_deref(),
            Some("ValidMetricFound"),
            "{}",
            c.ns
        );
        let evs = events(&client, c.ns).await;
        for size in c.expect {
            assert!(
                evs.iter().any(|(t, r, m)| t == "Normal"
                    && r == "SuccessfulRescale"
                    && m.starts_with(&format!("New size: {size}; reason: "))),
                "{}: no SuccessfulRescale to {size} in {evs:?}",
                c.ns
            );
        }
    }
    // The reasons as Kubernetes words them.
    let evs = events(&client, "min-max").await;
    assert!(
        evs.iter().any(
            |e| e.2 == "New size: 2; reason: Current number of replicas below Spec.MinReplicas"
        ),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| e.2 == "New size: 3; reason: cpu resource utilization (percentage of request) above target"), "{evs:?}");
    let evs = events(&client, "down-window").await;
    assert!(
        evs.iter()
            .any(|e| e.2 == "New size: 2; reason: All metrics below target"),
        "{evs:?}"
    );
    let h = get_hpa(&client, "up-policy").await;
    let cur = &h.status.and_then(|s| s.current_metrics).unwrap_or_default()[0];
    let res = cur.resource.as_ref().expect("resource metric status");
    assert_eq!(
        (res.name.as_str(), res.current.average_utilization),
        ("cpu", Some(100))
    );
    assert_eq!(
        res.current.average_value.as_ref().map(|q| q.0.as_str()),
        Some("100m")
    );
}

/// Must-hold 3: each bad HPA gets its condition and event, and its target keeps its size.
async fn bad_input(client: &Client) {
    let ns = "bad";
    namespace(client, ns).await;
    // Pods without metrics (no annotation) and pods without requests, 2 each.
    deployment(client, ns, 2, template(None, Some(REQUEST), json!({}))).await;
    let tmpl = template(Some("100m"), None, json!({}));
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "noreq"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "noreq"}},
                 "template": {"metadata": {"labels": {"app": "noreq"}, "annotations": tmpl["metadata"]["annotations"]}, "spec": tmpl["spec"]}}});
    create(client, ns, "apps/v1", "deployments", obj).await;
    let cases: [(&str, &str, &str, &str, &str, &str); 5] = [
        (
            "missing",
            "Deployment",
            "apps/v1",
            "nope",
            "FailedGetScale",
            "deployments.apps \"nope\" not found",
        ),
        (
            "noscale",
            "ConfigMap",
            "v1",
            "cm",
            "FailedGetScale",
            "could not find scale subresource for /v1, Resource=configmaps in discovery information",
        ),
        (
            "unknown",
            "Widget",
            "apps/v1",
            "w",
            "FailedGetScale",
            "no matches for kind \"Widget\" in group \"apps\"",
        ),
        (
            "nometrics",
            "Deployment",
            "apps/v1",
            "w",
            "FailedGetResourceMetric",
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API",
        ),
        (
            "norequests",
            "Deployment",
            "apps/v1",
            "noreq",
            "FailedGetResourceMetric",
            "failed to get cpu utilization: missing request for cpu in container c of Pod ",
        ),
    ];
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    create(client, ns, "v1", "configmaps", configmap).await;
    wait_running(client, ns, 4).await;
    for (name, kind, api_version, target, ..) in cases {
        let obj = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}});
        create(
            client,
            ns,
            "autoscaling/v2",
            "horizontalpodautoscalers",
            obj,
        )
        .await;
    }
    // min > max: Kubernetes' 422 and field path.
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let bad: HorizontalPodAutoscaler = serde_json::from_value(json!({"metadata": {"name": "minmax"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "minReplicas": 5, "maxReplicas": 2}}))
        .expect("hpa");
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert_eq!(
                s.message,
                "HorizontalPodAutoscaler.autoscaling \"minmax\" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
            );
        }
        other => panic!("min > max accepted: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (name, _, _, _, reason, message) in cases {
        loop {
            let h = api.get(name).await.expect("hpa");
            let evs: Vec<(String, String, String)> = {
                let ev: Api<Event> = Api::namespaced(client.clone(), ns);
                ev.list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                    .await
                    .expect("events")
                    .items
                    .into_iter()
                    .map(|e| {
                        (
                            e.type_.unwrap_or_default(),
                            e.reason.unwrap_or_default(),
                            e.message.unwrap_or_default(),
                        )
                    })
                    .collect()
            };
            let (cond_type, prefix) = if reason == "FailedGetScale" {
                (
                    "AbleToScale",
                    "the HPA controller was unable to get the target's current scale: ",
                )
            } else {
                (
                    "ScalingActive",
                    "the HPA was unable to compute the replica count: ",
                )
            };
            let cond_ok = condition(&h, cond_type).is_some_and(|(s, r, m)| {
                s == "False" && r == reason && m.starts_with(&format!("{prefix}{message}"))
            });
            let event_ok = evs
                .iter()
                .any(|(t, r, m)| t == "Warning" && r == reason && m.starts_with(message));
            let computed_ok = reason == "FailedGetScale"
                || evs.iter().any(|(_, r, m)| {
                    r == "FailedComputeMetricsReplicas"
                        && m.starts_with(&format!(
                            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {message}"
                        ))
                });
            if cond_ok && event_ok && computed_ok {
                let st = h.status.unwrap_or_default();
                assert!(st.last_scale_time.is_none(), "{name}: {st:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: status {:?}, events {evs:?}",
                h.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Nothing else changed: both targets keep 2 replicas.
    let dep: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), ns);
    for d in ["w", "noreq"] {
        let s = dep.get_scale(d).await.expect("scale");
        assert_eq!(s.spec.and_then(|s| s.replicas), Some(2), "{d}");
    }
}
