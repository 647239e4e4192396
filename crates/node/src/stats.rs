//! `GET /stats/summary`: the kubelet's resource figures for `metrics.k8s.io` (`kubectl top`).
//! CPU comes from cgroup v1 `cpuacct.usage` (cgroup v2 `cpu.stat` as a fallback) per container
//! and `/proc/stat` for the node; memory working set is usage minus inactive file pages
//! (`memory.usage_in_bytes` − `total_inactive_file`, as cAdvisor computes it) per container and
//! MemTotal − MemAvailable for the node. CPU is reported as a rate, as metrics-server does:
//! cumulative nanoseconds over the window since the previous sample of the same cgroup (kept
//! here; when there is none recent enough, two reads a second apart).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Agent;

/// The shortest window a rate is computed over.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Samples older than this are not used as the start of a window.
const MAX_WINDOW: Duration = Duration::from_secs(60);

/// One cumulative CPU reading.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ns: u64,
}

/// Recent readings of each CPU counter (`node` or a cgroup path), oldest first. Every reader
/// takes the newest one at least [`MIN_WINDOW`] old as the start of its window, so readers —
/// the HPA controller's syncs, `kubectl top` — do not use up each other's windows (with one
/// shared previous reading, an HPA syncing every second left `kubectl top` no window: 0m).
static PREVIOUS: Mutex<Option<HashMap<String, Vec<Sample>>>> = Mutex::new(None);

/// Cumulative CPU time of the whole machine in ns (busy time from `/proc/stat`).
fn node_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    node_cpu_ns_of(&stat)
}

/// Busy ticks (all but idle and iowait) of the `cpu` line, in ns (USER_HZ = 100).
pub fn node_cpu_ns_of(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are already in user/nice).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| *v)
        .sum();
    Some(busy * 10_000_000)
}

