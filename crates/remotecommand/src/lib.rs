//! The server side of Kubernetes' streaming protocols, as a node agent (the kubelet) speaks
//! them: `exec` and `attach` over WebSocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`) or SPDY/3.1 (`v4.channel.k8s.io`), and `portForward` over SPDY/3.1
//! (`portforward.k8s.io`), also when kubectl tunnels that SPDY inside a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`, kubectl 1.33), and port-forward's WebSocket channel form
//! (`?port=N` with `v4.channel.k8s.io` or its base64 variant) that other clients use.
//! With `tty=1` the session is a terminal (`exec`: [`tty`]) and follows the client's window size
//! (the resize stream).
//!
//! The agent owns its HTTP server and routes the kubelet paths to this crate:
//!
//! | kubelet path | call |
//! |---|---|
//! | any of the three below | [`kubelet::route`] (hands back other requests) |
//! | `POST\|GET /exec/{ns}/{pod}/{container}?command=…&stdin=1&stdout=1&stderr=1&tty=0` | [`serve_exec`] |
//! | `POST\|GET /attach/{ns}/{pod}/{container}?…` | [`serve_attach`] |
//! | `POST\|GET /portForward/{ns}/{pod}` | [`serve_port_forward`] |
//!
//! Each takes the request (any body type: only its headers, query and hyper upgrade are used;
//! serve the connection with upgrades enabled) and returns the response to send: `101 Switching
//! Protocols` after which the session runs in a spawned task, or an error with a `Status` body.
//! What runs, and where a pod's ports are, comes from the agent through [`PodStreams`].
//!
//! # Layout
//! - [`spdy`]: SPDY/3.1 frames, header compression, and a server session.
//! - [`websocket`]: the WebSocket handshake and the channel framing (`v4`/`v5`).
//! - [`exec`]: running a command and wiring its stdio to either transport.
//! - [`portforward`]: port-forward streams paired by request id, spliced to the pod's port.
//! - [`status`]: the `metav1.Status` objects written on the error stream.
//! - [`upgrade`]: protocol negotiation shared by the entry points.
//! - [`kubelet`]: the kubelet paths parsed and routed; `/containerLogs` query options.

pub mod exec;
pub mod kubelet;
pub mod portforward;
pub mod spdy;
pub mod status;
pub mod tty;
pub mod upgrade;
pub mod websocket;

use std::net::IpAddr;

use async_trait::async_trait;

pub use exec::{
    ExecOptions, Runner, SessionIo, TermSize, command_runner, serve_attach, serve_exec,
};
pub use kubelet::{KubeletPath, LogOptions, route};
pub use portforward::serve_port_forward;

/// The response body every entry point answers with.
pub type Body = http_body_util::Full<bytes::Bytes>;

/// What the agent provides to the streaming protocols.
#[async_trait]
pub trait PodStreams: Send + Sync + 'static {
    /// The session of `opts.command` run inside the container (the agent returns
    /// [`command_runner`] over `runc exec …`).
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError>;

    /// The session of an attach to the running container's own stdio.
    async fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        opts: &ExecOptions,
    ) -> Result<Runner, StreamError>;

    /// Where the pod's ports are reachable from the node (the pod IP) for port-forward.
    async fn pod_addr(&self, namespace: &str, pod: &str) -> Result<IpAddr, StreamError>;
}

/// Why the agent could not serve a stream; reported to the client as a `Status` (on the error
/// stream once upgraded, or as the HTTP answer before).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    #[error("pod {namespace}/{pod} not found")]
    PodNotFound { namespace: String, pod: String },
    #[error("container {container} is not running in pod {namespace}/{pod}")]
    ContainerNotRunning {
        namespace: String,
        pod: String,
        container: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Internal(String),
}

impl StreamError {
    /// The HTTP status code this error answers with before an upgrade.
    pub fn code(&self) -> u16 {
        match self {
            StreamError::PodNotFound { .. } => 404,
            StreamError::ContainerNotRunning { .. } | StreamError::Unsupported(_) => 400,
            StreamError::Internal(_) => 500,
        }
    }
}
