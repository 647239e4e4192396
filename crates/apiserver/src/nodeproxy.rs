//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: the API server finds the pod's
//! node and proxies the request to that node's agent (the kubelet endpoint in the Node's
//! status), as Kubernetes does. Logs stream through as the agent writes them; upgrades
//! (WebSocket, SPDY/3.1) are answered with the agent's `101` and the two connections are then
//! spliced byte for byte, so the streaming protocols themselves live only in the agent. The
//! agent is reached through [`crate::kubelet`], the client the metrics API uses too.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use baton_api::registry;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::kubelet::{self, Kubelet};
use crate::registry::read;
use crate::route::Target;
use crate::state::AppState;

/// The annotation naming the container kubectl (and this server) picks when none is given.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The pod subresources served by the node agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Log,
    Exec,
    Attach,
    PortForward,
}

impl Sub {
    fn of(t: &Target) -> Option<Sub> {
        if !(t.def.group.is_empty() && t.def.resource == "pods") || t.name.is_none() {
            return None;
        }
        match t.sub.as_deref()? {
            "log" => Some(Sub::Log),
            "exec" => Some(Sub::Exec),
            "attach" => Some(Sub::Attach),
            "portforward" => Some(Sub::PortForward),
            _ => None,
        }
    }

    /// The kubelet path's first segment and the query parameters passed on.
    fn kubelet(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Sub::Log => (
                "containerLogs",
                &[
                    "follow",
                    "previous",
                    "timestamps",
                    "sinceSeconds",
                    "sinceTime",
                    "tailLines",
                    "limitBytes",
                ],
            ),
            Sub::Exec => ("exec", &["command", "stdin", "stdout", "stderr", "tty"]),
            Sub::Attach => ("attach", &["stdin", "stdout", "stderr", "tty"]),
            Sub::PortForward => ("portForward", &["port"]),
        }
    }
}

/// True when the request is for one of the subresources this module proxies (it must then be
/// handed over before its body is read, so that an upgrade stays possible).
pub fn is_node_proxied(t: &Target) -> bool {
    Sub::of(t).is_some()
}

/// Serves a proxied subresource; errors become `Status` answers.
pub async fn serve(st: Arc<AppState>, t: &Target, req: Request<Body>) -> Response {
    match proxy(&st, t, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request addresses: the `container` parameter, else the default-container
/// annotation, else the only container; worded as Kubernetes' errors otherwise.
pub fn pick_container(pod: &Value, name: &str, requested: Option<&str>) -> ApiResult<String> {
    let containers = container_names(pod, "containers");
    let init = container_names(pod, "initContainers");
    let ephemeral = container_names(pod, "ephemeralContainers");
    let annotated = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|c| containers.iter().any(|n| n == c));
    let chosen = match requested.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => match (annotated, containers.as_slice()) {
            (Some(c), _) => c.to_string(),
            (None, [only]) => only.clone(),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: {}",
                    go_list(&containers)
                );
                if !init.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: {}",
                        go_list(&init)
                    ));
                }
                return Err(ApiError::bad_request(msg));
            }
        },
    };
    if [&containers, &init, &ephemeral]
        .iter()
        .any(|list| list.contains(&chosen))
    {
        Ok(chosen)
    } else {
        Err(ApiError::bad_request(format!(
            "container {chosen} is not valid for pod {name}"
        )))
    }
}

/// The kubelet URL path and query for a request.
fn kubelet_path(sub: Sub, ns: &str, pod: &str, container: &str, query: Option<&str>) -> String {
    let (segment, pass) = sub.kubelet();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut path = match sub {
        Sub::PortForward => format!("/{segment}/{}/{}", enc(ns), enc(pod)),
        _ => format!("/{segment}/{}/{}/{}", enc(ns), enc(pod), enc(container)),
    };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if pass.contains(&k.as_ref()) {
            q.append_pair(&k, &v);
            any = true;
        }
    }
    if any {
        path.push('?');
        path.push_str(&q.finish());
    }
    path
}

