//! Resource handlers: get, list, create, update, patch, delete and deletecollection, for main
//! resources and their `status` subresource, over the [`registry`](crate::registry) layer.
//! Every write goes through the same pipeline: decode → check identity → unknown fields →
//! convert to storage (with defaults) → system metadata → validate → the registry (admission,
//! store with optimistic concurrency) → convert back for the response.

use std::sync::Arc;

use axum::response::Response;
use baton_api::quantity::QuantityError;
use baton_api::registry::ResourceDef;
use baton_api::validation::FieldError;
use baton_api::{convert, validation};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, meta_str, metadata_mut};
use crate::patch::apply_patch;
use crate::registry::{self, DeleteOptions, Selectors, Update, UpdateOptions, to_wire};
use crate::request::{FieldValidation, Format, Query};
use crate::response::{self, Reply};
use crate::route::Target;
use crate::state::AppState;
use crate::{admission, tables};
use baton_store::Revision;

fn name_of(t: &Target) -> ApiResult<&str> {
    t.name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("a resource name is required"))
}

pub async fn get(st: &AppState, t: &Target, q: &Query, format: Format) -> ApiResult<Reply> {
    let name = name_of(t)?;
    let obj = registry::read(st, t.def, t.namespace.as_deref(), name).await?;
    match format {
        Format::Table { .. } => Ok(Reply::json(
            StatusCode::OK,
            tables::table(t.def, &[obj], q, None, None)?,
        )),
        Format::Metadata => Ok(Reply::json(StatusCode::OK, tables::partial_metadata(&obj))),
        Format::Object => Ok(Reply::json(StatusCode::OK, to_wire(t.def, obj)?)),
    }
}

pub async fn list(st: &AppState, t: &Target, q: &Query, format: Format) -> ApiResult<Reply> {
    let def = t.def;
    let sel = Selectors::parse(def, q)?;
    let limit = match q.get("limit") {
        None | Some("") | Some("0") => None,
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        ),
    };
    let cont = q.get("continue").filter(|c| !c.is_empty());
    let page = registry::list(st, def, t.namespace.as_deref(), &sel, limit, cont).await?;
    let (objs, cont) = (page.items, page.cont);
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

/// Reads every quantity of `obj` as Kubernetes' decoder does and stores it in Kubernetes'
/// form: text that is not a quantity fails decoding (400, Kubernetes' message); a quantity
/// past ±(2^63-1) units, which Kubernetes would cap, is a 422 naming the field.
fn check_quantities(def: &ResourceDef, name: &str, obj: &mut Value) -> ApiResult<()> {
    let bad = baton_schema::quantities::canonicalize(def, obj);
    if let Some(b) = bad.iter().find(|b| b.error != QuantityError::TooLarge) {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            def.kind, def.version, def.kind, b.error
        )));
    }
    if bad.is_empty() {
        return Ok(());
    }
    let errs: Vec<FieldError> = bad
        .into_iter()
        .map(|b| FieldError::invalid(b.field, b.value, b.error.to_string()))
        .collect();
    Err(ApiError::invalid(def, name, &errs))
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
    check_quantities(def, &name, &mut obj)?;
    let mut stored = to_storage(def, obj)?;
    objects::prepare_for_create(def.storage_def(), &mut stored);
    validate(def, &name, &stored, None)?;
    let stored = registry::create(st, def, stored, dry_run).await?;
    Ok(Reply::json(StatusCode::CREATED, to_wire(def, stored)?).with_warnings(warnings))
}

/// The shared step of update and patch: `new` is the full object in the addressed version,
/// `current` the stored one; returns what to store (storage version, validated). Update
/// admission (allocations) follows in the registry.
fn updated_object(
    t: &Target,
    q: &Query,
    mut new: Value,
    current: &Value,
    client_rv: Option<Revision>,
    warnings: &mut Vec<String>,
) -> ApiResult<Value> {
    let def = t.def;
    let name = name_of(t)?;
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
        && Some(rv.to_string().as_str()) != meta_str(current, "resourceVersion")
    {
        return Err(ApiError::stale(def, name));
    }
    check_quantities(def, name, &mut new)?;
    let mut stored = to_storage(def, new)?;
    objects::prepare_for_update(def.storage_def(), &mut stored, current, status_only);
    if !status_only {
        admission::prepare_update(def, &mut stored, current);
    }
    validate(def, name, &stored, Some(current))?;
    Ok(stored)
}

fn update_options(t: &Target, q: &Query) -> ApiResult<UpdateOptions> {
    Ok(UpdateOptions {
        dry_run: q.dry_run()?,
        admit: t.sub.as_deref() != Some("status"),
    })
}

/// `PUT`: with a resourceVersion in the body a precondition, without one an unconditional
/// replace (retried on conflict, as Kubernetes does).
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
    let mut warnings = Vec::new();
    let opts = update_options(t, q)?;
    let stored =
        registry::guaranteed_update(st, t.def, t.namespace.as_deref(), name, opts, |cur| {
            warnings.clear();
            updated_object(t, q, new.clone(), cur, client_rv, &mut warnings).map(Update::Write)
        })
        .await?;
    Ok(Reply::json(StatusCode::OK, to_wire(t.def, stored)?).with_warnings(warnings))
}

/// `PATCH`: the patch applies to the current object in the addressed version; without a
/// resourceVersion in the patch, a conflict with a concurrent writer is retried against the
/// new current object, as Kubernetes does.
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
    let mut warnings = Vec::new();
    let opts = update_options(t, q)?;
    let stored = registry::guaranteed_update(st, def, t.namespace.as_deref(), name, opts, |cur| {
        warnings.clear();
        let current_rv = meta_str(cur, "resourceVersion").unwrap_or("").to_string();
        let current = to_wire(def, cur.clone())?;
        let mut patched = apply_patch(def, &current, pt, body)?;
        let client_rv = match meta_str(&patched, "resourceVersion") {
            Some(rv) if rv != current_rv => Some(
                objects::parse_resource_version(Some(rv))
                    .map_err(ApiError::bad_request)?
                    .unwrap_or(0),
            ),
            _ => None,
        };
        metadata_mut(&mut patched).remove("resourceVersion");
        updated_object(t, q, patched, cur, client_rv, &mut warnings).map(Update::Write)
    })
    .await?;
    Ok(Reply::json(StatusCode::OK, to_wire(def, stored)?).with_warnings(warnings))
}

pub async fn delete(st: &AppState, t: &Target, q: &Query, body: &[u8]) -> ApiResult<Reply> {
    let name = name_of(t)?;
    let opts = DeleteOptions::parse(q, body)?;
    let out = registry::delete(st, t.def, t.namespace.as_deref(), name, &opts).await?;
    Ok(Reply::json(StatusCode::OK, to_wire(t.def, out)?))
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
    let (deleted, revision) =
        registry::delete_collection(st, def, t.namespace.as_deref(), &sel, &opts).await?;
    let mut items = Vec::with_capacity(deleted.len());
    for o in deleted {
        items.push(to_wire(def, o)?);
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": revision.to_string()}, "items": items}),
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
        (&Method::POST, true, Some("eviction")) => {
            crate::eviction::evict(st, t, q, headers, body).await
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
