//! Persistent volumes: Kubernetes' PV controller (`pkg/controller/volume/persistentvolume`),
//! its protection controllers (`pvcprotection`, `pvprotection`) and the built-in local-path
//! provisioner (k3s's `rancher.io/local-path`), over the shared caches of claims, volumes,
//! classes and pods (`informer.rs`); a sync never lists from the API.
//!
//! - A claim without a volume binds to the smallest Available volume that fits
//!   ([`matching::find_match`]): the volume's `claimRef` (annotation `bound-by-controller`) and
//!   phase Bound, then the claim's `volumeName` (annotations `bind-completed`,
//!   `bound-by-controller`) and status (phase Bound, capacity, access modes).
//! - With none, a claim of a class whose provisioner is ours is provisioned: for
//!   `WaitForFirstConsumer` once the scheduler named a node (`volume.kubernetes.io/selected-node`),
//!   for `Immediate` on this machine's node (else the first Ready node). The new volume is a
//!   `hostPath` directory `<data-dir>/volumes/<pv-name>` (made by the node agent when a pod first
//!   mounts it, mode 0777) with node affinity to that node, pre-bound to the claim.
//! - A volume whose claim is gone is Released; reclaim `Delete` removes the directory and the
//!   volume (only volumes this provisioner made; others show Failed), `Retain` keeps both.
//! - `kubernetes.io/pvc-protection` leaves a deleted claim once no scheduled, unfinished pod
//!   uses it; `kubernetes.io/pv-protection` a deleted volume once it is not Bound.
//!
//! The controllers run in the server's process, on the machine whose data dir holds the
//! volumes, so the provisioner removes directories itself (k3s runs a helper pod on the node).

pub mod matching;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::error::{self, Error};
use crate::informer::Informers;
use baton_api::events::{Kind, Recorder};
use matching::{
    BETA_STORAGE_PROVISIONER, BIND_COMPLETED, BOUND_BY_CONTROLLER, PROVISIONED_BY, SELECTED_NODE,
    STORAGE_PROVISIONER,
};

/// The provisioner name of Baton's local-path StorageClass.
pub const PROVISIONER: &str = baton_api::validation::LOCAL_PATH_PROVISIONER;
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// Which node a provisioned volume lives on (k3s's annotation).
const PROVISIONED_NODE: &str = "local.path.provisioner/selected-node";

/// Where the volumes live and which node is this machine's.
#[derive(Clone, Debug)]
pub struct Options {
    /// `<data-dir>/volumes`: provisioned volumes are directories under it.
    pub root: PathBuf,
    /// The node agent's node, where `Immediate` claims are provisioned.
    pub local_node: Option<String>,
}

struct Ctx {
    client: Client,
    opts: Options,
    events: Recorder,
    provisioner_events: Recorder,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    pods: Store<Pod>,
    nodes: Store<Node>,
}

/// Runs the PV controller, the protection controllers and the provisioner until `shutdown`.
pub async fn run(
    client: Client,
    informers: Informers,
    opts: Options,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        _ = run_until_dropped(client, informers, opts) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn run_until_dropped(client: Client, informers: Informers, opts: Options) {
    let i = &informers;
    if i.persistent_volume_claims.synced().await.is_err()
        || i.persistent_volumes.synced().await.is_err()
        || i.storage_classes.synced().await.is_err()
        || i.pods.synced().await.is_err()
        || i.nodes.synced().await.is_err()
    {
        return;
    }
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), "persistentvolume-controller", None),
        provisioner_events: Recorder::new(client.clone(), PROVISIONER, None),
        client,
        opts,
        claims: i.persistent_volume_claims.store(),
        volumes: i.persistent_volumes.store(),
        classes: i.storage_classes.store(),
        pods: i.pods.store(),
        nodes: i.nodes.store(),
    });
    let volumes = ctx.volumes.clone();
    let claims = Controller::for_shared_stream(
        i.persistent_volume_claims.subscribe(),
        i.persistent_volume_claims.store(),
    )
    .watches_shared_stream(
        i.persistent_volumes.subscribe(),
        |pv: Arc<PersistentVolume>| claim_of(&pv).into_iter(),
    )
    .watches_shared_stream(i.pods.subscribe(), |pod: Arc<Pod>| claims_of(&pod))
    .run(reconcile_claim, error::policy, ctx.clone())
    .for_each(|_| async {});
    let volume_ctl = Controller::for_shared_stream(
        i.persistent_volumes.subscribe(),
        i.persistent_volumes.store(),
    )
    .watches_shared_stream(
        i.persistent_volume_claims.subscribe(),
        move |pvc: Arc<PersistentVolumeClaim>| volumes_of(&volumes, &pvc),
    )
    .run(reconcile_volume, error::policy, ctx)
    .for_each(|_| async {});
    futures::future::join(claims, volume_ctl).await;
}

