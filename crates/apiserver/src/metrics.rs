//! Request metrics in Prometheus text format (`/metrics`), followed by whatever the other
//! parts of the process registered with [`Metrics::register`] (the traffic layer's proxies):
//! the API server depends on none of them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

/// Renders one component's metrics in the text exposition format.
pub type Source = Box<dyn Fn() -> String + Send + Sync>;

/// Counters and latency histograms keyed by (verb, resource, code), and the registered
/// sources of other components' metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<BTreeMap<(String, String, u16), Series>>,
    sources: Mutex<Vec<Source>>,
}

impl Metrics {
    pub fn observe(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let Ok(mut m) = self.inner.lock() else { return };
        let s = m
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default();
        if s.buckets.is_empty() {
            s.buckets = vec![0; BUCKETS.len()];
        }
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Adds `source`'s text to every later `/metrics` answer.
    pub fn register(&self, source: Source) {
        if let Ok(mut s) = self.sources.lock() {
            s.push(source);
        }
    }

    pub fn render(&self) -> String {
        let mut out = self.render_requests();
        if let Ok(sources) = self.sources.lock() {
            for s in sources.iter() {
                out.push_str(&s());
            }
        }
        out
    }

    fn render_requests(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        let Ok(m) = self.inner.lock() else { return out };
        for ((verb, resource, code), s) in m.iter() {
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {}\n",
                s.count
            ));
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        let mut agg: BTreeMap<(String, String), (u64, f64, Vec<u64>)> = BTreeMap::new();
        for ((verb, resource, _), s) in m.iter() {
            let e = agg
                .entry((verb.clone(), resource.clone()))
                .or_insert_with(|| (0, 0.0, vec![0; BUCKETS.len()]));
            e.0 += s.count;
            e.1 += s.sum;
            for (i, b) in s.buckets.iter().enumerate() {
                e.2[i] += b;
            }
        }
        for ((verb, resource), (count, sum, buckets)) in agg {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"{b}\"}} {}\n",
                    buckets[i]
                ));
            }
            out.push_str(&format!(
                "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"+Inf\"}} {count}\n"
            ));
            out.push_str(&format!("apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\"}} {sum}\n"));
            out.push_str(&format!("apiserver_request_duration_seconds_count{{verb=\"{verb}\",resource=\"{resource}\"}} {count}\n"));
        }
        out
    }
}
