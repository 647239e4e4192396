//! The OpenAPI schema of every served kind in every served version, and what Baton derives
//! from it: the `/openapi/v2` (JSON and protobuf) and `/openapi/v3` documents kubectl
//! downloads, unknown-field detection for `fieldValidation=Strict`, and strategic merge patch
//! (whose list merge keys are part of the schema).
//!
//! # Layout
//! - [`openapi`]: the served documents.
//! - [`fields`]: unknown-field detection against a kind's schema.
//! - [`strategic`]: strategic merge patch.

pub mod fields;
pub mod openapi;
pub mod strategic;
