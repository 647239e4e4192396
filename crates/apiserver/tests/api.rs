//! Integration tests of the API server through real HTTPS, with the `kube` client a
//! controller uses. Each test starts its own server on a fresh data dir.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// A started server and a client for it; the server stops when this is dropped.
struct Server {
    client: kube::Client,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("a temporary dir");
    baton_apiserver::pki::ensure_data_dir(dir.path()).expect("data dir");
    let store = baton_store::EmbeddedStore::open(
        &dir.path().join("store.redb"),
        baton_store::EmbeddedOptions::default(),
    )
    .expect("store");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let cfg = baton_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        watch_limits: Default::default(),
    };
    let running = baton_apiserver::start(cfg, Arc::new(store), rx)
        .await
        .expect("server starts");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(&running.kubeconfig).expect("its kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    Server {
        client,
        _stop: stop,
        _dir: dir,
    }
}

/// One request; returns the status code and the JSON body.
async fn call(
    client: &kube::Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(serde_json::to_vec(&body).expect("JSON"))
        .expect("a request");
    let resp = client.send(req.map(Into::into)).await.expect("an answer");
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("a body")
        .to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn get(client: &kube::Client, path: &str) -> Value {
    let (code, v) = call(client, Method::GET, path, "application/json", Value::Null).await;
    assert_eq!(code, StatusCode::OK, "GET {path}: {v}");
    v
}

/// A merge patch of one label, retried by the server on conflict; it only makes writes race.
async fn noise(client: &kube::Client, path: &str, i: usize) {
    let body = json!({"metadata": {"labels": {"noise": i.to_string()}}});
    let (code, v) = call(
        client,
        Method::PATCH,
        path,
        "application/merge-patch+json",
        body,
    )
    .await;
    let _ = (code, v);
}

/// True when `v` is the Status of a write that lost every retry to concurrent writers.
fn lost_every_retry(v: &Value) -> bool {
    v["kind"] == "Status"
        && v["reason"] == "Conflict"
        && v["message"]
            .as_str()
            .is_some_and(|m| m.contains("the object has been modified"))
}

/// Concurrent writers of each kind per round.
const WRITERS: usize = 16;
/// Rounds per test (each binding round on a new pod).
const ROUNDS: usize = 6;
/// Bindings of one pod to different nodes, at once.
const BINDERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_under_conflicts_writes_or_answers_conflict() {
    let s = start_server().await;
    let c = &s.client;
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    });
    let (code, v) = call(
        c,
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        "application/json",
        deploy,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let main = "/apis/apps/v1/namespaces/default/deployments/d";
    let mut answers = Vec::new();
    for round in 0..ROUNDS {
        let rollbacks = (0..WRITERS).map(|i| {
            // Both legacy forms that serve the subresource, alternately.
            let group = if i % 2 == 0 {
                "extensions/v1beta1"
            } else {
                "apps/v1beta1"
            };
            let key = format!("test.baton.dev/r{round}-w{i}");
            async move {
                let body = json!({"kind": "DeploymentRollback", "apiVersion": group, "name": "d",
                                  "updatedAnnotations": {key.clone(): "written"},
                                  "rollbackTo": {"revision": 0}});
                let path = format!("/apis/{group}/namespaces/default/deployments/d/rollback");
                let (code, v) = call(c, Method::POST, &path, "application/json", body).await;
                (key, code, v)
            }
        });
        let noises = (0..WRITERS).map(|i| noise(c, main, i));
        let (r, _) = tokio::join!(join_all(rollbacks), join_all(noises));
        answers.extend(r);
    }
    let stored = get(c, main).await;
    let annotations = &stored["metadata"]["annotations"];
    let mut conflicts = 0;
    for (key, code, v) in &answers {
        let written = annotations.get(key).is_some();
        match *code {
            StatusCode::OK => {
                assert_eq!(v["status"], "Success", "{v}");
                assert!(written, "rollback {key} answered Success but is not stored");
            }
            StatusCode::CONFLICT => {
                assert!(lost_every_retry(v), "{v}");
                assert!(!written, "rollback {key} answered 409 but was stored");
                conflicts += 1;
            }
            other => panic!("rollback {key} answered {other}: {v}"),
        }
    }
    eprintln!("{} rollbacks, {conflicts} lost every retry", answers.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binding_under_conflicts_binds_once_or_answers_conflict() {
    let s = start_server().await;
    let c = &s.client;
    let mut conflicts = 0;
    for round in 0..ROUNDS {
        let name = format!("p{round}");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let (code, v) = call(
            c,
            Method::POST,
            "/api/v1/namespaces/default/pods",
            "application/json",
            pod,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
        let path = format!("/api/v1/namespaces/default/pods/{name}");
        // Label writes race the bindings until every binding has answered; the bindings
        // start once the noise has written, so that they meet it at every retry.
        let done = AtomicBool::new(false);
        let (written_tx, mut written_rx) = tokio::sync::watch::channel(0usize);
        let noises = (0..4 * WRITERS).map(|i| {
            let (path, done, written_tx) = (&path, &done, &written_tx);
            async move {
                while !done.load(Ordering::Relaxed) {
                    noise(c, path, i).await;
                    written_tx.send_modify(|n| *n += 1);
                }
            }
        });
        let bindings = async {
            let _ = written_rx.wait_for(|n| *n >= WRITERS).await;
            let bindings = (0..BINDERS).map(|i| {
                let node = format!("node-{i}");
                let path = format!("{path}/binding");
                let name = name.clone();
                async move {
                    let body = json!({"apiVersion": "v1", "kind": "Binding",
                                      "metadata": {"name": name},
                                      "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                    let (code, v) = call(c, Method::POST, &path, "application/json", body).await;
                    (node, code, v)
                }
            });
            let answers = join_all(bindings).await;
            done.store(true, Ordering::Relaxed);
            answers
        };
        let (answers, _) = tokio::join!(bindings, join_all(noises));
        let stored = get(c, &path).await;
        let bound = stored["spec"]["nodeName"].as_str().unwrap_or("");
        let mut succeeded = Vec::new();
        for (node, code, v) in &answers {
            match *code {
                StatusCode::CREATED => {
                    assert_eq!(v["status"], "Success", "{v}");
                    succeeded.push(node.as_str());
                }
                StatusCode::CONFLICT => {
                    assert_eq!(v["reason"], "Conflict", "{v}");
                    if lost_every_retry(v) {
                        conflicts += 1;
                    }
                }
                other => panic!("binding of {name} to {node} answered {other}: {v}"),
            }
        }
        match succeeded.as_slice() {
            [] => assert_eq!(bound, "", "{name} is bound though every binding failed"),
            [one] => assert_eq!(bound, *one, "{name}: the Success answered is not stored"),
            many => panic!("{name}: {} bindings answered Success: {many:?}", many.len()),
        }
    }
    eprintln!("{} bindings lost every retry", conflicts);
}