/// The claim a volume's `claimRef` names.
fn claim_of(pv: &PersistentVolume) -> Option<ObjectRef<PersistentVolumeClaim>> {
    let r = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(ObjectRef::new(r.name.as_deref()?).within(r.namespace.as_deref()?))
}

/// The claims a pod's volumes name.
fn claims_of(pod: &Pod) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let ns = pod.namespace().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| ObjectRef::new(&c.claim_name).within(&ns))
        .collect()
}

/// The volumes that concern a claim: the one it names and those whose `claimRef` names it.
fn volumes_of(
    volumes: &Store<PersistentVolume>,
    pvc: &PersistentVolumeClaim,
) -> Vec<ObjectRef<PersistentVolume>> {
    let mut out: Vec<ObjectRef<PersistentVolume>> = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
        .map(ObjectRef::new)
        .into_iter()
        .collect();
    for pv in volumes.state() {
        if matching::is_pre_bound_to(&pv, pvc) || names_claim(&pv, pvc) {
            out.push(ObjectRef::from_obj(pv.as_ref()));
        }
    }
    out
}

/// The volume's `claimRef` names the claim's namespace and name (any uid).
fn names_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    pv.spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| {
            r.name.as_deref() == pvc.metadata.name.as_deref()
                && r.namespace.as_deref() == pvc.metadata.namespace.as_deref()
        })
}

fn has_finalizer<K: ResourceExt>(obj: &K, f: &str) -> bool {
    obj.finalizers().iter().any(|x| x == f)
}

/// A merge patch that drops `f` from the finalizers, guarded by the resourceVersion read.
fn without_finalizer<K: ResourceExt>(obj: &K, f: &str) -> Value {
    let rest: Vec<&String> = obj.finalizers().iter().filter(|x| *x != f).collect();
    json!({"metadata": {"finalizers": rest, "resourceVersion": obj.resource_version()}})
}

/// A scheduled pod that has not finished uses the claim (Kubernetes' `podUsesPVC`).
fn in_use(pods: &Store<Pod>, ns: &str, claim: &str) -> bool {
    pods.state().iter().any(|p| {
        p.namespace().as_deref() == Some(ns)
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
            && !matches!(crate::pods::phase(p), "Succeeded" | "Failed")
            && claims_of(p).iter().any(|r| r.name == claim)
    })
}

async fn reconcile_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = pvc.namespace().unwrap_or_default();
    let name = pvc.name_any();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    if pvc.metadata.deletion_timestamp.is_some() {
        if has_finalizer(pvc.as_ref(), PVC_PROTECTION) && !in_use(&ctx.pods, &ns, &name) {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(without_finalizer(pvc.as_ref(), PVC_PROTECTION)),
            )
            .await
            .map_err(Error::api(format!("releasing claim {ns}/{name}")))?;
        }
        return Ok(Action::await_change());
    }
    let volume_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty());
    let pv = match &volume_name {
        Some(v) => match ctx.volumes.get(&ObjectRef::new(v)) {
            Some(pv) => Some(pv),
            None => {
                // The cache may lag a volume just made: ask before calling the claim lost.
                let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
                match pvs.get_opt(v).await {
                    Ok(Some(_)) => return Ok(Action::requeue(Duration::from_millis(200))),
                    Ok(None) => {
                        set_claim_status(&api, &pvc, json!({"phase": "Lost"})).await?;
                        ctx.events.publish(
                            pvc.as_ref(),
                            Kind::Warning,
                            "ClaimLost",
                            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                        );
                        return Ok(Action::await_change());
                    }
                    Err(e) => return Err(Error::api(format!("reading volume {v}"))(e)),
                }
            }
        },
        None => matching::find_match(&pvc, &ctx.volumes.state()).cloned(),
    };
    match pv {
        Some(pv) => bind(&ctx, &api, &pvc, &pv).await,
        None => unbound(&ctx, &api, &pvc).await,
    }
}

