//! What volumes need of the real filesystem, for [`crate::host::LinuxHost`]: the kubelet's
//! atomic writer for projected files, hostPath type checks, subPaths checked and bound.
//! Plain `std::fs` (and `nix` for the bind), tested on temporary directories.
//!
//! # The atomic writer
//! As the kubelet's `AtomicWriter` lays a projected volume out, so that a reader sees the old
//! or the new set of files, never a mix and never a part of one:
//! ```text
//! <dir>/..2026_12_07_10_55_01.123456789/<path>   the files, written whole
//! <dir>/..data -> ..2026_12_07_10_55_01.123456789 swapped by rename(2), atomically
//! <dir>/<top-level name> -> ..data/<top-level name>
//! ```
//! An update writes a new timestamped directory, points `..data_tmp` at it, renames that over
//! `..data`, adds and removes the user-visible links, then removes the old directory.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use super::Payload;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// Writes `files` into `dir` the kubelet's way (see the module doc), group-owned by `gid` when
/// set. Returns whether anything changed (an identical payload is left as it is).
pub fn write_atomic(dir: &Path, files: &Payload, gid: Option<u32>) -> io::Result<bool> {
    for path in files.keys() {
        check_payload_path(path)?;
    }
    std::fs::create_dir_all(dir)?;
    let data = dir.join(DATA);
    let old = std::fs::read_link(&data).ok();
    if let Some(old) = &old
        && same_payload(&dir.join(old), files, gid)
    {
        link_visible(dir, files)?;
        return Ok(false);
    }
    let ts = new_ts_dir(dir)?;
    let ts_path = dir.join(&ts);
    for (path, f) in files {
        let file = ts_path.join(path);
        if let Some(parent) = file.parent()
            && parent != ts_path
        {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, &f.data)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(f.mode & 0o7777))?;
    }
    let mut dirs = Vec::new();
    crate::host::collect_dirs(&ts_path, &mut dirs);
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    if let Some(gid) = gid {
        for entry in dirs
            .iter()
            .cloned()
            .chain(files.keys().map(|p| ts_path.join(p)))
        {
            std::os::unix::fs::lchown(&entry, None, Some(gid))?;
        }
    }
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, &data)?;
    link_visible(dir, files)?;
    // User-visible links of paths the new payload no longer has.
    let wanted = top_level(files);
    for name in list(dir) {
        if name.starts_with("..") || wanted.contains(&name) {
            continue;
        }
        let p = dir.join(&name);
        if p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::fs::remove_file(&p)?;
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != ts.as_str()) {
        std::fs::remove_dir_all(dir.join(old))?;
    }
    Ok(true)
}

/// A payload path as Kubernetes validates it: relative, not empty, no `..` element.
fn check_payload_path(path: &str) -> io::Result<()> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.starts_with("..")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid path {path:?} in the volume's payload"),
        ))
    }
}

/// The first element of each payload path: what the volume's root shows.
fn top_level(files: &Payload) -> BTreeSet<String> {
    files
        .keys()
        .filter_map(|p| p.split('/').next().map(str::to_string))
        .collect()
}

/// `<dir>/<name> -> ..data/<name>` for each top-level name of the payload.
fn link_visible(dir: &Path, files: &Payload) -> io::Result<()> {
    for name in top_level(files) {
        let p = dir.join(&name);
        let target = Path::new(DATA).join(&name);
        match std::fs::read_link(&p) {
            Ok(t) if t == target => continue,
            Ok(_) => std::fs::remove_file(&p)?,
            Err(_) if p.symlink_metadata().is_ok() => std::fs::remove_dir_all(&p)?,
            Err(_) => {}
        }
        symlink(&target, &p)?;
    }
    Ok(())
}

/// Whether the timestamped directory `ts` holds exactly `files` (bodies, modes, group).
fn same_payload(ts: &Path, files: &Payload, gid: Option<u32>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    walk_files(ts, ts, &mut found);
    if found.len() != files.len() {
        return false;
    }
    files.iter().all(|(path, f)| {
        let p = ts.join(path);
        let Ok(meta) = p.symlink_metadata() else {
            return false;
        };
        meta.is_file()
            && meta.mode() & 0o7777 == f.mode & 0o7777
            && gid.is_none_or(|g| meta.gid() == g)
            && std::fs::read(&p).is_ok_and(|b| b == f.data)
    })
}

fn walk_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(root, &p, out),
            Ok(_) => out.extend(p.strip_prefix(root).ok().map(Path::to_path_buf)),
            Err(_) => {}
        }
    }
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A new `..<UTC time>.<n>` directory in `dir` (the kubelet's name, made unique).
fn new_ts_dir(dir: &Path) -> io::Result<String> {
    let stamp = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    for n in 0..100u32 {
        let name = if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}{n}")
        };
        match std::fs::create_dir(dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a timestamped directory",
    ))
}

