//! Issue 14, must-hold 3: once started, the controllers work from their shared caches. A
//! `baton server` with 50 simulated nodes runs a 1,000-replica Deployment; then, between
//! two readings of the server's own request metrics (`/metrics`,
//! `apiserver_request_total`), the Deployment's image changes and the rollout completes.
//! Between the readings the controllers may watch, GET single objects and write — never
//! LIST. This test only GETs the Deployment and PATCHes it, so every LIST counted would
//! be a controller's. The counts and the rollout time are printed, never asserted on.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const REPLICAS: i32 = 1000;

/// `apiserver_request_total` summed over codes: (verb, resource) → count.
async fn request_counts(client: &Client) -> BTreeMap<(String, String), u64> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("metrics request");
    let text = client.request_text(req).await.expect("GET /metrics");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let n: u64 = value.trim().parse().expect("counter value");
        *out.entry((label("verb"), label("resource"))).or_insert(0) += n;
    }
    out
}

fn complete(d: &Deployment) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(REPLICAS)
        && s.replicas == Some(REPLICAS)
        && s.available_replicas == Some(REPLICAS)
}

/// Polls the Deployment with GETs (not a watch or a list) until its rollout completes.
async fn wait_complete(api: &Api<Deployment>, what: &str) {
    for _ in 0..2400 {
        let d = api.get("big").await.expect("get deployment");
        if complete(&d) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = api.get("big").await.expect("get deployment");
    panic!("{what}: not complete in 120 s; status {:?}", d.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_of_1000_replicas_makes_the_controllers_list_nothing() {
    let (_server, client) = common::start_server(
        "no-list",
        &["--simulated-nodes", "50", "--sim-ready-delay-ms", "0"],
    )
    .await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "big"},
        "spec": {
            "replicas": REPLICAS,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/bench:v1"}]}
            }
        }
    }))
    .expect("deployment");
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    wait_complete(&api, "creation").await;

    let before = request_counts(&client).await;
    let started = tokio::time::Instant::now();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "registry.local/bench:v2"}
    ]}}}});
    api.patch("big", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set image");
    wait_complete(&api, "rollout").await;
    let took = started.elapsed();
    let after = request_counts(&client).await;

    println!("1,000-replica rollout on 50 simulated nodes: {took:?}");
    println!("requests during the rollout (verb resource count):");
    let mut lists = Vec::new();
    for ((verb, resource), n) in &after {
        let delta = n - before.get(&(verb.clone(), resource.clone())).unwrap_or(&0);
        if delta > 0 {
            println!("  {verb:<8} {resource:<28} {delta}");
        }
        if verb == "LIST" && delta > 0 {
            lists.push(format!("{resource}: {delta}"));
        }
    }
    assert!(
        lists.is_empty(),
        "the controllers listed during the rollout: {lists:?}"
    );
    let writes: u64 = after
        .iter()
        .filter(|((verb, _), _)| matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .map(|(k, n)| n - before.get(k).unwrap_or(&0))
        .sum();
    assert!(
        writes >= u64::from(REPLICAS as u32),
        "the metrics saw the rollout's writes (a pod per replica at least): {writes}"
    );
}