/// Completes the binding of `pvc` and `pv`, each step only when not done yet.
async fn bind(
    ctx: &Ctx,
    api: &Api<PersistentVolumeClaim>,
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<Action, Error> {
    let pv_name = pv.name_any();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let uid = pvc.metadata.uid.clone().unwrap_or_default();
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let ref_uid = claim_ref.and_then(|r| r.uid.as_deref()).unwrap_or_default();
    if claim_ref.is_some() && !matching::is_pre_bound_to(pv, pvc) {
        // The claim names a volume bound elsewhere: it waits (Kubernetes says so too).
        ctx.events.publish(
            pvc,
            Kind::Warning,
            "FailedBinding",
            format!("volume \"{pv_name}\" already bound to a different claim."),
        );
        return Ok(Action::await_change());
    }
    if ref_uid != uid {
        let patch = json!({
            "metadata": {"annotations": {BOUND_BY_CONTROLLER: "yes"},
                         "resourceVersion": pv.resource_version()},
            "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                                  "namespace": pvc.namespace(), "name": pvc.name_any(),
                                  "uid": uid, "resourceVersion": pvc.resource_version()}},
        });
        pvs.patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::api(format!("binding volume {pv_name}")))?;
        return Ok(Action::await_change());
    }
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        set_volume_phase(&pvs, &pv_name, "Bound", None).await?;
    }
    let spec = pvc.spec.clone().unwrap_or_default();
    let annotations = pvc.annotations();
    if spec.volume_name.as_deref() != Some(pv_name.as_str())
        || annotations.get(BIND_COMPLETED).map(String::as_str) != Some("yes")
    {
        let mut ann = json!({BIND_COMPLETED: "yes"});
        if spec.volume_name.as_deref().is_none_or(str::is_empty) {
            ann[BOUND_BY_CONTROLLER] = json!("yes");
        }
        let patch = json!({"metadata": {"annotations": ann, "resourceVersion": pvc.resource_version()},
                           "spec": {"volumeName": pv_name}});
        api.patch(
            &pvc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(format!("binding claim to {pv_name}")))?;
        return Ok(Action::await_change());
    }
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let status = json!({
        "phase": "Bound",
        "accessModes": pv_spec.access_modes.unwrap_or_default(),
        "capacity": pv_spec.capacity.unwrap_or_default(),
    });
    let current = serde_json::to_value(pvc.status.clone().unwrap_or_default()).unwrap_or_default();
    let same = ["phase", "accessModes", "capacity"]
        .iter()
        .all(|k| current.get(*k) == status.get(*k));
    if !same {
        set_claim_status(api, pvc, status).await?;
    }
    Ok(Action::await_change())
}

