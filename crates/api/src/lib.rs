//! Baton's API types: which kinds exist in which versions, and the pure functions that turn a
//! request body into a stored object and back (defaulting, validation, conversion), print
//! tables, and describe it all as OpenAPI.
//!
//! # Layout
//! - [`registry`]: every served (group, version, resource), its kind, scope and storage version.

pub mod registry;
