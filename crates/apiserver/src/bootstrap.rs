//! What a fresh store gets at first start, as a Kubernetes cluster has it: the namespaces
//! `default`, `kube-system`, `kube-public`, `kube-node-lease`, and the `kubernetes` Service;
//! and what Baton adds: the IngressClass `baton`, marked default, for the built-in Ingress
//! proxy (so Ingresses without a class, like the seed's, are served by it), and the
//! StorageClass `local-path`, marked default, of the built-in local-path provisioner (as k3s
//! ships it: volumes are directories on the node that first uses them).
//!
//! The default ClusterRoles and ClusterRoleBindings (`rbac::defaults`) are created the same way.
//!
//! Each object is created only when absent: a user who deleted or edited one keeps the
//! change across restarts, except that a deleted one comes back.

use baton_api::registry;
use serde_json::{Value, json};

use crate::admission::DEFAULT_INGRESS_CLASS_ANNOTATION;
use crate::errors::{ApiError, ApiResult};
use crate::objects;
use crate::services::KUBERNETES_SERVICE_IP;
use crate::state::AppState;

/// The IngressClass of Baton's built-in Ingress proxy, and the controller name it claims.
pub const INGRESS_CLASS: &str = "baton";
pub const INGRESS_CONTROLLER: &str = "baton.dev/ingress";
/// The default StorageClass of the built-in local-path provisioner.
pub const STORAGE_CLASS: &str = "local-path";

async fn ensure(
    st: &AppState,
    group: &str,
    resource: &str,
    ns: Option<&str>,
    mut obj: Value,
) -> ApiResult<()> {
    let def = registry::find(group, "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} not registered")))?;
    let name = objects::name(&obj).unwrap_or("").to_string();
    let key = def.key(ns, &name);
    if st
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .is_some()
    {
        return Ok(());
    }
    baton_api::defaults::apply(def, &mut obj);
    objects::prepare_for_create(def, &mut obj);
    let bytes = objects::encode(&obj)?;
    match st.store.create(&key, bytes).await {
        Ok(_) | Err(baton_store::StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

pub async fn ensure_defaults(st: &AppState) -> ApiResult<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        ensure(st, "", "namespaces", None, obj).await?;
    }
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": KUBERNETES_SERVICE_IP, "clusterIPs": [KUBERNETES_SERVICE_IP],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                 "internalTrafficPolicy": "Cluster",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        "status": {"loadBalancer": {}},
    });
    ensure(st, "", "services", Some("default"), svc).await?;
    let class = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS,
                     "annotations": {DEFAULT_INGRESS_CLASS_ANNOTATION: "true"}},
        "spec": {"controller": INGRESS_CONTROLLER},
    });
    ensure(st, "networking.k8s.io", "ingressclasses", None, class).await?;
    let storage_class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {baton_api::table::DEFAULT_CLASS_ANNOTATIONS[0]: "true"}},
        "provisioner": baton_api::validation::LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    ensure(st, "storage.k8s.io", "storageclasses", None, storage_class).await?;
    for role in crate::rbac::defaults::cluster_roles() {
        ensure(st, registry::RBAC_GROUP, "clusterroles", None, role).await?;
    }
    for binding in crate::rbac::defaults::cluster_role_bindings() {
        ensure(
            st,
            registry::RBAC_GROUP,
            "clusterrolebindings",
            None,
            binding,
        )
        .await?;
    }
    Ok(())
}
