//! The store's integration tests: the shared conformance suite run against [`EmbeddedStore`],
//! plus what only a file-backed store has to prove — surviving restarts, `kill -9` mid-burst and
//! a second process opening the same file.
//!
//! Tests that need another process re-run this test binary with `CHILD_ENV` set, selecting the
//! one test function that then plays the child's part.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_store::conformance::{self, next_event};
use baton_store::{EmbeddedOptions, EmbeddedStore, Store, StoreError};
use futures::StreamExt;

/// Selects the child's role when this binary is re-executed by a test.
const CHILD_ENV: &str = "BATON_STORE_TEST_CHILD";
/// The store file the child opens.
const CHILD_PATH_ENV: &str = "BATON_STORE_TEST_PATH";
const HISTORY: usize = 64;

fn open(path: &Path, history: usize) -> EmbeddedStore {
    EmbeddedStore::open(
        path,
        EmbeddedOptions {
            history,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    let make = || {
        open(
            &dir.path()
                .join(format!("store-{}.redb", n.fetch_add(1, Ordering::Relaxed))),
            HISTORY,
        )
    };
    conformance::run_all(make, HISTORY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_durability_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    conformance::run_durability(|| open(&path, HISTORY)).await;
}

#[tokio::test]
async fn after_restart_only_the_current_revision_can_be_watched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let current = {
        let store = open(&path, HISTORY);
        store.create("/a/1", b"v".to_vec()).await.expect("create");
        store.create("/a/2", b"v".to_vec()).await.expect("create")
    };
    let store = open(&path, HISTORY);
    assert!(
        !store.repaired_on_open(),
        "a cleanly closed store needed repair"
    );
    match store.watch("/a/", current - 1).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (current - 1, current))
        }
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(_) => panic!("watching from before a restart succeeded, but history is not persisted"),
    }
    let mut watch = store
        .watch("/a/", current)
        .await
        .expect("watch from the current revision");
    let next = store.create("/a/3", b"v".to_vec()).await.expect("create");
    assert_eq!(next, current + 1);
    let event = next_event(&mut watch, "first event after restart").await;
    assert_eq!(event.kv.mod_revision, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_gets_lagged_and_its_stream_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(&dir.path().join("store.redb"), 8));
    let mut watch = store.watch("/", 0).await.expect("watch");
    let writes = (0..40).map(|i| {
        let store = store.clone();
        async move {
            store
                .create(&format!("/k/{i:02}"), b"v".to_vec())
                .await
                .expect("create")
        }
    });
    futures::future::join_all(writes).await;

    let mut delivered = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("watch stalled")
        {
            Some(Ok(event)) => delivered.push(event.kv.mod_revision),
            Some(Err(StoreError::WatcherLagged)) => break,
            Some(Err(other)) => panic!("expected WatcherLagged, got {other:?}"),
            None => panic!("the stream ended without WatcherLagged after {delivered:?}"),
        }
    }
    assert!(
        delivered.len() < 40,
        "a lagging watcher received everything"
    );
    assert!(
        delivered.windows(2).all(|w| w[1] == w[0] + 1),
        "events before the lag were not contiguous: {delivered:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("stalled")
            .is_none(),
        "the stream went on after WatcherLagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_bounded_by_bytes_as_well_as_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(
        &dir.path().join("store.redb"),
        EmbeddedOptions {
            history: 10_000,
            history_bytes: 1024 * 1024,
        },
    )
    .expect("open");
    let big = vec![b'x'; 300 * 1024];
    let first = store.create("/k", big.clone()).await.expect("create");
    let mut last = first;
    for _ in 0..9 {
        last = store.update("/k", big.clone(), None).await.expect("update");
    }
    // Each update holds the value and the previous one (600 KiB): about one fits in 1 MiB.
    match store.watch("/", first).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(_) => panic!("ten 300 KiB versions were all kept within a 1 MiB history"),
    }
    let mut watch = store
        .watch("/", last - 1)
        .await
        .expect("the newest event is kept");
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("stalled")
        .expect("an event")
        .expect("not an error");
    assert_eq!(event.kv.mod_revision, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_large_changes_is_dropped_by_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store.redb"), 10_000);
    let mut watch = store.watch("/", 0).await.expect("watch");
    let big = vec![b'x'; 2 * 1024 * 1024];
    store.create("/k", big.clone()).await.expect("create");
    // 40 updates of 2 MiB (4 MiB with the previous value): beyond the 64 MiB a watcher may
    // have queued, though far fewer events than its channel holds.
    for _ in 0..40 {
        store.update("/k", big.clone(), None).await.expect("update");
    }
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("watch stalled")
        {
            Some(Ok(_)) => delivered += 1,
            Some(Err(StoreError::WatcherLagged)) => break,
            Some(Err(other)) => panic!("expected WatcherLagged, got {other:?}"),
            None => panic!("the stream ended without WatcherLagged after {delivered} events"),
        }
    }
    assert!(
        delivered < 41,
        "a watcher queued all {delivered} large events"
    );
}

