//! `portForward` (`portforward.k8s.io` over SPDY/3.1, directly or tunnelled in a WebSocket):
//! for every local connection kubectl opens an error stream and a data stream carrying the
//! same `port` and `requestid` headers; once both exist the data stream is spliced to the
//! pod's port, and connection failures are written as text on the error stream, which is
//! closed when the pair is done (kubectl waits for that end-of-file).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::spdy::{self, Event, Sender, Session};
use crate::upgrade::{self, Transport};
use crate::{Body, PodStreams, status, websocket};

pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/portForward/{namespace}/{pod}`: SPDY/3.1 with `portforward.k8s.io`, or a WebSocket
/// with `SPDY/3.1+portforward.k8s.io` carrying the same SPDY session.
pub async fn serve_port_forward<B>(
    mut req: Request<B>,
    streams: Arc<dyn PodStreams>,
    namespace: &str,
    pod: &str,
) -> Response<Body> {
    let Some(transport) = upgrade::transport(req.headers()) else {
        return status::response(
            400,
            "port-forward requires an upgrade to SPDY/3.1 (or a WebSocket tunnel of it)",
        );
    };
    let supported: &[&'static str] = match transport {
        Transport::Spdy => &[PORT_FORWARD_PROTOCOL],
        Transport::WebSocket => &[websocket::SPDY_TUNNEL_PORT_FORWARD],
    };
    let protocol = match upgrade::negotiate(req.headers(), transport, supported) {
        Ok(p) => p,
        Err(m) => return status::response(400, &m),
    };
    if let Err(e) = streams.pod_addr(namespace, pod).await {
        return status::response(e.code(), &e.to_string());
    }
    let response = match transport {
        Transport::WebSocket => match upgrade::websocket_switching(req.headers(), protocol) {
            Some(r) => r,
            None => return status::response(400, "missing Sec-WebSocket-Key"),
        },
        Transport::Spdy => upgrade::spdy_switching(protocol),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (namespace, pod) = (namespace.to_string(), pod.to_string());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%namespace, %pod, error = %e, "port-forward upgrade failed");
                return;
            }
        };
        tracing::info!(%namespace, %pod, protocol, "port-forward");
        let session = match transport {
            Transport::Spdy => Session::start(hyper_util::rt::TokioIo::new(upgraded)),
            Transport::WebSocket => {
                Session::start(websocket::tunnel(websocket::server(upgraded).await))
            }
        };
        forward(session, streams, namespace, pod).await;
    });
    response
}

#[derive(Default)]
struct Pair {
    port: Option<u16>,
    error: Option<u32>,
    data: Option<u32>,
}

/// Runs a port-forward session until the client goes away.
pub async fn forward(
    mut session: Session,
    streams: Arc<dyn PodStreams>,
    namespace: String,
    pod: String,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut data_in: HashMap<u32, mpsc::Sender<(Bytes, bool)>> = HashMap::new();
    while let Some(ev) = session.events.recv().await {
        match ev {
            Event::Opened { id, headers } => {
                let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                // Clients older than request ids pair an error stream with the data stream
                // opened right after it (the next client stream id).
                let request = spdy::header(&headers, "requestid")
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let base = if kind == "data" {
                            id.saturating_sub(2)
                        } else {
                            id
                        };
                        base.to_string()
                    });
                let Some(port) = port.filter(|p| *p > 0) else {
                    let _ = session.sender.reset(id, spdy::RST_PROTOCOL_ERROR).await;
                    continue;
                };
                let pair = pairs.entry(request.clone()).or_default();
                pair.port = Some(port);
                match kind {
                    "error" => pair.error = Some(id),
                    "data" => pair.data = Some(id),
                    _ => {
                        let _ = session.sender.reset(id, spdy::RST_PROTOCOL_ERROR).await;
                        continue;
                    }
                }
                if let (Some(error), Some(data), Some(port)) = (pair.error, pair.data, pair.port) {
                    pairs.remove(&request);
                    let (tx, rx) = mpsc::channel(16);
                    data_in.insert(data, tx);
                    let sender = session.sender.clone();
                    let streams = streams.clone();
                    let (namespace, pod) = (namespace.clone(), pod.clone());
                    tokio::spawn(async move {
                        let target = match streams.pod_addr(&namespace, &pod).await {
                            Ok(ip) => SocketAddr::new(ip, port),
                            Err(e) => {
                                fail(&sender, error, data, &e.to_string()).await;
                                return;
                            }
                        };
                        let conn =
                            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
                        match conn {
                            Ok(Ok(tcp)) => splice(tcp, &sender, data, rx).await,
                            Ok(Err(e)) => {
                                let msg = format!(
                                    "error forwarding port {port} to pod {namespace}/{pod}: failed to connect to {target}: {e}"
                                );
                                fail(&sender, error, data, &msg).await;
                                return;
                            }
                            Err(_) => {
                                let msg = format!(
                                    "error forwarding port {port} to pod {namespace}/{pod}: timed out connecting to {target}"
                                );
                                fail(&sender, error, data, &msg).await;
                                return;
                            }
                        }
                        let _ = sender.close(error).await;
                    });
                }
            }
            Event::Data { id, data, fin } => {
                if let Some(tx) = data_in.get(&id)
                    && (tx.send((data, fin)).await.is_err() || fin)
                {
                    data_in.remove(&id);
                }
            }
            Event::Reset { id } => {
                data_in.remove(&id);
            }
        }
    }
    drop(data_in);
    session.finish().await;
}

async fn fail(sender: &Sender, error: u32, data: u32, message: &str) {
    tracing::debug!(message, "port-forward connection failed");
    let _ = sender.data(error, Bytes::from(message.to_string())).await;
    let _ = sender.close(error).await;
    let _ = sender.close(data).await;
}

/// Copies the data stream to the pod connection and back; returns when the pod side has ended
/// (or the client reset the stream).
async fn splice<S>(conn: S, sender: &Sender, data: u32, mut rx: mpsc::Receiver<(Bytes, bool)>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let to_pod = async move {
        // `None`: the client reset the stream; stop everything.
        while let Some((b, fin)) = rx.recv().await {
            if !b.is_empty() && wr.write_all(&b).await.is_err() {
                return true;
            }
            if fin {
                let _ = wr.shutdown().await;
                return true;
            }
        }
        false
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender
                        .data(data, Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sender.close(data).await;
    };
    tokio::pin!(to_pod, from_pod);
    tokio::select! {
        _ = &mut from_pod => {}
        graceful = &mut to_pod => {
            if graceful {
                from_pod.await;
            }
        }
    }
}
