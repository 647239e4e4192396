//! Building responses: JSON bodies with the right content type, `Warning` headers, and
//! `Status` errors.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::Value;

use crate::errors::ApiError;
pub use crate::json::encode;

/// A successful reply: a JSON body or an already-built (streaming) response.
pub enum Reply {
    Json {
        code: StatusCode,
        body: Value,
        warnings: Vec<String>,
    },
    Raw(Response),
}

impl Reply {
    pub fn json(code: StatusCode, body: Value) -> Self {
        Reply::Json {
            code,
            body,
            warnings: Vec::new(),
        }
    }

    pub fn with_warnings(self, w: Vec<String>) -> Self {
        match self {
            Reply::Json {
                code,
                body,
                mut warnings,
            } => {
                warnings.extend(w);
                Reply::Json {
                    code,
                    body,
                    warnings,
                }
            }
            raw => raw,
        }
    }

    pub fn into_response(self) -> Response {
        match self {
            Reply::Raw(r) => r,
            Reply::Json {
                code,
                body,
                warnings,
            } => {
                let bytes = encode(&body);
                let mut resp = Response::builder()
                    .status(code)
                    .header(http::header::CONTENT_TYPE, "application/json");
                for w in warnings {
                    // RFC 7234 warn-code 299, agent "-", quoted text: what kubectl prints as
                    // "Warning: ...".
                    let text =
                        format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
                    resp = resp.header("Warning", text);
                }
                resp.body(Body::from(bytes))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }
}

pub fn error(e: ApiError) -> Response {
    e.into_response()
}

pub fn json(code: StatusCode, v: &Value) -> Response {
    Reply::json(code, v.clone()).into_response()
}

pub fn bytes(content_type: &'static str, b: &'static [u8]) -> Response {
    ([(http::header::CONTENT_TYPE, content_type)], b).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_as_go_does() {
        let v = json!({"kind": "Status", "message": "a <b> & \"c\"\u{2028}\n"});
        assert_eq!(
            String::from_utf8(encode(&v)).expect("UTF-8"),
            "{\"kind\":\"Status\",\"message\":\"a \\u003cb\\u003e \\u0026 \\\"c\\\"\\u2028\\n\"}\n"
        );
    }
}
