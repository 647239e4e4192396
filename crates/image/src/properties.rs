//! Property tests (issue 13's fuzzing) of what an image's author or a pod's spec controls:
//! image references, and layer tarballs. Any text given as an image name parses or fails
//! (never panics) and a parsed reference printed and parsed again is the same reference; any
//! layer, random bytes, mutated layers and hostile entries (`..`, absolute names, symlinks
//! and hard links out of the root, whiteouts of `.` and `..`) is applied or refused without a
//! panic and without touching anything outside the root. A bounded number of cases runs in
//! the ordinary `cargo test` (`PROPTEST_CASES` asks for more); a failure is saved under
//! `proptest-regressions/` (commit it) and becomes a plain test.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::reference::Reference;
use crate::unpack::apply_layer;

fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

/// Text made mostly of the pieces of image names.
fn image_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        6 => "[a-z0-9]{1,6}",
        1 => "[A-Za-z0-9_.-]{1,8}",
        1 => Just(format!("sha256:{}", "ab".repeat(32))),
        4 => prop::sample::select(&[
            "/", ":", "@", ".", "-", "_", "__", "localhost", "docker.io", "index.docker.io",
            "library", "127.0.0.1:5000", "[::1]:5000", "sha256:", "é", " ", "\u{0}",
        ][..])
        .prop_map(String::from),
    ];
    prop_oneof![
        4 => prop::collection::vec(token, 0..12).prop_map(|t| t.concat()),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn references_parse_or_fail_and_print_back(s in image_text()) {
        if let Ok(r) = Reference::parse(&s) {
            let printed = r.to_string();
            let again = Reference::parse(&printed);
            prop_assert!(again.is_ok(), "{:?} printed as {:?}: {:?}", s, printed, again);
            let again = again.expect("checked");
            prop_assert_eq!(
                (&again.registry, &again.repository, &again.tag, &again.digest),
                (&r.registry, &r.repository, &r.tag, &r.digest),
                "{:?} printed as {:?}", s, printed
            );
            let _ = (r.api_host(), r.manifest_ref(), r.name());
        }
    }
}

/// One tar entry of a generated layer.
#[derive(Debug, Clone)]
enum Entry {
    File(String, String),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

/// Entry names: ordinary paths, whiteouts, and the ways out of a root.
fn name() -> impl Strategy<Value = String> {
    let comp = prop::sample::select(
        &[
            "a",
            "b",
            "lib",
            "x",
            ".",
            "..",
            "",
            ".wh.a",
            ".wh.b",
            ".wh.lib",
            ".wh..wh..opq",
            ".wh..",
            ".wh...",
            ".wh.",
            "@OUT",
        ][..],
    );
    (any::<bool>(), prop::collection::vec(comp, 1..5)).prop_map(|(abs, c)| {
        let joined = c.join("/");
        if abs { format!("/{joined}") } else { joined }
    })
}

/// Link targets, including ones that point out of the root (`@OUT` is the outside
/// directory's absolute path).
fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "/",
                "..",
                "../..",
                "../../..",
                "/@OUT",
                "@OUT",
                "@OUT/secret",
                "a",
                "a/b",
                "/a",
                "lib",
                "../lib",
                "x",
                ".",
            ][..]
        )
        .prop_map(String::from),
        name(),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => (name(), "[a-z]{0,8}").prop_map(|(n, d)| Entry::File(n, d)),
        2 => name().prop_map(Entry::Dir),
        2 => (name(), target()).prop_map(|(n, t)| Entry::Symlink(n, t)),
        1 => (name(), target()).prop_map(|(n, t)| Entry::Hardlink(n, t)),
    ]
}

