//! One client request, proxied: route it through the live table, send it to an endpoint over
//! a pooled or new connection, retry what could not be sent, stream the answer back.
//!
//! Retries follow ingress-nginx's `proxy_next_upstream error` with Traefik's caution: a
//! request is sent again (to another routable endpoint when there is one, up to
//! [`Options::tries`](super::Options) tries) when it could not be sent at all — connect
//! refused or timed out, or the connection closed before the request was written (hyper hands
//! such a request back) — and, for idempotent requests without a body, also when the
//! connection broke before any answer came (the keep-alive race of a backend closing an idle
//! connection). Anything else that fails before the answer's head is a 502 (504 for a connect
//! timeout); a failure after the head aborts the client's connection.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::Options;
use super::body::{Access, Counters, Finish, ResponseBody};
use super::metrics::{Metrics, ServiceMetrics};
use super::pool::{ConnectError, InFlight};
use super::table::{Backend, Live, Table, Target};
use super::upstream::{Conn, Failed, Head, Message};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What every connection of one proxy shares.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    pub(crate) live: Live,
    pub(crate) metrics: Metrics,
}

/// Which listener a client connection came through (`X-Forwarded-Proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn header(self) -> HeaderValue {
        match self {
            Scheme::Http => HeaderValue::from_static("http"),
            Scheme::Https => HeaderValue::from_static("https"),
        }
    }
}

/// The hyper service of one client connection. It caches the route table and only reloads it
/// when the live generation moved, so a request costs one atomic load, not a lock.
pub(crate) struct ConnService {
    shared: Arc<Shared>,
    client_ip: HeaderValue,
    scheme: Scheme,
    table: RefCell<Arc<Table>>,
}

impl ConnService {
    pub(crate) fn new(shared: Arc<Shared>, peer: IpAddr, scheme: Scheme) -> ConnService {
        let table = shared.live.load();
        let client_ip = client_ip_header(peer);
        ConnService {
            shared,
            client_ip,
            scheme,
            table: RefCell::new(table),
        }
    }

    /// The live table, reloaded only when the live generation moved (borrowed: no reference
    /// count shared with the other workers is touched per request).
    fn table(&self) -> std::cell::Ref<'_, Arc<Table>> {
        let generation = self.shared.live.generation();
        if self.table.borrow().generation != generation {
            *self.table.borrow_mut() = self.shared.live.load();
        }
        self.table.borrow()
    }
}

thread_local! {
    /// The last client address seen on this thread and its header value: a client opening
    /// connection after connection costs no formatting or allocation per connection.
    static LAST_CLIENT: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
}

/// `peer` as an `X-Forwarded-For` / `X-Real-IP` value.
fn client_ip_header(peer: IpAddr) -> HeaderValue {
    LAST_CLIENT.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((ip, value)) = last.as_ref()
            && *ip == peer
        {
            return value.clone();
        }
        let value = HeaderValue::from_maybe_shared(Bytes::from(peer.to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        *last = Some((peer, value.clone()));
        value
    })
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn call(&self, req: Request<Incoming>) -> BoxFuture {
        let start = Instant::now();
        let routed = route(
            &self.shared,
            &self.table(),
            host_of(&req),
            req.uri().path(),
            &[],
        );
        let shared = self.shared.clone();
        let client_ip = self.client_ip.clone();
        let scheme = self.scheme;
        Box::pin(async move {
            let resp = match routed {
                Routed::Ready(backend, inflight) => {
                    forward(shared, client_ip, scheme, req, backend, inflight, start).await
                }
                other => answer_locally(&shared, other, &req, start),
            };
            Ok(resp)
        })
    }
}

/// Where the live table sends a request.
enum Routed {
    NotFound,
    Unavailable(Bytes, Option<Arc<ServiceMetrics>>),
    /// An endpoint, entered: the request counts as in flight to it.
    Ready(Arc<Backend>, InFlight),
}

