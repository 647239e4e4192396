//! Pulls from an in-process fake registry, so the auth flows and failure paths are tested on
//! every `cargo test` without a real registry or root: a bearer-token challenge answered with
//! credentials from a pull secret, a Basic challenge, refused credentials (the registry's
//! own message reaches the user), a manifest list with several platforms, a blob served
//! through a redirect, and a blob whose content does not match its digest.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use baton_image::digest::Digest;
use baton_image::{ImageStore, PullPolicy, RegistryAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Bearer,
    Basic,
}

struct Fake {
    auth: Auth,
    /// Path → (content type, body).
    docs: HashMap<String, (String, Vec<u8>)>,
}

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
const TOKEN: &str = "token-for-alice";
const UNAUTHORIZED: &str =
    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    let data = b"hello from the fake registry\n";
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/motd", &data[..])
        .expect("append");
    b.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("json")
}

/// Builds the registry content: `app:v1` (a manifest list → amd64 manifest → gzip layer
/// served via a redirect) and `bad:v1` (a manifest whose layer content is wrong).
fn content() -> HashMap<String, (String, Vec<u8>)> {
    let tar = layer_tar();
    let layer = gzip(&tar);
    let config = json(serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"], "User": "1000:1000", "WorkingDir": "/etc"},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]}
    }));
    let (ld, cd) = (Digest::of(&layer), Digest::of(&config));
    let manifest = json(serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld.to_string(), "size": layer.len()}]
    }));
    let md = Digest::of(&manifest);
    let list = json(serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "0".repeat(64)),
             "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(),
             "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    }));
    let bad_layer_digest = Digest::of(b"what the manifest promises");
    let bad = json(serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": bad_layer_digest.to_string(), "size": 5}]
    }));
    let oci = "application/vnd.oci.image.manifest.v1+json".to_string();
    let octet = "application/octet-stream".to_string();
    let mut docs = HashMap::new();
    docs.insert(
        "/v2/app/manifests/v1".into(),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json".into(),
            list,
        ),
    );
    docs.insert(format!("/v2/app/manifests/{md}"), (oci.clone(), manifest));
    docs.insert(
        format!("/v2/app/blobs/{cd}"),
        (octet.clone(), config.clone()),
    );
    docs.insert(format!("/storage/{ld}"), (octet.clone(), layer));
    docs.insert("/v2/bad/manifests/v1".into(), (oci, bad));
    docs.insert(format!("/v2/bad/blobs/{cd}"), (octet.clone(), config));
    docs.insert(
        format!("/v2/bad/blobs/{bad_layer_digest}"),
        (octet, b"something else entirely".to_vec()),
    );
    docs
}

/// Serves one request per connection (`Connection: close`), which keeps the parser trivial.
async fn start(auth: Auth) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let fake = Arc::new(Fake {
        auth,
        docs: content(),
    });
    let realm = format!("http://{addr}/token");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let fake = fake.clone();
            let realm = realm.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let authorization = head
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    })
                    .map(|(_, v)| v.trim().to_string());
                let response = respond(&fake, &realm, &path, authorization.as_deref());
                let _ = conn.write_all(&response).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

fn respond(fake: &Fake, realm: &str, path: &str, authorization: Option<&str>) -> Vec<u8> {
    let reply = |status: &str, headers: &[(&str, String)], ct: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    if path.starts_with("/token") {
        return if authorization == Some(basic().as_str()) && path.contains("scope=repository:") {
            reply(
                "200 OK",
                &[],
                "application/json",
                format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
            )
        } else {
            reply(
                "401 Unauthorized",
                &[],
                "application/json",
                UNAUTHORIZED.as_bytes(),
            )
        };
    }
    if let Some(rest) = path.strip_prefix("/storage/") {
        // Redirect targets need no auth, like presigned storage URLs.
        return match fake.docs.get(path) {
            Some((ct, body)) => reply("200 OK", &[], ct, body),
            None => reply(
                "404 Not Found",
                &[],
                "text/plain",
                format!("no {rest}").as_bytes(),
            ),
        };
    }
    let (expected, challenge) = match fake.auth {
        Auth::Bearer => (
            format!("Bearer {TOKEN}"),
            format!(r#"Bearer realm="{realm}",service="fake""#),
        ),
        Auth::Basic => (basic(), r#"Basic realm="fake""#.to_string()),
    };
    if authorization != Some(expected.as_str()) {
        return reply(
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge)],
            "application/json",
            UNAUTHORIZED.as_bytes(),
        );
    }
    if let Some(digest) = path.strip_prefix("/v2/app/blobs/")
        && fake.docs.contains_key(&format!("/storage/{digest}"))
    {
        return reply(
            "307 Temporary Redirect",
            &[("Location", format!("/storage/{digest}"))],
            "text/plain",
            b"",
        );
    }
    match fake.docs.get(path) {
        Some((ct, body)) => reply("200 OK", &[], ct, body),
        None => reply(
            "404 Not Found",
            &[],
            "application/json",
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        ),
    }
}

