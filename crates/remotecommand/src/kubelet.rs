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
    /// Stop after this many bytes (at least 1).
    pub limit_bytes: Option<u64>,
    /// Only lines newer than this many seconds (at least 1).
    pub since_seconds: Option<u64>,
    /// Only lines at or after this time (RFC 3339, as given; the agent parses it).
    pub since_time: Option<String>,
}

/// A query `/containerLogs` refuses, as Kubernetes answers it: `code` 400 for a value that
/// does not decode, 422 for options `PodLogOptions` validation rejects (`message` is then the
/// field error, e.g. `tailLines: Invalid value: -1: must be greater than or equal to 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLogOptions {
    pub code: u16,
    pub message: String,
}

impl LogOptions {
    /// Parses and validates the query as the kubelet and the API server do.
    pub fn from_query(query: Option<&str>) -> Result<LogOptions, BadLogOptions> {
        let mut o = LogOptions::default();
        let bad = |code: u16, message: String| BadLogOptions { code, message };
        // An int64 as Go decodes it; `min` is what PodLogOptions validation requires.
        let num = |k: &str, v: &str, min: i64| {
            let n = v.parse::<i64>().map_err(|_| {
                bad(
                    400,
                    format!(
                        "{k}: invalid value {v:?}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ),
                )
            })?;
            let rule = if min == 0 {
                "must be greater than or equal to 0"
            } else {
                "must be greater than 0"
            };
            u64::try_from(n)
                .ok()
                .filter(|_| n >= min)
                .ok_or_else(|| bad(422, format!("{k}: Invalid value: {n}: {rule}")))
        };
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let on = matches!(v.as_ref(), "1" | "true" | "True" | "TRUE");
            match k.as_ref() {
                "follow" => o.follow = on,
                "previous" => o.previous = on,
                "timestamps" => o.timestamps = on,
                "tailLines" => o.tail_lines = Some(num("tailLines", &v, 0)?),
                "limitBytes" => o.limit_bytes = Some(num("limitBytes", &v, 1)?),
                "sinceSeconds" => o.since_seconds = Some(num("sinceSeconds", &v, 1)?),
                "sinceTime" => o.since_time = Some(v.into_owned()),
                _ => {}
            }
        }
        if o.since_seconds.is_some() && o.since_time.is_some() {
            return Err(bad(
                422,
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ));
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
        let code = |q: &str| LogOptions::from_query(Some(q)).map_err(|e| e.code);
        assert_eq!(code("tailLines=x"), Err(400));
        assert_eq!(code("limitBytes=99999999999999999999"), Err(400));
        assert_eq!(
            LogOptions::from_query(Some("tailLines=-1")),
            Err(BadLogOptions {
                code: 422,
                message: "tailLines: Invalid value: -1: must be greater than or equal to 0".into()
            })
        );
        assert_eq!(code("limitBytes=0"), Err(422));
        assert_eq!(code("sinceSeconds=0"), Err(422));
        assert_eq!(
            code("sinceSeconds=5&sinceTime=2026-01-01T00%3A00%3A00Z"),
            Err(422)
        );
        assert_eq!(
            code("tailLines=0&limitBytes=1&sinceSeconds=1").map(|_| ()),
            Ok(())
        );
    }
}
