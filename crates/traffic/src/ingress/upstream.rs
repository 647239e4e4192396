//! HTTP/1.1 to one backend endpoint, driven by the request's own task.
//!
//! hyper's client runs each connection as a task of its own that a request talks to through
//! channels (the request in, the answer's head out, the body through another channel), and it
//! allocates a fresh read buffer per answer while the last head's bytes are still referenced.
//! Here the task serving the client's request writes the request and reads the answer on the
//! upstream socket itself, and the answer's body is read from that socket as the client's
//! connection pulls it: no task, channel or wake-up between the two sides, and one read buffer
//! per connection that is reused (short heads and bodies are copied out of it). This took the
//! proxy's user CPU per request down by about a quarter (`bench/traffic.sh`).
//!
//! What it speaks is what a reverse proxy needs: the request head as the proxy rewrote it, its
//! body as given (`Content-Length`) or chunked, and the answer's head (interim 1xx skipped)
//! with its body framed by `Content-Length`, chunked coding or the connection's end; `101
//! Switching Protocols` hands the socket over for a tunnel. An idle pooled connection is
//! checked without a system call: the runtime's cached readiness says whether the backend
//! closed it or sent anything since its last answer.

use std::collections::VecDeque;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use hyper::body::{Body, Incoming, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer head accepted from a backend (hyper's client allows ~400 KiB; nginx's
/// `proxy_buffer_size` is 4–8 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size line or trailer section of a chunked body.
const MAX_LINE: usize = 64 * 1024;
/// Space asked of the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// Body pieces up to this size are copied out of the read buffer, so the buffer stays unshared
/// and is reused; larger ones are handed out without a copy.
const COPY_BELOW: usize = 4 * 1024;

/// An open HTTP/1.1 connection to an endpoint.
pub(crate) struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// The request head being written (kept for its capacity).
    head: Vec<u8>,
    /// The request body still being sent.
    upload: Option<Upload>,
    /// The request body could not be sent whole: the connection is not reused.
    upload_failed: bool,
}

/// A request body on its way to the backend.
struct Upload {
    body: Incoming,
    chunked: bool,
    /// Bytes taken from the body (and chunk framing) not yet written.
    pending: VecDeque<Bytes>,
    done: bool,
}

impl Upload {
    fn poll(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            while let Some(front) = self.pending.front_mut() {
                let n = ready!(Pin::new(&mut *stream).poll_write(cx, front)).map_err(Error::Io)?;
                if n == 0 {
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
                }
                front.advance(n);
                if front.is_empty() {
                    self.pending.pop_front();
                }
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    self.done = true;
                    if self.chunked {
                        self.pending.push_back(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(Error::ClientBody(e))),
                Some(Ok(frame)) => {
                    // Trailers are not passed on.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        if self.chunked {
                            self.pending
                                .push_back(Bytes::from(format!("{:x}\r\n", data.len())));
                            self.pending.push_back(data);
                            self.pending.push_back(Bytes::from_static(b"\r\n"));
                        } else {
                            self.pending.push_back(data);
                        }
                    }
                }
            }
        }
    }
}

/// Why an exchange failed before the answer's head was complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("connection closed before an answer")]
    Closed,
    #[error("invalid answer: {0}")]
    Invalid(&'static str),
    #[error("reading the client's request body: {0}")]
    ClientBody(#[source] hyper::Error),
}

/// A failed exchange and how far it got.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: Error,
    /// No byte of the request reached the connection: it can go elsewhere as it is.
    pub(crate) unsent: bool,
    /// No byte of an answer arrived.
    pub(crate) unanswered: bool,
}

impl Failed {
    /// Whether the connection went away before any answer (so a replayable request may go
    /// again), as opposed to a malformed answer or a client that failed its body.
    pub(crate) fn broke_before_answer(&self) -> bool {
        if !self.unanswered {
            return false;
        }
        match &self.error {
            Error::Closed => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// An answer's head.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The reason phrase when it is not the status code's canonical one.
    pub(crate) reason: Option<Bytes>,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the backend closes the connection.
    Close,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            head: Vec::new(),
            upload: None,
            upload_failed: false,
        }
    }

