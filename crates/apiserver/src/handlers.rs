//! Resource handlers: get, list, create, update, patch, delete and deletecollection, for main
//! resources and their `status` subresource. Every write goes through the same pipeline:
//! decode → check identity → unknown fields → convert to storage (with defaults) → system
//! metadata → validate → store (optimistic concurrency) → convert back for the response.

use std::sync::Arc;

use axum::response::Response;
use baton_api::registry::ResourceDef;
use baton_api::{convert, validation};
use baton_store::{KeyValue, Revision, StoreError};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, meta_str, metadata_mut};
use crate::request::{FieldValidation, Format, PatchType, Query};
use crate::response::{self, Reply};
use crate::route::Target;
use crate::state::AppState;
use crate::{admission, gc, tables};

/// How many times a read-modify-write retries after losing a race to a concurrent writer
/// (patches without a resourceVersion, deletes, and the scale/rollback/binding subresources).
pub const CONFLICT_RETRIES: usize = 8;

/// Decodes a stored value and stamps its resourceVersion.
pub fn decode_stored(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    objects::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// Converts a stored object to the version the client addressed.
pub fn to_wire(def: &ResourceDef, stored: Value) -> ApiResult<Value> {
    convert::from_storage(def, stored).map_err(|e| ApiError::internal(e.to_string()))
}

fn name_of(t: &Target) -> ApiResult<&str> {
    t.name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("a resource name is required"))
}

/// Reads one stored object (storage version, resourceVersion stamped).
pub async fn read(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<(Value, KeyValue)> {
    let key = def.key(ns, name);
    match st.store.get(&key).await {
        Ok(Some(kv)) => Ok((decode_stored(&kv)?, kv)),
        Ok(None) => Err(ApiError::not_found(def, name)),
        Err(e) => Err(ApiError::from_store(def, name, e)),
    }
}

pub async fn get(st: &AppState, t: &Target, q: &Query, format: Format) -> ApiResult<Reply> {
    let name = name_of(t)?;
    let (obj, _) = read(st, t.def, t.namespace.as_deref(), name).await?;
    let _ = q;
    match format {
        Format::Table { .. } => Ok(Reply::json(
            StatusCode::OK,
            tables::table(t.def, &[obj], q, None, None)?,
        )),
        Format::Metadata => Ok(Reply::json(StatusCode::OK, tables::partial_metadata(&obj))),
        Format::Object => Ok(Reply::json(StatusCode::OK, to_wire(t.def, obj)?)),
    }
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

/// Selectors of a list or watch request.
pub struct Selectors {
    pub labels: baton_api::selectors::LabelSelector,
    pub fields: baton_api::selectors::FieldSelector,
}

impl Selectors {
    pub fn parse(def: &ResourceDef, q: &Query) -> ApiResult<Self> {
        let labels =
            baton_api::selectors::LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields =
            baton_api::selectors::FieldSelector::parse(def, q.get("fieldSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Self { labels, fields })
    }

    /// `obj` is in its storage version.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        let labels = objects::metadata(obj)
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.labels.matches(labels) && self.fields.matches(def.storage_def(), obj)
    }
}

pub async fn list(st: &AppState, t: &Target, q: &Query, format: Format) -> ApiResult<Reply> {
    let def = t.def;
    let sel = Selectors::parse(def, q)?;
    let prefix = def.namespace_prefix(t.namespace.as_deref());
    let limit = match q.get("limit") {
        None | Some("") | Some("0") => None,
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        ),
    };
    let start = match q.get("continue") {
        None | Some("") => None,
        Some(tok) => Some(decode_continue(tok)?),
    };
    let page = st
        .store
        .list(&prefix, start.as_deref(), limit)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut objs = Vec::with_capacity(page.items.len());
    for kv in &page.items {
        let obj = decode_stored(kv)?;
        if sel.matches(def, &obj) {
            objs.push(obj);
        }
    }
    let cont = match (page.more, page.items.last()) {
        (true, Some(last)) => Some(encode_continue(&last.key, page.revision)),
        _ => None,
    };
    match format {
        Format::Table { .. } => Ok(Reply::json(
            StatusCode::OK,
            tables::table(def, &objs, q, Some(page.revision), cont.as_deref())?,
        )),
        Format::Metadata => {
            let items: Vec<Value> = objs.iter().map(tables::partial_metadata).collect();
            let mut meta = json!({"resourceVersion": page.revision.to_string()});
            if let Some(c) = &cont {
                meta["continue"] = json!(c);
            }
            Ok(Reply::json(
                StatusCode::OK,
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            ))
        }
        Format::Object => {
            let mut items = Vec::with_capacity(objs.len());
            for o in objs {
                items.push(to_wire(def, o)?);
            }
            let mut meta = json!({"resourceVersion": page.revision.to_string()});
            if let Some(c) = &cont {
                meta["continue"] = json!(c);
            }
            Ok(Reply::json(
                StatusCode::OK,
                json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
            ))
        }
    }
}

/// Checks `apiVersion`/`kind` of a body against the addressed resource, filling them in when
/// absent.
fn check_type(def: &ResourceDef, obj: &mut Value, expected_kind: &str) -> ApiResult<()> {
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let want_av = def.api_version();
    if !av.is_empty() && av != want_av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want_av})"
        )));
    }
    if !kind.is_empty() && kind != expected_kind {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {expected_kind}: the kind in the data does not match the expected kind",
            def.version
        )));
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(want_av));
        m.insert("kind".into(), json!(expected_kind));
    }
    Ok(())
}

