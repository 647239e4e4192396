//! The review APIs: `authorization.k8s.io/v1` SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectRulesReview (`kubectl auth can-i`, with `--as` and
//! `--list`), and `authentication.k8s.io` SelfSubjectReview in v1 and v1beta1
//! (`kubectl auth whoami`: 1.27 asks v1beta1, later versions v1). Reviews are created, answered
//! and never stored; they are asked of the same in-memory policy as every request.

use axum::response::{IntoResponse, Response};
use baton_api::validation::{FieldError, invalid_message};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::rbac::{RequestInfo, Rule, User};
use crate::request::decode_body;
use crate::response;
use crate::state::AppState;

const AUTHZ: &str = "authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";

/// The review groups for `/apis`, with their versions (preferred first).
const GROUPS: &[(&str, &[&str])] = &[(AUTHN, &["v1", "v1beta1"]), (AUTHZ, &["v1"])];

/// Each served review: group, version, plural, kind, namespaced.
const REVIEWS: &[(&str, &str, &str, &str, bool)] = &[
    (
        AUTHN,
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        AUTHN,
        "v1beta1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        AUTHZ,
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        AUTHZ,
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        AUTHZ,
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        AUTHZ,
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

fn group_versions(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// The review groups as `/apis` lists them.
pub fn group_jsons() -> Vec<Value> {
    GROUPS
        .iter()
        .map(|(name, versions)| group_versions(name, versions))
        .collect()
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = REVIEWS
        .iter()
        .filter(|r| r.0 == group && r.1 == version)
        .map(|&(_, _, plural, kind, namespaced)| {
            json!({"name": plural, "singularName": plural.trim_end_matches('s'), "namespaced": namespaced, "kind": kind, "verbs": ["create"]})
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/{version}"),
        "resources": resources,
    })
}

/// Whether `path` is under one of the review groups.
pub fn is_review_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    GROUPS.iter().any(|(g, _)| {
        p.strip_prefix("/apis/")
            .and_then(|r| r.strip_prefix(g))
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// Answers a request under a review group (already authenticated and authorized).
pub fn serve(
    st: &AppState,
    user: &User,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let reply = match parts.as_slice() {
        ["apis", g] => GROUPS.iter().find(|(n, _)| n == g).map(|(n, v)| {
            let mut doc = group_versions(n, v);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Ok(doc)
        }),
        ["apis", g, v] => GROUPS
            .iter()
            .any(|(n, vs)| n == g && vs.contains(v))
            .then(|| Ok(resource_list(g, v))),
        ["apis", g, v, plural] => find(g, v, plural, false)
            .map(|kind| create(st, user, method, headers, body, g, v, kind, None)),
        ["apis", g, v, "namespaces", ns, plural] => find(g, v, plural, true)
            .map(|kind| create(st, user, method, headers, body, g, v, kind, Some(ns))),
        _ => None,
    };
    match reply {
        Some(Ok(v)) if v["kind"] == "APIResourceList" || v["kind"] == "APIGroup" => {
            response::json(StatusCode::OK, &v)
        }
        Some(Ok(v)) => response::json(StatusCode::CREATED, &v),
        Some(Err(e)) => e.into_response(),
        None => ApiError::no_route().into_response(),
    }
}

fn find(group: &str, version: &str, plural: &str, namespaced: bool) -> Option<&'static str> {
    REVIEWS
        .iter()
        .find(|r| r.0 == group && r.1 == version && r.2 == plural && r.4 == namespaced)
        .map(|r| r.3)
}

#[allow(clippy::too_many_arguments)]
fn create(
    st: &AppState,
    user: &User,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    group: &str,
    version: &str,
    kind: &'static str,
    ns: Option<&str>,
) -> Result<Value, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let api_version = format!("{group}/{version}");
    let obj = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_body(headers, body)?
    };
    for (field, want) in [("apiVersion", api_version.as_str()), ("kind", kind)] {
        if let Some(got) = obj.get(field).and_then(Value::as_str)
            && got != want
            && !(field == "kind" && got.is_empty())
        {
            return Err(ApiError::bad_request(format!(
                "the {field} of the object ({got}) does not match the request ({want})"
            )));
        }
    }
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let status = match kind {
        "SelfSubjectReview" => {
            let mut info = Map::new();
            info.insert("username".into(), json!(user.name));
            if !user.uid.is_empty() {
                info.insert("uid".into(), json!(user.uid));
            }
            info.insert("groups".into(), json!(user.groups));
            if !user.extra.is_empty() {
                info.insert("extra".into(), json!(user.extra));
            }
            json!({"userInfo": info})
        }
        "SelfSubjectRulesReview" => rules_review(st, user, &spec)?,
        _ => access_review(st, user, kind, &spec, ns)?,
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind));
    out.insert("apiVersion".into(), json!(api_version));
    let mut meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.entry("creationTimestamp").or_insert(Value::Null);
    out.insert("metadata".into(), Value::Object(meta));
    if kind != "SelfSubjectReview" {
        out.insert("spec".into(), spec);
    }
    out.insert("status".into(), status);
    Ok(Value::Object(out))
}

fn invalid(kind: &str, errs: Vec<FieldError>) -> ApiError {
    let causes = errs
        .iter()
        .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
        .collect::<Vec<_>>();
    ApiError {
        details: Some(json!({"group": AUTHZ, "kind": kind, "causes": causes})),
        ..ApiError::new(422, "Invalid", invalid_message(kind, AUTHZ, "", &errs))
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// SelfSubjectAccessReview, SubjectAccessReview and LocalSubjectAccessReview.
fn access_review(
    st: &AppState,
    user: &User,
    kind: &str,
    spec: &Value,
    ns: Option<&str>,
) -> Result<Value, ApiError> {
    let present = |k: &str| spec.get(k).filter(|v| !v.is_null());
    let (res, non) = (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    );
    let mut errs = Vec::new();
    if res.is_some() && non.is_some() {
        errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            non.cloned().unwrap_or_default(),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if res.is_none() && non.is_none() {
        errs.push(FieldError::invalid(
            "spec.resourceAttributes",
            json!("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let subject = if kind == "SelfSubjectAccessReview" {
        user.clone()
    } else {
        let groups = crate::rbac::strings(spec, "groups");
        let name = text(spec, "user");
        if name.is_empty() && groups.is_empty() {
            errs.push(FieldError::invalid(
                "spec.user",
                json!(""),
                "at least one of user or group must be specified",
            ));
        }
        let extra = spec
            .get("extra")
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default();
        User {
            name,
            uid: text(spec, "uid"),
            groups,
            extra,
        }
    };
    if !errs.is_empty() {
        return Err(invalid(kind, errs));
    }
    let info = match (res, non) {
        (Some(r), _) => {
            let mut namespace = text(r, "namespace");
            if let Some(ns) = ns {
                if namespace.is_empty() {
                    namespace = ns.to_string();
                } else if namespace != ns {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {ns}"
                    )));
                }
            }
            RequestInfo {
                resource_request: true,
                verb: text(r, "verb"),
                api_group: text(r, "group"),
                api_version: text(r, "version"),
                namespace,
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                name: text(r, "name"),
                path: String::new(),
            }
        }
        (None, Some(n)) => RequestInfo {
            path: text(n, "path"),
            verb: text(n, "verb"),
            ..Default::default()
        },
        (None, None) => return Err(ApiError::internal("no attributes after validation")),
    };
    let d = st.rbac.authorize(&subject, &info);
    let mut status = Map::new();
    status.insert("allowed".into(), json!(d.allowed));
    if !d.reason.is_empty() {
        status.insert("reason".into(), json!(d.reason));
    }
    Ok(Value::Object(status))
}

/// SelfSubjectRulesReview: the rules that apply to the user in `spec.namespace`.
fn rules_review(st: &AppState, user: &User, spec: &Value) -> Result<Value, ApiError> {
    let ns = text(spec, "namespace");
    if ns.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let (rules, errors) = st.rbac.policy().rules_for(user, &ns);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for Rule {
        verbs,
        api_groups,
        resources,
        resource_names,
        non_resource_urls,
    } in rules
    {
        if non_resource_urls.is_empty() {
            let mut r = Map::new();
            r.insert("verbs".into(), json!(verbs));
            for (k, v) in [
                ("apiGroups", api_groups),
                ("resources", resources),
                ("resourceNames", resource_names),
            ] {
                if !v.is_empty() {
                    r.insert(k.into(), json!(v));
                }
            }
            resource_rules.push(Value::Object(r));
        } else {
            non_resource_rules.push(json!({"verbs": verbs, "nonResourceURLs": non_resource_urls}));
        }
    }
    let mut status = Map::new();
    status.insert("resourceRules".into(), json!(resource_rules));
    status.insert("nonResourceRules".into(), json!(non_resource_rules));
    status.insert("incomplete".into(), json!(!errors.is_empty()));
    if !errors.is_empty() {
        let text = match errors.len() {
            1 => errors[0].clone(),
            _ => format!("[{}]", errors.join(", ")),
        };
        status.insert("evaluationError".into(), json!(text));
    }
    Ok(Value::Object(status))
}
