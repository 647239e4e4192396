//! Subresources other than `status`: `scale` (autoscaling/v1 Scale, or the legacy groups' own
//! Scale), `rollback` (extensions/v1beta1 and apps/v1beta1 DeploymentRollback), `pods/binding`
//! and `namespaces/{name}/finalize`. Each write is one [`registry::guaranteed_update`]: it
//! either stores its change or answers an error (409 Conflict when concurrent writers win
//! every retry), never Success without a write.

use std::sync::Arc;

use baton_api::registry::ResourceDef;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, meta_str};
use crate::patch::apply_patch;
use crate::registry::{self, Update, UpdateOptions, to_wire};
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
    let desired = match *method {
        Method::GET => {
            let obj = registry::read(st, def, ns, name).await?;
            return Ok(Reply::json(StatusCode::OK, scale_of(def, &obj)));
        }
        Method::PUT => Some(crate::request::decode_body(headers, body)?),
        Method::PATCH => None,
        _ => {
            return Err(ApiError::method_not_allowed(
                "scale supports get, update and patch",
            ));
        }
    };
    let opts = UpdateOptions {
        dry_run: q.dry_run()?,
        admit: false,
    };
    let stored = registry::guaranteed_update(st, def, ns, name, opts, |obj| {
        let current = scale_of(def, obj);
        let desired = match &desired {
            Some(d) => d.clone(),
            None => {
                let pt = crate::request::patch_type(headers)?;
                let mut p = apply_patch(def, &current, pt, body)?;
                if meta_str(&p, "resourceVersion") == meta_str(&current, "resourceVersion") {
                    objects::metadata_mut(&mut p).remove("resourceVersion");
                }
                p
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
            && Some(rv) != meta_str(obj, "resourceVersion")
        {
            return Err(ApiError::stale(def, name));
        }
        let mut new = obj.clone();
        new["spec"]["replicas"] = json!(replicas);
        if new != *obj {
            objects::prepare_for_update(def.storage_def(), &mut new, obj, false);
        }
        Ok(Update::Write(new))
    })
    .await?;
    Ok(Reply::json(StatusCode::OK, scale_of(def, &stored)))
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
    let opts = UpdateOptions {
        dry_run: q.dry_run()?,
        admit: false,
    };
    registry::guaranteed_update(st, def, t.namespace.as_deref(), name, opts, |obj| {
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
        objects::prepare_for_update(def.storage_def(), &mut new, obj, false);
        Ok(Update::Write(new))
    })
    .await?;
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
    let finalizers = req
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    let opts = UpdateOptions {
        dry_run: q.dry_run()?,
        admit: false,
    };
    // The write completes the namespace's deletion when this was its last finalizer.
    let stored = registry::guaranteed_update(st, def, None, name, opts, |obj| {
        let mut new = obj.clone();
        new["spec"]["finalizers"] = finalizers.clone();
        Ok(Update::Write(new))
    })
    .await?;
    Ok(Reply::json(StatusCode::OK, to_wire(def, stored)?))
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
    let opts = UpdateOptions {
        dry_run: q.dry_run()?,
        admit: false,
    };
    registry::guaranteed_update(st, def, t.namespace.as_deref(), name, opts, |obj| {
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
        if meta_str(obj, "deletionTimestamp").is_some() {
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
                              "lastTransitionTime": baton_api::clock::now_rfc3339()}),
            );
        }
        Ok(Update::Write(new))
    })
    .await?;
    Ok(Reply::json(
        StatusCode::CREATED,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}
