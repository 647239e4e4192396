//! The registry layer: every read and write of an API object goes through here, under thin
//! HTTP handlers (`handlers`, `subresources`, `watch`), as Kubernetes' generic registry
//! (`pkg/registry/generic/registry/store.go`) sits under its REST handlers.
//!
//! Objects here are in their storage version with `resourceVersion` stamped; conversion to
//! the version a client addressed is [`to_wire`]. Writes of existing objects are one
//! [`guaranteed_update`]: read, apply the caller's change to the current object, write with
//! the read revision as precondition, and on losing a race to a concurrent writer do it
//! again against the new current object — up to [`CONFLICT_RETRIES`] times, then 409
//! Conflict. Deletion ([`delete`]) is a guaranteed update too, with Kubernetes' semantics from
//! [`deletion`]: preconditions, finalizers, propagation policy, graceful deletion.

pub mod deletion;

use baton_api::convert;
use baton_api::registry::ResourceDef;
use baton_store::{KeyValue, Revision, StoreError};
use serde_json::{Value, json};

use crate::admission;
use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, meta_str};
use crate::request::Query;
use crate::state::AppState;

/// How many times a read-modify-write retries after losing a race to a concurrent writer.
pub const CONFLICT_RETRIES: usize = 8;

/// Decodes a stored value and stamps its resourceVersion.
pub fn decode_stored(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    objects::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// Converts a stored object to the version the client addressed, with every field Kubernetes
/// always writes and in its field order (what a patch applies to, too, as in Kubernetes).
pub fn to_wire(def: &ResourceDef, stored: Value) -> ApiResult<Value> {
    let mut obj =
        convert::from_storage(def, stored).map_err(|e| ApiError::internal(e.to_string()))?;
    baton_schema::wire::complete(def, &mut obj);
    Ok(obj)
}

/// The revision stamped on an object read through this layer.
fn revision_of(obj: &Value) -> Option<Revision> {
    meta_str(obj, "resourceVersion").and_then(|r| r.parse().ok())
}

/// Reads one stored object (storage version, resourceVersion stamped).
pub async fn read(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    let key = def.key(ns, name);
    match st.store.get(&key).await {
        Ok(Some(kv)) => decode_stored(&kv),
        Ok(None) => Err(ApiError::not_found(def, name)),
        Err(e) => Err(ApiError::from_store(def, name, e)),
    }
}

/// Selectors of a list or watch request.
pub struct Selectors {
    pub labels: baton_api::selectors::LabelSelector,
    pub fields: baton_api::selectors::FieldSelector,
}

impl Selectors {
    pub fn parse(def: &ResourceDef, q: &Query) -> ApiResult<Self> {
        let labels =
            baton_api::selectors::LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields =
            baton_api::selectors::FieldSelector::parse(def, q.get("fieldSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Self { labels, fields })
    }

    /// True when no selector was given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// `obj` is in its storage version.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        let labels = objects::metadata(obj)
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.labels.matches(labels) && self.fields.matches(def.storage_def(), obj)
    }
}

/// One page of a list: the matching objects, the store revision the list was read at, and
/// the continue token when more follow.
pub struct ListPage {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub cont: Option<String>,
}

/// The continue token: the last key of the page and the revision of the first page.
fn encode_continue(key: &str, rev: Revision) -> String {
    use base64::Engine;
    let raw = json!({"v": "baton.1", "rv": rev, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> ApiResult<String> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v["start"].as_str().map(str::to_string).ok_or_else(bad)
}

/// Lists the objects of `def` in `ns` (every namespace when `None`) that match `sel`, one page
/// of at most `limit` from the `cont` token on.
pub async fn list(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    sel: &Selectors,
    limit: Option<usize>,
    cont: Option<&str>,
) -> ApiResult<ListPage> {
    let start = cont.map(decode_continue).transpose()?;
    let page = st
        .store
        .list(&def.namespace_prefix(ns), start.as_deref(), limit)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut items = Vec::with_capacity(page.items.len());
    for kv in &page.items {
        let obj = decode_stored(kv)?;
        if sel.matches(def, &obj) {
            items.push(obj);
        }
    }
    let cont = match (page.more, page.items.last()) {
        (true, Some(last)) => Some(encode_continue(&last.key, page.revision)),
        _ => None,
    };
    Ok(ListPage {
        items,
        revision: page.revision,
        cont,
    })
}

/// Stores a new object (storage version, system metadata set, validated) after admission.
/// Returns it with its resourceVersion; with `dry_run`, as it would be stored.
pub async fn create(
    st: &AppState,
    def: &ResourceDef,
    mut obj: Value,
    dry_run: bool,
) -> ApiResult<Value> {
    let name = objects::name(&obj).unwrap_or("").to_string();
    let ns = meta_str(&obj, "namespace").map(str::to_string);
    let _allocating = admission::allocation_lock(st, def).await;
    admission::on_create(st, def, &mut obj).await?;
    if dry_run {
        return Ok(obj);
    }
    let rev = st
        .store
        .create(&def.key(ns.as_deref(), &name), objects::encode(&obj)?)
        .await
        .map_err(|e| ApiError::from_store(def, &name, e))?;
    objects::set_resource_version(&mut obj, rev);
    Ok(obj)
}

/// What a [`guaranteed_update`] change asks for.
pub enum Update {
    /// Store this object (storage version) in place of the current one. Nothing is written
    /// when it equals the current object; an object whose deletion is finished (see
    /// [`deletion::deletion_finished`]) is removed instead.
    Write(Value),
    /// Remove the object now.
    Delete,
}

/// How a [`guaranteed_update`] runs.
#[derive(Clone, Copy, Default)]
pub struct UpdateOptions {
    /// Compute the result but write nothing.
    pub dry_run: bool,
    /// Run update admission (Service allocations) on the new object.
    pub admit: bool,
}

/// Read-modify-write of one object: `change` gets the current object (storage version,
/// resourceVersion stamped) and says what to store. An error from `change` is the answer as
/// it is (a failed precondition, a validation error); a concurrent write between the read and
/// the write makes the whole step run again on the new current object, and after
/// [`CONFLICT_RETRIES`] lost races the answer is 409 Conflict. Returns the object as stored
/// (for [`Update::Delete`], as it was before removal).
pub async fn guaranteed_update(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    opts: UpdateOptions,
    mut change: impl FnMut(&Value) -> ApiResult<Update>,
) -> ApiResult<Value> {
    let key = def.key(ns, name);
    let _allocating = if opts.admit {
        admission::allocation_lock(st, def).await
    } else {
        None
    };
    for _ in 0..CONFLICT_RETRIES {
        let current = read(st, def, ns, name).await?;
        let rev = revision_of(&current)
            .ok_or_else(|| ApiError::internal(format!("{key} was read without a revision")))?;
        let written = match change(&current)? {
            Update::Delete => {
                if opts.dry_run {
                    return Ok(current);
                }
                st.store.delete(&key, Some(rev)).await.map(|_| current)
            }
            Update::Write(mut new) => {
                if opts.admit {
                    admission::on_update(st, def, &mut new, &current).await?;
                }
                if opts.dry_run {
                    return Ok(new);
                }
                if deletion::deletion_finished(&new) {
                    // The last finalizer is gone from an object being deleted: the write
                    // completes its deletion.
                    st.store.delete(&key, Some(rev)).await.map(|_| new)
                } else if unchanged(&current, &new) {
                    // Kubernetes does not write (or bump resourceVersion) for a no-op update.
                    return Ok(current);
                } else {
                    let bytes = objects::encode(&new)?;
                    st.store.update(&key, bytes, Some(rev)).await.map(|r| {
                        objects::set_resource_version(&mut new, r);
                        new
                    })
                }
            }
        };
        match written {
            Ok(obj) => return Ok(obj),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        }
    }
    Err(ApiError::stale(def, name))
}

/// True when `new` is `current` apart from the resourceVersion stamped on reading.
fn unchanged(current: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(current) == strip(new)
}

/// `DeleteOptions`, from the body or the query string.
#[derive(Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub dry_run: bool,
    pub grace_period: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

impl DeleteOptions {
    pub fn parse(q: &Query, body: &[u8]) -> ApiResult<Self> {
        let mut o = DeleteOptions {
            dry_run: q.dry_run()?,
            ..Default::default()
        };
        o.propagation = q.get("propagationPolicy").map(str::to_string);
        if q.get("orphanDependents") == Some("true") && o.propagation.is_none() {
            o.propagation = Some("Orphan".into());
        }
        o.grace_period = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok());
        if !body.iter().all(u8::is_ascii_whitespace) {
            let b: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
            if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation = Some(p.to_string());
            }
            if b.get("orphanDependents").and_then(Value::as_bool) == Some(true)
                && o.propagation.is_none()
            {
                o.propagation = Some("Orphan".into());
            }
            if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period = Some(g);
            }
            if b.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                o.dry_run = true;
            }
            o.precondition_uid = b
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.precondition_rv = b
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        match o.propagation.as_deref() {
            None | Some("Orphan" | "Background" | "Foreground") => Ok(o),
            Some(p) => Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            )),
        }
    }
}

