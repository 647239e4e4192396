//! Pulls from a real registry (Debian's docker-registry) with the images
//! `tests/e2e/image-once.sh` pushes: `hello:v1` (OCI manifest) and `hello-v2s2:v1` (Docker
//! schema 2), both a static busybox with `/www/index.html`. Runs only when `BATON_REGISTRY`
//! names the registry (`127.0.0.1:5000`); `BATON_IMAGE_DOCKER_ARCHIVE` and
//! `BATON_IMAGE_OCI_ARCHIVE` name `docker save` / OCI archives of `hello:v1` for the import
//! test.

use std::collections::HashSet;
use std::path::Path;

use baton_image::{ImageStore, PullPolicy, RegistryAuth};

fn registry() -> Option<String> {
    match std::env::var("BATON_REGISTRY") {
        Ok(r) if !r.is_empty() => Some(r),
        _ => {
            eprintln!(
                "skipped: BATON_REGISTRY is not set; tests/e2e/image-once.sh starts a registry, \
                 pushes the test images and runs these tests"
            );
            None
        }
    }
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("open store");
    (dir, store)
}

fn blob_count(store: &ImageStore) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .expect("blobs")
        .count()
}

/// The rootfs runs: chroot into it (as root only) and use the busybox applets.
fn check_runs(rootfs: &Path, want_text: &str) {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!(
            "not root: skipping the chroot check of {}",
            rootfs.display()
        );
        return;
    }
    let out = std::process::Command::new("chroot")
        .arg(rootfs)
        .args([
            "/bin/sh",
            "-c",
            "cat /www/index.html && sleep 0 && h=$(hostname) && echo ok",
        ])
        .output()
        .expect("chroot");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chroot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, format!("{want_text}\nok\n"));
}

fn check_hello_rootfs(rootfs: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bb = std::fs::metadata(rootfs.join("bin/busybox")).expect("bin/busybox");
    assert!(
        bb.permissions().mode() & 0o111 != 0,
        "busybox is not executable"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh"))
            .expect("bin/sh symlink")
            .to_string_lossy(),
        "busybox"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("www/index.html")).expect("index.html"),
        format!("{text}\n")
    );
    check_runs(rootfs, text);
}

#[tokio::test]
async fn pulls_an_oci_image_then_uses_the_cache() {
    let Some(reg) = registry() else { return };
    let (_dir, store) = store();
    let auth = RegistryAuth::anonymous();
    let image = format!("{reg}/hello:v1");
    let img = store
        .ensure(&image, PullPolicy::IfNotPresent, &auth)
        .await
        .expect("pull");
    assert_eq!(img.reference, image);
    assert!(img.id.starts_with("sha256:"));
    assert_eq!(
        img.config.entrypoint,
        [
            "/bin/busybox",
            "httpd",
            "-f",
            "-v",
            "-p",
            "8080",
            "-h",
            "/www"
        ]
    );
    assert!(
        img.config.exposed_ports.contains(&"8080/tcp".to_string()),
        "{:?}",
        img.config.exposed_ports
    );
    assert!(img.config.env.contains(&"PATH=/bin".to_string()));
    check_hello_rootfs(&img.rootfs, "hello from baton");

    // Present now: IfNotPresent and Never do not touch the registry; Always re-resolves the
    // tag but downloads nothing.
    let blobs = blob_count(&store);
    let again = store
        .ensure(&image, PullPolicy::Never, &auth)
        .await
        .expect("cached");
    assert_eq!(again, img);
    let again = store
        .ensure(&image, PullPolicy::Always, &auth)
        .await
        .expect("repull");
    assert_eq!(again.id, img.id);
    assert_eq!(blob_count(&store), blobs);

    // By digest.
    let pinned = format!("{reg}/hello@{}", img.manifest_digest);
    let by_digest = store
        .ensure(&pinned, PullPolicy::IfNotPresent, &auth)
        .await
        .expect("by digest");
    assert_eq!(by_digest.id, img.id);
    let by_digest = store
        .ensure(&pinned, PullPolicy::Always, &auth)
        .await
        .expect("by digest from the registry");
    assert_eq!(by_digest.rootfs, img.rootfs);

    let listed = store.list().await.expect("list");
    assert!(
        listed
            .iter()
            .any(|s| s.repository == format!("{reg}/hello") && s.tag == "v1" && s.id == img.id)
    );
}

