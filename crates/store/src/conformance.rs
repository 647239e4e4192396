//! The behaviour every [`Store`] backend must show, written once as async checks so the embedded
//! store and etcd are held to exactly the same contract.
//!
//! Each check is a `pub async fn` taking a fresh, empty store and panicking with a message that
//! says what was expected and what happened. A backend's integration tests call [`run_all`] with
//! a factory, and [`run_durability`] with a function that (re)opens the same persistent store.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::{EventType, KeyValue, Revision, Store, StoreError, WatchEvent, WatchStream};

/// How long any single awaited step may take before a check fails instead of hanging.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every backend-agnostic check, each on a fresh store from `make`.
///
/// `history_window` is how many events the stores keep for resuming watches: the compaction
/// check writes more than that many; the other checks need it to be at least 32.
pub async fn run_all<S: Store>(make: impl Fn() -> S, history_window: usize) {
    assert!(
        history_window >= 32,
        "the conformance suite needs a watch history of at least 32 events"
    );
    create_get_and_already_exists(make().into()).await;
    update_with_and_without_expected_revision(make().into()).await;
    stale_expected_revision_conflicts(make().into()).await;
    update_and_delete_of_missing_key_are_not_found(make().into()).await;
    delete_returns_old_value(make().into()).await;
    revisions_strictly_increase_across_keys(make().into()).await;
    create_revision_and_mod_revision(make().into()).await;
    list_orders_keys_and_isolates_prefixes(make().into()).await;
    list_paginates_with_start_after_and_limit(make().into()).await;
    list_reports_the_revision_it_read_at(make().into()).await;
    watch_from_now_sees_only_later_changes(make().into()).await;
    watch_from_past_revision_replays_missed_events_in_order(make().into()).await;
    watch_filters_by_prefix(make().into()).await;
    watch_delivers_modified_and_deleted_events_with_previous_values(make().into()).await;
    watch_started_during_concurrent_writes_has_no_gap_or_duplicate(make().into()).await;
    watch_from_compacted_revision_fails(make().into(), history_window).await;
    hundred_concurrent_writers_are_all_acknowledged_and_readable(make().into()).await;
}

/// Runs the checks that need a store to survive being closed. `open` must open the same
/// persistent store each time it is called (empty the first time); a store is dropped before
/// `open` is called again.
pub async fn run_durability<S: Store>(open: impl Fn() -> S) {
    reopen_keeps_acknowledged_writes_and_continues_revisions(open).await;
}

pub async fn create_get_and_already_exists<S: Store>(store: Arc<S>) {
    let rev = ok(store.create("/c/a", b"one".to_vec()).await, "create /c/a");
    assert!(rev > 0, "create returned revision 0");
    let kv = ok(store.get("/c/a").await, "get /c/a")
        .unwrap_or_else(|| panic!("/c/a missing after create"));
    assert_eq!(
        kv,
        KeyValue {
            key: "/c/a".into(),
            value: b"one".to_vec(),
            create_revision: rev,
            mod_revision: rev
        }
    );
    assert_eq!(
        ok(store.get("/c/missing").await, "get /c/missing"),
        None,
        "get of a missing key"
    );

    let again = store.create("/c/a", b"two".to_vec()).await;
    assert_eq!(
        again,
        Err(StoreError::AlreadyExists { key: "/c/a".into() }),
        "second create of /c/a"
    );
    let kv = ok(store.get("/c/a").await, "get /c/a").unwrap_or_else(|| panic!("/c/a missing"));
    assert_eq!(kv.value, b"one", "a refused create changed the value");
}

pub async fn update_with_and_without_expected_revision<S: Store>(store: Arc<S>) {
    let r1 = ok(store.create("/u/a", b"v1".to_vec()).await, "create /u/a");
    let r2 = ok(
        store.update("/u/a", b"v2".to_vec(), None).await,
        "unconditional update",
    );
    assert!(
        r2 > r1,
        "update revision {r2} not after create revision {r1}"
    );
    let r3 = ok(
        store.update("/u/a", b"v3".to_vec(), Some(r2)).await,
        "update with the current revision",
    );
    assert!(r3 > r2, "conditional update revision {r3} not after {r2}");
    let kv = ok(store.get("/u/a").await, "get /u/a").unwrap_or_else(|| panic!("/u/a missing"));
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision, kv.create_revision),
        (&b"v3"[..], r3, r1)
    );
}

