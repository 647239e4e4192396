//! The default backend: one redb file under the data dir, so a single `baton` binary needs no
//! external database.
//!
//! Durability comes from redb's immediate commits (an fsync per commit). To make many durable
//! writes per second cheap anyway, all writes go through one writer thread that applies every
//! request queued at that moment in a single transaction (group commit): each write still gets
//! its own revision and its own watch event, but the batch shares one fsync.
//!
//! Writes wait for room in a queue bounded by bytes ([`MAX_QUEUED_WRITE_BYTES`]) before they
//! reach the writer; one that waits longer than [`MAX_QUEUE_WAIT`] fails with
//! [`StoreError::Overloaded`], so a flood of large writes applies backpressure instead of
//! piling up in memory.
//!
//! A failed commit (a full disk, an I/O error) fails every write of its batch and advances
//! nothing. redb refuses every later write on a handle that saw a failed I/O, so the writer
//! reopens the file at once (reads go on, on the new handle) and each write is tried afresh.
//! Until a probe (every [`PROBE_EVERY`]: [`PROBE_BYTES`] committed to a table of its own, then
//! removed) succeeds, the store reports the failure through [`Store::health`]; so once space
//! is freed the store is ready again with no restart.
//!
//! Watches are served from memory: a ring buffer of the last `history` events for resuming, plus a
//! bounded channel per watcher for live events. The writer publishes a batch's events while
//! holding the same lock a new watcher takes to copy the history and register, so a watcher sees
//! every event after its starting revision exactly once.

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc as tokio_mpsc, oneshot};

