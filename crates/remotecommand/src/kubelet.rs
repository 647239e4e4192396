//! The kubelet's streaming paths in one place: [`route`] dispatches `/exec`, `/attach` and
//! `/portForward` requests to this crate's servers, and [`LogOptions`] parses the query of
//! `/containerLogs` (served by the agent itself from its log files), so the agent's HTTP server
//! needs one call per request and no path parsing of its own.

use std::sync::Arc;

use http::Request;
use percent_encoding::percent_decode_str;

use crate::{Body, PodStreams, serve_attach, serve_exec, serve_port_forward};

/// What a kubelet path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletPath {
    Exec {
        namespace: String,
        pod: String,
        container: String,
    },
    Attach {
        namespace: String,
        pod: String,
        container: String,
    },
    PortForward {
        namespace: String,
        pod: String,
    },
    ContainerLogs {
        namespace: String,
        pod: String,
        container: String,
    },
}

impl KubeletPath {
    /// Parses `/exec/{ns}/{pod}/{container}`, `/attach/…`, `/portForward/{ns}/{pod}` and
    /// `/containerLogs/{ns}/{pod}/{container}` (segments percent-decoded).
    pub fn parse(path: &str) -> Option<KubeletPath> {
        let segs: Vec<String> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let [kind, rest @ ..] = segs.as_slice() else {
            return None;
        };
        if rest.iter().any(String::is_empty) {
            return None;
        }
        match (kind.as_str(), rest) {
            ("exec", [ns, pod, c]) => Some(KubeletPath::Exec {
                namespace: ns.clone(),
                pod: pod.clone(),
                container: c.clone(),
            }),
            ("attach", [ns, pod, c]) => Some(KubeletPath::Attach {
                namespace: ns.clone(),
                pod: pod.clone(),
                container: c.clone(),
            }),
            ("portForward", [ns, pod]) => Some(KubeletPath::PortForward {
                namespace: ns.clone(),
                pod: pod.clone(),
            }),
            ("containerLogs", [ns, pod, c]) => Some(KubeletPath::ContainerLogs {
                namespace: ns.clone(),
                pod: pod.clone(),
                container: c.clone(),
            }),
            _ => None,
        }
    }
}

/// Serves the streaming kubelet paths (`/exec`, `/attach`, `/portForward`); `Err(req)` hands
/// back any other request (`/containerLogs` included) for the agent to serve. Check the
/// request's bearer token before calling this.
pub async fn route<B>(
    req: Request<B>,
    streams: Arc<dyn PodStreams>,
) -> Result<http::Response<Body>, Request<B>> {
    match KubeletPath::parse(req.uri().path()) {
        Some(KubeletPath::Exec {
            namespace,
            pod,
            container,
        }) => Ok(serve_exec(req, streams, &namespace, &pod, &container).await),
        Some(KubeletPath::Attach {
            namespace,
            pod,
            container,
        }) => Ok(serve_attach(req, streams, &namespace, &pod, &container).await),
        Some(KubeletPath::PortForward { namespace, pod }) => {
            Ok(serve_port_forward(req, streams, &namespace, &pod).await)
        }
        _ => Err(req),
    }
}

/// The query of `/containerLogs` (`PodLogOptions` as the API server passes it on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<u64>,
    /// Only lines at or after this time (RFC 3339, as given).
    pub since_time: Option<String>,
}

impl LogOptions {
    /// Parses the query; malformed numbers are reported as the message of a 400.
    pub fn from_query(query: Option<&str>) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        let num = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{k}: invalid value {v:?}: must be a non-negative integer"))
        };
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let on = matches!(v.as_ref(), "1" | "true" | "True" | "TRUE");
            match k.as_ref() {
                "follow" => o.follow = on,
                "previous" => o.previous = on,
                "timestamps" => o.timestamps = on,
                "tailLines" => o.tail_lines = Some(num("tailLines", &v)?),
                "limitBytes" => o.limit_bytes = Some(num("limitBytes", &v)?),
                "sinceSeconds" => o.since_seconds = Some(num("sinceSeconds", &v)?),
                "sinceTime" => o.since_time = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths() {
        assert_eq!(
            KubeletPath::parse("/exec/default/web/app"),
            Some(KubeletPath::Exec {
                namespace: "default".into(),
                pod: "web".into(),
                container: "app".into()
            })
        );
        assert_eq!(
            KubeletPath::parse("/portForward/ns/p"),
            Some(KubeletPath::PortForward {
                namespace: "ns".into(),
                pod: "p".into()
            })
        );
        assert!(matches!(
            KubeletPath::parse("/containerLogs/ns/p/c"),
            Some(KubeletPath::ContainerLogs { .. })
        ));
        assert_eq!(KubeletPath::parse("/exec/ns/p"), None);
        assert_eq!(KubeletPath::parse("/exec/ns//c"), None);
        assert_eq!(KubeletPath::parse("/pods"), None);
    }

    #[test]
    fn log_options() {
        assert_eq!(
            LogOptions::from_query(Some(
                "follow=true&tailLines=10&timestamps=true&sinceTime=2026-01-01T00%3A00%3A00Z"
            )),
            Ok(LogOptions {
                follow: true,
                timestamps: true,
                tail_lines: Some(10),
                since_time: Some("2026-01-01T00:00:00Z".into()),
                ..Default::default()
            })
        );
        assert!(LogOptions::from_query(Some("tailLines=-1")).is_err());
    }
}
