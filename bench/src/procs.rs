//! The processes under test: a `baton server` on a fresh data dir and the etcd peer, each
//! started on loopback, measured (start time, resident memory) and always stopped, also when
//! the harness fails half-way (the child is killed when its handle is dropped).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::conn::{Conn, tls_config};

/// How long a server may take to print its kubeconfig line or answer /readyz.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `baton server` and what a client needs to reach it.
pub struct Baton {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub token: String,
    pub tls: Arc<rustls::ClientConfig>,
    /// From spawning the process to the first 200 on /readyz.
    pub started_in: Duration,
}

impl Baton {
    /// Starts `baton server` on a fresh data dir and a free loopback port, and waits for /readyz.
    pub async fn start(binary: &Path) -> Result<Baton> {
        let dir = tempfile::Builder::new()
            .prefix("baton-bench.")
            .tempdir()
            .context("creating a temp dir")?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("server.log"))
            .context("creating the server log")?;
        let t0 = Instant::now();
        let mut child = Command::new(binary)
            .arg("server")
            // The control plane alone: its idle memory and latency are what is compared.
            .arg("--disable")
            .arg("agent")
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the server"))?;
        let mut lines = BufReader::new(stdout).lines();
        let printed = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("export KUBECONFIG=") {
                    return Ok(true);
                }
            }
            Ok::<bool, std::io::Error>(false)
        })
        .await;
        match printed {
            Ok(Ok(true)) => {}
            _ => bail!(
                "baton server did not print its KUBECONFIG line; log: {}",
                tail(&dir.path().join("server.log"))
            ),
        }
        let (server, token) = read_kubeconfig(&data.join("kubeconfig"))?;
        let addr: SocketAddr = server
            .strip_prefix("https://")
            .unwrap_or(&server)
            .parse()
            .with_context(|| format!("server address {server} in the kubeconfig"))?;
        let tls = tls_config(&data.join("ca.crt"))?;
        let mut conn = Conn::https(addr, tls.clone(), &token).await?;
        loop {
            if let Ok((StatusCode::OK, _)) = conn.request(Method::GET, "/readyz", None).await {
                break;
            }
            if t0.elapsed() > START_TIMEOUT {
                bail!("baton server never answered /readyz with 200");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            conn = Conn::https(addr, tls.clone(), &token).await?;
        }
        let started_in = t0.elapsed();
        Ok(Baton {
            child,
            _dir: dir,
            addr,
            token,
            tls,
            started_in,
        })
    }

    pub async fn connect(&self) -> Result<Conn> {
        Conn::https(self.addr, self.tls.clone(), &self.token).await
    }

    pub fn rss_mb(&self) -> Result<f64> {
        rss_mb(self.child.id())
    }

    pub async fn stop(mut self) -> Result<()> {
        stop(&mut self.child).await
    }
}

/// The etcd peer: a single member on loopback with a temp data dir.
pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Etcd {
    pub async fn start(binary: &Path, client_port: u16, peer_port: u16) -> Result<Etcd> {
        let dir = tempfile::Builder::new()
            .prefix("baton-bench-etcd.")
            .tempdir()
            .context("creating a temp dir")?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log =
            std::fs::File::create(dir.path().join("etcd.log")).context("creating the etcd log")?;
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("default={peer_url}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], client_port));
        let mut etcd = Etcd {
            child,
            _dir: dir,
            addr,
        };
        let t0 = Instant::now();
        loop {
            if let Ok(mut conn) = Conn::http(addr).await
                && let Ok((StatusCode::OK, body)) = conn.request(Method::GET, "/health", None).await
                && String::from_utf8_lossy(&body).contains("true")
            {
                return Ok(etcd);
            }
            if t0.elapsed() > START_TIMEOUT {
                let log = tail(&etcd._dir.path().join("etcd.log"));
                stop(&mut etcd.child).await.ok();
                bail!("etcd did not become healthy on {addr}; log: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn rss_mb(&self) -> Result<f64> {
        rss_mb(self.child.id())
    }

    pub async fn stop(mut self) -> Result<()> {
        stop(&mut self.child).await
    }
}

/// The `server:` URL and `token:` from a kubeconfig Baton wrote.
fn read_kubeconfig(path: &Path) -> Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| anyhow!("no `{name}` in {}", path.display()))
    };
    Ok((field("server:")?, field("token:")?))
}

/// Resident set size from /proc/PID/status, in MB (MiB).
fn rss_mb(pid: Option<u32>) -> Result<f64> {
    let pid = pid.ok_or_else(|| anyhow!("the process has exited"))?;
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in {}", path.display()))?;
    Ok(kb / 1024.0)
}

async fn stop(child: &mut Child) -> Result<()> {
    child.start_kill().ok();
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("a child process did not exit after SIGKILL")?
        .context("waiting for a child process")?;
    Ok(())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