    /// Whether an idle connection can carry another request: the backend has neither closed
    /// it nor sent anything since its last answer. No system call unless the socket became
    /// readable since the last read.
    pub(crate) fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// The socket and whatever was read past the answer's head (for a protocol switch).
    pub(crate) fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }

    /// Sends the request (`parts` as rewritten by the proxy) and reads the answer's head. The
    /// body, when there is one, is taken once the head is written and streamed (as given when
    /// it has a `Content-Length`, else chunked) while the answer is read: a backend may answer
    /// before the upload ends, and the rest goes on as the answer's body is read.
    pub(crate) async fn exchange(
        &mut self,
        parts: &http::request::Parts,
        body: &mut Option<Incoming>,
    ) -> Result<Head, Failed> {
        let chunked = body.is_some() && !parts.headers.contains_key(header::CONTENT_LENGTH);
        encode_head(&mut self.head, parts, chunked);
        let mut written = false;
        if let Err(e) = write_all(&mut self.stream, &self.head, &mut written).await {
            return Err(Failed {
                error: Error::Io(e),
                unsent: !written,
                unanswered: true,
            });
        }
        if let Some(b) = body.take() {
            self.upload = Some(Upload {
                body: b,
                chunked,
                pending: VecDeque::new(),
                done: false,
            });
        }
        let mut received = !self.buf.is_empty();
        let mut write_error = None;
        std::future::poll_fn(|cx| {
            if let Err(e) = self.poll_upload(cx) {
                match e {
                    Error::ClientBody(_) => {
                        return Poll::Ready(Err(Failed {
                            error: e,
                            unsent: false,
                            unanswered: true,
                        }));
                    }
                    // The backend may have answered already (and closed): read on.
                    e => write_error = Some(e),
                }
            }
            self.poll_head(&parts.method, &mut received, cx)
                .map_err(|(error, unanswered)| Failed {
                    error: match (error, write_error.take()) {
                        (Error::Closed, Some(w)) => w,
                        (e, _) => e,
                    },
                    unsent: false,
                    unanswered,
                })
        })
        .await
    }

    /// Moves the request body along; an error ends the upload (and the connection's reuse).
    fn poll_upload(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let Some(up) = self.upload.as_mut() else {
            return Ok(());
        };
        match up.poll(&mut self.stream, cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(Ok(())) => {
                self.upload = None;
                Ok(())
            }
            Poll::Ready(Err(e)) => {
                self.upload = None;
                self.upload_failed = true;
                Err(e)
            }
        }
    }

    /// Whether the request went out whole (no upload left or failed).
    fn uploaded(&self) -> bool {
        self.upload.is_none() && !self.upload_failed
    }

    /// Reads an answer's head, skipping interim (1xx other than 101) answers. The flag with an
    /// error says whether no byte of an answer had arrived.
    fn poll_head(
        &mut self,
        method: &Method,
        received: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Head, (Error, bool)>> {
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf, method) {
                    Err(why) => return Poll::Ready(Err((Error::Invalid(why), false))),
                    Ok(Some((head, len))) => {
                        self.buf.advance(len);
                        if head.status.is_informational()
                            && head.status != StatusCode::SWITCHING_PROTOCOLS
                        {
                            continue;
                        }
                        return Poll::Ready(Ok(head));
                    }
                    Ok(None) if self.buf.len() > MAX_HEAD => {
                        return Poll::Ready(Err((Error::Invalid("head too large"), false)));
                    }
                    Ok(None) => {}
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) if *received => {
                    return Poll::Ready(Err((Error::Invalid("head cut short"), false)));
                }
                Ok(0) => return Poll::Ready(Err((Error::Closed, true))),
                Ok(_) => *received = true,
                Err(e) => return Poll::Ready(Err((Error::Io(e), !*received))),
            }
        }
    }

    /// Reads more into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.buf);
        tokio::pin!(read);
        read.poll(cx)
    }

    /// The first `n` buffered bytes, copied when short (so the buffer is reused).
    fn take(&mut self, n: usize) -> Bytes {
        if n <= COPY_BELOW {
            let b = Bytes::copy_from_slice(&self.buf[..n]);
            self.buf.advance(n);
            b
        } else {
            self.buf.split_to(n).freeze()
        }
    }
}