/// Applies `fieldValidation` to the unknown fields of `obj`: an error under Strict, warnings
/// under Warn.
fn check_unknown_fields(
    def: &ResourceDef,
    obj: &Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    if fv == FieldValidation::Ignore {
        return Ok(());
    }
    let unknown = baton_schema::fields::unknown_fields(def, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match fv {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            def.kind,
            def.version,
            def.kind,
            listed.join(", ")
        ))),
        _ => {
            warnings.extend(listed);
            Ok(())
        }
    }
}

/// Puts the URL's namespace on the object, rejecting a conflicting one.
fn check_namespace(def: &ResourceDef, obj: &mut Value, ns: Option<&str>) -> ApiResult<()> {
    let body_ns = meta_str(obj, "namespace").unwrap_or("").to_string();
    let m = metadata_mut(obj);
    if !def.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    let Some(ns) = ns else {
        return Err(ApiError::bad_request(
            "the namespace of the object must be given in the URL",
        ));
    };
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    m.insert("namespace".into(), json!(ns));
    Ok(())
}

fn to_storage(def: &ResourceDef, obj: Value) -> ApiResult<Value> {
    convert::to_storage(def, obj).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn validate(def: &ResourceDef, name: &str, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let errs = validation::validate(def, obj, old);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(def, name, &errs))
    }
}

pub async fn create(
    st: &AppState,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let dry_run = q.dry_run()?;
    let fv = q.field_validation()?;
    let mut obj = crate::request::decode_body(headers, body)?;
    check_type(def, &mut obj, def.kind)?;
    let mut warnings = Vec::new();
    check_unknown_fields(def, &obj, fv, &mut warnings)?;
    check_namespace(def, &mut obj, t.namespace.as_deref())?;
    if objects::name(&obj).is_none()
        && let Some(prefix) = meta_str(&obj, "generateName").filter(|p| !p.is_empty())
    {
        let generated = objects::generate_name(prefix);
        metadata_mut(&mut obj).insert("name".into(), json!(generated));
    }
    let name = objects::name(&obj).unwrap_or("").to_string();
    let mut stored = to_storage(def, obj)?;
    objects::prepare_for_create(def.storage_def(), &mut stored);
    validate(def, &name, &stored, None)?;
    let _allocating = admission::allocation_lock(st, def).await;
    admission::on_create(st, def, &mut stored).await?;
    let rev = if dry_run {
        0
    } else {
        let key = def.key(t.namespace.as_deref(), &name);
        st.store
            .create(&key, objects::encode(&stored)?)
            .await
            .map_err(|e| ApiError::from_store(def, &name, e))?
    };
    if rev > 0 {
        objects::set_resource_version(&mut stored, rev);
    }
    Ok(Reply::json(StatusCode::CREATED, to_wire(def, stored)?).with_warnings(warnings))
}