/// Routes through `table`, falling back to the live table when it moved on between picking an
/// endpoint and entering it (see `pool`'s module doc for why that re-check makes draining
/// exact).
fn route(
    shared: &Shared,
    table: &Arc<Table>,
    host: &str,
    path: &str,
    tried: &[SocketAddr],
) -> Routed {
    let mut reloaded: Option<Arc<Table>> = None;
    loop {
        let table = reloaded.as_ref().unwrap_or(table);
        match table.route(host, path) {
            None => return Routed::NotFound,
            Some(Target::Unavailable { body, metrics }) => {
                return Routed::Unavailable(body.clone(), metrics.clone());
            }
            Some(Target::Ready(backend)) => {
                let inflight = backend.pick(tried).enter();
                if shared.live.generation() == table.generation {
                    return Routed::Ready(backend.clone(), inflight);
                }
            }
        }
        reloaded = Some(shared.live.load());
    }
}

/// The host a request is for: the authority of an absolute URI, else the Host header.
fn host_of<B>(req: &Request<B>) -> &str {
    if let Some(a) = req.uri().authority() {
        return a.as_str();
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
}

/// [`host_of`] for a request taken apart.
fn host_of_parts(parts: &http::request::Parts) -> &str {
    if let Some(a) = parts.uri.authority() {
        return a.as_str();
    }
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
}

fn answer_locally(
    shared: &Shared,
    routed: Routed,
    req: &Request<Incoming>,
    start: Instant,
) -> Response<ResponseBody> {
    let (status, body, metrics) = match routed {
        Routed::NotFound => {
            shared.metrics.unmatched();
            let body = format!(
                "404 Not Found: no Ingress rule for host \"{}\" path \"{}\"\n",
                host_of(req).escape_debug(),
                req.uri().path().escape_debug()
            );
            (StatusCode::NOT_FOUND, Bytes::from(body), None)
        }
        Routed::Unavailable(body, metrics) => (StatusCode::SERVICE_UNAVAILABLE, body, metrics),
        Routed::Ready(..) => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::new(), None),
    };
    let finish = Finish {
        metrics: metrics.map(Counters::Service),
        status: status.as_u16(),
        start,
        access: shared.opts.access_log.then(|| access(req, None)),
    };
    plain(status, body, Some(finish))
}

fn access<B>(req: &Request<B>, backend: Option<SocketAddr>) -> Box<Access> {
    Box::new(Access {
        method: req.method().clone(),
        host: host_of(req).to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        backend,
    })
}

fn plain(status: StatusCode, body: Bytes, finish: Option<Finish>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(body, finish));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Why the last try failed.
enum Failure {
    Connect(ConnectError),
    Send(Failed),
}