async fn write_all(stream: &mut TcpStream, mut data: &[u8], written: &mut bool) -> io::Result<()> {
    while !data.is_empty() {
        match stream.write(data).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                *written = true;
                data = &data[n..];
            }
        }
    }
    Ok(())
}

/// The request head in origin form, HTTP/1.1.
fn encode_head(out: &mut Vec<u8>, parts: &http::request::Parts, chunked: bool) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses an answer's head from the start of `buf`: `None` while it is incomplete, else the
/// head and its length.
fn parse_head(buf: &[u8], method: &Method) -> Result<Option<(Head, usize)>, &'static str> {
    let mut pos = 0;
    let next_line = |pos: &mut usize| -> Option<&[u8]> {
        let rest = &buf[*pos..];
        let nl = rest.iter().position(|&b| b == b'\n')?;
        *pos += nl + 1;
        let line = &rest[..nl];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    };
    let Some(status_line) = next_line(&mut pos) else {
        return if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            Err("not an HTTP/1 answer")
        } else {
            Ok(None)
        };
    };
    let version = match status_line.get(..9) {
        Some(b"HTTP/1.1 ") => Version::HTTP_11,
        Some(b"HTTP/1.0 ") => Version::HTTP_10,
        _ => return Err("bad status line"),
    };
    let code = status_line.get(9..12).ok_or("bad status line")?;
    let status = StatusCode::from_bytes(code).map_err(|_| "bad status code")?;
    let reason = match status_line.get(12..) {
        None | Some(b"") => None,
        Some(r) if r[0] == b' ' => {
            let r = &r[1..];
            (status.canonical_reason().map(str::as_bytes) != Some(r) && !r.is_empty())
                .then(|| Bytes::copy_from_slice(r))
        }
        Some(_) => return Err("bad status line"),
    };
    let mut headers = HeaderMap::new();
    loop {
        let Some(line) = next_line(&mut pos) else {
            return Ok(None);
        };
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err("folded header line");
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or("header line without a colon")?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| "bad header name")?;
        let value = line[colon + 1..].trim_ascii();
        let value = HeaderValue::from_bytes(value).map_err(|_| "bad header value")?;
        headers.append(name, value);
    }
    let framing = framing(status, method, &headers)?;
    let keep_alive = framing != Framing::Close
        && match version {
            Version::HTTP_11 => !has_token(&headers, "close"),
            _ => has_token(&headers, "keep-alive"),
        };
    Ok(Some((
        Head {
            status,
            headers,
            reason,
            framing,
            keep_alive,
        },
        pos,
    )))
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How the answer's body is delimited (RFC 9112 section 6.3).
fn framing(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Framing, &'static str> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::Close,
        });
    }
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().map_err(|_| "bad content-length")?.split(',') {
            let n: u64 = part.trim().parse().map_err(|_| "bad content-length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting content-length");
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

/// Where a body's reading stands.
#[derive(Debug)]
enum State {
    Done,
    Length(u64),
    Close,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers(usize),
}

/// An answer's body, read from its connection as it is polled.
pub(crate) struct Message {
    conn: Option<Conn>,
    state: State,
    keep_alive: bool,
    /// The body's length when the head gave it.
    length: Option<u64>,
}

impl Message {
    pub(crate) fn new(conn: Conn, head: &Head) -> Message {
        let (state, length) = match head.framing {
            Framing::Empty => (State::Done, Some(0)),
            Framing::Length(n) => (State::Length(n), Some(n)),
            Framing::Chunked => (State::ChunkSize, None),
            Framing::Close => (State::Close, None),
        };
        Message {
            conn: Some(conn),
            state,
            keep_alive: head.keep_alive,
            length,
        }
    }

    pub(crate) fn is_end(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match (self.length, &self.state) {
            (_, State::Done) => SizeHint::with_exact(0),
            (Some(n), State::Length(r)) if *r == n => SizeHint::with_exact(n),
            (_, State::Length(r)) => SizeHint::with_exact(*r),
            _ => SizeHint::default(),
        }
    }

    /// The connection, once the body was read whole and the connection can carry another
    /// request.
    pub(crate) fn take_reusable(&mut self) -> Option<Conn> {
        let conn = self.conn.take()?;
        (self.is_end() && self.keep_alive && conn.buf.is_empty() && conn.uploaded()).then_some(conn)
    }

    /// Closes the connection (a body that failed or was abandoned).
    pub(crate) fn abandon(&mut self) {
        self.conn = None;
        self.state = State::Done;
    }

    /// The next piece of the body; an error for a body cut short or malformed.
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if let Some(conn) = self.conn.as_mut()
            && let Err(e) = conn.poll_upload(cx)
        {
            // The answer goes on; the connection is not reused.
            tracing::debug!(error = %e, "request body not sent whole");
        }
        loop {
            if matches!(self.state, State::Done) {
                return Poll::Ready(None);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(Some(Err(io::ErrorKind::NotConnected.into())));
            };
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Length(remaining) | State::ChunkData(remaining) => {
                    if conn.buf.is_empty() && ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(cut_short())));
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(conn.buf.len());
                    let data = conn.take(n);
                    let left = remaining - n as u64;
                    self.state = match (&self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                    return Poll::Ready(Some(Ok(data)));
                }
                State::Close => {
                    if conn.buf.is_empty() && ready!(conn.poll_fill(cx))? == 0 {
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                    let n = conn.buf.len();
                    return Poll::Ready(Some(Ok(conn.take(n))));
                }
                State::ChunkSize => match line(&conn.buf) {
                    Some(len) => {
                        let size = chunk_size(&conn.buf[..len]).ok_or_else(bad_chunk)?;
                        conn.buf.advance(len);
                        self.state = if size == 0 {
                            State::Trailers(0)
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    None if conn.buf.len() > MAX_LINE => {
                        return Poll::Ready(Some(Err(bad_chunk())));
                    }
                    None => {
                        if ready!(conn.poll_fill(cx))? == 0 {
                            return Poll::Ready(Some(Err(cut_short())));
                        }
                    }
                },
                State::ChunkEnd => {
                    if conn.buf.starts_with(b"\r\n") {
                        conn.buf.advance(2);
                        self.state = State::ChunkSize;
                    } else if conn.buf.starts_with(b"\n") {
                        conn.buf.advance(1);
                        self.state = State::ChunkSize;
                    } else if conn.buf.len() >= 2 || conn.buf.first().is_some_and(|&b| b != b'\r') {
                        return Poll::Ready(Some(Err(bad_chunk())));
                    } else if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(cut_short())));
                    }
                }
                State::Trailers(seen) => match line(&conn.buf) {
                    Some(len) => {
                        let empty = conn.buf[..len].trim_ascii().is_empty();
                        conn.buf.advance(len);
                        if empty {
                            self.state = State::Done;
                            return Poll::Ready(None);
                        }
                        if seen + len > MAX_LINE {
                            return Poll::Ready(Some(Err(bad_chunk())));
                        }
                        self.state = State::Trailers(seen + len);
                    }
                    None if seen + conn.buf.len() > MAX_LINE => {
                        return Poll::Ready(Some(Err(bad_chunk())));
                    }
                    None => {
                        if ready!(conn.poll_fill(cx))? == 0 {
                            return Poll::Ready(Some(Err(cut_short())));
                        }
                    }
                },
            }
        }
    }
}

