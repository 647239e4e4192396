//! The OpenAPI documents served at `/openapi/v2` and `/openapi/v3`.

/// The Swagger 2.0 document for every served group/version, as JSON.
pub fn v2_json() -> &'static [u8] {
    b"{}"
}

/// The same document as a protobuf-encoded `openapi_v2.Document` (gnostic), which kubectl
/// requests with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
pub fn v2_protobuf() -> &'static [u8] {
    b""
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn v3_index() -> &'static [u8] {
    b"{\"paths\":{}}"
}

/// The OpenAPI 3.0 document of one group/version; `path` is `api/v1` or `apis/<group>/<version>`.
pub fn v3_document(path: &str) -> Option<&'static [u8]> {
    let _ = path;
    None
}
