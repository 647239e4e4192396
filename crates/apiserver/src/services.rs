//! Service allocations, as Kubernetes' service REST storage makes them: a cluster IP from the
//! service CIDR and node ports from 30000–32767, both unique across every Service; on update,
//! what the client omitted is carried over from the stored Service (so `kubectl apply` or
//! `replace` of YAML without `clusterIP`/`nodePort` keeps them), and what the new type no
//! longer uses is dropped (a NodePort Service switched back to ClusterIP loses its node ports).
//!
//! The rules are pure functions over the Service's JSON; [`allocate`] is the one I/O step
//! (the set of addresses and ports in use is read from the store), and callers hold
//! [`AppState::service_allocation`] from it until their write is stored, so that two
//! concurrent writes cannot take the same port.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use baton_api::registry;
use baton_api::validation::FieldError;
use rand::Rng;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::meta_str;
use crate::state::AppState;

/// The service CIDR, 10.96.0.0/12; 10.96.0.1 belongs to the `kubernetes` Service.
const SERVICE_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_SIZE: u32 = 1 << 20;
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// Kubernetes' default `--service-node-port-range`.
pub const NODE_PORT_MIN: i64 = 30000;
pub const NODE_PORT_MAX: i64 = 32767;

fn spec_str<'a>(spec: &'a Value, field: &str) -> &'a str {
    spec.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn service_type(spec: &Value) -> &str {
    match spec_str(spec, "type") {
        "" => "ClusterIP",
        ty => ty,
    }
}

/// Every type but ExternalName has a cluster IP (or `None`).
fn needs_cluster_ip(spec: &Value) -> bool {
    service_type(spec) != "ExternalName"
}

/// NodePort Services, and LoadBalancers unless `allocateLoadBalancerNodePorts: false`.
fn needs_node_ports(spec: &Value) -> bool {
    match service_type(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec.get("allocateLoadBalancerNodePorts") != Some(&json!(false)),
        _ => false,
    }
}

fn ports(spec: &Value) -> &[Value] {
    spec.get("ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn node_port(p: &Value) -> i64 {
    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0)
}

/// The node ports a Service holds.
fn node_ports(spec: &Value) -> HashSet<i64> {
    ports(spec)
        .iter()
        .map(node_port)
        .filter(|n| *n != 0)
        .collect()
}

