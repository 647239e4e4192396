//! Table tests: column headers per kind, AGE formatting, and the cells of typical rows.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::{cells, columns, human_duration};
use crate::registry::find;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn row(group: &str, version: &str, resource: &str, obj: Value) -> Vec<Value> {
    let def = find(group, version, resource).expect("registered");
    let c = cells(def, &obj, now());
    assert_eq!(
        c.len(),
        columns(def).len(),
        "{resource}: one cell per column"
    );
    c
}

#[test]
fn human_durations() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (5, "5s"),
        (119, "119s"),
        (184, "3m4s"),
        (300, "5m"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (10 * 3600, "10h"),
        (51 * 3600, "2d3h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(secs), want, "{secs}");
    }
}

/// (group, version, resource, default columns, wide-only columns)
type HeaderCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn column_headers() {
    let cases: [HeaderCase; 10] = [
        (
            "",
            "v1",
            "pods",
            &["Name", "Ready", "Status", "Restarts", "Age"],
            &["IP", "Node", "Nominated Node", "Readiness Gates"],
        ),
        (
            "apps",
            "v1",
            "deployments",
            &["Name", "Ready", "Up-to-date", "Available", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "v1",
            "replicasets",
            &["Name", "Desired", "Current", "Ready", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "",
            "v1",
            "replicationcontrollers",
            &["Name", "Desired", "Current", "Ready", "Age"],
            &["Containers", "Images", "Selector"],
        ),
        (
            "",
            "v1",
            "services",
            &[
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
            ],
            &["Selector"],
        ),
        (
            "",
            "v1",
            "events",
            &["Last Seen", "Type", "Reason", "Object", "Message"],
            &["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        ("", "v1", "endpoints", &["Name", "Endpoints", "Age"], &[]),
        (
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            &["Name", "AddressType", "Ports", "Endpoints", "Age"],
            &[],
        ),
        (
            "networking.k8s.io",
            "v1",
            "ingresses",
            &["Name", "Class", "Hosts", "Address", "Ports", "Age"],
            &[],
        ),
        (
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            &["Name", "Controller", "Parameters", "Age"],
            &[],
        ),
    ];
    for (g, v, r, normal, wide) in cases {
        let cols = columns(find(g, v, r).expect("registered"));
        let shown: Vec<&str> = cols
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect();
        let hidden: Vec<&str> = cols
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect();
        assert_eq!(shown, normal, "{r}");
        assert_eq!(hidden, wide, "{r}");
    }
}

#[test]
fn workload_rows() {
    let template = json!({ "spec": { "containers": [{ "name": "web", "image": "nginx:1" }, { "name": "side", "image": "busybox" }] } });
    let d = json!({
        "metadata": { "name": "web", "creationTimestamp": "2024-01-01T11:56:56Z" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } }, "template": template },
        "status": { "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2 }
    });
    assert_eq!(
        row("apps", "v1", "deployments", d),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3m4s"),
            json!("web,side"),
            json!("nginx:1,busybox"),
            json!("app=web")
        ]
    );
    let rc = json!({ "metadata": { "name": "rc" }, "spec": { "replicas": 2, "selector": { "app": "x" }, "template": template }, "status": { "replicas": 1 } });
    assert_eq!(
        row("", "v1", "replicationcontrollers", rc),
        vec![
            json!("rc"),
            json!(2),
            json!(1),
            json!(0),
            json!("<unknown>"),
            json!("web,side"),
            json!("nginx:1,busybox"),
            json!("app=x")
        ]
    );
}

#[test]
fn pod_rows() {
    let pod = json!({
        "metadata": { "name": "p", "creationTimestamp": "2024-01-01T11:59:55Z" },
        "spec": { "containers": [{ "name": "a" }, { "name": "b" }], "nodeName": "node-1" },
        "status": {
            "phase": "Running", "podIP": "10.0.0.5",
            "containerStatuses": [
                { "name": "a", "ready": true, "restartCount": 0, "state": { "running": {} } },
                { "name": "b", "ready": false, "restartCount": 2, "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                  "lastState": { "terminated": { "finishedAt": "2024-01-01T11:58:00Z" } } }
            ]
        }
    });
    assert_eq!(
        row("", "v1", "pods", pod),
        vec![
            json!("p"),
            json!("1/2"),
            json!("CrashLoopBackOff"),
            json!("2 (2m ago)"),
            json!("5s"),
            json!("10.0.0.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    let pending = json!({ "metadata": { "name": "q", "deletionTimestamp": "x" }, "spec": { "containers": [{ "name": "a" }] }, "status": { "phase": "Pending" } });
    assert_eq!(row("", "v1", "pods", pending)[2], json!("Terminating"));
}

#[test]
fn service_and_other_rows() {
    let svc = json!({ "metadata": { "name": "s" }, "spec": { "type": "NodePort", "clusterIP": "10.96.0.10", "selector": { "app": "web" }, "ports": [{ "port": 80, "nodePort": 30080, "protocol": "TCP" }, { "port": 53, "protocol": "UDP" }] } });
    assert_eq!(
        row("", "v1", "services", svc),
        vec![
            json!("s"),
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("<unknown>"),
            json!("app=web")
        ]
    );
    let lb =
        json!({ "metadata": { "name": "lb" }, "spec": { "type": "LoadBalancer", "ports": [] } });
    assert_eq!(row("", "v1", "services", lb)[3], json!("<pending>"));
    assert_eq!(
        row(
            "",
            "v1",
            "namespaces",
            json!({ "metadata": { "name": "default" }, "status": { "phase": "Active" } })
        )[1],
        json!("Active")
    );
    assert_eq!(
        row(
            "",
            "v1",
            "secrets",
            json!({ "metadata": { "name": "s" }, "type": "Opaque", "data": { "a": "", "b": "" } })
        )[1..3],
        [json!("Opaque"), json!(2)]
    );
    assert_eq!(
        row(
            "",
            "v1",
            "configmaps",
            json!({ "metadata": { "name": "c" }, "data": { "a": "" } })
        )[1],
        json!(1)
    );
    let ep = json!({ "metadata": { "name": "e" }, "subsets": [{ "addresses": [{ "ip": "10.0.0.1" }, { "ip": "10.0.0.2" }, { "ip": "10.0.0.3" }, { "ip": "10.0.0.4" }], "ports": [{ "port": 80 }] }] });
    assert_eq!(
        row("", "v1", "endpoints", ep)[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...")
    );
    let ev = json!({
        "metadata": { "name": "web.1" }, "type": "Normal", "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-1 to 3 ",
        "involvedObject": { "kind": "Deployment", "name": "web" }, "source": { "component": "deployment-controller" },
        "firstTimestamp": "2024-01-01T11:50:00Z", "lastTimestamp": "2024-01-01T11:59:00Z", "count": 2
    });
    assert_eq!(
        row("", "v1", "events", ev),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-1 to 3"),
            json!("10m"),
            json!(2),
            json!("web.1")
        ]
    );
    let ing = json!({ "metadata": { "name": "i" }, "spec": { "ingressClassName": "baton", "rules": [{ "host": "a.example" }], "tls": [{}] }, "status": { "loadBalancer": { "ingress": [{ "ip": "127.0.0.1" }] } } });
    assert_eq!(
        row("networking.k8s.io", "v1", "ingresses", ing)[1..5],
        [
            json!("baton"),
            json!("a.example"),
            json!("127.0.0.1"),
            json!("80, 443")
        ]
    );
}

#[test]
fn endpoints_cells() {
    let addrs = |ips: &[&str]| -> Value { ips.iter().map(|ip| json!({ "ip": ip })).collect() };
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "<none>"),
        (json!({ "subsets": [] }), "<none>"),
        // Only not-ready addresses: an empty cell, as Kubernetes prints it.
        (
            json!({ "subsets": [{ "notReadyAddresses": addrs(&["10.0.0.9"]), "ports": [{ "port": 80 }] }] }),
            "",
        ),
        (
            json!({ "subsets": [{ "addresses": addrs(&["10.244.0.2", "10.244.0.3"]), "ports": [{ "port": 9090 }] }] }),
            "10.244.0.2:9090,10.244.0.3:9090",
        ),
        (
            json!({ "subsets": [{ "addresses": addrs(&["10.244.0.2", "10.244.0.3", "10.244.0.4"]), "ports": [{ "port": 9090 }, { "port": 9091 }] }] }),
            "10.244.0.2:9090,10.244.0.3:9090,10.244.0.4:9090 + 3 more...",
        ),
        // Headless without ports: bare addresses.
        (
            json!({ "subsets": [{ "addresses": addrs(&["10.0.0.1", "10.0.0.2"]) }] }),
            "10.0.0.1,10.0.0.2",
        ),
        (
            json!({ "subsets": [{ "addresses": addrs(&["fd00::1"]), "ports": [{ "port": 80 }] }] }),
            "[fd00::1]:80",
        ),
    ];
    for (mut obj, want) in cases {
        obj["metadata"] = json!({ "name": "e" });
        assert_eq!(
            row("", "v1", "endpoints", obj.clone())[1],
            json!(want),
            "{obj}"
        );
    }
}

#[test]
fn endpoint_slice_cells() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "addressType": "IPv4" }), "<unset>", "<unset>"),
        (
            json!({ "addressType": "IPv4", "ports": [{ "name": "http", "port": 9090, "protocol": "TCP" }],
                    "endpoints": [{ "addresses": ["10.244.0.2"] }, { "addresses": ["10.244.0.3"] }] }),
            "9090",
            "10.244.0.2,10.244.0.3",
        ),
        (
            json!({ "addressType": "IPv4",
                    "ports": [{ "port": 80 }, { "port": 443 }, { "name": "metrics" }, {}, { "port": 53 }],
                    "endpoints": [{ "addresses": ["10.0.0.1", "10.0.0.2"] }, { "addresses": ["10.0.0.3"] }, { "addresses": ["10.0.0.4"] }] }),
            "80,443,metrics + 2 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
        ),
        (
            json!({ "addressType": "IPv4", "ports": [{}] }),
            "*",
            "<unset>",
        ),
    ];
    for (mut obj, ports, endpoints) in cases {
        obj["metadata"] =
            json!({ "name": "web-abcde", "creationTimestamp": "2024-01-01T11:59:00Z" });
        assert_eq!(
            row("discovery.k8s.io", "v1", "endpointslices", obj),
            vec![
                json!("web-abcde"),
                json!("IPv4"),
                json!(ports),
                json!(endpoints),
                json!("60s")
            ]
        );
    }
}