pub async fn stale_expected_revision_conflicts<S: Store>(store: Arc<S>) {
    let r1 = ok(store.create("/x/a", b"v1".to_vec()).await, "create /x/a");
    let r2 = ok(
        store.update("/x/a", b"v2".to_vec(), Some(r1)).await,
        "update /x/a",
    );
    let before = ok(store.current_revision().await, "current_revision");

    let stale = store.update("/x/a", b"v3".to_vec(), Some(r1)).await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            key: "/x/a".into(),
            expected: r1,
            current: r2
        }),
        "update with a stale revision"
    );
    let stale = store.delete("/x/a", Some(r1)).await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            key: "/x/a".into(),
            expected: r1,
            current: r2
        }),
        "delete with a stale revision"
    );

    let kv = ok(store.get("/x/a").await, "get /x/a")
        .unwrap_or_else(|| panic!("/x/a deleted by a conflicting delete"));
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision),
        (&b"v2"[..], r2),
        "a conflicting write changed the key"
    );
    let after = ok(store.current_revision().await, "current_revision");
    assert_eq!(after, before, "refused writes advanced the revision");
}

pub async fn update_and_delete_of_missing_key_are_not_found<S: Store>(store: Arc<S>) {
    let not_found = Err(StoreError::NotFound { key: "/n/a".into() });
    assert_eq!(
        store.update("/n/a", b"v".to_vec(), None).await,
        not_found,
        "update of a missing key"
    );
    assert_eq!(
        store.update("/n/a", b"v".to_vec(), Some(1)).await,
        not_found,
        "conditional update of a missing key"
    );
    let deleted = store.delete("/n/a", None).await.map(|_| ());
    assert_eq!(
        deleted,
        Err(StoreError::NotFound { key: "/n/a".into() }),
        "delete of a missing key"
    );
    assert_eq!(
        ok(store.get("/n/a").await, "get /n/a"),
        None,
        "update of a missing key created it"
    );
}

pub async fn delete_returns_old_value<S: Store>(store: Arc<S>) {
    let r1 = ok(store.create("/d/a", b"v1".to_vec()).await, "create /d/a");
    let r2 = ok(
        store.update("/d/a", b"v2".to_vec(), None).await,
        "update /d/a",
    );
    let (rd, old) = ok(store.delete("/d/a", Some(r2)).await, "delete /d/a");
    assert!(rd > r2, "delete revision {rd} not after {r2}");
    assert_eq!(
        old,
        KeyValue {
            key: "/d/a".into(),
            value: b"v2".to_vec(),
            create_revision: r1,
            mod_revision: r2
        },
        "value returned by delete"
    );
    assert_eq!(
        ok(store.get("/d/a").await, "get /d/a"),
        None,
        "key still present after delete"
    );

    // A re-created key starts a new life: its create_revision is reset.
    let r4 = ok(store.create("/d/a", b"v3".to_vec()).await, "re-create /d/a");
    let kv = ok(store.get("/d/a").await, "get /d/a")
        .unwrap_or_else(|| panic!("/d/a missing after re-create"));
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (r4, r4),
        "revisions of a re-created key"
    );
}

pub async fn revisions_strictly_increase_across_keys<S: Store>(store: Arc<S>) {
    let mut revisions = vec![ok(store.current_revision().await, "current_revision")];
    revisions.push(ok(store.create("/r/a", b"1".to_vec()).await, "create /r/a"));
    revisions.push(ok(store.create("/r/b", b"1".to_vec()).await, "create /r/b"));
    revisions.push(ok(
        store.update("/r/a", b"2".to_vec(), None).await,
        "update /r/a",
    ));
    revisions.push(ok(store.delete("/r/b", None).await, "delete /r/b").0);
    revisions.push(ok(store.create("/r/c", b"1".to_vec()).await, "create /r/c"));
    revisions.push(ok(
        store.create("/other/z", b"1".to_vec()).await,
        "create /other/z",
    ));
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions of successive writes are not strictly increasing: {revisions:?}"
    );
    let current = ok(store.current_revision().await, "current_revision");
    assert_eq!(
        Some(&current),
        revisions.last(),
        "current_revision after the last write"
    );
}