fn pull_secret(addr: &str) -> RegistryAuth {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    RegistryAuth::from_docker_config(
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#).as_bytes(),
    )
    .expect("pull secret")
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("open");
    (dir, store)
}

#[tokio::test]
async fn bearer_token_flow_with_a_pull_secret() {
    let addr = start(Auth::Bearer).await;
    let (_dir, store) = store();
    let img = store
        .ensure(
            &format!("{addr}/app:v1"),
            PullPolicy::IfNotPresent,
            &pull_secret(&addr),
        )
        .await
        .expect("pull");
    assert_eq!(
        std::fs::read_to_string(img.rootfs.join("etc/motd")).expect("motd"),
        "hello from the fake registry\n"
    );
    assert_eq!(img.config.cmd, ["/bin/true"]);
    assert_eq!(img.config.user.as_deref(), Some("1000:1000"));
    assert_eq!(img.config.working_dir.as_deref(), Some("/etc"));
}

#[tokio::test]
async fn refused_credentials_show_the_registry_message() {
    let addr = start(Auth::Bearer).await;
    let (_dir, store) = store();
    let image = format!("{addr}/app:v1");
    let err = store
        .ensure(&image, PullPolicy::IfNotPresent, &RegistryAuth::anonymous())
        .await
        .expect_err("anonymous");
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(
        err.message(),
        format!("failed to pull image \"{image}\": {image}: unauthorized: authentication required")
    );
}

#[tokio::test]
async fn basic_auth_registries() {
    let addr = start(Auth::Basic).await;
    let (_dir, store) = store();
    let image = format!("{addr}/app:v1");
    let err = store
        .ensure(&image, PullPolicy::IfNotPresent, &RegistryAuth::anonymous())
        .await
        .expect_err("anonymous");
    assert!(
        err.message()
            .ends_with("unauthorized: authentication required"),
        "{}",
        err.message()
    );
    store
        .ensure(&image, PullPolicy::IfNotPresent, &pull_secret(&addr))
        .await
        .expect("with credentials");
}

#[tokio::test]
async fn corrupt_blobs_are_refused() {
    let addr = start(Auth::Bearer).await;
    let (_dir, store) = store();
    let image = format!("{addr}/bad:v1");
    let err = store
        .ensure(&image, PullPolicy::IfNotPresent, &pull_secret(&addr))
        .await
        .expect_err("corrupt");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        err.message().contains("digest mismatch") && err.message().contains("corrupt"),
        "{}",
        err.message()
    );
    assert!(store.list().await.expect("list").is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp"))
            .expect("tmp")
            .count(),
        0
    );

    let missing = format!("{addr}/app:v2");
    let err = store
        .ensure(&missing, PullPolicy::IfNotPresent, &pull_secret(&addr))
        .await
        .expect_err("missing");
    assert_eq!(
        err.message(),
        format!("failed to pull image \"{missing}\": {missing}: not found")
    );
}

#[tokio::test]
async fn pulls_that_would_fill_the_disk_are_refused() {
    let addr = start(Auth::Bearer).await;
    let (dir, store) = store();
    let image = format!("{addr}/app:v1");
    let auth = pull_secret(&addr);
    // Keeping all of the filesystem free leaves no room for a blob.
    let full = store
        .clone()
        .keeping_free(baton_image::MinFree::Percent(100.0));
    let err = full
        .ensure(&image, PullPolicy::IfNotPresent, &auth)
        .await
        .expect_err("no room");
    assert_eq!(err.reason(), "ErrImagePull");
    let message = err.message();
    let root = dir.path().join("images");
    assert!(
        message.starts_with(&format!(
            "failed to pull image \"{image}\": {image}: not enough disk space for images on {}: ",
            root.display()
        )) && message.contains("the image needs ")
            && message.contains("and 100% ("),
        "{message}"
    );
    assert!(
        store.list().await.expect("list").is_empty(),
        "nothing recorded"
    );
    // With room to spare the same pull goes through; present images need no space at all.
    let roomy = store.keeping_free(baton_image::MinFree::Percent(0.0));
    roomy
        .ensure(&image, PullPolicy::IfNotPresent, &auth)
        .await
        .expect("pull with room");
    full.ensure(&image, PullPolicy::Always, &auth)
        .await
        .expect("every blob present: nothing to download");
}
