//! Field selectors (`metadata.name=x,status.phase!=Running`) and the fields each kind
//! supports, as registered by Kubernetes' field label conversion functions.

use serde_json::Value;

use super::SelectorError;
use crate::registry::ResourceDef;

/// A parsed field selector. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: String,
    value: String,
    equal: bool,
}

impl FieldSelector {
    /// Parses `s` and checks each field is supported for `def`'s kind; an unsupported field
    /// gives Kubernetes' `field label not supported: x` error.
    pub fn parse(def: &ResourceDef, s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let term = parse_term(&part).ok_or_else(|| {
                SelectorError::Parse(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ))
            })?;
            if field_value(def.storage_def().kind, &term.field, &Value::Null).is_none() {
                return Err(SelectorError::Parse(format!(
                    "field label not supported: {}",
                    term.field
                )));
            }
            terms.push(term);
        }
        Ok(Self { terms })
    }

    /// True when `obj` (storage version) satisfies every requirement.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        let kind = def.storage_def().kind;
        self.terms.iter().all(|t| {
            let have = field_value(kind, &t.field, obj).unwrap_or_default();
            (have == t.value) == t.equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// `!=` before `==` before `=`, as Kubernetes tries them.
fn parse_term(part: &str) -> Option<Term> {
    for (op, equal) in [("!=", false), ("==", true), ("=", true)] {
        if let Some(idx) = find_unescaped(part, op) {
            let field = part[..idx].trim().to_string();
            let value = unescape(&part[idx + op.len()..]);
            return Some(Term {
                field,
                value,
                equal,
            });
        }
    }
    None
}

/// The byte offset of the first `pat` in `s` not preceded by a backslash escape. Walks by
/// characters: a selector may hold any UTF-8, and a byte offset inside a character would panic.
fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
    }
    None
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// The value of a supported field of `kind` in `obj` as a string (`""` when unset), or `None`
/// when the kind does not support the field.
fn field_value(kind: &str, field: &str, obj: &Value) -> Option<String> {
    let pointer = match (kind, field) {
        (_, "metadata.name") => "/metadata/name",
        (_, "metadata.namespace") => "/metadata/namespace",
        ("Pod", "spec.nodeName") => "/spec/nodeName",
        ("Pod", "spec.restartPolicy") => "/spec/restartPolicy",
        ("Pod", "spec.schedulerName") => "/spec/schedulerName",
        ("Pod", "spec.serviceAccountName") => "/spec/serviceAccountName",
        ("Pod", "spec.hostNetwork") => {
            let host = obj
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Some(host.to_string());
        }
        ("Pod", "status.phase") => "/status/phase",
        ("Pod", "status.podIP") => "/status/podIP",
        ("Pod", "status.nominatedNodeName") => "/status/nominatedNodeName",
        ("Event", "involvedObject.kind") => "/involvedObject/kind",
        ("Event", "involvedObject.namespace") => "/involvedObject/namespace",
        ("Event", "involvedObject.name") => "/involvedObject/name",
        ("Event", "involvedObject.uid") => "/involvedObject/uid",
        ("Event", "involvedObject.apiVersion") => "/involvedObject/apiVersion",
        ("Event", "involvedObject.resourceVersion") => "/involvedObject/resourceVersion",
        ("Event", "involvedObject.fieldPath") => "/involvedObject/fieldPath",
        ("Event", "reason") => "/reason",
        ("Event", "reportingComponent") => "/reportingComponent",
        ("Event", "source") => "/source/component",
        ("Event", "type") => "/type",
        ("Namespace", "status.phase") => "/status/phase",
        ("Node", "spec.unschedulable") => {
            let u = obj
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Some(u.to_string());
        }
        ("Secret", "type") => "/type",
        ("Service", "spec.clusterIP") => "/spec/clusterIP",
        ("Service", "spec.type") => "/spec/type",
        ("ReplicaSet" | "ReplicationController", "status.replicas") => {
            let n = obj
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            return Some(n.to_string());
        }
        _ => return None,
    };
    Some(
        obj.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}
