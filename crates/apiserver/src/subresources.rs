//! Subresources other than `status`: `scale` (autoscaling/v1 Scale, or the legacy groups' own
//! Scale), `rollback` (extensions/v1beta1 and apps/v1beta1 DeploymentRollback) and
//! `namespaces/{name}/finalize`.

use std::sync::Arc;

use baton_api::registry::ResourceDef;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::handlers::{self, read};
use crate::objects::{self, meta_str};
use crate::request::Query;
use crate::response::Reply;
use crate::route::Target;
use crate::state::AppState;

/// The annotation through which a legacy rollback request reaches the apps/v1 object (as
/// Kubernetes' own conversion carried `spec.rollbackTo`).
pub const ROLLBACK_TO_ANNOTATION: &str = "deprecated.deployment.rollback.to";

/// Renders a `metav1.LabelSelector` (or a plain map selector) as `k=v,k2 in (a,b)`.
fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    baton_api::selectors::label_selector_from_object(sel)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let legacy = !(def.group.is_empty() || def.group == "apps" && def.version == "v1");
    let api_version = if legacy {
        def.api_version()
    } else {
        "autoscaling/v1".to_string()
    };
    let meta = objects::metadata(obj).cloned().unwrap_or_default();
    let mut m = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            m[f] = v.clone();
        }
    }
    let selector = obj.pointer("/spec/selector");
    let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
    let status_replicas = obj.pointer("/status/replicas").cloned().unwrap_or(json!(0));
    let status = if legacy {
        let match_labels = selector
            .and_then(|s| {
                s.get("matchLabels")
                    .cloned()
                    .or_else(|| s.as_object().map(|_| s.clone()))
            })
            .unwrap_or(json!({}));
        json!({"replicas": status_replicas, "selector": match_labels, "targetSelector": selector_string(selector)})
    } else {
        json!({"replicas": status_replicas, "selector": selector_string(selector)})
    };
    json!({"kind": "Scale", "apiVersion": api_version, "metadata": m, "spec": {"replicas": replicas}, "status": status})
}

pub async fn scale(
    st: &Arc<AppState>,
    method: &Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref();
    for _ in 0..handlers::CONFLICT_RETRIES {
        let (obj, kv) = read(st, def, ns, name).await?;
        let current = scale_of(def, &obj);
        let desired = match *method {
            Method::GET => return Ok(Reply::json(StatusCode::OK, current)),
            Method::PUT => crate::request::decode_body(headers, body)?,
            Method::PATCH => {
                let pt = crate::request::patch_type(headers)?;
                let mut p = handlers::apply_patch(def, &current, pt, body)?;
                if meta_str(&p, "resourceVersion") == meta_str(&current, "resourceVersion") {
                    objects::metadata_mut(&mut p).remove("resourceVersion");
                }
                p
            }
            _ => {
                return Err(ApiError::method_not_allowed(
                    "scale supports get, update and patch",
                ));
            }
        };
        let replicas = desired
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                ),
            ));
        }
        if let Some(rv) = meta_str(&desired, "resourceVersion").filter(|r| !r.is_empty())
            && rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::stale(def, name));
        }
        let mut new = obj.clone();
        new["spec"]["replicas"] = json!(replicas);
        if q.dry_run()? {
            return Ok(Reply::json(StatusCode::OK, scale_of(def, &new)));
        }
        if new == obj {
            return Ok(Reply::json(StatusCode::OK, current));
        }
        objects::prepare_for_update(def.storage_def(), &mut new, &obj, false);
        let bytes = objects::encode(&new)?;
        match st.store.update(&kv.key, bytes, Some(kv.mod_revision)).await {
            Ok(rev) => {
                objects::set_resource_version(&mut new, rev);
                return Ok(Reply::json(StatusCode::OK, scale_of(def, &new)));
            }
            Err(baton_store::StoreError::Conflict { .. }) if *method == Method::PATCH => continue,
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        }
    }
    Err(ApiError::stale(def, name))
}

