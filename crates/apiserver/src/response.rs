//! Building responses: JSON bodies with the right content type, `Warning` headers, and
//! `Status` errors.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::Value;

use crate::errors::ApiError;

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

/// JSON as Kubernetes' serializer writes it (Go's `json.Encoder`): `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c`…, and a newline after the value. Every body and watch event goes
/// through here, so clients that compare bytes see what Kubernetes would send.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return Vec::new();
    }
    out.push(b'\n');
    out
}

/// `serde_json`'s compact output plus the escapes Go's encoder adds (`SetEscapeHTML(true)`,
/// its default, and the JavaScript line separators).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
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