/// The shared tail of update and patch: `new` is the full object in the addressed version.
async fn write_update(
    st: &AppState,
    t: &Target,
    q: &Query,
    mut new: Value,
    old_kv: &KeyValue,
    client_rv: Option<Revision>,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let def = t.def;
    let name = name_of(t)?;
    let dry_run = q.dry_run()?;
    let status_only = t.sub.as_deref() == Some("status");
    check_type(def, &mut new, def.kind)?;
    check_unknown_fields(def, &new, q.field_validation()?, warnings)?;
    check_namespace(def, &mut new, t.namespace.as_deref())?;
    let body_name = objects::name(&new).unwrap_or("").to_string();
    if body_name.is_empty() {
        metadata_mut(&mut new).insert("name".into(), json!(name));
    } else if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(rv) = client_rv
        && rv != old_kv.mod_revision
    {
        return Err(ApiError::stale(def, name));
    }
    let old = decode_stored(old_kv)?;
    let mut stored = to_storage(def, new)?;
    objects::prepare_for_update(def.storage_def(), &mut stored, &old, status_only);
    if !status_only {
        admission::prepare_update(def, &mut stored, &old);
    }
    validate(def, name, &stored, Some(&old))?;
    let _allocating = admission::allocation_lock(st, def).await;
    if !status_only {
        admission::on_update(st, def, &mut stored, &old).await?;
    }
    let key = def.key(t.namespace.as_deref(), name);
    let finished = gc::deletion_finished(&stored);
    if dry_run {
        return to_wire(def, stored);
    }
    if finished {
        // The last finalizer is gone from an object being deleted: the update completes it.
        let (_, _) = st
            .store
            .delete(&key, Some(old_kv.mod_revision))
            .await
            .map_err(|e| ApiError::from_store(def, name, e))?;
        return to_wire(def, stored);
    }
    let unchanged = {
        let mut o = old.clone();
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        o == stored
    };
    if unchanged {
        // Kubernetes does not write (or bump resourceVersion) for a no-op update.
        return to_wire(def, old);
    }
    let rev = st
        .store
        .update(&key, objects::encode(&stored)?, Some(old_kv.mod_revision))
        .await
        .map_err(|e| ApiError::from_store(def, name, e))?;
    objects::set_resource_version(&mut stored, rev);
    to_wire(def, stored)
}

pub async fn update(
    st: &AppState,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let name = name_of(t)?;
    let new = crate::request::decode_body(headers, body)?;
    let client_rv = objects::parse_resource_version(meta_str(&new, "resourceVersion"))
        .map_err(ApiError::bad_request)?;
    let key = t.def.key(t.namespace.as_deref(), name);
    let old_kv = match st.store.get(&key).await {
        Ok(Some(kv)) => kv,
        Ok(None) => return Err(ApiError::not_found(t.def, name)),
        Err(e) => return Err(ApiError::from_store(t.def, name, e)),
    };
    let mut warnings = Vec::new();
    let out = write_update(st, t, q, new, &old_kv, client_rv, &mut warnings).await?;
    Ok(Reply::json(StatusCode::OK, out).with_warnings(warnings))
}

/// Applies a patch document of type `pt` to `current` (in the addressed version).
pub fn apply_patch(
    def: &ResourceDef,
    current: &Value,
    pt: PatchType,
    body: &[u8],
) -> ApiResult<Value> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match pt {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic => baton_schema::strategic::apply(def, current, &patch)
            .map_err(|e| ApiError::new(422, "Invalid", e.to_string())),
        PatchType::Apply => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
        )),
    }
}