pub async fn create_revision_and_mod_revision<S: Store>(store: Arc<S>) {
    let r1 = ok(store.create("/m/a", b"1".to_vec()).await, "create /m/a");
    let r_other = ok(store.create("/m/b", b"1".to_vec()).await, "create /m/b");
    let r2 = ok(
        store.update("/m/a", b"2".to_vec(), None).await,
        "update /m/a",
    );
    let r3 = ok(
        store.update("/m/a", b"3".to_vec(), None).await,
        "update /m/a",
    );
    let a = ok(store.get("/m/a").await, "get /m/a").unwrap_or_else(|| panic!("/m/a missing"));
    assert_eq!(
        (a.create_revision, a.mod_revision),
        (r1, r3),
        "revisions of /m/a updated twice (update at {r2})"
    );
    let b = ok(store.get("/m/b").await, "get /m/b").unwrap_or_else(|| panic!("/m/b missing"));
    assert_eq!(
        (b.create_revision, b.mod_revision),
        (r_other, r_other),
        "writes to /m/a changed the revisions of /m/b"
    );
}

pub async fn list_orders_keys_and_isolates_prefixes<S: Store>(store: Arc<S>) {
    // Created out of order, with neighbours that share a string prefix but not the path prefix.
    for key in [
        "/a/bc/2", "/a/b", "/a/bc/1", "/a/bcd", "/a/bc0", "/a/bc/10", "/a/bb/1", "/b/bc/1",
    ] {
        ok(
            store.create(key, key.as_bytes().to_vec()).await,
            format!("create {key}"),
        );
    }
    let listed = ok(store.list("/a/bc/", None, None).await, "list /a/bc/");
    let keys: Vec<&str> = listed.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/a/bc/1", "/a/bc/10", "/a/bc/2"],
        "keys listed under /a/bc/"
    );
    assert!(!listed.more, "an unlimited list said more items follow");
    for kv in &listed.items {
        assert_eq!(kv.value, kv.key.as_bytes(), "value of {} in a list", kv.key);
    }

    let all = ok(store.list("/a/", None, None).await, "list /a/");
    let keys: Vec<&str> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/a/b", "/a/bb/1", "/a/bc/1", "/a/bc/10", "/a/bc/2", "/a/bc0", "/a/bcd"
        ],
        "keys listed under /a/"
    );
    let none = ok(store.list("/c/", None, None).await, "list /c/");
    assert!(
        none.items.is_empty() && !none.more,
        "list of an empty prefix returned {:?}",
        none.items
    );
}

