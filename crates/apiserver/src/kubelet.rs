//! The one client of the node agents' kubelet endpoints, shared by [`crate::nodeproxy`]
//! (`pods/log`, `exec`, `attach`, `portforward`) and [`crate::metricsapi`] (`/stats/summary`):
//! where a Node's kubelet listens, and one HTTP/1.1 request to it with the server's own
//! token, upgrades allowed (the streaming protocols), as the API server reaches kubelets in
//! Kubernetes.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How long connecting to a node agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a node agent failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("{0}")]
    Connect(#[source] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(String),
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error("decoding the answer: {0}")]
    Decode(#[from] serde_json::Error),
}

/// The kubelet endpoint in a Node's status: its InternalIP (else any address) and
/// `daemonEndpoints.kubeletEndpoint.Port`. `None` for nodes without one (simulated nodes).
pub fn endpoint(node: &Value) -> Option<SocketAddr> {
    let addrs = node.pointer("/status/addresses")?.as_array()?;
    let pick = |ty: &str| {
        addrs
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some(ty))
            .find_map(|a| a.get("address")?.as_str()?.parse().ok())
    };
    let ip = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)?;
    Some(SocketAddr::new(ip, port))
}

/// One node agent, reached with the server's token.
#[derive(Clone, Copy, Debug)]
pub struct Kubelet<'a> {
    pub addr: SocketAddr,
    pub token: &'a str,
}

impl Kubelet<'_> {
    /// Sends `req` (path and query in its URI) on a connection of its own, with `Host` and
    /// the server's `Authorization` set. The connection serves upgrades: on a `101`,
    /// `hyper::upgrade::on` of the answer yields the agent's side of the stream.
    pub async fn send(
        &self,
        mut req: Request<Empty<Bytes>>,
    ) -> Result<Response<Incoming>, KubeletError> {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(KubeletError::Connect(e)),
            Err(_) => return Err(KubeletError::Timeout),
        };
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "kubelet connection ended");
            }
        });
        let host = HeaderValue::from_str(&self.addr.to_string())
            .map_err(|e| KubeletError::Request(e.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|e| KubeletError::Request(e.to_string()))?;
        req.headers_mut().insert(header::HOST, host);
        req.headers_mut().insert(header::AUTHORIZATION, bearer);
        Ok(sender.send_request(req).await?)
    }

    /// GETs `path` and decodes the JSON answer; a non-2xx answer is an error.
    pub async fn get_json(&self, path: &str) -> Result<Value, KubeletError> {
        let req = Request::get(path)
            .body(Empty::<Bytes>::new())
            .map_err(|e| KubeletError::Request(e.to_string()))?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(KubeletError::Status(resp.status()));
        }
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_endpoint_is_the_internal_ip_and_the_kubelet_port() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(
            endpoint(&node),
            Some("127.0.0.1:10250".parse().expect("addr"))
        );
        assert_eq!(endpoint(&json!({"status": {}})), None);
        let simulated = json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.240.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
        assert_eq!(endpoint(&simulated), None);
    }

    /// A real HTTP exchange with a stand-in agent: the server's token and Host are sent, a
    /// JSON answer is decoded, an error status is an error.
    #[tokio::test]
    async fn get_json_sends_the_token_and_decodes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in ["200 OK", "403 Forbidden"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.expect("read");
                seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
                let body = r#"{"node":{"nodeName":"n1"}}"#;
                let reply = format!(
                    "HTTP/1.1 {answer}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.expect("write");
            }
            seen
        });
        let k = Kubelet {
            addr,
            token: "secret",
        };
        let v = k.get_json("/stats/summary").await.expect("summary");
        assert_eq!(v["node"]["nodeName"], "n1");
        let refused = k.get_json("/stats/summary").await;
        assert!(matches!(refused, Err(KubeletError::Status(s)) if s.as_u16() == 403));
        let seen = agent.await.expect("agent");
        let first = seen[0].to_ascii_lowercase();
        assert!(first.starts_with("get /stats/summary http/1.1"), "{first}");
        assert!(first.contains("authorization: bearer secret"), "{first}");
        assert!(first.contains(&format!("host: {addr}")), "{first}");
    }
}
