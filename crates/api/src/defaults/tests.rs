//! Table-driven defaulting tests: each case is (served group, version, resource, input, JSON
//! pointer, expected value).

use serde_json::{Value, json};

use crate::registry::find;

fn defaulted(group: &str, version: &str, resource: &str, obj: Value) -> Value {
    let def = find(group, version, resource).expect("registered resource");
    let mut obj = obj;
    super::apply(def, &mut obj);
    obj
}

fn deployment() -> Value {
    json!({
        "metadata": { "name": "d" },
        "spec": {
            "template": {
                "metadata": { "labels": { "app": "x" } },
                "spec": { "containers": [{ "name": "c", "image": "nginx:1.25", "ports": [{ "containerPort": 80 }] }] }
            }
        }
    })
}

#[test]
fn deployment_defaults_per_version() {
    let max = json!(2_147_483_647);
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        ("apps", "v1", "/spec/replicas", json!(1)),
        ("apps", "v1", "/spec/strategy/type", json!("RollingUpdate")),
        (
            "apps",
            "v1",
            "/spec/strategy/rollingUpdate/maxSurge",
            json!("25%"),
        ),
        (
            "apps",
            "v1",
            "/spec/strategy/rollingUpdate/maxUnavailable",
            json!("25%"),
        ),
        ("apps", "v1", "/spec/revisionHistoryLimit", json!(10)),
        ("apps", "v1", "/spec/progressDeadlineSeconds", json!(600)),
        ("apps", "v1beta2", "/spec/revisionHistoryLimit", json!(10)),
        (
            "apps",
            "v1beta2",
            "/spec/strategy/rollingUpdate/maxSurge",
            json!("25%"),
        ),
        ("apps", "v1beta1", "/spec/revisionHistoryLimit", json!(2)),
        (
            "apps",
            "v1beta1",
            "/spec/progressDeadlineSeconds",
            json!(600),
        ),
        (
            "apps",
            "v1beta1",
            "/spec/strategy/rollingUpdate/maxUnavailable",
            json!("25%"),
        ),
        (
            "apps",
            "v1beta1",
            "/spec/selector",
            json!({ "matchLabels": { "app": "x" } }),
        ),
        ("apps", "v1beta1", "/metadata/labels", json!({ "app": "x" })),
        (
            "extensions",
            "v1beta1",
            "/spec/selector",
            json!({ "matchLabels": { "app": "x" } }),
        ),
        (
            "extensions",
            "v1beta1",
            "/metadata/labels",
            json!({ "app": "x" }),
        ),
        (
            "extensions",
            "v1beta1",
            "/spec/strategy/rollingUpdate/maxSurge",
            json!(1),
        ),
        (
            "extensions",
            "v1beta1",
            "/spec/strategy/rollingUpdate/maxUnavailable",
            json!(1),
        ),
        (
            "extensions",
            "v1beta1",
            "/spec/revisionHistoryLimit",
            max.clone(),
        ),
        (
            "extensions",
            "v1beta1",
            "/spec/progressDeadlineSeconds",
            max,
        ),
        ("extensions", "v1beta1", "/spec/replicas", json!(1)),
        (
            "apps",
            "v1",
            "/spec/template/spec/restartPolicy",
            json!("Always"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/dnsPolicy",
            json!("ClusterFirst"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/schedulerName",
            json!("default-scheduler"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/terminationGracePeriodSeconds",
            json!(30),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/securityContext",
            json!({}),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/containers/0/terminationMessagePath",
            json!("/dev/termination-log"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/containers/0/terminationMessagePolicy",
            json!("File"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/containers/0/imagePullPolicy",
            json!("IfNotPresent"),
        ),
        (
            "apps",
            "v1",
            "/spec/template/spec/containers/0/ports/0/protocol",
            json!("TCP"),
        ),
        (
            "extensions",
            "v1beta1",
            "/spec/template/spec/restartPolicy",
            json!("Always"),
        ),
    ];
    for (group, version, pointer, want) in cases {
        let got = defaulted(group, version, "deployments", deployment());
        assert_eq!(
            got.pointer(pointer),
            Some(&want),
            "{group}/{version} {pointer}"
        );
    }
}

#[test]
fn apps_v1_does_not_default_selector_or_labels_and_templates_get_no_service_links() {
    let got = defaulted("apps", "v1", "deployments", deployment());
    assert_eq!(got.pointer("/spec/selector"), None);
    assert_eq!(got.pointer("/metadata/labels"), None);
    assert_eq!(got.pointer("/spec/template/spec/enableServiceLinks"), None);
}

#[test]
fn explicit_values_are_kept() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!(0);
    d["spec"]["strategy"] = json!({ "type": "Recreate" });
    d["spec"]["selector"] = json!({ "matchLabels": { "app": "y" } });
    d["metadata"]["labels"] = json!({ "owner": "me" });
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["unknownField"] = json!("kept");
    let got = defaulted("extensions", "v1beta1", "deployments", d);
    assert_eq!(got["spec"]["replicas"], json!(0));
    assert_eq!(got["spec"]["strategy"], json!({ "type": "Recreate" }));
    assert_eq!(
        got["spec"]["selector"],
        json!({ "matchLabels": { "app": "y" } })
    );
    assert_eq!(got["metadata"]["labels"], json!({ "owner": "me" }));
    assert_eq!(
        got["spec"]["template"]["spec"]["restartPolicy"],
        json!("Never")
    );
    assert_eq!(got["spec"]["unknownField"], json!("kept"));
}

#[test]
fn image_pull_policy_follows_the_tag() {
    let cases = [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("registry.local:5000/hello", "Always"),
        ("registry.local:5000/hello:v2", "IfNotPresent"),
        ("nginx:1.25", "IfNotPresent"),
        ("nginx@sha256:abcd", "IfNotPresent"),
        ("nginx:latest@sha256:abcd", "Always"),
    ];
    for (image, want) in cases {
        assert_eq!(super::default_image_pull_policy(image), want, "{image}");
    }
}

#[test]
fn pod_defaults() {
    let pod = json!({
        "metadata": { "name": "p" },
        "spec": {
            "containers": [{
                "name": "c", "image": "busybox",
                "resources": { "limits": { "cpu": "1" } },
                "readinessProbe": { "httpGet": { "port": 80 } },
                "env": [{ "name": "N", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }]
            }],
            "volumes": [{ "name": "v" }, { "name": "s", "secret": { "secretName": "x" } }]
        }
    });
    let got = defaulted("", "v1", "pods", pod);
    let cases = [
        ("/spec/enableServiceLinks", json!(true)),
        ("/spec/restartPolicy", json!("Always")),
        ("/spec/containers/0/imagePullPolicy", json!("Always")),
        (
            "/spec/containers/0/resources/requests",
            json!({ "cpu": "1" }),
        ),
        ("/spec/containers/0/readinessProbe/timeoutSeconds", json!(1)),
        ("/spec/containers/0/readinessProbe/periodSeconds", json!(10)),
        (
            "/spec/containers/0/readinessProbe/successThreshold",
            json!(1),
        ),
        (
            "/spec/containers/0/readinessProbe/failureThreshold",
            json!(3),
        ),
        ("/spec/containers/0/readinessProbe/httpGet/path", json!("/")),
        (
            "/spec/containers/0/readinessProbe/httpGet/scheme",
            json!("HTTP"),
        ),
        (
            "/spec/containers/0/env/0/valueFrom/fieldRef/apiVersion",
            json!("v1"),
        ),
        ("/spec/volumes/0/emptyDir", json!({})),
        ("/spec/volumes/1/secret/defaultMode", json!(420)),
    ];
    for (pointer, want) in cases {
        assert_eq!(got.pointer(pointer), Some(&want), "{pointer}");
    }
}

#[test]
fn replica_sets_and_replication_controllers() {
    let rs = json!({ "metadata": { "name": "r" }, "spec": { "template": { "metadata": { "labels": { "app": "x" } }, "spec": { "containers": [] } } } });
    let got = defaulted("apps", "v1", "replicasets", rs.clone());
    assert_eq!(got["spec"]["replicas"], json!(1));
    assert_eq!(got.pointer("/spec/selector"), None);
    let got = defaulted("extensions", "v1beta1", "replicasets", rs);
    assert_eq!(
        got["spec"]["selector"],
        json!({ "matchLabels": { "app": "x" } })
    );
    assert_eq!(got["metadata"]["labels"], json!({ "app": "x" }));

    let rc = json!({ "metadata": { "name": "r" }, "spec": { "template": { "metadata": { "labels": { "app": "x" } }, "spec": { "containers": [{ "name": "c", "image": "i:1" }] } } } });
    let got = defaulted("", "v1", "replicationcontrollers", rc);
    assert_eq!(got["spec"]["selector"], json!({ "app": "x" }));
    assert_eq!(got["metadata"]["labels"], json!({ "app": "x" }));
    assert_eq!(got["spec"]["replicas"], json!(1));
    assert_eq!(
        got["spec"]["template"]["spec"]["dnsPolicy"],
        json!("ClusterFirst")
    );
}

#[test]
fn service_defaults() {
    let svc = json!({ "metadata": { "name": "s" }, "spec": { "selector": { "app": "x" }, "ports": [{ "port": 80 }, { "port": 81, "targetPort": "http" }] } });
    let got = defaulted("", "v1", "services", svc);
    let cases = [
        ("/spec/type", json!("ClusterIP")),
        ("/spec/sessionAffinity", json!("None")),
        ("/spec/ports/0/protocol", json!("TCP")),
        ("/spec/ports/0/targetPort", json!(80)),
        ("/spec/ports/1/targetPort", json!("http")),
        ("/spec/internalTrafficPolicy", json!("Cluster")),
        ("/spec/ipFamilyPolicy", json!("SingleStack")),
        ("/spec/ipFamilies", json!(["IPv4"])),
    ];
    for (pointer, want) in cases {
        assert_eq!(got.pointer(pointer), Some(&want), "{pointer}");
    }
    let lb = json!({ "spec": { "type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{ "port": 80 }] } });
    let got = defaulted("", "v1", "services", lb);
    assert_eq!(got["spec"]["externalTrafficPolicy"], json!("Cluster"));
    assert_eq!(got["spec"]["allocateLoadBalancerNodePorts"], json!(true));
    assert_eq!(
        got["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        json!(10800)
    );
    let ext = json!({ "spec": { "type": "ExternalName", "externalName": "example.com" } });
    let got = defaulted("", "v1", "services", ext);
    assert_eq!(got.pointer("/spec/internalTrafficPolicy"), None);
    assert_eq!(got.pointer("/spec/ipFamilies"), None);
}

#[test]
fn namespace_secret_node_hpa_ingress() {
    let got = defaulted(
        "",
        "v1",
        "namespaces",
        json!({ "metadata": { "name": "team" } }),
    );
    assert_eq!(got["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(got["status"]["phase"], json!("Active"));
    assert_eq!(
        got["metadata"]["labels"]["kubernetes.io/metadata.name"],
        json!("team")
    );
    let got = defaulted(
        "",
        "v1",
        "namespaces",
        json!({ "metadata": { "name": "t" }, "spec": { "finalizers": [] } }),
    );
    assert_eq!(got["spec"]["finalizers"], json!([]));

    let got = defaulted("", "v1", "secrets", json!({ "metadata": { "name": "s" } }));
    assert_eq!(got["type"], json!("Opaque"));

    let got = defaulted(
        "",
        "v1",
        "nodes",
        json!({ "status": { "capacity": { "cpu": "2" } } }),
    );
    assert_eq!(got["status"]["allocatable"], json!({ "cpu": "2" }));

    let got = defaulted(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        json!({ "spec": { "maxReplicas": 3 } }),
    );
    assert_eq!(got["spec"]["minReplicas"], json!(1));
    assert_eq!(got.pointer("/spec/targetCPUUtilizationPercentage"), None);
    let got = defaulted(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        json!({ "spec": { "maxReplicas": 3, "behavior": {} } }),
    );
    assert_eq!(
        got["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        json!(80)
    );
    assert_eq!(
        got["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"],
        json!(0)
    );
    assert_eq!(
        got["spec"]["behavior"]["scaleDown"]["policies"][0]["type"],
        json!("Percent")
    );

    let ing = json!({ "spec": { "rules": [{ "http": { "paths": [{ "path": "/", "backend": { "serviceName": "s", "servicePort": 80 } }] } }] } });
    let got = defaulted("extensions", "v1beta1", "ingresses", ing.clone());
    assert_eq!(
        got["spec"]["rules"][0]["http"]["paths"][0]["pathType"],
        json!("ImplementationSpecific")
    );
    let got = defaulted("networking.k8s.io", "v1", "ingresses", ing);
    assert_eq!(
        got["spec"]["rules"][0]["http"]["paths"][0].get("pathType"),
        None
    );
}

#[test]
fn endpoint_slice_ports_get_a_name_and_tcp() {
    let got = defaulted(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        json!({ "addressType": "IPv4", "ports": [{ "port": 80 }, { "name": "dns", "port": 53, "protocol": "UDP" }] }),
    );
    assert_eq!(
        got["ports"],
        json!([
            { "name": "", "port": 80, "protocol": "TCP" },
            { "name": "dns", "port": 53, "protocol": "UDP" }
        ])
    );
}
