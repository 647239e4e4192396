//! Round-trip tests for every conversion: a served-version object goes to storage and back
//! (the original plus its version's defaults), and a defaulted storage object goes to a served
//! version and back unchanged.

use serde_json::{Value, json};

use super::{ConvertError, from_storage, to_storage};
use crate::registry::{ResourceDef, find};

fn def(group: &str, version: &str, resource: &str) -> &'static ResourceDef {
    find(group, version, resource).expect("registered resource")
}

/// `obj` with its version's defaults and the given type meta.
fn with_defaults(d: &ResourceDef, obj: &Value) -> Value {
    let mut want = obj.clone();
    crate::defaults::apply(d, &mut want);
    want["apiVersion"] = json!(d.api_version());
    want["kind"] = json!(d.kind);
    want
}

fn round_trip_served(d: &ResourceDef, obj: Value) -> Value {
    let stored = to_storage(d, obj).expect("to storage");
    assert_eq!(stored["apiVersion"], json!(d.storage_api_version()));
    from_storage(d, stored).expect("from storage")
}

fn assert_storage_identity(d: &ResourceDef, stored: &Value) {
    let served = from_storage(d, stored.clone()).expect("from storage");
    let back = to_storage(d, served.clone()).expect("to storage");
    assert_eq!(
        &back,
        stored,
        "storage → {} → storage via {served:#}",
        d.api_version()
    );
}

