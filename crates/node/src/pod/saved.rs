//! What survives an agent restart: each worker keeps `pods/<uid>/state.json` (IP, container
//! ids, pids, start times, restart counts, the last termination, and the end of containers
//! that will not run again), written durably; a restarted worker adopts the containers runc
//! still runs as the same processes, takes the exit of those that ended meanwhile from their
//! monitor's record, and leaves finished ones finished ([`adopt`], pure).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::decide::{ContainerRun, RestartPolicy, State, Terminated};
use crate::host::{Exit, Host, RuncContainer};

/// A container's saved record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedContainer {
    pub id: String,
    pub pid: Option<i32>,
    pub started_at: Option<String>,
    pub restart_count: u32,
    pub image_id: String,
    /// The last termination (`lastState`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Terminated>,
    /// How the container ended when its restart policy says it does not run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Terminated>,
}

/// What survives an agent restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedPod {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub start_time: Option<String>,
    pub containers: BTreeMap<String, SavedContainer>,
    /// Why the pod was evicted (the kubelet's `Evicted` message): it failed, and its
    /// containers do not run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evicted: Option<String>,
}

/// Reads the saved state of the pod whose directory is `dir`, if any.
pub async fn load_saved(host: &dyn Host, dir: &Path) -> Option<SavedPod> {
    let body = host.read_file(&dir.join("state.json")).await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// Saves `saved` as the state of the pod whose directory is `dir`.
pub(crate) async fn save(host: &dyn Host, dir: &Path, saved: &SavedPod) {
    let Ok(body) = serde_json::to_vec_pretty(saved) else {
        return;
    };
    if let Err(e) = host.write_file(&dir.join("state.json"), &body).await {
        tracing::warn!(pod = %saved.name, error = %e, "could not save pod state");
    }
}

/// The worker's knowledge of the saved containers after a restart. A finished container
/// stays finished. One that runc still runs as the saved pid (`exit_of(name, pid)` is None: the
/// process has not ended) is Running again. One that ended while the agent was down is
/// terminated with the exit its monitor recorded (unknown, 137, when there is no record) and
/// goes through its `policy` (by container name) like any exit: restarted, or finished.
/// `now`/`at` are the instant and its RFC 3339 form.
pub(crate) fn adopt(
    saved: &SavedPod,
    runc: &[RuncContainer],
    exit_of: impl Fn(&str, i32) -> Option<Exit>,
    policy: impl Fn(&str) -> RestartPolicy,
    now: Instant,
    at: &str,
) -> BTreeMap<String, ContainerRun> {
    saved
        .containers
        .iter()
        .map(|(name, s)| {
            let mut run = ContainerRun::new(s.clone());
            run.last = s.last.clone();
            if let Some(t) = &s.finished {
                run.state = State::Terminated(t.clone());
                run.done = true;
                run.saved.pid = None;
                return (name.clone(), run);
            }
            let Some(pid) = s.pid else {
                return (name.clone(), run);
            };
            let started_at = s.started_at.clone().unwrap_or_else(|| at.to_string());
            let listed = runc
                .iter()
                .any(|c| c.id == s.id && c.pid == pid && c.status == "running");
            let exit = exit_of(name, pid);
            run.state = State::Running { started_at };
            match exit {
                None if listed => {
                    run.started = Some(now);
                    // Probes start over: the container was Ready before, keep it so until a
                    // probe says otherwise.
                    run.readiness.verdict = Some(true);
                    run.startup.verdict = Some(true);
                    tracing::info!(container = %s.id, pid, "adopted running container");
                }
                _ => {
                    let exit = exit.unwrap_or(Exit::Unknown);
                    tracing::info!(container = %s.id, pid, code = exit.code(), "container ended while the agent was down");
                    run.exited(exit, false, String::new(), policy(name), now, at);
                    if exit == Exit::Unknown {
                        let why = "the container ended while the node agent was down";
                        for t in [run.last.as_mut(), terminated(&mut run.state)]
                            .into_iter()
                            .flatten()
                        {
                            t.message = why.into();
                        }
                    }
                }
            }
            (name.clone(), run)
        })
        .collect()
}

fn terminated(state: &mut State) -> Option<&mut Terminated> {
    match state {
        State::Terminated(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn saved(pid: Option<i32>) -> SavedPod {
        SavedPod {
            name: "web".into(),
            containers: BTreeMap::from([(
                "c".to_string(),
                SavedContainer {
                    id: "u-c".into(),
                    pid,
                    started_at: Some("2026-01-01T00:00:00Z".into()),
                    restart_count: 3,
                    image_id: "img@sha256:1".into(),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        }
    }

    fn listed(id: &str, pid: i32, status: &str) -> RuncContainer {
        RuncContainer {
            id: id.into(),
            pid,
            status: status.into(),
            bundle: PathBuf::from("/b"),
        }
    }

    #[test]
    fn adoption_needs_runc_and_the_same_live_process() {
        let now = Instant::now();
        let cases = [
            (vec![listed("u-c", 42, "running")], None, true),
            // runc runs it, but the process is gone (or is a zombie).
            (
                vec![listed("u-c", 42, "running")],
                Some(Exit::Unknown),
                false,
            ),
            // Another pid: a different process, not ours.
            (vec![listed("u-c", 43, "running")], None, false),
            (vec![listed("u-c", 42, "stopped")], None, false),
            (vec![], None, false),
        ];
        for (runc, exit, adopted) in cases {
            let runs = adopt(
                &saved(Some(42)),
                &runc,
                |_, _| exit,
                move |_| RestartPolicy::Always,
                now,
                "t",
            );
            let r = &runs["c"];
            assert_eq!(
                r.running_pid() == Some(42),
                adopted,
                "{runc:?} exit={exit:?}"
            );
            assert_eq!(r.saved.restart_count, 3);
            if adopted {
                assert_eq!(
                    r.state,
                    State::Running {
                        started_at: "2026-01-01T00:00:00Z".into()
                    }
                );
            } else {
                // Always restarts it (after the back-off of its fourth run).
                assert!(r.in_crash_loop(), "{:?}", r.state);
                assert_eq!(r.last.as_ref().map(|t| t.exit_code), Some(137));
                assert_eq!(r.saved.pid, None);
                assert!(!r.done);
            }
        }
    }

    #[test]
    fn an_exit_recorded_while_the_agent_was_down_goes_through_the_policy() {
        let now = Instant::now();
        let runc = vec![listed("u-c", 42, "stopped")];
        for (policy, code, done) in [
            (RestartPolicy::Never, 3, true),
            (RestartPolicy::Never, 0, true),
            (RestartPolicy::OnFailure, 0, true),
            (RestartPolicy::OnFailure, 3, false),
            (RestartPolicy::Always, 0, false),
        ] {
            let runs = adopt(
                &saved(Some(42)),
                &runc,
                |_, _| Some(Exit::Code(code)),
                |_| policy,
                now,
                "t",
            );
            let r = &runs["c"];
            assert_eq!(r.done, done, "{policy:?} exit {code}");
            let t = match &r.state {
                State::Terminated(t) if done => t,
                _ if !done => r.last.as_ref().expect("the end is the last state"),
                other => panic!("{policy:?}: {other:?}"),
            };
            assert_eq!(t.exit_code, code);
            assert_eq!(t.started_at, "2026-01-01T00:00:00Z");
        }
    }

    #[test]
    fn a_finished_container_stays_finished() {
        let mut s = saved(None);
        let end = Terminated {
            exit_code: 0,
            reason: "Completed".into(),
            finished_at: "2026-01-01T00:01:00Z".into(),
            ..Default::default()
        };
        if let Some(c) = s.containers.get_mut("c") {
            c.finished = Some(end.clone());
        }
        // Round trip through state.json.
        let s: SavedPod = serde_json::from_slice(&serde_json::to_vec(&s).expect("serializable"))
            .expect("readable");
        let runs = adopt(
            &s,
            &[],
            |_, _| None,
            |_| RestartPolicy::Never,
            Instant::now(),
            "t",
        );
        assert!(runs["c"].done);
        assert_eq!(runs["c"].state, State::Terminated(end));
    }
}
