//! Admission on create: what Kubernetes' built-in admission and registry strategies do before
//! an object is stored — the namespace must exist and not be terminating, Services get a
//! cluster IP from the service CIDR.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use baton_api::registry::{self, ResourceDef};
use rand::Rng;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::meta_str;
use crate::state::AppState;

/// The service CIDR, 10.96.0.0/12; 10.96.0.1 belongs to the `kubernetes` Service.
const SERVICE_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_SIZE: u32 = 1 << 20;
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

pub async fn on_create(st: &AppState, def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    if def.namespaced {
        let ns = meta_str(obj, "namespace").unwrap_or("default").to_string();
        let ns_def = registry::find("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces not registered"))?;
        match st.store.get(&ns_def.key(None, &ns)).await {
            Ok(Some(kv)) => {
                let nso: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
                if meta_str(&nso, "deletionTimestamp").is_some() {
                    return Err(ApiError {
                        details: Some(json!({"name": ns, "kind": "namespaces"})),
                        ..ApiError::new(
                            403,
                            "Forbidden",
                            format!(
                                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                                crate::errors::qualified_resource(def),
                                meta_str(obj, "name").unwrap_or("")
                            ),
                        )
                    });
                }
            }
            Ok(None) => return Err(ApiError::not_found(ns_def, &ns)),
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    if def.storage_def().kind == "Service" {
        allocate_cluster_ip(st, obj).await?;
    }
    Ok(())
}

async fn allocate_cluster_ip(st: &AppState, svc: &mut Value) -> ApiResult<()> {
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if ty == "ExternalName" {
        return Ok(());
    }
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if requested == "None" {
        svc["spec"]["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let svc_def = registry::find("", "v1", "services")
        .ok_or_else(|| ApiError::internal("services not registered"))?;
    let page = st
        .store
        .list(&svc_def.key_prefix(), None, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let used: HashSet<String> = page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter_map(|v| {
            v.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let ip = if requested.is_empty() {
        let mut rng = rand::rng();
        let mut found = None;
        for _ in 0..1000 {
            let off = rng.random_range(10..SERVICE_SIZE - 1);
            let cand = Ipv4Addr::from(SERVICE_BASE + off).to_string();
            if !used.contains(&cand) {
                found = Some(cand);
                break;
            }
        }
        found.ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    } else {
        if used.contains(&requested) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "Service \"{}\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated",
                    meta_str(svc, "name").unwrap_or("")
                ),
            ));
        }
        requested
    };
    let spec = &mut svc["spec"];
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if spec.get("ipFamilies").is_none() {
        spec["ipFamilies"] = json!(["IPv4"]);
    }
    if spec.get("ipFamilyPolicy").is_none() {
        spec["ipFamilyPolicy"] = json!("SingleStack");
    }
    Ok(())
}
