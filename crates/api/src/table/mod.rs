//! Server-side printing: the columns kubectl shows for each kind (`kubectl get`, `-o wide`),
//! as Kubernetes' `pkg/printers/internalversion` prints them. The server always prints the
//! wide row; kubectl hides columns with `priority` > 0 unless asked for `-o wide`.

mod batch;
mod daemonset;
mod duration;
mod rbac;
mod storage;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use duration::human as human_duration;
pub use storage::{DEFAULT_CLASS_ANNOTATIONS, access_modes};

use crate::registry::ResourceDef;
use crate::selectors::label_selector_from_object;

/// One `TableColumnDefinition`. Columns with `priority` > 0 are shown only with `-o wide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const fn col(
    name: &'static str,
    type_: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

fn name_col() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DOC,
        priority: 0,
    }
}

fn age_col() -> Column {
    col("Age", "string", 0, AGE_DOC)
}

/// The columns of `def`'s kind.
pub fn columns(def: &ResourceDef) -> Vec<Column> {
    let mut c = vec![name_col()];
    match def.kind {
        "Pod" => c.extend([
            col("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", 0, "The aggregate status of the containers in this pod."),
            col("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            age_col(),
            col("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            col("Node", "string", 1, "NodeName indicates in which node this pod is scheduled."),
            col("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
            col("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ]),
        "Deployment" => c.extend([
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col("Up-to-date", "string", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", "string", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            age_col(),
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
        ]),
        "StatefulSet" => c.extend([
            col("Ready", "string", 0, "Number of the pod with ready state"),
            age_col(),
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
        ]),
        "ReplicaSet" | "ReplicationController" => c.extend([
            col("Desired", "integer", 0, "Replicas is the number of desired replicas."),
            col("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
            col("Ready", "integer", 0, "The number of ready replicas for this replica set."),
            age_col(),
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "Selector is a label query over pods that should match the replica count."),
        ]),
        "Service" => c.extend([
            col("Type", "string", 0, "type determines how the Service is exposed."),
            col("Cluster-IP", "string", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
            col("External-IP", "string", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            col("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
            age_col(),
            col("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ]),
        "Endpoints" => c.extend([col("Endpoints", "string", 0, "Endpoints of the subsets."), age_col()]),
        "EndpointSlice" => c.extend([
            col("AddressType", "string", 0, "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."),
            col("Ports", "string", 0, "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports."),
            col("Endpoints", "string", 0, "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
            age_col(),
        ]),
        "Event" => {
            return vec![
                col("Last Seen", "string", 0, "The time at which the most recent occurrence of this event was recorded."),
                col("Type", "string", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
                col("Reason", "string", 0, "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                col("Object", "string", 0, "The object that this event is about."),
                col("Subobject", "string", 1, "The subobject (field path) that this event is about."),
                col("Source", "string", 1, "The component reporting this event."),
                col("Message", "string", 0, "A human-readable description of the status of this operation."),
                col("First Seen", "string", 1, "The time at which the event was first recorded."),
                col("Count", "string", 1, "The number of times this event has occurred."),
                Column { priority: 1, ..name_col() },
            ];
        }
        "Namespace" => c.extend([col("Status", "string", 0, "The status of the namespace"), age_col()]),
        "Node" => c.extend([
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            age_col(),
            col("Version", "string", 0, "Kubelet Version reported by the node."),
            col("Internal-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            col("External-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            col("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            col("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            col("Container-Runtime", "string", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ]),
        "ConfigMap" => c.extend([col("Data", "integer", 0, "Data contains the configuration data."), age_col()]),
        "Secret" => c.extend([
            col("Type", "string", 0, "Used to facilitate programmatic handling of secret data."),
            col("Data", "integer", 0, "Data contains the secret data."),
            age_col(),
        ]),
        "ServiceAccount" => c.extend([col("Secrets", "integer", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), age_col()]),
        "Ingress" => c.extend([
            col("Class", "string", 0, "The name of the IngressClass resource that should be used by this Ingress."),
            col("Hosts", "string", 0, "Hosts that incoming requests are matched against before the ingress rule"),
            col("Address", "string", 0, "Address is a list containing ingress points for the load-balancer"),
            col("Ports", "string", 0, "Ports of TLS configurations that open"),
            age_col(),
        ]),
        "IngressClass" => c.extend([
            col("Controller", "string", 0, "Controller that is responsible for handling this class"),
            col("Parameters", "string", 0, "A reference to a resource with additional parameters"),
            age_col(),
        ]),
        "HorizontalPodAutoscaler" => c.extend([
            col("Reference", "string", 0, "reference to the target resource."),
            col("Targets", "string", 0, "the target and current utilization."),
            col("MinPods", "string", 0, "lower limit for the number of pods."),
            col("MaxPods", "string", 0, "upper limit for the number of pods."),
            col("Replicas", "string", 0, "current number of replicas of pods managed by this autoscaler."),
            age_col(),
        ]),
        "Lease" => c.extend([col("Holder", "string", 0, "holderIdentity contains the identity of the holder of a current lease."), age_col()]),
        "Job" => c.extend(batch::job_columns()),
        "CronJob" => c.extend(batch::cron_job_columns()),
        "DaemonSet" => c.extend(daemonset::daemon_set_columns()),
        "PodDisruptionBudget" => c.extend(daemonset::pdb_columns()),
        "ControllerRevision" => c.extend([
            col("Controller", "string", 0, "Controller of the object"),
            col("Revision", "string", 0, "Revision is the revision number of the state represented by this ControllerRevision."),
            age_col(),
        ]),
        "PersistentVolume" | "PersistentVolumeClaim" | "StorageClass" => {
            c.extend(storage::columns(def.kind))
        }
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            c.extend(rbac::columns(def.kind))
        }
        _ => c.push(age_col()),
    }
    c
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn n(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: String) -> Value {
    Value::String(if v.is_empty() { "<none>".into() } else { v })
}

fn list<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Container names and images of a pod template, comma-joined.
fn containers_and_images(obj: &Value) -> (Value, Value) {
    let cs = list(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// A selector as Kubernetes prints it (`app=x`), `<none>` when empty.
fn selector_string(sel: Option<&Value>) -> Value {
    let text = sel
        .and_then(|s| label_selector_from_object(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    or_none(text)
}

/// The cells of one row, matching [`columns`]; `obj` is in its storage version.
pub fn cells(def: &ResourceDef, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(s(obj, "/metadata/name"));
    let age = json!(duration::since(
        obj.pointer("/metadata/creationTimestamp"),
        now
    ));
    match def.kind {
        "Pod" => pod_cells(obj, name, age, now),
        "Deployment" => {
            let (containers, images) = containers_and_images(obj);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(obj, "/status/readyReplicas"),
                    n(obj, "/spec/replicas")
                )),
                json!(n(obj, "/status/updatedReplicas")),
                json!(n(obj, "/status/availableReplicas")),
                age,
                containers,
                images,
                selector_string(obj.pointer("/spec/selector")),
            ]
        }
        "StatefulSet" => {
            let (containers, images) = containers_and_images(obj);
            let ready = format!(
                "{}/{}",
                n(obj, "/status/readyReplicas"),
                n(obj, "/spec/replicas")
            );
            vec![name, json!(ready), age, containers, images]
        }
        "ReplicaSet" | "ReplicationController" => {
            let (containers, images) = containers_and_images(obj);
            vec![
                name,
                json!(n(obj, "/spec/replicas")),
                json!(n(obj, "/status/replicas")),
                json!(n(obj, "/status/readyReplicas")),
                age,
                containers,
                images,
                selector_string(obj.pointer("/spec/selector")),
            ]
        }
        "Service" => service_cells(obj, name, age),
        "Endpoints" => vec![name, json!(endpoints_string(obj)), age],
        "EndpointSlice" => vec![
            name,
            json!(s(obj, "/addressType")),
            json!(slice_ports_string(obj)),
            json!(slice_endpoints_string(obj)),
            age,
        ],
        "Event" => event_cells(obj, name, now),
        "Namespace" => vec![name, json!(s(obj, "/status/phase")), age],
        "Node" => node_cells(obj, name, age),
        "ConfigMap" => {
            let count = |k: &str| obj.get(k).and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, json!(count("data") + count("binaryData")), age]
        }
        "Secret" => {
            let count = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(s(obj, "/type")), json!(count), age]
        }
        "ServiceAccount" => vec![name, json!(list(obj, "/secrets").len()), age],
        "Ingress" => ingress_cells(obj, name, age),
        "IngressClass" => {
            let p = obj.pointer("/spec/parameters").filter(|p| !p.is_null());
            let params = p.map_or_else(
                || "<none>".to_string(),
                |p| {
                    // Kubernetes appends the group whenever the pointer is set, even to "".
                    let kind = match p.get("apiGroup").and_then(Value::as_str) {
                        Some(group) => format!("{}.{group}", s(p, "/kind")),
                        None => s(p, "/kind").to_string(),
                    };
                    format!("{kind}/{}", s(p, "/name"))
                },
            );
            vec![name, json!(s(obj, "/spec/controller")), json!(params), age]
        }
        "HorizontalPodAutoscaler" => hpa_cells(obj, name, age),
        "Lease" => vec![name, json!(s(obj, "/spec/holderIdentity")), age],
        "Job" => batch::job_cells(obj, name, age, now),
        "CronJob" => batch::cron_job_cells(obj, name, age, now),
        "DaemonSet" => daemonset::daemon_set_cells(obj, name, age),
        "PodDisruptionBudget" => daemonset::pdb_cells(obj, name, age),
        "ControllerRevision" => {
            let owner = list(obj, "/metadata/ownerReferences")
                .iter()
                .find(|o| o.get("controller") == Some(&json!(true)));
            let controller = owner.map_or_else(
                || "<none>".to_string(),
                |o| {
                    let (group, _) = crate::registry::split_api_version(s(o, "/apiVersion"));
                    let kind = s(o, "/kind").to_lowercase();
                    let kind = if group.is_empty() {
                        kind
                    } else {
                        format!("{kind}.{group}")
                    };
                    format!("{kind}/{}", s(o, "/name"))
                },
            );
            vec![name, json!(controller), json!(n(obj, "/revision")), age]
        }
        "PersistentVolume" | "PersistentVolumeClaim" | "StorageClass" => {
            storage::cells(def.kind, obj, name, age)
        }
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            rbac::cells(def.kind, obj, name, age)
        }
        _ => vec![name, age],
    }
}

/// The STATUS, READY and RESTARTS of a pod as kubectl's `printPod` computes them: the first
/// init container not done says `Init:N/M`, `Init:<waiting reason>` or `Init:<terminated
/// reason>`; once initialized the app containers' states speak; sidecars (init containers
/// with `restartPolicy: Always`) count among the containers and their restarts.
fn pod_cells(obj: &Value, name: Value, age: Value, now: DateTime<Utc>) -> Vec<Value> {
    let statuses = list(obj, "/status/containerStatuses");
    let init_specs = list(obj, "/spec/initContainers");
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(c, "/name") == name && s(c, "/restartPolicy") == "Always")
    };
    let total = list(obj, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| s(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<String> = None;
    let mut sidecar_restarts = 0;
    let mut sidecar_last_restart: Option<String> = None;
    let mut reason = s(obj, "/status/phase").to_string();
    if !s(obj, "/status/reason").is_empty() {
        reason = s(obj, "/status/reason").to_string();
    }
    let later = |last: &mut Option<String>, c: &Value| {
        let finished = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str);
        if let Some(t) = finished.filter(|t| last.as_deref().is_none_or(|l| *t > l)) {
            *last = Some(t.to_string());
        }
    };
    let mut initializing = false;
    for (i, c) in list(obj, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += n(c, "/restartCount");
        later(&mut last_restart, c);
        let is_sidecar = sidecar(s(c, "/name"));
        if is_sidecar {
            sidecar_restarts += n(c, "/restartCount");
            later(&mut sidecar_last_restart, c);
        }
        let terminated = c.pointer("/state/terminated");
        let waiting = s(c, "/state/waiting/reason");
        if terminated.is_some_and(|t| n(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && c.get("started") == Some(&json!(true)) {
            if c.get("ready") == Some(&json!(true)) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match (s(t, "/reason"), n(t, "/signal")) {
                (r, _) if !r.is_empty() => format!("Init:{r}"),
                (_, sig) if sig != 0 => format!("Init:Signal:{sig}"),
                _ => format!("Init:ExitCode:{}", n(t, "/exitCode")),
            }
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }
    let initialized = list(obj, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Initialized" && s(c, "/status") == "True");
    let mut has_running = false;
    // While initializing, the app containers have nothing to say.
    let app_statuses: &[Value] = if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        statuses
    } else {
        &[]
    };
    for c in app_statuses.iter().rev() {
        restarts += n(c, "/restartCount");
        later(&mut last_restart, c);
        let waiting = s(c, "/state/waiting/reason");
        let terminated = c.pointer("/state/terminated");
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if let Some(t) = terminated {
            reason = match (s(t, "/reason"), n(t, "/signal")) {
                (r, _) if !r.is_empty() => r.to_string(),
                (_, sig) if sig != 0 => format!("Signal:{sig}"),
                _ => format!("ExitCode:{}", n(t, "/exitCode")),
            };
        } else if c.get("ready") == Some(&json!(true)) && c.pointer("/state/running").is_some() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        let pod_ready = list(obj, "/status/conditions")
            .iter()
            .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
        reason = if pod_ready {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        reason = if s(obj, "/status/reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts = match last_restart {
        Some(t) if restarts > 0 => {
            format!("{restarts} ({} ago)", duration::since(Some(&json!(t)), now))
        }
        _ => restarts.to_string(),
    };
    let gates = list(obj, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(obj, "/status/conditions");
        let true_gates = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| s(c, "/type") == s(g, "/conditionType") && s(c, "/status") == "True")
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age,
        or_none(s(obj, "/status/podIP").to_string()),
        or_none(s(obj, "/spec/nodeName").to_string()),
        or_none(s(obj, "/status/nominatedNodeName").to_string()),
        json!(gates),
    ]
}

fn service_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let ty = s(obj, "/spec/type");
    let external_ips: Vec<&str> = list(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match ty {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut ips: Vec<String> = list(obj, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| {
                    if s(i, "/ip").is_empty() {
                        s(i, "/hostname").to_string()
                    } else {
                        s(i, "/ip").to_string()
                    }
                })
                .collect();
            ips.extend(external_ips.iter().map(|s| s.to_string()));
            if ips.is_empty() {
                "<pending>".to_string()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => s(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let node_port = n(p, "/nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{}", n(p, "/port"), s(p, "/protocol"))
            } else {
                format!("{}/{}", n(p, "/port"), s(p, "/protocol"))
            }
        })
        .collect();
    let cluster_ip = s(obj, "/spec/clusterIP");
    vec![
        name,
        json!(ty),
        or_none(cluster_ip.to_string()),
        json!(external),
        or_none(ports.join(",")),
        age,
        selector_string(obj.pointer("/spec/selector")),
    ]
}

/// Up to three items, then ` + N more...` counting everything after the third
/// (`listWithMoreString`); `<unset>` when there is nothing.
fn first_three_and_more(all: Vec<String>, empty: &str) -> String {
    if all.is_empty() {
        return empty.to_string();
    }
    let more = all.len().saturating_sub(3);
    let shown = all.into_iter().take(3).collect::<Vec<_>>().join(",");
    if more > 0 {
        format!("{shown} + {more} more...")
    } else {
        shown
    }
}

/// `host:port` as Go's `net.JoinHostPort` writes it: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints`: every (port, address) pair — ports outer, addresses inner, as kubectl
/// lists them — up to three, then ` + N more...`. `<none>` only when there are no subsets: a
/// subset with nothing ready prints as an empty cell, as in Kubernetes.
fn endpoints_string(obj: &Value) -> String {
    let subsets = list(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut all: Vec<String> = Vec::new();
    for subset in subsets {
        let ports = list(subset, "/ports");
        let addresses = list(subset, "/addresses");
        if ports.is_empty() {
            // Headless Services without ports list bare addresses.
            all.extend(addresses.iter().map(|a| s(a, "/ip").to_string()));
            continue;
        }
        for p in ports {
            all.extend(
                addresses
                    .iter()
                    .map(|a| join_host_port(s(a, "/ip"), n(p, "/port"))),
            );
        }
    }
    first_three_and_more(all, "")
}

/// `formatDiscoveryPorts`: port numbers (the name when the number is unset, `*` when both are).
fn slice_ports_string(obj: &Value) -> String {
    let ports = list(obj, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(port) => port.to_string(),
            None => match p.get("name").and_then(Value::as_str) {
                Some(name) => name.to_string(),
                None => "*".to_string(),
            },
        })
        .collect();
    first_three_and_more(ports, "<unset>")
}

/// `formatDiscoveryEndpoints`: every address of every endpoint, the first three shown.
fn slice_endpoints_string(obj: &Value) -> String {
    let addresses = list(obj, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses"))
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    first_three_and_more(addresses, "<unset>")
}

fn event_cells(obj: &Value, name: Value, now: DateTime<Utc>) -> Vec<Value> {
    let present = |p: &str| {
        obj.pointer(p)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
    };
    let first = match present("/firstTimestamp") {
        Some(t) => duration::since(Some(t), now),
        None => duration::since(present("/eventTime"), now),
    };
    let mut last = match present("/lastTimestamp") {
        Some(t) => duration::since(Some(t), now),
        None => first.clone(),
    };
    let mut count = n(obj, "/count");
    if obj.get("series").is_some_and(|s| !s.is_null()) {
        last = duration::since(obj.pointer("/series/lastObservedTime"), now);
        count = n(obj, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(obj, "/involvedObject/kind").to_lowercase();
    let target = match s(obj, "/involvedObject/name") {
        "" => kind,
        nm => format!("{kind}/{nm}"),
    };
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(s(obj, "/source/component"), s(obj, "/reportingComponent"));
    let host = first_non_empty(s(obj, "/source/host"), s(obj, "/reportingInstance"));
    let source = if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(s(obj, "/type")),
        json!(s(obj, "/reason")),
        json!(target),
        json!(s(obj, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(obj, "/message").trim()),
        json!(first),
        json!(count),
        name,
    ]
}

fn node_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let conditions = list(obj, "/status/conditions");
    let mut status: Vec<String> = Vec::new();
    match conditions.iter().find(|c| s(c, "/type") == "Ready") {
        Some(c) if s(c, "/status") == "True" => status.push("Ready".into()),
        Some(_) => status.push("NotReady".into()),
        None => status.push("Unknown".into()),
    }
    if obj.pointer("/spec/unschedulable") == Some(&json!(true)) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role) if !role.is_empty() => Some(role.to_string()),
                    _ if k == "kubernetes.io/role" => v.as_str().map(str::to_string),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |ty: &str| {
        list(obj, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == ty)
            .map_or_else(|| "<none>".to_string(), |a| s(a, "/address").to_string())
    };
    let info = |k: &str| {
        let v = s(obj, &format!("/status/nodeInfo/{k}"));
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name,
        json!(status.join(",")),
        or_none(roles.join(",")),
        age,
        json!(s(obj, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn ingress_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    // A class set to "" prints as "", only an unset one as <none>.
    let class = obj
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    vec![
        name,
        json!(class),
        json!(ingress_hosts(list(obj, "/spec/rules"))),
        json!(load_balancer_addresses(obj)),
        json!(if list(obj, "/spec/tls").is_empty() {
            "80"
        } else {
            "80, 443"
        }),
        age,
    ]
}

/// `formatHosts`: the first four non-empty hosts, then ` + N more...` where N counts the rules
/// after the fourth host (Kubernetes counts rules, not hosts); `*` when no rule names a host.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 4;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
            break;
        }
        let host = s(rule, "/host");
        if !host.is_empty() {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        return "*".into();
    }
    let shown = hosts.join(",");
    if more {
        format!("{shown} + {} more...", rules.len() - MAX)
    } else {
        shown
    }
}

/// `ingressLoadBalancerStatusStringer` (wide, as the server prints): each ingress point's IP,
/// else its hostname, sorted and without duplicates.
fn load_balancer_addresses(obj: &Value) -> String {
    let mut addresses: Vec<&str> = list(obj, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| match s(i, "/ip") {
            "" => s(i, "/hostname"),
            ip => ip,
        })
        .filter(|a| !a.is_empty())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.join(",")
}

fn hpa_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(obj, "/spec/scaleTargetRef/kind"),
        s(obj, "/spec/scaleTargetRef/name")
    );
    let min = obj
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map_or_else(|| "<unset>".to_string(), |v| v.to_string());
    vec![
        name,
        json!(reference),
        json!(hpa_metrics(
            list(obj, "/spec/metrics"),
            list(obj, "/status/currentMetrics")
        )),
        json!(min),
        json!(n(obj, "/spec/maxReplicas")),
        json!(n(obj, "/status/currentReplicas")),
        age,
    ]
}

/// The TARGETS cell: Kubernetes' `formatHPAMetrics` (each spec metric beside the status
/// metric at the same index, two at most then `+ N more...`).
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let unknown = || "<unknown>".to_string();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let pct = |v: Option<&Value>| v.and_then(Value::as_i64).map(|p| format!("{p}%"));
    let mut out: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let kind = s(spec, "/type");
        let field = match kind {
            "External" => "external",
            "Pods" => "pods",
            "Object" => "object",
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            _ => {
                out.push("<unknown type>".to_string());
                continue;
            }
        };
        let target = spec.pointer(&format!("/{field}/target"));
        let current = status.and_then(|st| st.get(field));
        let cur = |key: &str| text(current.and_then(|c| c.pointer(&format!("/current/{key}"))));
        let tgt = |key: &str| text(target.and_then(|t| t.get(key)));
        out.push(match kind {
            "External" | "Object" => match tgt("averageValue") {
                Some(avg) => format!(
                    "{}/{avg} (avg)",
                    cur("averageValue").unwrap_or_else(unknown)
                ),
                None => format!(
                    "{}/{}",
                    if current.is_some() {
                        cur("value").unwrap_or_default()
                    } else {
                        unknown()
                    },
                    tgt("value").unwrap_or_default()
                ),
            },
            "Pods" => format!(
                "{}/{}",
                if current.is_some() {
                    cur("averageValue").unwrap_or_default()
                } else {
                    unknown()
                },
                tgt("averageValue").unwrap_or_default()
            ),
            _ => {
                let res = s(spec, &format!("/{field}/name"));
                match tgt("averageValue") {
                    Some(avg) => format!(
                        "{res}: {}/{avg}",
                        if current.is_some() {
                            cur("averageValue").unwrap_or_default()
                        } else {
                            unknown()
                        }
                    ),
                    None => format!(
                        "{res}: {}/{}",
                        pct(current.and_then(|c| c.pointer("/current/averageUtilization")))
                            .unwrap_or_else(unknown),
                        pct(target.and_then(|t| t.get("averageUtilization")))
                            .unwrap_or_else(|| "<auto>".to_string())
                    ),
                }
            }
        });
    }
    let count = out.len();
    if count > 2 {
        out.truncate(2);
        return format!("{} + {} more...", out.join(", "), count - 2);
    }
    out.join(", ")
}

#[cfg(test)]
mod tests;
