//! A small client for the OCI distribution API (what Docker v2 registries serve): manifests,
//! blobs, and the auth dance (anonymous, Basic, or a Bearer token fetched from the realm the
//! `WWW-Authenticate` challenge names, with the caller's credentials if any).
//!
//! Plain http is used for loopback registries (`127.0.0.0/8`, `::1`, `localhost`) and those
//! the caller lists as insecure; https (rustls, system roots) for every other.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::auth::{Challenge, Credentials};
use crate::error::PullError;
use crate::reference::Reference;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;
/// Manifests and configs are small JSON documents; anything bigger is refused.
pub const MAX_DOCUMENT: usize = 8 << 20;

type Connector = HttpsConnector<HttpConnector>;

/// A connection pool shared by every pull.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<Connector, Empty<Bytes>>,
}

impl Client {
    /// Builds the pool; fails only if rustls cannot be set up at all.
    pub fn new() -> Result<Client, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system CA certificates: https registries will fail verification");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS setup: {e}"))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Client {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        })
    }
}

/// Whether `registry` (host[:port]) is reached over plain http.
pub fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let host = if let Some(v6) = registry.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|i| i == registry || i == host)
}

/// One pull's conversation with one registry: it remembers the Authorization header that
/// worked so later requests do not repeat the challenge.
pub struct Session<'a> {
    client: &'a Client,
    reference: &'a Reference,
    base: String,
    creds: Option<Credentials>,
    authorization: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl<'a> Session<'a> {
    pub fn new(
        client: &'a Client,
        reference: &'a Reference,
        creds: Option<Credentials>,
        insecure: &[String],
    ) -> Self {
        let host = reference.api_host();
        let scheme = if is_insecure(host, insecure) {
            "http"
        } else {
            "https"
        };
        Session {
            client,
            reference,
            base: format!("{scheme}://{host}"),
            creds,
            authorization: None,
        }
    }

    fn refname(&self) -> String {
        self.reference.to_string()
    }

    /// Fetches a manifest (by tag or digest) and its Content-Type.
    pub async fn manifest(
        &mut self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), PullError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base, self.reference.repository, reference
        );
        let resp = self.get(&url, Some(crate::manifest::ACCEPT)).await?;
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = self.read_small(resp, &url).await?;
        Ok((body, ct))
    }

    /// Fetches a small blob (an image config) into memory.
    pub async fn blob_bytes(&mut self, digest: &str) -> Result<Vec<u8>, PullError> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.base, self.reference.repository, digest
        );
        let resp = self.get(&url, None).await?;
        self.read_small(resp, &url).await
    }

    /// Opens a blob for streaming.
    pub async fn blob(&mut self, digest: &str) -> Result<BlobStream, PullError> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.base, self.reference.repository, digest
        );
        let resp = self.get(&url, None).await?;
        Ok(BlobStream {
            body: resp.into_body(),
            reference: self.refname(),
        })
    }

    async fn read_small(&self, resp: Response<Incoming>, url: &str) -> Result<Vec<u8>, PullError> {
        let mut stream = BlobStream {
            body: resp.into_body(),
            reference: self.refname(),
        };
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await? {
            out.extend_from_slice(&chunk);
            if out.len() > MAX_DOCUMENT {
                return Err(PullError::Invalid {
                    reference: self.refname(),
                    what: "document".into(),
                    message: format!("{url} is larger than {MAX_DOCUMENT} bytes"),
                });
            }
        }
        Ok(out)
    }

    /// GET with the auth challenge answered once and redirects followed (blob storage often
    /// redirects to another host, which must not see the registry's credentials).
    async fn get(
        &mut self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response<Incoming>, PullError> {
        let mut url = url.to_string();
        let mut authorized = false;
        let mut send_auth = true;
        for _ in 0..=MAX_REDIRECTS {
            let auth = if send_auth {
                self.authorization.clone()
            } else {
                None
            };
            let resp = self.send(&url, accept, auth.as_deref()).await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && send_auth && !authorized {
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                let body = self.read_error(resp).await;
                match challenge {
                    Some(c) => {
                        self.authorize(c, &body).await?;
                        authorized = true;
                        continue;
                    }
                    None => return Err(self.status_error(&url, status, body)),
                }
            }
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        self.status_error(&url, status, "redirect without Location".into())
                    })?;
                let next = if location.starts_with('/') {
                    format!("{}{}", origin(&url), location)
                } else {
                    location
                };
                if origin(&next) != origin(&url) {
                    send_auth = false;
                }
                url = next;
                continue;
            }
            if !status.is_success() {
                let body = self.read_error(resp).await;
                return Err(self.status_error(&url, status, body));
            }
            return Ok(resp);
        }
        Err(PullError::Transport {
            reference: self.refname(),
            message: format!("too many redirects fetching {url}"),
        })
    }

    async fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
    ) -> Result<Response<Incoming>, PullError> {
        let mut req = Request::get(url).header(header::USER_AGENT, "baton-image/0.1");
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req.body(Empty::new()).map_err(|e| PullError::Transport {
            reference: self.refname(),
            message: format!("invalid request URL {url}: {e}"),
        })?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client.http.request(req)).await {
            Err(_) => Err(PullError::Transport {
                reference: self.refname(),
                message: format!(
                    "timed out after {}s waiting for {url}",
                    REQUEST_TIMEOUT.as_secs()
                ),
            }),
            Ok(Err(e)) => Err(self.transport_error(url, &e)),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// Answers a challenge: Basic sends the credentials; Bearer trades them (or nothing, for
    /// anonymous pulls) for a token at the realm.
    async fn authorize(&mut self, challenge: Challenge, body: &str) -> Result<(), PullError> {
        match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => {
                    self.authorization = Some(c.basic_header());
                    Ok(())
                }
                None => Err(PullError::Unauthorized {
                    reference: self.refname(),
                    message: unauthorized_text(body),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                let mut url = realm.clone();
                url.push(if realm.contains('?') { '&' } else { '?' });
                if let Some(s) = service {
                    url.push_str(&format!("service={}&", query_escape(&s)));
                }
                url.push_str(&format!("scope={}", query_escape(&scope)));
                let basic = self.creds.as_ref().map(Credentials::basic_header);
                let resp = self.send(&url, None, basic.as_deref()).await?;
                let status = resp.status();
                if !status.is_success() {
                    let text = self.read_error(resp).await;
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(PullError::Unauthorized {
                            reference: self.refname(),
                            message: unauthorized_text(&text),
                        });
                    }
                    return Err(self.status_error(&realm, status, text));
                }
                let body = self.read_small(resp, &realm).await?;
                let token: TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| PullError::Invalid {
                        reference: self.refname(),
                        what: "token response".into(),
                        message: e.to_string(),
                    })?;
                let token = token
                    .token
                    .or(token.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| PullError::Invalid {
                        reference: self.refname(),
                        what: "token response".into(),
                        message: "no token".into(),
                    })?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    async fn read_error(&self, resp: Response<Incoming>) -> String {
        let collected = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect()).await;
        match collected {
            Ok(Ok(c)) => {
                let bytes = c.to_bytes();
                String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned()
            }
            _ => String::new(),
        }
    }

    fn status_error(&self, url: &str, status: StatusCode, body: String) -> PullError {
        let reference = self.refname();
        match status {
            StatusCode::NOT_FOUND if url.contains("/manifests/") => {
                PullError::NotFound { reference }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PullError::Unauthorized {
                reference,
                message: unauthorized_text(&body),
            },
            _ => PullError::Status {
                reference,
                status: status.as_u16(),
                url: url.to_string(),
                message: registry_text(&body),
            },
        }
    }

    fn transport_error(&self, url: &str, e: &hyper_util::client::legacy::Error) -> PullError {
        let host = origin(url).split("://").nth(1).unwrap_or(url).to_string();
        let mut messages = Vec::new();
        let mut refused = false;
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::ConnectionRefused
            {
                refused = true;
            }
            messages.push(s.to_string());
            source = s.source();
        }
        let message = if refused {
            "connection refused".to_string()
        } else if messages.is_empty() {
            e.to_string()
        } else {
            messages.join(": ")
        };
        if e.is_connect() {
            PullError::Connect {
                reference: self.refname(),
                host,
                message,
            }
        } else {
            PullError::Transport {
                reference: self.refname(),
                message: format!("{url}: {message}"),
            }
        }
    }
}