pub async fn patch(
    st: &AppState,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = name_of(t)?;
    let pt = crate::request::patch_type(headers)?;
    let key = def.key(t.namespace.as_deref(), name);
    let mut warnings = Vec::new();
    // Without a resourceVersion in the patch, a conflict with a concurrent writer is retried
    // against the new current object, as Kubernetes does.
    for _ in 0..CONFLICT_RETRIES {
        let old_kv = match st.store.get(&key).await {
            Ok(Some(kv)) => kv,
            Ok(None) => return Err(ApiError::not_found(def, name)),
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        };
        let current = to_wire(def, decode_stored(&old_kv)?)?;
        let mut patched = apply_patch(def, &current, pt, body)?;
        let patched_rv = meta_str(&patched, "resourceVersion").map(str::to_string);
        let client_rv = match patched_rv.as_deref() {
            Some(rv) if rv != old_kv.mod_revision.to_string() => Some(
                objects::parse_resource_version(Some(rv))
                    .map_err(ApiError::bad_request)?
                    .unwrap_or(0),
            ),
            _ => None,
        };
        metadata_mut(&mut patched).remove("resourceVersion");
        match write_update(st, t, q, patched, &old_kv, client_rv, &mut warnings).await {
            Err(e) if e.reason == "Conflict" && client_rv.is_none() => continue,
            Err(e) => return Err(e),
            Ok(out) => return Ok(Reply::json(StatusCode::OK, out).with_warnings(warnings)),
        }
    }
    Err(ApiError::stale(def, name))
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

/// Deletes one object, honouring finalizers and the propagation policy: `Orphan` and
/// `Foreground` record their finalizer and a deletionTimestamp for the garbage collector.
pub async fn delete_one(
    st: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let key = def.key(ns, name);
    for _ in 0..CONFLICT_RETRIES {
        let (obj, kv) = read(st, def, ns, name).await?;
        if let Some(uid) = &opts.precondition_uid {
            let actual = meta_str(&obj, "uid").unwrap_or("");
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
        if let Some(rv) = &opts.precondition_rv
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                def,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let policy = opts
            .propagation
            .clone()
            .unwrap_or_else(|| gc::default_policy(def).to_string());
        let mut marked = obj.clone();
        let mut needs_wait = gc::mark_for_deletion(&mut marked, &policy);
        if gc::mark_graceful(&mut marked, opts.grace_period) {
            needs_wait = true;
        }
        if opts.dry_run {
            return to_wire(def, marked);
        }
        if needs_wait {
            if marked == obj {
                return to_wire(def, obj);
            }
            match st
                .store
                .update(&key, objects::encode(&marked)?, Some(kv.mod_revision))
                .await
            {
                Ok(rev) => {
                    objects::set_resource_version(&mut marked, rev);
                    return to_wire(def, marked);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_store(def, name, e)),
            }
        }
        match st.store.delete(&key, Some(kv.mod_revision)).await {
            Ok(_) => return to_wire(def, obj),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        }
    }
    Err(ApiError::stale(def, name))
}

pub async fn delete(st: &AppState, t: &Target, q: &Query, body: &[u8]) -> ApiResult<Reply> {
    let name = name_of(t)?;
    let opts = DeleteOptions::parse(q, body)?;
    let out = delete_one(st, t.def, t.namespace.as_deref(), name, &opts).await?;
    Ok(Reply::json(StatusCode::OK, out))
}

pub async fn delete_collection(
    st: &AppState,
    t: &Target,
    q: &Query,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let opts = DeleteOptions::parse(q, body)?;
    let sel = Selectors::parse(def, q)?;
    let page = st
        .store
        .list(&def.namespace_prefix(t.namespace.as_deref()), None, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut items = Vec::new();
    for kv in &page.items {
        let obj = decode_stored(kv)?;
        if !sel.matches(def, &obj) {
            continue;
        }
        let Some(name) = objects::name(&obj).map(str::to_string) else {
            continue;
        };
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        match delete_one(st, def, ns.as_deref(), &name, &opts).await {
            Ok(o) => items.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": page.revision.to_string()}, "items": items}),
    ))
}

/// Entry point for resource requests.
pub async fn resource(
    st: Arc<AppState>,
    method: &http::Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let result = dispatch(&st, method, t, q, headers, body).await;
    match result {
        Ok(r) => r.into_response(),
        Err(e) => response::error(e),
    }
}

async fn dispatch(
    st: &Arc<AppState>,
    method: &http::Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    use http::Method;
    let format = crate::request::negotiate(headers)?;
    let watching = t.watch_path || q.flag("watch");
    match (method, t.name.is_some(), t.sub.as_deref()) {
        (&Method::GET, _, None) if watching => crate::watch::watch(st.clone(), t, q, format).await,
        (&Method::GET, false, None) => list(st, t, q, format).await,
        (&Method::GET, true, None | Some("status")) => get(st, t, q, format).await,
        (&Method::POST, false, None) => create(st, t, q, headers, body).await,
        (&Method::PUT, true, None | Some("status")) => update(st, t, q, headers, body).await,
        (&Method::PATCH, true, None | Some("status")) => patch(st, t, q, headers, body).await,
        (&Method::DELETE, true, None) => delete(st, t, q, body).await,
        (&Method::DELETE, false, None) => delete_collection(st, t, q, body).await,
        (_, true, Some("scale")) => {
            crate::subresources::scale(st, method, t, q, headers, body).await
        }
        (&Method::POST, true, Some("rollback")) => {
            crate::subresources::rollback(st, t, q, headers, body).await
        }
        (&Method::POST, true, Some("binding")) => {
            crate::subresources::binding(st, t, q, headers, body).await
        }
        (&Method::PUT, true, Some("finalize")) => {
            crate::subresources::finalize(st, t, q, headers, body).await
        }
        (m, _, sub) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m} {}{})",
            t.def.resource,
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        ))),
    }
}