async fn set_claim_status(
    api: &Api<PersistentVolumeClaim>,
    pvc: &PersistentVolumeClaim,
    status: Value,
) -> Result<(), Error> {
    api.patch_status(
        &pvc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .map(|_| ())
    .map_err(Error::api(format!(
        "updating the status of claim {}",
        pvc.name_any()
    )))
}

async fn set_volume_phase(
    pvs: &Api<PersistentVolume>,
    name: &str,
    phase: &str,
    message: Option<&str>,
) -> Result<(), Error> {
    let status = json!({"status": {"phase": phase, "message": message,
                                   "lastPhaseTransitionTime": baton_api::clock::now_rfc3339()}});
    pvs.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(|_| ())
        .map_err(Error::api(format!("updating the status of volume {name}")))
}

/// A claim no volume fits: provision one when its class is ours (and, for
/// `WaitForFirstConsumer`, a node was chosen), or say what it waits for.
async fn unbound(
    ctx: &Ctx,
    api: &Api<PersistentVolumeClaim>,
    pvc: &PersistentVolumeClaim,
) -> Result<Action, Error> {
    let class_name = matching::claim_class(pvc);
    if class_name.is_empty() {
        ctx.events.publish(
            pvc,
            Kind::Normal,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
        );
        return Ok(Action::await_change());
    }
    let Some(class) = ctx.classes.get(&ObjectRef::new(&class_name)) else {
        ctx.events.publish(
            pvc,
            Kind::Warning,
            "ProvisioningFailed",
            format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
        );
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    let selected = pvc.annotations().get(SELECTED_NODE).cloned();
    if matching::waits_for_consumer(Some(&class)) && selected.is_none() {
        ctx.events.publish(
            pvc,
            Kind::Normal,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
        );
        return Ok(Action::await_change());
    }
    let provisioner = class.provisioner.clone();
    if pvc.annotations().get(STORAGE_PROVISIONER) != Some(&provisioner) {
        let patch = json!({"metadata": {"annotations": {
            STORAGE_PROVISIONER: provisioner, BETA_STORAGE_PROVISIONER: provisioner}}});
        api.patch(
            &pvc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(format!("annotating claim {}", pvc.name_any())))?;
        ctx.events.publish(
            pvc,
            Kind::Normal,
            "ExternalProvisioning",
            format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
        );
        return Ok(Action::await_change());
    }
    if provisioner != PROVISIONER {
        return Ok(Action::await_change());
    }
    let node = match selected {
        Some(n) => n,
        None => match immediate_node(ctx) {
            Some(n) => n,
            None => {
                ctx.provisioner_events.publish(
                    pvc,
                    Kind::Warning,
                    "ProvisioningFailed",
                    "failed to provision volume with StorageClass \"local-path\": no Ready node to place it on",
                );
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
        },
    };
    provision(ctx, pvc, &class, &node).await?;
    Ok(Action::await_change())
}

/// Where an `Immediate` claim's volume goes: this machine's node, else the first Ready one.
fn immediate_node(ctx: &Ctx) -> Option<String> {
    let mut nodes = ctx.nodes.state();
    nodes.sort_by_key(|n| n.name_any());
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    if let Some(local) = &ctx.opts.local_node
        && nodes.iter().any(|n| &n.name_any() == local)
    {
        return Some(local.clone());
    }
    nodes.iter().find(|n| ready(n)).map(|n| n.name_any())
}

/// The volume the provisioner makes for `pvc` on `node`.
pub fn provisioned_volume(
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    root: &Path,
) -> Value {
    let name = volume_name(pvc);
    let spec = pvc.spec.clone().unwrap_or_default();
    let request = spec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned());
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER, PROVISIONED_NODE: node}},
        "spec": {
            "capacity": {"storage": request},
            "accessModes": spec.access_modes.unwrap_or_default(),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
            "storageClassName": class.name_any(),
            "volumeMode": spec.volume_mode.as_deref().unwrap_or("Filesystem"),
            "hostPath": {"path": root.join(&name).display().to_string(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                         "namespace": pvc.namespace(), "name": pvc.name_any(),
                         "uid": pvc.metadata.uid, "resourceVersion": pvc.resource_version()},
        },
    })
}

/// `pvc-<claim uid>`, as Kubernetes' provisioners name volumes.
pub fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default())
}

async fn provision(
    ctx: &Ctx,
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
) -> Result<(), Error> {
    let name = volume_name(pvc);
    if ctx.volumes.get(&ObjectRef::new(&name)).is_some() {
        return Ok(());
    }
    ctx.provisioner_events.publish(
        pvc,
        Kind::Normal,
        "Provisioning",
        format!(
            "External provisioner is provisioning volume for claim \"{}/{}\"",
            pvc.namespace().unwrap_or_default(),
            pvc.name_any()
        ),
    );
    let pv: PersistentVolume =
        serde_json::from_value(provisioned_volume(pvc, class, node, &ctx.opts.root)).map_err(
            |source| Error::Encode {
                what: "PersistentVolume",
                source,
            },
        )?;
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(volume = %name, %node, claim = %pvc.name_any(), "provisioned volume");
            ctx.provisioner_events.publish(
                pvc,
                Kind::Normal,
                "ProvisioningSucceeded",
                format!("Successfully provisioned volume {name}"),
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::api(format!("creating volume {name}"))(e)),
    }
}