pub async fn list_paginates_with_start_after_and_limit<S: Store>(store: Arc<S>) {
    let keys: Vec<String> = (0..7).map(|i| format!("/p/k{i}")).collect();
    for key in &keys {
        ok(
            store.create(key, b"v".to_vec()).await,
            format!("create {key}"),
        );
    }
    ok(store.create("/p0", b"v".to_vec()).await, "create /p0");
    ok(store.create("/o/k", b"v".to_vec()).await, "create /o/k");

    let mut pages = Vec::new();
    let mut start_after: Option<String> = None;
    loop {
        let page = ok(
            store.list("/p/", start_after.as_deref(), Some(3)).await,
            format!("list /p/ after {start_after:?}"),
        );
        assert!(
            page.items.len() <= 3,
            "a page with limit 3 had {} items",
            page.items.len()
        );
        let names: Vec<String> = page.items.iter().map(|kv| kv.key.clone()).collect();
        start_after = names.last().cloned();
        pages.push(names);
        if !page.more {
            break;
        }
        assert!(pages.len() < 10, "pagination does not terminate: {pages:?}");
    }
    let expected: Vec<Vec<String>> = keys.chunks(3).map(<[String]>::to_vec).collect();
    assert_eq!(pages, expected, "pages of /p/ with limit 3");

    let exact = ok(
        store.list("/p/", Some("/p/k3"), Some(3)).await,
        "list /p/ after /p/k3",
    );
    assert!(
        !exact.more,
        "a page ending exactly at the last key said more items follow"
    );
    let first = exact.items.first().map(|kv| kv.key.as_str());
    assert_eq!(first, Some("/p/k4"), "first key after start_after /p/k3");
    // A start_after that is not itself a key still skips everything up to it.
    let between = ok(
        store.list("/p/", Some("/p/k2x"), None).await,
        "list /p/ after /p/k2x",
    );
    let first = between.items.first().map(|kv| kv.key.as_str());
    assert_eq!(first, Some("/p/k3"), "first key after start_after /p/k2x");
    let past = ok(
        store.list("/p/", Some("/p/z"), Some(2)).await,
        "list /p/ after /p/z",
    );
    assert!(
        past.items.is_empty() && !past.more,
        "list after the last key returned {:?}",
        past.items
    );
}

pub async fn list_reports_the_revision_it_read_at<S: Store>(store: Arc<S>) {
    ok(store.create("/l/a", b"1".to_vec()).await, "create /l/a");
    let r2 = ok(
        store.update("/l/a", b"2".to_vec(), None).await,
        "update /l/a",
    );
    let listed = ok(store.list("/l/", None, None).await, "list /l/");
    assert_eq!(listed.revision, r2, "list revision after the last write");
    let r3 = ok(
        store.create("/elsewhere", b"1".to_vec()).await,
        "create /elsewhere",
    );
    let listed = ok(store.list("/l/", None, None).await, "list /l/");
    assert_eq!(
        listed.revision, r3,
        "list revision must be the store's, not the newest listed key's"
    );
    assert_eq!(
        listed.items.first().map(|kv| kv.mod_revision),
        Some(r2),
        "mod_revision of /l/a in a list"
    );
}

pub async fn watch_from_now_sees_only_later_changes<S: Store>(store: Arc<S>) {
    ok(
        store.create("/w/before", b"1".to_vec()).await,
        "create /w/before",
    );
    let mut watch = ok(store.watch("/w/", 0).await, "watch /w/ from now");
    let r = ok(
        store.create("/w/after", b"2".to_vec()).await,
        "create /w/after",
    );
    let event = next_event(&mut watch, "the first event of a watch from now").await;
    assert_eq!(
        (event.kind, event.kv.key.as_str(), event.kv.mod_revision),
        (EventType::Added, "/w/after", r),
        "first event of a watch from now"
    );
    assert_eq!(event.kv.value, b"2");
    assert_eq!(event.prev_value, None, "prev_value of an Added event");
}

