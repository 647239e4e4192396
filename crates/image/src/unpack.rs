//! Applies layer tarballs, in order, onto one directory: the image's flattened root
//! filesystem, which containers share read-only as their overlay lowerdir.
//!
//! Whiteouts follow the OCI layer spec (`.wh.NAME` deletes NAME from lower layers,
//! `.wh..wh..opq` empties its directory of lower-layer content). Ownership, permission bits,
//! mtimes, symlinks and hard links are kept. Nothing is ever written outside the root: entry
//! names with `..` are rejected, and every parent directory is resolved inside the root the
//! way a chroot would (an absolute or `..` symlink target is clamped at the root), so a
//! malicious layer that plants `lib -> /` and then writes `lib/x` writes `<root>/x`. Device
//! nodes and FIFOs are skipped: runc provides `/dev`.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use flate2::read::GzDecoder;

use crate::digest::{Digest, HashingReader};
use crate::error::StoreError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const MAX_SYMLINKS: usize = 40;

/// Opens a layer blob, decompressing gzip when the content starts with its magic number
/// (media types are not always right, e.g. in `docker save` archives).
pub fn open_layer(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut reader = BufReader::new(fs::File::open(path)?);
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(GzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Bounds on what one image may unpack to, over all its layers: a layer that is small
/// compressed can still expand to fill the disk or exhaust inodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Bytes of regular files (`--image-max-unpacked-size`).
    pub max_bytes: u64,
    /// Entries: files, directories, links (`--image-max-entries`).
    pub max_entries: u64,
}

impl UnpackLimits {
    /// 16 GiB: above the largest common images (CUDA and ML bases unpack to ~10 GB).
    pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;
    /// Two million entries: a full distribution image holds tens of thousands.
    pub const DEFAULT_MAX_ENTRIES: u64 = 2_000_000;
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What an image's layers have used of its [`UnpackLimits`] so far.
#[derive(Debug)]
pub struct Budget {
    limits: UnpackLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    pub fn new(limits: UnpackLimits) -> Budget {
        Budget {
            limits,
            bytes: 0,
            entries: 0,
        }
    }

    fn take(&mut self, bytes: u64) -> Result<(), String> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(format!(
                "the image has more than {} files, directories and links (--image-max-entries)",
                self.limits.max_entries
            ));
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_bytes {
            return Err(format!(
                "the image unpacks to more than {} (--image-max-unpacked-size)",
                crate::cli::human_size(self.limits.max_bytes)
            ));
        }
        Ok(())
    }
}

/// Extended attributes a layer may set: user ones and file capabilities (`ping`). Others
/// (`trusted.*`, `security.selinux`, ACLs) could grant or label beyond what the image's
/// files should carry on this host; they are left out, as a rootless unpack would.
fn xattr_allowed(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

/// Applies one layer (an uncompressed tar stream) onto `root` and returns the digest of the
/// stream (the layer's diff id). Its entries count against `budget`.
pub fn apply_layer<R: Read>(
    root: &Path,
    reader: R,
    layer: &str,
    budget: &mut Budget,
) -> Result<Digest, StoreError> {
    let err = |message: String| StoreError::Unpack {
        layer: layer.to_string(),
        message,
    };
    let mut archive = tar::Archive::new(HashingReader::new(reader));
    let mut applier = Applier {
        root,
        written: HashSet::new(),
        dirs: Vec::new(),
        budget,
    };
    let entries = archive
        .entries()
        .map_err(|e| err(format!("reading tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(format!("reading tar: {e}")))?;
        applier.apply(&mut entry).map_err(&err)?;
    }
    applier.finish_dirs().map_err(&err)?;
    archive
        .into_inner()
        .finish()
        .map_err(|e| err(format!("reading tar: {e}")))
}

struct Applier<'a> {
    root: &'a Path,
    budget: &'a mut Budget,
    /// Real paths this layer wrote (an opaque whiteout keeps them).
    written: HashSet<PathBuf>,
    /// Directories whose mode and mtime are set once the layer is done (writing children
    /// would change the mtime, and a read-only mode would stop an unprivileged unpack).
    dirs: Vec<(PathBuf, u32, u64)>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), String> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let size = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => entry.size(),
            _ => 0,
        };
        self.budget.take(size)?;
        let raw = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let comps = clean(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            return Ok(()); // "./": the root itself keeps its own metadata
        };
        let pax = Pax::read(entry);
        let header = entry.header();
        let mode = header
            .mode()
            .map_err(|e| format!("{}: bad mode: {e}", raw.display()))?
            & 0o7777;
        let uid = pax.uid.unwrap_or_else(|| header.uid().unwrap_or(0));
        let gid = pax.gid.unwrap_or_else(|| header.gid().unwrap_or(0));
        let mtime = pax.mtime.unwrap_or_else(|| header.mtime().unwrap_or(0));
        let name_str = name.to_string_lossy();

        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            let Some(dir) = resolve_dir(self.root, parents, false)? else {
                return Ok(());
            };
            if name_str == OPAQUE {
                prune(&dir, &self.written)
                    .map_err(|e| format!("{}: opaque whiteout: {e}", dir.display()))?;
            } else if hidden == "." || hidden == ".." {
                // `.wh..` and `.wh...` would delete the directory itself or its parent (the
                // root's parent, for one at the top): no layer names either.
                return Err(format!("{}: whiteout of {hidden:?}", raw.display()));
            } else if !hidden.is_empty() {
                remove_any(&dir.join(hidden))
                    .map_err(|e| format!("{}: whiteout: {e}", raw.display()))?;
            }
            return Ok(());
        }

        let parent =
            resolve_dir(self.root, parents, true)?.ok_or("unreachable: parent not created")?;
        let path = parent.join(name);
        let ctx = |e: io::Error| format!("{}: {e}", raw.display());
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&path).map_err(ctx)?;
                        fs::create_dir(&path).map_err(ctx)?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(ctx)?,
                }
                chown(&path, uid, gid).map_err(ctx)?;
                pax.set_xattrs(&path);
                self.dirs.push((path.clone(), mode, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_any(&path).map_err(ctx)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(ctx)?;
                io::copy(entry, &mut file).map_err(ctx)?;
                drop(file);
                chown(&path, uid, gid).map_err(ctx)?;
                pax.set_xattrs(&path);
                // After chown, which clears set-id bits.
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(ctx)?;
                filetime::set_file_mtime(&path, FileTime::from_unix_time(mtime as i64, 0))
                    .map_err(ctx)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{}: bad link target: {e}", raw.display()))?
                    .ok_or_else(|| format!("{}: symlink without target", raw.display()))?
                    .into_owned();
                remove_any(&path).map_err(ctx)?;
                std::os::unix::fs::symlink(&target, &path).map_err(ctx)?;
                chown(&path, uid, gid).map_err(ctx)?;
                pax.set_xattrs(&path);
                let t = FileTime::from_unix_time(mtime as i64, 0);
                filetime::set_symlink_file_times(&path, t, t).map_err(ctx)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{}: bad link target: {e}", raw.display()))?
                    .ok_or_else(|| format!("{}: hard link without target", raw.display()))?
                    .into_owned();
                let tcomps = clean(&target)?;
                let (tname, tparents) = tcomps
                    .split_last()
                    .ok_or_else(|| format!("{}: hard link to the root", raw.display()))?;
                let tdir = resolve_dir(self.root, tparents, false)?.ok_or_else(|| {
                    format!(
                        "{}: hard link target {} missing",
                        raw.display(),
                        target.display()
                    )
                })?;
                let tpath = tdir.join(tname);
                match fs::symlink_metadata(&tpath) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(format!("{}: hard link to a directory", raw.display())),
                    Err(e) => {
                        return Err(format!(
                            "{}: hard link target {}: {e}",
                            raw.display(),
                            target.display()
                        ));
                    }
                }
                if tpath != path {
                    remove_any(&path).map_err(ctx)?;
                    fs::hard_link(&tpath, &path).map_err(ctx)?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                tracing::debug!(path = %raw.display(), "skipping device node or fifo in layer");
                return Ok(());
            }
            tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
            | tar::EntryType::GNUSparse => {
                return Err(format!(
                    "{}: unsupported tar entry type {kind:?}",
                    raw.display()
                ));
            }
            other => {
                tracing::debug!(path = %raw.display(), kind = ?other, "skipping unknown tar entry type");
                return Ok(());
            }
        }
        self.written.insert(path);
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), String> {
        for (path, mode, mtime) in self.dirs.drain(..).rev() {
            let ctx = |e: io::Error| format!("{}: {e}", path.display());
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(ctx)?;
            filetime::set_file_mtime(&path, FileTime::from_unix_time(mtime as i64, 0))
                .map_err(ctx)?;
        }
        Ok(())
    }
}