async fn forward(
    shared: Arc<Shared>,
    client_ip: HeaderValue,
    scheme: Scheme,
    mut req: Request<Incoming>,
    backend: Arc<Backend>,
    inflight: InFlight,
    start: Instant,
) -> Response<ResponseBody> {
    let upgrade = upgrade_of(&req);
    let on_client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let mut access_line = shared.opts.access_log.then(|| access(&req, None));
    let host_header = req.headers().get(header::HOST).cloned();
    rewrite_request(&mut req, &client_ip, scheme, upgrade, host_header);
    let (parts, body) = req.into_parts();
    let mut body = (!body.is_end_stream()).then_some(body);
    // A bodiless idempotent request may go again when its connection broke before any answer
    // (the keep-alive race of a backend closing an idle connection).
    let replayable = body.is_none() && on_client_upgrade.is_none() && is_idempotent(&parts.method);
    let mut current = Some((backend, inflight));
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut last: Option<Failure> = None;
    let tries = shared.opts.tries.max(1);
    // The last backend tried, for the counters of a failed request.
    let mut last_backend: Option<Arc<Backend>> = None;

    for attempt in 1..=tries {
        let (backend, inflight) = match current.take() {
            Some(c) => c,
            None => {
                let table = shared.live.load();
                // The request (still unsent, or its replay) keeps the Host and path it had.
                match route(
                    &shared,
                    &table,
                    host_of_parts(&parts),
                    parts.uri.path(),
                    &tried,
                ) {
                    Routed::Ready(b, i) => (b, i),
                    // The table changed under the retry: answer what it says now.
                    Routed::NotFound => {
                        shared.metrics.unmatched();
                        return finish_plain(
                            StatusCode::NOT_FOUND,
                            Bytes::from_static(b"404 Not Found\n"),
                            None,
                            start,
                            access_line,
                        );
                    }
                    Routed::Unavailable(body, m) => {
                        return finish_plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            body,
                            m,
                            start,
                            access_line,
                        );
                    }
                }
            }
        };
        if attempt > 1 {
            backend.metrics.retried();
        }
        let ep = inflight.endpoint();
        let (mut conn, reused) = match connection(ep, shared.opts.connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                backend.metrics.connect_failed();
                tracing::debug!(upstream = %ep, service = %backend.service, error = %e, attempt, "connecting to the backend failed");
                tried.push(ep.addr);
                last = Some(Failure::Connect(e));
                last_backend = Some(backend);
                continue;
            }
        };
        match conn.exchange(&parts, &mut body).await {
            Ok(head) => {
                if let Some(a) = access_line.as_mut() {
                    a.backend = Some(ep.addr);
                }
                return respond(
                    head,
                    conn,
                    inflight,
                    on_client_upgrade,
                    backend,
                    start,
                    access_line,
                );
            }
            Err(failed) => {
                tracing::debug!(upstream = %ep, error = %failed.error, attempt, reused, "sending to the backend failed");
                tried.push(ep.addr);
                let again = failed.unsent || (replayable && failed.broke_before_answer());
                last = Some(Failure::Send(failed));
                last_backend = Some(backend);
                if !again {
                    break;
                }
            }
        }
    }
    let metrics = last_backend.map(|b| b.metrics.clone());
    let (status, why) = match &last {
        Some(Failure::Connect(e)) if e.is_timeout() => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        Some(Failure::Connect(e)) => (StatusCode::BAD_GATEWAY, e.to_string()),
        Some(Failure::Send(f)) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "backend {}: {}",
                tried.last().map(|a| a.to_string()).unwrap_or_default(),
                f.error
            ),
        ),
        None => (StatusCode::BAD_GATEWAY, "no backend answered".to_string()),
    };
    if let Some(a) = access_line.as_mut() {
        a.backend = tried.last().copied();
    }
    let body = Bytes::from(format!(
        "{} {}: {why}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ));
    finish_plain(status, body, metrics, start, access_line)
}

fn finish_plain(
    status: StatusCode,
    body: Bytes,
    metrics: Option<Arc<ServiceMetrics>>,
    start: Instant,
    access: Option<Box<Access>>,
) -> Response<ResponseBody> {
    let finish = Finish {
        metrics: metrics.map(Counters::Service),
        status: status.as_u16(),
        start,
        access,
    };
    plain(status, body, Some(finish))
}

/// A connection to the endpoint: an idle pooled one, else a new one. The flag says whether it
/// was reused.
async fn connection(
    ep: &Arc<super::pool::Endpoint>,
    timeout: std::time::Duration,
) -> Result<(Conn, bool), ConnectError> {
    if let Some(c) = ep.checkout() {
        return Ok((c, true));
    }
    ep.connect(timeout).await.map(|c| (c, false))
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The `Upgrade` header of a request asking for a protocol switch (`Connection: upgrade`).
fn upgrade_of<B>(req: &Request<B>) -> Option<HeaderValue> {
    let upgrade = req.headers().get(header::UPGRADE)?;
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| upgrade.clone())
}

/// Removes hop-by-hop headers: those the Connection header names and the fixed list.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
        h.remove(header::CONNECTION);
    }
    for n in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
    ] {
        if h.contains_key(n) {
            h.remove(n);
        }
    }
}