/// The kubelet's hostPath `type` check of `path` (`""`: none); the `…OrCreate` types create
/// what is missing (a 0755 directory with its parents, an empty 0644 file in an existing
/// directory). The error is the kubelet's message.
pub fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
    let meta = std::fs::metadata(path);
    let exists = meta.is_ok();
    let ft = meta.as_ref().ok().map(|m| m.file_type());
    let shown = path.display();
    let created = |r: io::Result<()>| r.map_err(|e| format!("hostPath {shown}: {e}"));
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists => created(
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path),
        ),
        "FileOrCreate" if !exists => created(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o644))),
        ),
        "Directory" | "DirectoryOrCreate" => ft
            .is_some_and(|t| t.is_dir())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a directory")),
        "File" | "FileOrCreate" => ft
            .is_some_and(|t| t.is_file())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a file")),
        "Socket" => ft
            .is_some_and(|t| t.is_socket())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a socket file")),
        "CharDevice" => ft
            .is_some_and(|t| t.is_char_device())
            .then_some(())
            .ok_or_else(|| {
                format!("hostPath type check failed: {shown} is not a character device")
            }),
        "BlockDevice" => ft
            .is_some_and(|t| t.is_block_device())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a block device")),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

/// The host path a container's `subPath` of the volume at `volume` is: created as a directory
/// (with the volume's mode) when missing, its symlinks resolved, refused when it resolves
/// outside the volume.
pub fn resolve_subpath(volume: &Path, sub: &str) -> Result<PathBuf, String> {
    let target = volume.join(sub);
    if target.symlink_metadata().is_err() {
        let mode = std::fs::metadata(volume)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        std::fs::create_dir_all(&target)
            .and_then(|()| std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)))
            .map_err(|e| format!("creating subPath {sub:?}: {e}"))?;
    }
    let root = std::fs::canonicalize(volume).map_err(|e| format!("volume {sub:?}: {e}"))?;
    let real = std::fs::canonicalize(&target).map_err(|e| format!("subPath {sub:?}: {e}"))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "subpath {:?} not within volume path {:?}",
            real.display().to_string(),
            root.display().to_string()
        ))
    }
}