/// Deletes one object with Kubernetes' semantics: the preconditions are checked against the
/// current object; `Orphan` and `Foreground` record their finalizer and a deletionTimestamp
/// for the garbage collector; a pod bound to a node is deleted gracefully; an object with
/// finalizers waits for them; anything else is removed now.
pub async fn delete(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let uopts = UpdateOptions {
        dry_run: opts.dry_run,
        admit: false,
    };
    guaranteed_update(st, def, ns, name, uopts, |obj| {
        check_preconditions(def, name, obj, opts)?;
        let policy = opts
            .propagation
            .clone()
            .unwrap_or_else(|| deletion::default_policy(def).to_string());
        let mut marked = obj.clone();
        let mut needs_wait = deletion::mark_for_deletion(&mut marked, &policy);
        if deletion::mark_graceful(&mut marked, opts.grace_period) {
            needs_wait = true;
        }
        if needs_wait {
            Ok(Update::Write(marked))
        } else {
            Ok(Update::Delete)
        }
    })
    .await
}

fn check_preconditions(
    def: &ResourceDef,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> ApiResult<()> {
    if let Some(uid) = &opts.precondition_uid {
        let actual = meta_str(obj, "uid").unwrap_or("");
        if actual != uid {
            return Err(ApiError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    let actual = meta_str(obj, "resourceVersion").unwrap_or("");
    if let Some(rv) = &opts.precondition_rv
        && rv != actual
    {
        return Err(ApiError::conflict(
            def,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
            ),
        ));
    }
    Ok(())
}

/// Deletes every object of `def` in `ns` that matches `sel`; returns them (as deleted, or as
/// marked for deletion) and the revision the list was read at. Objects that went away
/// meanwhile are skipped.
pub async fn delete_collection(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    sel: &Selectors,
    opts: &DeleteOptions,
) -> ApiResult<(Vec<Value>, Revision)> {
    let page = list(st, def, ns, sel, None, None).await?;
    let mut items = Vec::new();
    for obj in &page.items {
        let Some(name) = objects::name(obj) else {
            continue;
        };
        match delete(st, def, meta_str(obj, "namespace"), name, opts).await {
            Ok(o) => items.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok((items, page.revision))
}
