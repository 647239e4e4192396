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
//! StatefulSets and DaemonSets (issue 18) have their own sections below.

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
    check_with(case, case.bounds(), pods)
}

/// [`check`] with the (surge, unavailable) bounds given.
fn check_with(
    case: &Case,
    (surge, unavailable): (i32, i32),
    pods: &BTreeMap<String, PodView>,
) -> Option<String> {
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

/// Watches every pod of the namespace from now on (after a list), keeping each one's view.
/// Before an event is applied, `before` sees the pod (a deleted one as terminating) and the
/// pods as they were; after it, `check` sees the pods and returns a violation, if any. Returns
/// the watching task and the violations, each prefixed with `what`.
async fn watch_pods(
    pods_api: Api<Pod>,
    what: String,
    mut before: impl FnMut(&str, &PodView, &BTreeMap<String, PodView>) + Send + 'static,
    check: impl Fn(&BTreeMap<String, PodView>) -> Option<String> + Send + 'static,
) -> Watch {
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
    let (found, seen) = (violations.clone(), pods.clone());
    let watcher = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Ok(Some(ev)) = stream.try_next().await {
            let mut pods = seen.lock().expect("pods lock");
            match ev {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    let v = view(&p);
                    before(&p.name_any(), &v, &pods);
                    pods.insert(p.name_any(), v);
                }
                WatchEvent::Deleted(p) => {
                    let mut v = view(&p);
                    v.terminating = true;
                    before(&p.name_any(), &v, &pods);
                    pods.remove(&p.name_any());
                }
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => {
                    let mut found = found.lock().expect("violations lock");
                    found.push(format!("{what}: watch error {e:?}"));
                    return;
                }
            }
            if let Some(v) = check(&pods) {
                found
                    .lock()
                    .expect("violations lock")
                    .push(format!("{what}: {v}"));
            }
        }
    });
    Watch {
        watcher,
        pods,
        violations,
    }
}

/// A running [`watch_pods`]: its task, the pods as last seen, the violations so far.
struct Watch {
    watcher: tokio::task::JoinHandle<()>,
    pods: Arc<Mutex<BTreeMap<String, PodView>>>,
    violations: Arc<Mutex<Vec<String>>>,
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
    let Watch {
        watcher,
        pods,
        violations,
    } = watch_pods(
        Api::namespaced(client.clone(), &ns),
        what.clone(),
        |_, _, _| {},
        move |pods| check(&case, pods),
    )
    .await;

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

// --- DaemonSets ---------------------------------------------------------------------------
//
// The same watch over DaemonSets on 4 simulated nodes (one pod each): with maxUnavailable,
// never more than one pod per node and never fewer than `nodes - maxUnavailable` available;
// with maxSurge, never more than `nodes + maxSurge` pods and never fewer than `nodes`
// available (Kubernetes' DaemonSet surge keeps every node served); both round up, and both
// zero means one unavailable. Every rollout completes with one pod per node on the last
// version and the ControllerRevisions trimmed to `revisionHistoryLimit` old ones.

const NODES: i32 = 4;

#[derive(Clone, Copy, Debug)]
struct DsCase {
    surge: &'static str,
    unavailable: &'static str,
    history: i32,
}

impl DsCase {
    fn bounds(&self) -> (i32, i32) {
        let surge = resolve(self.surge, NODES, true);
        let unavailable = resolve(self.unavailable, NODES, true);
        match (surge, unavailable) {
            (0, 0) => (0, 1),
            (s, _) if s > 0 => (s, 0),
            (_, u) => (0, u),
        }
    }
}

/// `kubectl rollout status ds/X`'s test, with every node served by an available pod.
fn ds_complete(d: &k8s_openapi::api::apps::v1::DaemonSet) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.desired_number_scheduled == NODES
        && s.current_number_scheduled == NODES
        && s.updated_number_scheduled == Some(NODES)
        && s.number_available == Some(NODES)
}

