//! What survives an agent restart: each worker keeps `pods/<uid>/state.json` (IP, container
//! ids, pids, start times, restart counts), and a restarted worker adopts the containers runc
//! still runs as the same processes instead of starting them again ([`adopt`], pure).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::decide::{ContainerRun, State, Terminated};
use crate::host::{Host, RuncContainer};

/// A container's saved record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedContainer {
    pub id: String,
    pub pid: Option<i32>,
    pub started_at: Option<String>,
    pub restart_count: u32,
    pub image_id: String,
}

/// What survives an agent restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedPod {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub start_time: Option<String>,
    pub containers: BTreeMap<String, SavedContainer>,
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

/// The worker's knowledge of the saved containers after a restart: one runc still runs as
/// the saved pid (and `alive` confirms the process) is Running again; one that ended while
/// the agent was down shows as terminated (status unknown, 137) and is handled by the restart
/// policy on the next pass. `now`/`at` are the instant and its RFC 3339 form.
pub(crate) fn adopt(
    saved: &SavedPod,
    runc: &[RuncContainer],
    alive: impl Fn(i32) -> bool,
    now: Instant,
    at: &str,
) -> BTreeMap<String, ContainerRun> {
    saved
        .containers
        .iter()
        .map(|(name, s)| {
            let mut run = ContainerRun::new(s.clone());
            if let Some(pid) = s.pid {
                let listed = runc
                    .iter()
                    .any(|c| c.id == s.id && c.pid == pid && c.status == "running");
                if listed && alive(pid) {
                    run.state = State::Running {
                        started_at: s.started_at.clone().unwrap_or_else(|| at.to_string()),
                    };
                    run.started = Some(now);
                    // Probes start over: the container was Ready before, keep it so until a
                    // probe says otherwise.
                    run.readiness.verdict = Some(true);
                    run.startup.verdict = Some(true);
                    tracing::info!(container = %s.id, pid, "adopted running container");
                } else {
                    let t = Terminated {
                        exit_code: 137,
                        reason: "Error".into(),
                        message: "the container ended while the node agent was down".into(),
                        started_at: s.started_at.clone().unwrap_or_default(),
                        finished_at: at.to_string(),
                    };
                    // Shown as the last state once the restart policy has started it again.
                    run.last = Some(t.clone());
                    run.state = State::Terminated(t);
                    run.saved.pid = None;
                }
            }
            (name.clone(), run)
        })
        .collect()
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
            (vec![listed("u-c", 42, "running")], true, true),
            // runc runs it, but the process is gone (or is a zombie).
            (vec![listed("u-c", 42, "running")], false, false),
            // Another pid: a different process, not ours.
            (vec![listed("u-c", 43, "running")], true, false),
            (vec![listed("u-c", 42, "stopped")], true, false),
            (vec![], true, false),
        ];
        for (runc, alive, adopted) in cases {
            let runs = adopt(&saved(Some(42)), &runc, |_| alive, now, "t");
            let r = &runs["c"];
            assert_eq!(
                r.running_pid() == Some(42),
                adopted,
                "{runc:?} alive={alive}"
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
                assert!(matches!(&r.state, State::Terminated(t) if t.exit_code == 137));
                assert_eq!(r.saved.pid, None);
            }
        }
    }
}