pub async fn watch_from_past_revision_replays_missed_events_in_order<S: Store>(store: Arc<S>) {
    let start = ok(
        store.create("/h/seed", b"0".to_vec()).await,
        "create /h/seed",
    );
    let r1 = ok(store.create("/h/a", b"1".to_vec()).await, "create /h/a");
    let r2 = ok(
        store.update("/h/a", b"2".to_vec(), None).await,
        "update /h/a",
    );
    let r3 = ok(store.create("/h/b", b"1".to_vec()).await, "create /h/b");
    let r4 = ok(store.delete("/h/a", None).await, "delete /h/a").0;

    let mut watch = ok(
        store.watch("/h/", start).await,
        format!("watch /h/ after {start}"),
    );
    let live = ok(store.create("/h/c", b"1".to_vec()).await, "create /h/c");
    let expected = [
        (EventType::Added, "/h/a", r1),
        (EventType::Modified, "/h/a", r2),
        (EventType::Added, "/h/b", r3),
        (EventType::Deleted, "/h/a", r4),
        (EventType::Added, "/h/c", live),
    ];
    for (i, want) in expected.iter().enumerate() {
        let event = next_event(&mut watch, format!("event {i} of a watch after {start}")).await;
        assert_eq!(
            (event.kind, event.kv.key.as_str(), event.kv.mod_revision),
            *want,
            "event {i} of a watch after {start}"
        );
    }

    // Resuming from the middle replays only what followed.
    let mut resumed = ok(
        store.watch("/h/", r2).await,
        format!("watch /h/ after {r2}"),
    );
    let event = next_event(&mut resumed, format!("first event after {r2}")).await;
    assert_eq!(
        event.kv.mod_revision, r3,
        "first event of a watch resumed after {r2}"
    );
    // Resuming from the current revision replays nothing.
    let mut current = ok(
        store.watch("/h/", live).await,
        format!("watch /h/ after {live}"),
    );
    let next = ok(store.create("/h/d", b"1".to_vec()).await, "create /h/d");
    let event = next_event(&mut current, format!("first event after {live}")).await;
    assert_eq!(
        event.kv.mod_revision, next,
        "first event of a watch from the current revision"
    );
}

pub async fn watch_filters_by_prefix<S: Store>(store: Arc<S>) {
    let mut watch = ok(store.watch("/f/b/", 0).await, "watch /f/b/");
    for key in ["/f/a/1", "/f/b", "/f/bc/1", "/f/b/1", "/g/b/1", "/f/b/2"] {
        ok(
            store.create(key, b"v".to_vec()).await,
            format!("create {key}"),
        );
    }
    let first = next_event(&mut watch, "first event under /f/b/").await;
    let second = next_event(&mut watch, "second event under /f/b/").await;
    assert_eq!(
        [first.kv.key.as_str(), second.kv.key.as_str()],
        ["/f/b/1", "/f/b/2"],
        "keys seen by a watch on /f/b/"
    );

    // The same filter applies to replayed history.
    let replay_from = first.kv.mod_revision - 1;
    let mut replay = ok(
        store.watch("/f/b/", replay_from).await,
        "watch /f/b/ from history",
    );
    let first = next_event(&mut replay, "first replayed event under /f/b/").await;
    let second = next_event(&mut replay, "second replayed event under /f/b/").await;
    assert_eq!(
        [first.kv.key.as_str(), second.kv.key.as_str()],
        ["/f/b/1", "/f/b/2"],
        "keys replayed by a watch on /f/b/"
    );
}

pub async fn watch_delivers_modified_and_deleted_events_with_previous_values<S: Store>(
    store: Arc<S>,
) {
    let mut watch = ok(store.watch("/e/", 0).await, "watch /e/");
    let r1 = ok(store.create("/e/a", b"v1".to_vec()).await, "create /e/a");
    let r2 = ok(
        store.update("/e/a", b"v2".to_vec(), None).await,
        "update /e/a",
    );
    let (r3, _) = ok(store.delete("/e/a", None).await, "delete /e/a");

    let added = next_event(&mut watch, "Added event").await;
    assert_eq!(added.kind, EventType::Added);
    let modified = next_event(&mut watch, "Modified event").await;
    assert_eq!(
        modified,
        WatchEvent {
            kind: EventType::Modified,
            kv: KeyValue {
                key: "/e/a".into(),
                value: b"v2".to_vec(),
                create_revision: r1,
                mod_revision: r2
            },
            prev_value: Some(b"v1".to_vec()),
        },
        "Modified event"
    );
    let deleted = next_event(&mut watch, "Deleted event").await;
    assert_eq!(
        deleted,
        WatchEvent {
            kind: EventType::Deleted,
            kv: KeyValue {
                key: "/e/a".into(),
                value: b"v2".to_vec(),
                create_revision: r1,
                mod_revision: r3
            },
            prev_value: Some(b"v2".to_vec()),
        },
        "Deleted event: the last value, at the delete's revision"
    );
}