async fn run_ds_case(client: Client, index: usize, case: DsCase) -> Vec<String> {
    use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
    let ns = format!("ds-{index}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let what = format!("daemonset case {index} {case:?}");
    let intstr = |v: &str| v.parse::<i32>().map_or_else(|_| json!(v), |n| json!(n));
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    let d: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "revisionHistoryLimit": case.history,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate":
                {"maxSurge": intstr(case.surge), "maxUnavailable": intstr(case.unavailable)}},
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "registry.local/agent:v0"}]}
            }
        }
    }))
    .expect("daemonset");
    api.create(&PostParams::default(), &d)
        .await
        .expect("create daemonset");
    let wait = |label: String| {
        let api = api.clone();
        async move {
            for _ in 0..1200 {
                let d = api.get("agent").await.expect("get daemonset");
                if ds_complete(&d) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let d = api.get("agent").await.expect("get daemonset");
            Some(format!(
                "{label}: did not complete in 60 s; status {:?}",
                d.status
            ))
        }
    };
    if let Some(v) = wait(format!("{what} create")).await {
        return vec![v];
    }
    let bounds = Case {
        replicas: NODES,
        strategy: Strategy::Rolling("0", "0"),
        min_ready: 0,
        history: case.history,
    };
    let Watch {
        watcher,
        pods,
        violations,
    } = watch_pods(
        Api::namespaced(client.clone(), &ns),
        what.clone(),
        |_, _, _| {},
        move |pods| check_with(&bounds, case.bounds(), pods),
    )
    .await;
    let mut out = Vec::new();
    for version in 1..=4 {
        let image = format!("registry.local/agent:v{version}");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": image}]}}}});
        api.patch("agent", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .expect("set image");
        if let Some(v) = wait(format!("{what} v{version}")).await {
            out.push(v);
            break;
        }
    }
    let cr_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let mut settled = false;
    for _ in 0..100 {
        let now = pods.lock().expect("pods lock").clone();
        let crs = cr_api
            .list(&ListParams::default())
            .await
            .expect("list revisions");
        let pods_ok = now.len() as i32 == NODES
            && now
                .values()
                .all(|p| p.image.ends_with(":v4") && !p.terminating);
        if pods_ok && crs.items.len() as i32 <= case.history + 1 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
    out.extend(violations.lock().expect("violations lock").iter().cloned());
    if !settled {
        let crs = cr_api
            .list(&ListParams::default())
            .await
            .expect("list revisions");
        out.push(format!(
            "{what}: did not settle: pods {:?}, {} revisions",
            pods.lock().expect("pods lock"),
            crs.items.len()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_rollouts_stay_within_surge_and_unavailable_bounds() {
    let (_server, client) = common::start_server(
        "ds-invariants",
        &["--simulated-nodes", "4", "--sim-ready-delay-ms", "150"],
    )
    .await;
    let cases = [
        ("0", "1", 1),
        ("1", "0", 2),
        ("50%", "0", 0),
        ("0", "50%", 2),
        ("0", "100%", 1),
    ];
    let runs = cases
        .iter()
        .enumerate()
        .map(|(i, &(surge, unavailable, history))| {
            run_ds_case(
                client.clone(),
                i,
                DsCase {
                    surge,
                    unavailable,
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

// --- StatefulSets -------------------------------------------------------------------------
//
// The same watch over StatefulSets: a set never has more than `replicas` pods that are not
// terminating (it replaces a pod only after the old one is gone), never fewer than
// `replicas - maxUnavailable` available (1 without `maxUnavailable`), rolls pods from the
// highest ordinal down, never touches ordinals below `partition`, and each rollout completes.

#[derive(Clone, Copy, Debug)]
struct SetCase {
    replicas: i32,
    parallel: bool,
    partition: i32,
    max_unavailable: Option<&'static str>,
    min_ready: i32,
}

impl SetCase {
    fn unavailable(&self) -> i32 {
        self.max_unavailable
            .map_or(1, |v| resolve(v, self.replicas, false).max(1))
    }
}

/// `kubectl rollout status`'s test: observed, every pod ready, and the pods from the
/// partition up at the update revision (at every ordinal, without a partition).
fn set_complete(s: &k8s_openapi::api::apps::v1::StatefulSet, case: &SetCase) -> bool {
    let Some(st) = s.status.as_ref() else {
        return false;
    };
    st.observed_generation >= s.metadata.generation
        && st.ready_replicas == Some(case.replicas)
        && st.available_replicas == Some(case.replicas)
        && st.updated_replicas.unwrap_or(0) >= case.replicas - case.partition
        && (case.partition > 0 || st.current_revision == st.update_revision)
}

async fn run_set_case(client: Client, index: usize, case: SetCase) -> Vec<String> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let ns = format!("sts-{index}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let what = format!("statefulset case {index} {case:?}");
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let mut rolling = json!({"partition": case.partition});
    if let Some(mu) = case.max_unavailable {
        rolling["maxUnavailable"] = mu.parse::<i32>().map_or_else(|_| json!(mu), |n| json!(n));
    }
    let s: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": case.replicas,
            "serviceName": "web",
            "minReadySeconds": case.min_ready,
            "podManagementPolicy": if case.parallel { "Parallel" } else { "OrderedReady" },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.local/web:v0"}]}
            }
        }
    }))
    .expect("statefulset");
    api.create(&PostParams::default(), &s)
        .await
        .expect("create statefulset");
    let wait = |label: String| {
        let api = api.clone();
        async move {
            for _ in 0..1200 {
                let s = api.get("web").await.expect("get statefulset");
                if set_complete(&s, &case) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let s = api.get("web").await.expect("get statefulset");
            Some(format!(
                "{label}: did not complete in 60 s; status {:?}",
                s.status
            ))
        }
    };
    if let Some(v) = wait(format!("{what} create")).await {
        return vec![v];
    }

    // The ordinals whose pods were deleted, in order, per version.
    let deleted: Arc<Mutex<Vec<i32>>> = Arc::default();
    let note_deleted = {
        let deleted = deleted.clone();
        move |name: &str, v: &PodView, pods: &BTreeMap<String, PodView>| {
            let was = pods.get(name).is_some_and(|p| p.terminating);
            if v.terminating && !was {
                let ordinal = name.rsplit('-').next().and_then(|o| o.parse().ok());
                deleted
                    .lock()
                    .expect("deleted lock")
                    .push(ordinal.unwrap_or(-1));
            }
        }
    };
    let as_deployment = Case {
        replicas: case.replicas,
        strategy: Strategy::Rolling("0", "0"),
        min_ready: case.min_ready,
        history: 0,
    };
    // No surge; at most `unavailable` pods not available.
    let Watch {
        watcher,
        pods,
        violations,
    } = watch_pods(
        Api::namespaced(client.clone(), &ns),
        what.clone(),
        note_deleted,
        move |pods| check_with(&as_deployment, (0, case.unavailable()), pods),
    )
    .await;

    let mut out = Vec::new();
    for version in 1..=3 {
        deleted.lock().expect("deleted lock").clear();
        let image = format!("registry.local/web:v{version}");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}});
        api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .expect("set image");
        // The status may still be the previous version's complete one: wait for the new
        // revision to be observed first.
        for _ in 0..200 {
            let s = api.get("web").await.expect("get statefulset");
            let st = s.status.clone().unwrap_or_default();
            if st.observed_generation >= s.metadata.generation
                && st.update_revision != st.current_revision
                || case.partition >= case.replicas
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(v) = wait(format!("{what} v{version}")).await {
            out.push(v);
            break;
        }
        let order = deleted.lock().expect("deleted lock").clone();
        let want: Vec<i32> = (case.partition..case.replicas).rev().collect();
        let ok = if case.parallel || case.max_unavailable.is_some() {
            let mut sorted = order.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            sorted == want
        } else {
            order == want
        };
        if !ok {
            out.push(format!(
                "{what} v{version}: deleted ordinals {order:?}, expected {want:?}"
            ));
        }
        let now = pods.lock().expect("pods lock").clone();
        for (name, p) in &now {
            let ordinal: i32 = name
                .rsplit('-')
                .next()
                .and_then(|o| o.parse().ok())
                .unwrap_or(-1);
            let want_image = if ordinal >= case.partition {
                format!("registry.local/web:v{version}")
            } else {
                "registry.local/web:v0".to_string()
            };
            if p.image != want_image && !p.terminating {
                out.push(format!("{what} v{version}: {name} runs {}", p.image));
            }
        }
    }
    watcher.abort();
    out.extend(violations.lock().expect("violations lock").iter().cloned());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rollouts_go_one_ordinal_at_a_time_within_bounds() {
    let (_server, client) = common::start_server(
        "sts-invariants",
        &["--simulated-nodes", "3", "--sim-ready-delay-ms", "100"],
    )
    .await;
    let cases = [
        (5, false, 0, None, 0),
        (5, false, 3, None, 0),
        (4, false, 0, None, 1),
        (6, true, 0, Some("2"), 0),
        (5, false, 1, Some("50%"), 0),
        (3, true, 0, None, 0),
    ];
    let runs = cases.iter().enumerate().map(
        |(i, &(replicas, parallel, partition, max_unavailable, min_ready))| {
            run_set_case(
                client.clone(),
                i,
                SetCase {
                    replicas,
                    parallel,
                    partition,
                    max_unavailable,
                    min_ready,
                },
            )
        },
    );
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
