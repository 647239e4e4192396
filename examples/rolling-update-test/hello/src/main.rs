//! hello: the rolling-update tutorial's web service.
//!
//! Answers every request (any path, any method) with `This is version N.`, where N comes from the
//! build (`HELLO_VERSION=2 cargo build`, default 1). Listens on :9090 (`PORT` overrides) and
//! logs `This is version N.` on start, like the seed tutorial's Go program.
//!
//! On SIGTERM (or SIGINT) it shuts down cleanly: it stops accepting, answers the requests in
//! flight (with `Connection: close`), closes idle keep-alive connections and exits 0 once every
//! connection is gone, or after `HELLO_DRAIN_SECONDS` (default 10). With
//! `HELLO_SHUTDOWN=immediate` it exits 0 at once instead, dropping whatever it was doing; a
//! second signal during a graceful shutdown does the same.
//!
//! A request header `X-Delay-Ms: N` (at most 60000) delays that request's answer by N ms: a way
//! to keep a request in flight while the server is told to stop.
//!
//! Std threads and sockets, one thread per connection; the only shared lock guards the table of
//! open connections and is taken when a connection opens or closes, never around I/O.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const VERSION: &str = match option_env!("HELLO_VERSION") {
    Some(v) => v,
    None => "1",
};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest line of a chunked body's framing.
const MAX_LINE: usize = 4096;
/// An idle keep-alive connection (or a stalled request) is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_DELAY_MS: u64 = 60_000;

struct Conn {
    stream: TcpStream,
    /// Part of a request has been read and not yet answered.
    busy: AtomicBool,
}

struct Server {
    body: String,
    draining: AtomicBool,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    gone: Condvar,
    next_id: AtomicU64,
}

impl Server {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the read side of every connection waiting for its next request; their threads see
    /// end of file and finish. Busy connections finish their request and close themselves.
    fn close_idle(&self) -> usize {
        let conns: Vec<Arc<Conn>> = self.conns().values().cloned().collect();
        let mut closed = 0;
        for c in conns {
            if !c.busy.load(SeqCst) {
                let _ = c.stream.shutdown(Shutdown::Read);
                closed += 1;
            }
        }
        closed
    }
}

/// Removes a connection from the table when its thread ends.
struct Registered<'a> {
    srv: &'a Server,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut conns = self.srv.conns();
        conns.remove(&self.id);
        if conns.is_empty() {
            self.srv.gone.notify_all();
        }
    }
}

