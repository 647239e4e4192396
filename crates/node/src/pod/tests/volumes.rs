//! Volumes in the pod worker on the fake machine: set up before the containers start, a
//! missing ConfigMap keeps them waiting with the kubelet's FailedMount event, a change of the
//! ConfigMap reaches the files within the refresh period, deletion unmounts and removes them.

use super::*;
use crate::host::Host;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, Volume, VolumeMount,
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
