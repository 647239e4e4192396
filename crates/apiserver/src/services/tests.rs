//! Service allocation rules: updates that keep or drop allocated values, and the node port
//! allocator's choices and errors.

use std::collections::HashSet;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::*;

fn svc(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn node_port_svc() -> Value {
    svc(json!({
        "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "externalTrafficPolicy": "Cluster",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                  {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 30090}]
    }))
}

#[test]
fn updates_keep_what_the_client_omitted_and_drop_what_the_type_no_longer_uses() {
    // (new spec as the client sent it, the spec expected after prepare_update)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "apply of YAML without clusterIP or nodePorts keeps them (ports matched by name)",
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
                   "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"},
                             {"name": "http", "port": 80, "protocol": "TCP"}]}),
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
                   "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 30090},
                             {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        ),
        (
            "a node port the update moved to another port is not given back twice",
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster", "clusterIP": "10.96.0.10",
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                             {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 30080}]}),
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
                   "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                             {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 30080}]}),
        ),
        (
            "back to ClusterIP drops node ports and externalTrafficPolicy",
            json!({"type": "ClusterIP", "externalTrafficPolicy": "Cluster",
                   "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                             {"name": "metrics", "port": 9090, "protocol": "TCP", "nodePort": 30090}]}),
            json!({"type": "ClusterIP",
                   "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                             {"name": "metrics", "port": 9090, "protocol": "TCP"}]}),
        ),
        (
            "back to ClusterIP with a new node port keeps it, for validation to reject",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 31000}]}),
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 31000}]}),
        ),
        (
            "a changed clusterIP with the old clusterIPs moves both, for validation to reject",
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
                   "clusterIP": "10.96.0.99", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
            json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
                   "clusterIP": "10.96.0.99", "clusterIPs": ["10.96.0.99"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        ),
        (
            "to ExternalName drops the cluster IPs",
            json!({"type": "ExternalName", "externalName": "example.com",
                   "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
            json!({"type": "ExternalName", "externalName": "example.com",
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
    ];
    let old = node_port_svc();
    for (what, spec, want) in cases {
        let mut new = svc(spec);
        prepare_update(&mut new, &old);
        assert_eq!(new["spec"], want, "{what}");
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn assigned(spec: &Value) -> Vec<i64> {
    ports(spec).iter().map(node_port).collect()
}

#[test]
fn node_ports_are_given_from_the_range_and_never_twice() {
    let taken: HashSet<i64> = [30001, 30002].into();
    let mut spec = json!({"type": "NodePort", "ports": [
        {"name": "a", "port": 80}, {"name": "b", "port": 443}, {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]});
    assign_node_ports(&mut spec, None, &taken, &mut rng()).expect("free ports");
    let got = assigned(&spec);
    for np in &got {
        assert!((NODE_PORT_MIN..=NODE_PORT_MAX).contains(np), "{got:?}");
        assert!(!taken.contains(np), "{got:?}");
    }
    assert_ne!(got[0], got[1]);
    assert_eq!(got[2], got[3], "ports of one number share a node port");

    // Random, not sequential: two Services created in a row do not get neighbours.
    let mut other = json!({"type": "NodePort", "ports": [{"port": 80}]});
    let taken: HashSet<i64> = got.iter().copied().collect();
    assign_node_ports(&mut other, None, &taken, &mut StdRng::seed_from_u64(8)).expect("free");
    assert!(!taken.contains(&assigned(&other)[0]));

    // Only the last free port left: found by the scan.
    let taken: HashSet<i64> = (NODE_PORT_MIN..NODE_PORT_MAX).collect();
    let mut last = json!({"type": "LoadBalancer", "ports": [{"port": 80}]});
    assign_node_ports(&mut last, None, &taken, &mut rng()).expect("one left");
    assert_eq!(assigned(&last), vec![NODE_PORT_MAX]);
    let taken: HashSet<i64> = (NODE_PORT_MIN..=NODE_PORT_MAX).collect();
    let mut none_left = json!({"type": "NodePort", "ports": [{"port": 80}]});
    assert_eq!(
        assign_node_ports(&mut none_left, None, &taken, &mut rng()),
        Err(NodePortError::Full)
    );
}

#[test]
fn node_port_requests_and_types() {
    let taken: HashSet<i64> = [30080].into();
    let err = |spec: Value, old: Option<Value>| {
        let mut spec = spec;
        match assign_node_ports(&mut spec, old.as_ref(), &taken, &mut rng()) {
            Err(NodePortError::Invalid(e)) => e.to_string(),
            other => format!("{other:?}: {spec}"),
        }
    };
    let cases: Vec<(Value, Option<Value>, &str)> = vec![
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            None,
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 30080}]}),
            None,
            "spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated",
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}, {"port": 81, "nodePort": 31000}]}),
            None,
            "spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated",
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 32768}]}),
            Some(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30500}]})),
            "spec.ports[0].nodePort: Invalid value: 32768: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
    ];
    for (spec, old, want) in cases {
        assert_eq!(err(spec, old), want);
    }

    // (spec, old spec, node ports expected; 1 = any port of the range)
    let ok: Vec<(Value, Option<Value>, Vec<i64>)> = vec![
        (
            json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
            None,
            vec![0],
        ),
        (
            json!({"type": "ClusterIP", "clusterIP": "None", "ports": [{"port": 80}]}),
            None,
            vec![0],
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}),
            None,
            vec![31000],
        ),
        (
            json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
            None,
            vec![1],
        ),
        (
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
            None,
            vec![0],
        ),
        // An update keeps the port the Service holds, even though the pool counts it.
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30500}, {"port": 81}]}),
            Some(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30500}]})),
            vec![30500, 1],
        ),
    ];
    for (spec, old, want) in ok {
        let mut spec = spec;
        let mut taken = taken.clone();
        taken.insert(30500);
        let old_ports = old.as_ref().map(node_ports).unwrap_or_default();
        taken.retain(|p| !old_ports.contains(p));
        assign_node_ports(&mut spec, old.as_ref(), &taken, &mut rng()).expect("valid");
        let got: Vec<i64> = assigned(&spec)
            .into_iter()
            .map(|np| {
                if np != 0 && !want.contains(&np) {
                    assert!((NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) && !taken.contains(&np));
                    1
                } else {
                    np
                }
            })
            .collect();
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn cluster_ips_are_kept_on_update_and_checked_when_requested() {
    let used: HashSet<String> = ["10.96.0.1".to_string(), "10.96.0.20".to_string()].into();
    let mut fresh = json!({"type": "ClusterIP"});
    assign_cluster_ip(&mut fresh, None, &used, "web").expect("allocates");
    let ip = fresh["clusterIP"].as_str().unwrap_or_default().to_string();
    assert!(ip.starts_with("10.") && !used.contains(&ip), "{ip}");
    assert_eq!(fresh["clusterIPs"], json!([ip]));

    let mut kept =
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"]});
    assign_cluster_ip(&mut kept, Some("10.96.0.20"), &HashSet::new(), "web").expect("its own");
    assert_eq!(kept["clusterIP"], json!("10.96.0.20"));

    let mut taken = json!({"type": "ClusterIP", "clusterIP": "10.96.0.20"});
    let e = assign_cluster_ip(&mut taken, None, &used, "web").expect_err("taken");
    assert_eq!(
        e.message,
        "Service \"web\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.20\"}: failed to allocate IP 10.96.0.20: provided IP is already allocated"
    );

    let mut headless = json!({"type": "ClusterIP", "clusterIP": "None"});
    assign_cluster_ip(&mut headless, None, &used, "web").expect("headless");
    assert_eq!(headless["clusterIPs"], json!(["None"]));
}