pub async fn watch_started_during_concurrent_writes_has_no_gap_or_duplicate<S: Store>(
    store: Arc<S>,
) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 40;
    const SENTINEL: &str = "/race/~sentinel";
    let base = ok(store.current_revision().await, "current_revision");

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut revisions = Vec::with_capacity(PER_WRITER);
            for i in 0..PER_WRITER {
                let key = format!("/race/w{w}/{i:03}");
                let revision = match i % 3 {
                    // Updates and deletes of the writer's own keys, so every event kind races.
                    1 => {
                        store
                            .update(
                                &format!("/race/w{w}/{:03}", i - 1),
                                b"updated".to_vec(),
                                None,
                            )
                            .await
                    }
                    2 => store
                        .delete(&format!("/race/w{w}/{:03}", i - 2), None)
                        .await
                        .map(|(r, _)| r),
                    _ => store.create(&key, b"v".to_vec()).await,
                };
                revisions.push(ok(revision, format!("write {i} of writer {w}")));
            }
            revisions
        }));
    }

    // Start watchers at several moments while the writers run, each from the revision it just
    // read: the events between that read and the watch call come from history, the rest live.
    let total = (WRITERS * PER_WRITER) as Revision;
    let mut watchers = Vec::new();
    for threshold in [total / 8, total / 3, total * 2 / 3] {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let from = loop {
            let now = ok(store.current_revision().await, "current_revision");
            if now >= base + threshold {
                break now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "writers stalled below revision {}",
                base + threshold
            );
            tokio::task::yield_now().await;
        };
        let mut watch = ok(
            store.watch("/race/", from).await,
            format!("watch /race/ after {from}"),
        );
        watchers.push((
            from,
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let event =
                        next_event(&mut watch, format!("event of a watch after {from}")).await;
                    if event.kv.key == SENTINEL {
                        return seen;
                    }
                    seen.push(event.kv.mod_revision);
                }
            }),
        ));
    }

    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        let revisions = writer
            .await
            .unwrap_or_else(|e| panic!("writer task failed: {e}"));
        for r in revisions {
            assert!(
                acknowledged.insert(r),
                "revision {r} acknowledged to two writes"
            );
        }
    }
    ok(
        store.create(SENTINEL, b"end".to_vec()).await,
        "create the sentinel",
    );

    for (from, watcher) in watchers {
        let seen = watcher
            .await
            .unwrap_or_else(|e| panic!("watch collector after {from} failed: {e}"));
        let expected: Vec<Revision> = acknowledged.range(from + 1..).copied().collect();
        assert_eq!(
            seen, expected,
            "revisions seen by a watch after {from}: must be every later write, once, in order"
        );
    }
}

/// `history_window` is the number of events the store keeps; writing more than that must make a
/// watch from before them fail with `Compacted`.
pub async fn watch_from_compacted_revision_fails<S: Store>(store: Arc<S>, history_window: usize) {
    // The revision of a first write, not the one before it: 0 would mean "from now".
    let before = ok(
        store.create("/k/first", b"v".to_vec()).await,
        "create /k/first",
    );
    let writes = (0..history_window + 2).map(|i| {
        let store = store.clone();
        async move {
            ok(
                store.create(&format!("/k/{i:06}"), b"v".to_vec()).await,
                format!("create /k/{i:06}"),
            )
        }
    });
    futures::future::join_all(writes).await;

    match store.watch("/k/", before).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, before, "Compacted.requested");
            assert!(
                oldest > before,
                "Compacted.oldest {oldest} must be after the requested {before}"
            );
        }
        Err(other) => panic!(
            "watch after a compacted revision {before} failed with {other:?}, expected Compacted"
        ),
        Ok(_) => panic!(
            "watch after revision {before}, older than a history of {history_window}, did not fail with Compacted"
        ),
    }
    let current = ok(store.current_revision().await, "current_revision");
    let mut recent = ok(
        store.watch("/k/", current - 1).await,
        "watch the last revision",
    );
    let event = next_event(&mut recent, "last event").await;
    assert_eq!(
        event.kv.mod_revision, current,
        "event replayed from one revision back"
    );
}

