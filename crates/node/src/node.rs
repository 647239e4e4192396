//! This machine as a Kubernetes Node: registered with its real capacity and pod CIDR, kept
//! alive by renewing its Lease every 10 s and re-posting its Ready status every minute, as a
//! kubelet does.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_api::events::{Kind, Recorder};
use baton_api::quantity::{Format, Quantity};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::AgentOptions;

/// The machine's CPU count and memory in KiB (from /proc).
fn capacity() -> (usize, u64) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (cpus, mem_kib)
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether the node is under disk pressure, and since when (RFC 3339).
#[derive(Clone, Debug)]
pub struct DiskPressure {
    /// What crossed its threshold (empty: no pressure).
    pub causes: Vec<String>,
    pub since: String,
}

impl DiskPressure {
    /// Measured now.
    pub fn now(opts: &AgentOptions) -> DiskPressure {
        DiskPressure {
            causes: opts.disks.pressure(),
            since: baton_api::clock::now_rfc3339(),
        }
    }

    pub fn under(&self) -> bool {
        !self.causes.is_empty()
    }

    /// The Node condition: the kubelet's reasons and messages, with what crossed which
    /// threshold appended when there is pressure.
    fn condition(&self, now: &str) -> Value {
        let (status, reason, message) = if self.under() {
            let why = self.causes.join("; ");
            (
                "True",
                "KubeletHasDiskPressure",
                format!("kubelet has disk pressure: {why}"),
            )
        } else {
            (
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure".to_string(),
            )
        };
        json!({"type": "DiskPressure", "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": self.since})
    }
}

/// The Node's status as this agent reports it.
pub fn status(opts: &AgentOptions, kubelet_port: u16, disk: &DiskPressure) -> Value {
    let now = baton_api::clock::now_rfc3339();
    let (cpus, mem_kib) = capacity();
    let bytes = i64::try_from(mem_kib.saturating_mul(1024)).unwrap_or(i64::MAX);
    let memory = Quantity::from_value(bytes, Format::BinarySI).to_string();
    let (storage, storage_free) = opts.disks.ephemeral_storage();
    let storage_quantity = |b: u64| {
        Quantity::from_value(i64::try_from(b).unwrap_or(i64::MAX), Format::DecimalSI).to_string()
    };
    let resources = |storage: u64| {
        json!({
            "cpu": cpus.to_string(),
            "memory": memory,
            "pods": "110",
            "ephemeral-storage": storage_quantity(storage),
        })
    };
    let cond = |t: &str, s: &str, reason: &str, message: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "capacity": resources(storage),
        "allocatable": resources(storage_free),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            disk.condition(&now),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": opts.node_ip.to_string()},
            {"type": "Hostname", "address": opts.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "bootID": read_trim("/proc/sys/kernel/random/boot_id"),
            "containerRuntimeVersion": "runc://baton",
            "kernelVersion": read_trim("/proc/sys/kernel/osrelease"),
            "kubeProxyVersion": "",
            "kubeletVersion": "v1.33.0-baton",
            "machineID": read_trim("/etc/machine-id"),
            "operatingSystem": "linux",
            "osImage": os_image(),
            "systemUUID": read_trim("/etc/machine-id"),
        },
    })
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// Creates (or refreshes) the Node and its Lease.
pub async fn register(
    client: &Client,
    opts: &AgentOptions,
    kubelet_port: u16,
) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), opts.node_name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "kubernetes.io/arch".to_string(),
            std::env::consts::ARCH.replace("x86_64", "amd64"),
        ),
    ]);
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": opts.node_name, "labels": labels},
        "spec": {"podCIDR": opts.pod_cidr.to_string(), "podCIDRs": [opts.pod_cidr.to_string()]},
    }))
    .map_err(kube::Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    post_status(client, opts, kubelet_port, &DiskPressure::now(opts)).await?;
    renew_lease(client, &opts.node_name).await
}

async fn post_status(
    client: &Client,
    opts: &AgentOptions,
    kubelet_port: u16,
    disk: &DiskPressure,
) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let body = json!({ "status": status(opts, kubelet_port, disk) });
    nodes
        .patch_status(
            &opts.node_name,
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
        .map(|_| ())
}

async fn renew_lease(client: &Client, node: &str) -> Result<(), kube::Error> {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(baton_api::clock::now());
    let spec = json!({"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now});
    match leases
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": spec,
            }))
            .map_err(kube::Error::SerdeError)?;
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Renews the Lease every 10 s and the Node's status every minute, and at once when disk
/// pressure (measured every 10 s) begins or ends, with the kubelet's Node event.
pub async fn heartbeat(client: Client, opts: AgentOptions, kubelet_port: u16, events: Recorder) {
    let mut disk = DiskPressure::now(&opts);
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        tick += 1;
        if let Err(e) = renew_lease(&client, &opts.node_name).await {
            tracing::warn!(node = %opts.node_name, error = %e, "lease renewal failed");
        }
        let measured = DiskPressure::now(&opts);
        let changed = measured.under() != disk.under();
        if changed {
            let reason = if measured.under() {
                tracing::warn!(node = %opts.node_name, causes = ?measured.causes, "disk pressure");
                "NodeHasDiskPressure"
            } else {
                tracing::info!(node = %opts.node_name, "disk pressure over");
                "NodeHasNoDiskPressure"
            };
            events.publish_about(
                node_reference(&opts.node_name),
                Kind::Normal,
                reason,
                format!("Node {} status is now: {reason}", opts.node_name),
            );
            disk = measured;
        } else {
            disk.causes = measured.causes;
        }
        if (changed || tick.is_multiple_of(6))
            && let Err(e) = post_status(&client, &opts, kubelet_port, &disk).await
        {
            tracing::warn!(node = %opts.node_name, error = %e, "node status update failed");
        }
    }
}

/// The kubelet's `involvedObject` for its Node's events (its uid is the node's name).
fn node_reference(name: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..Default::default()
    }
}
