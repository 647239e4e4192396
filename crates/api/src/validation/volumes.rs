//! `ValidateVolumes` and `ValidateVolumeMounts` for the volume types Baton's node agent runs
//! (`emptyDir`, `configMap`, `secret`, `downwardAPI`, `projected` with configMap, secret and
//! downwardAPI sources, `hostPath`, `persistentVolumeClaim`), with Kubernetes' messages; every
//! other volume type, and the mount options the agent does not run, is refused with a 422
//! naming the field.

use serde_json::{Value, json};

use super::FieldError;
use super::names;
use crate::quantity::Quantity;

const DETAIL: &str = "not supported by Baton";
const SUPPORTED: &[&str] = &[
    "emptyDir",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "hostPath",
    "persistentVolumeClaim",
];
pub(super) const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
/// The pod fields a downwardAPI volume item may show (besides one label or annotation).
const VOLUME_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// The pod's volumes at `path` (`spec.volumes`); returns the errors and the volumes' names.
pub(super) fn volumes(list: Option<&Value>, path: &str) -> (Vec<FieldError>, Vec<String>) {
    let mut errs = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let Some(list) = list.and_then(Value::as_array) else {
        return (errs, seen);
    };
    for (i, v) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{at}.name"), json!(name), msg));
            }
            if seen.iter().any(|s| s == name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
            } else {
                seen.push(name.to_string());
            }
        }
        errs.extend(source(v, &at));
    }
    (errs, seen)
}

/// Exactly one volume type, one Baton runs, valid.
fn source(v: &Value, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(obj) = v.as_object() else {
        return errs;
    };
    let types: Vec<&String> = obj
        .iter()
        .filter(|(k, val)| *k != "name" && !val.is_null())
        .map(|(k, _)| k)
        .collect();
    let Some(first) = types.first() else {
        errs.push(FieldError::required(at, "must specify a volume type"));
        return errs;
    };
    for t in &types[1..] {
        errs.push(FieldError::forbidden(
            format!("{at}.{t}"),
            "may not specify more than 1 volume type",
        ));
    }
    let kind = first.as_str();
    if !SUPPORTED.contains(&kind) {
        errs.push(FieldError::forbidden(format!("{at}.{kind}"), DETAIL));
        return errs;
    }
    let src = &obj[kind];
    let at = format!("{at}.{kind}");
    match kind {
        "emptyDir" => {
            let medium = src
                .get("medium")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !medium.is_empty() && medium != "Memory" {
                errs.push(FieldError::forbidden(format!("{at}.medium"), DETAIL));
            }
            if let Some(q) = src.get("sizeLimit").filter(|q| !q.is_null()) {
                errs.extend(quantity(q, &format!("{at}.sizeLimit")));
            }
            errs.extend(unsupported_keys(src, &at, &["mode"]));
        }
        "configMap" | "secret" => {
            let name_field = if kind == "secret" {
                "secretName"
            } else {
                "name"
            };
            let name = src
                .get(name_field)
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(format!("{at}.{name_field}"), ""));
            }
            errs.extend(file_mode(
                src.get("defaultMode"),
                &format!("{at}.defaultMode"),
            ));
            errs.extend(key_items(src.get("items"), &format!("{at}.items")));
            errs.extend(unsupported_keys(src, &at, &["defaultUser"]));
        }
        "downwardAPI" => {
            errs.extend(file_mode(
                src.get("defaultMode"),
                &format!("{at}.defaultMode"),
            ));
            errs.extend(downward_items(src.get("items"), &format!("{at}.items")));
            errs.extend(unsupported_keys(src, &at, &["defaultUser"]));
        }
        "projected" => {
            errs.extend(file_mode(
                src.get("defaultMode"),
                &format!("{at}.defaultMode"),
            ));
            errs.extend(unsupported_keys(src, &at, &["defaultUser"]));
            errs.extend(projections(src.get("sources"), &format!("{at}.sources")));
        }
        "persistentVolumeClaim"
            if src
                .get("claimName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            errs.push(FieldError::required(format!("{at}.claimName"), ""));
        }
        "hostPath" => {
            let p = src.get("path").and_then(Value::as_str).unwrap_or_default();
            if p.is_empty() {
                errs.push(FieldError::required(format!("{at}.path"), ""));
            } else if p.split('/').any(|e| e == "..") {
                errs.push(FieldError::invalid(
                    format!("{at}.path"),
                    json!(p),
                    "must not contain '..'",
                ));
            }
            let t = src.get("type").and_then(Value::as_str).unwrap_or_default();
            if !HOST_PATH_TYPES.contains(&t) {
                errs.push(FieldError::not_supported(
                    format!("{at}.type"),
                    json!(t),
                    &HOST_PATH_TYPES[1..],
                ));
            }
        }
        _ => {}
    }
    errs
}

