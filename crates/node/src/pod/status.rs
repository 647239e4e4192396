//! The pod's status as the kubelet writes it (phase, conditions, container statuses), computed
//! from what the worker knows: a pure function, so the same knowledge always gives the same
//! document and the worker patches only when it changed.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{Value, json};

use super::decide::{ContainerRun, PodRun, State, init_containers, is_sidecar};

/// The status of the pod run by `run`, on a node at `node_ip`; `now` (RFC 3339) dates the
/// conditions that change in this call.
pub(crate) fn pod_status(spec: &PodSpec, run: &mut PodRun, node_ip: Ipv4Addr, now: &str) -> Value {
    let has_init = !init_containers(spec).is_empty();
    let initialized = run.initialized(spec);
    let mut statuses = Vec::new();
    let mut all_ready = !spec.containers.is_empty();
    let mut any_running = false;
    let mut all_done = !spec.containers.is_empty();
    let mut any_failed = false;
    let mut never_started = false;
    for c in &spec.containers {
        let Some(r) = run.containers.get(&c.name) else {
            all_ready = false;
            all_done = false;
            never_started = true;
            continue;
        };
        let running = r.running_pid().is_some();
        // An evicted pod's containers are stopping: none is ready any more.
        let ready = running
            && run.saved.evicted.is_none()
            && r.readiness.verdict == Some(true)
            && r.startup.verdict == Some(true);
        all_ready &= ready;
        any_running |= running;
        all_done &= r.done;
        any_failed |= r.failed();
        if r.saved.started_at.is_none() && !running {
            never_started = true;
        }
        statuses.push(container_status(c, r, ready, has_init));
    }
    let mut init_statuses = Vec::new();
    let mut sidecar_running = false;
    let mut unready_sidecars = Vec::new();
    for c in init_containers(spec) {
        let Some(r) = run.containers.get(&c.name) else {
            continue;
        };
        let ready = if is_sidecar(c) {
            let ready =
                r.is_started() && run.saved.evicted.is_none() && r.readiness.verdict == Some(true);
            sidecar_running |= r.running_pid().is_some();
            if !ready {
                unready_sidecars.push(c.name.as_str());
            }
            all_ready &= ready;
            ready
        } else {
            r.succeeded()
        };
        init_statuses.push(container_status(c, r, ready, has_init));
    }
    let phase = if run.saved.evicted.is_some() || run.init_failed(spec) {
        "Failed"
    } else if !initialized {
        "Pending"
    } else if all_done {
        if sidecar_running {
            "Running"
        } else if any_failed {
            "Failed"
        } else {
            "Succeeded"
        }
    } else if never_started && !any_running {
        "Pending"
    } else {
        "Running"
    };
    let ready = if all_ready && initialized {
        "True"
    } else {
        "False"
    };
    let incomplete = run.incomplete_init(spec);
    let initialized = if initialized || phase == "Succeeded" {
        "True"
    } else {
        "False"
    };
    let mut conditions = Vec::new();
    for (t, s) in [
        (
            "PodReadyToStartContainers",
            if run.network_ready { "True" } else { "False" },
        ),
        ("Initialized", initialized),
        ("Ready", ready),
        ("ContainersReady", ready),
        ("PodScheduled", "True"),
    ] {
        let at = match run.transitions.get(t) {
            Some((old, at)) if old == s => at.clone(),
            _ => {
                run.transitions
                    .insert(t.to_string(), (s.to_string(), now.to_string()));
                now.to_string()
            }
        };
        let mut cond =
            json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": at});
        if s == "False" && t == "Initialized" {
            cond["reason"] = json!("ContainersNotInitialized");
            cond["message"] = json!(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            ));
        }
        if s == "False" && (t == "Ready" || t == "ContainersReady") {
            // Sidecars first, then app containers, as the kubelet lists them.
            let mut not_ready = unready_sidecars.clone();
            not_ready.extend(
                spec.containers
                    .iter()
                    .filter(|c| {
                        !statuses
                            .iter()
                            .any(|s| s["name"] == json!(c.name) && s["ready"] == json!(true))
                    })
                    .map(|c| c.name.as_str()),
            );
            cond["reason"] = json!("ContainersNotReady");
            cond["message"] = json!(format!(
                "containers with unready status: [{}]",
                not_ready.join(" ")
            ));
        }
        conditions.push(cond);
    }
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": node_ip.to_string(),
        "hostIPs": [{"ip": node_ip.to_string()}],
        "startTime": run.saved.start_time,
        "containerStatuses": statuses,
    });
    if has_init {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    // The kubelet's eviction status: Failed from the moment it decides, with why.
    if let Some(message) = &run.saved.evicted {
        status["reason"] = json!("Evicted");
        status["message"] = json!(message);
    }
    if let Some(ip) = run.saved.ip.filter(|_| run.network_ready) {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    status
}

/// One entry of `containerStatuses` or `initContainerStatuses`. In a pod with init
/// containers, a container not created yet waits with the kubelet's `PodInitializing`.
fn container_status(c: &Container, r: &ContainerRun, ready: bool, has_init: bool) -> Value {
    let state = match &r.state {
        State::Waiting { reason, message } => {
            let reason = if has_init && reason == "ContainerCreating" && message.is_empty() {
                "PodInitializing"
            } else {
                reason
            };
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        State::Terminated(t) => json!({"terminated": t.json(&r.saved.id)}),
    };
    let mut s = json!({
        "name": c.name,
        "image": c.image.clone().unwrap_or_default(),
        "imageID": r.saved.image_id,
        "ready": ready,
        "started": r.is_started(),
        "restartCount": r.saved.restart_count,
        "state": state,
        "lastState": r.last.as_ref().map(|t| json!({"terminated": t.json(&r.saved.id)})).unwrap_or(json!({})),
    });
    if r.saved.started_at.is_some() {
        s["containerID"] = json!(format!("runc://{}", r.saved.id));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use k8s_openapi::api::core::v1::Container;
    use tokio::time::Instant;

    use super::*;
    use crate::host::Exit;
    use crate::pod::decide::RestartPolicy;
    use crate::pod::saved::SavedPod;

    fn setup(policy: &str) -> (PodSpec, PodRun) {
        let spec = PodSpec {
            restart_policy: Some(policy.into()),
            containers: vec![Container {
                name: "a".into(),
                image: Some("img:v1".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut run = PodRun {
            uid: "0b4e6c0e-8f43-4b65-9a55-3c1d2f0e9a11".into(),
            dir: PathBuf::from("/pods/x"),
            saved: SavedPod {
                ip: Some(Ipv4Addr::new(10, 244, 0, 5)),
                ..Default::default()
            },
            containers: BTreeMap::new(),
            transitions: BTreeMap::new(),
            last_status: None,
            network_ready: true,
            volumes: Default::default(),
            storage_measured: None,
        };
        run.track(&spec);
        (spec, run)
    }

    const NODE: Ipv4Addr = Ipv4Addr::LOCALHOST;

    #[test]
    fn phases_follow_the_containers() {
        let (spec, mut run) = setup("Never");
        assert_eq!(pod_status(&spec, &mut run, NODE, "t0")["phase"], "Pending");
        let r = run.containers.get_mut("a").expect("tracked");
        r.started(7, 0, "img@sha256:1", Instant::now(), "t1");
        let s = pod_status(&spec, &mut run, NODE, "t1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.5");
        assert_eq!(
            s["containerStatuses"][0]["state"]["running"]["startedAt"],
            "t1"
        );
        // Not ready until a probe (or the ports) says so.
        assert_eq!(s["containerStatuses"][0]["ready"], false);
        let r = run.containers.get_mut("a").expect("tracked");
        r.exited(
            Exit::Code(3),
            false,
            String::new(),
            RestartPolicy::Never,
            Instant::now(),
            "t2",
        );
        let s = pod_status(&spec, &mut run, NODE, "t2");
        assert_eq!(s["phase"], "Failed");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let (spec, mut run) = setup("Always");
        let s = pod_status(&spec, &mut run, NODE, "t0");
        let ready = &s["conditions"][2];
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["message"], "containers with unready status: [a]");
        let s = pod_status(&spec, &mut run, NODE, "t1");
        assert_eq!(s["conditions"][2]["lastTransitionTime"], "t0");
        let r = run.containers.get_mut("a").expect("tracked");
        r.started(7, 0, "i", Instant::now(), "t1");
        r.readiness.verdict = Some(true);
        r.startup.verdict = Some(true);
        let s = pod_status(&spec, &mut run, NODE, "t2");
        assert_eq!(s["conditions"][2]["status"], "True");
        assert_eq!(s["conditions"][2]["lastTransitionTime"], "t2");
    }
}