/// MemTotal − MemAvailable, in bytes.
pub fn node_working_set_of(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some(total.saturating_sub(available) * 1024)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line of a cgroup stat file.
pub fn stat_field(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Cumulative CPU ns of a cgroup path such as `/baton/<uid>/<container>`.
fn cgroup_cpu_ns(root: &Path, cg: &str) -> Option<u64> {
    let rel = cg.trim_start_matches('/');
    read_u64(&root.join("cpuacct").join(rel).join("cpuacct.usage"))
        .or_else(|| read_u64(&root.join("cpu,cpuacct").join(rel).join("cpuacct.usage")))
        .or_else(|| {
            let stat = std::fs::read_to_string(root.join(rel).join("cpu.stat")).ok()?;
            stat_field(&stat, "usage_usec").map(|us| us * 1000)
        })
}

/// Working set bytes of a cgroup: usage minus inactive file pages.
fn cgroup_working_set(root: &Path, cg: &str) -> Option<u64> {
    let rel = cg.trim_start_matches('/');
    let v1 = root.join("memory").join(rel);
    if let Some(usage) = read_u64(&v1.join("memory.usage_in_bytes")) {
        let stat = std::fs::read_to_string(v1.join("memory.stat")).unwrap_or_default();
        let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
        return Some(usage.saturating_sub(inactive));
    }
    let v2 = root.join(rel);
    let usage = read_u64(&v2.join("memory.current"))?;
    let stat = std::fs::read_to_string(v2.join("memory.stat")).unwrap_or_default();
    let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
    Some(usage.saturating_sub(inactive))
}

/// A counter read now, with the previous reading usable as a window start (if any).
struct Reading {
    key: String,
    now: Sample,
    prev: Option<Sample>,
}

/// What a pod's containers are read from.
struct PodRef {
    name: String,
    namespace: String,
    uid: String,
    containers: Vec<String>,
}

fn read_all(root: &Path, pods: &[PodRef]) -> (Option<Reading>, Vec<Vec<Option<Reading>>>) {
    let prev = PREVIOUS
        .lock()
        .ok()
        .and_then(|p| p.clone())
        .unwrap_or_default();
    let at = Instant::now();
    let reading = |key: String, cpu_ns: Option<u64>| {
        let cpu_ns = cpu_ns?;
        let p = prev.get(&key).and_then(|samples| {
            samples.iter().rev().copied().find(|p| {
                let age = at.saturating_duration_since(p.at);
                (MIN_WINDOW..=MAX_WINDOW).contains(&age) && p.cpu_ns <= cpu_ns
            })
        });
        Some(Reading {
            key,
            now: Sample { at, cpu_ns },
            prev: p,
        })
    };
    let node = reading("node".into(), node_cpu_ns());
    let containers = pods
        .iter()
        .map(|p| {
            p.containers
                .iter()
                .map(|c| {
                    let cg = format!("/baton/{}/{c}", p.uid);
                    let ns = cgroup_cpu_ns(root, &cg);
                    reading(cg, ns)
                })
                .collect()
        })
        .collect();
    (node, containers)
}

fn remember(readings: &[&Reading]) {
    let Ok(mut g) = PREVIOUS.lock() else {
        return;
    };
    let map = g.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    for r in readings {
        let samples = map.entry(r.key.clone()).or_default();
        // A sample every quarter of the minimum window finds any reader a window close to it.
        if samples
            .last()
            .is_none_or(|s| r.now.at.saturating_duration_since(s.at) >= MIN_WINDOW / 4)
        {
            samples.push(r.now);
        }
    }
    // Kept: the samples that may still start a minimum window, and the newest older one (a
    // longer window, up to the maximum). A counter nobody read for that long is dropped.
    map.retain(|_, samples| {
        let recent = samples
            .iter()
            .position(|s| now.saturating_duration_since(s.at) < MIN_WINDOW * 2)
            .unwrap_or(samples.len());
        samples.drain(..recent.saturating_sub(1));
        samples.retain(|s| now.saturating_duration_since(s.at) <= MAX_WINDOW);
        !samples.is_empty()
    });
}

/// Nanocores between two samples.
fn rate(prev: Sample, now: Sample) -> u64 {
    let dt = now.at.saturating_duration_since(prev.at).as_nanos();
    if dt == 0 {
        return 0;
    }
    (u128::from(now.cpu_ns.saturating_sub(prev.cpu_ns)) * 1_000_000_000 / dt) as u64
}

fn cpu_json(time: &str, r: &Reading) -> Value {
    let mut v = json!({"time": time, "usageCoreNanoSeconds": r.now.cpu_ns});
    if let Some(p) = r.prev {
        v["usageNanoCores"] = json!(rate(p, r.now));
    }
    v
}

/// The summary of this node and its running pods (kubelet `/stats/summary` shape, plus a
/// `window` field: the duration the CPU rates are averaged over).
pub async fn summary(agent: &Agent) -> Value {
    summary_from(agent, Path::new("/sys/fs/cgroup")).await
}

async fn summary_from(agent: &Agent, root: &Path) -> Value {
    let pods: Vec<PodRef> = agent
        .workers
        .lock()
        .map(|w| {
            w.iter()
                .filter_map(|(uid, tx)| {
                    let pod = tx.borrow().clone()?;
                    Some(PodRef {
                        name: pod.metadata.name.clone()?,
                        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                        uid: uid.clone(),
                        // The app containers and the sidecars (init containers that
                        // ran to their end have nothing left to count).
                        containers: pod
                            .spec
                            .as_ref()
                            .map(|s| {
                                let sidecars = crate::pod::decide::init_containers(s)
                                    .iter()
                                    .filter(|c| crate::pod::decide::is_sidecar(c));
                                sidecars
                                    .chain(s.containers.iter())
                                    .map(|c| c.name.clone())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (mut node, mut containers) = read_all(root, &pods);
    let needs_second = node.as_ref().is_some_and(|r| r.prev.is_none())
        || containers
            .iter()
            .flatten()
            .flatten()
            .any(|r| r.prev.is_none());
    if needs_second {
        // No usable earlier sample: take one now and read again after the minimum window.
        let firsts: Vec<&Reading> = node
            .iter()
            .chain(containers.iter().flatten().flatten())
            .collect();
        remember(&firsts);
        tokio::time::sleep(MIN_WINDOW).await;
        (node, containers) = read_all(root, &pods);
    }
    let all: Vec<&Reading> = node
        .iter()
        .chain(containers.iter().flatten().flatten())
        .collect();
    let window = all
        .iter()
        .filter_map(|r| r.prev.map(|p| r.now.at.saturating_duration_since(p.at)))
        .max()
        .unwrap_or(MIN_WINDOW);
    remember(&all);
    let time = baton_api::clock::now_rfc3339();
    let node_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| node_working_set_of(&m));
    let mut node_json = json!({"nodeName": agent.opts.node_name});
    if let Some(r) = &node {
        node_json["cpu"] = cpu_json(&time, r);
    }
    if let Some(m) = node_memory {
        node_json["memory"] = json!({"time": time, "workingSetBytes": m});
    }
    let mut pods_json = Vec::new();
    for (p, readings) in pods.iter().zip(&containers) {
        let mut cs = Vec::new();
        for (name, r) in p.containers.iter().zip(readings) {
            let Some(r) = r else {
                continue; // not running: no cgroup
            };
            let mut c = json!({"name": name, "cpu": cpu_json(&time, r)});
            if let Some(ws) = cgroup_working_set(root, &format!("/baton/{}/{name}", p.uid)) {
                c["memory"] = json!({"time": time, "workingSetBytes": ws});
            }
            cs.push(c);
        }
        if cs.is_empty() {
            continue;
        }
        pods_json.push(json!({
            "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
            "containers": cs,
        }));
    }
    json!({
        "node": node_json,
        "pods": pods_json,
        "window": format!("{:.3}s", window.as_secs_f64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_figures_from_proc() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(
            node_cpu_ns_of(stat),
            Some((100 + 5 + 50 + 1 + 2 + 3) * 10_000_000)
        );
        let meminfo = "MemTotal:       1000 kB\nMemFree:   10 kB\nMemAvailable:    400 kB\n";
        assert_eq!(node_working_set_of(meminfo), Some(600 * 1024));
    }

    #[test]
    fn cgroup_v1_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cpu = dir.path().join("cpuacct/baton/u1/c");
        let mem = dir.path().join("memory/baton/u1/c");
        std::fs::create_dir_all(&cpu).expect("mkdir");
        std::fs::create_dir_all(&mem).expect("mkdir");
        std::fs::write(cpu.join("cpuacct.usage"), "123456\n").expect("write");
        std::fs::write(mem.join("memory.usage_in_bytes"), "10000\n").expect("write");
        std::fs::write(
            mem.join("memory.stat"),
            "cache 5\ninactive_file 99\ntotal_inactive_file 4000\n",
        )
        .expect("write");
        assert_eq!(cgroup_cpu_ns(dir.path(), "/baton/u1/c"), Some(123456));
        assert_eq!(cgroup_working_set(dir.path(), "/baton/u1/c"), Some(6000));
        assert_eq!(cgroup_cpu_ns(dir.path(), "/baton/u1/missing"), None);
    }

    #[test]
    fn cgroup_v2_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = dir.path().join("baton/u1/c");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory\n").expect("write");
        std::fs::write(c.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").expect("write");
        std::fs::write(c.join("memory.current"), "10000\n").expect("write");
        std::fs::write(c.join("memory.stat"), "anon 5\ninactive_file 4000\n").expect("write");
        assert_eq!(cgroup_cpu_ns(dir.path(), "/baton/u1/c"), Some(1_500_000));
        assert_eq!(cgroup_working_set(dir.path(), "/baton/u1/c"), Some(6000));
        assert_eq!(cgroup_working_set(dir.path(), "/baton/u1/missing"), None);
    }

    #[test]
    fn rate_is_nanocores() {
        let t = Instant::now();
        let a = Sample { at: t, cpu_ns: 0 };
        let b = Sample {
            at: t + Duration::from_secs(2),
            cpu_ns: 1_000_000_000,
        };
        assert_eq!(rate(a, b), 500_000_000);
    }
}
