//! Rollout invariants (issue 4, must-hold 2), checked at every pod event: a `baton server`
//! with simulated nodes runs a table of Deployments through several rollouts while a watch on
//! each namespace keeps every pod's version, readiness and termination, and after each event
//!
//! - RollingUpdate: never more than `replicas + maxSurge` pods (not terminating), never fewer
//!   than `replicas - maxUnavailable` available (Ready for `minReadySeconds`);
//! - Recreate: never an old-version pod beside a new-version one;
//! - every rollout completes, ends with exactly `replicas` pods, and the ReplicaSets are
//!   trimmed to `revisionHistoryLimit` old ones.
//!
//! The bounds are computed here from the table, independently of the controller's arithmetic
//! (surge rounds up, unavailable rounds down, both zero means one unavailable).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Strategy {
    Rolling(&'static str, &'static str),
    Recreate,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    replicas: i32,
    strategy: Strategy,
    min_ready: i32,
    history: i32,
}

/// An int-or-percent against `replicas`, rounded up (surge) or down (unavailable).
fn resolve(v: &str, replicas: i32, up: bool) -> i32 {
    match v.strip_suffix('%') {
        Some(p) => {
            let p: i64 = p.parse().expect("percent");
            let scaled = p * i64::from(replicas);
            (if up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }) as i32
        }
        None => v.parse().expect("int"),
    }
}

impl Case {
    fn bounds(&self) -> (i32, i32) {
        match self.strategy {
            Strategy::Recreate => (0, self.replicas),
            Strategy::Rolling(s, u) => {
                let surge = resolve(s, self.replicas, true);
                let unavailable = resolve(u, self.replicas, false);
                if surge == 0 && unavailable == 0 {
                    (0, 1)
                } else {
                    (surge, unavailable)
                }
            }
        }
    }

    fn strategy_json(&self) -> serde_json::Value {
        let intstr = |v: &str| match v.parse::<i32>() {
            Ok(n) => json!(n),
            Err(_) => json!(v),
        };
        match self.strategy {
            Strategy::Recreate => json!({"type": "Recreate"}),
            Strategy::Rolling(s, u) => json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": intstr(s), "maxUnavailable": intstr(u)}}),
        }
    }
}

/// What the watch knows of one pod.
#[derive(Clone, Debug)]
struct PodView {
    image: String,
    terminating: bool,
    finished: bool,
    ready_since: Option<Timestamp>,
}

fn view(p: &Pod) -> PodView {
    let status = p.status.as_ref();
    let ready_since = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        });
    PodView {
        image: p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        terminating: p.metadata.deletion_timestamp.is_some(),
        finished: matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ),
        ready_since,
    }
}

/// Checks the bounds over the current pods; returns a description of a violation.
fn check(case: &Case, pods: &BTreeMap<String, PodView>) -> Option<String> {
    let (surge, unavailable) = case.bounds();
    let now = Timestamp::now();
    let live: Vec<&PodView> = pods.values().filter(|p| !p.finished).collect();
    let active = live.iter().filter(|p| !p.terminating).count() as i32;
    let available = live
        .iter()
        .filter(|p| !p.terminating)
        .filter(|p| {
            p.ready_since
                .is_some_and(|t| t + Duration::from_secs(case.min_ready as u64) <= now)
        })
        .count() as i32;
    if matches!(case.strategy, Strategy::Recreate) {
        let mut images: Vec<&str> = live.iter().map(|p| p.image.as_str()).collect();
        images.sort_unstable();
        images.dedup();
        if images.len() > 1 {
            return Some(format!("Recreate overlapped versions: {images:?}"));
        }
        return None;
    }
    if active > case.replicas + surge {
        return Some(format!(
            "{active} pods > replicas {} + maxSurge {surge}",
            case.replicas
        ));
    }
    if available < case.replicas - unavailable {
        return Some(format!(
            "{available} available < replicas {} - maxUnavailable {unavailable}",
            case.replicas
        ));
    }
    None
}

/// Whether the deployment's status says its rollout is complete (as `rollout status` reads it).
fn complete(d: &Deployment, replicas: i32) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(replicas)
        && s.replicas == Some(replicas)
        && s.available_replicas == Some(replicas)
}