/// What a PAX header adds to an entry: ids and mtime too large for the ustar fields, and
/// extended attributes (`SCHILY.xattr.*`, e.g. `security.capability` on `ping`).
#[derive(Default)]
struct Pax {
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Pax {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Pax {
        let mut pax = Pax::default();
        let Ok(Some(extensions)) = entry.pax_extensions() else {
            return pax;
        };
        for ext in extensions.flatten() {
            let Ok(key) = ext.key() else { continue };
            let number = || {
                ext.value()
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
            };
            match key {
                "uid" => pax.uid = number(),
                "gid" => pax.gid = number(),
                "mtime" => pax.mtime = number(),
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        if xattr_allowed(name) {
                            pax.xattrs
                                .push((name.to_string(), ext.value_bytes().to_vec()));
                        } else {
                            tracing::debug!(xattr = %name, "extended attribute not allowed in images; left out");
                        }
                    }
                }
            }
        }
        pax
    }

    /// Sets the extended attributes after chown (which clears `security.capability`). A
    /// file system or privilege that refuses one loses only that attribute.
    fn set_xattrs(&self, path: &Path) {
        for (name, value) in &self.xattrs {
            if let Err(e) = xattr::set(path, name, value) {
                tracing::debug!(path = %path.display(), xattr = %name, error = %e, "extended attribute not set");
            }
        }
    }
}

