//! The loads driven against Baton: create/get/update/list at a fixed concurrency, mutations
//! paced at a fixed rate, and watch fan-out. Each client owns one kept-open HTTPS connection;
//! every loop is bounded in count and in time.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use crate::conn::Conn;
use crate::procs::Baton;
use crate::stats::Samples;

/// Longest any single phase may run before the harness gives up on it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes of filler in each ConfigMap, so that an object is about 1 KB on the wire.
const FILL: usize = 900;

/// Time base shared by writers and watchers, to measure watch lag in one process.
fn since_base() -> Duration {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed()
}

fn configmap(name: &str, resource_version: Option<&str>, stamp: u128) -> Bytes {
    let mut meta = serde_json::json!({ "name": name });
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = rv.into();
    }
    let fill: String = name.chars().cycle().take(FILL).collect();
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": { "fill": fill, "t": stamp.to_string() },
    });
    Bytes::from(body.to_string())
}

fn resource_version(body: &[u8]) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(body).context("a JSON response")?;
    v["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no metadata.resourceVersion in the response"))
}

/// Creates a namespace (bench data stays apart from everything else).
pub async fn create_namespace(conn: &mut Conn, name: &str) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name }
    });
    conn.expect(
        Method::POST,
        "/api/v1/namespaces",
        Some(Bytes::from(body.to_string())),
        StatusCode::CREATED,
    )
    .await?;
    Ok(())
}

/// The namespace that list requests read, with this many ~1 KB ConfigMaps in it.
pub const LIST_NAMESPACE: &str = "bench-list";
pub const LIST_SIZE: usize = 50;

pub async fn prepare_list_namespace(conn: &mut Conn) -> Result<()> {
    create_namespace(conn, LIST_NAMESPACE).await?;
    for i in 0..LIST_SIZE {
        let path = format!("/api/v1/namespaces/{LIST_NAMESPACE}/configmaps");
        let body = configmap(&format!("listed-{i}"), None, 0);
        conn.expect(Method::POST, &path, Some(body), StatusCode::CREATED)
            .await?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Get,
    Update,
    List,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::Update => "update",
            Op::List => "list",
        }
    }
}

/// One benchmark client: its connection and the objects it created.
struct Client {
    id: usize,
    conn: Conn,
    namespace: String,
    versions: Vec<String>,
}