/// `POST .../deployments/{name}/rollback` with a `DeploymentRollback`.
pub async fn rollback(
    st: &Arc<AppState>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = t.name.as_deref().unwrap_or("");
    let req = crate::request::decode_body(headers, body)?;
    if req
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the rollback ({}) does not match the name on the URL ({name})",
            req["name"].as_str().unwrap_or("")
        )));
    }
    let revision = req
        .pointer("/rollbackTo/revision")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if revision < 0 {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "DeploymentRollback.{} \"{name}\" is invalid: rollbackTo.revision: Invalid value: {revision}: must be greater than or equal to 0",
                def.group
            ),
        ));
    }
    for _ in 0..handlers::CONFLICT_RETRIES {
        let (obj, kv) = read(st, def, t.namespace.as_deref(), name).await?;
        let mut new = obj.clone();
        let ann = objects::metadata_mut(&mut new)
            .entry("annotations")
            .or_insert_with(|| json!({}));
        if let Some(updated) = req.get("updatedAnnotations").and_then(Value::as_object) {
            for (k, v) in updated {
                ann[k] = v.clone();
            }
        }
        ann[ROLLBACK_TO_ANNOTATION] = json!(revision.to_string());
        if q.dry_run()? {
            break;
        }
        objects::prepare_for_update(def.storage_def(), &mut new, &obj, false);
        let bytes = objects::encode(&new)?;
        match st.store.update(&kv.key, bytes, Some(kv.mod_revision)).await {
            Ok(_) => break,
            Err(baton_store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "message": format!("rollback request for deployment \"{name}\" succeeded"), "code": 200}),
    ))
}

/// `PUT /api/v1/namespaces/{name}/finalize`: replaces `spec.finalizers`.
pub async fn finalize(
    st: &Arc<AppState>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = t.name.as_deref().unwrap_or("");
    let req = crate::request::decode_body(headers, body)?;
    let (obj, kv) = read(st, def, None, name).await?;
    let mut new = obj.clone();
    new["spec"]["finalizers"] = req
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    if q.dry_run()? {
        return Ok(Reply::json(StatusCode::OK, handlers::to_wire(def, new)?));
    }
    if crate::gc::deletion_finished(&new) {
        st.store
            .delete(&kv.key, Some(kv.mod_revision))
            .await
            .map_err(|e| ApiError::from_store(def, name, e))?;
        return Ok(Reply::json(StatusCode::OK, handlers::to_wire(def, new)?));
    }
    let bytes = objects::encode(&new)?;
    let rev = st
        .store
        .update(&kv.key, bytes, Some(kv.mod_revision))
        .await
        .map_err(|e| ApiError::from_store(def, name, e))?;
    objects::set_resource_version(&mut new, rev);
    Ok(Reply::json(StatusCode::OK, handlers::to_wire(def, new)?))
}

/// `POST /api/v1/namespaces/{ns}/pods/{name}/binding`: the scheduler assigns a pod to a node.
pub async fn binding(
    st: &Arc<AppState>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = t.name.as_deref().unwrap_or("");
    let req = crate::request::decode_body(headers, body)?;
    let node = req
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                format!("Binding \"{name}\" is invalid: target.name: Required value"),
            )
        })?
        .to_string();
    for _ in 0..handlers::CONFLICT_RETRIES {
        let (obj, kv) = read(st, def, t.namespace.as_deref(), name).await?;
        if let Some(existing) = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                def,
                name,
                &format!("pod {name} is already assigned to node \"{existing}\""),
            ));
        }
        if meta_str(&obj, "deletionTimestamp").is_some() {
            return Err(ApiError::conflict(
                def,
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let mut new = obj.clone();
        new["spec"]["nodeName"] = json!(node);
        let conds = new["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(conds)) = conds {
            conds.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            conds.push(
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                              "lastTransitionTime": objects::now_rfc3339()}),
            );
        }
        if q.dry_run()? {
            break;
        }
        let bytes = objects::encode(&new)?;
        match st.store.update(&kv.key, bytes, Some(kv.mod_revision)).await {
            Ok(_) => break,
            Err(baton_store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(def, name, e)),
        }
    }
    Ok(Reply::json(
        StatusCode::CREATED,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}
