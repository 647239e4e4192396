//! Baton's storage seam: one [`Store`] trait (get/list/create/update/delete/watch by revision)
//! that every backend implements and that the API server alone talks to.
//!
//! The model is etcd's: a flat, ordered key space of opaque values; one global, monotonically
//! increasing revision bumped by every write; each key remembers the revision of its last
//! modification (`mod_revision`, which the API server exposes as `resourceVersion`); watches
//! replay every change after a given revision, or fail with [`StoreError::Compacted`] when that
//! revision is older than the backend's history window.
//!
//! # Layout
//! - this file: the trait and its types.
//! - [`embedded`]: the default backend, one redb file under the data dir, fsync per commit with
//!   group commit, a write queue bounded by bytes, in-memory watch history, reopened by itself
//!   after a failed commit (a full disk).
//! - [`etcd`]: the store over etcd's v3 API (`--store etcd://…`), for clusters of several
//!   machines: etcd's revisions, conditional writes as etcd transactions, etcd watches, and
//!   compaction every 5 minutes as kube-apiserver does.
//! - [`migrate`]: copying every key from one store to another (embedded → etcd).
//! - [`conformance`]: the test suite any backend must pass (called from each backend's tests).

use std::pin::Pin;

pub mod conformance;
pub mod embedded;
pub mod etcd;
pub mod migrate;

pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};

use futures::Stream;

/// A store revision. Zero means "no revision" (before the first write).
pub type Revision = u64;

/// One stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this key (reset when it is deleted and re-created).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A page of a list: the items, the store revision they were read at, and whether more items
/// follow the last one returned (for `limit`/`continue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    pub revision: Revision,
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The key was created.
    Added,
    /// The key existed and was overwritten.
    Modified,
    /// The key was deleted; the event carries the last value it had.
    Deleted,
}

/// One change, as delivered to watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventType,
    /// For `Added`/`Modified`: the new value and revisions. For `Deleted`: the value before
    /// deletion, with `mod_revision` set to the revision of the delete.
    pub kv: KeyValue,
    /// The value before this change, if any.
    pub prev_value: Option<Vec<u8>>,
}

/// A watch: changes in revision order. The stream ends with an error item when the watcher
/// falls too far behind (the consumer re-lists, as Kubernetes clients do on `410 Gone`).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// An update or delete named an expected revision that is no longer current.
    #[error("key {key} was modified: expected revision {expected}, current {current}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Revision,
    },
    /// A watch asked for history older than the backend keeps.
    #[error("revision {requested} has been compacted; oldest available is {oldest}")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// A watcher fell too far behind the stream of changes.
    #[error("watcher fell behind and was dropped")]
    WatcherLagged,
    /// The backend failed (disk, database, connection). The message says what and where.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The disk holding the store is full: writes fail until space is freed, reads and
    /// watches go on. The message names the file.
    #[error("{0}")]
    NoSpace(String),
    /// Too many writes are waiting for the backend; the caller may retry later.
    #[error("{0}")]
    Overloaded(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage seam. Implementations must be linearizable per key and make every
/// acknowledged write durable before returning.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix` in key order, read at one revision. `start_after` skips
    /// keys up to and including it (the continue token); `limit` bounds the page size.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult>;

    /// Creates `key`; fails with `AlreadyExists` if present. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;

    /// Overwrites an existing `key`. With `expected` set, fails with `Conflict` unless the key's
    /// `mod_revision` equals it. Fails with `NotFound` if absent. Returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<Revision>,
    ) -> Result<Revision>;

    /// Deletes `key` (with the same `expected` check). Returns the delete's revision and the
    /// value the key had.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Changes to keys under `prefix` with revision strictly greater than `after`. `after = 0`
    /// means "from now". Fails with `Compacted` if `after` is older than the history window.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Whether the backend can take writes now: the error of its last failed commit (such as
    /// [`StoreError::NoSpace`]) until one succeeds again. Reads and watches may work either way;
    /// the API server's `/readyz` reports this.
    fn health(&self) -> Result<()> {
        Ok(())
    }
}