use crate::{
    EventType, KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// key → (create_revision, mod_revision, value).
const KV_TABLE: TableDefinition<&str, (u64, u64, &[u8])> = TableDefinition::new("kv");
/// Store-wide facts that must survive restarts; today only the current revision.
const META_TABLE: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
/// Where the writer probes for room after a failed commit; empty otherwise.
const PROBE_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("probe");

/// Upper bound on requests folded into one transaction, so one huge burst cannot delay every
/// caller's acknowledgement until all of it is applied.
const MAX_BATCH: usize = 1024;
/// Upper bound on a watcher's channel. The channel never exceeds the history window either: when
/// a watcher is dropped for lagging, the last revision it saw is then still in history, so a
/// prompt resume from it can succeed instead of forcing a re-list.
const MAX_WATCH_BUFFER: usize = 1024;
/// Upper bound on the bytes (keys and values) queued for one watcher. A watcher that does not
/// read while large objects change is dropped as lagging (its client re-lists) rather than
/// holding every version in memory.
const MAX_WATCHER_BYTES: usize = 64 * 1024 * 1024;
/// Upper bound on the bytes (keys and values) of writes queued for the writer thread, and so on
/// one transaction. A write counts at least [`MIN_WRITE_COST`], which bounds the queue's length
/// too (16,384 writes).
pub const MAX_QUEUED_WRITE_BYTES: usize = 64 * 1024 * 1024;
const MIN_WRITE_COST: usize = 4 * 1024;
/// How long a write waits for room in the queue before it fails with
/// [`StoreError::Overloaded`].
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);
/// While the store is faulted, how often the writer probes whether the disk has room again.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// What a probe writes: room for the largest object the API server stores (3 MiB) and more.
const PROBE_BYTES: usize = 4 * 1024 * 1024;
/// redb's page cache (read cache and write buffer together; redb's default is 1 GiB, which
/// keeps every page of the file once touched). Pages it evicts are read again from the
/// kernel's page cache; reads are gets and lists, watches are served from memory.
const PAGE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Settings of an [`EmbeddedStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// How many of the latest events are kept in memory for watches that resume from a past
    /// revision. Older revisions fail with [`StoreError::Compacted`].
    pub history: usize,
    /// The same window bounded by bytes (keys, values and previous values): the oldest events
    /// go first when either bound is reached, so a stream of large objects cannot hold
    /// `history` copies of them. The newest event is always kept.
    pub history_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history: 10_000,
            history_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What an event costs in memory, as counted by the history and watcher bounds.
fn event_bytes(e: &WatchEvent) -> usize {
    e.kv.key.len() + e.kv.value.len() + e.prev_value.as_ref().map_or(0, Vec::len)
}

/// The embedded [`Store`]: one redb file, durable on acknowledgement, group-committed.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    /// `None` only while dropping, to stop the writer thread.
    requests: Option<mpsc::Sender<WriteRequest>>,
    /// Room in the write queue, in bytes ([`MAX_QUEUED_WRITE_BYTES`]).
    queue: Arc<Semaphore>,
    writer: Option<JoinHandle<()>>,
    repaired_on_open: bool,
}

/// What readers, the writer thread and watch registration share.
struct Shared {
    /// `None` only between closing a failed handle and a successful reopen. The writer thread
    /// alone replaces it; readers hold the read lock for the length of their transaction.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// Why the last commit failed, until one succeeds ([`Store::health`]).
    fault: Mutex<Option<StoreError>>,
    /// The last committed revision (set right after each commit, before events are published).
    committed: AtomicU64,
    hub: Mutex<WatchHub>,
}

/// Watch state, guarded by one lock so replay and live delivery cannot interleave wrongly.
struct WatchHub {
    /// The newest events, contiguous in revision (every write adds exactly one revision).
    history: VecDeque<Arc<WatchEvent>>,
    capacity: usize,
    /// Bytes of `history` ([`event_bytes`]) and their bound.
    history_bytes: usize,
    capacity_bytes: usize,
    /// The revision of the newest published event (or the revision found at open).
    published: Revision,
    watchers: Vec<Watcher>,
    buffer: usize,
}

struct Watcher {
    prefix: String,
    /// Only events after this revision are sent (a watch may start ahead of `published`).
    after: Revision,
    tx: tokio_mpsc::Sender<Arc<WatchEvent>>,
    lagged: Arc<AtomicBool>,
    /// Bytes sent and not yet taken by the stream (bounded by [`MAX_WATCHER_BYTES`]).
    queued: Arc<AtomicUsize>,
}

enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Option<Revision>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What a successful write reports back: its revision and, for deletes, the removed entry.
type WriteOutcome = (Revision, Option<KeyValue>);

struct WriteRequest {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome>>,
    /// Its room in the queue, given back once the write is applied.
    room: OwnedSemaphorePermit,
}

impl EmbeddedStore {
    /// Opens (creating if absent) the store file at `path` and starts its writer thread.
    ///
    /// Fails with [`StoreError::Backend`] if the file is not a redb database, cannot be created,
    /// or is already open (by this or another process).
    pub fn open(path: &Path, opts: EmbeddedOptions) -> Result<EmbeddedStore> {
        let (db, repaired_on_open) = open_database(path)?;
        let revision = init_tables(&db, path)?;
        tracing::info!(path = %path.display(), revision, "opened embedded store");

        let buffer = opts.history.clamp(1, MAX_WATCH_BUFFER);
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            fault: Mutex::new(None),
            committed: AtomicU64::new(revision),
            hub: Mutex::new(WatchHub {
                history: VecDeque::with_capacity(opts.history.min(MAX_WATCH_BUFFER)),
                capacity: opts.history,
                history_bytes: 0,
                capacity_bytes: opts.history_bytes,
                published: revision,
                watchers: Vec::new(),
                buffer,
            }),
        });

        let (requests, inbox) = mpsc::channel();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("baton-store-writer".into())
            .spawn(move || writer_loop(&writer_shared, &inbox, revision))
            .map_err(|e| backend(path, "start the writer thread for", e))?;

        Ok(EmbeddedStore {
            shared,
            requests: Some(requests),
            queue: Arc::new(Semaphore::new(MAX_QUEUED_WRITE_BYTES)),
            writer: Some(writer),
            repaired_on_open,
        })
    }

    /// The path of the store file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Whether opening found the file not cleanly closed and had to rebuild redb's allocator
    /// state (a full scan). Commits record that state, so even after `kill -9` this is `false`.
    pub fn repaired_on_open(&self) -> bool {
        self.repaired_on_open
    }

    async fn write(&self, mut op: WriteOp) -> Result<WriteOutcome> {
        // The value lives on in the watch history and watchers' queues, which count its length:
        // spare capacity (a serializer's doubling leaves up to half) would be memory uncounted.
        if let WriteOp::Create { value, .. } | WriteOp::Update { value, .. } = &mut op {
            value.shrink_to_fit();
        }
        let stopped = || {
            StoreError::Backend(format!(
                "writer of store file {} has stopped",
                self.shared.path.display()
            ))
        };
        let cost = op.bytes().clamp(MIN_WRITE_COST, MAX_QUEUED_WRITE_BYTES);
        // `cost` fits: MAX_QUEUED_WRITE_BYTES is far below u32::MAX.
        let room = self.queue.clone().acquire_many_owned(cost as u32);
        let room = match tokio::time::timeout(MAX_QUEUE_WAIT, room).await {
            Ok(Ok(room)) => room,
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => {
                return Err(StoreError::Overloaded(format!(
                    "the write queue of store file {} stayed full ({} MiB of writes waiting) for {} s",
                    self.shared.path.display(),
                    MAX_QUEUED_WRITE_BYTES / (1024 * 1024),
                    MAX_QUEUE_WAIT.as_secs()
                )));
            }
        };
        let (reply, answer) = oneshot::channel();
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests
            .send(WriteRequest { op, reply, room })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs a read transaction on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Shared, &redb::ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let db = shared.db.read().unwrap_or_else(|p| p.into_inner());
            let db = db.as_ref().ok_or_else(|| not_open(&shared.path))?;
            let txn = db
                .begin_read()
                .map_err(|e| backend(&shared.path, what, e))?;
            f(&shared, &txn)
        })
        .await
        .map_err(|e| backend(&self.shared.path, what, e))?
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once queued requests are answered; joining
        // it releases the writer's handle on the file, so the path can be reopened right away.
        self.requests = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.shared.path.display(), "store writer thread panicked");
        }
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read("read a key from", move |shared, txn| {
            let table = txn
                .open_table(KV_TABLE)
                .map_err(|e| backend(&shared.path, "open the key table of", e))?;
            let found = table
                .get(key.as_str())
                .map_err(|e| backend(&shared.path, "read a key from", e))?;
            Ok(found.map(|entry| {
                let (create_revision, mod_revision, value) = entry.value();
                KeyValue {
                    key,
                    value: value.to_vec(),
                    create_revision,
                    mod_revision,
                }
            }))
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        // Kubernetes treats limit=0 as "no limit".
        let limit = limit.filter(|&n| n > 0);
        self.read("list keys of", move |shared, txn| {
            let fail = |e: &dyn std::fmt::Display| backend(&shared.path, "list keys of", e);
            let meta = txn.open_table(META_TABLE).map_err(|e| fail(&e))?;
            let revision = meta
                .get(META_REVISION)
                .map_err(|e| fail(&e))?
                .map(|g| g.value())
                .unwrap_or(0);
            let table = txn.open_table(KV_TABLE).map_err(|e| fail(&e))?;
            let lower = match start_after.as_deref() {
                Some(after) if after >= prefix.as_str() => Bound::Excluded(after),
                _ => Bound::Included(prefix.as_str()),
            };
            let range = table
                .range::<&str>((lower, Bound::Unbounded))
                .map_err(|e| fail(&e))?;
            let mut items = Vec::new();
            let mut more = false;
            for entry in range {
                let (k, v) = entry.map_err(|e| fail(&e))?;
                let key = k.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if limit.is_some_and(|n| items.len() >= n) {
                    more = true;
                    break;
                }
                let (create_revision, mod_revision, value) = v.value();
                items.push(KeyValue {
                    key: key.to_owned(),
                    value: value.to_vec(),
                    create_revision,
                    mod_revision,
                });
            }
            Ok(ListResult {
                items,
                revision,
                more,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        Ok(self
            .write(WriteOp::Create {
                key: key.to_owned(),
                value,
            })
            .await?
            .0)
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<Revision>,
    ) -> Result<Revision> {
        Ok(self
            .write(WriteOp::Update {
                key: key.to_owned(),
                value,
                expected,
            })
            .await?
            .0)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        match self
            .write(WriteOp::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            (revision, Some(old)) => Ok((revision, old)),
            (_, None) => Err(StoreError::Backend(format!(
                "delete in store file {} returned no previous value",
                self.shared.path.display()
            ))),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let mut hub = lock_hub(&self.shared.hub);
        let after = if after == 0 { hub.published } else { after };
        let mut replay = Vec::new();
        if after < hub.published {
            // History is contiguous and ends at `published`, so it covers everything after
            // `after` exactly when it still holds revision `after + 1`.
            let oldest = hub.history.front().map(|e| e.kv.mod_revision);
            match oldest {
                Some(oldest) if oldest <= after + 1 => {
                    replay.extend(
                        hub.history
                            .iter()
                            .filter(|e| e.kv.mod_revision > after && e.kv.key.starts_with(prefix))
                            .cloned(),
                    );
                }
                _ => {
                    return Err(StoreError::Compacted {
                        requested: after,
                        oldest: oldest.map_or(hub.published, |r| r - 1),
                    });
                }
            }
        }
        let (tx, rx) = tokio_mpsc::channel(hub.buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        hub.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            after,
            tx,
            lagged: lagged.clone(),
            queued: queued.clone(),
        });
        drop(hub);

        let live = futures::stream::unfold((rx, lagged, false), move |(mut rx, lagged, ended)| {
            let queued = queued.clone();
            async move {
                if ended {
                    return None;
                }
                match rx.recv().await {
                    Some(event) => {
                        queued.fetch_sub(event_bytes(&event), Ordering::AcqRel);
                        Some((Ok(event), (rx, lagged, false)))
                    }
                    // The writer drops a lagging watcher's sender after setting the flag; a store
                    // shutting down drops it without, and the stream just ends.
                    None if lagged.load(Ordering::Acquire) => {
                        Some((Err(StoreError::WatcherLagged), (rx, lagged, true)))
                    }
                    None => None,
                }
            }
        });
        let stream = futures::stream::iter(replay.into_iter().map(Ok))
            .chain(live)
            .map(|item| item.map(|event: Arc<WatchEvent>| Arc::unwrap_or_clone(event)));
        Ok(Box::pin(stream))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.committed.load(Ordering::Acquire))
    }

    fn health(&self) -> Result<()> {
        match &*lock(&self.shared.fault) {
            Some(fault) => Err(fault.clone()),
            None => Ok(()),
        }
    }
}

impl WriteOp {
    /// What the write holds in memory until it is applied.
    fn bytes(&self) -> usize {
        match self {
            WriteOp::Create { key, value } | WriteOp::Update { key, value, .. } => {
                key.len() + value.len()
            }
            WriteOp::Delete { key, .. } => key.len(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens (creating if absent) the redb file; says whether it had to be repaired.
fn open_database(path: &Path) -> Result<(Database, bool)> {
    let repaired = Arc::new(AtomicBool::new(false));
    let repaired_flag = repaired.clone();
    let mut builder = Database::builder();
    builder.set_cache_size(PAGE_CACHE_BYTES);
    builder.set_repair_callback(move |_| repaired_flag.store(true, Ordering::Relaxed));
    let db = builder.create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Backend(format!(
            "cannot open store file {}: it is already open by another Baton process (or \
             another store in this one)",
            path.display()
        )),
        other => db_error(path, "open", other),
    })?;
    let repaired = repaired.load(Ordering::Relaxed);
    if repaired {
        tracing::warn!(path = %path.display(), "store file was not closed cleanly and was repaired");
    }
    Ok((db, repaired))
}

fn lock_hub(hub: &Mutex<WatchHub>) -> MutexGuard<'_, WatchHub> {
    // The hub holds no invariant a panic midway could break badly (at worst a watcher misses
    // an event of the batch being published), so a poisoned lock is still used.
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn backend(path: &Path, operation: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!(
        "failed to {operation} store file {}: {error}",
        path.display()
    ))
}

/// A database error as a [`StoreError`]: a full disk (or quota, or file size limit) is
/// [`StoreError::NoSpace`], anything else [`StoreError::Backend`].
fn db_error(path: &Path, operation: &str, error: impl Into<redb::Error>) -> StoreError {
    match error.into() {
        redb::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::QuotaExceeded
                    | std::io::ErrorKind::FileTooLarge
            ) =>
        {
            StoreError::NoSpace(format!(
                "no space left for store file {} (failed to {operation} it: {io}); writes \
                 fail until space is freed, reads go on",
                path.display()
            ))
        }
        other => backend(path, operation, other),
    }
}

/// Creates the tables on first open and returns the persisted revision.
fn init_tables(db: &Database, path: &Path) -> Result<Revision> {
    let fail = |e: &dyn std::fmt::Display| backend(path, "initialise", e);
    let txn = db.begin_write().map_err(|e| fail(&e))?;
    let revision = {
        txn.open_table(KV_TABLE).map_err(|e| fail(&e))?;
        let meta = txn.open_table(META_TABLE).map_err(|e| fail(&e))?;
        meta.get(META_REVISION)
            .map_err(|e| fail(&e))?
            .map(|g| g.value())
            .unwrap_or(0)
    };
    txn.commit().map_err(|e| fail(&e))?;
    Ok(revision)
}

/// The writer thread: group-commits everything queued, publishes the events, answers callers.
/// While the store is faulted it probes every [`PROBE_EVERY`], busy or idle.
fn writer_loop(shared: &Shared, inbox: &mpsc::Receiver<WriteRequest>, mut revision: Revision) {
    let mut last_probe = Instant::now();
    loop {
        let faulted = lock(&shared.fault).is_some();
        if faulted && last_probe.elapsed() >= PROBE_EVERY {
            last_probe = Instant::now();
            match probe(shared) {
                Ok(()) => {
                    if let Some(fault) = lock(&shared.fault).take() {
                        tracing::info!(path = %shared.path.display(), was = %fault, "store has room for writes again");
                    }
                }
                Err(error) => {
                    tracing::debug!(path = %shared.path.display(), %error, "store probe failed");
                    revision = reopen(shared, revision);
                }
            }
            continue;
        }
        let first = if faulted {
            let wait = PROBE_EVERY.saturating_sub(last_probe.elapsed());
            match inbox.recv_timeout(wait) {
                Ok(request) => request,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match inbox.recv() {
                Ok(request) => request,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut ops = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let mut rooms = Vec::with_capacity(batch.len());
        for request in batch {
            ops.push(request.op);
            replies.push(request.reply);
            rooms.push(request.room);
        }
        match commit_batch(shared, ops, revision) {
            Ok((new_revision, results, events)) => {
                revision = new_revision;
                shared.committed.store(revision, Ordering::Release);
                publish(shared, events, revision);
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that stopped waiting still had its write committed.
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(path = %shared.path.display(), %error, writes = replies.len(), "store write batch failed");
                if lock(&shared.fault).replace(error.clone()).is_none() {
                    last_probe = Instant::now();
                }
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
                revision = reopen(shared, revision);
            }
        }
        drop(rooms);
    }
    tracing::debug!(path = %shared.path.display(), "store writer stopped");
}

/// A write transaction whose commit is on disk when it returns, recording the allocator
/// state so that a crash never forces a full-file repair on open.
fn begin_durable(db: &Database, path: &Path) -> Result<redb::WriteTransaction> {
    let mut txn = db
        .begin_write()
        .map_err(|e| db_error(path, "begin a write transaction on", e))?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| db_error(path, "set durability on", e))?;
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Whether the store has room again after a failed commit: [`PROBE_BYTES`] committed to a
/// table of its own (no revision, no watch event), then removed. Writes alone do not clear a
/// fault, since a small one may fit in the file's free pages while larger ones still fail.
fn probe(shared: &Shared) -> Result<()> {
    let path = &shared.path;
    let db = shared.db.read().unwrap_or_else(|p| p.into_inner());
    let Some(db) = db.as_ref() else {
        return Err(not_open(path));
    };
    let room = vec![0u8; PROBE_BYTES];
    for insert in [true, false] {
        let txn = begin_durable(db, path)?;
        {
            let mut table = txn
                .open_table(PROBE_TABLE)
                .map_err(|e| db_error(path, "open the probe table of", e))?;
            if insert {
                table.insert("room", room.as_slice())
            } else {
                table.remove("room").map(|_| None)
            }
            .map_err(|e| db_error(path, "write to", e))?;
        }
        txn.commit().map_err(|e| db_error(path, "commit to", e))?;
    }
    Ok(())
}

fn not_open(path: &Path) -> StoreError {
    StoreError::Backend(format!(
        "store file {} is not open: reopening it after a disk error failed",
        path.display()
    ))
}

/// Closes the handle a failed commit left refusing writes and opens the file again (recovering
/// its last commit), so reads go on and the next commit can succeed once the disk has room.
/// Returns the revision to continue from: the file's, should a commit reported as failed have
/// reached the disk after all (its events were never published, so every watcher is dropped
/// to re-list and the history restarts there).
fn reopen(shared: &Shared, revision: Revision) -> Revision {
    let mut db = shared.db.write().unwrap_or_else(|p| p.into_inner());
    // The old handle must be gone before the file can be opened again.
    drop(db.take());
    let reopened = open_database(&shared.path).and_then(|(new, _)| {
        let stored = stored_revision(&new, &shared.path)?;
        Ok((new, stored))
    });
    match reopened {
        Ok((new, stored)) => {
            *db = Some(new);
            drop(db);
            if stored != revision {
                tracing::warn!(path = %shared.path.display(), stored, revision, "a commit reported as failed reached the disk; watchers re-list");
                shared.committed.store(stored, Ordering::Release);
                let mut hub = lock_hub(&shared.hub);
                for w in hub.watchers.drain(..) {
                    w.lagged.store(true, Ordering::Release);
                }
                hub.history.clear();
                hub.history_bytes = 0;
                hub.published = stored;
            }
            stored
        }
        Err(error) => {
            tracing::error!(path = %shared.path.display(), %error, "reopening the store file failed; retrying with the next write");
            revision
        }
    }
}

/// The revision recorded in the file.
fn stored_revision(db: &Database, path: &Path) -> Result<Revision> {
    let fail = |e: redb::Error| backend(path, "read the revision of", e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let meta = txn.open_table(META_TABLE).map_err(|e| fail(e.into()))?;
    Ok(meta
        .get(META_REVISION)
        .map_err(|e| fail(e.into()))?
        .map(|g| g.value())
        .unwrap_or(0))
}

type BatchOutcome = (Revision, Vec<Result<WriteOutcome>>, Vec<Arc<WatchEvent>>);

/// Applies `ops` in one durable transaction. Per-request failures (conflicts, missing keys) are
/// results; a database failure fails the whole batch and nothing of it is committed. An empty
/// batch is a probe: a commit that changes nothing but still needs the disk.
fn commit_batch(
    shared: &Shared,
    ops: Vec<WriteOp>,
    mut revision: Revision,
) -> Result<BatchOutcome> {
    let path = &shared.path;
    let db = shared.db.read().unwrap_or_else(|p| p.into_inner());
    let Some(db) = db.as_ref() else {
        // The last reopen failed: the caller tries again.
        return Err(not_open(path));
    };
    let txn = begin_durable(db, path)?;
    let mut results = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    {
        let mut kv = txn
            .open_table(KV_TABLE)
            .map_err(|e| db_error(path, "open the key table of", e))?;
        for op in ops {
            match apply(&mut kv, op, revision + 1).map_err(|e| db_error(path, "write to", e))? {
                Ok((result, event)) => {
                    revision += 1;
                    results.push(Ok(result));
                    events.push(Arc::new(event));
                }
                Err(refused) => results.push(Err(refused)),
            }
        }
        let mut meta = txn
            .open_table(META_TABLE)
            .map_err(|e| db_error(path, "open the meta table of", e))?;
        meta.insert(META_REVISION, revision)
            .map_err(|e| db_error(path, "record the revision in", e))?;
    }
    txn.commit().map_err(|e| db_error(path, "commit to", e))?;
    Ok((revision, results, events))
}

/// Applies one write at `revision`. The outer error is the database's; the inner one is the
/// write being refused (which uses no revision).
fn apply(
    kv: &mut redb::Table<&str, (u64, u64, &[u8])>,
    op: WriteOp,
    revision: Revision,
) -> Result<Result<(WriteOutcome, WatchEvent)>, redb::StorageError> {
    let key = match &op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key.clone()
        }
    };
    let existing = kv.get(key.as_str())?.map(|g| {
        let (create_revision, mod_revision, value) = g.value();
        KeyValue {
            key: key.clone(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        }
    });
    let check = |expected: Option<Revision>, current: &KeyValue| match expected {
        Some(expected) if expected != current.mod_revision => Err(StoreError::Conflict {
            key: key.clone(),
            expected,
            current: current.mod_revision,
        }),
        _ => Ok(()),
    };
    Ok(match (op, existing) {
        (WriteOp::Create { .. }, Some(_)) => Err(StoreError::AlreadyExists { key }),
        (WriteOp::Create { key, value }, None) => {
            kv.insert(key.as_str(), (revision, revision, value.as_slice()))?;
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            Ok((
                (revision, None),
                WatchEvent {
                    kind: EventType::Added,
                    kv,
                    prev_value: None,
                },
            ))
        }
        (WriteOp::Update { .. } | WriteOp::Delete { .. }, None) => {
            Err(StoreError::NotFound { key })
        }
        (
            WriteOp::Update {
                key,
                value,
                expected,
            },
            Some(old),
        ) => match check(expected, &old) {
            Err(conflict) => Err(conflict),
            Ok(()) => {
                kv.insert(
                    key.as_str(),
                    (old.create_revision, revision, value.as_slice()),
                )?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: old.create_revision,
                    mod_revision: revision,
                };
                Ok((
                    (revision, None),
                    WatchEvent {
                        kind: EventType::Modified,
                        kv,
                        prev_value: Some(old.value),
                    },
                ))
            }
        },
        (WriteOp::Delete { key, expected }, Some(old)) => match check(expected, &old) {
            Err(conflict) => Err(conflict),
            Ok(()) => {
                kv.remove(key.as_str())?;
                let prev_value = Some(old.value.clone());
                let kv = KeyValue {
                    mod_revision: revision,
                    ..old.clone()
                };
                Ok((
                    (revision, Some(old)),
                    WatchEvent {
                        kind: EventType::Deleted,
                        kv,
                        prev_value,
                    },
                ))
            }
        },
    })
}

/// Appends a committed batch to the history and hands each event to the watchers it matches.
fn publish(shared: &Shared, events: Vec<Arc<WatchEvent>>, revision: Revision) {
    let mut hub = lock_hub(&shared.hub);
    for event in events {
        hub.watchers.retain(|w| {
            if event.kv.mod_revision <= w.after || !event.kv.key.starts_with(w.prefix.as_str()) {
                return !w.tx.is_closed();
            }
            // Counted before sending, so the stream's decrement can never come first.
            let size = event_bytes(&event);
            let before = w.queued.fetch_add(size, Ordering::AcqRel);
            if before > 0 && before + size > MAX_WATCHER_BYTES {
                tracing::warn!(prefix = %w.prefix, revision = event.kv.mod_revision, "dropping a watcher that fell behind by more than {MAX_WATCHER_BYTES} bytes");
                w.lagged.store(true, Ordering::Release);
                return false;
            }
            match w.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(tokio_mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(prefix = %w.prefix, revision = event.kv.mod_revision, "dropping a watcher that fell behind");
                    w.lagged.store(true, Ordering::Release);
                    false
                }
                Err(tokio_mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if hub.capacity > 0 {
            hub.history_bytes += event_bytes(&event);
            hub.history.push_back(event);
            while hub.history.len() > 1
                && (hub.history.len() > hub.capacity || hub.history_bytes > hub.capacity_bytes)
            {
                if let Some(old) = hub.history.pop_front() {
                    hub.history_bytes -= event_bytes(&old);
                }
            }
        }
    }
    hub.published = revision;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that cannot commit (here: its database held) fills the queue; the write that
    /// finds no room for `MAX_QUEUE_WAIT` fails with `Overloaded` (the API's 429), the queued
    /// ones are committed once the writer moves again, and the queue takes writes afterwards.
    /// Time is paused: the 10 s wait passes as soon as every task is waiting.
    #[tokio::test(start_paused = true)]
    #[allow(
        clippy::await_holding_lock,
        reason = "the held lock is what stalls the writer"
    )]
    async fn a_full_write_queue_refuses_writes_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            EmbeddedStore::open(&dir.path().join("store.redb"), EmbeddedOptions::default())
                .expect("open"),
        );
        let value = vec![b'x'; 16 * 1024 * 1024];
        let stall = store.shared.db.write().unwrap_or_else(|p| p.into_inner());
        let mut queued = Vec::new();
        for i in 0..3 {
            let (store, value) = (store.clone(), value.clone());
            queued.push(tokio::spawn(async move {
                store.create(&format!("/k/{i}"), value).await
            }));
            // Each takes its room before the next asks.
            tokio::task::yield_now().await;
        }
        let refused =
            tokio::time::timeout(Duration::from_secs(60), store.create("/k/3", value.clone()))
                .await;
        match refused {
            Ok(Err(StoreError::Overloaded(m))) => assert!(
                m.contains("stayed full (64 MiB of writes waiting) for 10 s"),
                "{m}"
            ),
            other => panic!("a fourth 16 MiB write fits in a 64 MiB queue: {other:?}"),
        }
        drop(stall);
        for q in queued {
            q.await.expect("task").expect("a queued write is committed");
        }
        store.create("/k/3", value).await.expect("room again");
        assert!(store.get("/k/3").await.expect("get").is_some());
    }
}
