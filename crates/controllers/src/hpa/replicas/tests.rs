//! The replica calculator against Kubernetes' formula, case by case (the reasoning beside
//! each expected count).

use super::*;
use k8s_openapi::api::core::v1::{
    Container, PodCondition, PodSpec, PodStatus, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("time")
}

/// A pod started at t(0), Ready since `ready_at` (None: not Ready), requesting `cpu_m`.
fn pod(name: &str, phase: &str, ready_at: Option<i64>, cpu_m: Option<i64>) -> Pod {
    let requests = cpu_m.map(|m| BTreeMap::from([("cpu".to_string(), Q(format!("{m}m")))]));
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: Some(Time(t(0))),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready_at.is_some() { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(t(ready_at.unwrap_or(0)))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn metric(value: i64, at: i64) -> PodMetric {
    PodMetric {
        value,
        timestamp: t(at),
        window: Duration::from_secs(30),
    }
}

/// Runs a Utilization case at t(now) with CPU usage per pod name.
fn util(current: i32, target: i32, pods: &[Pod], usage: &[(&str, i64)], now: i64) -> Utilization {
    let refs: Vec<&Pod> = pods.iter().collect();
    let metrics: PodMetrics = usage
        .iter()
        .map(|(n, v)| (n.to_string(), metric(*v, now)))
        .collect();
    let req = requests(&refs, None, "cpu");
    Calculator::default()
        .utilization(current, target, metrics, &refs, req, true, t(now))
        .expect("a proposal")
}

#[test]
fn utilization_table() {
    // Ready pods (Ready at t(0), measured at t(600): past the 5 min CPU initialization).
    let ready = |n: usize| -> Vec<Pod> {
        (0..n)
            .map(|i| pod(&format!("p{i}"), "Running", Some(0), Some(1000)))
            .collect()
    };
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let usage = |vals: &[i64]| -> Vec<(&str, i64)> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| (names[i].as_str(), *v))
            .collect()
    };
    // 3 pods at 900m of 1000m each, target 50%: utilization 90%, ratio 1.8,
    // ceil(1.8 × 3) = 6.
    let r = util(3, 50, &ready(3), &usage(&[900, 900, 900]), 600);
    assert_eq!((r.replicas, r.utilization, r.raw), (6, 90, 900));
    // 4 pods at 100m: 10% of 50% → ratio 0.2, ceil(0.2 × 4) = 1.
    assert_eq!(util(4, 50, &ready(4), &usage(&[100; 4]), 600).replicas, 1);
    // 2 pods at 540m and 520m: 53% (integer percent of the sums: 1060×100/2000),
    // ratio 1.06 within 0.1 → stays 2.
    let r = util(2, 50, &ready(2), &usage(&[540, 520]), 600);
    assert_eq!((r.replicas, r.utilization), (2, 53));
    // 2 pods at 300m and 320m: 31% → ratio 0.62, ceil(0.62 × 2) = 2 (= current).
    assert_eq!(util(2, 50, &ready(2), &usage(&[300, 320]), 600).replicas, 2);
    // 5 pods at 200m: 20% of 50 → 0.4, ceil(0.4 × 5) = 2.
    assert_eq!(util(5, 50, &ready(5), &usage(&[200; 5]), 600).replicas, 2);
}

#[test]
fn missing_metrics_count_as_full_on_scale_down_and_zero_on_scale_up() {
    let pods: Vec<Pod> = (0..4)
        .map(|i| pod(&format!("p{i}"), "Running", Some(0), Some(1000)))
        .collect();
    // Scale down: p0..p2 at 100m (10% of 50% → 0.2); p3 has no metric and counts as 100%
    // of its request: (300 + 1000) / 4000 = 32% → 0.64, ceil(0.64 × 4) = 3.
    let r = util(4, 50, &pods, &[("p0", 100), ("p1", 100), ("p2", 100)], 600);
    assert_eq!((r.replicas, r.utilization), (3, 10));
    // Scale up: p0..p2 at 1000m (100% → 2.0); p3 counts 0: 3000 / 4000 = 75% → 1.5,
    // ceil(1.5 × 4) = 6.
    let r = util(
        4,
        50,
        &pods,
        &[("p0", 1000), ("p1", 1000), ("p2", 1000)],
        600,
    );
    assert_eq!((r.replicas, r.utilization), (6, 100));
    // Scale up that the missing pod turns around: p0..p2 at 600m (60% → 1.2), with p3 at
    // 0: 1800 / 4000 = 45% → 0.9, below 1 → stays 4.
    assert_eq!(
        util(4, 50, &pods, &[("p0", 600), ("p1", 600), ("p2", 600)], 600).replicas,
        4
    );
}