/// The sources of a projected volume: configMap, secret and downwardAPI run.
fn projections(sources: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    for (i, s) in sources
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        let Some(obj) = s.as_object() else { continue };
        let kinds: Vec<&String> = obj
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect();
        if kinds.is_empty() {
            errs.push(FieldError::required(
                at.clone(),
                "must specify a projection type",
            ));
        }
        for k in kinds.iter().skip(1) {
            errs.push(FieldError::forbidden(
                format!("{at}.{k}"),
                "may not specify more than 1 volume type per source",
            ));
        }
        let Some(kind) = kinds.first() else { continue };
        let src = &obj[kind.as_str()];
        let at = format!("{at}.{kind}");
        let items = match kind.as_str() {
            "configMap" | "secret" => {
                if src
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    errs.push(FieldError::required(format!("{at}.name"), ""));
                }
                errs.extend(key_items(src.get("items"), &format!("{at}.items")));
                src.get("items")
            }
            "downwardAPI" => {
                errs.extend(downward_items(src.get("items"), &format!("{at}.items")));
                src.get("items")
            }
            _ => {
                errs.push(FieldError::forbidden(at.clone(), DETAIL));
                None
            }
        };
        // Two sources may not write the same path.
        for (j, it) in items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p = it.get("path").and_then(Value::as_str).unwrap_or_default();
            if p.is_empty() {
                continue;
            }
            if paths.iter().any(|q| q == p) {
                errs.push(FieldError::invalid(
                    format!("{at}.items[{j}].path"),
                    json!(p),
                    "conflicting duplicate paths",
                ));
            } else {
                paths.push(p.to_string());
            }
        }
    }
    errs
}

/// `items` of a configMap or secret: key and path required, a local path, a valid mode.
fn key_items(items: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, it) in items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        if it
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            errs.push(FieldError::required(format!("{at}.key"), ""));
        }
        errs.extend(item_path(it.get("path"), &format!("{at}.path")));
        errs.extend(file_mode(it.get("mode"), &format!("{at}.mode")));
        errs.extend(unsupported_keys(it, &at, &["user"]));
    }
    errs
}

/// `items` of a downwardAPI volume or projection: a path and a fieldRef the kubelet writes.
fn downward_items(items: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, it) in items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        errs.extend(item_path(it.get("path"), &format!("{at}.path")));
        errs.extend(file_mode(it.get("mode"), &format!("{at}.mode")));
        errs.extend(unsupported_keys(it, &at, &["user"]));
        if it.get("resourceFieldRef").is_some_and(|r| !r.is_null()) {
            errs.push(FieldError::forbidden(
                format!("{at}.resourceFieldRef"),
                DETAIL,
            ));
            continue;
        }
        let Some(f) = it.get("fieldRef").filter(|f| !f.is_null()) else {
            errs.push(FieldError::required(
                format!("{at}.fieldRef"),
                "one of fieldRef and resourceFieldRef is required",
            ));
            continue;
        };
        let fp = f
            .get("fieldPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let subscript = ["metadata.labels['", "metadata.annotations['"]
            .iter()
            .any(|p| fp.starts_with(p) && fp.ends_with("']") && fp.len() > p.len() + 2);
        if fp.is_empty() {
            errs.push(FieldError::required(format!("{at}.fieldRef.fieldPath"), ""));
        } else if !VOLUME_FIELDS.contains(&fp) && !subscript {
            errs.push(FieldError::not_supported(
                format!("{at}.fieldRef.fieldPath"),
                json!(fp),
                VOLUME_FIELDS,
            ));
        }
    }
    errs
}

