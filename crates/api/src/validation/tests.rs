//! Validation tests: each case is an object (storage version) and the exact messages
//! Kubernetes would print for it.

use serde_json::{Value, json};

use super::{FieldError, invalid_message, validate};
use crate::registry::{ResourceDef, find};

fn def(group: &str, version: &str, resource: &str) -> &'static ResourceDef {
    find(group, version, resource).expect("registered")
}

fn messages(d: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<String> {
    validate(d, obj, old)
        .iter()
        .map(FieldError::to_string)
        .collect()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": {
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                    "containers": [{ "name": "web", "image": "nginx", "ports": [{ "containerPort": 80, "protocol": "TCP" }] }]
                }
            }
        }
    })
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn valid_objects_have_no_errors() {
    let d = def("apps", "v1", "deployments");
    assert_eq!(messages(d, &deployment(), None), Vec::<String>::new());
    assert_eq!(
        messages(d, &deployment(), Some(&deployment())),
        Vec::<String>::new()
    );
}

#[test]
fn deployment_errors() {
    let d = def("apps", "v1", "deployments");
    type Edit = fn(&mut Value);
    let cases: Vec<(Edit, &str)> = vec![
        (
            |o| o["spec"]["replicas"] = json!(-1),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            |o| o["metadata"]["name"] = json!("Web_1"),
            "metadata.name: Invalid value: \"Web_1\": ",
        ),
        (
            |o| o["metadata"]["name"] = json!(""),
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            |o| o["spec"]["template"]["metadata"]["labels"] = json!({ "app": "x" }),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ),
        (
            |o| o["spec"]["template"]["spec"]["containers"][0]["image"] = json!(""),
            "spec.template.spec.containers[0].image: Required value",
        ),
        (
            |o| o["spec"]["template"]["spec"]["containers"] = json!([]),
            "spec.template.spec.containers: Required value",
        ),
        (
            |o| {
                o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
                    json!(70000)
            },
            "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            |o| {
                o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] =
                    json!("HTTP")
            },
            "spec.template.spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ),
        (
            |o| o["spec"]["template"]["spec"]["restartPolicy"] = json!("Never"),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ),
        (
            |o| {
                o["spec"]["strategy"]["rollingUpdate"] =
                    json!({ "maxSurge": 0, "maxUnavailable": 0 })
            },
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ),
        (
            |o| o["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json!("150%"),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
        ),
        (
            |o| o["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!("x"),
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ),
        (
            |o| o["spec"]["strategy"] = json!({ "type": "Recreate", "rollingUpdate": {} }),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            |o| o["spec"]["strategy"] = json!({ "type": "Blue" }),
            "spec.strategy.type: Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\"",
        ),
        (
            |o| o["spec"]["minReadySeconds"] = json!(-5),
            "spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0",
        ),
        (
            |o| o["spec"]["revisionHistoryLimit"] = json!(-1),
            "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            |o| o["spec"]["minReadySeconds"] = json!(600),
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
        ),
        (
            |o| o["spec"]["selector"] = Value::Null,
            "spec.selector: Required value",
        ),
        (
            |o| o["spec"]["selector"] = json!({}),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
        ),
        (
            |o| o["metadata"]["labels"] = json!({ "a b": "x" }),
            "metadata.labels: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            |o| o["metadata"]["labels"] = json!({ "app": "-x" }),
            "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            |o| {
                o["spec"]["template"]["spec"]["containers"] =
                    json!([{ "name": "a", "image": "i" }, { "name": "a", "image": "i" }])
            },
            "spec.template.spec.containers[1].name: Duplicate value: \"a\"",
        ),
        (
            |o| o["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Web"),
            "spec.template.spec.containers[0].name: Invalid value: \"Web\": ",
        ),
    ];
    for (edit, want) in cases {
        let mut obj = deployment();
        edit(&mut obj);
        let got = messages(d, &obj, None);
        assert!(
            got.iter().any(|m| m.starts_with(want)),
            "want {want}\n got {got:#?}"
        );
    }
    let mut bad = deployment();
    bad["metadata"]["name"] = json!("Web_1");
    assert_eq!(
        messages(d, &bad, None),
        vec![format!(
            "metadata.name: Invalid value: \"Web_1\": {SUBDOMAIN}"
        )]
    );
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Web");
    assert!(messages(d, &bad, None).contains(&format!(
        "spec.template.spec.containers[0].name: Invalid value: \"Web\": {LABEL}"
    )));
}

