//! `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` (policy/v1 or v1beta1 `Eviction`), as
//! Kubernetes' `EvictionREST` (`pkg/registry/core/pod/storage/eviction.go`): a pod that is
//! not running (Pending, Succeeded, Failed) or already terminating is deleted at once; else
//! the one PodDisruptionBudget selecting it must allow a disruption, which is taken from its
//! `status.disruptionsAllowed` (recorded in `status.disruptedPods` for the disruption
//! controller) in the same write that checks it, before the pod is deleted gracefully. A
//! budget that allows none answers 429 TooManyRequests with Kubernetes' message and cause.

use std::sync::Arc;

use baton_api::registry::{self as api_registry, ResourceDef};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, meta_str};
use crate::registry::{self, DeleteOptions, Selectors, Update, UpdateOptions};
use crate::request::Query;
use crate::response::Reply;
use crate::route::Target;
use crate::state::AppState;

const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn too_many(cause: String, retry_after: u64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError {
        details: Some(details),
        ..ApiError::new(429, "TooManyRequests", VIOLATES)
    }
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// `canIgnorePDB`: the pod is not running, or is already being deleted.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending")
        || meta_str(pod, "deletionTimestamp").is_some()
}

fn success() -> Reply {
    Reply::json(
        StatusCode::CREATED,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

pub async fn evict(
    st: &Arc<AppState>,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Reply> {
    let def = t.def;
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref();
    let eviction = crate::request::decode_body(headers, body)?;
    let kind = eviction.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "not a Eviction object: {kind}"
        )));
    }
    if meta_str(&eviction, "name").unwrap_or("") != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let options_body = eviction
        .get("deleteOptions")
        .filter(|o| !o.is_null())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let mut opts = DeleteOptions::parse(q, options_body.as_bytes())?;
    let pod = registry::read(st, def, ns, name).await?;
    if can_ignore_budget(&pod) {
        registry::delete(st, def, ns, name, &opts).await?;
        return Ok(success());
    }
    let pdb_def = api_registry::find("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets not registered"))?;
    let pod_labels = objects::metadata(&pod)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let everything = Selectors::parse(pdb_def, &Query::default())?;
    let budgets: Vec<Value> = registry::list(st, pdb_def, ns, &everything, None, None)
        .await?
        .items
        .into_iter()
        .filter(|b| {
            // A budget with a nil, empty or invalid selector selects nothing.
            b.pointer("/spec/selector")
                .and_then(|s| baton_api::selectors::label_selector_from_object(s).ok())
                .is_some_and(|s| !s.is_empty() && s.matches(pod_labels))
        })
        .collect();
    if budgets.len() > 1 {
        return Err(ApiError::new(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    if let Some(budget) = budgets.first() {
        let budget_name = objects::name(budget).unwrap_or("").to_string();
        let status = budget.get("status").cloned().unwrap_or(json!({}));
        let count = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
        let always =
            budget.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
        let healthy_enough =
            count("currentHealthy") >= count("desiredHealthy") && count("desiredHealthy") > 0;
        if !is_ready(&pod) && (always || healthy_enough) {
            // An unready pod does not count as healthy: it may go while the budget holds,
            // unless it became ready meanwhile (the resourceVersion precondition).
            if opts.precondition_rv.is_none() {
                opts.precondition_rv = meta_str(&pod, "resourceVersion").map(str::to_string);
                return match registry::delete(st, def, ns, name, &opts).await {
                    Err(e) if e.code == 409 => Err(too_many(
                        format!(
                            "The disruption budget {budget_name} is still being processed by the server."
                        ),
                        10,
                    )),
                    Err(e) => Err(e),
                    Ok(_) => Ok(success()),
                };
            }
        } else {
            take_disruption(st, pdb_def, ns, &budget_name, name, opts.dry_run).await?;
        }
    }
    registry::delete(st, def, ns, name, &opts).await?;
    Ok(success())
}

/// `checkAndDecrement`: one disruption taken from the budget, or the refusal.
async fn take_disruption(
    st: &AppState,
    pdb_def: &'static ResourceDef,
    ns: Option<&str>,
    budget: &str,
    pod: &str,
    dry_run: bool,
) -> ApiResult<()> {
    let uopts = UpdateOptions {
        dry_run,
        admit: false,
    };
    registry::guaranteed_update(st, pdb_def, ns, budget, uopts, |pdb| {
        let status = pdb.get("status").cloned().unwrap_or(json!({}));
        let count = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if count("observedGeneration") < generation {
            return Err(too_many(
                format!("The disruption budget {budget} is still being processed by the server."),
                10,
            ));
        }
        let allowed = count("disruptionsAllowed");
        if allowed < 0 {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "poddisruptionbudgets.policy \"{budget}\" is forbidden: pdb disruptions allowed is negative"
                ),
            ));
        }
        if status
            .get("disruptedPods")
            .and_then(Value::as_object)
            .is_some_and(|m| m.len() > 2000)
        {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "poddisruptionbudgets.policy \"{budget}\" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller"
                ),
            ));
        }
        if allowed == 0 {
            return Err(too_many(
                format!(
                    "The disruption budget {budget} needs {} healthy pods and has {} currently",
                    count("desiredHealthy"),
                    count("currentHealthy")
                ),
                0,
            ));
        }
        let mut new = pdb.clone();
        let s = &mut new["status"];
        s["disruptionsAllowed"] = json!(allowed - 1);
        if allowed - 1 == 0 {
            set_disruption_allowed(s, false);
        }
        if !s.get("disruptedPods").is_some_and(Value::is_object) {
            s["disruptedPods"] = json!({});
        }
        s["disruptedPods"][pod] = json!(baton_api::clock::now_rfc3339());
        Ok(Update::Write(new))
    })
    .await?;
    Ok(())
}

/// `UpdateDisruptionAllowedCondition` on a budget's status: the DisruptionAllowed condition
/// (SufficientPods / InsufficientPods), its transition time moved only when it flips.
pub fn set_disruption_allowed(status: &mut Value, allowed: bool) {
    let (value, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conds) = status["conditions"].as_array_mut() else {
        return;
    };
    let now = baton_api::clock::now_rfc3339();
    match conds.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
        Some(c) => {
            if c["status"] != value {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(value);
            c["reason"] = json!(reason);
            c["observedGeneration"] = observed;
        }
        None => conds.push(json!({
            "type": "DisruptionAllowed", "status": value, "reason": reason, "message": "",
            "observedGeneration": observed, "lastTransitionTime": now,
        })),
    }
}