/// A sandbox: `<tmp>/root` to unpack into, `<tmp>/out` with a file that must stay as it is.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("root")).expect("root");
        fs::create_dir(tmp.path().join("out")).expect("out");
        fs::write(tmp.path().join("out/secret"), "secret").expect("secret");
        Sandbox { tmp }
    }

    fn root(&self) -> std::path::PathBuf {
        self.tmp.path().join("root")
    }

    fn outside(&self) -> String {
        self.tmp.path().join("out").display().to_string()
    }

    /// Replaces `@OUT` with the outside directory (relative names lose its leading `/`).
    fn place(&self, s: &str) -> String {
        s.replace("/@OUT", &self.outside())
            .replace("@OUT", self.outside().trim_start_matches('/'))
    }

    fn layer(&self, entries: &[Entry]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let (name, kind, link, data) = match e {
                Entry::File(n, d) => (n, tar::EntryType::Regular, None, d.as_bytes()),
                Entry::Dir(n) => (n, tar::EntryType::Directory, None, &b""[..]),
                Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, Some(t), &b""[..]),
                Entry::Hardlink(n, t) => (n, tar::EntryType::Link, Some(t), &b""[..]),
            };
            let name = self.place(name);
            let link = link.map(|l| self.place(l));
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_size(data.len() as u64);
            h.set_mtime(1_000_000);
            // Raw names (the builder's own setters refuse `..`), cut to the field's size.
            let old = h.as_old_mut();
            let n = name.len().min(old.name.len() - 1);
            old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
            if let Some(l) = link {
                let n = l.len().min(old.linkname.len() - 1);
                old.linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
            }
            h.set_cksum();
            b.append(&h, data).expect("append to an in-memory tar");
        }
        b.into_inner().expect("finish an in-memory tar")
    }

    /// Applies the layers in order (a refused layer is fine) and checks nothing outside the
    /// root changed and no file in the root is the outside file.
    fn apply_and_check(&self, layers: &[Vec<u8>]) -> Result<(), TestCaseError> {
        for (i, layer) in layers.iter().enumerate() {
            let mut budget = crate::unpack::Budget::new(crate::unpack::UnpackLimits::default());
            let _ = apply_layer(&self.root(), &layer[..], &format!("layer{i}"), &mut budget);
        }
        let top: Vec<String> = fs::read_dir(self.tmp.path())
            .map_err(|e| TestCaseError::fail(format!("the sandbox is gone: {e}")))?
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        prop_assert_eq!(top, vec!["out".to_string(), "root".to_string()]);
        let out: Vec<_> = fs::read_dir(self.tmp.path().join("out"))
            .expect("out")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        prop_assert_eq!(
            out.len(),
            1,
            "something was written outside the root: {:?}",
            out
        );
        let secret = self.tmp.path().join("out/secret");
        let content = fs::read_to_string(&secret).ok();
        prop_assert_eq!(content.as_deref(), Some("secret"));
        let secret_ino = fs::metadata(&secret).expect("secret").ino();
        let mut inodes = BTreeMap::new();
        walk(&self.root(), &mut inodes);
        prop_assert!(
            !inodes.contains_key(&secret_ino),
            "{:?} is a hard link to the outside file",
            inodes.get(&secret_ino)
        );
        Ok(())
    }
}

/// Every inode under `dir` (not following symlinks).
fn walk(dir: &Path, out: &mut BTreeMap<u64, std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        out.insert(m.ino(), p.clone());
        if m.is_dir() {
            walk(&p, out);
        }
    }
}

proptest! {
    #![proptest_config(config(150))]

    #[test]
    fn hostile_layers_stay_inside_the_root(
        layers in prop::collection::vec(prop::collection::vec(entry(), 1..8), 1..3),
    ) {
        let s = Sandbox::new();
        let tars: Vec<_> = layers.iter().map(|l| s.layer(l)).collect();
        s.apply_and_check(&tars)?;
    }

    #[test]
    fn random_and_mutated_layers_are_applied_or_refused(
        entries in prop::collection::vec(entry(), 1..6),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        random in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let s = Sandbox::new();
        let mut layer = s.layer(&entries);
        let n = layer.len();
        for (i, b) in edits {
            layer[i % n] = b;
        }
        s.apply_and_check(&[layer, random])?;
    }
}