async fn reconcile_volume(pv: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = pv.name_any();
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.clone());
    // Whether the claim the volume names exists (asked of the API when the cache has none,
    // so a claim the cache has not seen yet does not release its volume).
    let claim_exists = match &claim_ref {
        None => false,
        Some(r) => {
            let ns = r.namespace.clone().unwrap_or_default();
            let cname = r.name.clone().unwrap_or_default();
            let uid = r.uid.clone().unwrap_or_default();
            let matches = |c: &PersistentVolumeClaim| {
                uid.is_empty() || c.metadata.uid.as_deref() == Some(uid.as_str())
            };
            match ctx.claims.get(&ObjectRef::new(&cname).within(&ns)) {
                Some(c) => matches(&c),
                None => {
                    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
                    api.get_opt(&cname)
                        .await
                        .map_err(Error::api(format!("reading claim {ns}/{cname}")))?
                        .is_some_and(|c| matches(&c))
                }
            }
        }
    };
    let phase = matching::volume_phase(&pv, claim_exists);
    if pv.metadata.deletion_timestamp.is_some() {
        if has_finalizer(pv.as_ref(), PV_PROTECTION) && phase != "Bound" {
            pvs.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(without_finalizer(pv.as_ref(), PV_PROTECTION)),
            )
            .await
            .map_err(Error::api(format!("releasing volume {name}")))?;
        }
        return Ok(Action::await_change());
    }
    let current = pv.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == "Released" {
        return reclaim(&ctx, &pvs, &pv, current).await;
    }
    if current != Some(phase) {
        set_volume_phase(&pvs, &name, phase, None).await?;
    }
    Ok(Action::await_change())
}

/// A volume whose claim is gone: Released, then deleted (with its directory) under `Delete`.
async fn reclaim(
    ctx: &Ctx,
    pvs: &Api<PersistentVolume>,
    pv: &PersistentVolume,
    current: Option<&str>,
) -> Result<Action, Error> {
    let name = pv.name_any();
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let ours = pv.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER);
    if policy == "Delete" && !ours {
        let message = "Baton deletes only the volumes its local-path provisioner made";
        if current != Some("Failed") {
            set_volume_phase(pvs, &name, "Failed", Some(message)).await?;
            ctx.events
                .publish(pv, Kind::Warning, "VolumeFailedDelete", message);
        }
        return Ok(Action::await_change());
    }
    if current != Some("Released") {
        set_volume_phase(pvs, &name, "Released", None).await?;
    }
    if policy != "Delete" {
        return Ok(Action::await_change());
    }
    if let Some(path) = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| PathBuf::from(&h.path))
    {
        remove_volume_dir(&ctx.opts.root, &path)
            .await
            .map_err(Error::Invalid)?;
    }
    match pvs.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(volume = %name, "deleted released volume");
            Ok(Action::await_change())
        }
        Err(e) if error::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(Error::api(format!("deleting volume {name}"))(e)),
    }
}

/// Removes a provisioned volume's directory, only when it is inside `root` (a volume edited
/// to point elsewhere must not remove anything else).
async fn remove_volume_dir(root: &Path, path: &Path) -> Result<(), String> {
    let inside = path.parent() == Some(root)
        && path
            .file_name()
            .is_some_and(|n| n != "." && n != ".." && !n.is_empty());
    if !inside {
        return Err(format!(
            "volume directory {} is not directly under {}; left in place",
            path.display(),
            root.display()
        ));
    }
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provisioned_volume_is_pre_bound_and_pinned_to_its_node() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "1234", "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .expect("pvc");
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "local-path"}, "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        }))
        .expect("class");
        let pv = provisioned_volume(&pvc, &class, "n1", Path::new("/data/volumes"));
        assert_eq!(pv["metadata"]["name"], "pvc-1234");
        assert_eq!(pv["spec"]["hostPath"]["path"], "/data/volumes/pvc-1234");
        assert_eq!(pv["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(pv["spec"]["claimRef"]["uid"], "1234");
        let pv: PersistentVolume = serde_json::from_value(pv).expect("a valid PersistentVolume");
        assert!(matching::is_pre_bound_to(&pv, &pvc));
        assert!(matching::fits(&pv, &pvc));
    }

    #[tokio::test]
    async fn only_directories_under_the_root_are_removed() {
        let tmp = std::env::temp_dir().join(format!("baton-volumes-{}", std::process::id()));
        let root = tmp.join("volumes");
        let inside = root.join("pvc-1");
        let outside = tmp.join("elsewhere");
        std::fs::create_dir_all(&inside).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(inside.join("f"), "x").expect("write");
        assert!(remove_volume_dir(&root, &outside).await.is_err());
        assert!(outside.exists());
        assert!(remove_volume_dir(&root, &root.join("..")).await.is_err());
        remove_volume_dir(&root, &inside).await.expect("removed");
        assert!(!inside.exists());
        remove_volume_dir(&root, &inside)
            .await
            .expect("already gone is fine");
        std::fs::remove_dir_all(&tmp).expect("cleanup");
    }
}
