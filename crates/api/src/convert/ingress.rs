//! extensions/v1beta1 Ingress ⇄ networking.k8s.io/v1 Ingress: `spec.backend` is
//! `spec.defaultBackend`, and a service backend's `serviceName`/`servicePort` (int or name)
//! is `service.name` with `port.number` or `port.name`.

use serde_json::{Map, Value, json};

use crate::json::{child_opt, each_object, rename};

use super::ConvertError;

pub(super) fn to_v1(m: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let Some(spec) = child_opt(m, "spec") else {
        return Ok(());
    };
    rename(spec, "backend", "defaultBackend");
    if let Some(b) = child_opt(spec, "defaultBackend") {
        backend_to_v1(b, "spec.backend")?;
    }
    each_paths(spec, backend_to_v1)
}

pub(super) fn from_v1(m: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let Some(spec) = child_opt(m, "spec") else {
        return Ok(());
    };
    rename(spec, "defaultBackend", "backend");
    if let Some(b) = child_opt(spec, "backend") {
        backend_from_v1(b, "spec.defaultBackend")?;
    }
    each_paths(spec, backend_from_v1)
}

/// Calls `f` on every `rules[i].http.paths[j].backend` with its field path.
fn each_paths(
    spec: &mut Map<String, Value>,
    mut f: impl FnMut(&mut Map<String, Value>, &str) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let mut result = Ok(());
    let mut i = 0;
    each_object(spec, "rules", |rule| {
        if let Some(http) = child_opt(rule, "http") {
            let mut j = 0;
            each_object(http, "paths", |p| {
                if let Some(b) = child_opt(p, "backend") {
                    let path = format!("spec.rules[{i}].http.paths[{j}].backend");
                    if let Err(e) = f(b, &path)
                        && result.is_ok()
                    {
                        result = Err(e);
                    }
                }
                j += 1;
            });
        }
        i += 1;
    });
    result
}

fn backend_to_v1(b: &mut Map<String, Value>, path: &str) -> Result<(), ConvertError> {
    let name = b.shift_remove("serviceName");
    let port = b.shift_remove("servicePort");
    if name.is_none() && port.is_none() {
        return Ok(());
    }
    let mut service = Map::new();
    if let Some(name) = name {
        service.insert("name".into(), name);
    }
    match port {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => {
            service.insert("port".into(), json!({ "number": n }));
        }
        Some(Value::String(s)) => {
            service.insert("port".into(), json!({ "name": s }));
        }
        Some(other) => {
            return Err(ConvertError::Unconvertible(format!(
                "{path}.servicePort: must be a port number or a port name, not {other}"
            )));
        }
    }
    b.insert("service".into(), Value::Object(service));
    Ok(())
}

fn backend_from_v1(b: &mut Map<String, Value>, path: &str) -> Result<(), ConvertError> {
    let Some(service) = b.shift_remove("service") else {
        return Ok(());
    };
    let Value::Object(mut service) = service else {
        return Err(ConvertError::Unconvertible(format!(
            "{path}.service: must be an object"
        )));
    };
    if let Some(name) = service.shift_remove("name") {
        b.insert("serviceName".into(), name);
    }
    if let Some(Value::Object(port)) = service.shift_remove("port") {
        let name = port
            .get("name")
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()));
        let number = port.get("number").filter(|n| !n.is_null());
        match (name, number) {
            (Some(_), Some(n)) if n.as_i64() != Some(0) => {
                return Err(ConvertError::Unconvertible(format!(
                    "{path}.service.port: a port name and a port number cannot both be given in extensions/v1beta1"
                )));
            }
            (Some(name), _) => {
                b.insert("servicePort".into(), name.clone());
            }
            (None, Some(number)) => {
                b.insert("servicePort".into(), number.clone());
            }
            (None, None) => {}
        }
    }
    Ok(())
}
