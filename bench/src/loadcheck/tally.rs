//! Everything counted, under one lock taken once per request, and the JSON summary.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::http::{Failure, Response};

/// Error messages kept per kind (the first ones).
const SAMPLE_PER_KIND: usize = 10;
/// Characters of a body used as its tally key.
const BODY_KEY_CHARS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnMode {
    /// HTTP/1.1 kept alive and reused.
    KeepAlive,
    /// A new TCP connection per request, `Connection: close`.
    New,
}

impl ConnMode {
    pub fn name(self) -> &'static str {
        match self {
            ConnMode::KeepAlive => "keepalive",
            ConnMode::New => "new",
        }
    }
}

/// What one request came to.
pub struct Outcome {
    pub result: Result<Response, Failure>,
    /// The first failure, on a reused connection, that was resent on a new one.
    pub stale: Option<String>,
    /// Why an idle kept-alive connection was dropped before this request (not a failure).
    pub idle_reconnect: Option<&'static str>,
}

#[derive(Default)]
struct ModeStats {
    total: u64,
    ok: u64,
    non_2xx: BTreeMap<u16, u64>,
    connect_errors: u64,
    other_errors: BTreeMap<&'static str, u64>,
    stale_retries: u64,
    idle_reconnects: u64,
    /// Microseconds, of requests that got a response (any status).
    latencies_us: Vec<u64>,
}

impl ModeStats {
    fn other(&self) -> u64 {
        self.other_errors.values().sum()
    }

    fn json(&mut self) -> Value {
        self.latencies_us.sort_unstable();
        json!({
            "total": self.total,
            "ok": self.ok,
            "non_2xx": codes(&self.non_2xx),
            "connect_errors": self.connect_errors,
            "other_errors": self.other(),
            "stale_retries": self.stale_retries,
            "idle_reconnects": self.idle_reconnects,
            "p50_ms": pct_ms(&self.latencies_us, 50.0),
            "p99_ms": pct_ms(&self.latencies_us, 99.0),
        })
    }
}

struct Span {
    count: u64,
    first_ms: f64,
    last_ms: f64,
}

pub struct Tally {
    keepalive: ModeStats,
    new: ModeStats,
    /// In first-seen order.
    bodies: Vec<(String, Span)>,
    last_body: Option<String>,
    transitions_head: Vec<Value>,
    transitions_tail: VecDeque<Value>,
    transitions_total: u64,
    max_transitions: usize,
    samples: Vec<Value>,
    sample_counts: BTreeMap<&'static str, usize>,
    stale_samples: Vec<Value>,
}