#[test]
fn selector_is_immutable_from_apps_v1_only() {
    let old = deployment();
    let mut new = deployment();
    new["spec"]["selector"] = json!({ "matchLabels": { "app": "web2" } });
    new["spec"]["template"]["metadata"]["labels"] = json!({ "app": "web2" });
    let want = "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable";
    assert_eq!(
        messages(def("apps", "v1", "deployments"), &new, Some(&old)),
        vec![want.to_string()]
    );
    assert_eq!(
        messages(def("apps", "v1beta2", "deployments"), &new, Some(&old)),
        vec![want.to_string()]
    );
    assert!(
        messages(
            def("extensions", "v1beta1", "deployments"),
            &new,
            Some(&old)
        )
        .is_empty()
    );
    assert!(messages(def("apps", "v1beta1", "deployments"), &new, Some(&old)).is_empty());
    let mut rs = new.clone();
    rs["kind"] = json!("ReplicaSet");
    assert_eq!(
        messages(def("apps", "v1", "replicasets"), &rs, Some(&old)),
        vec![want.to_string()]
    );
    assert!(messages(def("extensions", "v1beta1", "replicasets"), &rs, Some(&old)).is_empty());
}

#[test]
fn replication_controller_errors() {
    let d = def("", "v1", "replicationcontrollers");
    let rc = json!({
        "metadata": { "name": "rc", "namespace": "default" },
        "spec": { "replicas": -1, "selector": { "app": "a" }, "template": { "metadata": { "labels": { "app": "b" } }, "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "containers": [{ "name": "c", "image": "i" }] } } }
    });
    assert_eq!(
        messages(d, &rc, None),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`".to_string(),
        ]
    );
    let mut empty = rc.clone();
    empty["spec"] = json!({ "template": rc["spec"]["template"].clone() });
    assert_eq!(
        messages(d, &empty, None),
        vec!["spec.selector: Required value".to_string()]
    );
}

#[test]
fn service_namespace_configmap_errors() {
    let d = def("", "v1", "services");
    let svc = json!({
        "metadata": { "name": "1svc", "namespace": "default" },
        "spec": { "type": "ClusterIP", "sessionAffinity": "None", "selector": { "app": "web" }, "ports": [
            { "port": 80, "protocol": "TCP", "targetPort": 80 },
            { "name": "b", "port": 80, "protocol": "TCP", "targetPort": 0 },
            { "name": "b", "port": 0, "protocol": "TCP", "targetPort": "http" }
        ] }
    });
    let got = messages(d, &svc, None);
    let want = [
        "metadata.name: Invalid value: \"1svc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        "spec.ports[0].name: Required value",
        "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[2].name: Duplicate value: \"b\"",
        "spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
    ];
    for w in want {
        assert!(got.iter().any(|m| m == w), "want {w}\n got {got:#?}");
    }
    let no_ports = json!({ "metadata": { "name": "s", "namespace": "default" }, "spec": { "type": "ClusterIP", "sessionAffinity": "None" } });
    assert_eq!(
        messages(d, &no_ports, None),
        vec!["spec.ports: Required value".to_string()]
    );

    let ns = def("", "v1", "namespaces");
    assert_eq!(
        messages(ns, &json!({ "metadata": { "name": "a.b" } }), None),
        vec![format!("metadata.name: Invalid value: \"a.b\": {LABEL}")]
    );
    assert_eq!(
        messages(
            ns,
            &json!({ "metadata": { "name": "a", "namespace": "x" } }),
            None
        ),
        vec!["metadata.namespace: Forbidden: not allowed on this type".to_string()]
    );

    let cm = def("", "v1", "configmaps");
    assert_eq!(
        messages(cm, &json!({ "metadata": { "name": "c", "namespace": "d" }, "data": { "a b": "x", "..": "y" } }), None),
        vec![
            "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string(),
            "data[..]: Invalid value: \"..\": must not be '..'".to_string(),
        ]
    );
    let secret = def("", "v1", "secrets");
    assert_eq!(
        messages(
            secret,
            &json!({ "metadata": { "name": "s", "namespace": "d" }, "data": { "ok.key": "eA==" } }),
            None
        ),
        Vec::<String>::new()
    );
}

#[test]
fn invalid_messages_are_worded_as_kubernetes() {
    let one = [FieldError::required("spec.selector", "")];
    assert_eq!(
        invalid_message("Deployment", "apps", "x", &one),
        "Deployment.apps \"x\" is invalid: spec.selector: Required value"
    );
    let two = [
        FieldError::invalid(
            "spec.replicas",
            json!(-1),
            "must be greater than or equal to 0",
        ),
        FieldError::required("spec.template.spec.containers[0].image", ""),
        FieldError::required("spec.template.spec.containers[0].image", ""),
    ];
    assert_eq!(
        invalid_message("ReplicationController", "", "rc", &two),
        "ReplicationController \"rc\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
    );
}

fn node_port_service() -> Value {
    json!({
        "metadata": { "name": "web", "namespace": "default" },
        "spec": { "type": "NodePort", "sessionAffinity": "None", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                  "ports": [{ "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080 }] }
    })
}

#[test]
fn service_cluster_ips_and_headless_types() {
    let d = def("", "v1", "services");
    type Edit = fn(&mut Value);
    // (edit of the new object, of the old one, expected messages)
    let cases: Vec<(Edit, Edit, Vec<&str>)> = vec![
        (|_| {}, |_| {}, vec![]),
        (
            |o| {
                o["spec"]["clusterIP"] = json!("10.96.0.99");
                o["spec"]["clusterIPs"] = json!(["10.96.0.99"]);
            },
            |_| {},
            vec![
                "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.99\"}: may not change once set",
            ],
        ),
        (
            |o| o["spec"]["clusterIPs"] = json!([]),
            |_| {},
            vec![
                "spec.clusterIPs[0]: Invalid value: []string{}: primary clusterIP can not be unset",
            ],
        ),
        // Into and out of ExternalName the IP may go.
        (
            |o| {
                o["spec"] = json!({ "type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None" });
            },
            |_| {},
            vec![],
        ),
        (
            |o| {
                o["spec"]["clusterIP"] = json!("None");
                o["spec"]["clusterIPs"] = json!(["None"]);
            },
            |o| {
                o["spec"]["clusterIP"] = json!("None");
                o["spec"]["clusterIPs"] = json!(["None"]);
                o["spec"]["type"] = json!("ClusterIP");
                o["spec"]["ports"][0]
                    .as_object_mut()
                    .map(|p| p.remove("nodePort"));
            },
            vec![
                "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
            ],
        ),
    ];
    for (edit_new, edit_old, want) in cases {
        let (mut new, mut old) = (node_port_service(), node_port_service());
        edit_new(&mut new);
        edit_old(&mut old);
        assert_eq!(messages(d, &new, Some(&old)), want, "{new}");
    }
}

fn endpoint_slice() -> Value {
    json!({
        "metadata": { "name": "web-abcde", "namespace": "default" },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": ["10.244.0.2"], "conditions": { "ready": true }, "nodeName": "node-1" }],
        "ports": [{ "name": "http", "port": 9090, "protocol": "TCP" }]
    })
}

#[test]
fn endpoint_slice_errors() {
    let d = def("discovery.k8s.io", "v1", "endpointslices");
    type Edit = fn(&mut Value);
    let cases: Vec<(Edit, Vec<&str>)> = vec![
        (|_| {}, vec![]),
        (
            |o| {
                o.as_object_mut().map(|m| m.remove("addressType"));
            },
            vec!["addressType: Required value"],
        ),
        (
            |o| o["addressType"] = json!("IP"),
            vec![
                "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
            ],
        ),
        (
            |o| o["endpoints"][0]["addresses"] = json!([]),
            vec!["endpoints[0].addresses: Required value: must contain at least 1 address"],
        ),
        (
            |o| {
                o["endpoints"][0]["addresses"] = (0..101)
                    .map(|i| json!(format!("10.0.{}.{}", i / 250, i % 250 + 1)))
                    .collect()
            },
            vec!["endpoints[0].addresses: Too many: 101: must have at most 100 items"],
        ),
        (
            |o| {
                o["endpoints"] = (0..1001)
                    .map(|_| json!({ "addresses": ["10.0.0.1"] }))
                    .collect()
            },
            vec!["endpoints: Too many: 1001: must have at most 1000 items"],
        ),
        (
            |o| {
                o["endpoints"][0]["addresses"] = json!([
                    "10.0.0.300",
                    "fd00::1",
                    "127.0.0.1",
                    "0.0.0.0",
                    "169.254.1.1"
                ])
            },
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.300\": must be a valid IPv4 address",
                "endpoints[0].addresses[1]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[0].addresses[2]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "endpoints[0].addresses[3]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)",
                "endpoints[0].addresses[4]: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ],
        ),
        (
            |o| {
                o["addressType"] = json!("IPv6");
                o["endpoints"][0]["addresses"] = json!(["fd00::1", "10.0.0.1", "fe80::1"]);
            },
            vec![
                "endpoints[0].addresses[1]: Invalid value: \"10.0.0.1\": must be a valid IPv6 address",
                "endpoints[0].addresses[2]: Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ],
        ),
        (
            |o| {
                o["addressType"] = json!("FQDN");
                o["endpoints"][0]["addresses"] = json!(["db.example.com.", "localhost"]);
            },
            vec![
                "endpoints[0].addresses[1]: Invalid value: \"localhost\": should be a domain with at least two segments separated by dots",
            ],
        ),
        (
            |o| {
                o["ports"] = json!([
                    { "name": "http", "port": 80, "protocol": "TCP" },
                    { "name": "http", "port": 81, "protocol": "TCP" },
                    { "name": "", "port": 53, "protocol": "ICMP" }
                ])
            },
            vec![
                "ports[1].name: Duplicate value: \"http\"",
                "ports[2].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
    ];
    for (edit, want) in cases {
        let mut obj = endpoint_slice();
        edit(&mut obj);
        assert_eq!(messages(d, &obj, None), want);
    }
    let mut v6 = endpoint_slice();
    v6["addressType"] = json!("IPv6");
    v6["endpoints"][0]["addresses"] = json!(["fd00::1"]);
    assert_eq!(
        messages(d, &v6, Some(&endpoint_slice())),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
    );
}

#[test]
fn fields_baton_does_not_run_are_refused_by_name() {
    let d = def("", "v1", "pods");
    let pod = |spec: Value| {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "default" },
            "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                      "containers": [{ "name": "c", "image": "nginx" }] }
        });
        if let (Some(s), Value::Object(extra)) = (p["spec"].as_object_mut(), spec) {
            s.extend(extra);
        }
        p
    };
    // Defaults and explicit "off" values pass.
    let off = pod(
        json!({"hostNetwork": false, "hostPID": false, "volumes": [],
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}),
    );
    assert_eq!(messages(d, &off, None), Vec::<String>::new());
    let cases = [
        (
            json!({"hostNetwork": true}),
            "spec.hostNetwork: Forbidden: not supported by Baton",
        ),
        (
            json!({"hostPID": true}),
            "spec.hostPID: Forbidden: not supported by Baton",
        ),
        (
            json!({"hostIPC": true}),
            "spec.hostIPC: Forbidden: not supported by Baton",
        ),
        (
            json!({"volumes": [{"name": "v", "nfs": {"server": "s", "path": "/"}}]}),
            "spec.volumes[0].nfs: Forbidden: not supported by Baton",
        ),
        (
            json!({"initContainers": [{"name": "i", "image": "busybox", "restartPolicyRules": [{"action": "Restart"}]}]}),
            "spec.initContainers[0].restartPolicyRules: Forbidden: not supported by Baton",
        ),
        (
            json!({"hostUsers": false}),
            "spec.hostUsers: Forbidden: not supported by Baton",
        ),
        (
            json!({"overhead": {"cpu": "250m"}}),
            "spec.overhead: Forbidden: not supported by Baton",
        ),
        (
            json!({"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}}),
            "spec.securityContext.sysctls: Forbidden: not supported by Baton",
        ),
        (
            json!({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}}),
            "spec.securityContext.seccompProfile.type: Unsupported value: \"Localhost\": supported values: \"RuntimeDefault\", \"Unconfined\"",
        ),
        (
            json!({"containers": [{"name": "c", "image": "nginx", "lifecycle": {"stopSignal": "SIGUSR1"}}]}),
            "spec.containers[0].lifecycle.stopSignal: Forbidden: not supported by Baton",
        ),
        (
            json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}]}),
            "spec.containers[0].ports[0].hostPort: Forbidden: not supported by Baton",
        ),
    ];
    for (spec, want) in cases {
        let got = messages(d, &pod(spec.clone()), None);
        assert!(got.iter().any(|m| m == want), "{spec}: {got:?}");
    }
    // In a Deployment's template too, where the user sees it at once.
    let mut dep = deployment();
    dep["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    assert_eq!(
        messages(def("apps", "v1", "deployments"), &dep, None),
        vec!["spec.template.spec.hostNetwork: Forbidden: not supported by Baton".to_string()]
    );
}

#[test]
fn env_from_is_served_and_validated_as_kubernetes_does() {
    let d = def("", "v1", "pods");
    let pod = |env_from: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "default" },
            "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                      "initContainers": [{ "name": "i", "image": "busybox", "envFrom": env_from.clone() }],
                      "containers": [{ "name": "c", "image": "busybox", "envFrom": env_from }] }
        })
    };
    let good = pod(json!([
        {"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
        {"secretRef": {"name": "creds", "optional": true}},
        {"prefix": "my.env-", "configMapRef": {"name": "other"}}
    ]));
    assert_eq!(messages(d, &good, None), Vec::<String>::new());
    let env_msg = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
    let cases = [
        (
            json!([{"configMapRef": {"name": "cfg"}, "prefix": "1X_"}]),
            vec![format!("envFrom[0].prefix: Invalid value: \"1X_\": {env_msg}")],
        ),
        (
            json!([{"secretRef": {"name": "s"}, "prefix": "..X"}]),
            vec!["envFrom[0].prefix: Invalid value: \"..X\": must not start with '..'".to_string()],
        ),
        (
            json!([{"prefix": "A_"}]),
            vec![
                "envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`"
                    .to_string(),
            ],
        ),
        (
            json!([{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]),
            vec![
                "envFrom: Invalid value: \"\": may not have more than one field specified at a time"
                    .to_string(),
            ],
        ),
        (
            json!([{"configMapRef": {"name": ""}}]),
            vec!["envFrom[0].configMapRef.name: Required value".to_string()],
        ),
        (
            json!([{"secretRef": {"name": "Bad_Name"}}]),
            vec!["envFrom[0].secretRef.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()],
        ),
    ];
    for (env_from, want) in cases {
        let got = messages(d, &pod(env_from.clone()), None);
        // The same error in the init container and the app container, each at its path.
        let mut expect = Vec::new();
        for at in ["spec.initContainers[0]", "spec.containers[0]"] {
            expect.extend(want.iter().map(|w| format!("{at}.{w}")));
        }
        assert_eq!(got, expect, "{env_from}");
    }
}

#[test]
fn env_names_are_environment_variable_names() {
    let d = def("", "v1", "pods");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "p", "namespace": "default" },
        "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                  "containers": [{ "name": "c", "image": "busybox", "env": [
                      {"name": "GOOD.name-1", "value": "x"},
                      {"name": "", "value": "x"},
                      {"name": "9LIVES", "value": "x"},
                      {"name": "..", "value": "x"}
                  ] }] }
    });
    assert_eq!(
        messages(d, &pod, None),
        [
            "spec.containers[0].env[1].name: Required value",
            "spec.containers[0].env[2].name: Invalid value: \"9LIVES\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
            "spec.containers[0].env[3].name: Invalid value: \"..\": must not be '..'",
        ]
    );
}

