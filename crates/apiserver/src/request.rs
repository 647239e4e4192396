//! Request decoding shared by every handler: query parameters, body formats (JSON, YAML),
//! patch types, and the response format the client asked for (object or server-side Table).

use std::collections::HashMap;

use http::HeaderMap;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};

/// Parsed query string; repeated keys keep their last value.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let map = url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self(map)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "True"))
    }

    /// `dryRun=All` (the only value Kubernetes accepts).
    pub fn dry_run(&self) -> ApiResult<bool> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    /// `fieldValidation`: Strict, Warn (the default) or Ignore.
    pub fn field_validation(&self) -> ApiResult<FieldValidation> {
        match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid fieldValidation directive: {other:?}, supported values: Ignore, Warn, Strict"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// The media type of the request body, ignoring parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes an object body (JSON, YAML or Kubernetes protobuf) into JSON.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    let v: Value = match ct.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body as JSON: {e}"))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => crate::yaml::decode(body)
            .map_err(|e| {
                ApiError::bad_request(format!("error decoding request body as YAML: {e}"))
            })?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode_object(body).map_err(|e| {
                let message = format!("error decoding request body as protobuf: {e}");
                if e.is_unsupported() {
                    ApiError::new(415, "UnsupportedMediaType", message)
                } else {
                    ApiError::bad_request(message)
                }
            })?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be an object, got: {}",
            truncate(&v.to_string(), 80)
        )));
    }
    Ok(v)
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        format!("{}...", &s[..s.floor_char_boundary(n)])
    }
}

/// The patch formats of `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

pub fn patch_type(headers: &HeaderMap) -> ApiResult<PatchType> {
    match content_type(headers).as_str() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// What the client wants back for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Object,
    /// `meta.k8s.io/v1` Table (or v1beta1, same shape).
    Table {
        v1beta1: bool,
    },
    /// `PartialObjectMetadata` (`as=PartialObjectMetadata`).
    Metadata,
}

/// Picks the first media type in `Accept` that the server can produce.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Format> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mut any_json = false;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let mt = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if !(mt == "application/json"
            || mt == "*/*"
            || mt == "application/*"
            || mt == "application/yaml")
        {
            continue;
        }
        match params.get("as").map(String::as_str) {
            None => {
                any_json = true;
                break;
            }
            Some("Table") if params.get("g").map(String::as_str) == Some("meta.k8s.io") => {
                let v = params.get("v").map(String::as_str).unwrap_or("v1");
                if v == "v1" || v == "v1beta1" {
                    return Ok(Format::Table {
                        v1beta1: v == "v1beta1",
                    });
                }
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if params.get("g").map(String::as_str) == Some("meta.k8s.io") =>
            {
                return Ok(Format::Metadata);
            }
            _ => {}
        }
    }
    if any_json || accept.contains("protobuf") || accept.trim().is_empty() {
        return Ok(Format::Object);
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (got {accept:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, accept.parse().expect("header"));
        h
    }

    #[test]
    fn kubectl_table_accept_header_picks_table_v1() {
        let h = headers(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(negotiate(&h), Ok(Format::Table { v1beta1: false }));
        assert_eq!(
            negotiate(&headers("application/json, */*")),
            Ok(Format::Object)
        );
        assert_eq!(
            negotiate(&headers("application/vnd.kubernetes.protobuf, */*")),
            Ok(Format::Object)
        );
        assert!(negotiate(&headers("text/html")).is_err());
    }

    #[test]
    fn yaml_and_json_bodies_decode() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "application/yaml".parse().expect("header"),
        );
        assert_eq!(decode_body(&h, b"a: 1").expect("yaml")["a"], 1);
        let h = HeaderMap::new();
        let err = decode_body(&h, b"{nope").expect_err("malformed");
        assert_eq!(err.code, 400);
    }
}
