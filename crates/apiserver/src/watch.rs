//! Watch: a stream of newline-delimited JSON `WatchEvent`s (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR) from a resourceVersion, filtered by namespace, name and selectors, each
//! object converted to the version (or Table) the client asked for.
//!
//! An object that stops matching the selectors is reported DELETED and one that starts
//! matching ADDED, as the Kubernetes watch cache does. A resourceVersion older than the
//! store's history gets an ERROR event carrying `410 Expired`, which clients answer by
//! re-listing.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use baton_api::registry::ResourceDef;
use baton_store::{EventType, StoreError, WatchEvent};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

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
    let mut enc = Encoder {
        def,
        format,
        q: q.clone(),
        first: true,
    };

    // "" or "0": start with the current state as ADDED events, then changes after it.
    let mut initial: Vec<Bytes> = Vec::new();
    let start_rev = match from {
        Some(rev) if rev > 0 => rev,
        _ => {
            let page = st
                .store
                .list(&prefix, None, None)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            for kv in &page.items {
                if !key_matches(t, &kv.key) {
                    continue;
                }
                let obj = decode_stored(kv)?;
                if sel.matches(def, &obj) {
                    initial.push(enc.event("ADDED", obj)?);
                }
            }
            page.revision
        }
    };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let stream = match st.store.watch(&prefix, start_rev).await {
        Ok(s) => Some(s),
        Err(StoreError::Compacted { requested, oldest }) => {
            let _ = tx
                .send(error_event(&ApiError::gone(format!(
                    "too old resource version: {requested} ({oldest})"
                ))))
                .await;
            None
        }
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let target = t.clone();
    tokio::spawn(async move {
        for b in initial {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let Some(mut stream) = stream else { return };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rev = start_rev;
        loop {
            let next = tokio::time::timeout(BOOKMARK_EVERY, stream.next());
            let ev = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                r = next => r,
            };
            let ev: WatchEvent = match ev {
                Err(_) => {
                    if bookmarks {
                        let bm = json!({"type": "BOOKMARK", "object": {
                            "kind": def.kind, "apiVersion": def.api_version(),
                            "metadata": {"resourceVersion": last_rev.to_string()}}});
                        if let Ok(b) = line(&bm)
                            && tx.send(b).await.is_err()
                        {
                            return;
                        }
                    }
                    continue;
                }
                Ok(None) => return,
                Ok(Some(Err(e))) => {
                    let _ = tx
                        .send(error_event(&ApiError::gone(format!("watch ended: {e}"))))
                        .await;
                    return;
                }
                Ok(Some(Ok(ev))) => ev,
            };
            last_rev = ev.kv.mod_revision;
            if !key_matches(&target, &ev.kv.key) {
                continue;
            }
            let Ok(obj) = decode_stored(&ev.kv) else {
                continue;
            };
            let now_matches = sel.matches(def, &obj);
            let was_matching = ev
                .prev_value
                .as_deref()
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                .map(|p| sel.matches(def, &p));
            let kind = match (ev.kind, was_matching, now_matches) {
                (EventType::Deleted, _, true) => "DELETED",
                (EventType::Deleted, _, false) => continue,
                (EventType::Added, _, true) => "ADDED",
                (EventType::Modified, Some(true), true) => "MODIFIED",
                (EventType::Modified, Some(true), false) => "DELETED",
                (EventType::Modified, _, true) => "ADDED",
                _ => continue,
            };
            let Ok(b) = enc.event(kind, obj) else {
                continue;
            };
            if tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>),
    );
    let resp = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::Raw(resp))
}
