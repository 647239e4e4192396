//! Volumes in the pod worker on the fake machine: set up before the containers start, a
//! missing ConfigMap keeps them waiting with the kubelet's FailedMount event, a change of the
//! ConfigMap reaches the files within the refresh period, deletion unmounts and removes them.

use super::*;
use crate::host::Host;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource, Volume,
    VolumeMount,
};

fn config_map(name: &str, kv: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap {
        data: Some(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    cm.metadata.name = Some(name.into());
    cm
}

/// A pod whose container mounts an in-memory emptyDir and the ConfigMap `cfg`.
fn pod_with_volumes() -> Pod {
    let mut c = container("app");
    c.volume_mounts = Some(vec![
        VolumeMount {
            name: "scratch".into(),
            mount_path: "/scratch".into(),
            ..Default::default()
        },
        VolumeMount {
            name: "cfg".into(),
            mount_path: "/cfg".into(),
            ..Default::default()
        },
    ]);
    let mut p = pod("Always", vec![c]);
    if let Some(spec) = p.spec.as_mut() {
        spec.volumes = Some(vec![
            Volume {
                name: "scratch".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "cfg".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "cfg".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]);
    }
    p
}

fn volume(name: &str) -> PathBuf {
    pod_dir().join("volumes").join(name)
}

#[tokio::test(start_paused = true)]
async fn volumes_are_ready_before_the_container_and_go_with_the_pod() {
    let h = Harness::start(FakeHost::new(), pod_with_volumes());
    lock(&h.api.config_maps).insert("cfg".into(), config_map("cfg", &[("greeting", "hello")]));
    advance(1.0).await;
    let mounted = h.host.times_of(&Call::Mount(volume("scratch")));
    let runs = h.runs("app");
    assert_eq!((mounted.len(), runs.len()), (1, 1), "one tmpfs, one start");
    assert!(mounted[0] <= runs[0]);
    assert_eq!(
        h.host.file(&volume("cfg").join("greeting")).as_deref(),
        Some(&b"hello"[..])
    );
    // The ConfigMap changes: its file follows within the refresh period.
    lock(&h.api.config_maps).insert("cfg".into(), config_map("cfg", &[("greeting", "bonjour")]));
    advance(crate::volume::REFRESH.as_secs_f64() + 0.5).await;
    assert_eq!(
        h.host.file(&volume("cfg").join("greeting")).as_deref(),
        Some(&b"bonjour"[..])
    );
    assert_eq!(
        h.runs("app").len(),
        1,
        "an update does not restart the container"
    );
    // Deleted: the tmpfs is unmounted and every file of the pod removed.
    h.delete(0);
    let h = h.finished().await;
    assert_eq!(h.host.times_of(&Call::Unmount(volume("scratch"))).len(), 1);
    assert!(!h.host.is_mounted(&volume("scratch")).await);
    assert!(!h.host.has_files_under(&pod_dir()));
}

#[tokio::test(start_paused = true)]
async fn a_missing_config_map_keeps_the_container_creating_until_it_exists() {
    let h = Harness::start(FakeHost::new(), pod_with_volumes());
    advance(10.0).await;
    assert!(h.runs("app").is_empty(), "started without its volume");
    assert_eq!(
        h.container_status("app")["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    let events = h.events("FailedMount");
    assert_eq!(
        events.first().map(String::as_str),
        Some("MountVolume.SetUp failed for volume \"cfg\" : configmap \"cfg\" not found")
    );
    assert_eq!(
        events.len(),
        1,
        "the same failure is not recorded again at once"
    );
    lock(&h.api.config_maps).insert("cfg".into(), config_map("cfg", &[("k", "v")]));
    advance(3.0).await;
    assert_eq!(h.runs("app").len(), 1);
    assert!(h.container_status("app")["state"]["running"].is_object());
}

/// A pod whose container mounts the claim `data` read-only at /data.
fn pod_with_claim() -> Pod {
    let mut c = container("app");
    c.volume_mounts = Some(vec![VolumeMount {
        name: "data".into(),
        mount_path: "/data".into(),
        ..Default::default()
    }]);
    let mut p = pod("Always", vec![c]);
    if let Some(spec) = p.spec.as_mut() {
        spec.volumes = Some(vec![Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: "data".into(),
                read_only: Some(true),
            }),
            ..Default::default()
        }]);
    }
    p
}

#[tokio::test(start_paused = true)]
async fn a_claim_is_mounted_from_its_volume_once_bound() {
    let h = Harness::start(FakeHost::new(), pod_with_claim());
    advance(5.0).await;
    assert!(h.runs("app").is_empty(), "started without its claim");
    assert_eq!(
        h.events("FailedMount").first().map(String::as_str),
        Some(
            "MountVolume.SetUp failed for volume \"data\" : persistentvolumeclaim \"data\" not found"
        )
    );
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"volumeName": "pvc-1"}, "status": {"phase": "Bound"},
    }))
    .expect("claim");
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "pvc-1",
                     "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
        "spec": {"hostPath": {"path": "/data/volumes/pvc-1", "type": "DirectoryOrCreate"}},
    }))
    .expect("volume");
    lock(&h.api.claims).insert("data".into(), claim);
    lock(&h.api.volumes).insert("pvc-1".into(), volume);
    advance(3.0).await;
    assert_eq!(h.runs("app").len(), 1);
    let config: Value = serde_json::from_slice(
        &h.host
            .file(&pod_dir().join("app/bundle/config.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let mount = config["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["destination"] == "/data"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(mount["source"], "/data/volumes/pvc-1");
    assert!(
        mount["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "ro")),
        "readOnly claim: {mount}"
    );
}

/// A pod whose two containers share a disk-backed emptyDir of at most 1Mi.
fn pod_with_limited_scratch(policy: &str) -> Pod {
    let mount = VolumeMount {
        name: "scratch".into(),
        mount_path: "/scratch".into(),
        ..Default::default()
    };
    let mut writer = container("writer");
    writer.volume_mounts = Some(vec![mount.clone()]);
    let mut reader = container("reader");
    reader.volume_mounts = Some(vec![mount]);
    let mut p = pod(policy, vec![writer, reader]);
    if let Some(spec) = p.spec.as_mut() {
        spec.termination_grace_period_seconds = Some(30);
        spec.volumes = Some(vec![Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    "1Mi".into(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    }
    p
}

#[tokio::test(start_paused = true)]
async fn an_empty_dir_over_its_size_limit_evicts_the_pod() {
    let h = Harness::start(FakeHost::new(), pod_with_limited_scratch("Always"));
    advance(1.0).await;
    assert_eq!((h.runs("writer").len(), h.runs("reader").len()), (1, 1));
    // 1 MiB and one byte: over the limit, seen at the next measurement (every 10 s).
    h.host
        .put_file(&volume("scratch").join("big"), &vec![0u8; (1 << 20) + 1]);
    advance(10.5).await;
    let message = "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Mi\". ";
    assert_eq!(h.events("Evicted"), vec![message]);
    let status = h.status();
    assert_eq!(
        (&status["phase"], &status["reason"], &status["message"]),
        (&json!("Failed"), &json!("Evicted"), &json!(message))
    );
    // Stopped with a second's grace (the fake's processes ignore SIGTERM), whatever the
    // pod's 30 s, and never started again.
    for name in ["writer", "reader"] {
        let term = h.host.times_of(&Call::Kill(id(name), Signal::Term));
        let kill = h.host.times_of(&Call::Kill(id(name), Signal::Kill));
        assert_eq!((term.len(), kill.len()), (1, 1), "{name}");
        assert_eq!(kill[0] - term[0], Duration::from_secs(1), "{name}");
        assert!(!h.host.running(&id(name)), "{name}");
    }
    advance(60.0).await;
    assert_eq!((h.runs("writer").len(), h.runs("reader").len()), (1, 1));
    assert_eq!(h.events("Evicted").len(), 1);
    let status = h.status();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["reason"], "Evicted");
    assert_eq!(h.container_status("writer")["ready"], false);
    assert_eq!(
        h.container_status("writer")["state"]["terminated"]["exitCode"],
        137
    );
    assert_eq!(h.condition("Ready"), "False");
    // The pod object stays for its owner: the agent does not delete it; the volume's data
    // leaves the disk once the containers are gone.
    assert!(lock(&h.api.deleted).is_empty());
    assert!(!h.host.has_files_under(&volume("scratch")));
    // An agent restarted now keeps it evicted.
    let h = h.restart().await;
    advance(15.0).await;
    assert_eq!(h.runs("writer").len(), 1);
    assert_eq!(h.status()["reason"], "Evicted");
}

#[tokio::test(start_paused = true)]
async fn an_empty_dir_within_its_size_limit_is_left_alone() {
    let h = Harness::start(FakeHost::new(), pod_with_limited_scratch("Always"));
    advance(1.0).await;
    h.host
        .put_file(&volume("scratch").join("data"), &vec![0u8; 1 << 20]);
    advance(35.0).await;
    assert!(h.events("Evicted").is_empty());
    assert_eq!(h.status()["phase"], "Running");
    assert_eq!(h.status().get("reason"), None);
    assert!(
        h.host
            .times_of(&Call::Kill(id("writer"), Signal::Term))
            .is_empty()
    );
    assert!(h.host.running(&id("writer")));
    assert!(h.host.has_files_under(&volume("scratch")));
}
