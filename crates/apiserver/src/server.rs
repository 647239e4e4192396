//! The HTTPS server: TLS accept loop (HTTP/2 and HTTP/1.1 via ALPN), authentication, body
//! limits, metrics, and the top-level dispatch to discovery, OpenAPI, health and resources.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use baton_store::Store;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::errors::ApiError;
use crate::request::Query;
use crate::response;
use crate::route::{self, Route};
use crate::state::{AppState, MAX_BODY_BYTES};
use crate::{bootstrap, discovery, handlers, pki};

/// How the API server is started.
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
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
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
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
    });
    bootstrap::ensure_defaults(&state)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    tokio::spawn(crate::gc::run(state.clone(), shutdown.clone()));
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

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let svc = TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
}

fn authorized(st: &AppState, headers: &http::HeaderMap) -> bool {
    let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(token) = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
    else {
        return false;
    };
    // Constant-time comparison: the token is the only credential.
    let (a, b) = (token.trim().as_bytes(), st.token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let route = route::route(&path);
    let public = matches!(route, Some(Route::Version | Route::Health(_)));
    if !public && !authorized(&st, &parts.headers) {
        return ApiError::unauthorized().into_response();
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
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return ApiError::too_large(MAX_BODY_BYTES).into_response();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return ApiError::too_large(MAX_BODY_BYTES).into_response(),
    };
    let resp = match &route {
        Route::Version => response::json(StatusCode::OK, &discovery::version()),
        Route::Health(_) => (
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok",
        )
            .into_response(),
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
            handlers::resource(st.clone(), &parts.method, t, &q, &parts.headers, &body).await
        }
    };
    if !resource.is_empty() {
        st.metrics
            .observe(verb, &resource, resp.status().as_u16(), started.elapsed());
    }
    tracing::debug!(method = %parts.method, %path, status = resp.status().as_u16(), took_us = started.elapsed().as_micros() as u64, "request");
    resp
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
