//! The client side of HTTP/1.1, written by hand on a tokio `TcpStream`: one connection, one
//! request at a time, no hidden retries. It reports exactly what happened on the wire, in
//! particular whether *any* byte of a response arrived before a failure, which decides whether
//! the caller may resend the request (see `run.rs`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of each body kept for the tally; the rest is read and counted, not kept.
pub const BODY_KEEP: usize = 4096;
/// A response head larger than this is refused as malformed.
const HEAD_MAX: usize = 64 * 1024;
/// A chunk-size or trailer line longer than this is refused as malformed.
const LINE_MAX: usize = 8 * 1024;

/// `http://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
    /// `host[:port]` as written (the default `Host` header).
    pub authority: String,
}

pub fn parse_url(s: &str) -> Result<Url, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {s:?}"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if authority.is_empty() {
        return Err(format!("no host in {s:?}"));
    }
    if authority.contains('@') {
        return Err(format!("user info in URLs is not supported: {s:?}"));
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let end = r.find(']').ok_or_else(|| format!("unclosed [ in {s:?}"))?;
        let after = &r[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
            None if after.is_empty() => 80,
            None => return Err(format!("bad authority in {s:?}")),
        };
        (r[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("bad port in {s:?}"))?,
            ),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {s:?}"));
    }
    Ok(Url {
        host,
        port,
        path,
        authority: authority.to_string(),
    })
}