fn cluster_ips(spec: &Value) -> Vec<Value> {
    spec.get("clusterIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// What Kubernetes' Service strategy does to an update before validating it
/// (`patchAllocatedValues`, `NormalizeClusterIPs`, `dropTypeDependentFields`). `new` and
/// `old` are whole Services in core/v1.
pub fn prepare_update(new: &mut Value, old: &Value) {
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    if !new.get("spec").is_some_and(Value::is_object) {
        new["spec"] = json!({});
    }
    let spec = &mut new["spec"];
    patch_allocated_values(spec, &old_spec);
    normalize_cluster_ips(spec, &old_spec);
    drop_type_dependent_fields(spec, &old_spec);
}

/// Fields the client left out but the stored Service has: its cluster IPs, and node ports
/// by port name (unless the update uses that port number elsewhere).
fn patch_allocated_values(spec: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if spec_str(spec, "clusterIP").is_empty()
            && let Some(ip) = old.get("clusterIP").filter(|v| v.is_string())
        {
            spec["clusterIP"] = ip.clone();
        }
        if cluster_ips(spec).is_empty() && !cluster_ips(old).is_empty() {
            spec["clusterIPs"] = json!(cluster_ips(old));
        }
    }
    if needs_node_ports(old) && needs_node_ports(spec) {
        let used: HashSet<i64> = node_ports(old)
            .intersection(&node_ports(spec))
            .copied()
            .collect();
        let by_name: HashMap<&str, i64> = ports(old)
            .iter()
            .map(|p| (spec_str(p, "name"), node_port(p)))
            .collect();
        let patched: Vec<Option<i64>> = ports(spec)
            .iter()
            .map(|p| {
                let was = by_name.get(spec_str(p, "name")).copied().unwrap_or(0);
                (node_port(p) == 0 && was != 0 && !used.contains(&was)).then_some(was)
            })
            .collect();
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (p, np) in list.iter_mut().zip(patched) {
                if let (Some(np), Some(m)) = (np, p.as_object_mut()) {
                    m.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
}

/// Keeps `clusterIP` and `clusterIPs` in step when an update changed only one of them.
fn normalize_cluster_ips(spec: &mut Value, old: &Value) {
    let old_ip = spec_str(old, "clusterIP");
    let new_ip = spec_str(spec, "clusterIP").to_string();
    let same_ips = cluster_ips(old) == cluster_ips(spec);
    // An old client that knows only `clusterIP` sent it unchanged without `clusterIPs`.
    if !cluster_ips(old).is_empty() && cluster_ips(spec).is_empty() && old_ip == new_ip {
        spec["clusterIPs"] = json!(cluster_ips(old));
    }
    if old_ip != new_ip {
        if !old_ip.is_empty() && new_ip.is_empty() && same_ips {
            if let Some(m) = spec.as_object_mut() {
                m.remove("clusterIPs");
            }
        } else if !new_ip.is_empty() && same_ips {
            spec["clusterIPs"] = json!([new_ip]);
        }
    }
}

/// A Service switched to a type that does not use a field loses the value it had been given,
/// unless the client changed that value too (then validation says what is wrong).
fn drop_type_dependent_fields(spec: &mut Value, old: &Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    let as_spec = |m: &serde_json::Map<String, Value>| Value::Object(m.clone());
    if needs_cluster_ip(old) && !needs_cluster_ip(&as_spec(m)) {
        if cluster_ips(&as_spec(m)) == cluster_ips(old)
            && m.get("clusterIP") == old.get("clusterIP")
        {
            m.remove("clusterIP");
            m.remove("clusterIPs");
        }
        for field in ["ipFamilies", "ipFamilyPolicy"] {
            if m.get(field) == old.get(field) {
                m.remove(field);
            }
        }
    }
    if needs_node_ports(old) && !needs_node_ports(&as_spec(m)) {
        // Kubernetes wipes them when the update adds no node port the old Service lacked.
        if node_ports(&as_spec(m)).is_subset(&node_ports(old))
            && let Some(list) = m.get_mut("ports").and_then(Value::as_array_mut)
        {
            for p in list.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    let external = |s: &Value| matches!(service_type(s), "NodePort" | "LoadBalancer");
    if external(old)
        && !external(&as_spec(m))
        && m.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    {
        m.remove("externalTrafficPolicy");
    }
    if service_type(old) == "LoadBalancer" && service_type(&as_spec(m)) != "LoadBalancer" {
        for field in ["allocateLoadBalancerNodePorts", "loadBalancerClass"] {
            if m.get(field) == old.get(field) {
                m.remove(field);
            }
        }
    }
}

/// Why node ports could not be given.
#[derive(Debug, Clone, PartialEq)]
pub enum NodePortError {
    /// A requested port is outside the range or taken: a 422 naming the field.
    Invalid(Box<FieldError>),
    /// No free port is left.
    Full,
}

/// Gives every port of `spec` that needs one a node port, and checks the requested ones:
/// in range and not held by another Service (`taken`). Ports the Service already had
/// (`old`) stay its own. Ports sharing a port number (TCP and UDP 53) share a node port, as
/// in Kubernetes.
pub fn assign_node_ports(
    spec: &mut Value,
    old: Option<&Value>,
    taken: &HashSet<i64>,
    rng: &mut impl Rng,
) -> Result<(), NodePortError> {
    let needs = needs_node_ports(spec);
    let had = old.map(node_ports).unwrap_or_default();
    // Node ports given in this request, by the service port that holds them.
    let mut mine: HashMap<i64, i64> = HashMap::new();
    let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let requested: Vec<(i64, i64)> = list
        .iter()
        .map(|p| {
            (
                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                node_port(p),
            )
        })
        .collect();
    for (i, p) in list.iter_mut().enumerate() {
        let (port, wanted) = requested[i];
        if wanted == 0 && !needs {
            continue;
        }
        let invalid = |msg: String| {
            NodePortError::Invalid(Box::new(FieldError::invalid(
                format!("spec.ports[{i}].nodePort"),
                json!(wanted),
                msg,
            )))
        };
        let np = if wanted != 0 {
            if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&wanted) {
                return Err(invalid(format!(
                    "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
                )));
            }
            let held_here = mine.iter().any(|(&sp, &np)| np == wanted && sp != port);
            if !had.contains(&wanted) && (taken.contains(&wanted) || held_here) {
                return Err(invalid("provided port is already allocated".into()));
            }
            wanted
        } else if let Some(&np) = mine.get(&port).or_else(|| {
            // A later port of the same number may have asked for one.
            requested[i + 1..]
                .iter()
                .find(|(sp, np)| *sp == port && *np != 0)
                .map(|(_, np)| np)
        }) {
            np
        } else {
            let in_use = |n: i64| taken.contains(&n) || mine.values().any(|&m| m == n);
            let reserved: HashSet<i64> = requested.iter().map(|(_, np)| *np).collect();
            pick_free_port(rng, |n| in_use(n) || reserved.contains(&n))
                .ok_or(NodePortError::Full)?
        };
        mine.insert(port, np);
        if let Some(m) = p.as_object_mut() {
            m.insert("nodePort".into(), json!(np));
        }
    }
    Ok(())
}

/// A random free port of the range: random probes first, as Kubernetes' allocator picks at
/// random, then a scan from a random offset so that a nearly full range still succeeds.
fn pick_free_port(rng: &mut impl Rng, in_use: impl Fn(i64) -> bool) -> Option<i64> {
    let size = NODE_PORT_MAX - NODE_PORT_MIN + 1;
    for _ in 0..64 {
        let n = rng.random_range(NODE_PORT_MIN..=NODE_PORT_MAX);
        if !in_use(n) {
            return Some(n);
        }
    }
    let start = rng.random_range(0..size);
    (0..size)
        .map(|k| NODE_PORT_MIN + (start + k) % size)
        .find(|&n| !in_use(n))
}

/// A random free address of the service CIDR (the first ten are kept back, as Kubernetes
/// keeps the bottom of the range for static assignment).
fn pick_cluster_ip(rng: &mut impl Rng, used: &HashSet<String>) -> Option<String> {
    (0..1000)
        .map(|_| Ipv4Addr::from(SERVICE_BASE + rng.random_range(10..SERVICE_SIZE - 1)).to_string())
        .find(|ip| !used.contains(ip))
}

/// Allocates what a Service being created (`old` is `None`) or updated needs: a cluster IP
/// when it has none, node ports for its ports. Call with the allocation lock held.
pub async fn allocate(st: &AppState, svc: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let svc_def = registry::find("", "v1", "services")
        .ok_or_else(|| ApiError::internal("services not registered"))?;
    let page = st
        .store
        .list(&svc_def.key_prefix(), None, None)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let me = (meta_str(svc, "namespace"), meta_str(svc, "name"));
    let others: Vec<Value> = page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(|v| old.is_none() || (meta_str(v, "namespace"), meta_str(v, "name")) != me)
        .collect();
    let name = meta_str(svc, "name").unwrap_or("").to_string();
    if !svc.get("spec").is_some_and(Value::is_object) {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    if needs_cluster_ip(spec) {
        let used: HashSet<String> = others
            .iter()
            .filter_map(|v| v.pointer("/spec/clusterIP").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str);
        assign_cluster_ip(spec, old_ip, &used, &name)?;
    }
    let taken: HashSet<i64> = others
        .iter()
        .flat_map(|v| node_ports(v.get("spec").unwrap_or(&Value::Null)))
        .collect();
    let old_spec = old.and_then(|o| o.get("spec"));
    assign_node_ports(spec, old_spec, &taken, &mut rand::rng()).map_err(|e| match e {
        NodePortError::Invalid(fe) => ApiError::invalid(svc_def, &name, &[*fe]),
        NodePortError::Full => {
            ApiError::internal("failed to allocate a nodePort: range is full".to_string())
        }
    })
}

fn assign_cluster_ip(
    spec: &mut Value,
    old_ip: Option<&str>,
    used: &HashSet<String>,
    name: &str,
) -> ApiResult<()> {
    let requested = spec_str(spec, "clusterIP").to_string();
    if requested == "None" {
        spec["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let ip = if requested.is_empty() {
        pick_cluster_ip(&mut rand::rng(), used)
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    } else if Some(requested.as_str()) == old_ip {
        // Its own address, kept on update.
        return Ok(());
    } else if used.contains(&requested) {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "Service \"{name}\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated"
            ),
        ));
    } else {
        requested
    };
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

#[cfg(test)]
mod tests;
