//! The bodies the proxy streams: the request body sent upstream and the answer to the client.
//! Neither is ever buffered whole; frames are passed on as they arrive.
//!
//! An upstream answer carries its [`Lease`] (the connection and the in-flight count) until
//! the upstream body ends: then the connection goes back to its endpoint's pool and the request
//! stops counting as in flight. A body dropped early (client gone, backend failed) closes the
//! connection instead, since it is in the middle of a message. [`Finish`] records metrics and
//! the access-log line when the answer is done.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Method;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

use super::metrics::ServiceMetrics;
use super::pool::{InFlight, Sender};

/// The body of a request sent upstream.
pub(crate) enum RequestBody {
    Empty,
    Client(Incoming),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Client(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Client(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Client(b) => b.size_hint(),
        }
    }
}

/// An upstream connection in use by one exchange, and the request's in-flight count.
pub(crate) struct Lease {
    pub(crate) sender: Sender,
    pub(crate) inflight: InFlight,
}

impl Lease {
    /// The exchange finished cleanly: the connection may serve another request.
    fn release(self) {
        let Lease { sender, inflight } = self;
        inflight.endpoint().checkin(sender);
        drop(inflight);
    }
}

/// What the access log says about a request.
pub(crate) struct Access {
    pub(crate) method: Method,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) backend: Option<SocketAddr>,
}

/// Records a request's outcome when its answer is done (or abandoned).
pub(crate) struct Finish {
    pub(crate) metrics: Option<Arc<ServiceMetrics>>,
    pub(crate) status: u16,
    pub(crate) start: Instant,
    pub(crate) access: Option<Box<Access>>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        if let Some(m) = &self.metrics {
            m.observe(self.status, elapsed);
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
        body: Incoming,
        lease: Option<Lease>,
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

    pub(crate) fn upstream(body: Incoming, lease: Option<Lease>, finish: Finish) -> ResponseBody {
        ResponseBody {
            kind: Kind::Upstream { body, lease },
            _finish: Some(finish),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream { body, lease } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => {
                        if let Some(l) = lease.take() {
                            l.release();
                        }
                    }
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                        if let Some(l) = lease.take() {
                            l.release();
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {
                        // The connection broke mid-message: never reuse it.
                        lease.take();
                    }
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream { body, .. } => body.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // An empty answer (HEAD, 204, Content-Length: 0) may never be polled.
        if let Kind::Upstream { body, lease } = &mut self.kind
            && body.is_end_stream()
            && let Some(l) = lease.take()
        {
            l.release();
        }
    }
}
