//! The crate's error type, and the one error policy every reconciler shares.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;

/// What can fail in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// An object the controller read cannot be acted on.
    #[error("{0}")]
    Invalid(String),
    /// An object could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Wraps a kube error with what was being done.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Api { action, source }
    }

    /// The API server answered with this HTTP status.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            _ => None,
        }
    }
}

/// True when a kube error is the API server's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// True when a kube error is the API server's 409.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The shared error policy: log, then retry soon (conflicts sooner).
pub fn policy<K, C>(obj: Arc<K>, err: &Error, _ctx: Arc<C>) -> Action
where
    K: kube::Resource,
{
    let conflict = err.status_code() == Some(409);
    if conflict {
        tracing::debug!(name = obj.meta().name.as_deref().unwrap_or(""), error = %err, "conflict, retrying");
        Action::requeue(Duration::from_millis(50))
    } else {
        tracing::warn!(name = obj.meta().name.as_deref().unwrap_or(""), error = %err, "reconcile failed");
        Action::requeue(Duration::from_millis(500))
    }
}
