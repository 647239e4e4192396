//! Printing values the way Go's `field.Error` prints them: `-1`, `"x"` (quoted),
//! `map[string]string{"app":"x"}`, and struct dumps (`%#v`) where Kubernetes prints a struct.
//!
//! A struct dump cannot be derived from JSON alone (it needs Go type names), so validators
//! build it with the helpers here and wrap it with [`raw`]: a one-key object that [`format`]
//! prints verbatim.

use serde_json::{Map, Value, json};

/// The key of a [`raw`] value.
const RAW_KEY: &str = "$goValue";

/// A value that prints as `text` exactly.
pub fn raw(text: impl Into<String>) -> Value {
    json!({ RAW_KEY: text.into() })
}

/// Go's `strconv.Quote` for the strings Kubernetes reports.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field error's value as Go prints it.
pub fn format(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Object(m) => {
            if let (1, Some(Value::String(text))) = (m.len(), m.get(RAW_KEY)) {
                return text.clone();
            }
            if m.values().all(Value::is_string) {
                return string_map(Some(m));
            }
            v.to_string()
        }
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a.iter().filter_map(Value::as_str).map(quote).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        Value::Array(_) => v.to_string(),
    }
}

/// `map[string]string{"a":"1", "b":"2"}` with sorted keys; `map[string]string(nil)` for `None`.
pub fn string_map(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return "map[string]string(nil)".into();
    };
    let mut entries: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    entries.sort();
    let parts: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

/// `%#v` of a `metav1.LabelSelector` given as JSON.
pub fn label_selector(sel: &Value) -> String {
    let labels = string_map(sel.get("matchLabels").and_then(Value::as_object));
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match r.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => {
                            let q: Vec<String> =
                                vs.iter().filter_map(Value::as_str).map(quote).collect();
                            format!("[]string{{{}}}", q.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(r.get("key").and_then(Value::as_str).unwrap_or_default()),
                        quote(
                            r.get("operator")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// `%#v` of an `intstr.IntOrString` given as JSON (a number or a string).
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            quote(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}