/// An entry name as normal components; `..` anywhere is rejected (a layer has no business
/// naming it, and it is the classic way out of the root).
fn clean(path: &Path) -> Result<Vec<OsString>, String> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "{}: path escapes the root (\"..\")",
                    path.display()
                ));
            }
            Component::Prefix(_) => return Err(format!("{}: invalid path", path.display())),
        }
    }
    Ok(out)
}

/// Resolves `comps` as a directory inside `root`, following symlinks as if `root` were `/`
/// (absolute targets restart at `root`, `..` stops at it). Missing directories are created
/// when `create` is set; otherwise `None` is returned for them.
fn resolve_dir(root: &Path, comps: &[OsString], create: bool) -> Result<Option<PathBuf>, String> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == OsStr::new("..") {
            resolved.pop();
            continue;
        }
        if c.is_empty() || c == OsStr::new(".") {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(format!(
                        "{}: too many levels of symbolic links",
                        candidate.display()
                    ));
                }
                let target = fs::read_link(&candidate)
                    .map_err(|e| format!("{}: {e}", candidate.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut next: VecDeque<OsString> = target
                    .components()
                    .filter_map(|tc| match tc {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .collect();
                next.extend(pending);
                pending = next;
            }
            Ok(m) if m.is_dir() => resolved.push(c),
            Ok(_) => {
                if !create {
                    return Ok(None);
                }
                return Err(format!(
                    "{}: parent is not a directory",
                    candidate.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                fs::create_dir(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))?;
                fs::set_permissions(&candidate, fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("{}: {e}", candidate.display()))?;
                resolved.push(c);
            }
            Err(e) => return Err(format!("{}: {e}", candidate.display())),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(Some(out))
}

/// Removes whatever is at `path` (never following a symlink); absent is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Empties `dir` of everything this layer did not write itself.
fn prune(dir: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
    for child in fs::read_dir(dir)? {
        let path = child?.path();
        if written.contains(&path) {
            if fs::symlink_metadata(&path)?.is_dir() {
                prune(&path, written)?;
            }
        } else {
            remove_any(&path)?;
        }
    }
    Ok(())
}

/// Sets the owner; an unprivileged unpack (tests) keeps its own.
fn chown(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return Ok(());
    };
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a tar in memory; names are written raw so tests can forge hostile ones.
    pub(crate) struct Layer(tar::Builder<Vec<u8>>);

    impl Layer {
        pub(crate) fn new() -> Self {
            Layer(tar::Builder::new(Vec::new()))
        }

        fn add(
            &mut self,
            name: &str,
            kind: tar::EntryType,
            mode: u32,
            link: Option<&str>,
            data: &[u8],
        ) {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            self.0.append(&h, data).expect("append to in-memory tar");
        }

        pub(crate) fn file(mut self, name: &str, data: &str) -> Self {
            self.add(name, tar::EntryType::Regular, 0o644, None, data.as_bytes());
            self
        }

        pub(crate) fn dir(mut self, name: &str, mode: u32) -> Self {
            self.add(name, tar::EntryType::Directory, mode, None, b"");
            self
        }

        pub(crate) fn symlink(mut self, name: &str, target: &str) -> Self {
            self.add(name, tar::EntryType::Symlink, 0o777, Some(target), b"");
            self
        }

        pub(crate) fn hardlink(mut self, name: &str, target: &str) -> Self {
            self.add(name, tar::EntryType::Link, 0o644, Some(target), b"");
            self
        }

        pub(crate) fn bytes(self) -> Vec<u8> {
            self.0.into_inner().expect("finish in-memory tar")
        }
    }

    fn apply(root: &Path, layer: Layer) -> Result<Digest, StoreError> {
        apply_layer(
            root,
            &layer.bytes()[..],
            "test",
            &mut Budget::new(UnpackLimits::default()),
        )
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(&p).unwrap_or_else(|e| format!("<{}: {e}>", p.display()))
    }

    #[test]
    fn whiteouts_delete_and_opaque_dirs_empty() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        apply(
            root,
            Layer::new()
                .dir("a/", 0o755)
                .file("a/f1", "1")
                .file("a/f2", "2")
                .dir("b/", 0o755)
                .file("b/old", "o")
                .dir("b/sub/", 0o755)
                .file("b/sub/deep", "d"),
        )
        .expect("layer 1");
        apply(
            root,
            Layer::new()
                .file("a/.wh.f1", "")
                .dir("b/", 0o755)
                .file("b/.wh..wh..opq", "")
                .file("b/new", "n"),
        )
        .expect("layer 2");
        assert!(!root.join("a/f1").exists());
        assert_eq!(read(root.join("a/f2")), "2");
        let mut names: Vec<_> = fs::read_dir(root.join("b"))
            .expect("b")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["new"]);
        assert!(!root.join("a/.wh.f1").exists());
    }

    #[test]
    fn keeps_modes_mtimes_symlinks_and_hardlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        apply(
            root,
            Layer::new()
                .dir("bin/", 0o755)
                .file("bin/busybox", "BB")
                .symlink("bin/sh", "busybox")
                .hardlink("bin/ash", "bin/busybox")
                .dir("ro/", 0o555),
        )
        .expect("layer");
        assert_eq!(
            fs::read_link(root.join("bin/sh")).expect("symlink"),
            PathBuf::from("busybox")
        );
        assert_eq!(read(root.join("bin/ash")), "BB");
        use std::os::unix::fs::MetadataExt;
        let a = fs::metadata(root.join("bin/ash")).expect("ash");
        let b = fs::metadata(root.join("bin/busybox")).expect("busybox");
        assert_eq!(a.ino(), b.ino());
        assert_eq!(b.mode() & 0o7777, 0o644);
        assert_eq!(b.mtime(), 1_000_000);
        assert_eq!(
            fs::metadata(root.join("ro")).expect("ro").mode() & 0o7777,
            0o555
        );
        assert_eq!(
            fs::metadata(root.join("bin")).expect("bin").mtime(),
            1_000_000
        );
    }

    #[test]
    fn rejects_dotdot_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        fs::create_dir(&root).expect("root");
        let err = apply(&root, Layer::new().file("../evil", "x")).expect_err("must fail");
        assert!(err.to_string().contains("escapes the root"), "{err}");
        assert!(!tmp.path().join("evil").exists());
        let err = apply(
            &root,
            Layer::new()
                .file("f", "x")
                .hardlink("h", "../../etc/passwd"),
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("escapes the root"), "{err}");
    }

    #[test]
    fn symlinks_cannot_lead_writes_out_of_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root).expect("root");
        fs::create_dir(&outside).expect("outside");
        let outside_str = outside.to_string_lossy().into_owned();
        apply(
            &root,
            Layer::new()
                .symlink("abs", &outside_str)
                .file("abs/pwned", "x")
                .symlink("up", "../../../..")
                .file("up/top", "y")
                .symlink("lib", "/usr/lib")
                .file("lib/libc.so", "z"),
        )
        .expect("layer");
        assert!(
            !outside.join("pwned").exists(),
            "wrote through an absolute symlink"
        );
        assert_eq!(
            read(
                root.join(outside.strip_prefix("/").expect("absolute"))
                    .join("pwned")
            ),
            "x"
        );
        assert!(!tmp.path().join("top").exists());
        assert_eq!(read(root.join("top")), "y");
        assert_eq!(read(root.join("usr/lib/libc.so")), "z");
        // A final-component symlink is replaced, never written through.
        apply(
            &root,
            Layer::new()
                .symlink("target", &format!("{outside_str}/f"))
                .file("target", "safe"),
        )
        .expect("layer");
        assert!(!outside.join("f").exists());
        assert_eq!(read(root.join("target")), "safe");
    }

    #[test]
    fn pax_ids_mtimes_and_xattrs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("mtime", &b"1700000000.5"[..]),
            ("SCHILY.xattr.user.baton", &b"yes"[..]),
            ("SCHILY.xattr.trusted.baton", &b"no"[..]),
        ])
        .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o755);
        h.set_mtime(5);
        b.append_data(&mut h, "bin/tool", &b"x"[..])
            .expect("append");
        let bytes = b.into_inner().expect("tar");
        apply_layer(
            tmp.path(),
            &bytes[..],
            "pax",
            &mut Budget::new(UnpackLimits::default()),
        )
        .expect("apply");
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(tmp.path().join("bin/tool")).expect("tool");
        assert_eq!(m.mtime(), 1_700_000_000);
        assert_eq!(m.mode() & 0o7777, 0o755);
        // Only where the file system takes user xattrs (tmpfs and ext4 do; some overlays not).
        if xattr::set(tmp.path(), "user.probe", b"1").is_ok() {
            assert_eq!(
                xattr::get(tmp.path().join("bin/tool"), "user.baton").expect("get"),
                Some(b"yes".to_vec())
            );
        }
        // Not on the allowlist: never set (as root, trusted.* would be).
        assert_eq!(
            xattr::get(tmp.path().join("bin/tool"), "trusted.baton").unwrap_or(None),
            None
        );
        assert!(xattr_allowed("user.x") && xattr_allowed("security.capability"));
        assert!(!xattr_allowed("trusted.x") && !xattr_allowed("security.selinux"));
    }

    #[test]
    fn an_image_that_unpacks_past_its_limits_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layer = || Layer::new().file("a", "12").file("b", "34").bytes();
        // Entries count over every layer of the image: 2 + 2 > 3.
        let mut budget = Budget::new(UnpackLimits {
            max_bytes: 1 << 20,
            max_entries: 3,
        });
        apply_layer(tmp.path(), &layer()[..], "one", &mut budget).expect("first layer fits");
        let err = apply_layer(tmp.path(), &layer()[..], "two", &mut budget)
            .expect_err("second layer passes the entry limit");
        assert!(
            err.to_string()
                .contains("more than 3 files, directories and links (--image-max-entries)"),
            "{err}"
        );
        let mut budget = Budget::new(UnpackLimits {
            max_bytes: 3,
            max_entries: 100,
        });
        let err = apply_layer(tmp.path(), &layer()[..], "big", &mut budget)
            .expect_err("4 bytes of files past a 3-byte limit");
        assert!(
            err.to_string()
                .contains("unpacks to more than 3B (--image-max-unpacked-size)"),
            "{err}"
        );
    }

    #[test]
    fn diff_id_is_the_digest_of_the_stream() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bytes = Layer::new().file("x", "1").bytes();
        let d = apply_layer(
            tmp.path(),
            &bytes[..],
            "t",
            &mut Budget::new(UnpackLimits::default()),
        )
        .expect("apply");
        assert_eq!(d, Digest::of(&bytes));
    }

    /// Found by `properties::hostile_layers_stay_inside_the_root`: `.wh...` named the
    /// parent of its directory, so a top-level one emptied the root's parent (the store's
    /// `tmp/`: other pulls' downloads and unpacks in progress), and `.wh..` the directory
    /// itself.
    #[test]
    fn whiteouts_of_dot_and_dot_dot_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        fs::create_dir(&root).expect("root");
        fs::write(tmp.path().join("sibling"), "keep").expect("sibling");
        apply(&root, Layer::new().dir("a/", 0o755).file("a/f", "1")).expect("layer 1");
        for name in [".wh...", ".wh..", "a/.wh...", "a/.wh.."] {
            let err = apply(&root, Layer::new().file(name, "")).expect_err(name);
            assert!(err.to_string().contains("whiteout of"), "{name}: {err}");
            assert_eq!(read(tmp.path().join("sibling")), "keep", "{name}");
            assert_eq!(read(root.join("a/f")), "1", "{name}");
        }
    }
}