#[test]
fn ingress_cells() {
    let hosts = |hs: &[&str]| -> Value { hs.iter().map(|h| json!({ "host": h })).collect() };
    // (spec, status, class, hosts, address, ports)
    let cases: Vec<(Value, Value, &str, &str, &str, &str)> = vec![
        (json!({}), json!({}), "<none>", "*", "", "80"),
        (
            json!({ "ingressClassName": "baton", "rules": [{ "http": {} }] }),
            json!({ "loadBalancer": {} }),
            "baton",
            "*",
            "",
            "80",
        ),
        (
            json!({ "rules": hosts(&["a", "", "b"]), "tls": [{ "hosts": ["a"] }] }),
            json!({ "loadBalancer": { "ingress": [{ "ip": "127.0.0.1" }, { "hostname": "lb.example" }, { "ip": "10.0.0.1" }, { "ip": "127.0.0.1" }] } }),
            "<none>",
            "a,b",
            "10.0.0.1,127.0.0.1,lb.example",
            "80, 443",
        ),
        (
            json!({ "rules": hosts(&["a", "b", "c", "d", "e", "f"]) }),
            json!({}),
            "<none>",
            "a,b,c,d + 2 more...",
            "",
            "80",
        ),
    ];
    for (spec, status, class, hosts, address, ports) in cases {
        let obj = json!({ "metadata": { "name": "i" }, "spec": spec, "status": status });
        assert_eq!(
            row("networking.k8s.io", "v1", "ingresses", obj)[1..5],
            [json!(class), json!(hosts), json!(address), json!(ports)]
        );
    }
    let class = |params: Value| {
        let obj = json!({ "metadata": { "name": "baton" }, "spec": { "controller": "baton.dev/ingress", "parameters": params } });
        row("networking.k8s.io", "v1", "ingressclasses", obj)
    };
    assert_eq!(
        class(Value::Null)[1..3],
        [json!("baton.dev/ingress"), json!("<none>")]
    );
    assert_eq!(
        class(json!({ "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p" }))
            [2],
        json!("IngressParameters.k8s.example.com/p")
    );
}

