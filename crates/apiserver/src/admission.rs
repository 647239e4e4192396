//! Admission: what Kubernetes' built-in admission plugins and registry strategies do to a
//! write before it is stored. On create the namespace must exist and not be terminating, an
//! Ingress without a class gets the default IngressClass (the `DefaultIngressClass` plugin), a
//! PersistentVolumeClaim without one the default StorageClass (`DefaultStorageClass`), claims
//! and volumes their protection finalizers (`StorageObjectInUseProtection`);
//! on create and update a Service gets its cluster IP and node ports ([`crate::services`]).

use baton_api::registry::{self, ResourceDef};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use crate::errors::{ApiError, ApiResult};
use crate::objects::{meta_str, metadata};
use crate::services;
use crate::state::AppState;

/// The annotation that marks an IngressClass as the default.
pub const DEFAULT_INGRESS_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The pre-IngressClass way to choose a controller; an Ingress with it is left alone.
const LEGACY_INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// `StorageObjectInUseProtection`: a claim is not removed while a pod uses it, nor a volume
/// while a claim is bound to it (the PV controller's protection loops remove them).
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Serializes writes that allocate from cluster-wide pools (Service IPs and node ports): held
/// from admission until the write is stored. `None` for every other kind.
pub async fn allocation_lock<'a>(
    st: &'a AppState,
    def: &ResourceDef,
) -> Option<MutexGuard<'a, ()>> {
    if def.storage_def().kind == "Service" {
        Some(st.service_allocation.lock().await)
    } else {
        None
    }
}

pub async fn on_create(st: &AppState, def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    if def.namespaced {
        check_namespace_open(st, def, obj).await?;
    }
    crate::rbac::confirm_no_escalation(st, def, obj)?;
    match def.storage_def().kind {
        "Service" => services::allocate(st, obj, None).await?,
        "Ingress" => default_ingress_class(st, obj).await?,
        "PersistentVolumeClaim" => {
            default_storage_class(st, obj).await?;
            add_finalizer(obj, PVC_PROTECTION_FINALIZER);
        }
        "PersistentVolume" => add_finalizer(obj, PV_PROTECTION_FINALIZER),
        _ => {}
    }
    Ok(())
}

/// Before validation of an update (`obj` and `old` in the storage version): fills in what the
/// client omitted and Kubernetes keeps, and drops what the new state no longer uses.
pub fn prepare_update(def: &ResourceDef, obj: &mut Value, old: &Value) {
    if def.storage_def().kind == "Service" {
        services::prepare_update(obj, old);
    }
}

/// After validation of an update: allocations the new state needs.
pub async fn on_update(
    st: &AppState,
    def: &ResourceDef,
    obj: &mut Value,
    old: &Value,
) -> ApiResult<()> {
    crate::rbac::confirm_no_escalation(st, def, obj)?;
    if def.storage_def().kind == "Service" {
        services::allocate(st, obj, Some(old)).await?;
    }
    Ok(())
}

async fn check_namespace_open(st: &AppState, def: &ResourceDef, obj: &Value) -> ApiResult<()> {
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
            Ok(())
        }
        Ok(None) => Err(ApiError::not_found(ns_def, &ns)),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// `DefaultIngressClass`: an Ingress created with neither `spec.ingressClassName` nor the
/// legacy class annotation gets the default class. Every served version stores as
/// networking.k8s.io/v1, so this covers the extensions/v1beta1 Ingress too.
async fn default_ingress_class(st: &AppState, ing: &mut Value) -> ApiResult<()> {
    let has_class = ing
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null());
    let has_annotation = metadata(ing)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LEGACY_INGRESS_CLASS_ANNOTATION))
        .is_some();
    if has_class || has_annotation {
        return Ok(());
    }
    let classes = stored_classes(st, "networking.k8s.io", "ingressclasses").await?;
    if let Some(name) = default_class_name(&classes) {
        if !ing.get("spec").is_some_and(Value::is_object) {
            ing["spec"] = json!({});
        }
        ing["spec"]["ingressClassName"] = json!(name);
    }
    Ok(())
}

/// `DefaultStorageClass`: a claim created without `spec.storageClassName` (absent or null; `""`
/// asks for no class) gets the default StorageClass, chosen as Kubernetes chooses it.
async fn default_storage_class(st: &AppState, pvc: &mut Value) -> ApiResult<()> {
    if pvc
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
    {
        return Ok(());
    }
    let classes = stored_classes(st, "storage.k8s.io", "storageclasses").await?;
    if let Some(name) = default_name(&classes, baton_api::table::DEFAULT_CLASS_ANNOTATIONS) {
        if !pvc.get("spec").is_some_and(Value::is_object) {
            pvc["spec"] = json!({});
        }
        pvc["spec"]["storageClassName"] = json!(name);
    }
    Ok(())
}

/// Every stored object of the cluster-scoped class kind `group`/v1 `resource` (IngressClasses,
/// StorageClasses), for picking the default one.
async fn stored_classes(st: &AppState, group: &str, resource: &str) -> ApiResult<Vec<Value>> {
    let def = registry::find(group, "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} not registered")))?;
    let page = st
        .store
        .list(&def.key_prefix(), None, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = m.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut()
        && !a.iter().any(|f| f == finalizer)
    {
        a.push(json!(finalizer));
    }
}

/// The default IngressClass among `classes`: the one annotated as default; of several, the
/// newest (then the first by name), as Kubernetes chooses since 1.25.
pub fn default_class_name(classes: &[Value]) -> Option<String> {
    default_name(classes, &[DEFAULT_INGRESS_CLASS_ANNOTATION])
}

/// The newest of `classes` annotated `"true"` with one of `annotations` (then the first by
/// name): how Kubernetes picks the default IngressClass and StorageClass.
fn default_name(classes: &[Value], annotations: &[&str]) -> Option<String> {
    classes
        .iter()
        .filter(|c| {
            let a = metadata(c).and_then(|m| m.get("annotations"));
            annotations
                .iter()
                .any(|k| a.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"))
        })
        .map(|c| {
            (
                meta_str(c, "creationTimestamp").unwrap_or(""),
                meta_str(c, "name").unwrap_or(""),
            )
        })
        .max_by(|a, b| a.0.cmp(b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, name)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_annotated_class_is_the_default() {
        let class = |name: &str, created: &str, default: Option<&str>| {
            let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
            if let Some(d) = default {
                c["metadata"]["annotations"] = json!({DEFAULT_INGRESS_CLASS_ANNOTATION: d});
            }
            c
        };
        let cases: Vec<(Vec<Value>, Option<&str>)> = vec![
            (vec![], None),
            (vec![class("nginx", "2024-01-01T00:00:00Z", None)], None),
            (
                vec![class("nginx", "2024-01-01T00:00:00Z", Some("false"))],
                None,
            ),
            (
                vec![
                    class("nginx", "2024-01-01T00:00:00Z", None),
                    class("baton", "2023-01-01T00:00:00Z", Some("true")),
                ],
                Some("baton"),
            ),
            (
                vec![
                    class("baton", "2023-01-01T00:00:00Z", Some("true")),
                    class("newer", "2024-01-01T00:00:00Z", Some("true")),
                ],
                Some("newer"),
            ),
            (
                vec![
                    class("b", "2024-01-01T00:00:00Z", Some("true")),
                    class("a", "2024-01-01T00:00:00Z", Some("true")),
                ],
                Some("a"),
            ),
        ];
        for (classes, want) in cases {
            assert_eq!(default_class_name(&classes).as_deref(), want, "{classes:?}");
        }
    }
}
