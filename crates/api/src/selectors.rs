//! Label and field selectors, parsed from the `labelSelector` / `fieldSelector` query
//! parameters and matched against objects.

use serde_json::Value;

use crate::registry::ResourceDef;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SelectorError {
    /// The selector string does not parse; the message is Kubernetes' wording.
    #[error("{0}")]
    Parse(String),
}

/// A parsed label selector (`app=x,tier in (a,b),!legacy`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    _private: (),
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let _ = s;
        Ok(Self::default())
    }

    /// True when the labels (`metadata.labels` map, or `None`) satisfy every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let _ = labels;
        true
    }
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    _private: (),
}

impl FieldSelector {
    /// Parses `s` and checks each field is supported for `def`'s kind; an unsupported field
    /// gives Kubernetes' `field label not supported: x` error.
    pub fn parse(def: &ResourceDef, s: &str) -> Result<Self, SelectorError> {
        let _ = (def, s);
        Ok(Self::default())
    }

    /// True when `obj` (storage version) satisfies every requirement.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        let _ = (def, obj);
        true
    }
}
