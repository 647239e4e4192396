//! Protocol negotiation shared by the entry points: which transport the client asked for
//! (WebSocket or SPDY/3.1), which sub-protocol both sides speak, and the `101` answers.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::Body;

/// The transport a request asks to upgrade to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Spdy,
}

/// The header in which SPDY clients list the stream protocols they speak.
pub const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// The requested transport, from the `Upgrade` header.
pub fn transport(headers: &HeaderMap) -> Option<Transport> {
    let up = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    if up.split(',').any(|p| p.trim() == "websocket") {
        Some(Transport::WebSocket)
    } else if up.split(',').any(|p| p.trim() == "spdy/3.1") {
        Some(Transport::Spdy)
    } else {
        None
    }
}

/// Every value of a comma-separable, possibly repeated header, in the client's order.
fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The first protocol of the client's list (in its order of preference) that the server speaks.
pub fn negotiate(
    headers: &HeaderMap,
    transport: Transport,
    supported: &[&'static str],
) -> Result<&'static str, String> {
    let name = match transport {
        Transport::WebSocket => header::SEC_WEBSOCKET_PROTOCOL.as_str(),
        Transport::Spdy => STREAM_PROTOCOL_HEADER,
    };
    let offered = listed(headers, name);
    offered
        .iter()
        .find_map(|p| supported.iter().find(|s| **s == p.as_str()).copied())
        .ok_or_else(|| {
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
            )
        })
}

/// The `101 Switching Protocols` answer for a SPDY upgrade speaking `protocol`.
pub fn spdy_switching(protocol: &str) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert(STREAM_PROTOCOL_HEADER, v);
    }
    r
}

/// The `101 Switching Protocols` answer for a WebSocket upgrade speaking `protocol`; `None`
/// when the request lacks `Sec-WebSocket-Key`.
pub fn websocket_switching(headers: &HeaderMap, protocol: &str) -> Option<Response<Body>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).ok()?,
    );
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(protocol).ok()?,
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_clients_first_supported_protocol() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.append(
            STREAM_PROTOCOL_HEADER,
            HeaderValue::from_static("v5.channel.k8s.io"),
        );
        h.append(
            STREAM_PROTOCOL_HEADER,
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        assert_eq!(transport(&h), Some(Transport::Spdy));
        assert_eq!(
            negotiate(&h, Transport::Spdy, &["v4.channel.k8s.io"]),
            Ok("v4.channel.k8s.io")
        );
        assert!(negotiate(&h, Transport::Spdy, &["portforward.k8s.io"]).is_err());
        let mut w = HeaderMap::new();
        w.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        w.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
        );
        assert_eq!(transport(&w), Some(Transport::WebSocket));
        assert_eq!(
            negotiate(
                &w,
                Transport::WebSocket,
                &["v4.channel.k8s.io", "v5.channel.k8s.io"]
            ),
            Ok("v5.channel.k8s.io")
        );
    }
}
