//! Expectations, Kubernetes' `ControllerExpectations` (UID-tracking variant): the pods a
//! ReplicaSet or ReplicationController sync created or deleted, which the shared pod cache
//! must show before the next sync of that controller may count pods again. Without them a
//! sync that runs while the cache still lags the previous sync's writes sees too few (or
//! too many) pods and creates (or deletes) surplus ones.
//!
//! A creation is observed once the cache holds the pod or has seen an event at or after the
//! create's resourceVersion (the pod may already be gone again); a deletion once the cache
//! no longer holds that pod (by uid) alive. Records expire after five minutes, as
//! Kubernetes' `ExpectationsTimeout`, so a lost event cannot wedge a controller.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a record is trusted (Kubernetes' `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A pod this controller created: its name and the create's resourceVersion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub name: String,
    pub resource_version: String,
}

/// A pod this controller deleted: its name and uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    pub name: String,
    pub uid: String,
}

#[derive(Debug)]
struct Record {
    creates: Vec<Created>,
    deletes: Vec<Deleted>,
    at: Instant,
}

/// What the pod cache shows, asked by [`Expectations::satisfied`].
pub trait View {
    /// The cache reflects the creation (holds the pod, or is past the create's version).
    fn created(&self, c: &Created) -> bool;
    /// The cache no longer holds this pod alive (absent, another uid, or terminating).
    fn deleted(&self, d: &Deleted) -> bool;
}

/// Outstanding creations and deletions per controller key (`namespace/name`).
#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    /// Records pods just created by the controller `key`.
    pub fn expect_creations(&self, key: &str, created: Vec<Created>) {
        self.record(key, created, Vec::new());
    }

    /// Records pods just deleted by the controller `key`.
    pub fn expect_deletions(&self, key: &str, deleted: Vec<Deleted>) {
        self.record(key, Vec::new(), deleted);
    }

    fn record(&self, key: &str, creates: Vec<Created>, deletes: Vec<Deleted>) {
        if creates.is_empty() && deletes.is_empty() {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let r = records.entry(key.to_string()).or_insert_with(|| Record {
            creates: Vec::new(),
            deletes: Vec::new(),
            at: Instant::now(),
        });
        r.creates.extend(creates);
        r.deletes.extend(deletes);
        r.at = Instant::now();
    }

    /// True when the cache reflects every write `key` recorded (or the record expired); a
    /// satisfied record is dropped. Observed entries are pruned as they are seen.
    pub fn satisfied(&self, key: &str, view: &impl View) -> bool {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = records.get_mut(key) else {
            return true;
        };
        r.creates.retain(|c| !view.created(c));
        r.deletes.retain(|d| !view.deleted(d));
        let done = r.creates.is_empty() && r.deletes.is_empty();
        let expired = r.at.elapsed() > TIMEOUT;
        if expired && !done {
            tracing::warn!(
                controller = key,
                creates = r.creates.len(),
                deletes = r.deletes.len(),
                "expectations expired before the pod cache showed them"
            );
        }
        if done || expired {
            records.remove(key);
            return true;
        }
        false
    }

    /// Drops `key`'s record (the controller is gone).
    pub fn forget(&self, key: &str) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A cache holding these names (alive), at this resourceVersion.
    struct Cache {
        alive: HashSet<(&'static str, &'static str)>,
        rv: u64,
    }

    impl View for Cache {
        fn created(&self, c: &Created) -> bool {
            self.alive.iter().any(|(n, _)| *n == c.name)
                || c.resource_version
                    .parse::<u64>()
                    .is_ok_and(|v| v <= self.rv)
        }
        fn deleted(&self, d: &Deleted) -> bool {
            !self.alive.contains(&(d.name.as_str(), d.uid.as_str()))
        }
    }

    fn created(name: &str, rv: u64) -> Created {
        Created {
            name: name.into(),
            resource_version: rv.to_string(),
        }
    }

    #[test]
    fn nothing_recorded_is_satisfied() {
        let e = Expectations::default();
        let cache = Cache {
            alive: HashSet::new(),
            rv: 0,
        };
        assert!(e.satisfied("ns/rs", &cache));
    }

    #[test]
    fn creations_wait_for_the_cache() {
        let e = Expectations::default();
        e.expect_creations("ns/rs", vec![created("a", 10), created("b", 11)]);
        let lagging = Cache {
            alive: HashSet::from([("a", "1")]),
            rv: 10,
        };
        assert!(!e.satisfied("ns/rs", &lagging), "b not seen yet");
        assert!(e.satisfied("other/rs", &lagging), "keys are separate");
        // b was created and deleted again before the cache looked: the version says seen.
        let caught_up = Cache {
            alive: HashSet::from([("a", "1")]),
            rv: 12,
        };
        assert!(e.satisfied("ns/rs", &caught_up));
        // The record is gone once satisfied.
        assert!(e.satisfied("ns/rs", &lagging));
    }

    #[test]
    fn deletions_wait_until_the_pod_leaves_the_cache() {
        let e = Expectations::default();
        e.expect_deletions(
            "ns/rs",
            vec![Deleted {
                name: "a".into(),
                uid: "1".into(),
            }],
        );
        let still = Cache {
            alive: HashSet::from([("a", "1")]),
            rv: 100,
        };
        assert!(!e.satisfied("ns/rs", &still));
        // A new pod of the same name does not hold the expectation.
        let replaced = Cache {
            alive: HashSet::from([("a", "2")]),
            rv: 100,
        };
        assert!(e.satisfied("ns/rs", &replaced));
    }

    #[test]
    fn records_expire() {
        let e = Expectations::default();
        e.expect_creations("ns/rs", vec![created("a", 10)]);
        let never = Cache {
            alive: HashSet::new(),
            rv: 0,
        };
        assert!(!e.satisfied("ns/rs", &never));
        let long_ago = Instant::now().checked_sub(TIMEOUT + Duration::from_secs(1));
        for r in e.records.lock().expect("lock").values_mut() {
            r.at = long_ago.expect("a past instant");
        }
        assert!(e.satisfied("ns/rs", &never));
    }

    #[test]
    fn forget_drops_the_record() {
        let e = Expectations::default();
        e.expect_creations("ns/rs", vec![created("a", 10)]);
        e.forget("ns/rs");
        let never = Cache {
            alive: HashSet::new(),
            rv: 0,
        };
        assert!(e.satisfied("ns/rs", &never));
    }
}
