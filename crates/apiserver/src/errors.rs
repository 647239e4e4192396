//! API errors: every error a client can cause becomes a `metav1.Status` with the code, reason
//! and message wording that Kubernetes clients (and kubectl's error printer) expect.

use axum::response::{IntoResponse, Response};
use baton_api::registry::ResourceDef;
use baton_api::validation::FieldError;
use baton_store::StoreError;
use http::StatusCode;
use serde_json::{Value, json};

/// An error answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    /// The `StatusReason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// `deployments.apps` for named groups, `pods` for the core group: how Kubernetes names a
/// resource in messages.
pub fn qualified_resource(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.resource.to_string()
    } else {
        format!("{}.{}", def.resource, def.group)
    }
}

/// `StatusDetails` in the field order of its Go type: name, group, kind, uid, causes (the
/// `serde_json` map keeps insertion order); an empty group is omitted, as Go's `omitempty` does.
fn status_details(name: &str, group: &str, kind: &str, causes: Option<Vec<Value>>) -> Value {
    let mut d = serde_json::Map::new();
    d.insert("name".into(), json!(name));
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    if let Some(c) = causes {
        d.insert("causes".into(), Value::Array(c));
    }
    Value::Object(d)
}

fn details(def: &ResourceDef, name: &str) -> Value {
    status_details(name, def.group, def.resource, None)
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self {
            details: Some(details(def, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", qualified_resource(def), name),
            )
        }
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", qualified_resource(def), name),
            )
        }
    }

    /// A stale resourceVersion or a failed precondition.
    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        Self {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {}",
                    qualified_resource(def),
                    name,
                    why
                ),
            )
        }
    }

    pub fn stale(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error, worded as Kubernetes' `NewInvalid`.
    pub fn invalid(def: &ResourceDef, name: &str, errs: &[FieldError]) -> Self {
        let kind_group = if def.group.is_empty() {
            def.kind.to_string()
        } else {
            format!("{}.{}", def.kind, def.group)
        };
        let list = if errs.len() == 1 {
            errs[0].to_string()
        } else {
            format!(
                "[{}]",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let causes: Vec<Value> = errs
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
            .collect();
        Self {
            details: Some(status_details(name, def.group, def.kind, Some(causes))),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind_group} \"{name}\" is invalid: {list}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403, as Kubernetes' `NewForbidden`: `pods "x" is forbidden: <why>`, `pods is
    /// forbidden: <why>` without a name, `forbidden: <why>` without a resource.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = match (group, resource) {
            (_, "") => String::new(),
            ("", r) => r.to_string(),
            (g, r) => format!("{r}.{g}"),
        };
        let message = match (qualified.as_str(), name) {
            ("", _) => format!("forbidden: {why}"),
            (q, "") => format!("{q} is forbidden: {why}"),
            (q, n) => format!("{q} \"{n}\" is forbidden: {why}"),
        };
        // StatusDetails with Go's omitempty.
        let mut d = serde_json::Map::new();
        for (k, v) in [("name", name), ("group", group), ("kind", resource)] {
            if !v.is_empty() {
                d.insert(k.into(), json!(v));
            }
        }
        Self {
            details: Some(Value::Object(d)),
            ..Self::new(403, "Forbidden", message)
        }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct:?})"
            ),
        )
    }

    /// 410 for a watch or list from a resourceVersion older than the history window.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The generic "the server could not find the requested resource" 404.
    pub fn no_route() -> Self {
        Self {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 429, as Kubernetes' `NewTooManyRequests`: `details.retryAfterSeconds`, and a
    /// `Retry-After` header on the response.
    pub fn too_many_requests(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            details: Some(json!({"retryAfterSeconds": retry_after_secs})),
            ..Self::new(429, "TooManyRequests", message)
        }
    }

    /// 507 for a write the store has no disk space for (Kubernetes has no reason of its own
    /// for it; the message names the file).
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        Self::new(507, "InsufficientStorage", message)
    }

    /// A store error not about one object: a full disk is 507, a full write queue 429, the
    /// rest 500.
    pub fn store(e: StoreError) -> Self {
        match e {
            StoreError::NoSpace(m) => Self::insufficient_storage(m),
            StoreError::Overloaded(m) => Self::too_many_requests(m, 1),
            StoreError::Compacted { requested, oldest } => {
                Self::gone(format!("too old resource version: {requested} ({oldest})"))
            }
            other => Self::internal(other.to_string()),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// Maps a store error on one object to its API error.
    pub fn from_store(def: &ResourceDef, name: &str, e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::not_found(def, name),
            StoreError::AlreadyExists { .. } => Self::already_exists(def, name),
            StoreError::Conflict { .. } => Self::stale(def, name),
            other => Self::store(other),
        }
    }

    /// The `Status` object, in the field order of Kubernetes' Go type (`details` before `code`).
    pub fn status(&self) -> Value {
        let mut s = serde_json::Map::new();
        s.insert("kind".into(), json!("Status"));
        s.insert("apiVersion".into(), json!("v1"));
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), json!("Failure"));
        s.insert("message".into(), json!(self.message));
        s.insert("reason".into(), json!(self.reason));
        if let Some(d) = &self.details {
            s.insert("details".into(), d.clone());
        }
        s.insert("code".into(), json!(self.code));
        Value::Object(s)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = crate::json::encode(&self.status());
        let mut resp = (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(secs) = self
            .details
            .as_ref()
            .and_then(|d| d.get("retryAfterSeconds"))
            .and_then(Value::as_u64)
        {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::registry::find;

    fn body(e: &ApiError) -> String {
        String::from_utf8(crate::json::encode(&e.status())).expect("UTF-8")
    }

    #[test]
    fn already_exists_is_byte_for_byte_what_kubernetes_writes() {
        let def = find("apps", "v1", "deployments").expect("registered");
        assert_eq!(
            body(&ApiError::already_exists(def, "x")),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"deployments.apps \\\"x\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"x\",\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":409}\n"
        );
    }

    #[test]
    fn core_group_not_found_has_no_group_and_code_last() {
        let def = find("", "v1", "pods").expect("registered");
        assert_eq!(
            body(&ApiError::not_found(def, "p")),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"p\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"p\",\"kind\":\"pods\"},\"code\":404}\n"
        );
    }

    #[test]
    fn invalid_details_follow_status_details_field_order() {
        let def = find("apps", "v1", "deployments").expect("registered");
        let e = ApiError::invalid(def, "x", &[FieldError::required("spec.selector", "")]);
        let status = e.status();
        let keys: Vec<&str> = status
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "status",
                "message",
                "reason",
                "details",
                "code"
            ]
        );
        let details: Vec<&str> = status["details"]
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(details, ["name", "group", "kind", "causes"]);
        let cause: Vec<&str> = status["details"]["causes"][0]
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(cause, ["reason", "message", "field"]);
    }
}