/// Binds `sub` of the volume at `volume` onto `target` (made as a file or a directory like
/// it; a mount left there from an earlier run is replaced). What is bound is what was checked:
/// the resolved path is opened one element at a time below the volume's root without following
/// symlinks, and the bind is made from that open file (`/proc/self/fd/N`), so a container that
/// swaps a directory of its volume for a symlink meanwhile cannot have a path outside the
/// volume bound (the kubelet's answer to CVE-2017-1002101).
pub fn bind_subpath(volume: &Path, sub: &str, target: &Path) -> Result<(), String> {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::Mode;
    use std::os::fd::AsRawFd;
    let real = resolve_subpath(volume, sub)?;
    let root = std::fs::canonicalize(volume).map_err(|e| format!("volume {sub:?}: {e}"))?;
    let rel = real
        .strip_prefix(&root)
        .map_err(|_| format!("subPath {sub:?} left its volume"))?
        .to_path_buf();
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = open(&root, flags | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| format!("opening the volume: {}", e.desc()))?;
    for part in rel.components() {
        fd = openat(&fd, part.as_os_str(), flags, Mode::empty())
            .map_err(|e| format!("subPath {sub:?} changed while it was bound: {}", e.desc()))?;
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let meta = std::fs::symlink_metadata(&proc_path)
        .and_then(|_| std::fs::metadata(&proc_path))
        .map_err(|e| format!("subPath {sub:?}: {e}"))?;
    if crate::host::is_mountpoint(target) {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| format!("unmounting {}: {}", target.display(), e.desc()))?;
    }
    let made = if meta.is_dir() {
        std::fs::create_dir_all(target)
    } else {
        target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(target)
                    .map(drop)
            })
    };
    made.map_err(|e| format!("creating {}: {e}", target.display()))?;
    nix::mount::mount(
        Some(proc_path.as_str()),
        target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("binding subPath {sub:?}: {}", e.desc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::ProjectedFile;
    use std::os::unix::fs::MetadataExt;

    fn payload(items: &[(&str, &str, u32)]) -> Payload {
        items
            .iter()
            .map(|(p, d, m)| {
                (
                    p.to_string(),
                    ProjectedFile {
                        data: d.as_bytes().to_vec(),
                        mode: *m,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_atomic_writer_swaps_data_and_keeps_links() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("vol");
        let first = payload(&[("greeting", "hello", 0o644), ("sub/x", "1", 0o400)]);
        assert!(write_atomic(&dir, &first, None).expect("written"));
        assert_eq!(
            std::fs::read_to_string(dir.join("greeting")).expect("read"),
            "hello"
        );
        assert_eq!(
            std::fs::read_link(dir.join("greeting")).expect("a link"),
            Path::new("..data/greeting")
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("sub/x")).expect("read"),
            "1"
        );
        let mode = std::fs::metadata(dir.join("sub/x")).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o400);
        let ts1 = std::fs::read_link(dir.join(DATA)).expect("..data");
        assert!(ts1.to_string_lossy().starts_with("..20"), "{ts1:?}");

        // The same payload changes nothing.
        assert!(!write_atomic(&dir, &first, None).expect("rewritten"));
        assert_eq!(std::fs::read_link(dir.join(DATA)).expect("..data"), ts1);

        // An update: new body, a key gone, a key added; the old directory is removed.
        let second = payload(&[("greeting", "bonjour", 0o644), ("new", "n", 0o644)]);
        assert!(write_atomic(&dir, &second, None).expect("updated"));
        let ts2 = std::fs::read_link(dir.join(DATA)).expect("..data");
        assert_ne!(ts1, ts2);
        assert!(!dir.join(&ts1).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("greeting")).expect("read"),
            "bonjour"
        );
        assert!(dir.join("sub").symlink_metadata().is_err());
        assert_eq!(std::fs::read_to_string(dir.join("new")).expect("read"), "n");
        let mut names = list(&dir);
        names.sort();
        assert_eq!(
            names,
            [ts2.to_string_lossy().as_ref(), "..data", "greeting", "new"]
        );

        // Bad paths are refused before anything is written.
        for bad in ["../x", "/etc/x", "..x", "a/../../b", ""] {
            assert!(
                write_atomic(&dir, &payload(&[(bad, "", 0o644)]), None).is_err(),
                "{bad}"
            );
        }
        assert_eq!(std::fs::read_link(dir.join(DATA)).expect("..data"), ts2);
    }

    #[test]
    fn host_path_types_are_checked_as_the_kubelet_does() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let d = tmp.path();
        std::fs::write(d.join("f"), "x").expect("file");
        assert_eq!(check_host_path(&d.join("f"), "File"), Ok(()));
        assert_eq!(check_host_path(d, "Directory"), Ok(()));
        assert_eq!(check_host_path(&d.join("nothing"), ""), Ok(()));
        assert_eq!(
            check_host_path(&d.join("f"), "Directory"),
            Err(format!(
                "hostPath type check failed: {}/f is not a directory",
                d.display()
            ))
        );
        assert_eq!(
            check_host_path(&d.join("missing"), "File"),
            Err(format!(
                "hostPath type check failed: {}/missing is not a file",
                d.display()
            ))
        );
        assert!(check_host_path(d, "Socket").is_err_and(|e| e.ends_with("is not a socket file")));
        assert_eq!(
            check_host_path(&d.join("new/deeper"), "DirectoryOrCreate"),
            Ok(())
        );
        let m = std::fs::metadata(d.join("new/deeper")).expect("created");
        assert!(m.is_dir());
        assert_eq!(check_host_path(&d.join("made"), "FileOrCreate"), Ok(()));
        let m = std::fs::metadata(d.join("made")).expect("created");
        assert!(m.is_file() && m.mode() & 0o777 == 0o644);
        // FileOrCreate does not make the parent directory.
        assert!(check_host_path(&d.join("no/parent"), "FileOrCreate").is_err());
        assert!(check_host_path(&d.join("f"), "DirectoryOrCreate").is_err());
    }

    #[test]
    fn sub_paths_stay_inside_their_volume() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(&vol).expect("volume");
        let got = resolve_subpath(&vol, "a/b").expect("created");
        assert!(got.is_dir() && got.ends_with("vol/a/b"));
        symlink("/etc", vol.join("escape")).expect("link");
        assert!(
            resolve_subpath(&vol, "escape").is_err_and(|e| e.contains("not within volume path"))
        );
        symlink("a", vol.join("inside")).expect("link");
        assert!(resolve_subpath(&vol, "inside").is_ok_and(|p| p.ends_with("vol/a")));
    }

    /// Needs root (a bind mount), as CI has.
    #[test]
    fn a_sub_path_is_bound_from_what_was_checked() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let vol = tmp.path().join("vol");
        std::fs::create_dir_all(vol.join("data")).expect("volume");
        std::fs::write(vol.join("data/f"), "inside").expect("file");
        let target = tmp.path().join("subpaths/v/c/0");
        bind_subpath(&vol, "data", &target).expect("bound");
        assert_eq!(
            std::fs::read_to_string(target.join("f")).expect("read"),
            "inside"
        );
        // Bound again (a restart): the old bind is replaced, not stacked.
        bind_subpath(&vol, "data", &target).expect("bound again");
        let file_target = tmp.path().join("subpaths/v/c/1");
        bind_subpath(&vol, "data/f", &file_target).expect("a file bound");
        assert_eq!(
            std::fs::read_to_string(&file_target).expect("read"),
            "inside"
        );
        symlink("/etc", vol.join("out")).expect("link");
        assert!(bind_subpath(&vol, "out", &tmp.path().join("subpaths/v/c/2")).is_err());
        for t in [&target, &file_target] {
            nix::mount::umount2(t.as_path(), nix::mount::MntFlags::MNT_DETACH).expect("unmounted");
        }
    }
}