#[test]
fn volumes_the_agent_runs_pass_and_the_rest_is_refused_by_name() {
    let d = def("", "v1", "pods");
    let pod = |volumes: Value, mounts: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "default" },
            "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                      "volumes": volumes,
                      "containers": [{ "name": "c", "image": "busybox", "volumeMounts": mounts }] }
        })
    };
    let good = pod(
        json!([
            {"name": "a", "emptyDir": {}},
            {"name": "b", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            {"name": "c", "configMap": {"name": "cm", "defaultMode": 0o640,
                "items": [{"key": "k", "path": "dir/k", "mode": 0o400}]}},
            {"name": "d", "secret": {"secretName": "s", "optional": true}},
            {"name": "e", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}}]}},
            {"name": "f", "projected": {"sources": [
                {"configMap": {"name": "cm"}}, {"secret": {"name": "s"}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "g", "hostPath": {"path": "/srv", "type": "DirectoryOrCreate"}}
        ]),
        json!([
            {"name": "a", "mountPath": "/a"},
            {"name": "b", "mountPath": "/b", "readOnly": true, "subPath": "x/y"},
            {"name": "g", "mountPath": "/g", "mountPropagation": "None"}
        ]),
    );
    assert_eq!(messages(d, &good, None), Vec::<String>::new());
    let cases = [
        (
            json!([{"name": "v"}]),
            json!([]),
            "spec.volumes[0]: Required value: must specify a volume type",
        ),
        (
            json!([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
            json!([]),
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
        ),
        (
            json!([{"name": "v", "nfs": {"server": "s", "path": "/"}}]),
            json!([]),
            "spec.volumes[0].nfs: Forbidden: not supported by Baton",
        ),
        (
            json!([{"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]),
            json!([]),
            "spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: not supported by Baton",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "c", "defaultMode": 0o1000}}]),
            json!([]),
            "spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
        ),
        (
            json!([{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "../k"}]}}]),
            json!([]),
            "spec.volumes[0].configMap.items[0].path: Invalid value: \"../k\": must not contain '..'",
        ),
        (
            json!([{"name": "v", "secret": {}}]),
            json!([]),
            "spec.volumes[0].secret.secretName: Required value",
        ),
        (
            json!([{"name": "v", "hostPath": {"path": "/x", "type": "Dir"}}]),
            json!([]),
            "spec.volumes[0].hostPath.type: Unsupported value: \"Dir\": supported values: \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
        ),
        (
            json!([{"name": "v", "emptyDir": {"sizeLimit": "lots"}}]),
            json!([]),
            "spec.volumes[0].emptyDir.sizeLimit: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            json!([{"name": "v", "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}]),
            json!([]),
            "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"status.podIP\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\"",
        ),
        (
            json!([{"name": "v", "emptyDir": {}}]),
            json!([{"name": "w", "mountPath": "/w"}]),
            "spec.containers[0].volumeMounts[0].name: Not found: \"w\"",
        ),
        (
            json!([{"name": "v", "emptyDir": {}}]),
            json!([{"name": "v", "mountPath": "/w"}, {"name": "v", "mountPath": "/w"}]),
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/w\": must be unique",
        ),
        (
            json!([{"name": "v", "emptyDir": {}}]),
            json!([{"name": "v", "mountPath": "/w", "subPath": "/etc"}]),
            "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"/etc\": must be a relative path",
        ),
        (
            json!([{"name": "v", "emptyDir": {}}]),
            json!([{"name": "v", "mountPath": "/w", "subPathExpr": "$(POD)"}]),
            "spec.containers[0].volumeMounts[0].subPathExpr: Forbidden: not supported by Baton",
        ),
        (
            json!([{"name": "v", "emptyDir": {}}]),
            json!([{"name": "v", "mountPath": "/w", "mountPropagation": "Bidirectional"}]),
            "spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: not supported by Baton",
        ),
    ];
    for (volumes, mounts, want) in cases {
        let got = messages(d, &pod(volumes.clone(), mounts.clone()), None);
        assert!(got.iter().any(|m| m == want), "{volumes} {mounts}: {got:?}");
    }
}

