//! The Ingress proxy's Prometheus metrics, kept as atomics per backend Service so the request
//! path never takes a lock: the route table holds each Service's [`ServiceMetrics`] directly.
//! [`Metrics::text`] renders them in the text exposition format for the API server's
//! `/metrics` (user hosts own every path on the Ingress listener, so it is not served there).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::pool::{Padded, SHARDS, shard};
use crate::model::ServiceKey;

/// Latency buckets in seconds (upper bounds; `+Inf` is implied).
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of one backend Service, a set per worker thread of the proxy (summed when
/// rendered), so workers counting their requests do not contend for the same cache lines.
#[derive(Debug, Default)]
pub(crate) struct ServiceMetrics {
    shards: [Padded<Counters>; SHARDS],
}

#[derive(Debug, Default)]
struct Counters {
    /// Answers by code class: index 0 for 1xx … 4 for 5xx.
    codes: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    retries: AtomicU64,
    connect_errors: AtomicU64,
}

impl ServiceMetrics {
    fn mine(&self) -> &Counters {
        &self.shards[shard()].0
    }

    /// A counter summed over the workers.
    fn sum(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| counter(&s.0).load(Ordering::Relaxed))
            .sum()
    }

    /// Records one answered request.
    pub(crate) fn observe(&self, status: u16, elapsed: Duration) {
        let c = self.mine();
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        c.codes[class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            c.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        c.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        c.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.mine().retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connect_failed(&self) {
        self.mine().connect_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A cheap handle on every metric of one Ingress proxy.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    services: Mutex<BTreeMap<ServiceKey, Arc<ServiceMetrics>>>,
    /// Requests no rule matched (404 from the proxy itself).
    unmatched: AtomicU64,
}

impl Metrics {
    /// The counters of one Service, created on first use (when a route table names it).
    pub(crate) fn service(&self, key: &ServiceKey) -> Arc<ServiceMetrics> {
        let mut map = self
            .inner
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_default().clone()
    }

    pub(crate) fn unmatched(&self) {
        self.inner.unmatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Every metric in Prometheus' text exposition format.
    pub fn text(&self) -> String {
        let services: Vec<(ServiceKey, Arc<ServiceMetrics>)> = self
            .inner
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = String::with_capacity(1024 + services.len() * 2048);
        let labels = |k: &ServiceKey| {
            format!(
                "namespace=\"{}\",service=\"{}\"",
                escape(&k.namespace),
                escape(&k.name)
            )
        };
        out.push_str("# HELP baton_ingress_requests_total Requests answered by the Ingress proxy, by backend Service and status code class.\n");
        out.push_str("# TYPE baton_ingress_requests_total counter\n");
        for (k, m) in &services {
            let l = labels(k);
            for i in 0..5 {
                let _ = writeln!(
                    out,
                    "baton_ingress_requests_total{{{l},code=\"{}xx\"}} {}",
                    i + 1,
                    m.sum(|c| &c.codes[i])
                );
            }
        }
        out.push_str("# HELP baton_ingress_unmatched_requests_total Requests no Ingress rule matched (answered 404).\n");
        out.push_str("# TYPE baton_ingress_unmatched_requests_total counter\n");
        let _ = writeln!(
            out,
            "baton_ingress_unmatched_requests_total {}",
            self.inner.unmatched.load(Ordering::Relaxed)
        );
        out.push_str("# HELP baton_ingress_request_duration_seconds Time from a request's arrival to the end of its answer, by backend Service.\n");
        out.push_str("# TYPE baton_ingress_request_duration_seconds histogram\n");
        for (k, m) in &services {
            let l = labels(k);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += m.sum(|c| &c.buckets[i]);
                let _ = writeln!(
                    out,
                    "baton_ingress_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = m.sum(|c| &c.count);
            let _ = writeln!(
                out,
                "baton_ingress_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "baton_ingress_request_duration_seconds_sum{{{l}}} {}",
                m.sum(|c| &c.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "baton_ingress_request_duration_seconds_count{{{l}}} {count}"
            );
        }
        out.push_str("# HELP baton_ingress_retries_total Requests sent again to another endpoint because they could not be sent.\n");
        out.push_str("# TYPE baton_ingress_retries_total counter\n");
        for (k, m) in &services {
            let _ = writeln!(
                out,
                "baton_ingress_retries_total{{{}}} {}",
                labels(k),
                m.sum(|c| &c.retries)
            );
        }
        out.push_str("# HELP baton_ingress_upstream_connect_errors_total Failed connection attempts to a backend endpoint.\n");
        out.push_str("# TYPE baton_ingress_upstream_connect_errors_total counter\n");
        for (k, m) in &services {
            let _ = writeln!(
                out,
                "baton_ingress_upstream_connect_errors_total{{{}}} {}",
                labels(k),
                m.sum(|c| &c.connect_errors)
            );
        }
        out
    }
}

/// Label value escaping of the exposition format.
fn escape(s: &str) -> Cow<'_, str> {
    if s.contains(['\\', '"', '\n']) {
        Cow::Owned(
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        let key = ServiceKey {
            namespace: "default".into(),
            name: "web".into(),
        };
        let s = m.service(&key);
        s.observe(200, Duration::from_micros(300));
        // Another worker's counts land in its own shard and are summed.
        std::thread::scope(|t| {
            t.spawn(|| {
                super::super::pool::set_worker(0);
                s.observe(204, Duration::from_millis(3));
            });
        });
        s.observe(503, Duration::from_millis(3));
        s.retried();
        m.unmatched();
        let text = m.text();
        for line in [
            "baton_ingress_requests_total{namespace=\"default\",service=\"web\",code=\"2xx\"} 2",
            "baton_ingress_requests_total{namespace=\"default\",service=\"web\",code=\"5xx\"} 1",
            "baton_ingress_request_duration_seconds_bucket{namespace=\"default\",service=\"web\",le=\"0.0005\"} 1",
            "baton_ingress_request_duration_seconds_bucket{namespace=\"default\",service=\"web\",le=\"0.005\"} 3",
            "baton_ingress_request_duration_seconds_bucket{namespace=\"default\",service=\"web\",le=\"+Inf\"} 3",
            "baton_ingress_request_duration_seconds_count{namespace=\"default\",service=\"web\"} 3",
            "baton_ingress_retries_total{namespace=\"default\",service=\"web\"} 1",
            "baton_ingress_upstream_connect_errors_total{namespace=\"default\",service=\"web\"} 0",
            "baton_ingress_unmatched_requests_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