fn codes(m: &BTreeMap<u16, u64>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds (null when empty).
fn pct_ms(sorted: &[u64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let v = sorted[rank.clamp(1, sorted.len()) - 1];
    json!(round3(v as f64 / 1000.0))
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The tally key of a body: its text, trimmed, cut at `BODY_KEY_CHARS` characters (with the
/// full length noted when cut).
pub fn body_key(r: &Response) -> String {
    let text = String::from_utf8_lossy(&r.body);
    let text = text.trim();
    if text.chars().count() > BODY_KEY_CHARS || r.body_len > r.body.len() as u64 {
        let cut: String = text.chars().take(BODY_KEY_CHARS).collect();
        format!("{cut}… ({} bytes)", r.body_len)
    } else {
        text.to_string()
    }
}

impl Tally {
    pub fn new(max_transitions: usize) -> Self {
        Tally {
            keepalive: ModeStats::default(),
            new: ModeStats::default(),
            bodies: Vec::new(),
            last_body: None,
            transitions_head: Vec::new(),
            transitions_tail: VecDeque::new(),
            transitions_total: 0,
            max_transitions: max_transitions.max(2),
            samples: Vec::new(),
            sample_counts: BTreeMap::new(),
            stale_samples: Vec::new(),
        }
    }

    pub fn total(&self) -> u64 {
        self.keepalive.total + self.new.total
    }

    fn sample(&mut self, kind: &'static str, v: Value) {
        let n = self.sample_counts.entry(kind).or_default();
        if *n < SAMPLE_PER_KIND {
            *n += 1;
            self.samples.push(v);
        }
    }

    /// Records one request, finished `t_ms` after the start, that took `latency`.
    pub fn record(&mut self, mode: ConnMode, t_ms: f64, latency: Duration, o: Outcome) {
        let m = match mode {
            ConnMode::KeepAlive => &mut self.keepalive,
            ConnMode::New => &mut self.new,
        };
        m.total += 1;
        if o.idle_reconnect.is_some() {
            m.idle_reconnects += 1;
        }
        if let Some(msg) = &o.stale {
            m.stale_retries += 1;
            if self.stale_samples.len() < SAMPLE_PER_KIND {
                let resend = match &o.result {
                    Ok(r) => format!("resend answered {}", r.status),
                    Err(f) => format!("resend failed: {}", f.message()),
                };
                self.stale_samples.push(json!({
                    "t_ms": t_ms, "mode": mode.name(), "message": msg, "resend": resend,
                }));
            }
        }
        let m = match mode {
            ConnMode::KeepAlive => &mut self.keepalive,
            ConnMode::New => &mut self.new,
        };
        match o.result {
            Ok(r) => {
                m.latencies_us.push(latency.as_micros() as u64);
                if (200..300).contains(&r.status) {
                    m.ok += 1;
                    self.body(t_ms, mode, body_key(&r));
                } else {
                    *m.non_2xx.entry(r.status).or_default() += 1;
                    let body = body_key(&r);
                    self.sample(
                        "non_2xx",
                        json!({"t_ms": t_ms, "kind": "non_2xx", "mode": mode.name(),
                               "status": r.status, "body": body}),
                    );
                }
            }
            Err(f) => {
                let kind = f.kind();
                if matches!(f, Failure::Connect(_)) {
                    m.connect_errors += 1;
                } else {
                    *m.other_errors.entry(kind).or_default() += 1;
                }
                let mut v = json!({"t_ms": t_ms, "kind": kind, "mode": mode.name(),
                                   "message": f.message()});
                if o.stale.is_some()
                    && let Some(obj) = v.as_object_mut()
                {
                    obj.insert("after_stale_retry".into(), json!(true));
                }
                self.sample(kind, v);
            }
        }
    }

    fn body(&mut self, t_ms: f64, mode: ConnMode, key: String) {
        match self.bodies.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) => {
                s.count += 1;
                s.last_ms = t_ms;
            }
            None => self.bodies.push((
                key.clone(),
                Span {
                    count: 1,
                    first_ms: t_ms,
                    last_ms: t_ms,
                },
            )),
        }
        if self.last_body.as_deref() == Some(key.as_str()) {
            return;
        }
        let t = json!({"t_ms": t_ms, "body": key, "from": self.last_body, "mode": mode.name()});
        self.last_body = Some(key);
        self.transitions_total += 1;
        let half = self.max_transitions / 2;
        if self.transitions_head.len() < self.max_transitions - half {
            self.transitions_head.push(t);
        } else {
            if self.transitions_tail.len() == half {
                self.transitions_tail.pop_front();
            }
            self.transitions_tail.push_back(t);
        }
    }

    /// The summary: the counts first, then `extra` (the run's facts).
    pub fn summary(&mut self, extra: Map<String, Value>, elapsed: Duration) -> Value {
        let mut all: Vec<u64> = self
            .keepalive
            .latencies_us
            .iter()
            .chain(&self.new.latencies_us)
            .copied()
            .collect();
        all.sort_unstable();
        let mut non_2xx = self.keepalive.non_2xx.clone();
        for (c, n) in &self.new.non_2xx {
            *non_2xx.entry(*c).or_default() += n;
        }
        let mut other_by_kind = self.keepalive.other_errors.clone();
        for (k, n) in &self.new.other_errors {
            *other_by_kind.entry(k).or_default() += n;
        }
        let total = self.total();
        let ok = self.keepalive.ok + self.new.ok;
        let connect_errors = self.keepalive.connect_errors + self.new.connect_errors;
        let other_errors = self.keepalive.other() + self.new.other();
        let non_2xx_n: u64 = non_2xx.values().sum();
        let secs = elapsed.as_secs_f64();
        let omitted = self.transitions_total
            - (self.transitions_head.len() + self.transitions_tail.len()) as u64;
        let transitions: Vec<Value> = self
            .transitions_head
            .iter()
            .chain(&self.transitions_tail)
            .cloned()
            .collect();
        let fields = json!({
            "total": total,
            "ok": ok,
            "non_2xx": codes(&non_2xx),
            "connect_errors": connect_errors,
            "other_errors": other_errors,
            "other_errors_by_kind": other_by_kind,
            "failed": non_2xx_n + connect_errors + other_errors,
            "stale_retries": self.keepalive.stale_retries + self.new.stale_retries,
            "idle_reconnects": self.keepalive.idle_reconnects + self.new.idle_reconnects,
            "bodies": self.bodies.iter().map(|(k, s)| (k.clone(), json!(s.count)))
                .collect::<Map<_, _>>(),
            "first_body": self.bodies.first().map(|(k, _)| k.clone()),
            "last_body": self.last_body,
            "transitions": transitions,
            "transitions_total": self.transitions_total,
            "transitions_omitted": omitted,
            "body_spans": self.bodies.iter().map(|(k, s)| (k.clone(),
                json!({"count": s.count, "first_t_ms": s.first_ms, "last_t_ms": s.last_ms})))
                .collect::<Map<_, _>>(),
            "p50_ms": pct_ms(&all, 50.0),
            "p99_ms": pct_ms(&all, 99.0),
            "max_ms": all.last().map(|v| round3(*v as f64 / 1000.0)),
            "elapsed_ms": round3(secs * 1000.0),
            "rps": if secs > 0.0 { round3(total as f64 / secs) } else { 0.0 },
            "by_mode": {
                "keepalive": self.keepalive.json(),
                "new": self.new.json(),
            },
            "errors_sample": self.samples,
            "stale_retry_sample": self.stale_samples,
        });
        let mut out = match fields {
            Value::Object(f) => f,
            _ => Map::new(),
        };
        out.extend(extra);
        Value::Object(out)
    }
}
