//! The kubelet's events about a pod's containers (failed pulls, back-off, failed starts), so
//! that `kubectl describe pod` shows why a container waits, as it does with a kubelet: the
//! waiting state itself carries only a reason there. Best-effort: a failed event is logged.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// The event about container `container` of `pod`, as the kubelet on `node` words it.
pub fn container_event(
    pod: &Pod,
    container: &str,
    node: &str,
    kind: Kind,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Event {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: Some(ns),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: (!container.is_empty()).then(|| format!("spec.containers{{{container}}}")),
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(
            match kind {
                Kind::Normal => "Normal",
                Kind::Warning => "Warning",
            }
            .into(),
        ),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.into()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.into()),
        action: Some(reason.into()),
        ..Default::default()
    }
}

/// Records an event about a container of `pod`.
pub async fn record(
    client: &Client,
    pod: &Pod,
    container: &str,
    node: &str,
    kind: Kind,
    reason: &str,
    message: &str,
) {
    let ev = container_event(
        pod,
        container,
        node,
        kind,
        reason,
        message,
        Timestamp::now(),
    );
    let ns = ev.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, reason, "recording an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_container_and_the_kubelet() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.namespace = Some("prod".into());
        pod.metadata.uid = Some("u1".into());
        let ev = container_event(
            &pod,
            "c",
            "node1",
            Kind::Warning,
            "Failed",
            "Error: ErrImagePull",
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(ev.metadata.namespace.as_deref(), Some("prod"));
        assert!(
            ev.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web."))
        );
        let o = &ev.involved_object;
        assert_eq!(o.kind.as_deref(), Some("Pod"));
        assert_eq!(o.uid.as_deref(), Some("u1"));
        assert_eq!(o.field_path.as_deref(), Some("spec.containers{c}"));
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.reason.as_deref(), Some("Failed"));
        let src = ev.source.unwrap_or_default();
        assert_eq!(src.component.as_deref(), Some("kubelet"));
        assert_eq!(src.host.as_deref(), Some("node1"));
    }
}
