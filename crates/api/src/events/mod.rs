//! Events: core/v1 Event objects worded as Kubernetes' components write them, and the one
//! event recorder every Baton component uses (controllers, scheduler, node agent, Ingress).
//!
//! The recorder follows client-go's `tools/record`: events are queued and written in the
//! background (recording never blocks or fails a reconcile), and before writing, the
//! [`correlator`] (Kubernetes' `EventCorrelator`) folds repeats into counts — an identical
//! event becomes a PATCH of `count` and `lastTimestamp` of the one already written, ten similar
//! events (same object and reason, different messages) within ten minutes become one
//! "(combined from similar events)" event — and drops what exceeds a rate per object
//! (a token bucket of 25, refilled one every five minutes). `kubectl describe` then shows
//! `(x3 over 10s)` as it does against Kubernetes.
//!
//! # Layout
//! - this module: [`Kind`] and [`new_event`], the event as a component first words it (pure).
//! - [`correlator`]: aggregation, repeat counting and the spam filter (pure; time passed in).
//! - `recorder` (feature `client`): [`Recorder`], the queue and the writer over the `kube`
//!   client.

pub mod correlator;
#[cfg(feature = "client")]
mod recorder;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

pub use correlator::{Correlator, Write};
#[cfg(feature = "client")]
pub use recorder::{Recorder, reference};

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

impl Kind {
    /// The `type` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Normal => "Normal",
            Kind::Warning => "Warning",
        }
    }
}

/// Who writes an event: `source.component` (e.g. `deployment-controller`, `kubelet`) and,
/// for node components, `source.host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub component: String,
    pub host: Option<String>,
}

/// The event `source` records about `involved` at `now`, before correlation: count 1, first
/// and last timestamp `now`, named `<object>.<nanoseconds in hex>` as client-go names them.
pub fn new_event(
    source: &Source,
    involved: ObjectReference,
    kind: Kind,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Event {
    let name = involved.name.clone().unwrap_or_default();
    let namespace = involved
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let instance = source
        .host
        .clone()
        .unwrap_or_else(|| source.component.clone());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace),
            ..Default::default()
        },
        involved_object: involved,
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some(kind.as_str().to_string()),
        source: Some(EventSource {
            component: Some(source.component.clone()),
            host: source.host.clone(),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        reporting_component: Some(source.component.clone()),
        reporting_instance: Some(instance),
        action: Some(reason.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_object_and_source() {
        let involved = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some("web".into()),
            namespace: Some("prod".into()),
            uid: Some("u1".into()),
            field_path: Some("spec.containers{c}".into()),
            ..Default::default()
        };
        let source = Source {
            component: "kubelet".into(),
            host: Some("node1".into()),
        };
        let ev = new_event(
            &source,
            involved,
            Kind::Warning,
            "Failed",
            "Error: ErrImagePull".into(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(ev.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(ev.metadata.name.as_deref(), Some("web.0"));
        assert_eq!(
            ev.involved_object.field_path.as_deref(),
            Some("spec.containers{c}")
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.count, Some(1));
        let src = ev.source.unwrap_or_default();
        assert_eq!(src.component.as_deref(), Some("kubelet"));
        assert_eq!(src.host.as_deref(), Some("node1"));
        assert_eq!(ev.reporting_instance.as_deref(), Some("node1"));
    }

    #[test]
    fn cluster_scoped_objects_get_their_events_in_default() {
        let involved = ObjectReference {
            kind: Some("Node".into()),
            name: Some("n1".into()),
            ..Default::default()
        };
        let source = Source {
            component: "kubelet".into(),
            host: None,
        };
        let ev = new_event(
            &source,
            involved,
            Kind::Normal,
            "Starting",
            String::new(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(ev.metadata.namespace.as_deref(), Some("default"));
    }
}
