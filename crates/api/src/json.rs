//! Small helpers for editing objects kept as `serde_json::Value` (JSON as on the wire), so that
//! defaulting and conversion never drop fields they do not know about.

use serde_json::{Map, Value};

/// The map at `key` in `m`, created empty when absent or not an object.
pub fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(c) => c,
        _ => unreachable!("slot was just made an object"),
    }
}

/// The map at `key`, when present and an object; never creates it.
pub fn child_opt<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Sets `m[key] = value` unless a non-null value is already there (Go's `if x == nil`).
pub fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    match m.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            m.insert(key.to_string(), value);
        }
    }
}

/// Sets `m[key] = value` when absent, null, or the zero value of its type (`""`, `0`, `[]`, `{}`):
/// Go's defaulting of non-pointer fields, where zero means unset.
pub fn set_default_if_empty(m: &mut Map<String, Value>, key: &str, value: Value) {
    if is_empty(m.get(key)) {
        m.insert(key.to_string(), value);
    }
}

/// True when a value is absent or Go's zero value.
pub fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
    }
}

/// Calls `f` on every object in the array at `key`, if any.
pub fn each_object(
    m: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// The string at `key`, or `""`.
pub fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Moves `m[from]` to `m[to]` (appended last; Kubernetes does not rely on field order).
/// Does nothing when `from` is absent.
pub fn rename(m: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = m.shift_remove(from) {
        m.insert(to.to_string(), v);
    }
}

/// Drops nulls, empty objects and empty lists, recursively: Kubernetes' semantic equality
/// (`apiequality.Semantic`) treats absent, nil and empty alike.
pub fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Object(m) => !m.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        v => v,
    }
}
