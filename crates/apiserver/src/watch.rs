//! Watch: a stream of newline-delimited JSON `WatchEvent`s (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR) from a resourceVersion, filtered by namespace, name and selectors, each
//! object converted to the version (or Table) the client asked for.
//!
//! An object that stops matching the selectors is reported DELETED and one that starts
//! matching ADDED, as the Kubernetes watch cache does. A resourceVersion older than the
//! store's history gets an ERROR event carrying `410 Expired`, which clients answer by
//! re-listing.
//!
//! The body pulls each event from the store only when the connection has taken the last one,
//! so a client that stops reading costs no more than the store's bound on its queue. How many
//! watches may be open at once, overall and per client, is bounded by [`Slots`] (`429` beyond).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use baton_api::registry::ResourceDef;
use baton_store::{EventType, KeyValue, Revision, StoreError, WatchEvent, WatchStream};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects;
use crate::registry::{Selectors, decode_stored, to_wire};
use crate::request::{Format, Query};
use crate::response::Reply;
use crate::route::Target;
use crate::state::AppState;

/// How long a watch idles before a BOOKMARK is sent (when the client allows bookmarks).
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Default and maximum duration of one watch request.
const MAX_WATCH: Duration = Duration::from_secs(30 * 60);

struct Encoder {
    def: &'static ResourceDef,
    format: Format,
    q: Query,
    first: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: Value) -> ApiResult<Bytes> {
        let object = match self.format {
            Format::Table { .. } => {
                let t = crate::tables::watch_table(self.def, &obj, &self.q, self.first)?;
                self.first = false;
                t
            }
            Format::Metadata => crate::tables::partial_metadata(&obj),
            Format::Object => to_wire(self.def, obj)?,
        };
        line(&json!({"type": kind, "object": object}))
    }
}

fn line(v: &Value) -> ApiResult<Bytes> {
    Ok(Bytes::from(crate::response::encode(v)))
}

fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.status()})).unwrap_or_default()
}

/// Name restriction of a watch on one object (`kubectl get x -w` sends
/// `fieldSelector=metadata.name=x`; the field selector handles that itself).
fn key_matches(t: &Target, key: &str) -> bool {
    match &t.name {
        Some(n) => key.rsplit('/').next() == Some(n.as_str()),
        None => true,
    }
}

pub async fn watch(st: Arc<AppState>, t: &Target, q: &Query, format: Format) -> ApiResult<Reply> {
    let def = t.def;
    let sel = Selectors::parse(def, q)?;
    let prefix = def.namespace_prefix(t.namespace.as_deref());
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(MAX_WATCH)
        .min(MAX_WATCH);
    let from =
        objects::parse_resource_version(q.get("resourceVersion")).map_err(ApiError::bad_request)?;

    // "" or "0": start with the current state as ADDED events, then changes after it.
    let mut initial = Vec::new();
    let start_rev = match from {
        Some(rev) if rev > 0 => rev,
        _ => {
            let page = st
                .store
                .list(&prefix, None, None)
                .await
                .map_err(ApiError::store)?;
            initial = page.items;
            page.revision
        }
    };

    let mut gone = None;
    let stream = match st.store.watch(&prefix, start_rev).await {
        Ok(s) => Some(s),
        Err(StoreError::Compacted { requested, oldest }) => {
            gone = Some(error_event(&ApiError::gone(format!(
                "too old resource version: {requested} ({oldest})"
            ))));
            None
        }
        Err(e) => return Err(ApiError::store(e)),
    };
    let feed = Feed {
        enc: Encoder {
            def,
            format,
            q: q.clone(),
            first: true,
        },
        sel,
        target: t.clone(),
        initial: initial.into_iter(),
        gone,
        stream,
        bookmarks,
        deadline: tokio::time::Instant::now() + timeout,
        last_rev: start_rev,
    };
    // The body pulls one event at a time as the connection takes it: nothing is buffered here
    // for a client that does not read (the store bounds what waits for it, by bytes).
    let body = Body::from_stream(futures::stream::unfold(feed, |mut feed| async move {
        feed.next()
            .await
            .map(|b| (Ok::<_, std::io::Error>(b), feed))
    }));
    let resp = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::Raw(resp))
}

/// One watch's state: the initial objects still to send, then the store's changes until the
/// deadline.
struct Feed {
    enc: Encoder,
    sel: Selectors,
    target: Target,
    initial: std::vec::IntoIter<KeyValue>,
    /// The `410` ERROR event of a watch from a compacted revision.
    gone: Option<Bytes>,
    stream: Option<WatchStream>,
    bookmarks: bool,
    deadline: tokio::time::Instant,
    last_rev: Revision,
}

