//! The thin I/O shell: the few public Kubernetes API calls the update needs (get, create,
//! update with conflict retries, scale and wait, delete, list pods), through the `kube`
//! client, so the plugin works against any conformant cluster as well as Baton.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::time::{Instant, sleep};

use crate::error::{Error, is_conflict, is_not_found};
use crate::objects;

/// How often an update that lost a race (409) is retried before giving up.
const CONFLICT_RETRIES: usize = 10;

/// Access to one namespace of one cluster.
pub struct Cluster {
    rcs: Api<ReplicationController>,
    pods: Api<Pod>,
    namespace: String,
}

/// Where to connect, from the kubectl-style flags.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

impl Cluster {
    /// Loads the kubeconfig as kubectl does (`--kubeconfig`, else `$KUBECONFIG`, else
    /// `~/.kube/config`, else in-cluster), with `--context` and `-n`.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        let options = KubeConfigOptions {
            context: target.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match &target.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Config(format!("loading kubeconfig {path}: {e}")))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| Error::Config(format!("kubeconfig {path}: {e}")))?
            }
            None if target.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config(format!("kubeconfig: {e}")))?,
            None => Config::infer()
                .await
                .map_err(|e| Error::Config(format!("no usable kubeconfig: {e}")))?,
        };
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| Error::Config(format!("building the client: {e}")))?;
        Ok(Cluster {
            rcs: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client, &namespace),
            namespace,
        })
    }

    /// The namespace every call goes to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub async fn get_rc(&self, name: &str) -> Result<ReplicationController, Error> {
        Ok(self.rcs.get(name).await?)
    }

    pub async fn get_rc_opt(&self, name: &str) -> Result<Option<ReplicationController>, Error> {
        Ok(self.rcs.get_opt(name).await?)
    }

    pub async fn list_rcs(&self) -> Result<Vec<ReplicationController>, Error> {
        Ok(self.rcs.list(&ListParams::default()).await?.items)
    }

    pub async fn create_rc(
        &self,
        rc: &ReplicationController,
    ) -> Result<ReplicationController, Error> {
        Ok(self.rcs.create(&PostParams::default(), rc).await?)
    }

    /// Reads the controller, applies `change` and writes it back, again on a 409 (kubectl's
    /// `updateRcWithRetries`).
    pub async fn update_rc(
        &self,
        name: &str,
        mut change: impl FnMut(&mut ReplicationController),
    ) -> Result<ReplicationController, Error> {
        let mut attempt = 0;
        loop {
            let mut rc = self.rcs.get(name).await?;
            change(&mut rc);
            match self.rcs.replace(name, &PostParams::default(), &rc).await {
                Ok(updated) => return Ok(updated),
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes a controller; `orphan` keeps its pods (for a rename). A controller already
    /// gone is fine.
    pub async fn delete_rc(&self, name: &str, orphan: bool) -> Result<(), Error> {
        let params = if orphan {
            DeleteParams::orphan()
        } else {
            DeleteParams::default()
        };
        match self.rcs.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the controller is gone (finalizers such as orphaning take a moment).
    pub async fn wait_rc_gone(
        &self,
        name: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.rcs.get_opt(name).await?.is_none() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotDeleted(name.to_string()));
            }
            sleep(interval).await;
        }
    }

    /// Sets `spec.replicas` (a merge patch, as `kubectl scale` without preconditions).
    pub async fn scale(&self, name: &str, to: i32) -> Result<(), Error> {
        let patch = serde_json::json!({"spec": {"replicas": to}});
        self.rcs
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// The pods a selector matches.
    pub async fn pods(&self, selector: &BTreeMap<String, String>) -> Result<Vec<Pod>, Error> {
        let params = ListParams::default().labels(&objects::selector_query(selector));
        Ok(self.pods.list(&params).await?.items)
    }

    /// Adds one label to a pod.
    pub async fn label_pod(&self, name: &str, key: &str, value: &str) -> Result<(), Error> {
        let patch = serde_json::json!({"metadata": {"labels": {key: value}}});
        match self
            .pods
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a pod (gracefully, as a plain `kubectl delete pod` would).
    pub async fn delete_pod(&self, name: &str) -> Result<(), Error> {
        match self.pods.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