#[test]
fn pod_status_column_follows_the_init_containers_as_kubectl_prints_it() {
    let init = json!([{"name": "a"}, {"name": "b"}, {"name": "proxy", "restartPolicy": "Always"}]);
    let pod = |inits: Value, apps: Value, initialized: &str| {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-01-01T11:00:00Z"},
            "spec": {"initContainers": init, "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": inits, "containerStatuses": apps,
                       "conditions": [{"type": "Initialized", "status": initialized}]}
        })
    };
    let waiting = |r: &str| json!({"waiting": {"reason": r}});
    let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    let app = json!([{"name": "app", "ready": false, "restartCount": 0, "state": waiting("PodInitializing")}]);
    let st = |name: &str, state: Value, restarts: i64| json!({"name": name, "ready": false, "started": false, "restartCount": restarts, "state": state});
    let cases = [
        (
            json!([
                st("a", json!({"running": {}}), 0),
                st("b", waiting("PodInitializing"), 0),
                st("proxy", waiting("PodInitializing"), 0)
            ]),
            "False",
            "Init:0/3",
            "0",
        ),
        (
            json!([
                st("a", done.clone(), 0),
                st("b", waiting("CrashLoopBackOff"), 2),
                st("proxy", waiting("PodInitializing"), 0)
            ]),
            "False",
            "Init:CrashLoopBackOff",
            "2",
        ),
        (
            json!([
                st("a", done.clone(), 0),
                st(
                    "b",
                    json!({"terminated": {"exitCode": 3, "reason": "Error"}}),
                    0
                ),
                st("proxy", waiting("PodInitializing"), 0)
            ]),
            "False",
            "Init:Error",
            "0",
        ),
        (
            json!([
                st("a", done.clone(), 0),
                st("b", done.clone(), 0),
                st("proxy", json!({"running": {}}), 0)
            ]),
            "False",
            "Init:2/3",
            "0",
        ),
        (
            json!([st("a", done.clone(), 0), st("b", done.clone(), 0),
                   {"name": "proxy", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}]),
            "True",
            "PodInitializing",
            "1",
        ),
    ];
    for (inits, initialized, status, restarts) in cases {
        let c = row(
            "",
            "v1",
            "pods",
            pod(inits.clone(), app.clone(), initialized),
        );
        assert_eq!(c[2], json!(status), "{inits}");
        assert_eq!(c[3], json!(restarts), "{inits}");
        // The sidecar counts among the containers.
        assert!(c[1].as_str().is_some_and(|r| r.ends_with("/2")), "{}", c[1]);
    }
}

