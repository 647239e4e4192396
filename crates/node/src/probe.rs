//! Liveness, readiness and startup probes: one check (httpGet, tcpSocket or exec) with its
//! timeout, and the counting of consecutive results against the thresholds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

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

fn port_of(port: &IntOrString, c: &Container) -> Option<u16> {
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

/// Runs one check. `exec` builds the command that runs inside the container.
pub async fn check(
    p: &Probe,
    c: &Container,
    pod_ip: IpAddr,
    exec: impl FnOnce(&[String]) -> Command,
) -> (bool, String) {
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    let work = async {
        if let Some(h) = &p.http_get {
            let Some(port) = port_of(&h.port, c) else {
                return (false, format!("invalid port {:?}", h.port));
            };
            let host: IpAddr = h
                .host
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(pod_ip);
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            http_get(SocketAddr::new(host, port), &path).await
        } else if let Some(t) = &p.tcp_socket {
            let Some(port) = port_of(&t.port, c) else {
                return (false, format!("invalid port {:?}", t.port));
            };
            let host: IpAddr = t
                .host
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(pod_ip);
            let addr = SocketAddr::new(host, port);
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => (true, String::new()),
                Err(e) => (false, format!("dial tcp {addr}: connect: {e}")),
            }
        } else if let Some(e) = &p.exec {
            let cmd = e.command.clone().unwrap_or_default();
            match exec(&cmd).stdin(std::process::Stdio::null()).output().await {
                Ok(out) if out.status.success() => (true, String::new()),
                Ok(out) => {
                    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
                    msg.push_str(&String::from_utf8_lossy(&out.stderr));
                    (false, msg.trim().to_string())
                }
                Err(err) => (false, err.to_string()),
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

/// A minimal HTTP/1.1 GET: success for 200–399, as the kubelet counts it.
async fn http_get(addr: SocketAddr, path: &str) -> (bool, String) {
    let url = format!("http://{addr}{path}");
    let mut s = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            return (
                false,
                format!("Get \"{url}\": dial tcp {addr}: connect: {e}"),
            );
        }
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return (false, format!("Get \"{url}\": {e}"));
    }
    let mut buf = vec![0u8; 512];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            Err(e) => return (false, format!("Get \"{url}\": {e}")),
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        (true, String::new())
    } else if code == 0 {
        (false, format!("Get \"{url}\": malformed HTTP response"))
    } else {
        (false, format!("HTTP probe failed with statuscode: {code}"))
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

    #[tokio::test]
    async fn http_probe_reads_the_status_line() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            for code in ["200 OK", "503 Service Unavailable"] {
                if let Ok((mut s, _)) = l.accept().await {
                    let mut b = [0u8; 256];
                    let _ = s.read(&mut b).await;
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                }
            }
        });
        assert!(http_get(addr, "/").await.0);
        let (ok, msg) = http_get(addr, "/").await;
        assert!(!ok);
        assert_eq!(msg, "HTTP probe failed with statuscode: 503");
    }
}