#[test]
fn init_containers_sidecars_and_hooks_are_validated_as_kubernetes_does() {
    let d = def("", "v1", "pods");
    let pod = |init: Value, containers: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "default" },
            "spec": { "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                      "initContainers": init, "containers": containers }
        })
    };
    let app = json!([{"name": "app", "image": "busybox",
        "lifecycle": {"postStart": {"exec": {"command": ["true"]}},
                      "preStop": {"sleep": {"seconds": 2}}}}]);
    let good = pod(
        json!([
            {"name": "setup", "image": "busybox"},
            {"name": "proxy", "image": "busybox", "restartPolicy": "Always",
             "startupProbe": {"tcpSocket": {"port": 80}},
             "lifecycle": {"preStop": {"httpGet": {"path": "/quit", "port": 80}}}}
        ]),
        app.clone(),
    );
    assert_eq!(messages(d, &good, None), Vec::<String>::new());
    let cases = [
        (
            json!([{"name": "app", "image": "busybox"}]),
            app.clone(),
            "spec.containers[0].name: Duplicate value: \"app\"",
        ),
        (
            json!([{"name": "i", "image": "busybox", "restartPolicy": "Never"}]),
            app.clone(),
            "spec.initContainers[0].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ),
        (
            json!([{"name": "i", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}]),
            app.clone(),
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        ),
        (
            json!([{"name": "i", "image": "busybox", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]),
            app.clone(),
            "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always",
        ),
        (
            json!([]),
            json!([{"name": "c", "image": "busybox", "restartPolicy": "Always"}]),
            "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
        ),
        (
            json!([]),
            json!([{"name": "c", "image": "busybox", "lifecycle": {"preStop": {}}}]),
            "spec.containers[0].lifecycle.preStop: Required value: must specify a handler type",
        ),
        (
            json!([]),
            json!([{"name": "c", "image": "busybox", "lifecycle": {"postStart":
                {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}}}]),
            "spec.containers[0].lifecycle.postStart.sleep: Forbidden: may not specify more than 1 handler type",
        ),
    ];
    for (init, containers, want) in cases {
        let got = messages(d, &pod(init.clone(), containers.clone()), None);
        assert!(
            got.iter().any(|m| m == want),
            "{init} {containers}: {got:?}"
        );
    }
}
