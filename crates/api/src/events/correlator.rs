//! Kubernetes' `EventCorrelator` (client-go `tools/record/events_cache.go`), pure: given an
//! event and the time, what to write — a new event, a patch of one already written, or
//! nothing.
//!
//! Three steps, in client-go's order:
//! 1. Aggregation: events with the same source, object, type and reason but different
//!    messages are counted per ten-minute window; from the tenth distinct message on they are
//!    written as one event, "(combined from similar events): <latest message>", keyed without
//!    the message so that later ones patch it.
//! 2. Observation: an event whose key (source, object incl. field path, type, reason,
//!    message) was written before becomes a patch of that event: `count` + 1, `lastTimestamp`
//!    now, the first timestamp and name kept.
//! 3. Spam filter: a token bucket per source and object (and type): 25 events at once, then
//!    one per five minutes; the rest are dropped (their counts still advance, so the next
//!    written patch shows every occurrence).
//!
//! Each cache keeps at most [`CACHE_ENTRIES`] keys, the least recently used dropped first.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// Keys kept per cache (client-go's `maxLruCacheEntries`).
pub const CACHE_ENTRIES: usize = 4096;
/// Distinct messages within [`AGGREGATE_WINDOW`] after which similar events are combined.
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// The aggregation window (client-go's `defaultAggregateIntervalInSeconds`).
pub const AGGREGATE_WINDOW: SignedDuration = SignedDuration::from_secs(600);
/// Events one object may get at once (client-go's `defaultSpamBurst`).
pub const SPAM_BURST: i128 = 25;
/// One more event per object this often (client-go's `defaultSpamQPS`, 1/300).
pub const SPAM_REFILL: SignedDuration = SignedDuration::from_secs(300);
/// The message prefix of a combined event.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// What to write for one recorded event.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    /// The correlator's key for the event; pass it back with the written event to
    /// [`Correlator::written`].
    pub key: String,
    /// The event as it should be stored (a repeat carries the first event's name and count).
    pub event: Event,
    /// For a repeat: the merge patch (`count`, `lastTimestamp`, `message`) of the stored
    /// event named in `event`. If that event is gone, `event` is created instead.
    pub patch: Option<Value>,
}

/// The correlator's state: three bounded caches.
#[derive(Debug, Default)]
pub struct Correlator {
    similar: Lru<Similar>,
    seen: Lru<Seen>,
    buckets: Lru<Bucket>,
}

/// Distinct messages of similar events in the current window.
#[derive(Debug)]
struct Similar {
    messages: HashSet<String>,
    last: Timestamp,
}

/// The stored event a key last became.
#[derive(Clone, Debug)]
struct Seen {
    count: i32,
    first: Option<Time>,
    name: String,
}

/// A passive token bucket; its tokens counted in nanoseconds of refill time, so that the
/// arithmetic is exact.
#[derive(Debug)]
struct Bucket {
    credit: i128,
    at: Timestamp,
}

impl Correlator {
    pub fn new() -> Correlator {
        Correlator::default()
    }

    /// What to write for `event`, recorded at `now`; `None` when the spam filter drops it.
    pub fn correlate(&mut self, event: Event, now: Timestamp) -> Option<Write> {
        let (event, key) = self.aggregate(event, now);
        let (event, patch) = self.observe(event, &key);
        if !self.accept(&event, now) {
            return None;
        }
        Some(Write { key, event, patch })
    }

    /// Remembers what the server stored for `key` (its name and count), so the next repeat
    /// patches that event.
    pub fn written(&mut self, key: &str, stored: &Event) {
        self.seen.put(
            key.to_string(),
            Seen {
                count: stored.count.unwrap_or(1),
                first: stored.first_timestamp.clone(),
                name: stored.metadata.name.clone().unwrap_or_default(),
            },
        );
    }

    fn aggregate(&mut self, event: Event, now: Timestamp) -> (Event, String) {
        let group = similar_key(&event);
        let message = event.message.clone().unwrap_or_default();
        let record = self.similar.entry(group.clone(), || Similar {
            messages: HashSet::new(),
            last: now,
        });
        if now.duration_since(record.last) > AGGREGATE_WINDOW {
            record.messages.clear();
        }
        record.messages.insert(message.clone());
        record.last = now;
        if record.messages.len() < AGGREGATE_MAX_EVENTS {
            let key = event_key(&event);
            return (event, key);
        }
        // Keep the set from growing past the threshold (client-go pops any one).
        if let Some(any) = record.messages.iter().next().cloned() {
            record.messages.remove(&any);
        }
        let name = event.involved_object.name.clone().unwrap_or_default();
        let mut combined = event;
        combined.metadata.name = Some(format!("{name}.{:x}", now.as_nanosecond()));
        combined.metadata.resource_version = None;
        combined.message = Some(format!("{COMBINED_PREFIX}{message}"));
        combined.count = Some(1);
        combined.first_timestamp = Some(Time(now));
        combined.last_timestamp = Some(Time(now));
        combined.event_time = Some(MicroTime(now));
        (combined, group)
    }

