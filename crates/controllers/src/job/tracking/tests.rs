use super::*;
use k8s_openapi::api::batch::v1::{
    JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern,
};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).expect("timestamp")
}

fn set(v: &[i32]) -> BTreeSet<i32> {
    v.iter().copied().collect()
}

#[test]
fn completed_indexes_round_trip() {
    let cases: &[(&[i32], &str)] = &[
        (&[], ""),
        (&[0], "0"),
        (&[0, 1, 2], "0-2"),
        (&[1, 3, 4, 5, 7], "1,3-5,7"),
        (&[0, 2, 4], "0,2,4"),
    ];
    for (indexes, text) in cases {
        assert_eq!(format_indexes(&set(indexes)), *text);
        assert_eq!(parse_indexes(text, 10), set(indexes), "{text}");
    }
    // Indexes at or past completions are dropped (an elastic Job scaled down).
    assert_eq!(parse_indexes("1,3-5,9", 5), set(&[1, 3, 4]));
    assert_eq!(
        first_pending_indexes(5, &set(&[0, 2]), &set(&[1]), 2),
        vec![3, 4]
    );
    assert_eq!(
        first_pending_indexes(3, &set(&[0, 1, 2]), &set(&[]), 2),
        Vec::<i32>::new()
    );
}

#[test]
fn completion_accounting() {
    // (completions, parallelism, succeeded, active) -> want active
    let cases = [
        (Some(5), 2, 0, 0, 2),
        (Some(5), 2, 4, 1, 1),
        (Some(5), 2, 5, 0, 0),
        (Some(5), 10, 1, 0, 4),
        (None, 3, 0, 0, 3),
        (None, 3, 1, 2, 2),
        (Some(1), 0, 0, 1, 0),
    ];
    for (c, p, s, a, want) in cases {
        assert_eq!(want_active(c, p, s, a), want, "{c:?} {p} {s} {a}");
    }
    assert!(is_complete(Some(5), 5, 0));
    assert!(!is_complete(Some(5), 5, 1));
    assert!(!is_complete(Some(5), 4, 0));
    assert!(is_complete(None, 1, 0));
    assert!(!is_complete(None, 0, 0));
}

#[test]
fn backoff_doubles_from_ten_seconds_and_resets_on_success() {
    let b = Backoff::default().update(vec![], vec![at(100)]);
    assert_eq!(b.failures_after_last_success, 1);
    assert_eq!(b.remaining(at(103)), Duration::from_secs(7));
    let b = b.update(vec![], vec![at(120), at(110)]);
    assert_eq!(b.failures_after_last_success, 3);
    assert_eq!(b.last_failure, Some(at(120)));
    assert_eq!(b.remaining(at(120)), Duration::from_secs(40));
    assert_eq!(b.remaining(at(200)), Duration::ZERO);
    let mut many = b;
    many.failures_after_last_success = 30;
    assert_eq!(many.remaining(at(120)), BACKOFF_MAX);
    // A success clears failures before it; later ones still count.
    let b = b.update(vec![at(130)], vec![at(125), at(140)]);
    assert_eq!(b.failures_after_last_success, 1);
    assert_eq!(b.last_failure, Some(at(140)));
    let b = b.update(vec![at(150)], vec![]);
    assert_eq!(b, Backoff::default());
}

fn failed_pod(name: &str, code: i32, conditions: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some("Failed".into()),
            conditions: Some(
                conditions
                    .iter()
                    .map(|(t, s)| PodCondition {
                        type_: t.to_string(),
                        status: s.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        finished_at: Some(Time(at(50))),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn job_with_policy(rules: Vec<PodFailurePolicyRule>) -> Job {
    Job {
        spec: Some(JobSpec {
            pod_failure_policy: Some(PodFailurePolicy { rules }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pod_failure_policy_first_matching_rule_wins() {
    let exit = |action: &str, op: &str, values: Vec<i32>| PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: None,
            operator: op.into(),
            values,
        }),
        on_pod_conditions: None,
    };
    let job = job_with_policy(vec![
        PodFailurePolicyRule {
            action: "Ignore".into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: "DisruptionTarget".into(),
                status: Some("True".into()),
            }]),
        },
        exit("FailJob", "In", vec![42]),
        exit("Count", "NotIn", vec![42]),
    ]);
    assert_eq!(
        match_failure_policy(&job, &failed_pod("p", 42, &[])),
        FailureAction::FailJob(
            "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                .into()
        )
    );
    assert_eq!(
        match_failure_policy(&job, &failed_pod("p", 42, &[("DisruptionTarget", "True")])),
        FailureAction::Ignore
    );
    assert_eq!(
        match_failure_policy(&job, &failed_pod("p", 1, &[])),
        FailureAction::Count
    );
    assert_eq!(finish_time(&failed_pod("p", 1, &[]), at(99)), at(50));
}

#[test]
fn deleted_pods_count_as_failed_unless_only_failed_pods_are_replaced() {
    let mut pod = Pod::default();
    pod.metadata.deletion_timestamp = Some(Time(at(10)));
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    let plain = Job {
        spec: Some(JobSpec::default()),
        ..Default::default()
    };
    assert!(is_failed(&pod, &plain));
    assert!(is_terminating(&pod));
    let failed_only = Job {
        spec: Some(JobSpec {
            pod_replacement_policy: Some("Failed".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(!is_failed(&pod, &failed_only));
    // Once its node has finished it (grace 0), it failed whatever the policy.
    pod.metadata.deletion_grace_period_seconds = Some(0);
    assert!(is_failed(&pod, &failed_only));
    assert!(!is_terminating(&pod));
}
