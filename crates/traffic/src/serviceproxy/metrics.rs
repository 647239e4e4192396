//! The service proxy's sync figures as Prometheus text, named after kube-proxy's:
//! `baton_proxy_sync_duration_seconds` (one `nft -f` transaction, rendering included) and
//! `baton_proxy_network_programming_duration_seconds` (from the moment the proxy saw a
//! snapshot change to the moment the rules for it were live), plus counters of syncs.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds (1 ms doubling to about 16 s).
const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Inner {
    sync: Histogram,
    programming: Histogram,
    failures: u64,
    last_version: u64,
    last_sync: Option<Duration>,
}

/// Shared by the runner (one writer) and whoever serves `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub(crate) fn synced(&self, version: u64, sync: Duration, programming: Option<Duration>) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.sync.observe(sync);
        if let Some(p) = programming {
            m.programming.observe(p);
        }
        m.last_version = version;
        m.last_sync = Some(sync);
    }

    pub(crate) fn failed(&self) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.failures += 1;
    }

    /// The duration of the last successful sync, if any.
    pub fn last_sync(&self) -> Option<Duration> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_sync
    }

    /// Prometheus text exposition of every figure.
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        m.sync.render(
            &mut out,
            "baton_proxy_sync_duration_seconds",
            "Time to render and apply one nftables transaction.",
        );
        m.programming.render(
            &mut out,
            "baton_proxy_network_programming_duration_seconds",
            "Time from a snapshot change seen by the proxy to its rules being live.",
        );
        let _ = writeln!(
            out,
            "# HELP baton_proxy_sync_failures_total Transactions nft refused or could not run."
        );
        let _ = writeln!(out, "# TYPE baton_proxy_sync_failures_total counter");
        let _ = writeln!(out, "baton_proxy_sync_failures_total {}", m.failures);
        let _ = writeln!(
            out,
            "# HELP baton_proxy_applied_version The snapshot version whose rules are live."
        );
        let _ = writeln!(out, "# TYPE baton_proxy_applied_version gauge");
        let _ = writeln!(out, "baton_proxy_applied_version {}", m.last_version);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.synced(3, Duration::from_millis(3), Some(Duration::from_millis(20)));
        m.synced(4, Duration::from_millis(100), None);
        m.failed();
        let text = m.render();
        assert!(text.contains("baton_proxy_sync_duration_seconds_bucket{le=\"0.002\"} 0\n"));
        assert!(text.contains("baton_proxy_sync_duration_seconds_bucket{le=\"0.004\"} 1\n"));
        assert!(text.contains("baton_proxy_sync_duration_seconds_bucket{le=\"0.128\"} 2\n"));
        assert!(text.contains("baton_proxy_sync_duration_seconds_count 2\n"));
        assert!(text.contains("baton_proxy_network_programming_duration_seconds_count 1\n"));
        assert!(text.contains("baton_proxy_sync_failures_total 1\n"));
        assert!(text.contains("baton_proxy_applied_version 4\n"));
    }
}