fn main() {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => match p.trim().parse() {
            Ok(p) => p,
            Err(_) => fatal(&format!("PORT={p:?} is not a port number")),
        },
        Err(_) => 9090,
    };
    let immediate = match std::env::var("HELLO_SHUTDOWN").as_deref() {
        Ok("immediate") => true,
        Ok("graceful") | Ok("") | Err(_) => false,
        Ok(other) => fatal(&format!(
            "HELLO_SHUTDOWN={other:?}: expected \"graceful\" (the default) or \"immediate\""
        )),
    };
    let drain = match std::env::var("HELLO_DRAIN_SECONDS") {
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(s) => Duration::from_secs(s),
            Err(_) => fatal(&format!("HELLO_DRAIN_SECONDS={s:?} is not a number of seconds")),
        },
        Err(_) => Duration::from_secs(10),
    };

    let srv = Arc::new(Server {
        body: format!("This is version {VERSION}."),
        draining: AtomicBool::new(false),
        conns: Mutex::new(HashMap::new()),
        gone: Condvar::new(),
        next_id: AtomicU64::new(0),
    });

    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => fatal(&format!("listen on :{port}: {e}")),
    };
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => fatal(&format!("signal handlers: {e}")),
    };
    log(&srv.body);

    // The listener stays open (not dropped) until the process exits, so this descriptor number
    // cannot be reused by another socket while the signal thread may still use it.
    let listen_fd = listener.as_raw_fd();
    let sig_srv = Arc::clone(&srv);
    thread::spawn(move || {
        for sig in signals.forever() {
            let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
            if immediate {
                log(&format!("{name}: exiting at once (HELLO_SHUTDOWN=immediate)"));
                std::process::exit(0);
            }
            if sig_srv.draining.swap(true, SeqCst) {
                log(&format!("{name} again: exiting at once"));
                std::process::exit(0);
            }
            let open = sig_srv.conns().len();
            let idle = sig_srv.close_idle();
            log(&format!(
                "{name}: shutting down: no new connections; {} in flight, {idle} idle closed",
                open.saturating_sub(idle)
            ));
            // Wakes the accept below (EINVAL on Linux) and refuses new connections.
            // SAFETY: listen_fd is the listener's descriptor, open for the process's lifetime.
            unsafe {
                libc::shutdown(listen_fd, libc::SHUT_RDWR);
            }
        }
    });

    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if srv.draining.load(SeqCst) {
                    break; // accepted just before the listener closed: dropped unanswered
                }
                spawn_conn(&srv, stream);
            }
            Err(e) => {
                if srv.draining.load(SeqCst) {
                    break;
                }
                match e.kind() {
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                    _ => {
                        // e.g. out of descriptors: back off instead of spinning
                        log(&format!("accept: {e}"));
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }

    let deadline = Instant::now() + drain;
    let mut conns = srv.conns();
    while !conns.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            log(&format!(
                "gave up waiting after {}s: closing {} connection(s)",
                drain.as_secs(),
                conns.len()
            ));
            break;
        }
        conns = srv
            .gone
            .wait_timeout(conns, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    drop(conns);
    log("stopped");
    std::process::exit(0);
}

fn spawn_conn(srv: &Arc<Server>, stream: TcpStream) {
    let conn = Arc::new(Conn { stream, busy: AtomicBool::new(false) });
    let id = srv.next_id.fetch_add(1, SeqCst);
    // Registered before its thread first looks at `draining`: a shutdown either finds it in the
    // table or the thread sees the flag.
    srv.conns().insert(id, Arc::clone(&conn));
    let srv2 = Arc::clone(srv);
    let spawned = thread::Builder::new()
        .name(format!("conn-{id}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            let _reg = Registered { srv: &srv2, id };
            let _ = serve(&srv2, &conn);
        });
    if let Err(e) = spawned {
        log(&format!("cannot start a thread for a connection: {e}"));
        let mut conns = srv.conns();
        conns.remove(&id);
        if conns.is_empty() {
            srv.gone.notify_all();
        }
    }
}

/// A connection's bytes not yet consumed.
struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
}

impl Reader<'_> {
    /// Reads more bytes into the buffer; 0 at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        loop {
            match (&*self.stream).read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn need_more(&mut self) -> io::Result<()> {
        if self.fill()? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        Ok(())
    }

    /// Discards the next `n` bytes of the stream.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() {
                self.need_more()?;
            }
            let take = (self.buf.len() as u64).min(n) as usize;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(bad("line too long"));
            }
            self.need_more()?;
        }
    }

    /// Consumes a chunked body and its trailers.
    fn skip_chunked(&mut self) -> io::Result<()> {
        loop {
            let line = self.line()?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| bad("bad chunk size"))?;
            if size == 0 {
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.skip(size)?;
            if !self.line()?.is_empty() {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

struct Request {
    head: bool,
    http10: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    chunked: bool,
    content_length: Option<u64>,
    delay_ms: u64,
}

fn parse_head(head: &[u8]) -> Result<Request, &'static str> {
    let head = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err("bad request line"),
    };
    let _ = target;
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err("unsupported HTTP version"),
    };
    let mut req = Request {
        head: method == "HEAD",
        http10,
        close: false,
        keep_alive: false,
        expect_continue: false,
        chunked: false,
        content_length: None,
        delay_ms: 0,
    };
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or("header without a colon")?;
        if name.is_empty() || name.ends_with(' ') || name.ends_with('\t') {
            return Err("bad header name");
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| "bad Content-Length")?;
            if req.content_length.is_some_and(|m| m != n) {
                return Err("conflicting Content-Length");
            }
            req.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err("unsupported Transfer-Encoding");
            }
            req.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    req.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    req.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            req.expect_continue = value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("x-delay-ms") {
            req.delay_ms = value.parse::<u64>().map_err(|_| "bad X-Delay-Ms")?.min(MAX_DELAY_MS);
        }
    }
    if req.chunked && req.content_length.is_some() {
        return Err("both Content-Length and Transfer-Encoding");
    }
    Ok(req)
}

