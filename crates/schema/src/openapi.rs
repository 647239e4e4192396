//! The OpenAPI documents served at `/openapi/v2` and `/openapi/v3`.
//!
//! Both are rendered from one route table ([`routes`]) and the schema catalog, once, on first
//! request. kubectl reads more than the schemas: it looks for the `fieldValidation` query
//! parameter on the PATCH operation of a kind (found through the operation's
//! `x-kubernetes-group-version-kind`) to decide whether the server validates fields itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use baton_api::registry::{RESOURCES, ResourceDef};
use serde_json::{Map, Value, json};

use crate::catalog::{self, DEFINITIONS, REF_PREFIX};

/// The Swagger 2.0 document for every served group/version, as JSON.
pub fn v2_json() -> &'static [u8] {
    &V2_JSON
}

/// The same document as a protobuf-encoded `openapi_v2.Document` (gnostic), which kubectl
/// requests with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
pub fn v2_protobuf() -> &'static [u8] {
    &V2_PROTO
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn v3_index() -> &'static [u8] {
    &V3.0
}

/// The OpenAPI 3.0 document of one group/version; `path` is `api/v1` or `apis/<group>/<version>`.
pub fn v3_document(path: &str) -> Option<&'static [u8]> {
    V3.1.get(path.trim_matches('/')).map(Vec::as_slice)
}

static V2: LazyLock<Value> = LazyLock::new(build_v2);
static V2_JSON: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&*V2).expect("a JSON value always serializes"));
static V2_PROTO: LazyLock<Vec<u8>> = LazyLock::new(|| crate::proto::encode_v2(&V2));
/// The v3 index and the document of each group/version, by path (`apis/apps/v1`).
type V3Documents = (Vec<u8>, BTreeMap<String, Vec<u8>>);
static V3: LazyLock<V3Documents> = LazyLock::new(build_v3);

const SERVED_VERSION: &str = "v1.33.0";

