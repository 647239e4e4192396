//! Liveness, readiness and startup probes: one check (httpGet, tcpSocket or exec) with its
//! timeout, and the counting of consecutive results against the thresholds. The connection or
//! command itself goes through [`Host`]; what counts as success and the words of a failure are
//! the kubelet's and live here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::host::Host;

/// A probe's running tally.
#[derive(Clone, Debug, Default)]
pub struct ProbeState {
    pub successes: i32,
    pub failures: i32,
    /// The verdict after the thresholds: None until the first one is reached.
    pub verdict: Option<bool>,
    /// When the probe last ran, as seconds since the container started.
    pub last_run: Option<Duration>,
    /// The last failure's words, for the Unhealthy message.
    pub last_message: String,
}

impl ProbeState {
    /// Whether the probe is due, `since_start` after the container started.
    pub fn due(&self, p: &Probe, since_start: Duration) -> bool {
        let delay = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
        if since_start < delay {
            return false;
        }
        self.last_run
            .is_none_or(|last| since_start >= last + period)
    }

    /// Counts one result.
    pub fn record(&mut self, p: &Probe, ok: bool, message: String, at: Duration) {
        self.last_run = Some(at);
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= p.success_threshold.unwrap_or(1).max(1) {
                self.verdict = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            self.last_message = message;
            if self.failures >= p.failure_threshold.unwrap_or(3).max(1) {
                self.verdict = Some(false);
            }
        }
    }
}

/// A probe's or hook's port: a number, or the name of one of the container's ports.
pub(crate) fn port_of(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => name.parse().ok().or_else(|| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

/// Runs one check against container `id` at `pod_ip`, through the host, within the probe's
/// timeout. Returns the result and, for a failure, the kubelet's words for it.
pub async fn check(
    p: &Probe,
    c: &Container,
    pod_ip: IpAddr,
    host: &dyn Host,
    id: &str,
) -> (bool, String) {
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    let work = async {
        if let Some(h) = &p.http_get {
            let Some(port) = port_of(&h.port, c) else {
                return (false, format!("invalid port {:?}", h.port));
            };
            let ip: IpAddr = h
                .host
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(pod_ip);
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            let addr = SocketAddr::new(ip, port);
            let url = format!("http://{addr}{path}");
            match host.http_get(addr, &path).await {
                Ok(code) if (200..400).contains(&code) => (true, String::new()),
                Ok(0) => (false, format!("Get \"{url}\": malformed HTTP response")),
                Ok(code) => (false, format!("HTTP probe failed with statuscode: {code}")),
                Err(e) => (false, format!("Get \"{url}\": {e}")),
            }
        } else if let Some(t) = &p.tcp_socket {
            let Some(port) = port_of(&t.port, c) else {
                return (false, format!("invalid port {:?}", t.port));
            };
            let ip: IpAddr = t
                .host
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(pod_ip);
            let addr = SocketAddr::new(ip, port);
            match host.tcp_connect(addr).await {
                Ok(()) => (true, String::new()),
                Err(e) => (false, format!("dial tcp {addr}: connect: {e}")),
            }
        } else if let Some(e) = &p.exec {
            let cmd = e.command.clone().unwrap_or_default();
            match host.exec(id, &cmd).await {
                Ok(out) if out.success => (true, String::new()),
                Ok(out) => (false, out.output),
                Err(err) => (false, err),
            }
        } else {
            (true, String::new())
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => (
            false,
            format!("probe timed out after {}s", timeout.as_secs()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(period: i32, delay: i32, failures: i32) -> Probe {
        Probe {
            period_seconds: Some(period),
            initial_delay_seconds: Some(delay),
            failure_threshold: Some(failures),
            ..Default::default()
        }
    }

    #[test]
    fn due_after_delay_then_every_period() {
        let p = probe(2, 1, 3);
        let mut s = ProbeState::default();
        assert!(!s.due(&p, Duration::from_millis(500)));
        assert!(s.due(&p, Duration::from_secs(1)));
        s.record(&p, true, String::new(), Duration::from_secs(1));
        assert!(!s.due(&p, Duration::from_secs(2)));
        assert!(s.due(&p, Duration::from_secs(3)));
    }

    #[test]
    fn thresholds_decide_the_verdict() {
        let p = probe(1, 0, 2);
        let mut s = ProbeState::default();
        s.record(&p, false, "no".into(), Duration::ZERO);
        assert_eq!(s.verdict, None);
        s.record(&p, false, "no".into(), Duration::from_secs(1));
        assert_eq!(s.verdict, Some(false));
        s.record(&p, true, String::new(), Duration::from_secs(2));
        assert_eq!(s.verdict, Some(true));
    }
}
