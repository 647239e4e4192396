//! The etcd backend against a real etcd (Debian's `etcd-server`, 3.4), started by each test
//! on free loopback ports in a temporary directory and killed when it ends: the shared
//! conformance and durability suites, unchanged, plus what only etcd has — its own
//! compaction, several stores on one etcd, and etcd going away and coming back.
//!
//! Without an `etcd` binary the tests fail, saying what to install.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton_store::conformance::{self, next_event};
use baton_store::{EtcdOptions, EtcdStore, EventType, Store, StoreError};

const HISTORY: u64 = 64;

/// One etcd member on loopback, killed on drop.
struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    extra: Vec<String>,
}

impl Etcd {
    fn start() -> Etcd {
        Etcd::start_with(tempfile::tempdir().expect("tempdir"), &[])
    }

    /// An etcd in `dir` with `extra` arguments (its client URL is https when they name a
    /// `--cert-file`).
    fn start_with(dir: tempfile::TempDir, extra: &[String]) -> Etcd {
        let (client_port, peer_port) = (free_port(), free_port());
        let child = spawn_etcd(dir.path(), client_port, peer_port, extra);
        let etcd = Etcd {
            child,
            dir,
            client_port,
            peer_port,
            extra: extra.to_vec(),
        };
        etcd.wait_ready();
        etcd
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn options(&self, prefix: &str) -> EtcdOptions {
        let mut opts =
            EtcdOptions::from_url(&format!("etcd://{}", self.endpoint())).expect("etcd url");
        opts.prefix = prefix.to_owned();
        opts.history = HISTORY;
        opts.compaction_interval = None;
        opts
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not listen on 127.0.0.1:{} within 20 s; its log:\n{}",
                self.client_port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// `kill -9`, then the same member on the same data and ports again.
    fn restart_after(&mut self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.child = spawn_etcd(
            self.dir.path(),
            self.client_port,
            self.peer_port,
            &self.extra,
        );
        self.wait_ready();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_etcd(dir: &Path, client_port: u16, peer_port: u16, extra: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .expect("etcd log");
    let scheme = if extra.iter().any(|a| a == "--cert-file") {
        "https"
    } else {
        "http"
    };
    let client = format!("{scheme}://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    Command::new(etcd_binary())
        .args(["--name", "test", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("test={peer}")])
        // Baton's objects go up to 3 MiB (etcd's default request limit is 1.5 MiB).
        .args(["--max-request-bytes", "4194304"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting etcd: {e}"))
}

/// The `etcd` binary: `$ETCD`, or `etcd` on the PATH, or Debian's.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ETCD") {
        return path.into();
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "these tests need a real etcd 3.4 and found no `etcd` on the PATH: install Debian's \
             etcd-server (scripts/packages.sh does), or set ETCD to the binary"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Connects from the synchronous factories the suites take (on a multi-threaded runtime).
fn connect_blocking(opts: EtcdOptions) -> EtcdStore {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(EtcdStore::connect(opts))
    })
    .unwrap_or_else(|e| panic!("connecting to etcd: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_conformance_suite() {
    let etcd = Etcd::start();
    // Every check gets an empty store: a prefix of its own on the one etcd.
    let n = AtomicUsize::new(0);
    let make = || {
        let prefix = format!("/conformance-{}", n.fetch_add(1, Ordering::Relaxed));
        connect_blocking(etcd.options(&prefix))
    };
    conformance::run_all(make, HISTORY as usize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_durability_suite() {
    let etcd = Etcd::start();
    conformance::run_durability(|| connect_blocking(etcd.options("/durability"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_makes_old_revisions_answer_compacted() {
    let etcd = Etcd::start();
    let mut opts = etcd.options("/compaction");
    // Only etcd's compaction limits history here, every 300 ms instead of 5 minutes.
    opts.history = 0;
    opts.compaction_interval = Some(Duration::from_millis(300));
    let store = EtcdStore::connect(opts).await.expect("connect");
    let first = store.create("/c/a", b"1".to_vec()).await.expect("create");
    store
        .update("/c/a", b"2".to_vec(), None)
        .await
        .expect("update");
    let mut watch = store.watch("/c/", first).await.expect("watch after first");
    let event = next_event(&mut watch, "the update").await;
    assert_eq!(event.kind, EventType::Modified);

    // Each interval compacts to the revision seen one interval before, so after a few
    // intervals with writes in between, `first` is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (requested, oldest) = loop {
        store
            .update("/c/a", b"more".to_vec(), None)
            .await
            .expect("update");
        match store.watch("/c/", first).await {
            Err(StoreError::Compacted { requested, oldest }) => break (requested, oldest),
            Err(other) => panic!("watch from a compacted revision: {other:?}"),
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "revision {first} still watchable after 10 s of 300 ms compactions"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(requested, first);
    assert!(oldest > first, "oldest {oldest} not after {first}");
    // etcd itself refuses the old revision: the store did not make this up.
    let raw = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .expect("raw client");
    let old = raw
        .kv_client()
        .get(
            "/compaction/c/a",
            Some(etcd_client::GetOptions::new().with_revision(first as i64)),
        )
        .await;
    assert!(
        old.as_ref()
            .is_err_and(|e| e.to_string().contains("compacted")),
        "etcd still reads revision {first}: {old:?}"
    );
    // Recent history is kept: a watch from the current revision works and sees what follows.
    let current = store.current_revision().await.expect("revision");
    let mut recent = store.watch("/c/", current).await.expect("recent watch");
    let next = store
        .update("/c/a", b"last".to_vec(), None)
        .await
        .expect("update");
    assert_eq!(
        next_event(&mut recent, "after compaction")
            .await
            .kv
            .mod_revision,
        next
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_etcd_see_each_others_writes_and_events() {
    let etcd = Etcd::start();
    let a = EtcdStore::connect(etcd.options("/shared"))
        .await
        .expect("a");
    let b = EtcdStore::connect(etcd.options("/shared"))
        .await
        .expect("b");
    let mut watch = b.watch("/s/", 0).await.expect("watch on b");
    let r1 = a.create("/s/x", b"1".to_vec()).await.expect("create on a");
    let seen = next_event(&mut watch, "a's create, on b").await;
    assert_eq!((seen.kind, seen.kv.mod_revision), (EventType::Added, r1));
    // b's write conditioned on a's revision succeeds; a's stale one then conflicts.
    let r2 = b
        .update("/s/x", b"2".to_vec(), Some(r1))
        .await
        .expect("update on b");
    assert_eq!(
        a.update("/s/x", b"3".to_vec(), Some(r1)).await,
        Err(StoreError::Conflict {
            key: "/s/x".into(),
            expected: r1,
            current: r2
        })
    );
    assert_eq!(
        a.get("/s/x").await.expect("get").map(|kv| kv.value),
        Some(b"2".to_vec())
    );
    // Another prefix on the same etcd is another store.
    let other = EtcdStore::connect(etcd.options("/other"))
        .await
        .expect("other");
    assert_eq!(other.get("/s/x").await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_outage_fails_requests_and_health_until_it_is_back() {
    let mut etcd = Etcd::start();
    let store = EtcdStore::connect(etcd.options("/outage"))
        .await
        .expect("connect");
    let before = store.create("/o/a", b"1".to_vec()).await.expect("create");
    assert_eq!(store.health(), Ok(()));

    etcd.stop();
    let failed = store.create("/o/b", b"1".to_vec()).await;
    match &failed {
        Err(StoreError::Backend(message)) => assert!(
            message.contains(&etcd.endpoint()),
            "the error does not name etcd's address: {message}"
        ),
        other => panic!("a write with etcd down: {other:?}"),
    }
    assert!(store.health().is_err(), "healthy with etcd down");

    etcd.restart_after(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.health().is_err() {
        assert!(
            Instant::now() < deadline,
            "still unhealthy 15 s after etcd came back: {:?}",
            store.health()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kv = store.get("/o/a").await.expect("get").expect("/o/a kept");
    assert_eq!(kv.mod_revision, before);
    let after = store.create("/o/b", b"1".to_vec()).await.expect("create");
    assert!(after > before);
}

#[tokio::test]
async fn connecting_to_no_etcd_fails_naming_the_address() {
    let port = free_port();
    let opts = EtcdOptions::from_url(&format!("etcd://127.0.0.1:{port}")).expect("url");
    let start = Instant::now();
    match EtcdStore::connect(opts).await {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}")
        }
        Err(other) => panic!("expected a Backend error, got {other:?}"),
        Ok(_) => panic!("connected to an etcd that does not exist"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(35),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn etcd_urls_are_parsed_and_bad_ones_refused() {
    let opts = EtcdOptions::from_url("etcd://10.0.0.1:2379,etcd-2.example:2379").expect("url");
    assert_eq!(opts.endpoints, ["10.0.0.1:2379", "etcd-2.example:2379"]);
    assert_eq!(opts.prefix, "/baton");
    for bad in [
        "http://h:1",
        "etcd://",
        "etcd://h",
        "etcd://h:x",
        "etcd://h:1,",
        "etcd://:1",
    ] {
        assert!(EtcdOptions::from_url(bad).is_err(), "{bad} accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_an_embedded_store_into_an_empty_etcd_prefix() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let from = baton_store::EmbeddedStore::open(
        &dir.path().join("store.redb"),
        baton_store::EmbeddedOptions::default(),
    )
    .expect("embedded store");
    // More than one page of the copy, some keys updated and deleted on the way.
    for i in 0..1203 {
        from.create(
            &format!("/registry/core/configmaps/default/c{i:04}"),
            format!("v{i}").into_bytes(),
        )
        .await
        .expect("create");
    }
    from.update(
        "/registry/core/configmaps/default/c0007",
        b"updated".to_vec(),
        None,
    )
    .await
    .expect("update");
    from.delete("/registry/core/configmaps/default/c0008", None)
        .await
        .expect("delete");
    let to = EtcdStore::connect(etcd.options("/migrated"))
        .await
        .expect("etcd");
    let copied = baton_store::migrate::copy(&from, &to, "/")
        .await
        .expect("copy");
    assert_eq!(copied, 1202);

    let source = from.list("/", None, None).await.expect("list source");
    let target = to.list("/", None, None).await.expect("list target");
    let pairs = |l: &baton_store::ListResult| -> Vec<(String, Vec<u8>)> {
        l.items
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    };
    assert_eq!(
        pairs(&target),
        pairs(&source),
        "keys and values in etcd after the copy"
    );

    // A second copy into the same prefix is refused before writing anything.
    let before = to.current_revision().await.expect("revision");
    match baton_store::migrate::copy(&from, &to, "/").await {
        Err(StoreError::AlreadyExists { key }) => {
            assert_eq!(key, "/registry/core/configmaps/default/c0000")
        }
        other => panic!("a copy into a non-empty prefix: {other:?}"),
    }
    assert_eq!(to.current_revision().await.expect("revision"), before);
}

/// A CA, and certificates it signed for etcd (serving, 127.0.0.1) and for a client, as PEM
/// files in `dir`: ca.crt, server.crt/key, client.crt/key.
fn write_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write");
    let issuer = Issuer::new(ca, &ca_key);
    for (name, usage, names) in [
        (
            "server",
            ExtendedKeyUsagePurpose::ServerAuth,
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        ),
        (
            "client",
            ExtendedKeyUsagePurpose::ClientAuth,
            vec!["baton".to_owned()],
        ),
    ] {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certificates(dir.path());
    let base = dir.path().to_path_buf();
    let file = |name: &str| base.join(name);
    let arg = |name: &str| file(name).display().to_string();
    let etcd = Etcd::start_with(
        dir,
        &[
            "--cert-file".into(),
            arg("server.crt"),
            "--key-file".into(),
            arg("server.key"),
            "--trusted-ca-file".into(),
            arg("ca.crt"),
            "--client-cert-auth".into(),
        ],
    );
    let with_tls = |tls: baton_store::EtcdTls| {
        let mut opts = etcd.options("/tls");
        opts.tls = Some(tls);
        opts
    };
    let store = EtcdStore::connect(with_tls(baton_store::EtcdTls {
        ca: Some(file("ca.crt")),
        cert: Some(file("client.crt")),
        key: Some(file("client.key")),
    }))
    .await
    .expect("connect over TLS with a client certificate");
    let r = store.create("/t/a", b"v".to_vec()).await.expect("create");
    let mut watch = store.watch("/t/", r - 1).await.expect("watch over TLS");
    assert_eq!(next_event(&mut watch, "over TLS").await.kv.mod_revision, r);

    // etcd requires a client certificate: without one nothing is served.
    let refused = EtcdStore::connect(with_tls(baton_store::EtcdTls {
        ca: Some(file("ca.crt")),
        cert: None,
        key: None,
    }))
    .await;
    assert!(
        matches!(&refused, Err(StoreError::Backend(m)) if m.contains(&etcd.endpoint())),
        "connecting without a client certificate: {:?}",
        refused.as_ref().map(|_| ())
    );
    // Plain HTTP to a TLS etcd fails too, and so does a certificate without its key.
    assert!(EtcdStore::connect(etcd.options("/tls")).await.is_err());
    let half = EtcdStore::connect(with_tls(baton_store::EtcdTls {
        ca: Some(file("ca.crt")),
        cert: Some(file("client.crt")),
        key: None,
    }))
    .await;
    assert!(
        matches!(&half, Err(StoreError::Backend(m)) if m.contains("needs its key")),
        "a certificate without its key: {:?}",
        half.as_ref().map(|_| ())
    );
}
