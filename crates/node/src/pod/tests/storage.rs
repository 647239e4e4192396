//! Local ephemeral storage limits in the pod worker on the fake machine: a container's
//! writable layer and logs over its `ephemeral-storage` limit, or the pod's usage over the sum
//! of its containers' limits, evict the pod as an emptyDir over its `sizeLimit` does (see
//! `volumes.rs`); a pod that ended is not measured any more.

use super::*;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A container named `name` whose `ephemeral-storage` limit is `limit`.
fn limited(name: &str, limit: &str) -> Container {
    Container {
        resources: Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                "ephemeral-storage".to_string(),
                Quantity(limit.into()),
            )])),
            ..Default::default()
        }),
        ..container(name)
    }
}

/// The writable layer of container `name`.
fn layer(name: &str) -> PathBuf {
    pod_dir().join(name).join("upper")
}

/// The log directory of container `name`.
fn logs(name: &str) -> PathBuf {
    PathBuf::from("/data/node/logs")
        .join(format!("default_web_{UID}"))
        .join(name)
}

const MI: usize = 1 << 20;

#[tokio::test(start_paused = true)]
async fn a_container_over_its_ephemeral_storage_limit_evicts_the_pod() {
    let mut p = pod(
        "Always",
        vec![limited("fill", "2Mi"), limited("idle", "8Mi")],
    );
    if let Some(spec) = p.spec.as_mut() {
        spec.termination_grace_period_seconds = Some(30);
    }
    let h = Harness::start(FakeHost::new(), p);
    advance(1.0).await;
    assert_eq!((h.runs("fill").len(), h.runs("idle").len()), (1, 1));
    // 1.5 MiB written into its filesystem and 1 MiB of logs: over 2Mi, within the pod's 10Mi.
    h.host
        .put_file(&layer("fill").join("data"), &vec![0u8; 3 * MI / 2]);
    h.host.put_file(&logs("fill").join("0.log"), &vec![0u8; MI]);
    advance(10.5).await;
    let message = "Container fill exceeded its local ephemeral storage limit \"2Mi\". ";
    assert_eq!(h.events("Evicted"), vec![message]);
    let status = h.status();
    assert_eq!(
        (&status["phase"], &status["reason"], &status["message"]),
        (&json!("Failed"), &json!("Evicted"), &json!(message))
    );
    // Stopped with the eviction's second of grace, whatever the pod's 30 s, never again.
    for name in ["fill", "idle"] {
        let term = h.host.times_of(&Call::Kill(id(name), Signal::Term));
        let kill = h.host.times_of(&Call::Kill(id(name), Signal::Kill));
        assert_eq!((term.len(), kill.len()), (1, 1), "{name}");
        assert_eq!(kill[0] - term[0], Duration::from_secs(1), "{name}");
    }
    advance(60.0).await;
    assert_eq!((h.runs("fill").len(), h.runs("idle").len()), (1, 1));
    assert_eq!(h.events("Evicted").len(), 1);
    assert_eq!(h.status()["reason"], "Evicted");
    // The writable layer leaves the disk once the containers are gone; the logs stay for
    // `kubectl logs`, and the pod object for its owner.
    assert!(!h.host.has_files_under(&layer("fill")));
    assert!(h.host.has_files_under(&logs("fill")));
    let rootfs = pod_dir().join("fill").join("bundle").join("rootfs");
    assert_eq!(h.host.times_of(&Call::Unmount(rootfs)).len(), 1);
    assert!(lock(&h.api.deleted).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_pod_over_the_sum_of_its_containers_limits_is_evicted() {
    // Neither container is over its own 1Mi, together they are over the pod's 2Mi; the
    // container without a limit counts too.
    let p = pod(
        "Always",
        vec![limited("a", "1Mi"), limited("b", "1Mi"), container("c")],
    );
    let h = Harness::start(FakeHost::new(), p);
    advance(1.0).await;
    h.host.put_file(&layer("a").join("data"), &vec![0u8; MI]);
    h.host
        .put_file(&logs("b").join("0.log"), &vec![0u8; MI / 2]);
    advance(10.5).await;
    assert!(h.events("Evicted").is_empty(), "1.5 MiB is within 2Mi");
    h.host
        .put_file(&layer("c").join("data"), &vec![0u8; MI / 2]);
    advance(10.0).await;
    let message = "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ";
    assert_eq!(h.events("Evicted"), vec![message]);
    assert_eq!(h.status()["phase"], "Failed");
    assert_eq!(h.status()["message"], message);
}

#[tokio::test(start_paused = true)]
async fn a_pod_within_its_limits_is_left_alone() {
    let h = Harness::start(FakeHost::new(), pod("Always", vec![limited("a", "2Mi")]));
    advance(1.0).await;
    h.host.put_file(&layer("a").join("data"), &vec![0u8; MI]);
    h.host
        .put_file(&logs("a").join("0.log"), &vec![0u8; MI / 2]);
    advance(35.0).await;
    assert!(h.events("Evicted").is_empty());
    assert_eq!(h.status()["phase"], "Running");
    assert!(h.host.running(&id("a")));
    assert!(h.host.has_files_under(&layer("a")));
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_ended_is_not_measured() {
    // As the kubelet's eviction manager looks only at active pods: a Succeeded pod stays so.
    let host = FakeHost::new();
    host.behave(
        "a",
        Behaviour {
            exit_at_start: Some(0),
            ..Default::default()
        },
    );
    let h = Harness::start(host, pod("Never", vec![limited("a", "1Mi")]));
    advance(1.0).await;
    assert_eq!(h.status()["phase"], "Succeeded");
    h.host
        .put_file(&layer("a").join("data"), &vec![0u8; 2 * MI]);
    advance(25.0).await;
    assert!(h.events("Evicted").is_empty());
    assert_eq!(h.status()["phase"], "Succeeded");
}
