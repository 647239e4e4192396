//! The event recorder (client-go's `EventBroadcaster` with its sink, in one): events are
//! queued without waiting and one background task correlates them and writes them through
//! the `kube` client, in order. A full queue (1,000 events) drops the newest, as client-go's
//! broadcaster does; an unreachable server is retried (12 tries, 10 s apart); a refusal by
//! the server is logged and the event dropped.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use super::{Correlator, Kind, Source, Write, new_event};
use crate::clock;

/// Events queued and not yet correlated (client-go's `maxQueuedEvents`).
const QUEUE: usize = 1000;
/// Attempts to reach the server per event (client-go's `maxTriesPerEvent`).
const MAX_TRIES: usize = 12;
/// Pause between attempts (client-go's `defaultSleepDuration`).
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Records events from one source. Cheap to clone; clones (and [`Recorder::with_source`])
/// share the queue, the writer and its correlation state.
#[derive(Clone, Debug)]
pub struct Recorder {
    source: Arc<Source>,
    queue: mpsc::Sender<Event>,
}

impl Recorder {
    /// A recorder for `component` (on `host`, for node components) whose writer task runs
    /// on the current tokio runtime until every clone is dropped.
    pub fn new(client: Client, component: &str, host: Option<&str>) -> Recorder {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_all(client, rx));
        Recorder {
            source: Arc::new(Source {
                component: component.to_string(),
                host: host.map(str::to_string),
            }),
            queue,
        }
    }

    /// A recorder for another source that shares this one's writer.
    pub fn with_source(&self, component: &str, host: Option<&str>) -> Recorder {
        Recorder {
            source: Arc::new(Source {
                component: component.to_string(),
                host: host.map(str::to_string),
            }),
            queue: self.queue.clone(),
        }
    }

    /// Records an event about `obj`.
    pub fn publish<K>(&self, obj: &K, kind: Kind, reason: &str, message: impl Into<String>)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_about(reference(obj), kind, reason, message);
    }

    /// Records an event about the object `involved` refers to (a container of a pod: its
    /// `fieldPath`).
    pub fn publish_about(
        &self,
        involved: ObjectReference,
        kind: Kind,
        reason: &str,
        message: impl Into<String>,
    ) {
        let event = new_event(
            &self.source,
            involved,
            kind,
            reason,
            message.into(),
            clock::now(),
        );
        if let Err(e) = self.queue.try_send(event) {
            tracing::debug!(reason, error = %e, "event queue full or closed; event dropped");
        }
    }
}

/// The `involvedObject` reference to `obj`.
pub fn reference<K>(obj: &K) -> ObjectReference
where
    K: Resource<DynamicType = ()>,
{
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: Some(obj.name_any()),
        namespace: obj.namespace(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        ..Default::default()
    }
}

/// The writer: correlates each queued event and writes what the correlator says.
async fn write_all(client: Client, mut queue: mpsc::Receiver<Event>) {
    let mut correlator = Correlator::new();
    while let Some(event) = queue.recv().await {
        let Some(write) = correlator.correlate(event, clock::now()) else {
            tracing::trace!("event dropped by the spam filter");
            continue;
        };
        for attempt in 1..=MAX_TRIES {
            match store(&client, &write).await {
                Ok(stored) => {
                    correlator.written(&write.key, &stored);
                    break;
                }
                Err(kube::Error::Api(status)) => {
                    tracing::debug!(
                        reason = write.event.reason.as_deref().unwrap_or(""),
                        code = status.code,
                        message = %status.message,
                        "the server refused an event"
                    );
                    break;
                }
                Err(e) if attempt < MAX_TRIES => {
                    tracing::debug!(error = %e, attempt, "writing an event failed; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "writing an event failed; dropped");
                }
            }
        }
    }
}

/// Patches the stored event of a repeat (creating it when it is gone) or creates a new one.
async fn store(client: &Client, write: &Write) -> Result<Event, kube::Error> {
    let ns = write
        .event
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    if let (Some(patch), Some(name)) = (&write.patch, &write.event.metadata.name) {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            done => return done,
        }
    }
    let mut event = write.event.clone();
    event.metadata.resource_version = None;
    api.create(&PostParams::default(), &event).await
}
