//! One kept-open HTTP/1.1 client connection, over TLS to Baton or plain TCP to etcd's JSON
//! gateway. Each benchmark client owns one, so connection set-up never counts in a latency.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// TLS settings trusting only the CA Baton generated in its data dir.
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.with_context(|| format!("parsing {}", ca_file.display()))?)
            .context("adding the Baton CA")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A kept-open connection; requests on it are sent one at a time.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    token: Option<String>,
}

impl Conn {
    /// Opens a TLS connection to Baton at `addr`, sending `token` as the bearer token.
    pub async fn https(
        addr: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
        token: &str,
    ) -> Result<Conn> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            host: addr.to_string(),
            token: Some(token.to_string()),
        })
    }

    /// Opens a plain TCP connection (etcd's gateway on loopback).
    pub async fn http(addr: SocketAddr) -> Result<Conn> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            host: addr.to_string(),
            token: None,
        })
    }

    /// Sends a request and returns the response head, leaving the body to be streamed.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .context("building a request")?;
        self.sender
            .ready()
            .await
            .context("connection closed before the request")?;
        self.sender
            .send_request(req)
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method.clone(), path, body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the response to {method} {path}"))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Like `request`, but an answer other than `want` is an error that quotes the response.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        want: StatusCode,
    ) -> Result<Bytes> {
        let (status, bytes) = self.request(method.clone(), path, body).await?;
        if status != want {
            return Err(anyhow!(
                "{method} {path} answered {status} (expected {want}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
            ));
        }
        Ok(bytes)
    }
}