#[test]
fn unready_pods_are_ignored_and_count_zero_on_scale_up() {
    // p0, p1 Ready at 800m each; p2 Pending (unready). 80% → 1.6 with an unready pod:
    // recompute with p2 at 0: 1600 / 3000 = 53% → 1.06, within 0.1 → stays 3.
    let pods = vec![
        pod("p0", "Running", Some(0), Some(1000)),
        pod("p1", "Running", Some(0), Some(1000)),
        pod("p2", "Pending", None, Some(1000)),
    ];
    assert_eq!(
        util(3, 50, &pods, &[("p0", 800), ("p1", 800)], 600).replicas,
        3
    );
    // Same with 1000m each: 100% → 2.0; recompute 2000 / 3000 = 66% → 1.32,
    // ceil(1.32 × 3) = 4.
    assert_eq!(
        util(3, 50, &pods, &[("p0", 1000), ("p1", 1000)], 600).replicas,
        4
    );
    // Scale down ignores the unready pod entirely: 100m on p0, p1 → 10% → 0.2,
    // ceil(0.2 × 2 ready) = 1.
    assert_eq!(
        util(3, 50, &pods, &[("p0", 100), ("p1", 100)], 600).replicas,
        1
    );
    // Within the CPU initialization period, a pod Ready less than one metric window
    // (30 s) before its sample is unready: p1 Ready at t(100), measured at t(120).
    let pods = vec![
        pod("p0", "Running", Some(0), Some(1000)),
        pod("p1", "Running", Some(100), Some(1000)),
    ];
    // p0 alone: 100% → 2.0, p1 unready → recompute (1000 + 0) / 2000 = 50% → 1.0,
    // within the tolerance → stays 2.
    assert_eq!(
        util(2, 50, &pods, &[("p0", 1000), ("p1", 1000)], 120).replicas,
        2
    );
    // Measured at t(200) instead, p1 counts: 100% → 2.0, ceil(2 × 2) = 4.
    assert_eq!(
        util(2, 50, &pods, &[("p0", 1000), ("p1", 1000)], 200).replicas,
        4
    );
    // Deleting and Failed pods are ignored.
    let mut gone = pod("p1", "Running", Some(0), Some(1000));
    gone.metadata.deletion_timestamp = Some(Time(t(1)));
    let pods = vec![pod("p0", "Running", Some(0), Some(1000)), gone];
    assert_eq!(
        util(2, 50, &pods, &[("p0", 1000), ("p1", 0)], 600).replicas,
        2
    );
}

#[test]
fn errors_are_worded_as_kubernetes() {
    let pods = [pod("p0", "Running", Some(0), None)];
    let refs: Vec<&Pod> = pods.iter().collect();
    let metrics: PodMetrics = [("p0".to_string(), metric(100, 600))].into();
    let e = Calculator::default()
        .utilization(
            1,
            50,
            metrics,
            &refs,
            requests(&refs, None, "cpu"),
            true,
            t(600),
        )
        .expect_err("no requests");
    assert_eq!(e, "missing request for cpu in container c of Pod p0");
    let e = Calculator::default()
        .utilization(
            1,
            50,
            PodMetrics::new(),
            &refs,
            Ok(BTreeMap::new()),
            true,
            t(600),
        )
        .expect_err("no metrics");
    assert_eq!(
        e,
        "did not receive metrics for targeted pods (pods might be unready)"
    );
}

#[test]
fn average_value() {
    let pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("p{i}"), "Running", Some(0), None))
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    let calc = Calculator::default();
    // Memory 64Mi target, pods at 96Mi each (in thousandths of bytes): ratio 1.5,
    // ceil(1.5 × 3) = 5; the usage reported is the average, 96Mi.
    let mi = 1024 * 1024 * 1000;
    let m: PodMetrics = (0..3)
        .map(|i| (format!("p{i}"), metric(96 * mi, 600)))
        .collect();
    let a = calc
        .average_value(3, 64 * mi, m, &refs, false, t(600))
        .expect("proposal");
    assert_eq!((a.replicas, a.usage), (5, 96 * mi));
    // One pod missing on a scale-down counts as the target: (2 × 16Mi + 64Mi) / 3 = 32Mi,
    // ratio 0.5, ceil(0.5 × 3) = 2.
    let m: PodMetrics = (0..2)
        .map(|i| (format!("p{i}"), metric(16 * mi, 600)))
        .collect();
    let a = calc
        .average_value(3, 64 * mi, m, &refs, false, t(600))
        .expect("proposal");
    assert_eq!(a.replicas, 2);
}
