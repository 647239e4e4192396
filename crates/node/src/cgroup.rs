//! The cgroup filesystem as the agent reads and cleans it, for both layouts: cgroup v1 (one
//! hierarchy per controller under the root: `memory/`, `cpu,cpuacct/`, `pids/`, …) and
//! cgroup v2 (one unified hierarchy: the root itself, told by its `cgroup.controllers`).
//! runc creates the cgroups and writes the limits (it turns the bundle's v1-style resources
//! into v2's `memory.max`, `cpu.max`, `cpu.weight`); the agent finds a cgroup's directories,
//! its processes, whether the OOM killer struck in it, and removes it. Every path is below a
//! root given at construction, so the same code is tested against fake trees of either kind.

use std::path::{Path, PathBuf};

/// The cgroup filesystem mounted at a root (`/sys/fs/cgroup` on a host).
#[derive(Clone, Debug)]
pub struct Cgroups {
    root: PathBuf,
}

impl Cgroups {
    pub fn at(root: impl Into<PathBuf>) -> Cgroups {
        Cgroups { root: root.into() }
    }

    /// This machine's.
    pub fn host() -> Cgroups {
        Cgroups::at("/sys/fs/cgroup")
    }

    /// Whether the root is cgroup v2's unified hierarchy.
    pub fn unified(&self) -> bool {
        self.root.join("cgroup.controllers").is_file()
    }

    /// The hierarchies' roots: the root itself on v2; on v1 each controller's directory
    /// (symlinks such as `cpu -> cpu,cpuacct` skipped, so each hierarchy counts once).
    fn hierarchies(&self) -> Vec<PathBuf> {
        if self.unified() {
            return vec![self.root.clone()];
        }
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// The directories of cgroup `path` (e.g. `/baton/<uid>`) and of every cgroup below it,
    /// in every hierarchy that has it, parents before children.
    pub fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        let mut out = Vec::new();
        for h in self.hierarchies() {
            crate::host::collect_dirs(&h.join(rel), &mut out);
        }
        out
    }

    /// The directory of cgroup `path` itself in each hierarchy that has it.
    pub fn each(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        self.hierarchies()
            .into_iter()
            .map(|h| h.join(rel))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// In how many hierarchies cgroup `path` exists.
    pub fn hierarchies_with(&self, path: &str) -> usize {
        self.each(path).len()
    }

    /// The processes in cgroup `path` and below, each once.
    pub fn procs(&self, path: &str) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs(path)
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Removes cgroup `path` and those below it, children first (rmdir removes only empty
    /// cgroups); what could not be removed, with why.
    pub fn remove(&self, path: &str) -> Vec<(PathBuf, std::io::Error)> {
        let mut failed = Vec::new();
        for d in self.dirs(path).iter().rev() {
            if let Err(e) = std::fs::remove_dir(d)
                && d.exists()
            {
                failed.push((d.clone(), e));
            }
        }
        failed
    }

    /// Whether the kernel's OOM killer killed a process in cgroup `path`: v1's
    /// `memory.oom_control` or v2's `memory.events` says `oom_kill` above 0.
    pub fn oom_killed(&self, path: &str) -> bool {
        let rel = path.trim_start_matches('/');
        let file = if self.unified() {
            self.root.join(rel).join("memory.events")
        } else {
            self.root
                .join("memory")
                .join(rel)
                .join("memory.oom_control")
        };
        std::fs::read_to_string(file).is_ok_and(|s| {
            s.lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// A v1 tree: memory and cpu,cpuacct hierarchies (with the `cpu` symlink), a pod with
    /// one container in each.
    fn v1() -> (tempfile::TempDir, Cgroups) {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        for h in ["memory", "cpu,cpuacct", "pids"] {
            std::fs::create_dir_all(r.join(h).join("baton/u1/app")).expect("mkdir");
        }
        std::os::unix::fs::symlink(r.join("cpu,cpuacct"), r.join("cpu")).expect("symlink");
        write(&r.join("memory/baton/u1/app/cgroup.procs"), "12\n13\n");
        write(&r.join("pids/baton/u1/app/cgroup.procs"), "13\n");
        write(&r.join("memory/baton/u1/cgroup.procs"), "");
        write(
            &r.join("memory/baton/u1/app/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        let cg = Cgroups::at(r);
        (dir, cg)
    }

    /// A v2 tree: the unified root with `cgroup.controllers`.
    fn v2() -> (tempfile::TempDir, Cgroups) {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        write(&r.join("cgroup.controllers"), "cpu memory pids\n");
        write(&r.join("baton/u1/app/cgroup.procs"), "21\n");
        write(&r.join("baton/u1/sidecar/cgroup.procs"), "22\n21\n");
        write(
            &r.join("baton/u1/app/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        );
        write(
            &r.join("baton/u1/sidecar/memory.events"),
            "low 0\noom 0\noom_kill 0\n",
        );
        let cg = Cgroups::at(r);
        (dir, cg)
    }

    #[test]
    fn v1_has_a_hierarchy_per_controller() {
        let (_d, cg) = v1();
        assert!(!cg.unified());
        assert_eq!(
            cg.hierarchies_with("/baton/u1"),
            3,
            "the cpu symlink is not counted twice"
        );
        assert_eq!(cg.procs("/baton/u1"), [12, 13]);
        assert!(cg.oom_killed("/baton/u1/app"));
        assert!(!cg.oom_killed("/baton/u1/other"));
        // cgroupfs refuses to remove a directory's files; a fake tree holds real files, so
        // remove them first as the kernel would have no such files to remove.
        for d in cg.dirs("/baton/u1") {
            for f in ["cgroup.procs", "memory.oom_control"] {
                let _ = std::fs::remove_file(d.join(f));
            }
        }
        assert!(cg.remove("/baton/u1").is_empty());
        assert_eq!(cg.hierarchies_with("/baton/u1"), 0);
        assert!(cg.root().join("memory/baton").is_dir(), "the parent stays");
    }

    #[test]
    fn v2_is_one_unified_hierarchy() {
        let (_d, cg) = v2();
        assert!(cg.unified());
        assert_eq!(cg.hierarchies_with("/baton/u1"), 1);
        assert_eq!(cg.dirs("baton/u1").len(), 3);
        assert_eq!(cg.procs("/baton/u1"), [21, 22]);
        assert!(cg.oom_killed("/baton/u1/app"));
        assert!(
            !cg.oom_killed("/baton/u1/sidecar"),
            "oom without a kill is not OOMKilled"
        );
        for d in cg.dirs("/baton/u1") {
            for f in ["cgroup.procs", "memory.events"] {
                let _ = std::fs::remove_file(d.join(f));
            }
        }
        assert!(cg.remove("/baton/u1").is_empty());
        assert!(!cg.root().join("baton/u1").exists());
        assert!(cg.root().join("baton").is_dir());
    }

    #[test]
    fn a_cgroup_that_cannot_go_is_reported() {
        let (_d, cg) = v2();
        let failed = cg.remove("/baton/u1");
        assert!(!failed.is_empty(), "non-empty directories stay");
        assert!(cg.root().join("baton/u1/app").is_dir());
    }
}
