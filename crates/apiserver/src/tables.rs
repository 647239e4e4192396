//! Server-side Table responses (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`):
//! the column definitions and cells from `baton_api::table`, rows carrying the object's
//! metadata (or the whole object with `includeObject=Object`) for kubectl's `--show-labels`.

use baton_api::registry::ResourceDef;
use baton_store::Revision;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::request::Query;

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub fn column_definitions(def: &ResourceDef) -> Value {
    let cols: Vec<Value> = baton_api::table::columns(def.storage_def())
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    Value::Array(cols)
}

/// One row; `obj` is in its storage version.
pub fn row(def: &ResourceDef, obj: &Value, include: &str) -> ApiResult<Value> {
    let cells = baton_api::table::cells(
        def.storage_def(),
        obj,
        baton_api::clock::to_chrono(baton_api::clock::now()),
    );
    let object = match include {
        "None" => Value::Null,
        "Object" => crate::registry::to_wire(def, obj.clone())?,
        _ => partial_metadata(obj),
    };
    let mut r = json!({"cells": cells});
    if !object.is_null() {
        r["object"] = object;
    }
    Ok(r)
}

fn include_object(q: &Query) -> ApiResult<&str> {
    match q.get("includeObject") {
        None | Some("") => Ok("Metadata"),
        Some(v @ ("None" | "Metadata" | "Object")) => Ok(v),
        Some(v) => Err(ApiError::bad_request(format!(
            "unknown includeObject value {v:?}"
        ))),
    }
}

pub fn table(
    def: &ResourceDef,
    objs: &[Value],
    q: &Query,
    rev: Option<Revision>,
    cont: Option<&str>,
) -> ApiResult<Value> {
    let include = include_object(q)?;
    let mut rows = Vec::with_capacity(objs.len());
    for o in objs {
        rows.push(row(def, o, include)?);
    }
    let mut meta = json!({});
    if let Some(r) = rev {
        meta["resourceVersion"] = json!(r.to_string());
    } else if let Some(rv) = objs
        .first()
        .and_then(|o| o.pointer("/metadata/resourceVersion"))
    {
        meta["resourceVersion"] = rv.clone();
    }
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_definitions(def),
        "rows": rows,
    }))
}

/// A watch event's Table: column definitions only on the first event, as Kubernetes sends.
pub fn watch_table(def: &ResourceDef, obj: &Value, q: &Query, first: bool) -> ApiResult<Value> {
    let include = include_object(q)?;
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "rows": [row(def, obj, include)?],
    });
    t["columnDefinitions"] = if first {
        column_definitions(def)
    } else {
        json!([])
    };
    Ok(t)
}
