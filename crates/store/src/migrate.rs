//! Moving a cluster from one store to another (`baton store migrate`): every key copied with
//! its value, in key order, into a store that holds none under the prefix yet.
//!
//! The copy is taken while nothing writes to the source (the server stopped: the embedded
//! store's file lock makes sure of that). The target gives the keys revisions of its own, so
//! `resourceVersion`s change and clients re-list, as after an etcd restore in Kubernetes;
//! values — uids, generations, everything in the objects — are copied unchanged.

use crate::{Result, Store, StoreError};

/// Keys read per page from the source.
const PAGE: usize = 500;

/// Copies every key under `prefix` from `from` to `to`. Fails before writing anything if `to`
/// already has a key under `prefix`, and on the first failed write (a copy cut short can be
/// taken again after clearing the target). Returns how many keys were copied.
pub async fn copy(from: &dyn Store, to: &dyn Store, prefix: &str) -> Result<usize> {
    let present = to.list(prefix, None, Some(1)).await?;
    if let Some(kv) = present.items.first() {
        return Err(StoreError::AlreadyExists {
            key: kv.key.clone(),
        });
    }
    let mut copied = 0;
    let mut after: Option<String> = None;
    loop {
        let page = from.list(prefix, after.as_deref(), Some(PAGE)).await?;
        for kv in &page.items {
            to.create(&kv.key, kv.value.clone()).await?;
            copied += 1;
        }
        match page.items.last() {
            Some(last) if page.more => after = Some(last.key.clone()),
            _ => return Ok(copied),
        }
    }
}