fn template() -> Value {
    json!({
        "metadata": { "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "web", "image": "registry.local/hello:v1", "ports": [{ "containerPort": 8080 }] }] }
    })
}

#[test]
fn deployments_round_trip_through_every_version() {
    let storage = def("apps", "v1", "deployments");
    for (group, version) in [
        ("extensions", "v1beta1"),
        ("apps", "v1beta1"),
        ("apps", "v1beta2"),
        ("apps", "v1"),
    ] {
        let d = def(group, version, "deployments");
        let original = json!({
            "apiVersion": d.api_version(), "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "default", "annotations": { "a": "b" } },
            "spec": { "replicas": 3, "minReadySeconds": 2, "template": template(), "futureField": { "x": 1 } },
            "status": { "replicas": 3, "updatedReplicas": 3, "conditions": [{ "type": "Available", "status": "True" }] }
        });
        let mut want = with_defaults(d, &original);
        if d.group == "apps" && d.version != "v1beta1" {
            // apps/v1 and v1beta2 do not default the selector; give one for validity.
            want["spec"]["selector"] = json!({ "matchLabels": { "app": "web" } });
        }
        let mut input = original.clone();
        input["spec"]["selector"] = want["spec"]["selector"].clone();
        let got = round_trip_served(d, input);
        assert_eq!(got, want, "{group}/{version}");

        let mut stored = to_storage(d, want.clone()).expect("to storage");
        stored["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(stored["apiVersion"], json!("apps/v1"));
        assert_storage_identity(d, &stored);
        assert_storage_identity(storage, &stored);
    }
}

#[test]
fn rollback_to_is_dropped_on_the_way_in() {
    for (group, version) in [("extensions", "v1beta1"), ("apps", "v1beta1")] {
        let d = def(group, version, "deployments");
        let obj = json!({ "metadata": { "name": "web" }, "spec": { "rollbackTo": { "revision": 1 }, "template": template() } });
        let stored = to_storage(d, obj).expect("to storage");
        assert_eq!(stored["spec"].get("rollbackTo"), None);
        let back = from_storage(d, stored).expect("from storage");
        assert_eq!(back["spec"].get("rollbackTo"), None);
    }
}

#[test]
fn legacy_deployment_defaults_survive_in_storage() {
    let d = def("extensions", "v1beta1", "deployments");
    let stored = to_storage(
        d,
        json!({ "metadata": { "name": "web" }, "spec": { "template": template() } }),
    )
    .expect("ok");
    assert_eq!(
        stored["spec"]["selector"],
        json!({ "matchLabels": { "app": "web" } })
    );
    assert_eq!(
        stored["spec"]["strategy"]["rollingUpdate"],
        json!({ "maxUnavailable": 1, "maxSurge": 1 })
    );
    assert_eq!(stored["spec"]["revisionHistoryLimit"], json!(2_147_483_647));
    assert_eq!(
        stored["spec"]["progressDeadlineSeconds"],
        json!(2_147_483_647)
    );
    // An apps/v1 object read through extensions/v1beta1 keeps its apps/v1 values.
    let apps = to_storage(def("apps", "v1", "deployments"), json!({ "metadata": { "name": "web" }, "spec": { "selector": { "matchLabels": { "app": "web" } }, "template": template() } })).expect("ok");
    let legacy = from_storage(d, apps).expect("ok");
    assert_eq!(legacy["apiVersion"], json!("extensions/v1beta1"));
    assert_eq!(legacy["spec"]["revisionHistoryLimit"], json!(10));
    assert_eq!(
        legacy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        json!("25%")
    );
}

#[test]
fn replica_sets_round_trip() {
    let d = def("extensions", "v1beta1", "replicasets");
    let original = json!({ "metadata": { "name": "rs" }, "spec": { "replicas": 2, "template": template() }, "status": { "replicas": 2 } });
    let want = with_defaults(d, &original);
    assert_eq!(round_trip_served(d, original), want);
    let stored = to_storage(d, want).expect("ok");
    assert_eq!(
        stored["spec"]["selector"],
        json!({ "matchLabels": { "app": "web" } })
    );
    assert_storage_identity(d, &stored);
}

#[test]
fn storage_versions_only_set_type_meta() {
    for (group, version, resource) in [
        ("", "v1", "pods"),
        ("", "v1", "services"),
        ("", "v1", "replicationcontrollers"),
        ("", "v1", "namespaces"),
        ("networking.k8s.io", "v1", "ingresses"),
    ] {
        let d = def(group, version, resource);
        let stored = to_storage(d, json!({ "metadata": { "name": "x" }, "spec": {} })).expect("ok");
        assert_eq!(stored["apiVersion"], json!(d.api_version()));
        assert_eq!(stored["kind"], json!(d.kind));
        assert_storage_identity(d, &stored);
    }
}

fn legacy_ingress() -> Value {
    json!({
        "metadata": { "name": "ing" },
        "spec": {
            "ingressClassName": "baton",
            "backend": { "serviceName": "default-svc", "servicePort": 80 },
            "tls": [{ "hosts": ["a.example"], "secretName": "tls" }],
            "rules": [{
                "host": "a.example",
                "http": { "paths": [
                    { "path": "/", "backend": { "serviceName": "web", "servicePort": "http" } },
                    { "path": "/api", "pathType": "Prefix", "backend": { "serviceName": "api", "servicePort": 8080 } },
                    { "path": "/static", "backend": { "resource": { "apiGroup": "example.com", "kind": "Bucket", "name": "b" } } }
                ] }
            }]
        },
        "status": { "loadBalancer": { "ingress": [{ "ip": "10.0.0.1" }] } }
    })
}

#[test]
fn ingress_backends_convert_both_ways() {
    let d = def("extensions", "v1beta1", "ingresses");
    let stored = to_storage(d, legacy_ingress()).expect("ok");
    assert_eq!(
        stored["spec"]["defaultBackend"],
        json!({ "service": { "name": "default-svc", "port": { "number": 80 } } })
    );
    let paths = &stored["spec"]["rules"][0]["http"]["paths"];
    assert_eq!(
        paths[0]["backend"],
        json!({ "service": { "name": "web", "port": { "name": "http" } } })
    );
    assert_eq!(paths[0]["pathType"], json!("ImplementationSpecific"));
    assert_eq!(paths[1]["pathType"], json!("Prefix"));
    assert_eq!(
        paths[1]["backend"]["service"]["port"],
        json!({ "number": 8080 })
    );
    assert_eq!(
        paths[2]["backend"],
        json!({ "resource": { "apiGroup": "example.com", "kind": "Bucket", "name": "b" } })
    );

    let want = with_defaults(d, &legacy_ingress());
    assert_eq!(round_trip_served(d, legacy_ingress()), want);
    assert_storage_identity(d, &stored);
}

#[test]
fn ingress_unconvertible_values_are_errors() {
    let d = def("extensions", "v1beta1", "ingresses");
    let bad = json!({ "spec": { "backend": { "serviceName": "s", "servicePort": true } } });
    assert_eq!(
        to_storage(d, bad),
        Err(ConvertError::Unconvertible(
            "spec.backend.servicePort: must be a port number or a port name, not true".into()
        ))
    );
    let both = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "spec": { "defaultBackend": { "service": { "name": "s", "port": { "name": "http", "number": 80 } } } } });
    assert!(
        matches!(from_storage(d, both), Err(ConvertError::Unconvertible(m)) if m.starts_with("spec.defaultBackend.service.port"))
    );
}

