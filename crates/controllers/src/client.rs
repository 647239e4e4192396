//! The process's client of its own API server, shared by the controllers, the node agent and
//! the traffic layer: `kube`'s client with at most [`IN_FLIGHT`] requests under way at once,
//! watches aside.
//!
//! `kube` speaks HTTP/1.1, one request per connection at a time, and its connection pool
//! keeps every connection it opened (idle ones for 90 s). Without a bound, the bursts a large
//! Deployment causes — the ReplicaSet controller's slow-start batches of up to 256 creates,
//! an event per pod, the scheduler's bindings and the simulated nodes' status writes, all
//! concurrent — opened ~520 connections to the server in the same process (both ends' TLS
//! and HTTP buffers, ~1,050 sockets) at 5,000 pods, kept after the burst. Kubernetes'
//! controllers are bounded too, by client-go's rate limiter and one HTTP/2 connection.
//! The server does the work on its cores either way: requests past the bound wait their turn
//! (first come, first served) instead of opening connections.
//!
//! Watches last as long as the informer: each holds its own connection outside the bound
//! (one per kind, `informer.rs`), so they can never starve the requests or each other.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::{Body, ClientBuilder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::buffer::Buffer;
use tower::{BoxError, Layer, Service, ServiceExt};

/// Requests (watches aside) under way at once from the process's components. Chosen by
/// measurement (`BIG=5000 bench/rollout.sh`, alternated runs): unbounded ~1,030 sockets at the
/// end and server RSS 196–200 MB, 360/330 pods/s; 64: ~200 sockets, 162–167 MB, 339/284
/// pods/s; 32: ~130 sockets, 160–162 MB, but 283/239 pods/s (smaller write batches: the
/// store's fsync per batch is shared by fewer writes).
pub const IN_FLIGHT: usize = 64;

/// The client for `config`, bounded to [`IN_FLIGHT`] requests under way.
pub fn in_process(config: kube::Config) -> Result<kube::Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&InFlightLayer::new(IN_FLIGHT))
        .build())
}

/// Bounds the requests under way through a service: a request takes a permit before it is
/// sent and gives it back when its response body ends or is dropped (the connection is free
/// again then). Watch requests (`?watch=true`) take none.
#[derive(Clone)]
pub struct InFlightLayer {
    permits: Arc<Semaphore>,
}

impl InFlightLayer {
    pub fn new(limit: usize) -> Self {
        InFlightLayer {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<S> Layer<S> for InFlightLayer
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            // A request waits for its permit before it reaches `inner`: each call needs a
            // handle of its own to the service, which `kube`'s boxed stack is not (no Clone).
            inner: Buffer::new(inner, 1024),
            permits: self.permits.clone(),
        }
    }
}

/// The service [`InFlightLayer`] makes.
pub struct InFlight<S: Service<Request<Body>>> {
    inner: Buffer<Request<Body>, S::Future>,
    permits: Arc<Semaphore>,
}

impl<S, B> Service<Request<Body>> for InFlight<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send + Sync,
    B: Send + 'static,
{
    type Response = Response<Held<B>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited per request, after its permit (`call`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let permits = (!is_watch(req.uri())).then(|| self.permits.clone());
        Box::pin(async move {
            let permit = match permits {
                Some(p) => Some(p.acquire_owned().await?),
                None => None,
            };
            let res = inner.oneshot(req).await?;
            Ok(res.map(|body| Held { body, permit }))
        })
    }
}

/// `?watch=true` (or `1`) in the query.
fn is_watch(uri: &http::Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// A response body holding its request's permit until it ends.
pub struct Held<B> {
    body: B,
    permit: Option<OwnedSemaphorePermit>,
}

impl<B> http_body::Body for Held<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn watches_are_told_apart() {
        let w = |s: &str| is_watch(&s.parse().expect("uri"));
        assert!(w("/api/v1/pods?watch=true&resourceVersion=5"));
        assert!(w("/api/v1/pods?resourceVersion=5&watch=1"));
        assert!(!w("/api/v1/pods?resourceVersion=5"));
        assert!(!w("/api/v1/namespaces/watch/pods"));
        assert!(!w("/api/v1/pods?watch=false"));
    }

    /// A service that answers after 20 ms, counting the requests under way at once.
    #[derive(Clone, Default)]
    struct Slow {
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Service<Request<Body>> for Slow {
        type Response = Response<String>;
        type Error = BoxError;
        type Future = BoxFuture<'static, Result<Response<String>, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<Body>) -> Self::Future {
            let (now, most) = (self.now.clone(), self.most.clone());
            Box::pin(async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(Response::new(req.uri().to_string()))
            })
        }
    }

    async fn send(svc: &InFlight<Slow>, uri: &str) -> Response<Held<String>> {
        let req = Request::get(uri).body(Body::empty()).expect("request");
        InFlight::<Slow> {
            inner: svc.inner.clone(),
            permits: svc.permits.clone(),
        }
        .oneshot(req)
        .await
        .expect("response")
    }

    #[tokio::test]
    async fn requests_wait_for_a_permit_and_watches_do_not() {
        let slow = Slow::default();
        let svc = InFlightLayer::new(2).layer(slow.clone());
        // Bodies dropped as they arrive: ten requests, never more than two under way.
        let all = (0..10).map(|i| {
            let svc = &svc;
            async move { drop(send(svc, &format!("/api/v1/pods/p{i}")).await) }
        });
        futures::future::join_all(all).await;
        assert_eq!(slow.most.load(Ordering::SeqCst), 2);
        // Two responses whose bodies are kept hold both permits; a watch still goes through.
        let a = send(&svc, "/api/v1/pods/a").await;
        let b = send(&svc, "/api/v1/pods/b").await;
        let watch = tokio::time::timeout(
            Duration::from_secs(5),
            send(&svc, "/api/v1/pods?watch=true"),
        )
        .await
        .expect("a watch takes no permit");
        assert_eq!(watch.into_body().body, "/api/v1/pods?watch=true");
        let third = send(&svc, "/api/v1/pods/c");
        let mut third = std::pin::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut third)
                .await
                .is_err(),
            "a third request waits while two bodies are held"
        );
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("a dropped body gives its permit back");
        assert_eq!(c.into_body().body, "/api/v1/pods/c");
        drop(b);
    }
}