/// More bytes of writes at once than the write queue holds (64 MiB), one of them larger than
/// the whole queue: they wait their turn and every one is acknowledged, none refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_queue_bound_wait_their_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(&dir.path().join("store.redb"), HISTORY));
    let mut writes: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(&format!("/big/{i:02}"), vec![b'x'; 3 * 1024 * 1024])
                    .await
            })
        })
        .collect();
    let huge = store.clone();
    writes.push(tokio::spawn(async move {
        huge.create("/big/huge", vec![b'y'; 70 * 1024 * 1024]).await
    }));
    for w in writes {
        w.await
            .expect("task")
            .expect("a queued write is acknowledged");
    }
    let listed = store.list("/big/", None, None).await.expect("list");
    assert_eq!(listed.items.len(), 31);
    assert_eq!(store.health(), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_group_committed() {
    // Not a benchmark: with one fsync per write, 400 writes would take 400 fsyncs; batching
    // makes them complete well within what many sequential fsyncs would take on slow disks.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(&dir.path().join("store.redb"), HISTORY));
    let start = std::time::Instant::now();
    let writes = (0..400).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create(&format!("/g/{i:03}"), vec![0; 100])
                .await
                .expect("create")
        })
    });
    for w in futures::future::join_all(writes).await {
        w.expect("task");
    }
    assert_eq!(store.current_revision().await.expect("revision"), 400);
    tracing::info!(elapsed = ?start.elapsed(), "400 concurrent durable writes");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![0x5a; 8192]).expect("write garbage");
    match EmbeddedStore::open(&path, EmbeddedOptions::default()) {
        Err(StoreError::Backend(message)) => assert!(
            message.contains("garbage.redb"),
            "message does not name the file: {message}"
        ),
        Err(other) => panic!("expected a Backend error, got {other:?}"),
        Ok(_) => panic!("a garbage file opened as a store"),
    }
}

/// Spawns this test binary as a child playing `role` on the store at `path`.
fn spawn_child(role: &str, path: &Path) -> std::process::Child {
    let exe = std::env::current_exe().expect("current_exe");
    child_command(Command::new(exe), role, path)
}

/// Like [`spawn_child`], but the child may not grow any file beyond `kib` KiB, so its disk is
/// "full" from the store's point of view. `SIGXFSZ` is ignored so writes fail with `EFBIG`
/// instead of killing the child.
fn spawn_child_with_file_limit(role: &str, path: &Path, kib: u64) -> std::process::Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
            kib * 2
        ))
        .arg(exe);
    child_command(sh, role, path)
}