impl Feed {
    /// The next line of the body; `None` ends the watch.
    async fn next(&mut self) -> Option<Bytes> {
        let def = self.enc.def;
        for kv in self.initial.by_ref() {
            if !key_matches(&self.target, &kv.key) {
                continue;
            }
            let Ok(obj) = decode_stored(&kv) else {
                continue;
            };
            if self.sel.matches(def, &obj)
                && let Ok(b) = self.enc.event("ADDED", obj)
            {
                return Some(b);
            }
        }
        if let Some(b) = self.gone.take() {
            return Some(b);
        }
        let stream = self.stream.as_mut()?;
        loop {
            let next = tokio::time::timeout(BOOKMARK_EVERY, stream.next());
            let ev = tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => None,
                r = next => Some(r),
            };
            let ev: WatchEvent = match ev {
                None | Some(Ok(None)) => {
                    self.stream = None;
                    return None;
                }
                Some(Err(_)) => {
                    if self.bookmarks {
                        let bm = json!({"type": "BOOKMARK", "object": {
                            "kind": def.kind, "apiVersion": def.api_version(),
                            "metadata": {"resourceVersion": self.last_rev.to_string()}}});
                        if let Ok(b) = line(&bm) {
                            return Some(b);
                        }
                    }
                    continue;
                }
                Some(Ok(Some(Err(e)))) => {
                    self.stream = None;
                    return Some(error_event(&ApiError::gone(format!("watch ended: {e}"))));
                }
                Some(Ok(Some(Ok(ev)))) => ev,
            };
            self.last_rev = ev.kv.mod_revision;
            if !key_matches(&self.target, &ev.kv.key) {
                continue;
            }
            let Ok(obj) = decode_stored(&ev.kv) else {
                continue;
            };
            let now_matches = self.sel.matches(def, &obj);
            // Without selectors every object matches: the previous value need not be decoded
            // (a large object would be parsed once more per watcher for nothing).
            let was_matching = match ev.prev_value.as_deref() {
                None => None,
                Some(_) if self.sel.is_empty() => Some(true),
                Some(p) => serde_json::from_slice::<Value>(p)
                    .ok()
                    .map(|p| self.sel.matches(def, &p)),
            };
            let kind = match (ev.kind, was_matching, now_matches) {
                (EventType::Deleted, _, true) => "DELETED",
                (EventType::Deleted, _, false) => continue,
                (EventType::Added, _, true) => "ADDED",
                (EventType::Modified, Some(true), true) => "MODIFIED",
                (EventType::Modified, Some(true), false) => "DELETED",
                (EventType::Modified, _, true) => "ADDED",
                _ => continue,
            };
            if let Ok(b) = self.enc.event(kind, obj) {
                return Some(b);
            }
        }
    }
}

/// How many watches may be open at once (`--max-watches`, `--max-watches-per-client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    pub total: usize,
    /// Per client: its address and `User-Agent` (every client holds the one admin token, so
    /// this protects from a runaway client, not from a determined one, which `total` bounds).
    pub per_client: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            total: 8192,
            per_client: 500,
        }
    }
}

/// How long a refused client is asked to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 1;

/// The watches open now, overall and per client.
pub struct Slots {
    limits: WatchLimits,
    open: Mutex<(usize, HashMap<String, usize>)>,
}

/// One open watch's place; given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    client: String,
}

impl Slots {
    pub fn new(limits: WatchLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for one more watch of `client`, or `429 TooManyRequests` with `Retry-After`.
    pub fn take(self: &Arc<Self>, client: &str) -> ApiResult<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_client) = &mut *open;
        if *total >= self.limits.total {
            return Err(ApiError::too_many_requests(
                format!(
                    "too many watches open: the server serves at most {} at once (--max-watches); please try again later",
                    self.limits.total
                ),
                RETRY_AFTER_SECS,
            ));
        }
        let mine = per_client.entry(client.to_owned()).or_insert(0);
        if *mine >= self.limits.per_client {
            return Err(ApiError::too_many_requests(
                format!(
                    "too many watches open by this client ({client}): at most {} at once (--max-watches-per-client); please try again later",
                    self.limits.per_client
                ),
                RETRY_AFTER_SECS,
            ));
        }
        *mine += 1;
        *total += 1;
        Ok(Slot {
            slots: self.clone(),
            client: client.to_owned(),
        })
    }

    /// Watches open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_client) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// `resp` with `slot` held until its body ends (the watch's stream is dropped).
pub fn hold(resp: Response, slot: Slot) -> Response {
    resp.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &slot;
            chunk
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_each_client_and_the_total_and_are_given_back() {
        let slots = Slots::new(WatchLimits {
            total: 3,
            per_client: 2,
        });
        let a1 = slots.take("a").expect("a's first");
        let _a2 = slots.take("a").expect("a's second");
        let refused = slots.take("a").err().expect("a's third is refused");
        assert_eq!((refused.code, refused.reason), (429, "TooManyRequests"));
        assert!(
            refused.message.contains("--max-watches-per-client"),
            "{}",
            refused.message
        );
        let _b1 = slots.take("b").expect("b's first");
        let refused = slots.take("c").err().expect("the fourth in all is refused");
        assert!(
            refused.message.contains("--max-watches)"),
            "{}",
            refused.message
        );
        assert_eq!(refused.status()["details"]["retryAfterSeconds"], 1);
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _c1 = slots.take("c").expect("a place was given back");
    }
}