/// A projected file's path: required, relative, no `..` element, not starting with `..`.
fn item_path(p: Option<&Value>, at: &str) -> Vec<FieldError> {
    let p = p.and_then(Value::as_str).unwrap_or_default();
    if p.is_empty() {
        return vec![FieldError::required(at, "")];
    }
    let mut errs = local_path(p, at);
    if errs.is_empty() && p.starts_with("..") {
        errs.push(FieldError::invalid(
            at,
            json!(p),
            "must not start with '..'",
        ));
    }
    errs
}

/// Kubernetes' `validateLocalDescendingPath`: relative, no `..` element.
fn local_path(p: &str, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(at, json!(p), "must be a relative path"));
    }
    if p.split('/').any(|e| e == "..") {
        errs.push(FieldError::invalid(at, json!(p), "must not contain '..'"));
    }
    errs
}

/// A file mode: 0 to 0777.
fn file_mode(m: Option<&Value>, at: &str) -> Vec<FieldError> {
    match m.and_then(Value::as_i64) {
        Some(n) if !(0..=0o777).contains(&n) => vec![FieldError::invalid(
            at,
            json!(n),
            "must be a number between 0 and 0777 (octal), both inclusive",
        )],
        _ => Vec::new(),
    }
}

/// Fields of a newer API the agent does not run: Forbidden when set.
fn unsupported_keys(obj: &Value, at: &str, keys: &[&str]) -> Vec<FieldError> {
    keys.iter()
        .filter(|k| obj.get(**k).is_some_and(|v| !v.is_null()))
        .map(|k| FieldError::forbidden(format!("{at}.{k}"), DETAIL))
        .collect()
}

/// `sizeLimit`: a quantity, not negative (as the container resources are checked).
fn quantity(q: &Value, at: &str) -> Vec<FieldError> {
    match Quantity::from_json(q) {
        Err(e) => vec![FieldError::invalid(at, q.clone(), e.to_string())],
        Ok(v) if v.is_negative() => vec![FieldError::invalid(
            at,
            json!(v.to_string()),
            "must be greater than or equal to 0",
        )],
        Ok(_) => Vec::new(),
    }
}

/// A container's `volumeMounts` at `path` (`spec.containers[0].volumeMounts`), against the
/// pod's volume names.
pub(super) fn volume_mounts(c: &Value, path: &str, volumes: &[String]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_paths: Vec<&str> = Vec::new();
    for (i, m) in c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else if !volumes.iter().any(|v| v == name) {
            errs.push(FieldError::not_found(format!("{at}.name"), json!(name)));
        }
        let mp = m
            .get("mountPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if mp.is_empty() {
            errs.push(FieldError::required(format!("{at}.mountPath"), ""));
        } else if mount_paths.contains(&mp) {
            errs.push(FieldError::invalid(
                format!("{at}.mountPath"),
                json!(mp),
                "must be unique",
            ));
        } else {
            mount_paths.push(mp);
        }
        if let Some(sub) = m
            .get("subPath")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            errs.extend(local_path(sub, &format!("{at}.subPath")));
        }
        for field in ["subPathExpr", "bindMountOptions"] {
            if m.get(field)
                .is_some_and(|v| !v.is_null() && v != "" && v != &json!([]))
            {
                errs.push(FieldError::forbidden(format!("{at}.{field}"), DETAIL));
            }
        }
        let propagation = m
            .get("mountPropagation")
            .and_then(Value::as_str)
            .unwrap_or("None");
        if propagation != "None" {
            errs.push(FieldError::forbidden(
                format!("{at}.mountPropagation"),
                DETAIL,
            ));
        }
        let rro = m
            .get("recursiveReadOnly")
            .and_then(Value::as_str)
            .unwrap_or("Disabled");
        if rro != "Disabled" {
            errs.push(FieldError::forbidden(
                format!("{at}.recursiveReadOnly"),
                DETAIL,
            ));
        }
    }
    errs
}