/// A blob body read chunk by chunk, with an idle timeout.
pub struct BlobStream {
    body: Incoming,
    reference: String,
}

impl BlobStream {
    pub async fn next(&mut self) -> Result<Option<Bytes>, PullError> {
        loop {
            let frame = tokio::time::timeout(BODY_IDLE_TIMEOUT, self.body.frame())
                .await
                .map_err(|_| PullError::Transport {
                    reference: self.reference.clone(),
                    message: "registry stopped sending data".into(),
                })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(PullError::Transport {
                        reference: self.reference.clone(),
                        message: format!("reading body: {e}"),
                    });
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// The registry's message for a 401: `unauthorized: authentication required`.
fn unauthorized_text(body: &str) -> String {
    let text = registry_text(body);
    if text.is_empty() {
        "unauthorized: authentication required".to_string()
    } else {
        text
    }
}

/// `code: message` from an OCI error body (`{"errors":[{"code","message"}]}`), lower-cased
/// code as Docker prints it; the raw body (trimmed) otherwise.
fn registry_text(body: &str) -> String {
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body)
        && let Some(first) = parsed.errors.first()
    {
        return match (first.code.is_empty(), first.message.is_empty()) {
            (false, false) => format!("{}: {}", first.code.to_lowercase(), first.message),
            (false, true) => first.code.to_lowercase(),
            _ => first.message.clone(),
        };
    }
    body.trim().chars().take(300).collect()
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_use_http() {
        let none: Vec<String> = vec![];
        assert!(is_insecure("127.0.0.1:5000", &none));
        assert!(is_insecure("127.3.4.5", &none));
        assert!(is_insecure("localhost:5000", &none));
        assert!(is_insecure("[::1]:5000", &none));
        assert!(!is_insecure("registry-1.docker.io", &none));
        assert!(!is_insecure("10.0.0.1:5000", &none));
        assert!(is_insecure("10.0.0.1:5000", &["10.0.0.1:5000".to_string()]));
        assert!(is_insecure("reg.local:5000", &["reg.local".to_string()]));
    }

    #[test]
    fn registry_error_bodies() {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(registry_text(body), "unauthorized: authentication required");
        assert_eq!(registry_text("plain text\n"), "plain text");
        assert_eq!(
            unauthorized_text(""),
            "unauthorized: authentication required"
        );
    }

    #[test]
    fn origins_and_escaping() {
        assert_eq!(
            origin("http://127.0.0.1:5000/v2/x"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(origin("https://h"), "https://h");
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
    }
}
