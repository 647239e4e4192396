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

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

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
        Transport::WebSocket => &[
            websocket::SPDY_TUNNEL_PORT_FORWARD,
            websocket::V4_CHANNEL,
            websocket::V4_BASE64_CHANNEL,
            websocket::CHANNEL,
            websocket::BASE64_CHANNEL,
        ],
    };
    let protocol = match upgrade::negotiate(req.headers(), transport, supported) {
        Ok(p) => p,
        Err(m) => return status::response(400, &m),
    };
    // The WebSocket channel form names its ports in the query (`?port=80&port=443`).
    let channels =
        transport == Transport::WebSocket && protocol != websocket::SPDY_TUNNEL_PORT_FORWARD;
    let ports = match query_ports(req.uri().query()) {
        Ok(p) if !channels || !p.is_empty() => p,
        Ok(_) => return status::response(400, "query parameter \"port\" is required"),
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
            Transport::WebSocket if channels => {
                let ws = websocket::server(upgraded).await;
                let base64 = protocol.contains("base64");
                forward_channels(ws, base64, ports, streams, namespace, pod).await;
                return;
            }
            Transport::WebSocket => {
                Session::start(websocket::tunnel(websocket::server(upgraded).await))
            }
        };
        forward(session, streams, namespace, pod).await;
    });
    response
}

fn query_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| {
            v.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port {v:?}: must be between 1 and 65535"))
        })
        .collect()
}

/// Connects to `port` of the pod, or says why not.
async fn connect(
    streams: &Arc<dyn PodStreams>,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<TcpStream, String> {
    let ip = streams
        .pod_addr(namespace, pod)
        .await
        .map_err(|e| e.to_string())?;
    let target = SocketAddr::new(ip, port);
    let prefix = format!("error forwarding port {port} to pod {namespace}/{pod}");
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(tcp)) => Ok(tcp),
        Ok(Err(e)) => Err(format!("{prefix}: failed to connect to {target}: {e}")),
        Err(_) => Err(format!("{prefix}: timed out connecting to {target}")),
    }
}

/// The WebSocket channel form (`v4.channel.k8s.io`, and the base64 variants): port `i` of the
/// query has data channel `2i` and error channel `2i+1`; each channel's first message is the
/// port number (2 bytes, little-endian). The socket closes once every port's connection ended.
async fn forward_channels(
    ws: websocket::Socket,
    base64: bool,
    ports: Vec<u16>,
    streams: Arc<dyn PodStreams>,
    namespace: String,
    pod: String,
) {
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut inbound: HashMap<u8, mpsc::Sender<(Bytes, bool)>> = HashMap::new();
    let mut tasks = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let Ok(data) = u8::try_from(2 * i) else { break };
        let error = data + 1;
        let (tx, rx) = mpsc::channel(16);
        inbound.insert(data, tx);
        let out = out_tx.clone();
        let (streams, namespace, pod) = (streams.clone(), namespace.clone(), pod.clone());
        tasks.push(tokio::spawn(async move {
            let port_bytes = Bytes::copy_from_slice(&port.to_le_bytes());
            let _ = out.send((data, port_bytes.clone())).await;
            let _ = out.send((error, port_bytes)).await;
            match connect(&streams, &namespace, &pod, port).await {
                Ok(tcp) => splice(tcp, Out::Channel(out, data), rx).await,
                Err(m) => {
                    let _ = out.send((error, Bytes::from(m))).await;
                }
            }
        }));
    }
    drop(out_tx);
    let encode = |ch: u8, data: &[u8]| {
        if base64 {
            websocket::encode_base64(ch, data)
        } else {
            websocket::encode(ch, data)
        }
    };
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some((ch, data)) => {
                    if sink.send(encode(ch, &data)).await.is_err() {
                        break;
                    }
                }
                // Every port's connection has ended.
                None => {
                    let _ = sink.send(websocket::normal_close()).await;
                    break;
                }
            },
            msg = source.next() => {
                let msg = match msg {
                    Some(Ok(Message::Binary(b))) if !base64 => websocket::decode(b, false),
                    Some(Ok(Message::Text(t))) if base64 => websocket::decode_base64(t.as_str()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => None,
                };
                if let Some(websocket::Incoming::Data { channel, data }) = msg
                    && let Some(tx) = inbound.get(&channel)
                    && !data.is_empty()
                    && tx.send((data, false)).await.is_err()
                {
                    inbound.remove(&channel);
                }
            }
        }
    }
    drop(inbound);
    for t in tasks {
        t.abort();
    }
    let _ = sink.close().await;
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
                        match connect(&streams, &namespace, &pod, port).await {
                            Ok(tcp) => splice(tcp, Out::Spdy(sender.clone(), data), rx).await,
                            Err(m) => {
                                fail(&sender, error, data, &m).await;
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

/// Where a forwarded connection's output goes: a SPDY data stream or a WebSocket channel.
enum Out {
    Spdy(Sender, u32),
    Channel(mpsc::Sender<(u8, Bytes)>, u8),
}

impl Out {
    async fn send(&self, b: Bytes) -> Result<(), ()> {
        match self {
            Out::Spdy(s, id) => s.data(*id, b).await.map_err(|_| ()),
            Out::Channel(s, ch) => s.send((*ch, b)).await.map_err(|_| ()),
        }
    }

    /// End of the pod's output: SPDY half-closes the stream; the channel form has no such
    /// signal (the socket closes when every port is done).
    async fn close(&self) {
        if let Out::Spdy(s, id) = self {
            let _ = s.close(*id).await;
        }
    }
}

/// Copies the data stream to the pod connection and back; returns when the pod side has ended
/// (or the client reset the stream).
async fn splice<S>(conn: S, out: Out, mut rx: mpsc::Receiver<(Bytes, bool)>)
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
                    if out.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
        out.close().await;
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
