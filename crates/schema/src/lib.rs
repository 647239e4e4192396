//! The OpenAPI schema of every served kind in every served version, and what Baton derives
//! from it: the `/openapi/v2` (JSON and protobuf) and `/openapi/v3` documents kubectl
//! downloads, unknown-field detection for `fieldValidation=Strict`, and strategic merge patch
//! (whose list merge keys are part of the schema).
//!
//! # Layout
//! - `catalog`: the definitions of every served kind, built once from `k8s-openapi` plus
//!   the legacy kinds and the patch-merge metadata.
//! - [`openapi`]: the served documents (`proto` encodes the v2 one as gnostic protobuf).
//! - [`fields`]: unknown-field detection against a kind's schema.
//! - [`quantities`]: every `resource.Quantity` field of a request parsed and put in the form
//!   Kubernetes stores.
//! - [`strategic`]: strategic merge patch.
//! - [`wire`]: objects completed and ordered as Kubernetes serializes them.

mod catalog;
pub mod fields;
pub mod openapi;
mod proto;
pub mod quantities;
pub mod strategic;
pub mod wire;
