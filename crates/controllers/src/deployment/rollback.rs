//! Rollback (Kubernetes' `rollback.go`): the legacy request `kubectl rollout undo` sends to
//! old API versions, the `deprecated.deployment.rollback.to` annotation — the template of
//! that revision (or the previous one) copied back into the Deployment, with Kubernetes'
//! events when the revision is missing or already current.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};

use super::{NOT_COPIED, REVISION, ROLLBACK_TO, same_template, without_hash};
use crate::error::Error;
use baton_api::events::{Kind, Recorder};

/// Serves the legacy rollback request (`deprecated.deployment.rollback.to`).
pub(super) async fn rollback(
    client: &Client,
    events: &Recorder,
    d: &Deployment,
    all: &[ReplicaSet],
    to: &str,
) -> Result<Action, Error> {
    let mut target: i64 = to.parse().unwrap_or(0);
    if target == 0 {
        // The previous revision: the highest one below the current maximum.
        let mut revs: Vec<i64> = all.iter().map(super::revision).collect();
        revs.sort_unstable();
        revs.dedup();
        target = if revs.len() >= 2 {
            revs[revs.len() - 2]
        } else {
            0
        };
    }
    let mut updated = d.clone();
    let ann = updated
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    ann.remove(ROLLBACK_TO);
    match all
        .iter()
        .find(|rs| target > 0 && super::revision(rs) == target)
    {
        None => {
            events.publish(
                d,
                Kind::Warning,
                "DeploymentRollbackRevisionNotFound",
                "Unable to find the revision to rollback to.",
            );
        }
        Some(rs) if same_template(rs, d) => {
            events.publish(
                d,
                Kind::Warning,
                "DeploymentRollbackTemplateUnchanged",
                format!(
                    "The rollback revision contains the same template as current deployment \"{}\"",
                    d.name_any()
                ),
            );
        }
        Some(rs) => {
            if let Some(t) = rs.spec.template.as_ref() {
                updated.spec.template = without_hash(t);
            }
            for (k, v) in rs
                .annotations()
                .iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()) && k.as_str() != REVISION)
            {
                ann.insert(k.clone(), v.clone());
            }
            events.publish(
                d,
                Kind::Normal,
                "DeploymentRollback",
                format!(
                    "Rolled back deployment \"{}\" to revision {target}",
                    d.name_any()
                ),
            );
        }
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    updated.status = None;
    api.replace(&d.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::api(format!(
            "rolling back deployment {}",
            d.name_any()
        )))?;
    Ok(Action::await_change())
}
