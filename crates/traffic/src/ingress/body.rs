//! The answers the proxy streams to clients, never buffered whole: a local one (404, 502, 503)
//! or a backend's, whose body is read from the upstream connection as the client's connection
//! pulls it (`upstream::Message`).
//!
//! A backend's answer holds the request's in-flight count until its body ends: then the
//! connection goes back to its endpoint's pool (when it can carry another request) and the
//! request stops counting as in flight. A body dropped early (client gone, backend failed)
//! closes the connection instead, since it is in the middle of a message. [`Finish`] records
//! metrics and the access-log line when the answer is done.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Method;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use super::metrics::ServiceMetrics;
use super::pool::InFlight;
use super::table::Backend;
use super::upstream::Message;

/// What the access log says about a request.
pub(crate) struct Access {
    pub(crate) method: Method,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) backend: Option<SocketAddr>,
}

/// Whose counters a request's outcome goes to.
pub(crate) enum Counters {
    Service(Arc<ServiceMetrics>),
    /// The backend's own (held as the backend, which the request holds anyway: no reference
    /// count of the shared counters is touched per request).
    Backend(Arc<Backend>),
}

/// Records a request's outcome when its answer is done (or abandoned).
pub(crate) struct Finish {
    pub(crate) metrics: Option<Counters>,
    pub(crate) status: u16,
    pub(crate) start: Instant,
    pub(crate) access: Option<Box<Access>>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        match &self.metrics {
            Some(Counters::Service(m)) => m.observe(self.status, elapsed),
            Some(Counters::Backend(b)) => b.metrics.observe(self.status, elapsed),
            None => {}
        }
        if let Some(a) = &self.access {
            let backend = a
                .backend
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".to_string());
            tracing::info!(
                target: "baton::ingress::access",
                method = %a.method,
                host = %a.host,
                path = %a.path,
                status = self.status,
                backend = %backend,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        }
    }
}

enum Kind {
    Full(Option<Bytes>),
    Upstream {
        message: Message,
        /// Until the body ends.
        inflight: Option<InFlight>,
    },
}

/// The body of an answer to the client.
pub(crate) struct ResponseBody {
    kind: Kind,
    _finish: Option<Finish>,
}

impl ResponseBody {
    pub(crate) fn full(bytes: Bytes, finish: Option<Finish>) -> ResponseBody {
        ResponseBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            _finish: finish,
        }
    }

    pub(crate) fn upstream(message: Message, inflight: InFlight, finish: Finish) -> ResponseBody {
        ResponseBody {
            kind: Kind::Upstream {
                message,
                inflight: Some(inflight),
            },
            _finish: Some(finish),
        }
    }
}

/// The exchange finished cleanly: the connection may serve another request.
fn release(message: &mut Message, inflight: &mut Option<InFlight>) {
    if let Some(inflight) = inflight.take() {
        if let Some(conn) = message.take_reusable() {
            inflight.endpoint().checkin(conn);
        }
        drop(inflight);
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream { message, inflight } => {
                let polled = message.poll_data(cx);
                match &polled {
                    Poll::Ready(None) => release(message, inflight),
                    Poll::Ready(Some(Ok(_))) if message.is_end() => release(message, inflight),
                    Poll::Ready(Some(Err(_))) => {
                        // The connection broke mid-message: never reuse it.
                        message.abandon();
                        inflight.take();
                    }
                    _ => {}
                }
                polled.map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream { message, .. } => message.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream { message, .. } => message.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // An empty answer (HEAD, 204, Content-Length: 0) may never be polled.
        if let Kind::Upstream { message, inflight } = &mut self.kind
            && message.is_end()
        {
            release(message, inflight);
        }
    }
}