    fn observe(&mut self, mut event: Event, key: &str) -> (Event, Option<Value>) {
        let patch = match self.seen.get(key).cloned() {
            Some(seen) if seen.count > 0 => {
                event.metadata.name = Some(seen.name);
                event.count = Some(seen.count.saturating_add(1));
                // `kubectl describe` counts "over" from eventTime when it is set.
                event.event_time = seen.first.as_ref().map(|t| MicroTime(t.0));
                event.first_timestamp = seen.first;
                Some(json!({
                    "count": event.count,
                    "lastTimestamp": event.last_timestamp,
                    "message": event.message,
                }))
            }
            _ => None,
        };
        self.written(key, &event);
        (event, patch)
    }

    fn accept(&mut self, event: &Event, now: Timestamp) -> bool {
        let token = SPAM_REFILL.as_nanos();
        let bucket = self.buckets.entry(spam_key(event), || Bucket {
            credit: SPAM_BURST * token,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_nanos().max(0);
        bucket.credit = (bucket.credit + elapsed).min(SPAM_BURST * token);
        bucket.at = now;
        if bucket.credit >= token {
            bucket.credit -= token;
            true
        } else {
            false
        }
    }
}

/// Fields joined with a separator no name or reason contains.
fn join(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

/// Source, object and type: what the spam filter counts per, and what the other keys extend.
fn object_parts(e: &Event) -> Vec<&str> {
    let (component, host) = source(e);
    let o = &e.involved_object;
    vec![
        component,
        host,
        o.kind.as_deref().unwrap_or(""),
        o.namespace.as_deref().unwrap_or(""),
        o.name.as_deref().unwrap_or(""),
        o.uid.as_deref().unwrap_or(""),
        o.api_version.as_deref().unwrap_or(""),
        e.type_.as_deref().unwrap_or(""),
    ]
}

fn spam_key(e: &Event) -> String {
    join(&object_parts(e))
}

/// Everything but the message (and field path): what similar events share.
fn similar_key(e: &Event) -> String {
    let mut parts = object_parts(e);
    parts.extend([
        e.reason.as_deref().unwrap_or(""),
        e.reporting_component.as_deref().unwrap_or(""),
        e.reporting_instance.as_deref().unwrap_or(""),
    ]);
    join(&parts)
}

/// What makes two events the same event.
fn event_key(e: &Event) -> String {
    let mut parts = object_parts(e);
    parts.extend([
        e.involved_object.field_path.as_deref().unwrap_or(""),
        e.reason.as_deref().unwrap_or(""),
        e.message.as_deref().unwrap_or(""),
    ]);
    join(&parts)
}

fn source(e: &Event) -> (&str, &str) {
    let s = e.source.as_ref();
    (
        s.and_then(|s| s.component.as_deref()).unwrap_or(""),
        s.and_then(|s| s.host.as_deref()).unwrap_or(""),
    )
}

/// A map that keeps about [`CACHE_ENTRIES`] of its most recently used keys: when it grows
/// past that, the keys not used in the last half of that many uses are dropped (amortized
/// O(1), unlike an exact LRU without a linked list).
#[derive(Debug)]
struct Lru<V> {
    map: HashMap<String, (u64, V)>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            map: HashMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn get(&mut self, key: &str) -> Option<&V> {
        let tick = self.touch();
        self.map.get_mut(key).map(|(used, v)| {
            *used = tick;
            &*v
        })
    }

    fn put(&mut self, key: String, value: V) {
        let tick = self.touch();
        self.make_room(&key, tick);
        self.map.insert(key, (tick, value));
    }

    fn entry(&mut self, key: String, new: impl FnOnce() -> V) -> &mut V {
        let tick = self.touch();
        self.make_room(&key, tick);
        let slot = self.map.entry(key).or_insert_with(|| (tick, new()));
        slot.0 = tick;
        &mut slot.1
    }

    /// Before `key` is added: if the map is full, drops the keys not used lately.
    fn make_room(&mut self, key: &str, tick: u64) {
        if self.map.len() >= CACHE_ENTRIES && !self.map.contains_key(key) {
            let keep_from = tick.saturating_sub((CACHE_ENTRIES / 2) as u64);
            self.map.retain(|_, (used, _)| *used >= keep_from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Kind, Source, new_event};
    use k8s_openapi::api::core::v1::ObjectReference;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("time")
    }

    fn rs(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("ReplicaSet".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn ev(obj: &str, reason: &str, message: &str, now: Timestamp) -> Event {
        let source = Source {
            component: "replicaset-controller".into(),
            host: None,
        };
        new_event(&source, rs(obj), Kind::Normal, reason, message.into(), now)
    }

    /// Stores what the correlator asked for, as the API server would.
    fn store(c: &mut Correlator, w: &Write) {
        c.written(&w.key, &w.event);
    }

    #[test]
    fn an_identical_event_patches_the_first_one() {
        let mut c = Correlator::new();
        let first = c
            .correlate(ev("a", "FailedCreate", "quota", at(0)), at(0))
            .expect("written");
        assert!(first.patch.is_none());
        store(&mut c, &first);
        let mut last = None;
        for i in 1..3 {
            let w = c
                .correlate(ev("a", "FailedCreate", "quota", at(i * 5)), at(i * 5))
                .expect("written");
            store(&mut c, &w);
            last = Some(w);
        }
        let w = last.expect("repeats");
        assert_eq!(w.event.metadata.name, first.event.metadata.name);
        assert_eq!(w.event.count, Some(3));
        assert_eq!(w.event.first_timestamp, Some(Time(at(0))));
        assert_eq!(w.event.event_time, Some(MicroTime(at(0))));
        assert_eq!(
            w.patch,
            Some(json!({
                "count": 3,
                "lastTimestamp": Time(at(10)),
                "message": "quota",
            }))
        );
    }

    #[test]
    fn the_tenth_distinct_message_is_combined_and_later_ones_patch_it() {
        let mut c = Correlator::new();
        let mut writes = Vec::new();
        for i in 0..12 {
            let msg = format!("Created pod: web-{i}");
            let w = c
                .correlate(ev("a", "SuccessfulCreate", &msg, at(i)), at(i))
                .expect("under the burst");
            store(&mut c, &w);
            writes.push(w);
        }
        for w in &writes[..9] {
            assert!(w.patch.is_none());
            assert_eq!(w.event.count, Some(1));
            assert!(
                !w.event
                    .message
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("(combined")
            );
        }
        let combined = &writes[9];
        assert!(
            combined.patch.is_none(),
            "the first combined event is created"
        );
        assert_eq!(
            combined.event.message.as_deref(),
            Some("(combined from similar events): Created pod: web-9")
        );
        for (n, w) in writes[10..].iter().enumerate() {
            assert_eq!(w.event.metadata.name, combined.event.metadata.name);
            assert_eq!(w.event.count, Some(n as i32 + 2));
            assert!(w.patch.is_some());
        }
        // Another object, another reason: not combined.
        let other = c
            .correlate(
                ev("b", "SuccessfulCreate", "Created pod: x", at(20)),
                at(20),
            )
            .expect("written");
        assert_eq!(other.event.count, Some(1));
        let reason = c
            .correlate(
                ev("a", "SuccessfulDelete", "Deleted pod: x", at(20)),
                at(20),
            )
            .expect("written");
        assert_eq!(reason.event.message.as_deref(), Some("Deleted pod: x"));
    }

    #[test]
    fn similar_events_are_counted_per_ten_minutes() {
        let mut c = Correlator::new();
        for i in 0..9 {
            let w = c
                .correlate(ev("a", "R", &format!("m{i}"), at(i * 70)), at(i * 70))
                .expect("written");
            assert!(w.patch.is_none());
        }
        // 11 minutes after the ninth: the window starts again.
        let w = c
            .correlate(ev("a", "R", "m9", at(8 * 70 + 660)), at(8 * 70 + 660))
            .expect("written");
        assert_eq!(w.event.message.as_deref(), Some("m9"));
    }

    #[test]
    fn an_object_gets_25_events_then_one_per_five_minutes() {
        let mut c = Correlator::new();
        let mut written = 0;
        for i in 0..100 {
            if let Some(w) = c.correlate(ev("a", "R", &format!("m{}", i % 3), at(0)), at(0)) {
                store(&mut c, &w);
                written += 1;
            }
        }
        assert_eq!(written, 25);
        assert!(c.correlate(ev("a", "R", "m0", at(299)), at(299)).is_none());
        let w = c
            .correlate(ev("a", "R", "m0", at(300)), at(300))
            .expect("a token after five minutes");
        // Dropped repeats still counted: 34 "m0" in the burst, one at 299 s, this one.
        assert_eq!(w.event.count, Some(36));
        assert!(c.correlate(ev("a", "R", "m0", at(301)), at(301)).is_none());
        // Another object has its own bucket.
        assert!(c.correlate(ev("b", "R", "m0", at(301)), at(301)).is_some());
    }

    #[test]
    fn caches_stay_bounded() {
        let mut c = Correlator::new();
        for i in 0..(3 * CACHE_ENTRIES) {
            let name = format!("pod-{i}");
            if let Some(w) = c.correlate(ev(&name, "Scheduled", "assigned", at(0)), at(0)) {
                store(&mut c, &w);
            }
        }
        assert!(c.seen.map.len() <= CACHE_ENTRIES);
        assert!(c.similar.map.len() <= CACHE_ENTRIES);
        assert!(c.buckets.map.len() <= CACHE_ENTRIES);
        // The most recent keys are kept.
        let last = format!("pod-{}", 3 * CACHE_ENTRIES - 1);
        let w = c
            .correlate(ev(&last, "Scheduled", "assigned", at(1)), at(1))
            .expect("written");
        assert_eq!(w.event.count, Some(2));
    }
}
