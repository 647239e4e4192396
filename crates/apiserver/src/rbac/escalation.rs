//! Privilege escalation prevention, as Kubernetes' RBAC storage does it: a user may create or
//! update a Role or ClusterRole only with rules they already hold where it applies (or with the
//! `escalate` verb on it), and bind a role only when they hold its rules (or have `bind` on
//! it). Setting an `aggregationRule` needs every permission. `system:masters` is exempt.

use baton_api::registry::RBAC_GROUP;
use baton_api::validation::go::quote;
use serde_json::Value;

use super::{MASTERS, Policy, RequestInfo, Rule, User, text};
use crate::errors::{ApiError, ApiResult};

/// Checks a Role, ClusterRole, RoleBinding or ClusterRoleBinding `obj` that `user` writes.
pub fn confirm(
    policy: &Policy,
    user: &User,
    kind: &str,
    resource: &str,
    obj: &Value,
) -> ApiResult<()> {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    let name = text(obj, "/metadata/name");
    let ns = text(obj, "/metadata/namespace");
    let allowed = |verb: &str, resource: &str, name: &str| {
        let r = RequestInfo {
            resource_request: true,
            verb: verb.into(),
            api_group: RBAC_GROUP.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        };
        policy.authorize(user, &r).allowed
    };
    let forbidden = |why: String| ApiError::forbidden(RBAC_GROUP, resource, name, &why);
    match kind {
        "Role" | "ClusterRole" => {
            if allowed("escalate", resource, name) {
                return Ok(());
            }
            let rules: Vec<Rule> = obj
                .get("rules")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Rule::from_json).collect())
                .unwrap_or_default();
            no_escalation(policy, user, ns, &rules).map_err(forbidden)?;
            if obj.get("aggregationRule").is_some_and(|a| !a.is_null()) {
                let all = [
                    Rule {
                        verbs: vec!["*".into()],
                        api_groups: vec!["*".into()],
                        resources: vec!["*".into()],
                        ..Default::default()
                    },
                    Rule {
                        verbs: vec!["*".into()],
                        non_resource_urls: vec!["*".into()],
                        ..Default::default()
                    },
                ];
                no_escalation(policy, user, ns, &all).map_err(|_| {
                    forbidden(
                        "must have cluster-admin privileges to use the aggregationRule".into(),
                    )
                })?;
            }
            Ok(())
        }
        _ => {
            let role_kind = text(obj, "/roleRef/kind");
            let role_name = text(obj, "/roleRef/name");
            let role_resource = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed("bind", role_resource, role_name) {
                return Ok(());
            }
            let rules = match role_kind {
                "Role" => policy.roles.get(&(ns.to_string(), role_name.to_string())),
                _ => policy.cluster_roles.get(role_name),
            };
            // A role that does not exist grants nothing (yet).
            let Some(rules) = rules else { return Ok(()) };
            no_escalation(policy, user, ns, rules).map_err(forbidden)
        }
    }
}

/// Kubernetes' `ConfirmNoEscalation`: the message names the rules `user` does not hold.
fn no_escalation(policy: &Policy, user: &User, ns: &str, rules: &[Rule]) -> Result<(), String> {
    let (owner, errors) = policy.rules_for(user, ns);
    let missing: Vec<Rule> = rules
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !owner.iter().any(|o| covers(o, atom)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| quote(g)).collect();
    let mut msg = format!(
        "user {} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        quote(&user.name),
        groups.join(" "),
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(", ")));
    }
    Err(msg)
}

/// One rule per group × resource × verb (× name), or URL × verb.
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let one = |v: &str| vec![v.to_string()];
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            out.push(Rule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..Default::default()
            });
        }
    }
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let atom = Rule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(atom);
                } else {
                    for n in &rule.resource_names {
                        out.push(Rule {
                            resource_names: one(n),
                            ..atom.clone()
                        });
                    }
                }
            }
        }
    }
    out
}

/// Kubernetes' `ruleCovers`: the servant's values are taken literally (a `*` in it needs a
/// `*` in the owner's rule).
fn covers(owner: &Rule, sub: &Rule) -> bool {
    let all = |set: &[String], want: &[String]| {
        set.iter().any(|x| x == "*") || want.iter().all(|w| set.contains(w))
    };
    let resources = owner.resources.iter().any(|x| x == "*")
        || sub.resources.iter().all(|r| {
            owner.resources.contains(r)
                || r.split_once('/')
                    .is_some_and(|(_, s)| owner.resources.contains(&format!("*/{s}")))
        });
    let urls = sub.non_resource_urls.iter().all(|u| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| o == u || o.strip_suffix('*').is_some_and(|p| u.starts_with(p)))
    });
    let names = owner.resource_names.is_empty()
        || (!sub.resource_names.is_empty() && all(&owner.resource_names, &sub.resource_names));
    all(&owner.verbs, &sub.verbs)
        && all(&owner.api_groups, &sub.api_groups)
        && resources
        && urls
        && names
}

/// Kubernetes' `CompactRules`: single group/resource rules without names that differ only by
/// verb become one rule.
fn compact(atoms: Vec<Rule>) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for a in atoms {
        let simple = a.resource_names.is_empty() && a.non_resource_urls.is_empty();
        if simple
            && let Some(r) = out.iter_mut().find(|r| {
                r.resource_names.is_empty()
                    && r.non_resource_urls.is_empty()
                    && r.api_groups == a.api_groups
                    && r.resources == a.resources
            })
        {
            if !r.verbs.contains(&a.verbs[0]) {
                r.verbs.push(a.verbs[0].clone());
            }
            continue;
        }
        out.push(a);
    }
    out
}

/// Kubernetes' `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
fn compact_string(r: &Rule) -> String {
    let q = |v: &[String]| {
        format!(
            "[{}]",
            v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
        )
    };
    let mut parts = Vec::new();
    for (label, v) in [
        ("APIGroups", &r.api_groups),
        ("Resources", &r.resources),
        ("NonResourceURLs", &r.non_resource_urls),
        ("ResourceNames", &r.resource_names),
        ("Verbs", &r.verbs),
    ] {
        if !v.is_empty() {
            parts.push(format!("{label}:{}", q(v)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}
