//! WebSocket transports: the channel protocols of exec (`v4.channel.k8s.io`,
//! `v5.channel.k8s.io`: each binary message starts with its channel byte — 0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize — and v5 adds message `[255, channel]` to close a channel, which
//! is how stdin reaches end-of-file), and the tunnel that carries a raw byte stream (SPDY for
//! port-forward) in binary messages.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
pub const V4_BASE64_CHANNEL: &str = "v4.base64.channel.k8s.io";
/// The unversioned channel protocols (port-forward's channel form accepts them too).
pub const CHANNEL: &str = "channel.k8s.io";
pub const BASE64_CHANNEL: &str = "base64.channel.k8s.io";
/// kubectl ≥ 1.31 tunnels port-forward's SPDY inside a WebSocket with this sub-protocol.
pub const SPDY_TUNNEL_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` half-closes `channel`.
pub const CLOSE: u8 = 255;

/// The server end of an upgraded WebSocket connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Wraps an upgraded connection (after our `101`) as a WebSocket.
pub async fn server(upgraded: Upgraded) -> Socket {
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await
}

/// One message of a channel protocol, as received.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Data {
        channel: u8,
        data: Bytes,
    },
    /// v5 close signal for `channel`.
    Close {
        channel: u8,
    },
}

/// Decodes a binary message of a channel protocol (`None` for an empty one).
pub fn decode(msg: Bytes, v5: bool) -> Option<Incoming> {
    let (&channel, _) = msg.split_first()?;
    if v5 && channel == CLOSE {
        return msg.get(1).map(|&c| Incoming::Close { channel: c });
    }
    Some(Incoming::Data {
        channel,
        data: msg.slice(1..),
    })
}

/// A binary message on `channel`.
pub fn encode(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// A text message of a base64 channel protocol: the channel as an ASCII digit, then the data
/// in base64.
pub fn encode_base64(channel: u8, data: &[u8]) -> Message {
    use base64::Engine;
    let mut s = String::with_capacity(data.len() * 4 / 3 + 4);
    s.push(char::from(b'0' + channel % 10));
    base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
    Message::Text(s.into())
}

/// Decodes a text message of a base64 channel protocol.
pub fn decode_base64(msg: &str) -> Option<Incoming> {
    use base64::Engine;
    let (&first, rest) = msg.as_bytes().split_first()?;
    let channel = first.checked_sub(b'0').filter(|c| *c <= 9)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    Some(Incoming::Data {
        channel,
        data: Bytes::from(data),
    })
}

/// A close frame with the normal-closure code (1000).
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Bridges a WebSocket whose binary messages carry a byte stream to an in-process duplex
/// stream; returns the other end. Ends (and closes the WebSocket) when either side ends.
pub fn tunnel(ws: Socket) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(ours);
        let (mut sink, mut stream) = ws.split();
        let mut buf = vec![0u8; 32 * 1024];
        let mut reading = true;
        loop {
            tokio::select! {
                msg = stream.next(), if reading => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if wr.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        let _ = wr.shutdown().await;
                        reading = false;
                    }
                    Some(Ok(_)) => {}
                },
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages() {
        assert_eq!(
            decode(Bytes::from_static(&[0, b'h', b'i']), true),
            Some(Incoming::Data {
                channel: 0,
                data: Bytes::from_static(b"hi")
            })
        );
        assert_eq!(
            decode(Bytes::from_static(&[255, 0]), true),
            Some(Incoming::Close { channel: 0 })
        );
        assert_eq!(
            decode(Bytes::from_static(&[255, 0]), false),
            Some(Incoming::Data {
                channel: 255,
                data: Bytes::from_static(&[0])
            })
        );
        assert_eq!(decode(Bytes::new(), true), None);
        assert_eq!(
            encode_base64(2, b"hi"),
            Message::Text("2aGk=".to_string().into())
        );
        assert_eq!(
            decode_base64("0aGk="),
            Some(Incoming::Data {
                channel: 0,
                data: Bytes::from_static(b"hi")
            })
        );
        assert_eq!(encode(1, b"x"), Message::Binary(vec![1, b'x'].into()));
    }
}
