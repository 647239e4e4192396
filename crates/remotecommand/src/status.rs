//! The `metav1.Status` objects of the remotecommand protocols: written (as JSON) on the error
//! stream at the end of an exec, and as the body of an HTTP error before an upgrade. kubectl
//! turns `reason: NonZeroExitCode` with an `ExitCode` cause into "command terminated with exit
//! code N" and exits with N.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::{Body, StreamError};

/// `{"status":"Success"}`: the command exited with 0.
pub fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// The command exited with a non-zero code.
pub fn exit_code(cmd: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", cmd.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Any other failure, e.g. the command could not start.
pub fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The reason name Kubernetes uses for an HTTP code.
pub fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        422 => "Invalid",
        501 => "NotImplemented",
        _ => "InternalError",
    }
}

/// A status for an agent error.
pub fn of_error(e: &StreamError) -> Value {
    failure(e.code(), reason_of(e.code()), &e.to_string())
}

/// An HTTP error answered with a `Status` body.
pub fn response(code: u16, message: &str) -> Response<Body> {
    let body = serde_json::to_vec(&failure(code, reason_of(code), message)).unwrap_or_default();
    let mut r = Response::new(Body::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
