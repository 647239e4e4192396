//! What a pod worker asks of the API server — its status, events, the ConfigMaps and Secrets
//! its containers refer to, the volumes its claims are bound to, and the final deletion —
//! behind one trait, [`PodApi`], so the
//! worker runs against an in-memory API in tests as it runs against the machine through
//! [`crate::host::Host`].

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};

use baton_api::events::{Kind, Recorder, reference};

#[async_trait]
pub trait PodApi: Send + Sync + 'static {
    /// Merge-patches the pod's status.
    async fn patch_status(&self, namespace: &str, name: &str, status: &Value)
    -> Result<(), String>;
    /// Records an event about container `container` (empty: the pod) of `pod`; best-effort.
    async fn record_event(&self, pod: &Pod, container: &str, kind: Kind, reason: &str, msg: &str);
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String>;
    async fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, String>;
    async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, String>;
    /// Deletes the pod for good (grace 0, only if its uid is still `uid`). Ok(false): it was
    /// gone or replaced already.
    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<bool, String>;
}

/// The API server, through the `kube` client.
pub(crate) struct KubePodApi {
    pub client: Client,
    /// The kubelet's recorder (source `kubelet` on this node).
    pub events: Recorder,
}

#[async_trait]
impl PodApi for KubePodApi {
    async fn patch_status(
        &self,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> Result<(), String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    async fn record_event(&self, pod: &Pod, container: &str, kind: Kind, reason: &str, msg: &str) {
        let mut involved = reference(pod);
        involved.field_path =
            (!container.is_empty()).then(|| format!("spec.containers{{{container}}}"));
        self.events.publish_about(involved, kind, reason, msg);
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, String> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, String> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<bool, String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