/// Prepares a client request for the backend: origin-form URI, HTTP/1.1, hop-by-hop headers
/// out (the upgrade ones back in when switching protocols), X-Forwarded-* and X-Real-IP in.
/// `Host` stays as the client sent it.
fn rewrite_request(
    req: &mut Request<Incoming>,
    client_ip: &HeaderValue,
    scheme: Scheme,
    upgrade: Option<HeaderValue>,
    host: Option<HeaderValue>,
) {
    if req.uri().authority().is_some() {
        let origin = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let host_value = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Ok(u) = origin.parse::<Uri>() {
            *req.uri_mut() = u;
        }
        if let Some(v) = host_value {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    *req.version_mut() = Version::HTTP_11;
    let h = req.headers_mut();
    strip_hop_by_hop(h);
    h.remove(header::EXPECT);
    if let Some(u) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, u);
    }
    let xff = {
        let mut prior = h.get_all(&X_FORWARDED_FOR).iter().peekable();
        if prior.peek().is_none() {
            client_ip.clone()
        } else {
            let mut joined: Vec<u8> = Vec::with_capacity(64);
            for v in prior {
                if !joined.is_empty() {
                    joined.extend_from_slice(b", ");
                }
                joined.extend_from_slice(v.as_bytes());
            }
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client_ip.clone())
        }
    };
    h.insert(X_FORWARDED_FOR.clone(), xff);
    h.insert(X_REAL_IP.clone(), client_ip.clone());
    h.insert(X_FORWARDED_PROTO.clone(), scheme.header());
    match host.or_else(|| h.get(header::HOST).cloned()) {
        Some(host) => {
            h.insert(X_FORWARDED_HOST.clone(), host);
        }
        None => {
            h.remove(&X_FORWARDED_HOST);
        }
    }
}

/// Turns the backend's answer into the client's: its body read from the connection as the
/// client takes it, or a protocol switch spliced in both directions.
fn respond(
    head: Head,
    conn: Conn,
    inflight: InFlight,
    on_client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    backend: Arc<Backend>,
    start: Instant,
    access: Option<Box<Access>>,
) -> Response<ResponseBody> {
    let status = head.status;
    let finish = Finish {
        metrics: Some(Counters::Backend(backend)),
        status: status.as_u16(),
        start,
        access,
    };
    let mut resp = Response::new(ResponseBody::full(Bytes::new(), None));
    *resp.status_mut() = status;
    if let Some(reason) = head.reason.as_ref()
        && let Ok(r) = hyper::ext::ReasonPhrase::try_from(reason.clone())
    {
        resp.extensions_mut().insert(r);
    }
    if status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = on_client_upgrade
    {
        let addr = inflight.endpoint().addr;
        // A switched connection is a tunnel, not a request: it no longer counts as in flight
        // (the backend's own shutdown closes it), so a long WebSocket does not hold a drain.
        drop(inflight);
        tokio::spawn(tunnel(client, conn, addr));
        let mut headers = head.headers;
        let upgrade = headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut headers);
        if let Some(u) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, u);
        }
        *resp.headers_mut() = headers;
        *resp.body_mut() = ResponseBody::full(Bytes::new(), Some(finish));
        return resp;
    }
    let message = Message::new(conn, &head);
    let mut headers = head.headers;
    strip_hop_by_hop(&mut headers);
    *resp.headers_mut() = headers;
    *resp.body_mut() = ResponseBody::upstream(message, inflight, finish);
    resp
}

/// Copies bytes both ways between a switched client connection and the backend's.
async fn tunnel(client: hyper::upgrade::OnUpgrade, conn: Conn, addr: SocketAddr) {
    let client = match client.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(upstream = %addr, error = %e, "protocol switch failed");
            return;
        }
    };
    let (mut upstream, early) = conn.into_parts();
    let mut client = TokioIo::new(client);
    // Bytes the backend sent right after its 101 belong to the new protocol.
    if !early.is_empty()
        && let Err(e) = client.write_all(&early).await
    {
        tracing::debug!(upstream = %addr, error = %e, "upgraded connection ended");
        return;
    }
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(upstream = %addr, error = %e, "upgraded connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn upgrade_needs_connection_upgrade() {
        let req = Request::builder()
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .body(())
            .expect("request");
        assert_eq!(
            upgrade_of(&req),
            Some(HeaderValue::from_static("websocket"))
        );
        let req = Request::builder()
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(upgrade_of(&req), None);
    }

    #[test]
    fn host_comes_from_an_absolute_uri_first() {
        let req = Request::builder()
            .uri("http://a.example:8080/x")
            .header(header::HOST, "b.example")
            .body(())
            .expect("request");
        assert_eq!(host_of(&req), "a.example:8080");
        let req = Request::builder()
            .uri("/x")
            .header(header::HOST, "b.example")
            .body(())
            .expect("request");
        assert_eq!(host_of(&req), "b.example");
    }
}
