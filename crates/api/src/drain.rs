//! The drain handshake between the traffic layer and the node agent, spoken through the API
//! so that it holds when proxies and nodes run on different machines.
//!
//! Every traffic agent (the Service proxy and the Ingress proxy of one machine) holds a Lease
//! named [`lease_name`] in [`LEASE_NAMESPACE`], labelled [`PROXY_LABEL`]. When a pod is being
//! deleted, each traffic agent writes the annotation [`ack_annotation`] on it once none of the
//! backend sets it has put live still routes to that pod (and the requests in flight to it
//! have finished). The node agent sends SIGTERM only once every traffic agent whose Lease is
//! fresh has written its annotation, or the drain timeout passed (then it records an Event).
//! Kubernetes orders nothing here; that is why it drops requests during rollouts.

use std::collections::BTreeMap;

/// Where traffic agents keep their Leases (with the nodes' own).
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The label that marks a Lease as a traffic agent's.
pub const PROXY_LABEL: &str = "traffic.baton.dev/proxy";
/// How long a traffic agent's Lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 40;
/// Prefix of the acknowledgement annotations.
pub const ACK_PREFIX: &str = "drained.traffic.baton.dev/";

/// The Lease name of the traffic agent of `node`.
pub fn lease_name(node: &str) -> String {
    format!("baton-traffic-{node}")
}

/// The annotation the traffic agent `holder` writes on a pod it no longer routes to. The name
/// part is the holder with characters an annotation name cannot hold replaced, cut to 63.
pub fn ack_annotation(holder: &str) -> String {
    let name: String = holder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{ACK_PREFIX}{name}")
}

/// The holders (of fresh traffic Leases) that have not acknowledged a pod yet.
pub fn missing_acks<'a>(
    annotations: Option<&BTreeMap<String, String>>,
    holders: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    holders
        .into_iter()
        .filter(|h| annotations.is_none_or(|a| !a.contains_key(&ack_annotation(h))))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_names_are_valid_for_any_holder() {
        assert_eq!(ack_annotation("node-1"), "drained.traffic.baton.dev/node-1");
        assert_eq!(ack_annotation("a:b"), "drained.traffic.baton.dev/a_b");
        let long = "x".repeat(100);
        assert_eq!(ack_annotation(&long).len(), ACK_PREFIX.len() + 63);
    }

    #[test]
    fn missing_acks_lists_holders_without_their_annotation() {
        let a = BTreeMap::from([(ack_annotation("n1"), "t".to_string())]);
        assert_eq!(missing_acks(Some(&a), ["n1", "n2"]), vec!["n2"]);
        assert_eq!(missing_acks(None, ["n1"]), vec!["n1"]);
        assert!(missing_acks(Some(&a), ["n1"]).is_empty());
    }
}
