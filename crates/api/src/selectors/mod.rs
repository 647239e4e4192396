//! Label and field selectors, parsed from the `labelSelector` / `fieldSelector` query
//! parameters (and from objects' `spec.selector`) and matched against objects.
//!
//! - `label`: the label selector grammar (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`,
//!   `>`, `<`) with Kubernetes' parse errors, and `metav1.LabelSelector` objects.
//! - `field`: field selectors and the fields each kind supports.

mod field;
mod label;

pub use field::FieldSelector;
pub use label::{LabelSelector, Operator, Requirement, label_selector_from_object};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SelectorError {
    /// The selector string does not parse; the message is Kubernetes' wording.
    #[error("{0}")]
    Parse(String),
}

#[cfg(test)]
mod tests;