fn serve(srv: &Server, conn: &Conn) -> io::Result<()> {
    let stream = &conn.stream;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut r = Reader { stream, buf: Vec::with_capacity(4096) };
    loop {
        // Blank lines between requests are allowed (RFC 9112 2.2).
        while r.buf.starts_with(b"\r\n") {
            r.buf.drain(..2);
        }
        if r.buf.is_empty() {
            // Waiting for the next request: a shutdown may close us now (see close_idle).
            conn.busy.store(false, SeqCst);
            if srv.draining.load(SeqCst) {
                return Ok(());
            }
        }
        let head_len = loop {
            if let Some(i) = find(&r.buf, b"\r\n\r\n") {
                break i;
            }
            if r.buf.len() > MAX_HEAD {
                return reply_error(stream, "431 Request Header Fields Too Large");
            }
            match r.fill() {
                Ok(0) => return Ok(()),
                Ok(_) => conn.busy.store(true, SeqCst),
                Err(e) => return Err(e), // includes the idle timeout
            }
            while r.buf.starts_with(b"\r\n") {
                r.buf.drain(..2);
            }
        };
        let req = match parse_head(&r.buf[..head_len]) {
            Ok(req) => req,
            Err(_) => return reply_error(stream, "400 Bad Request"),
        };
        r.buf.drain(..head_len + 4);

        // Read the body (and ignore it) before answering, so the next request starts clean.
        let has_body = req.chunked || req.content_length.is_some_and(|n| n > 0);
        if has_body && req.expect_continue && r.buf.is_empty() && !req.http10 {
            (&*stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = if req.chunked {
            r.skip_chunked()
        } else {
            r.skip(req.content_length.unwrap_or(0))
        };
        if let Err(e) = body {
            return if e.kind() == io::ErrorKind::InvalidData {
                reply_error(stream, "400 Bad Request")
            } else {
                Err(e)
            };
        }

        if req.delay_ms > 0 {
            thread::sleep(Duration::from_millis(req.delay_ms));
        }
        let close =
            req.close || (req.http10 && !req.keep_alive) || srv.draining.load(SeqCst);
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n", srv.body.len()).as_bytes());
        out.extend_from_slice(format!("Date: {}\r\n", http_date(SystemTime::now())).as_bytes());
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if req.http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !req.head {
            out.extend_from_slice(srv.body.as_bytes());
        }
        (&*stream).write_all(&out)?;
        if close {
            linger_close(stream);
            return Ok(());
        }
    }
}

/// Answers a malformed request and closes the connection.
fn reply_error(stream: &TcpStream, status: &str) -> io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{status}\n",
        status.len() + 1
    );
    (&*stream).write_all(msg.as_bytes())?;
    linger_close(stream);
    Ok(())
}

/// Closes our side, then reads briefly so unread client bytes do not turn the close into a
/// reset that could discard the response just written.
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn fatal(msg: &str) -> ! {
    log(msg);
    std::process::exit(1);
}

/// Logs like Go's `log.Println`: `2006/01/02 15:04:05 message` on stderr (UTC).
fn log(msg: &str) {
    let (y, mo, d, h, mi, s, _) = civil(SystemTime::now());
    eprintln!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02} {msg}");
}

/// `Date` header form: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, days) = civil(t);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// UTC calendar fields of `t` and the days since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, i64) {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = ((rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32);
    (y, m, d, h, mi, s, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(civil(leap).0..=civil(leap).2 as i64, 2000..=29);
        assert_eq!(civil(leap).1, 2);
    }

    #[test]
    fn heads() {
        let r = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close").unwrap();
        assert!(r.close && !r.http10 && !r.head);
        let r = parse_head(b"HEAD /a?b HTTP/1.0\r\nConnection: Keep-Alive").unwrap();
        assert!(r.head && r.http10 && r.keep_alive);
        let r = parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").unwrap();
        assert!(r.chunked);
        assert!(parse_head(b"GET / HTTP/2.0").is_err());
        assert!(parse_head(b"GET /\r\n").is_err());
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nX-Delay-Ms: 999999").unwrap().delay_ms == MAX_DELAY_MS);
    }
}