#[test]
fn hpa_round_trips() {
    let d = def("autoscaling", "v1", "horizontalpodautoscalers");
    let original = json!({
        "metadata": { "name": "h" },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" }, "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60 },
        "status": { "currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40 }
    });
    let stored = to_storage(d, original.clone()).expect("ok");
    assert_eq!(stored["apiVersion"], json!("autoscaling/v2"));
    assert_eq!(
        stored["spec"]["metrics"],
        json!([{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 60 } } }])
    );
    assert_eq!(
        stored["status"]["currentMetrics"],
        json!([{ "type": "Resource", "resource": { "name": "cpu", "current": { "averageUtilization": 40 } } }])
    );
    assert_eq!(
        from_storage(d, stored.clone()).expect("ok"),
        with_defaults(d, &original)
    );
    assert_storage_identity(d, &stored);

    // No target: v2's 80% default, which v1 then shows.
    let bare = json!({ "metadata": { "name": "h" }, "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 5 } });
    let back = round_trip_served(d, bare);
    assert_eq!(back["spec"]["targetCPUUtilizationPercentage"], json!(80));
    assert_eq!(back["spec"]["minReplicas"], json!(1));

    // A v2 object with more than v1 can say survives a trip through v1.
    let v2 = def("autoscaling", "v2", "horizontalpodautoscalers");
    let rich = to_storage(v2, json!({
        "metadata": { "name": "h", "labels": { "x": "y" } },
        "spec": {
            "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 5,
            "metrics": [
                { "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 50 } } },
                { "type": "Resource", "resource": { "name": "memory", "target": { "type": "AverageValue", "averageValue": "100Mi" } } }
            ],
            "behavior": { "scaleDown": { "stabilizationWindowSeconds": 60 } }
        },
        "status": { "conditions": [{ "type": "AbleToScale", "status": "True" }], "currentMetrics": [] }
    })).expect("ok");
    let as_v1 = from_storage(d, rich.clone()).expect("ok");
    assert_eq!(as_v1["spec"]["targetCPUUtilizationPercentage"], json!(50));
    assert!(
        as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .is_some_and(|s| s.contains("memory"))
    );
    assert!(
        as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"].is_string()
    );
    let mut want = rich.clone();
    // An empty currentMetrics list has no v1 form.
    want["status"]
        .as_object_mut()
        .expect("status")
        .shift_remove("currentMetrics");
    assert_eq!(to_storage(d, as_v1).expect("ok"), want);
}

#[test]
fn hpa_bad_annotation_is_an_error() {
    let d = def("autoscaling", "v1", "horizontalpodautoscalers");
    let bad = json!({ "metadata": { "annotations": { "autoscaling.alpha.kubernetes.io/metrics": "{" } }, "spec": { "maxReplicas": 1 } });
    assert!(
        matches!(to_storage(d, bad), Err(ConvertError::Unconvertible(m)) if m.contains("autoscaling.alpha.kubernetes.io/metrics"))
    );
}

#[test]
fn events_round_trip() {
    let d = def("events.k8s.io", "v1", "events");
    let original = json!({
        "metadata": { "name": "web.1", "namespace": "default" },
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "series": { "count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z" },
        "reportingController": "deployment-controller",
        "reportingInstance": "baton",
        "action": "Scale",
        "reason": "ScalingReplicaSet",
        "regarding": { "kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1" },
        "related": { "kind": "ReplicaSet", "name": "web-abc" },
        "note": "Scaled up replica set web-abc to 3",
        "type": "Normal",
        "deprecatedSource": { "component": "deployment-controller" },
        "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z",
        "deprecatedLastTimestamp": "2024-01-01T00:01:00Z",
        "deprecatedCount": 2
    });
    let stored = to_storage(d, original.clone()).expect("ok");
    assert_eq!(stored["apiVersion"], json!("v1"));
    for (field, value) in [
        ("involvedObject", &original["regarding"]),
        ("message", &original["note"]),
        ("count", &original["deprecatedCount"]),
        ("firstTimestamp", &original["deprecatedFirstTimestamp"]),
        ("lastTimestamp", &original["deprecatedLastTimestamp"]),
        ("source", &original["deprecatedSource"]),
        ("reportingComponent", &original["reportingController"]),
        ("reportingInstance", &original["reportingInstance"]),
        ("eventTime", &original["eventTime"]),
        ("series", &original["series"]),
        ("related", &original["related"]),
    ] {
        assert_eq!(&stored[field], value, "{field}");
    }
    assert_eq!(
        round_trip_served(d, original.clone()),
        with_defaults(d, &original)
    );
    assert_storage_identity(d, &stored);
}

#[test]
fn hpa_controller_status_shows_in_v1() {
    // The controller's CPU status carries averageValue too: v1 shows the utilization and
    // keeps the whole metric in the annotation, and the trip back is exact.
    let v2 = def("autoscaling", "v2", "horizontalpodautoscalers");
    let d = def("autoscaling", "v1", "horizontalpodautoscalers");
    let stored = to_storage(v2, json!({
        "metadata": { "name": "h" },
        "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 5 },
        "status": { "currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
            { "type": "Resource", "resource": { "name": "cpu", "current": { "averageUtilization": 12, "averageValue": "12m" } } }
        ] }
    }))
    .expect("ok");
    let as_v1 = from_storage(d, stored.clone()).expect("ok");
    assert_eq!(
        as_v1["status"]["currentCPUUtilizationPercentage"],
        json!(12)
    );
    assert!(
        as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/current-metrics"]
            .as_str()
            .is_some_and(|s| s.contains("12m"))
    );
    assert_eq!(to_storage(d, as_v1).expect("ok"), stored);
}
