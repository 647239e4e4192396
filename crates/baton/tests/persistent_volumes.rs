//! Persistent volumes on simulated nodes, through the real binary: a claim of the default
//! class is provisioned once its first pod is scheduled (on that pod's node, with no
//! directory made for a simulated node), binds, pins later pods that use it to that node by
//! the volume's node affinity (the scheduler would otherwise spread them), keeps a pod with a
//! missing claim Pending with kube-scheduler's message, and goes with its volume (reclaim
//! Delete) once no pod uses it.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn wait<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn create_pod(client: &Client, name: &str, claim: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.local/app:v1",
                                 "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

async fn node_of(client: &Client, name: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait(&format!("pod {name} running"), async || {
        let p = pods.get(name).await.ok()?;
        let phase = p.status.as_ref()?.phase.as_deref()?;
        (phase == "Running").then(|| p.spec?.node_name)?
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_provisioned_on_its_first_pods_node_and_deleted_with_its_volume() {
    let name = "pvc";
    let (_server, client) = common::start_server(
        name,
        &["--simulated-nodes", "2", "--sim-ready-delay-ms", "0"],
    )
    .await;
    let data_dir = std::env::temp_dir().join(format!("baton-{name}-{}", std::process::id()));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    claims
        .create(&PostParams::default(), &claim)
        .await
        .expect("create claim");

    // A pod naming a missing claim waits with the scheduler's message.
    create_pod(&client, "orphan", "nope").await;
    let message = wait("the orphan's PodScheduled message", async || {
        let p = pods.get("orphan").await.ok()?;
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?
            .message
    })
    .await;
    assert_eq!(
        message,
        "0/2 nodes are available: persistentvolumeclaim \"nope\" not found."
    );

    create_pod(&client, "first", "data").await;
    let node = node_of(&client, "first").await;
    let claim = claims.get("data").await.expect("claim");
    assert_eq!(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref()),
        Some("local-path")
    );
    assert_eq!(
        claim.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Bound"),
        "the pod ran before its claim was bound"
    );
    let pv_name = claim
        .spec
        .and_then(|s| s.volume_name)
        .expect("bound claim names its volume");
    let pv = volumes.get(&pv_name).await.expect("volume");
    assert_eq!(
        pv.annotations().get("local.path.provisioner/selected-node"),
        Some(&node)
    );
    let path = pv
        .spec
        .and_then(|s| s.host_path)
        .map(|h| h.path)
        .expect("hostPath");
    assert_eq!(
        path,
        data_dir
            .join("volumes")
            .join(&pv_name)
            .display()
            .to_string()
    );
    assert!(
        !data_dir.join("volumes").join(&pv_name).exists(),
        "a simulated node's volume has no directory"
    );

    // The scheduler spreads pods, but the volume's node affinity keeps them on its node.
    for second in ["second", "third"] {
        create_pod(&client, second, "data").await;
        assert_eq!(node_of(&client, second).await, node, "{second}");
    }

    // The claim stays while pods use it, then goes with its volume.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        claims.get_opt("data").await.expect("get claim").is_some(),
        "pvc-protection kept it"
    );
    for p in ["first", "second", "third", "orphan"] {
        pods.delete(p, &DeleteParams::default().grace_period(0))
            .await
            .expect("delete pod");
    }
    wait("the claim and its volume gone", async || {
        let gone = claims.get_opt("data").await.ok()?.is_none()
            && volumes.get_opt(&pv_name).await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
}
