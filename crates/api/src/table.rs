//! Server-side printing: the columns kubectl shows for each kind (`kubectl get`, `-o wide`).

use serde_json::Value;

use crate::registry::ResourceDef;

/// One `TableColumnDefinition`. Columns with `priority` > 0 are shown only with `-o wide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// The columns of `def`'s kind.
pub fn columns(def: &ResourceDef) -> Vec<Column> {
    let _ = def;
    vec![Column { name: "Name", type_: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 }]
}

/// The cells of one row, matching [`columns`]; `obj` is in its storage version.
pub fn cells(def: &ResourceDef, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let _ = (def, now);
    vec![obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null)]
}
