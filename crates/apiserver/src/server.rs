//! The HTTPS server: TLS accept loop (HTTP/2 and HTTP/1.1 via ALPN), authentication, body
//! limits, metrics, and the top-level dispatch to discovery, OpenAPI, health and resources.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use baton_store::Store;
use futures::FutureExt;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::errors::ApiError;
use crate::request::Query;
use crate::response;
use crate::route::{self, Route};
use crate::state::{AppState, MAX_BODY_BYTES};
use crate::{auth, bootstrap, discovery, handlers, pki, rbac, reviews};

/// How the API server is started.
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Watches open at once, overall and per client (`429` beyond).
    pub watch_limits: crate::watch::WatchLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("initializing the store: {0}")]
    Bootstrap(String),
}

/// A started server: where it listens and where its kubeconfig is.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub state: Arc<AppState>,
}

fn tls_config(p: &pki::Pki) -> Result<rustls::ServerConfig, ServerError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut p.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut p.key_pem.as_bytes())
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .ok_or_else(|| ServerError::Tls("no private key in server.key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Client certificates are optional; one that is presented must be signed by the cluster
    // CA (it then names the user, see `auth`).
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut p.ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| ServerError::Tls(e.to_string()))?;
        roots
            .add(ca)
            .map_err(|e| ServerError::Tls(format!("cluster CA: {e}")))?;
    }
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_client_cert_verifier(clients)
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Binds, prepares the store and spawns the server; returns once it accepts connections.
pub async fn start(
    cfg: Config,
    store: Arc<dyn Store>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Running, ServerError> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    // Certificates and kubeconfig name the bound address (`--listen 127.0.0.1:0` works).
    let pki = pki::load_or_create(&cfg.data_dir, &addr)?;
    let tls = tls_config(&pki)?;
    let state = Arc::new(AppState {
        store,
        token: pki.token.clone(),
        server_address: format!("{}:{}", pki::client_host(&addr), addr.port()),
        metrics: Default::default(),
        service_allocation: Default::default(),
        watches: crate::watch::Slots::new(cfg.watch_limits),
        rbac: Default::default(),
    });
    bootstrap::ensure_defaults(&state)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    // The RBAC rules are in memory before the first request is served.
    let listed = state
        .rbac
        .load(&state)
        .await
        .map_err(|e| ServerError::Bootstrap(format!("loading RBAC objects: {e}")))?;
    tokio::spawn(rbac::Authorizer::run(state.clone(), listed));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(serve(listener, acceptor, app, shutdown));
    Ok(Running {
        addr,
        kubeconfig: pki.kubeconfig,
        state,
    })
}

/// Connections served at once; further clients wait in the listen backlog until one ends.
const MAX_CONNECTIONS: usize = 4096;
/// A client that has not finished its TLS handshake by then is dropped (a half-open
/// connection must not hold a slot for ever).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/1 request headers must arrive within this time (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let slot = tokio::select! {
            _ = shutdown.changed() => return,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors (EMFILE) and the like: the error repeats at once,
                    // so wait, doubling up to a second, instead of spinning.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
        };
        backoff = Duration::ZERO;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // The client's certificate, verified in the handshake, names its user.
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| auth::CertIdentity::from_der(c));
            // The client's address, for the per-client watch bound.
            let app = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(c) = &cert {
                    req.extensions_mut().insert(c.clone());
                }
                req
            });
            let svc = TowerToHyperService::new(app);
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
}

fn verb_of(method: &http::Method, route: &Route, q: &Query) -> (&'static str, String) {
    match route {
        Route::Resource(t) => {
            let resource = match &t.sub {
                Some(s) => format!("{}/{}", t.def.resource, s),
                None => t.def.resource.to_string(),
            };
            let verb = match (method.as_str(), t.name.is_some()) {
                ("GET", _) if t.watch_path || q.flag("watch") => "WATCH",
                ("GET", false) => "LIST",
                ("GET", true) => "GET",
                ("POST", _) => "POST",
                ("PUT", _) => "PUT",
                ("PATCH", _) => "PATCH",
                ("DELETE", false) => "DELETECOLLECTION",
                ("DELETE", true) => "DELETE",
                _ => "OTHER",
            };
            (verb, resource)
        }
        _ => ("GET", String::new()),
    }
}

/// Every request: a panic while serving one answers that request 500 and leaves the server
/// (and every other request) running.
async fn handle(state: State<Arc<AppState>>, req: Request) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    match AssertUnwindSafe(serve_request(state, req))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            tracing::error!(request = %what, panic = %why, "request panicked");
            ApiError::internal(format!("the server failed while serving {what}: {why}"))
                .into_response()
        }
    }
}