impl Client {
    async fn run(&mut self, op: Op, j: usize) -> Result<()> {
        let ns = &self.namespace;
        let name = format!("cm-{}-{j}", self.id);
        match op {
            Op::Create => {
                let path = format!("/api/v1/namespaces/{ns}/configmaps");
                let body = configmap(&name, None, 0);
                let resp = self
                    .conn
                    .expect(Method::POST, &path, Some(body), StatusCode::CREATED)
                    .await?;
                self.versions.push(resource_version(&resp)?);
            }
            Op::Get => {
                let path = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
                self.conn
                    .expect(Method::GET, &path, None, StatusCode::OK)
                    .await?;
            }
            Op::Update => {
                let path = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
                let rv = self
                    .versions
                    .get(j)
                    .ok_or_else(|| anyhow!("update of {name} before its create"))?;
                let body = configmap(&name, Some(rv), 1);
                let resp = self
                    .conn
                    .expect(Method::PUT, &path, Some(body), StatusCode::OK)
                    .await?;
                self.versions[j] = resource_version(&resp)?;
            }
            Op::List => {
                let path = format!("/api/v1/namespaces/{LIST_NAMESPACE}/configmaps");
                self.conn
                    .expect(Method::GET, &path, None, StatusCode::OK)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Runs `ops` operations of kind `op`, spread over the clients, all starting together.
async fn phase(clients: Vec<Client>, op: Op, ops: usize) -> Result<(Vec<Client>, Samples)> {
    let n = clients.len();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, mut client) in clients.into_iter().enumerate() {
        // Client i does operations j = 0, 1, … while i + j * n < ops.
        let count = ops.saturating_sub(i).div_ceil(n);
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(count);
            for j in 0..count {
                let t = Instant::now();
                client.run(op, j).await?;
                samples.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>((client, samples))
        }));
    }
    let mut all = Samples::with_capacity(ops);
    let mut back = Vec::with_capacity(n);
    for task in tasks {
        let (client, samples) = tokio::time::timeout(PHASE_TIMEOUT, task)
            .await
            .with_context(|| format!("{} phase did not finish in time", op.name()))?
            .context("a client task panicked")??;
        all.extend(samples);
        back.push(client);
    }
    all.wall = start.elapsed();
    Ok((back, all))
}

/// create, get, update and list at `concurrency` clients; `ops` of each (a quarter for list).
pub async fn crud(baton: &Baton, concurrency: usize, ops: usize) -> Result<Vec<(Op, Samples)>> {
    let namespace = format!("bench-c{concurrency}");
    let mut admin = baton.connect().await?;
    create_namespace(&mut admin, &namespace).await?;
    let mut clients = Vec::with_capacity(concurrency);
    for id in 0..concurrency {
        clients.push(Client {
            id,
            conn: baton.connect().await?,
            namespace: namespace.clone(),
            versions: Vec::new(),
        });
    }
    let mut figures = Vec::new();
    for (op, count) in [
        (Op::Create, ops),
        (Op::Get, ops),
        (Op::Update, ops),
        (Op::List, ops / 4),
    ] {
        let (back, samples) = phase(clients, op, count).await?;
        clients = back;
        figures.push((op, samples));
    }
    Ok(figures)
}

/// Mutations (create, update, delete of one object in turn) issued at `rate` per second for
/// `secs` seconds by `workers` connections. Latency runs from each operation's scheduled time,
/// so a server that falls behind is charged for the wait as well.
pub async fn paced(baton: &Baton, rate: u32, secs: u32, workers: usize) -> Result<Samples> {
    let namespace = "bench-paced";
    let mut admin = baton.connect().await?;
    create_namespace(&mut admin, namespace).await?;
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let mut conn = baton.connect().await?;
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(total / workers + 1);
            let mut rv = String::new();
            for (step, k) in (w..total).step_by(workers).enumerate() {
                let due = start + interval * k as u32;
                tokio::time::sleep_until(due.into()).await;
                let name = format!("p-{w}-{}", step / 3);
                let item = format!("/api/v1/namespaces/{namespace}/configmaps/{name}");
                match step % 3 {
                    0 => {
                        let path = format!("/api/v1/namespaces/{namespace}/configmaps");
                        let body = configmap(&name, None, 0);
                        let resp = conn
                            .expect(Method::POST, &path, Some(body), StatusCode::CREATED)
                            .await?;
                        rv = resource_version(&resp)?;
                    }
                    1 => {
                        let body = configmap(&name, Some(&rv), 1);
                        conn.expect(Method::PUT, &item, Some(body), StatusCode::OK)
                            .await?;
                    }
                    _ => {
                        conn.expect(Method::DELETE, &item, None, StatusCode::OK)
                            .await?;
                    }
                }
                samples.push(due.elapsed());
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Samples::with_capacity(total);
    for task in tasks {
        let samples = tokio::time::timeout(PHASE_TIMEOUT, task)
            .await
            .context("paced phase did not finish in time")?
            .context("a paced worker panicked")??;
        all.extend(samples);
    }
    all.wall = start.elapsed();
    Ok(all)
}

/// What the watchers saw.
pub struct FanOut {
    /// Events delivered to all watchers together.
    pub delivered: usize,
    /// Delivered events per second, from the first write to the last event.
    pub events_per_sec: f64,
    /// From a write being sent to its event reaching a watcher, per delivered event.
    pub lag: Samples,
}

/// `watchers` watches on one collection, then `writes` creates from `writers` connections.
pub async fn watch_fan_out(
    baton: &Baton,
    watchers: usize,
    writes: usize,
    writers: usize,
) -> Result<FanOut> {
    let namespace = "bench-watch";
    let mut admin = baton.connect().await?;
    create_namespace(&mut admin, namespace).await?;
    let list = admin
        .expect(
            Method::GET,
            &format!("/api/v1/namespaces/{namespace}/configmaps"),
            None,
            StatusCode::OK,
        )
        .await?;
    let rv = resource_version(&list)?;
    let path = format!("/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={rv}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = std::sync::Arc::new(AtomicUsize::new(0));

    let mut watch_tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut conn = baton.connect().await?;
        let path = path.clone();
        let ready = ready.clone();
        watch_tasks.push(tokio::spawn(async move {
            let resp = conn.send(Method::GET, &path, None).await?;
            if resp.status() != StatusCode::OK {
                bail!("watch answered {}", resp.status());
            }
            ready.fetch_add(1, Ordering::SeqCst);
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            let mut lag = Samples::with_capacity(writes);
            let mut last = Instant::now();
            while lag.len() < writes {
                let left = deadline.saturating_duration_since(Instant::now());
                let frame = match tokio::time::timeout(left, body.frame()).await {
                    Err(_) => break, // deadline: report what arrived
                    Ok(None) => bail!("the watch ended after {} events", lag.len()),
                    Ok(Some(frame)) => frame.context("reading the watch stream")?,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let event: serde_json::Value =
                        serde_json::from_slice(&line).context("a watch event line")?;
                    if event["type"] != "ADDED" {
                        continue;
                    }
                    let sent: u128 = event["object"]["data"]["t"]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| anyhow!("an event without data.t"))?;
                    let now = since_base().as_micros();
                    lag.push(Duration::from_micros(
                        u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX),
                    ));
                    last = Instant::now();
                }
            }
            Ok((lag, last))
        }));
    }
    // Every watch must be established before the writes start.
    while ready.load(Ordering::SeqCst) < watchers {
        if Instant::now() > deadline || watch_tasks.iter().any(|t| t.is_finished()) {
            bail!(
                "only {} of {watchers} watches started",
                ready.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let first_write = Instant::now();
    let mut write_tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let mut conn = baton.connect().await?;
        write_tasks.push(tokio::spawn(async move {
            let path = format!("/api/v1/namespaces/{namespace}/configmaps");
            for k in (w..writes).step_by(writers) {
                let body = configmap(&format!("w-{k}"), None, since_base().as_micros());
                conn.expect(Method::POST, &path, Some(body), StatusCode::CREATED)
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in write_tasks {
        tokio::time::timeout(PHASE_TIMEOUT, task)
            .await
            .context("watch writers did not finish in time")?
            .context("a writer panicked")??;
    }
    let mut lag = Samples::with_capacity(watchers * writes);
    let mut last_event = first_write;
    for task in watch_tasks {
        let (samples, last) = tokio::time::timeout(PHASE_TIMEOUT, task)
            .await
            .context("watchers did not finish in time")?
            .context("a watcher panicked")??;
        lag.extend(samples);
        last_event = last_event.max(last);
    }
    let delivered = lag.len();
    let secs = last_event.duration_since(first_write).as_secs_f64();
    lag.wall = last_event.duration_since(first_write);
    Ok(FanOut {
        delivered,
        events_per_sec: if secs > 0.0 {
            delivered as f64 / secs
        } else {
            0.0
        },
        lag,
    })
}