async fn wait_complete(api: &Api<Deployment>, name: &str, replicas: i32, what: &str) {
    for _ in 0..1200 {
        let d = api.get(name).await.expect("get deployment");
        if complete(&d, replicas) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = api.get(name).await.expect("get deployment");
    panic!(
        "{what}: rollout did not complete in 60 s; status {:?}",
        d.status
    );
}

async fn run_case(client: Client, index: usize, case: Case) -> Vec<String> {
    let ns = format!("inv-{index}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": case.replicas,
            "minReadySeconds": case.min_ready,
            "revisionHistoryLimit": case.history,
            "strategy": case.strategy_json(),
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.local/web:v0"}]}
            }
        }
    }))
    .expect("deployment");
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    let what = format!("case {index} {case:?}");
    wait_complete(&api, "web", case.replicas, &what).await;

    // Watch every pod of the namespace from here on, checking after each event.
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let listed = pods_api
        .list(&ListParams::default())
        .await
        .expect("list pods");
    let pods: Arc<Mutex<BTreeMap<String, PodView>>> = Arc::new(Mutex::new(
        listed
            .items
            .iter()
            .map(|p| (p.name_any(), view(p)))
            .collect(),
    ));
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let rv = listed.metadata.resource_version.unwrap_or_default();
    let stream = pods_api
        .watch(&WatchParams::default().timeout(290), &rv)
        .await
        .expect("watch pods");
    let watcher = {
        let (pods, violations, what) = (pods.clone(), violations.clone(), what.clone());
        tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                let mut pods = pods.lock().expect("pods lock");
                match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        pods.insert(p.name_any(), view(&p));
                    }
                    WatchEvent::Deleted(p) => {
                        pods.remove(&p.name_any());
                    }
                    WatchEvent::Bookmark(_) => continue,
                    WatchEvent::Error(e) => {
                        violations
                            .lock()
                            .expect("violations lock")
                            .push(format!("{what}: watch error {e:?}"));
                        return;
                    }
                }
                if let Some(v) = check(&case, &pods) {
                    violations
                        .lock()
                        .expect("violations lock")
                        .push(format!("{what}: {v}"));
                }
            }
        })
    };

    for version in 1..=4 {
        let image = format!("registry.local/web:v{version}");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}});
        api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .expect("set image");
        wait_complete(&api, "web", case.replicas, &format!("{what} v{version}")).await;
    }

    // Afterwards: exactly `replicas` pods, all on the last version, and trimmed history.
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let mut settled = false;
    for _ in 0..100 {
        let now = pods.lock().expect("pods lock").clone();
        let rs = rs_api.list(&ListParams::default()).await.expect("list rs");
        let pods_ok = now.len() as i32 == case.replicas
            && now
                .values()
                .all(|p| p.image.ends_with(":v4") && !p.terminating);
        if pods_ok && rs.items.len() as i32 <= case.history + 1 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
    let mut out = violations.lock().expect("violations lock").clone();
    if !settled {
        let rs = rs_api.list(&ListParams::default()).await.expect("list rs");
        out.push(format!(
            "{what}: did not settle: pods {:?}, {} replica sets",
            pods.lock().expect("pods lock"),
            rs.items.len()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_stay_within_surge_and_unavailable_bounds() {
    let (_server, client) = common::start_server(
        "invariants",
        &["--simulated-nodes", "4", "--sim-ready-delay-ms", "150"],
    )
    .await;
    use Strategy::{Recreate, Rolling};
    let cases = [
        (3, Rolling("1", "0"), 0, 2),
        (5, Rolling("0", "1"), 0, 1),
        (10, Rolling("25%", "25%"), 0, 3),
        (7, Rolling("30%", "10%"), 0, 2),
        (5, Rolling("1%", "1%"), 0, 2),
        (6, Rolling("2", "3"), 0, 0),
        (1, Rolling("0", "1"), 0, 2),
        (2, Rolling("5", "0"), 0, 2),
        (4, Rolling("50%", "0%"), 1, 2),
        (4, Recreate, 0, 1),
        (3, Recreate, 1, 2),
    ];
    let runs = cases
        .iter()
        .enumerate()
        .map(|(i, &(replicas, strategy, min_ready, history))| {
            run_case(
                client.clone(),
                i,
                Case {
                    replicas,
                    strategy,
                    min_ready,
                    history,
                },
            )
        });
    let violations: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