async fn serve_request(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let route = route::route(&path);
    let public = matches!(route, Some(Route::Version | Route::Health(_)));
    let user = if public {
        None
    } else {
        let Some(user) = auth::authenticate(
            &st,
            &parts.headers,
            parts.extensions.get::<auth::CertIdentity>(),
        ) else {
            return ApiError::unauthorized().into_response();
        };
        let user = match auth::impersonate(&st, &user, &parts.headers) {
            Ok(Some(as_user)) => as_user,
            Ok(None) => user,
            Err(e) => return e.into_response(),
        };
        let info = rbac::RequestInfo::parse(&parts.method, &path, &q);
        let decision = st.rbac.authorize(&user, &info);
        if !decision.allowed {
            return rbac::forbidden(&user, &info, &decision.reason).into_response();
        }
        Some(user)
    };
    if let Some(user) = &user
        && reviews::is_review_path(&path)
    {
        return match read_body(&parts, body).await {
            Ok(body) => reviews::serve(&st, user, &parts.method, &path, &parts.headers, &body),
            Err(resp) => resp,
        };
    }
    if crate::metricsapi::is_metrics_path(&path) {
        return crate::metricsapi::serve(st.clone(), &parts.method, &path, &q).await;
    }
    let Some(route) = route else {
        return ApiError::no_route().into_response();
    };
    let (verb, resource) = verb_of(&parts.method, &route, &q);
    if let Route::Resource(t) = &route
        && crate::nodeproxy::is_node_proxied(t)
    {
        // Before the body is read: an exec or port-forward upgrade needs the request whole.
        let resp = crate::nodeproxy::serve(st.clone(), t, Request::from_parts(parts, body)).await;
        st.metrics
            .observe(verb, &resource, resp.status().as_u16(), started.elapsed());
        return resp;
    }
    let body = match read_body(&parts, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // A watch takes one of the bounded places for watches, held until its body ends.
    let slot = match (&route, verb) {
        (Route::Resource(_), "WATCH") => match st.watches.take(&client_of(&parts)) {
            Ok(slot) => Some(slot),
            Err(e) => {
                let resp = e.into_response();
                st.metrics
                    .observe(verb, &resource, resp.status().as_u16(), started.elapsed());
                return resp;
            }
        },
        _ => None,
    };
    let resp = match &route {
        Route::Version => response::json(StatusCode::OK, &discovery::version()),
        Route::Health(check) => health(&st, check, &q),
        Route::Metrics => (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            st.metrics.render(),
        )
            .into_response(),
        Route::OpenApiV2 => openapi_v2(&parts.headers),
        Route::OpenApiV3Index => {
            response::bytes("application/json", baton_schema::openapi::v3_index())
        }
        Route::OpenApiV3(p) => match baton_schema::openapi::v3_document(p) {
            Some(doc) => response::bytes("application/json", doc),
            None => ApiError::no_route().into_response(),
        },
        Route::CoreVersions => response::json(
            StatusCode::OK,
            &discovery::core_versions(&st.server_address),
        ),
        Route::GroupList => response::json(StatusCode::OK, &discovery::group_list()),
        Route::Group(g) => match discovery::group(g) {
            Some(v) => response::json(StatusCode::OK, &v),
            None => ApiError::no_route().into_response(),
        },
        Route::ResourceList { group, version } => {
            response::json(StatusCode::OK, &discovery::resource_list(group, version))
        }
        Route::Resource(t) => {
            let serve = handlers::resource(st.clone(), &parts.method, t, &q, &parts.headers, &body);
            match user {
                Some(user) => auth::acting_as(user, serve).await,
                None => serve.await,
            }
        }
    };
    if !resource.is_empty() {
        st.metrics
            .observe(verb, &resource, resp.status().as_u16(), started.elapsed());
    }
    let resp = match slot {
        Some(slot) if resp.status().is_success() => crate::watch::hold(resp, slot),
        _ => resp,
    };
    tracing::debug!(method = %parts.method, %path, status = resp.status().as_u16(), took_us = started.elapsed().as_micros() as u64, "request");
    resp
}

/// The whole request body, at most [`MAX_BODY_BYTES`] (413 beyond).
async fn read_body(parts: &http::request::Parts, body: Body) -> Result<bytes::Bytes, Response> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES).into_response());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(MAX_BODY_BYTES).into_response())
}

/// Who a request comes from, for the per-client watch bound: its address and `User-Agent`.
fn client_of(parts: &http::request::Parts) -> String {
    let addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_default();
    let agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    format!("{addr} {agent:?}")
}

/// `/healthz`, `/livez` (the process serves) and `/readyz` (the store can also take writes),
/// worded as Kubernetes' checks: `500` with the failed check on its own line.
fn health(st: &AppState, check: &str, q: &Query) -> Response {
    let store = if check == "readyz" {
        st.store.health()
    } else {
        Ok(())
    };
    let text = |code: StatusCode, body: String| {
        (
            code,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    };
    match store {
        Ok(()) if q.get("verbose").is_some() => text(
            StatusCode::OK,
            format!("[+]ping ok\n[+]store ok\n{check} check passed\n"),
        ),
        Ok(()) => text(StatusCode::OK, "ok".into()),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("[+]ping ok\n[-]store failed: {e}\n{check} check failed\n"),
        ),
    }
}

fn openapi_v2(headers: &http::HeaderMap) -> Response {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        let mut r = Response::new(Body::from(baton_schema::openapi::v2_protobuf()));
        if let Ok(v) = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf".parse() {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        return r;
    }
    response::bytes("application/json", baton_schema::openapi::v2_json())
}