/// The length of the first line of `buf`, its line feed included.
fn line(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n').map(|i| i + 1)
}

/// A chunk-size line's size (extensions ignored).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = line.split(|&b| b == b';').next()?.trim_ascii();
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "backend closed the connection before the end of the body",
    )
}

fn bad_chunk() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "malformed chunked body from the backend",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, method: Method) -> Result<Option<(Head, usize)>, &'static str> {
        parse_head(text.as_bytes(), &method)
    }

    #[test]
    fn heads_parse_with_framing_and_keep_alive() {
        let (h, len) = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 19\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\nbody",
            Method::GET,
        )
        .expect("valid")
        .expect("complete");
        assert_eq!(len, 69);
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, Framing::Length(19));
        assert!(h.keep_alive);
        assert!(h.reason.is_none());
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);

        let (h, _) = head(
            "HTTP/1.1 200 Fine\nTransfer-Encoding: gzip, chunked\nConnection: close\n\n",
            Method::GET,
        )
        .expect("valid")
        .expect("complete");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive);
        assert_eq!(h.reason.as_deref(), Some(&b"Fine"[..]));

        let (h, _) = head("HTTP/1.0 200 OK\r\n\r\n", Method::GET)
            .expect("valid")
            .expect("complete");
        assert_eq!(h.framing, Framing::Close);
        assert!(!h.keep_alive);

        let (h, _) = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD)
            .expect("valid")
            .expect("complete");
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);

        assert!(
            head("HTTP/1.1 200 OK\r\nContent-Le", Method::GET)
                .expect("valid")
                .is_none()
        );
        assert!(
            head(
                "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                Method::GET
            )
            .is_err()
        );
        assert!(head("HTTP/1.1 200 OK\r\n folded\r\n\r\n", Method::GET).is_err());
        assert!(head("SSH-2.0-OpenSSH\r\n", Method::GET).is_err());
        assert!(head("HTTP/1.1 2000 OK\r\n\r\n", Method::GET).is_err());
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(chunk_size(b"0;ext=1\r\n"), Some(0));
        assert_eq!(chunk_size(b"zz\r\n"), None);
        assert_eq!(chunk_size(b"\r\n"), None);
    }

    /// A body as the backend framed it, read through a real socket pair.
    async fn read_body(
        head_text: &str,
        wire: &'static [&'static [u8]],
    ) -> (io::Result<Vec<u8>>, bool) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let writer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            for piece in wire {
                s.write_all(piece).await.expect("write");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // Keep the connection open a moment so a complete body is not confused with EOF.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        });
        let conn = Conn::new(TcpStream::connect(addr).await.expect("connect"));
        let (h, _) = head(head_text, Method::GET)
            .expect("valid")
            .expect("complete");
        let mut msg = Message::new(conn, &h);
        let mut out = Vec::new();
        let result = loop {
            match std::future::poll_fn(|cx| msg.poll_data(cx)).await {
                None => break Ok(out),
                Some(Ok(b)) => out.extend_from_slice(&b),
                Some(Err(e)) => break Err(e),
            }
        };
        let reusable = msg.take_reusable().is_some();
        writer.abort();
        (result, reusable)
    }

    #[tokio::test]
    async fn bodies_by_length_chunks_and_close() {
        let (b, reusable) = read_body(
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            &[b"hello ", b"world"],
        )
        .await;
        assert_eq!(b.expect("body"), b"hello world");
        assert!(reusable);

        let (b, reusable) = read_body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &[
                b"5\r\nhel",
                b"lo\r\n6;x=y\r\n world\r",
                b"\n0\r\nTrailer: 1\r\n\r\n",
            ],
        )
        .await;
        assert_eq!(b.expect("body"), b"hello world");
        assert!(reusable);

        let (b, reusable) = read_body(
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            &[b"hello "],
        )
        .await;
        assert!(b.is_err(), "a body cut short is an error");
        assert!(!reusable);

        let (b, reusable) = read_body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &[b"x\r\n"],
        )
        .await;
        assert!(b.is_err(), "a malformed chunk is an error");
        assert!(!reusable);
    }
}