/// Request headers not passed to the agent (hop-by-hop ones, and the client's credentials:
/// the server authenticates to the agent with its own token).
fn forwardable(name: &HeaderName, upgrade: bool) -> bool {
    let hop = [
        header::AUTHORIZATION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::PROXY_AUTHORIZATION,
    ];
    if hop.contains(name) || name.as_str() == "keep-alive" {
        return false;
    }
    upgrade || !(name == header::CONNECTION || name == header::UPGRADE)
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

async fn proxy(st: &AppState, t: &Target, mut req: Request<Body>) -> ApiResult<Response> {
    let sub = Sub::of(t).ok_or_else(ApiError::no_route)?;
    let (Some(ns), Some(name)) = (t.namespace.as_deref(), t.name.as_deref()) else {
        return Err(ApiError::no_route());
    };
    let allowed = match sub {
        Sub::Log => req.method() == Method::GET,
        _ => req.method() == Method::GET || req.method() == Method::POST,
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource (pods/{})",
            t.sub.as_deref().unwrap_or("")
        )));
    }
    let pod = read(st, t.def, Some(ns), name).await?;
    let requested = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.into_owned());
    let container = match sub {
        Sub::PortForward => String::new(),
        _ => pick_container(&pod, name, requested.as_deref())?,
    };
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    let Some(node_name) = node_name else {
        if sub == Sub::Log {
            // Kubernetes answers an empty log for a pod not yet scheduled.
            return Ok(([(header::CONTENT_TYPE, "text/plain")], Bytes::new()).into_response());
        }
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    let node_def = registry::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not registered"))?;
    let node = read(st, node_def, None, node_name).await?;
    let addr = kubelet::endpoint(&node).ok_or_else(|| {
        ApiError::internal(format!(
            "node {node_name:?} has no kubelet endpoint (status.addresses and status.daemonEndpoints.kubeletEndpoint.Port)"
        ))
    })?;
    let upgrade = wants_upgrade(req.headers());
    let path = kubelet_path(sub, ns, name, &container, req.uri().query());
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::new(
            502,
            "InternalError",
            format!("error dialing backend: node {node_name:?} at {addr}: {e}"),
        )
    };
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(&path)
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    for (k, v) in req.headers() {
        if forwardable(k, upgrade) {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    tracing::debug!(%node_name, %addr, %path, upgrade, "proxying to the node agent");
    let agent = Kubelet {
        addr,
        token: &st.token,
    };
    let mut resp = agent.send(out).await.map_err(|e| unreachable(&e))?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::internal(
                "the node agent switched protocols without being asked to",
            ));
        };
        let agent_upgrade = hyper::upgrade::on(&mut resp);
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = resp.headers().clone();
        tokio::spawn(async move {
            let (client, agent) = match tokio::join!(client_upgrade, agent_upgrade) {
                (Ok(c), Ok(a)) => (c, a),
                (c, a) => {
                    tracing::debug!(
                        client = c.is_ok(),
                        agent = a.is_ok(),
                        "upgrade not completed"
                    );
                    return;
                }
            };
            let (mut c, mut a) = (TokioIo::new(client), TokioIo::new(agent));
            if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut a).await {
                tracing::debug!(error = %e, "streaming connection ended");
            }
        });
        return Ok(answer);
    }
    let (mut parts, body) = resp.into_parts();
    for h in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ] {
        parts.headers.remove(h);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_and_its_errors() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(pick_container(&pod, "p", Some("b")), Ok("b".into()));
        assert_eq!(pick_container(&pod, "p", Some("i")), Ok("i".into()));
        assert_eq!(
            pick_container(&pod, "p", None).map_err(|e| e.message),
            Err("a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]".into())
        );
        assert_eq!(
            pick_container(&pod, "p", Some("x")).map_err(|e| (e.code, e.message)),
            Err((400, "container x is not valid for pod p".into()))
        );
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(pick_container(&one, "p", None), Ok("only".into()));
        let annotated = json!({"metadata": {"annotations": {DEFAULT_CONTAINER_ANNOTATION: "b"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(pick_container(&annotated, "p", None), Ok("b".into()));
    }

    #[test]
    fn kubelet_path_and_query() {
        assert_eq!(
            kubelet_path(
                Sub::Exec,
                "default",
                "web",
                "c",
                Some("command=sh&command=-c&command=echo%20hi&container=c&stdout=true")
            ),
            "/exec/default/web/c?command=sh&command=-c&command=echo+hi&stdout=true"
        );
        assert_eq!(
            kubelet_path(
                Sub::Log,
                "d",
                "p",
                "c",
                Some("container=c&tailLines=1&pretty=true")
            ),
            "/containerLogs/d/p/c?tailLines=1"
        );
        // Every PodLogOptions field kubectl logs sets reaches the agent.
        assert_eq!(
            kubelet_path(
                Sub::Log,
                "d",
                "p",
                "c",
                Some(
                    "follow=true&previous=true&timestamps=true&sinceSeconds=10&sinceTime=2026-12-07T10%3A00%3A00Z&tailLines=2&limitBytes=7"
                )
            ),
            "/containerLogs/d/p/c?follow=true&previous=true&timestamps=true&sinceSeconds=10&sinceTime=2026-12-07T10%3A00%3A00Z&tailLines=2&limitBytes=7"
        );
        assert_eq!(
            kubelet_path(Sub::PortForward, "d", "p", "", None),
            "/portForward/d/p"
        );
    }
}