/// A GET request; `close` asks the server to close the connection after answering.
pub fn request(path: &str, host: &str, close: bool) -> Vec<u8> {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: baton-loadcheck\r\nAccept: */*\r\n"
    );
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// How a request failed.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection could not be opened (refused, unreachable, timed out).
    Connect(String),
    /// Nothing of a response arrived: the write failed, or the connection was closed or reset
    /// before the first byte of a response. Only this may be resent (on a reused connection).
    NoResponse(String),
    /// Some of a response arrived, then the connection broke or the response was malformed.
    Broken(String),
    /// No complete response within the request timeout; `conn` says which connection (its
    /// local address and how much it had served), to find it in conntrack or a capture.
    Timeout {
        ms: u128,
        got_any: bool,
        conn: String,
    },
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::NoResponse(_) => "no_response",
            Failure::Broken(_) => "broken_response",
            Failure::Timeout { .. } => "timeout",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Connect(m) | Failure::NoResponse(m) | Failure::Broken(m) => m.clone(),
            Failure::Timeout { ms, got_any, conn } => format!(
                "no complete response within {ms} ms ({}) on {conn}",
                if *got_any {
                    "part of it arrived"
                } else {
                    "nothing arrived"
                }
            ),
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The first `BODY_KEEP` bytes of the body (decoded from chunks).
    pub body: Vec<u8>,
    pub body_len: u64,
    /// The connection may carry another request (HTTP/1.1 without `Connection: close`, or
    /// HTTP/1.0 with `Connection: keep-alive`, and the body was delimited).
    pub keep_alive: bool,
}

pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// Responses completed on this connection.
    pub served: u64,
    got_any: bool,
}

pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, Failure> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(Failure::Connect(format!(
            "connect {addr}: timed out after {} ms",
            timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(Failure::Connect(format!("connect {addr}: {e}"))),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(Conn {
                stream,
                buf: BytesMut::with_capacity(8192),
                served: 0,
                got_any: false,
            })
        }
    }
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
}

impl Conn {
    /// Before reusing an idle kept-alive connection: has the peer closed or reset it, or sent
    /// bytes nobody asked for? Go's transport notices the same with its per-connection reader
    /// and drops such connections from the pool; `None` means the connection looks usable.
    pub fn idle_closed(&self) -> Option<&'static str> {
        if !self.buf.is_empty() {
            return Some("unsolicited bytes after the previous response");
        }
        let mut b = [0u8; 1];
        match self.stream.try_read(&mut b) {
            Ok(0) => Some("closed by the server while idle"),
            Ok(_) => Some("unsolicited bytes while idle"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(_) => Some("reset by the server while idle"),
        }
    }

    /// The connection for a failure report: local and peer address, responses served on it.
    pub fn describe(&self) -> String {
        let addr =
            |a: io::Result<SocketAddr>| a.map_or_else(|e| format!("?({e})"), |a| a.to_string());
        format!(
            "connection {} -> {} after {} response(s) on it",
            addr(self.stream.local_addr()),
            addr(self.stream.peer_addr()),
            self.served
        )
    }

    /// Whether any byte of the current response has arrived.
    pub fn got_any(&self) -> bool {
        self.got_any
    }

    /// Sends one request and reads its response.
    pub async fn exchange(&mut self, req: &[u8]) -> Result<Response, Failure> {
        self.got_any = false;
        if let Err(e) = self.stream.write_all(req).await {
            return Err(Failure::NoResponse(format!(
                "writing the request: {e} (nothing of a response arrived)"
            )));
        }
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n > 0 {
            self.got_any = true;
        }
        Ok(n)
    }

    async fn read_response(&mut self) -> Result<Response, Failure> {
        let head = loop {
            match parse_head(&self.buf) {
                Ok(Some((used, head))) => {
                    self.buf.advance(used);
                    // Interim answers (100 Continue, 103 Early Hints) precede the real one.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    break head;
                }
                Ok(None) => {}
                Err(e) => return Err(Failure::Broken(format!("malformed response head: {e}"))),
            }
            match self.fill().await {
                Ok(0) if self.got_any => {
                    return Err(Failure::Broken(
                        "connection closed in the middle of the response head".into(),
                    ));
                }
                Ok(0) => {
                    return Err(Failure::NoResponse(
                        "connection closed before any byte of a response (EOF)".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if self.got_any => {
                    return Err(Failure::Broken(format!(
                        "reading the response head: {e} (part of it arrived)"
                    )));
                }
                Err(e) => {
                    return Err(Failure::NoResponse(format!(
                        "reading the response: {e} (nothing of it arrived)"
                    )));
                }
            }
        };
        let mut body = Vec::new();
        let mut body_len = 0u64;
        let mut keep_alive = head.keep_alive;
        match head.framing {
            Framing::None => {}
            Framing::Length(n) => self.read_exact_body(n, &mut body, &mut body_len).await?,
            Framing::Chunked => loop {
                let line = self.read_line().await?;
                let size = line.split(';').next().unwrap_or_default().trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| Failure::Broken(format!("bad chunk size line {line:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.read_line().await?.is_empty() {}
                    break;
                }
                self.read_exact_body(size, &mut body, &mut body_len).await?;
                let end = self.read_line().await?;
                if !end.is_empty() {
                    return Err(Failure::Broken(format!(
                        "chunk not followed by CRLF: {end:?}"
                    )));
                }
            },
            Framing::UntilClose => {
                keep_alive = false;
                loop {
                    if !self.buf.is_empty() {
                        keep(&mut body, &mut body_len, &self.buf);
                        self.buf.clear();
                    }
                    match self.fill().await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            return Err(Failure::Broken(format!(
                                "reading a close-delimited body: {e}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(Response {
            status: head.status,
            body,
            body_len,
            keep_alive,
        })
    }

    async fn read_exact_body(
        &mut self,
        n: u64,
        body: &mut Vec<u8>,
        body_len: &mut u64,
    ) -> Result<(), Failure> {
        let mut left = n;
        while left > 0 {
            if self.buf.is_empty() {
                match self.fill().await {
                    Ok(0) => {
                        return Err(Failure::Broken(format!(
                            "connection closed with {left} body bytes missing"
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Err(Failure::Broken(format!(
                            "reading the body: {e} ({left} bytes missing)"
                        )));
                    }
                }
            }
            let take = (self.buf.len() as u64).min(left) as usize;
            keep(body, body_len, &self.buf[..take]);
            self.buf.advance(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// One line of a chunked body, without its line ending.
    async fn read_line(&mut self) -> Result<String, Failure> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = &self.buf[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let s = String::from_utf8_lossy(line).into_owned();
                self.buf.advance(i + 1);
                return Ok(s);
            }
            if self.buf.len() > LINE_MAX {
                return Err(Failure::Broken("chunk line too long".into()));
            }
            match self.fill().await {
                Ok(0) => {
                    return Err(Failure::Broken(
                        "connection closed inside a chunked body".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(Failure::Broken(format!("reading a chunked body: {e}"))),
            }
        }
    }
}

fn keep(body: &mut Vec<u8>, body_len: &mut u64, bytes: &[u8]) {
    *body_len += bytes.len() as u64;
    let room = BODY_KEEP.saturating_sub(body.len());
    body.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Parses a complete response head at the start of `buf`: `Ok(None)` until its empty line has
/// arrived; on success the bytes it used.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, String> {
    // The head ends at the first empty line (CRLF CRLF, or bare LF LF as RFC 9112 tolerates).
    let mut end = None;
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                end = Some(i + 1);
                break;
            }
            line_start = i + 1;
        }
    }
    let Some(used) = end else {
        if buf.len() > HEAD_MAX {
            return Err(format!("no end of head within {HEAD_MAX} bytes"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..used]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let code = parts.next().unwrap_or_default();
    let status: u16 = match code.parse() {
        Ok(s) if code.len() == 3 && (100..1000).contains(&s) => s,
        _ => return Err(format!("bad status code in {status_line:?}")),
    };
    let mut close = false;
    let mut keep_alive_token = false;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err("obsolete header line folding".into());
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Err(format!("unsupported transfer-encoding {value:?}"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| format!("bad content-length {value:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting content-length headers".into());
            }
            length = Some(n);
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let keep_alive = status != 101
        && !close
        && (minor == 1 || keep_alive_token)
        && !matches!(framing, Framing::UntilClose);
    Ok(Some((
        used,
        Head {
            status,
            keep_alive,
            framing,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://10.96.0.10:9090/").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.96.0.10", 9090, "/")
        );
        assert_eq!(u.authority, "10.96.0.10:9090");
        let u = parse_url("http://example.com?x=1").expect("url");
        assert_eq!((u.port, u.path.as_str()), (80, "/?x=1"));
        let u = parse_url("http://[::1]:8080/a/b").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/a/b")
        );
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert!(parse_url("http://h:x/").is_err());
    }

    #[test]
    fn heads() {
        let h = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let (used, head) = parse_head(h).expect("ok").expect("complete");
        assert_eq!(used, h.len() - 5);
        assert!(head.keep_alive && matches!(head.framing, Framing::Length(5)));
        let (_, head) =
            parse_head(b"HTTP/1.1 503 No\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n")
                .expect("ok")
                .expect("complete");
        assert!(!head.keep_alive && head.status == 503);
        let (_, head) = parse_head(b"HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n\n")
            .expect("ok")
            .expect("complete");
        assert!(!head.keep_alive && matches!(head.framing, Framing::Chunked));
        let (_, head) = parse_head(b"HTTP/1.1 200 OK\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert!(!head.keep_alive && matches!(head.framing, Framing::UntilClose));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nX: y\r\n")
                .expect("ok")
                .is_none()
        );
        assert!(parse_head(b"FOO 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
    }
}
