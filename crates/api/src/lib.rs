//! Baton's API types: which kinds exist in which versions, and the pure functions that turn a
//! request body into a stored object and back (defaulting, validation, conversion), print
//! tables, and match selectors.
//!
//! # Layout
//! - [`registry`]: every served (group, version, resource), its kind, scope and storage version.
//! - [`clock`]: the one "now", and times written as Kubernetes writes them.
//! - [`events`]: Events as Kubernetes' components word them, Kubernetes' event correlation
//!   (repeats counted, similar events combined, a rate per object), and with the `client`
//!   feature the one recorder every component writes them through.
//! - [`drain`]: the drain handshake (Leases, acknowledgement annotations) between the traffic
//!   layer and the node agent.
//! - [`defaults`]: per-version defaulting (`pod`, `workloads`, `core`, `ingress`, `hpa`).
//! - `json`: helpers for editing `serde_json::Value` objects without losing unknown fields.
//! - [`convert`]: served version ⇄ storage version (`ingress`, `hpa`, `event`; deployments inline).
//! - [`validation`]: field errors worded as Kubernetes words them (`names`, `meta`, `pod`,
//!   `workloads`, `core`, `go`).
//! - [`table`]: server-side printing columns and cells (`duration`: the AGE format).
//! - [`selectors`]: label and field selectors (`label`, `field`).
//! - [`quantity`]: Kubernetes' resource quantities (parse, compare, canonical form), the one
//!   reading of every CPU, memory and count amount.
//! - [`resolv`]: `resolv.conf` read and written (pods' DNS files, the cluster DNS's upstreams).
//! - [`cron`]: CronJob schedules (robfig/cron's grammar, messages and `Next`) and time zones.

pub mod clock;
pub mod convert;
pub mod cron;
pub mod defaults;
pub mod drain;
pub mod events;
mod json;
pub mod quantity;
pub mod registry;
pub mod resolv;
pub mod selectors;
pub mod table;
pub mod validation;