#[test]
fn hpa_targets_as_kubernetes_prints_them() {
    let hpa = |metrics: Value, current: Value| {
        json!({"metadata": {"name": "h", "creationTimestamp": "2024-01-01T11:00:00Z"},
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10, "metrics": metrics},
               "status": {"currentReplicas": 3, "currentMetrics": current}})
    };
    let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
    let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "64Mi"}}});
    let c = row(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        hpa(json!([cpu.clone()]), json!(null)),
    );
    assert_eq!(
        c[..6],
        [
            json!("h"),
            json!("Deployment/web"),
            json!("cpu: <unknown>/50%"),
            json!("2"),
            json!(10),
            json!(3)
        ]
    );
    let cur = json!([
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "60m"}}},
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "32Mi"}}}
    ]);
    let c = row(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        hpa(json!([cpu.clone(), mem.clone()]), cur.clone()),
    );
    assert_eq!(c[2], json!("cpu: 12%/50%, memory: 32Mi/64Mi"));
    let c = row(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        hpa(json!([cpu.clone(), mem, cpu]), cur),
    );
    assert_eq!(c[2], json!("cpu: 12%/50%, memory: 32Mi/64Mi + 1 more..."));
    let c = row(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        hpa(json!([]), json!(null)),
    );
    assert_eq!(c[2], json!("<none>"));
}
