//! The kubelet's HTTP endpoints, which the API server proxies `pods/log`, `pods/exec` and
//! `pods/portforward` to: plain HTTP/1.1 on the node's address, every request carrying the
//! cluster's bearer token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncReadExt;

use async_trait::async_trait;
use baton_remotecommand::{ExecOptions, PodStreams, Runner, StreamError, command_runner};

use crate::Agent;
use crate::logs;
use baton_remotecommand::LogOptions;

pub type Body = BoxBody<Bytes, std::io::Error>;

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(msg.into()))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Accepts connections until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, agent: Arc<Agent>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let agent = agent.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let agent = agent.clone();
                async move { Ok::<_, Infallible>(handle(agent, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

impl Agent {
    /// The pod of that namespace and name this node runs, with its uid.
    pub fn find_pod(&self, ns: &str, name: &str) -> Option<(String, Pod)> {
        let workers = self.workers.lock().ok()?;
        workers.iter().find_map(|(uid, tx)| {
            let pod = tx.borrow().clone()?;
            (pod.metadata.namespace.as_deref() == Some(ns)
                && pod.metadata.name.as_deref() == Some(name))
            .then(|| (uid.clone(), pod))
        })
    }
}

async fn handle(agent: Arc<Agent>, req: Request<Incoming>) -> Response<Body> {
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == agent.opts.token);
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    if !authorized {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let streams: Arc<dyn PodStreams> = Arc::new(AgentStreams(agent.clone()));
    let req = match baton_remotecommand::route(req, streams).await {
        Ok(resp) => return resp.map(|b| b.map_err(|never: Infallible| match never {}).boxed()),
        Err(req) => req,
    };
    let query = req.uri().query().unwrap_or("").to_string();
    if path == "/stats/summary" {
        let mut r = text(
            StatusCode::OK,
            crate::stats::summary(&agent).await.to_string(),
        );
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    }
    match baton_remotecommand::KubeletPath::parse(&path) {
        Some(baton_remotecommand::KubeletPath::ContainerLogs {
            namespace,
            pod,
            container,
        }) => container_logs(agent, &namespace, &pod, &container, &query).await,
        _ => text(StatusCode::NOT_FOUND, format!("404 page not found: {path}")),
    }
}

/// An error answered as a `Status`, as the API server passes it on to kubectl.
fn status(code: u16, message: &str) -> Response<Body> {
    baton_remotecommand::status::response(code, message)
        .map(|b| b.map_err(|never: Infallible| match never {}).boxed())
}

async fn container_logs(
    agent: Arc<Agent>,
    ns: &str,
    pod: &str,
    container: &str,
    query: &str,
) -> Response<Body> {
    let q = match LogOptions::from_query(Some(query)) {
        Ok(q) => q,
        Err(e) if e.code == 422 => {
            let msg = format!("PodLogOptions \"{pod}\" is invalid: {}", e.message);
            return status(422, &msg);
        }
        Err(e) => return status(e.code, &e.message),
    };
    let mut decoder = match logs::Decoder::new(&q, baton_api::clock::now()) {
        Ok(d) => d,
        Err(msg) => return status(400, &msg),
    };
    let Some((uid, p)) = agent.find_pod(ns, pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node"),
        );
    };
    let dir = agent
        .log_path(ns, pod, &uid, container, 0)
        .parent()
        .map(|d| d.to_path_buf())
        .unwrap_or_default();
    let runs = logs::runs(&dir);
    let pick = if q.previous {
        runs.len().checked_sub(2).and_then(|i| runs.get(i))
    } else {
        runs.last()
    };
    let Some((n, file)) = pick.cloned() else {
        let msg = if q.previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            let reason =
                waiting_reason(&p, container).unwrap_or_else(|| "ContainerCreating".into());
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")
        };
        return text(StatusCode::BAD_REQUEST, msg);
    };
    // Read from one open file: a rotation between two reads cannot mix two files.
    let mut content = Vec::new();
    let opened = match tokio::fs::File::open(&file).await {
        Ok(mut f) => f.read_to_end(&mut content).await.map(|_| f),
        Err(e) => Err(e),
    };
    let mut f = match opened {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading logs: {e}"),
            );
        }
    };
    if !q.follow || q.previous {
        let out = logs::read(decoder, &content, q.tail_lines);
        let mut r = text(StatusCode::OK, String::new());
        *r.body_mut() = Full::new(Bytes::from(out))
            .map_err(|never: Infallible| match never {})
            .boxed();
        return r;
    }
    // Follow: decode what is there, then whatever the container appends (the decoder keeps
    // a record cut between two reads until its end arrives), across rotations (the file read
    // to its end, then the one that followed it: `logs::rotate::successor`), until this run
    // ends (a newer log file appears or the pod goes), `limitBytes` are written or the client
    // hangs up.
    let start = q.tail_lines.map_or(0, |t| logs::tail_start(&content, t));
    let mut first = Vec::new();
    decoder.feed(&content[start..], &mut first);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    let dir2 = dir.clone();
    let ns2 = ns.to_string();
    let pod2 = pod.to_string();
    tokio::spawn(async move {
        if tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err() || decoder.done() {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        let mut idle_checks = 0u32;
        // The file rotated after the one being read, once that one is no longer the log: it
        // is read from its start once the old one has been read to its end again.
        let mut next: Option<tokio::fs::File> = None;
        loop {
            match f.read(&mut buf).await {
                Ok(0) => {
                    if let Some(following) = next.take() {
                        f = following;
                        idle_checks = 0;
                        continue;
                    }
                    if let Ok(meta) = f.metadata().await
                        && let Some(following) = logs::rotate::successor(&meta, &file)
                    {
                        next = Some(tokio::fs::File::from_std(following));
                        continue;
                    }
                    idle_checks += 1;
                    if idle_checks.is_multiple_of(5) {
                        let newer = logs::runs(&dir2).last().is_some_and(|(m, _)| *m > n);
                        let gone = agent.find_pod(&ns2, &pod2).is_none();
                        if newer || gone || tx.is_closed() {
                            decoder.finish(&mut out);
                            if !out.is_empty() {
                                let _ = tx.send(Ok(Frame::data(Bytes::from(out)))).await;
                            }
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(k) => {
                    idle_checks = 0;
                    decoder.feed(&buf[..k], &mut out);
                    if !out.is_empty() {
                        let chunk = Bytes::from(std::mem::take(&mut out));
                        if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                            return;
                        }
                    }
                    if decoder.done() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let stream = tokio_stream_from(rx);
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn waiting_reason(p: &Pod, container: &str) -> Option<String> {
    let status = p.status.as_ref()?;
    let init = status.init_container_statuses.iter().flatten();
    init.chain(status.container_statuses.iter().flatten())
        .find(|s| s.name == container)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `kubectl exec`, `attach` and `port-forward` into this node's pods.
struct AgentStreams(Arc<Agent>);

impl AgentStreams {
    /// The runc id and bundle of `container` of the pod, if it runs on this node now.
    async fn running(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(String, std::path::PathBuf), StreamError> {
        let (uid, _) = self
            .0
            .find_pod(namespace, pod)
            .ok_or_else(|| StreamError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })?;
        let id = crate::pod::container_id(&uid, container);
        let found = self.0.host.list().await.unwrap_or_default();
        match found
            .into_iter()
            .find(|c| c.id == id && c.status == "running")
        {
            Some(c) => Ok((id, c.bundle)),
            None => Err(StreamError::ContainerNotRunning {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
            }),
        }
    }
}

#[async_trait]
impl PodStreams for AgentStreams {
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError> {
        let (id, _) = self.running(namespace, pod, container).await?;
        // With a terminal, runc makes the container's and copies between it and its own
        // stdin, which the session makes a terminal too (`baton_remotecommand::tty`).
        let cmd = self.0.host.exec_command(&id, &opts.command, opts.tty);
        Ok(command_runner(cmd, opts))
    }

    async fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError> {
        let (_, bundle) = self.running(namespace, pod, container).await?;
        let conn = self
            .0
            .host
            .attach(&bundle)
            .await
            .map_err(|e| StreamError::Internal(format!("attaching to {container}: {e}")))?;
        Ok(crate::attach::runner(conn, opts))
    }

    async fn pod_addr(&self, namespace: &str, pod: &str) -> Result<std::net::IpAddr, StreamError> {
        let (uid, _) = self
            .0
            .find_pod(namespace, pod)
            .ok_or_else(|| StreamError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })?;
        let dir = self.0.opts.data_dir.join("pods").join(&uid);
        crate::pod::load_saved(&*self.0.host, &dir)
            .await
            .and_then(|s| s.ip)
            .map(std::net::IpAddr::V4)
            .ok_or_else(|| StreamError::Internal(format!("pod {namespace}/{pod} has no IP yet")))
    }
}