pub async fn hundred_concurrent_writers_are_all_acknowledged_and_readable<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("/cc/{i:03}");
                let created = ok(
                    store.create(&key, format!("v{i}").into_bytes()).await,
                    format!("create {key}"),
                );
                let updated = ok(
                    store
                        .update(&key, format!("w{i}").into_bytes(), Some(created))
                        .await,
                    format!("update {key}"),
                );
                (created, updated)
            })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for task in tasks {
        let (created, updated) = task
            .await
            .unwrap_or_else(|e| panic!("writer task failed: {e}"));
        assert!(
            updated > created,
            "update revision {updated} not after create revision {created}"
        );
        assert!(
            revisions.insert(created) && revisions.insert(updated),
            "a revision was acknowledged twice"
        );
    }
    let listed = ok(store.list("/cc/", None, None).await, "list /cc/");
    assert_eq!(
        listed.items.len(),
        100,
        "keys readable after 100 concurrent writers"
    );
    for (i, kv) in listed.items.iter().enumerate() {
        assert_eq!(
            (kv.key.clone(), kv.value.clone()),
            (format!("/cc/{i:03}"), format!("w{i}").into_bytes()),
            "key {i}"
        );
    }
    let max = revisions.last().copied().unwrap_or(0);
    assert!(
        listed.revision >= max,
        "list revision {} older than acknowledged write {max}",
        listed.revision
    );
}

pub async fn reopen_keeps_acknowledged_writes_and_continues_revisions<S: Store>(
    open: impl Fn() -> S,
) {
    const KEYS: usize = 50;
    let last = {
        let store = Arc::new(open());
        let writes = (0..KEYS).map(|i| {
            let store = store.clone();
            async move {
                ok(
                    store
                        .create(&format!("/dur/{i:03}"), format!("v{i}").into_bytes())
                        .await,
                    "create before reopen",
                )
            }
        });
        futures::future::join_all(writes).await;
        ok(store.delete("/dur/000", None).await, "delete before reopen");
        ok(
            store.update("/dur/001", b"updated".to_vec(), None).await,
            "update before reopen",
        )
    };

    let store = open();
    assert_eq!(
        ok(
            store.current_revision().await,
            "current_revision after reopen"
        ),
        last,
        "revision after reopen"
    );
    let listed = ok(store.list("/dur/", None, None).await, "list after reopen");
    assert_eq!(listed.revision, last, "list revision after reopen");
    assert_eq!(listed.items.len(), KEYS - 1, "keys after reopen");
    assert_eq!(
        ok(store.get("/dur/000").await, "get after reopen"),
        None,
        "deleted key came back after reopen"
    );
    let updated = ok(store.get("/dur/001").await, "get after reopen")
        .unwrap_or_else(|| panic!("/dur/001 lost"));
    assert_eq!(
        (updated.value.as_slice(), updated.mod_revision),
        (&b"updated"[..], last),
        "updated key after reopen"
    );
    for kv in &listed.items[1..] {
        let i: usize = kv
            .key
            .trim_start_matches("/dur/")
            .parse()
            .unwrap_or_else(|e| panic!("key {}: {e}", kv.key));
        assert_eq!(
            kv.value,
            format!("v{i}").into_bytes(),
            "value of {} after reopen",
            kv.key
        );
    }
    let next = ok(
        store.create("/dur/new", b"v".to_vec()).await,
        "create after reopen",
    );
    assert_eq!(
        next,
        last + 1,
        "first revision after reopen must continue from the persisted one"
    );
}

fn ok<T>(result: Result<T, StoreError>, what: impl Display) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// The next event of `watch`, failing the check if the stream errors, ends or stalls.
pub async fn next_event(watch: &mut WatchStream, what: impl Display) -> WatchEvent {
    match tokio::time::timeout(STEP_TIMEOUT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("waiting for {what}: the watch failed: {e}"),
        Ok(None) => panic!("waiting for {what}: the watch ended"),
        Err(_) => panic!("waiting for {what}: nothing arrived within {STEP_TIMEOUT:?}"),
    }
}