fn child_command(mut command: Command, role: &str, path: &Path) -> std::process::Child {
    command
        .args([
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, role)
        .env(CHILD_PATH_ENV, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// Acknowledged `(key, revision)` pairs from a child's `ACK key revision` lines.
fn acknowledged_writes(output: &str) -> Vec<(String, u64)> {
    output
        .lines()
        .filter_map(|line| line.split_once("ACK ").map(|(_, rest)| rest))
        .map(|rest| {
            let (key, revision) = rest.split_once(' ').expect("ACK line");
            (key.to_owned(), revision.parse().expect("revision"))
        })
        .collect()
}

/// The value every burst write stores under `key`, so the parent can check it is intact.
fn burst_value(key: &str) -> Vec<u8> {
    key.as_bytes().iter().cycle().take(512).copied().collect()
}

/// The child's side of the multi-process tests; a no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_role() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_PATH_ENV).expect("child needs a store path"));
    let store = Arc::new(open(&path, HISTORY));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let say = move |line: String| {
        let mut out = out.lock().expect("stdout lock");
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .expect("write to parent");
    };
    match role.as_str() {
        // Writes from several tasks until killed, reporting each write once it is acknowledged.
        "burst" => {
            say("READY".into());
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let store = store.clone();
                    let say = say.clone();
                    tokio::spawn(async move {
                        // Bounded, so a child whose parent died does not write forever.
                        for i in 0..20_000 {
                            let key = format!("/burst/{t}/{i:05}");
                            let revision = store
                                .create(&key, burst_value(&key))
                                .await
                                .expect("burst write");
                            say(format!("ACK {key} {revision}"));
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("burst task");
            }
        }
        // Writes until the disk is "full", then checks the failure left the store consistent.
        "fill" => {
            let before = store.current_revision().await.expect("revision");
            let mut last = before;
            let mut failure = None;
            for i in 0..10_000 {
                let key = format!("/fill/{i:05}");
                match store.create(&key, burst_value(&key).repeat(32)).await {
                    Ok(revision) => {
                        say(format!("ACK {key} {revision}"));
                        last = revision;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            match failure {
                Some(StoreError::NoSpace(message)) => say(format!("FULL {message}")),
                other => {
                    panic!("expected a NoSpace error once the file limit was hit, got {other:?}")
                }
            }
            assert!(
                matches!(store.health(), Err(StoreError::NoSpace(_))),
                "health after a failed commit: {:?}",
                store.health()
            );
            let after = store.current_revision().await.expect("revision");
            assert_eq!(after, last, "a failed write advanced the revision");
            let listed = store
                .list("/fill/", None, None)
                .await
                .expect("reads still work after a failed write");
            assert_eq!(listed.revision, last, "list revision after a failed write");
            assert_eq!(
                listed.items.len() as u64,
                last - before,
                "keys after a failed write"
            );
            // The store reopened its file: a write is tried again (not refused for an earlier
            // failure), and fails only for want of space.
            match store.create("/fill/again", b"v".to_vec()).await {
                Ok(revision) => say(format!("ACK /fill/again {revision}")),
                Err(StoreError::NoSpace(m)) => say(format!("AGAIN {m}")),
                Err(other) => panic!("a write after a disk failure: {other:?}"),
            }
        }
        // Holds the store open until the parent closes our stdin.
        "hold" => {
            say("READY".into());
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn every_acknowledged_write_survives_kill_9_mid_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let mut child = spawn_child("burst", &path);
    let stdout = child.stdout.take().expect("child stdout");
    let mut acknowledged = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    let mut killed = false;
    for line in lines.by_ref() {
        acknowledged.extend(acknowledged_writes(&line.expect("read child output")));
        if acknowledged.len() >= 300 && !killed {
            child.kill().expect("kill -9 the child");
            killed = true;
            // Keep reading: lines written before the kill were acknowledged too.
        }
    }
    child.wait().expect("reap child");
    assert!(
        killed,
        "the child exited before it was killed; acknowledged {}",
        acknowledged.len()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = open(&path, HISTORY);
        assert!(
            !store.repaired_on_open(),
            "the store needed a repair after kill -9"
        );
        let current = store.current_revision().await.expect("revision");
        for (key, revision) in &acknowledged {
            let kv = store
                .get(key)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("acknowledged {key} lost by kill -9"));
            assert_eq!(kv.mod_revision, *revision, "revision of {key}");
            assert!(kv.value == burst_value(key), "value of {key} damaged");
            assert!(
                *revision <= current,
                "acknowledged revision {revision} beyond the store's {current}"
            );
        }
        let listed = store.list("/burst/", None, None).await.expect("list");
        for kv in &listed.items {
            assert!(
                kv.value == burst_value(&kv.key),
                "value of unacknowledged {} damaged",
                kv.key
            );
        }
        let next = store
            .create("/after", b"v".to_vec())
            .await
            .expect("write after recovery");
        assert_eq!(next, current + 1, "revision after recovery");
    });
}

#[test]
fn opening_a_file_another_process_holds_fails_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let mut child = spawn_child("hold", &path);
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let ready = lines.find(|l| l.as_ref().is_ok_and(|l| l.ends_with("READY")));
    assert!(ready.is_some(), "the child did not open the store");

    let start = std::time::Instant::now();
    let result = EmbeddedStore::open(&path, EmbeddedOptions::default());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "open blocked on the other process's lock"
    );
    drop(child.stdin.take());
    child.wait().expect("reap child");
    match result {
        Err(StoreError::Backend(message)) => {
            assert!(
                message.contains("store.redb") && message.contains("already open"),
                "unclear error: {message}"
            );
        }
        Err(other) => panic!("expected a Backend error, got {other:?}"),
        Ok(_) => panic!("a second process opened a store file that is in use"),
    }
    // Once the holder is gone the file opens normally.
    drop(open(&path, HISTORY));
}

#[test]
fn a_full_disk_fails_writes_with_the_file_named_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let child = spawn_child_with_file_limit("fill", &path, 4 * 1024);
    let output = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed: {stdout}");
    let full = stdout
        .lines()
        .find_map(|l| l.split_once("FULL ").map(|(_, m)| m.to_owned()))
        .unwrap_or_else(|| panic!("the child never hit the limit: {stdout}"));
    assert!(
        full.contains("store.redb"),
        "the error does not name the file: {full}"
    );
    let acknowledged = acknowledged_writes(&stdout);
    assert!(
        !acknowledged.is_empty(),
        "nothing was written before the disk filled"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = open(&path, HISTORY);
        let last = acknowledged.last().map(|(_, r)| *r).unwrap_or(0);
        assert_eq!(
            store.current_revision().await.expect("revision"),
            last,
            "revision after reopen"
        );
        for (key, revision) in &acknowledged {
            let kv = store
                .get(key)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("{key} lost"));
            assert_eq!(kv.mod_revision, *revision, "revision of {key}");
            let want = if key == "/fill/again" {
                b"v".to_vec()
            } else {
                burst_value(key).repeat(32)
            };
            assert!(kv.value == want, "value of {key} damaged");
        }
        assert_eq!(
            store
                .create("/after", b"v".to_vec())
                .await
                .expect("write with space again"),
            last + 1
        );
    });
}

#[tokio::test]
async fn opening_a_file_this_process_already_has_open_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let first = open(&path, HISTORY);
    first.create("/a", b"v".to_vec()).await.expect("create");
    match EmbeddedStore::open(&path, EmbeddedOptions::default()) {
        Err(StoreError::Backend(message)) => {
            assert!(
                message.contains("store.redb") && message.contains("already open"),
                "unclear error: {message}"
            );
        }
        Err(other) => panic!("expected a Backend error, got {other:?}"),
        Ok(_) => panic!("the same store file was opened twice in one process"),
    }
    assert_eq!(
        first.get("/a").await.expect("get").map(|kv| kv.value),
        Some(b"v".to_vec())
    );
}