#[tokio::test]
async fn pulls_a_docker_schema2_image() {
    let Some(reg) = registry() else { return };
    let (_dir, store) = store();
    let img = store
        .ensure(
            &format!("{reg}/hello-v2s2:v1"),
            PullPolicy::IfNotPresent,
            &RegistryAuth::anonymous(),
        )
        .await
        .expect("pull v2s2");
    check_hello_rootfs(&img.rootfs, "hello v2s2");
    let manifest = std::fs::read_to_string(
        store
            .root()
            .join("blobs/sha256")
            .join(img.manifest_digest.trim_start_matches("sha256:")),
    )
    .expect("manifest blob");
    assert!(
        manifest.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{manifest}"
    );
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_share_the_work() {
    let Some(reg) = registry() else { return };
    let (_dir, store) = store();
    let image = format!("{reg}/hello:v1");
    let pulls = (0..4).map(|_| {
        let store = store.clone();
        let image = image.clone();
        tokio::spawn(async move {
            store
                .ensure(&image, PullPolicy::IfNotPresent, &RegistryAuth::anonymous())
                .await
        })
    });
    let mut ids = HashSet::new();
    for p in pulls {
        ids.insert(p.await.expect("join").expect("pull").id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp"))
            .expect("tmp")
            .count(),
        0,
        "temp files left behind"
    );
}

#[tokio::test]
async fn missing_images_and_down_registries_are_err_image_pull() {
    let Some(reg) = registry() else { return };
    let (_dir, store) = store();
    let auth = RegistryAuth::anonymous();

    let missing = format!("{reg}/nope:v1");
    let err = store
        .ensure(&missing, PullPolicy::IfNotPresent, &auth)
        .await
        .expect_err("missing");
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(
        err.message(),
        format!("failed to pull image \"{missing}\": {missing}: not found")
    );

    let missing_tag = format!("{reg}/hello:nope");
    let err = store
        .ensure(&missing_tag, PullPolicy::IfNotPresent, &auth)
        .await
        .expect_err("missing tag");
    assert_eq!(
        err.message(),
        format!("failed to pull image \"{missing_tag}\": {missing_tag}: not found")
    );

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let down = format!("127.0.0.1:{port}/hello:v1");
    let err = store
        .ensure(&down, PullPolicy::IfNotPresent, &auth)
        .await
        .expect_err("down");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        err.message().ends_with("connection refused"),
        "{}",
        err.message()
    );

    let err = store
        .ensure(&format!("{reg}/hello:v1"), PullPolicy::Never, &auth)
        .await
        .expect_err("never");
    assert_eq!(err.reason(), "ErrImageNeverPull");
    assert_eq!(
        err.message(),
        format!("Container image \"{reg}/hello:v1\" is not present with pull policy of Never")
    );

    let err = store
        .ensure(&format!("{reg}/Hello:v1"), PullPolicy::IfNotPresent, &auth)
        .await
        .expect_err("invalid");
    assert_eq!(err.reason(), "InvalidImageName");
}

#[tokio::test]
async fn remove_and_gc_free_what_no_one_uses() {
    let Some(reg) = registry() else { return };
    let (_dir, store) = store();
    let auth = RegistryAuth::anonymous();
    let a = store
        .ensure(&format!("{reg}/hello:v1"), PullPolicy::IfNotPresent, &auth)
        .await
        .expect("pull a");
    let b = store
        .ensure(
            &format!("{reg}/hello-v2s2:v1"),
            PullPolicy::IfNotPresent,
            &auth,
        )
        .await
        .expect("pull b");

    // Nothing unreferenced yet.
    let report = store.gc(&HashSet::new()).await.expect("gc");
    assert_eq!((report.blobs_removed, report.rootfs_removed), (0, 0));

    store
        .remove(&format!("{reg}/hello:v1"))
        .await
        .expect("remove a");
    store.remove(&b.id).await.expect("remove b by id");
    assert!(store.list().await.expect("list").is_empty());
    // b's rootfs is still in use by a container: it stays.
    let in_use: HashSet<String> = [b.id.clone()].into();
    let report = store.gc(&in_use).await.expect("gc");
    assert_eq!(report.rootfs_removed, 1);
    assert_eq!(report.blobs_removed, 6, "{report:?}");
    assert!(!a.rootfs.exists());
    assert!(b.rootfs.join("bin/busybox").exists());
    store.gc(&HashSet::new()).await.expect("gc");
    assert!(!b.rootfs.exists());
    assert_eq!(blob_count(&store), 0);
    assert!(store.remove("nothing:here").await.is_err());
}

#[tokio::test]
async fn imports_docker_and_oci_archives() {
    if registry().is_none() {
        return;
    }
    for var in ["BATON_IMAGE_DOCKER_ARCHIVE", "BATON_IMAGE_OCI_ARCHIVE"] {
        let Ok(path) = std::env::var(var) else {
            eprintln!("skipped: {var} is not set");
            continue;
        };
        let (_dir, store) = store();
        let images = store
            .import(Path::new(&path))
            .await
            .unwrap_or_else(|e| panic!("import {path}: {e}"));
        assert_eq!(images.len(), 1, "{var}");
        assert_eq!(images[0].reference, "localhost/hello:v1", "{var}");
        check_hello_rootfs(&images[0].rootfs, "hello from baton");
        let got = store
            .ensure(
                "localhost/hello:v1",
                PullPolicy::Never,
                &RegistryAuth::anonymous(),
            )
            .await
            .expect("present");
        assert_eq!(got.id, images[0].id);
    }
}

#[tokio::test]
async fn cli_pull_ls_import_rm() {
    use baton_image::cli::{ImageCommand, run_to};
    let Some(reg) = registry() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("images");
    let mut out = Vec::new();
    let pull = ImageCommand::Pull {
        image: format!("{reg}/hello:v1"),
        insecure_registry: vec![],
        auth_file: None,
    };
    run_to(pull, &root, &mut out).await.expect("pull");
    if let Ok(archive) = std::env::var("BATON_IMAGE_DOCKER_ARCHIVE") {
        run_to(
            ImageCommand::Import {
                file: archive.into(),
            },
            &root,
            &mut out,
        )
        .await
        .expect("import");
    }
    run_to(ImageCommand::Ls, &root, &mut out).await.expect("ls");
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.contains("Image is up to date for sha256:"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("IMAGE"))
        .expect("header");
    assert!(
        header.contains("TAG") && header.contains("IMAGE ID") && header.ends_with("SIZE"),
        "{header}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{reg}/hello ")))
        .expect("row for hello");
    assert!(
        row.contains(" v1 ") && (row.ends_with("MB") || row.ends_with("kB")),
        "{row}"
    );

    let mut out = Vec::new();
    run_to(
        ImageCommand::Rm {
            image: format!("{reg}/hello:v1"),
        },
        &root,
        &mut out,
    )
    .await
    .expect("rm");
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("Deleted: {reg}/hello:v1\n")
    );
    let err = run_to(
        ImageCommand::Rm {
            image: format!("{reg}/hello:v1"),
        },
        &root,
        &mut out,
    )
    .await
    .expect_err("gone");
    assert!(err.to_string().contains("not found"), "{err}");
}