/// One query parameter: name, type, description.
type Query = (&'static str, &'static str, &'static str);

const DRY_RUN: Query = (
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Query = (
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
);
const FIELD_VALIDATION: Query = (
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
);
const FORCE: Query = (
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
const LIST_QUERY: &[Query] = &[
    (
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    ),
    (
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    (
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    (
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call.",
    ),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
];
const WRITE_QUERY: &[Query] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_QUERY: &[Query] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_QUERY: &[Query] = &[
    DRY_RUN,
    (
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Foreground', 'Background'.",
    ),
    (
        "orphanDependents",
        "boolean",
        "Deprecated: please use the PropagationPolicy.",
    ),
];
const DELETE_COLLECTION_QUERY: &[Query] = &[
    DRY_RUN,
    (
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    (
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    (
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call.",
    ),
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

/// One operation of a route.
struct Operation {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: (&'static str, &'static str, String),
    /// Definition name of the request body, if any.
    body: Option<String>,
    /// Definition name of the successful response.
    response: String,
    query: &'static [Query],
    /// Status codes answered with `response`.
    codes: &'static [&'static str],
}

/// One path with its operations.
struct Route {
    path: String,
    /// `api/v1` or `apis/<group>/<version>`: the v3 document the route belongs to.
    group_version: String,
    tag: String,
    path_params: Vec<&'static str>,
    operations: Vec<Operation>,
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `CoreV1`, `AppsV1beta1`, `NetworkingV1`: the operation id infix of a group/version.
fn id_infix(group: &str, version: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("{}{}", upper_first(package), upper_first(version))
}

/// The route table for every served resource.
fn routes() -> Vec<Route> {
    let mut out = Vec::new();
    for r in RESOURCES {
        out.extend(resource_routes(r));
    }
    out
}

fn resource_routes(r: &'static ResourceDef) -> Vec<Route> {
    let (prefix, group_version) = if r.group.is_empty() {
        (format!("/api/{}", r.version), format!("api/{}", r.version))
    } else {
        (
            format!("/apis/{}/{}", r.group, r.version),
            format!("apis/{}/{}", r.group, r.version),
        )
    };
    let tag = format!(
        "{}_{}",
        if r.group.is_empty() {
            "core"
        } else {
            r.group.split('.').next().unwrap_or(r.group)
        },
        r.version
    );
    let infix = id_infix(r.group, r.version);
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let kind = r.kind;
    let kind_def = catalog::kind_definition(r);
    let list_def = format!("{kind_def}List");
    let status_def = "io.k8s.apimachinery.pkg.apis.meta.v1.Status".to_string();
    let delete_options = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".to_string();
    let patch_def = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".to_string();
    let gvk = || (r.group, r.version, kind.to_string());
    let ns_segment = if r.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let mut base_params = Vec::new();
    if r.namespaced {
        base_params.push("namespace");
    }
    let op = |method,
              action,
              id: String,
              description: String,
              body: Option<String>,
              response: String,
              query,
              codes| Operation {
        method,
        action,
        id,
        description,
        gvk: gvk(),
        body,
        response,
        query,
        codes,
    };
    let mut routes = Vec::new();
    routes.push(Route {
        path: format!("{prefix}{ns_segment}/{}", r.resource),
        group_version: group_version.clone(),
        tag: tag.clone(),
        path_params: base_params.clone(),
        operations: vec![
            op(
                "get",
                "list",
                format!("list{infix}{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
                None,
                list_def.clone(),
                LIST_QUERY,
                &["200"],
            ),
            op(
                "post",
                "post",
                format!("create{infix}{scope}{kind}"),
                format!("create a {kind}"),
                Some(kind_def.clone()),
                kind_def.clone(),
                WRITE_QUERY,
                &["200", "201", "202"],
            ),
            op(
                "delete",
                "deletecollection",
                format!("deleteCollection{infix}{scope}{kind}"),
                format!("delete collection of {kind}"),
                Some(delete_options.clone()),
                status_def.clone(),
                DELETE_COLLECTION_QUERY,
                &["200"],
            ),
        ],
    });
    if r.namespaced {
        routes.push(Route {
            path: format!("{prefix}/{}", r.resource),
            group_version: group_version.clone(),
            tag: tag.clone(),
            path_params: Vec::new(),
            operations: vec![op(
                "get",
                "list",
                format!("list{infix}{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                None,
                list_def.clone(),
                LIST_QUERY,
                &["200"],
            )],
        });
    }
    let mut item_params = vec!["name"];
    item_params.extend(base_params.iter().copied());
    let item = format!("{prefix}{ns_segment}/{}/{{name}}", r.resource);
    routes.push(Route {
        path: item.clone(),
        group_version: group_version.clone(),
        tag: tag.clone(),
        path_params: item_params.clone(),
        operations: vec![
            op(
                "get",
                "get",
                format!("read{infix}{scope}{kind}"),
                format!("read the specified {kind}"),
                None,
                kind_def.clone(),
                &[],
                &["200"],
            ),
            op(
                "put",
                "put",
                format!("replace{infix}{scope}{kind}"),
                format!("replace the specified {kind}"),
                Some(kind_def.clone()),
                kind_def.clone(),
                WRITE_QUERY,
                &["200", "201"],
            ),
            op(
                "patch",
                "patch",
                format!("patch{infix}{scope}{kind}"),
                format!("partially update the specified {kind}"),
                Some(patch_def.clone()),
                kind_def.clone(),
                PATCH_QUERY,
                &["200", "201"],
            ),
            op(
                "delete",
                "delete",
                format!("delete{infix}{scope}{kind}"),
                format!("delete a {kind}"),
                Some(delete_options.clone()),
                status_def.clone(),
                DELETE_QUERY,
                &["200", "202"],
            ),
        ],
    });
    for sub in r.subresources {
        let sub_title = upper_first(sub);
        match *sub {
            "status" => routes.push(Route {
                path: format!("{item}/status"),
                group_version: group_version.clone(),
                tag: tag.clone(),
                path_params: item_params.clone(),
                operations: vec![
                    op(
                        "get",
                        "get",
                        format!("read{infix}{scope}{kind}Status"),
                        format!("read status of the specified {kind}"),
                        None,
                        kind_def.clone(),
                        &[],
                        &["200"],
                    ),
                    op(
                        "put",
                        "put",
                        format!("replace{infix}{scope}{kind}Status"),
                        format!("replace status of the specified {kind}"),
                        Some(kind_def.clone()),
                        kind_def.clone(),
                        WRITE_QUERY,
                        &["200", "201"],
                    ),
                    op(
                        "patch",
                        "patch",
                        format!("patch{infix}{scope}{kind}Status"),
                        format!("partially update status of the specified {kind}"),
                        Some(patch_def.clone()),
                        kind_def.clone(),
                        PATCH_QUERY,
                        &["200", "201"],
                    ),
                ],
            }),
            "scale" => {
                let (scale_def, (sg, sv)) = catalog::scale_definition(r);
                let sgvk = (sg, sv, "Scale".to_string());
                let mut ops = vec![
                    op(
                        "get",
                        "get",
                        format!("read{infix}{scope}{kind}Scale"),
                        format!("read scale of the specified {kind}"),
                        None,
                        scale_def.clone(),
                        &[],
                        &["200"],
                    ),
                    op(
                        "put",
                        "put",
                        format!("replace{infix}{scope}{kind}Scale"),
                        format!("replace scale of the specified {kind}"),
                        Some(scale_def.clone()),
                        scale_def.clone(),
                        WRITE_QUERY,
                        &["200", "201"],
                    ),
                    op(
                        "patch",
                        "patch",
                        format!("patch{infix}{scope}{kind}Scale"),
                        format!("partially update scale of the specified {kind}"),
                        Some(patch_def.clone()),
                        scale_def.clone(),
                        PATCH_QUERY,
                        &["200", "201"],
                    ),
                ];
                ops.iter_mut().for_each(|o| o.gvk = sgvk.clone());
                routes.push(Route {
                    path: format!("{item}/scale"),
                    group_version: group_version.clone(),
                    tag: tag.clone(),
                    path_params: item_params.clone(),
                    operations: ops,
                });
            }
            "rollback" => {
                let rollback_def =
                    catalog::definition_name(r.group, r.version, "DeploymentRollback");
                let mut o = op(
                    "post",
                    "post",
                    format!("create{infix}{scope}{kind}{sub_title}"),
                    format!("create rollback of a {kind}"),
                    Some(rollback_def),
                    status_def.clone(),
                    WRITE_QUERY,
                    &["200", "201", "202"],
                );
                o.gvk = (r.group, r.version, "DeploymentRollback".to_string());
                routes.push(Route {
                    path: format!("{item}/rollback"),
                    group_version: group_version.clone(),
                    tag: tag.clone(),
                    path_params: item_params.clone(),
                    operations: vec![o],
                });
            }
            _ => {}
        }
    }
    routes
}

fn path_param_description(name: &str) -> &'static str {
    match name {
        "namespace" => "object name and auth scope, such as for teams and projects",
        _ => "name of the resource",
    }
}

fn v2_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

fn render_v2_operation(op: &Operation, tag: &str) -> Value {
    let mut params = Vec::new();
    if let Some(body) = &op.body {
        params.push(json!({"in": "body", "name": "body", "required": op.method != "delete", "schema": v2_ref(body)}));
    }
    for (name, ty, description) in op.query {
        params.push(json!({"uniqueItems": true, "type": ty, "description": description, "name": name, "in": "query"}));
    }
    let consumes: &[&str] = if op.method == "patch" {
        PATCH_TYPES
    } else {
        &["*/*"]
    };
    let produces = if op.action == "list" {
        PRODUCES_LIST
    } else {
        PRODUCES
    };
    let mut responses = Map::new();
    for code in op.codes {
        let text = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        responses.insert(
            (*code).into(),
            json!({"description": text, "schema": v2_ref(&op.response)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    json!({
        "description": op.description,
        "consumes": consumes,
        "produces": produces,
        "schemes": ["https"],
        "tags": [tag],
        "operationId": op.id,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": op.gvk.0, "kind": op.gvk.2, "version": op.gvk.1},
    })
}

fn render_v2_route(route: &Route) -> Value {
    let mut item = Map::new();
    for op in &route.operations {
        item.insert(op.method.into(), render_v2_operation(op, &route.tag));
    }
    let mut params: Vec<Value> = route
        .path_params
        .iter()
        .map(|p| json!({"uniqueItems": true, "type": "string", "description": path_param_description(p), "name": p, "in": "path", "required": true}))
        .collect();
    params.push(json!({"uniqueItems": true, "type": "string", "description": "If 'true', then the output is pretty printed.", "name": "pretty", "in": "query"}));
    item.insert("parameters".into(), Value::Array(params));
    Value::Object(item)
}

fn build_v2() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        paths.insert(route.path.clone(), render_v2_route(&route));
    }
    let definitions: Map<String, Value> = DEFINITIONS
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SERVED_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

/// Converts a catalog schema to OpenAPI 3: references point into `components/schemas`, and a
/// reference with siblings (a field's description) is wrapped in `allOf` as Kubernetes does.
fn to_v3_schema(schema: &Value, refs: &mut BTreeSet<String>) -> Value {
    match schema {
        Value::Object(obj) => {
            let mut out = Map::new();
            let mut target = None;
            for (key, value) in obj {
                if key == "$ref"
                    && let Some(name) = value.as_str().and_then(|r| r.strip_prefix(REF_PREFIX))
                {
                    refs.insert(name.to_string());
                    target = Some(json!({"$ref": format!("#/components/schemas/{name}")}));
                    continue;
                }
                out.insert(key.clone(), to_v3_schema(value, refs));
            }
            match target {
                Some(r) if out.is_empty() => r,
                Some(r) => {
                    out.insert("allOf".into(), json!([r]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| to_v3_schema(v, refs)).collect()),
        other => other.clone(),
    }
}

fn v3_ref(name: &str, refs: &mut BTreeSet<String>) -> Value {
    refs.insert(name.to_string());
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn render_v3_operation(op: &Operation, tag: &str, refs: &mut BTreeSet<String>) -> Value {
    let mut params = Vec::new();
    for (name, ty, description) in op.query {
        params.push(json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}}));
    }
    let mut out = Map::new();
    out.insert("tags".into(), json!([tag]));
    out.insert("description".into(), json!(op.description));
    out.insert("operationId".into(), json!(op.id));
    out.insert("parameters".into(), Value::Array(params));
    if let Some(body) = &op.body {
        let types: &[&str] = if op.method == "patch" {
            PATCH_TYPES
        } else {
            &["*/*"]
        };
        let schema = v3_ref(body, refs);
        let content: Map<String, Value> = types
            .iter()
            .map(|t| ((*t).to_string(), json!({"schema": schema.clone()})))
            .collect();
        out.insert(
            "requestBody".into(),
            json!({"content": content, "required": op.method != "delete"}),
        );
    }
    let produces = if op.action == "list" {
        PRODUCES_LIST
    } else {
        PRODUCES
    };
    let schema = v3_ref(&op.response, refs);
    let content: Map<String, Value> = produces
        .iter()
        .map(|t| ((*t).to_string(), json!({"schema": schema.clone()})))
        .collect();
    let mut responses = Map::new();
    for code in op.codes {
        let text = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        responses.insert(
            (*code).into(),
            json!({"description": text, "content": content.clone()}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    out.insert("responses".into(), Value::Object(responses));
    out.insert("x-kubernetes-action".into(), json!(op.action));
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({"group": op.gvk.0, "kind": op.gvk.2, "version": op.gvk.1}),
    );
    Value::Object(out)
}

fn render_v3_route(route: &Route, refs: &mut BTreeSet<String>) -> Value {
    let mut item = Map::new();
    for op in &route.operations {
        item.insert(op.method.into(), render_v3_operation(op, &route.tag, refs));
    }
    let mut params: Vec<Value> = route
        .path_params
        .iter()
        .map(|p| json!({"name": p, "in": "path", "description": path_param_description(p), "required": true, "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    params.push(json!({"name": "pretty", "in": "query", "description": "If 'true', then the output is pretty printed.", "schema": {"type": "string", "uniqueItems": true}}));
    item.insert("parameters".into(), Value::Array(params));
    Value::Object(item)
}

/// Hex FNV-1a of a document: a stable content hash for the index's cache-busting URLs.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn build_v3() -> V3Documents {
    let mut grouped: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for route in routes() {
        if !order.contains(&route.group_version) {
            order.push(route.group_version.clone());
        }
        grouped
            .entry(route.group_version.clone())
            .or_default()
            .push(route);
    }
    let mut documents = BTreeMap::new();
    let mut index = Map::new();
    for gv in order {
        let mut refs = BTreeSet::new();
        let mut paths = Map::new();
        for route in grouped.get(&gv).into_iter().flatten() {
            paths.insert(route.path.clone(), render_v3_route(route, &mut refs));
        }
        // Close over references: every schema a document mentions is in it.
        let mut schemas = BTreeMap::new();
        let mut pending: Vec<String> = refs.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if schemas.contains_key(&name) {
                continue;
            }
            let Some(def) = DEFINITIONS.get(&name) else {
                continue;
            };
            let mut found = BTreeSet::new();
            let converted = to_v3_schema(def, &mut found);
            schemas.insert(name, converted);
            pending.extend(found.into_iter().filter(|n| !schemas.contains_key(n)));
        }
        let schemas: Map<String, Value> = schemas.into_iter().collect();
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVED_VERSION},
            "paths": paths,
            "components": {"schemas": schemas},
        });
        let bytes = serde_json::to_vec(&doc).expect("a JSON value always serializes");
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", content_hash(&bytes))}),
        );
        documents.insert(gv, bytes);
    }
    let index =
        serde_json::to_vec(&json!({"paths": index})).expect("a JSON value always serializes");
    (index, documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2() -> Value {
        serde_json::from_slice(v2_json()).expect("v2 is JSON")
    }

    #[test]
    fn v2_has_paths_with_field_validation_and_gvk_on_patch() {
        let doc = v2();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"fieldValidation")
                && names.contains(&"dryRun")
                && names.contains(&"fieldManager")
        );
        assert!(
            patch["consumes"]
                .as_array()
                .is_some_and(|c| c.contains(&json!("application/strategic-merge-patch+json")))
        );
        assert!(doc["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
        assert!(doc["paths"]["/api/v1/pods"]["get"].is_object());
        assert!(doc["paths"]["/apis/extensions/v1beta1/namespaces/{namespace}/deployments/{name}/rollback"]["post"].is_object());
        let scale = &doc["paths"]["/apis/extensions/v1beta1/namespaces/{namespace}/deployments/{name}/scale"]
            ["get"];
        assert_eq!(
            scale["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.extensions.v1beta1.Scale"
        );
        assert!(doc["definitions"]["io.k8s.api.extensions.v1beta1.DeploymentList"].is_object());
    }

    #[test]
    fn v3_index_lists_every_group_version_and_documents_are_closed() {
        let index: Value = serde_json::from_slice(v3_index()).expect("index is JSON");
        for r in RESOURCES {
            let gv = if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            };
            let url = index["paths"][&gv]["serverRelativeURL"]
                .as_str()
                .unwrap_or_default();
            assert!(
                url.starts_with(&format!("/openapi/v3/{gv}?hash=")),
                "{gv}: {url}"
            );
            let doc: Value =
                serde_json::from_slice(v3_document(&gv).expect("document")).expect("JSON");
            let text = doc.to_string();
            let schemas = doc["components"]["schemas"].as_object().expect("schemas");
            for piece in text.split("#/components/schemas/").skip(1) {
                let name = piece.split('"').next().unwrap_or_default();
                assert!(schemas.contains_key(name), "{gv} misses {name}");
            }
            assert!(!text.contains("#/definitions/"), "{gv}");
        }
        let apps: Value =
            serde_json::from_slice(v3_document("apis/apps/v1").expect("apps")).expect("JSON");
        let strategy = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
            ["strategy"];
        assert!(
            strategy["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert_eq!(
            strategy["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
        );
        let patch =
            &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["version"], "v1");
        assert!(
            patch["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation"))
        );
        assert!(v3_document("apis/nope/v1").is_none());
    }
}

#[cfg(test)]
mod dump {
    /// Writes every document to `$BATON_SCHEMA_DUMP` for checking them with a real kubectl.
    #[test]
    #[ignore = "manual: run with BATON_SCHEMA_DUMP=<dir>"]
    fn dump_documents() {
        let Some(dir) = std::env::var_os("BATON_SCHEMA_DUMP") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        };
        write("v2.json", super::v2_json());
        write("v2.pb", super::v2_protobuf());
        write("v3/index", super::v3_index());
        for path in super::V3.1.keys() {
            write(
                &format!("v3/{path}"),
                super::v3_document(path).expect("listed"),
            );
        }
    }
}
