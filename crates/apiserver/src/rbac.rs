//! Authorization: Kubernetes' RBAC authorizer over Roles, ClusterRoles and their bindings,
//! asked on every request, and the ClusterRole aggregation controller.
//!
//! The rules are kept in memory: [`Authorizer::run`] lists the RBAC group's keys once, then
//! follows the store's watch of them (re-listing when the watch ends), and after each change
//! rebuilds an immutable [`Policy`] that requests read through an `Arc` (no store read per
//! request). Members of `system:masters` are allowed everything, as Kubernetes' privileged
//! group authorizer does, whatever the bindings say.
//!
//! [`RequestInfo::parse`] turns a request into authorization attributes as Kubernetes'
//! `RequestInfoFactory` does (verb from method and path, `list`/`watch`/`deletecollection`,
//! namespace, resource, subresource, name; any other path is a non-resource URL), and
//! [`forbidden`] words the 403 as the API server does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use baton_api::registry::{self, RBAC_GROUP};
use baton_api::selectors::label_selector_from_object;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::request::Query;
use crate::state::AppState;

/// The group whose members may do anything (Kubernetes' `system:masters`).
pub const MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";

/// Who a request is from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user with `system:authenticated` added to `groups` (Kubernetes'
    /// `AuthenticatedGroupAdder`).
    pub fn authenticated(name: impl Into<String>, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        User {
            name: name.into(),
            groups,
            ..Default::default()
        }
    }

    fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }
}

/// What a request asks to do: Kubernetes' authorization attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub resource_request: bool,
    /// The URL path (non-resource requests are matched on it).
    pub path: String,
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl RequestInfo {
    /// Attributes of a request, as Kubernetes' `RequestInfoFactory.NewRequestInfo`.
    pub fn parse(method: &http::Method, path: &str, q: &Query) -> Self {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Default::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.len() < 3 {
            return info;
        }
        let rest = match parts[0] {
            "api" => &parts[1..],
            "apis" if parts.len() >= 4 => {
                info.api_group = parts[1].to_string();
                &parts[2..]
            }
            _ => return info,
        };
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        let mut rest = &rest[1..];
        let mut by_method = false;
        if matches!(rest.first(), Some(&"watch") | Some(&"proxy")) {
            if rest.len() < 2 {
                // Kubernetes refuses these paths; they address no resource.
                info.resource_request = false;
                return info;
            }
            info.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            by_method = true;
            info.verb = match method.as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest.first() == Some(&"namespaces")
            && let Some(ns) = rest.get(1)
        {
            info.namespace = ns.to_string();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if let Some(n) = rest.get(1) {
            info.name = n.to_string();
        }
        if info.verb != "proxy"
            && let Some(s) = rest.get(2)
        {
            info.subresource = s.to_string();
        }
        if by_method && info.name.is_empty() {
            match info.verb.as_str() {
                "get" if q.flag("watch") => info.verb = "watch".into(),
                "get" => info.verb = "list".into(),
                "delete" => info.verb = "deletecollection".into(),
                _ => {}
            }
            // A list or watch of one object by field selector is authorized for that name.
            if matches!(info.verb.as_str(), "list" | "watch")
                && let Some(name) = q.get("fieldSelector").and_then(exact_name)
            {
                info.name = name;
            }
        }
        info
    }
}

/// `metadata.name=x` (or `==`) as the whole field selector.
fn exact_name(selector: &str) -> Option<String> {
    let (k, v) = selector
        .split_once("==")
        .or_else(|| selector.split_once('='))?;
    (k.trim() == "metadata.name" && !v.is_empty() && !v.contains([',', '/', '%']))
        .then(|| v.trim().to_string())
}

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// The strings of the array at `key` (others and non-strings skipped).
pub(crate) fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl Rule {
    fn from_json(v: &Value) -> Self {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// Kubernetes' `RuleAllows`.
    pub fn allows(&self, r: &RequestInfo) -> bool {
        let has = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        if !has(&self.verbs, &r.verb) {
            return false;
        }
        if !r.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == r.path
                    || u.strip_suffix('*').is_some_and(|p| r.path.starts_with(p))
            });
        }
        if !has(&self.api_groups, &r.api_group) {
            return false;
        }
        let combined = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let resource = self.resources.iter().any(|res| {
            res == "*"
                || *res == combined
                || (!r.subresource.is_empty()
                    && res.strip_prefix("*/") == Some(r.subresource.as_str()))
        });
        resource && (self.resource_names.is_empty() || self.resource_names.contains(&r.name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// Kubernetes' `appliesToUser`; `ns` is the binding's namespace ("" for cluster bindings).
    fn applies_to(&self, user: &User, ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let sa_ns = if self.namespace.is_empty() {
                    ns
                } else {
                    &self.namespace
                };
                user.name == format!("system:serviceaccount:{sa_ns}:{}", self.name)
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        if self.kind == "ServiceAccount" && !self.namespace.is_empty() {
            format!(
                "{} {:?}",
                self.kind,
                format!("{}/{}", self.name, self.namespace)
            )
        } else {
            format!("{} {:?}", self.kind, self.name)
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(v: &Value) -> Self {
        let subjects = v
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| Subject {
                        kind: text(s, "/kind").into(),
                        name: text(s, "/name").into(),
                        namespace: text(s, "/namespace").into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            name: text(v, "/metadata/name").into(),
            namespace: text(v, "/metadata/namespace").into(),
            role_kind: text(v, "/roleRef/kind").into(),
            role_name: text(v, "/roleRef/name").into(),
            subjects,
        }
    }

    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                self.name,
                self.role_kind,
                self.role_name,
                subject.describe()
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name,
                subject.describe()
            )
        }
    }
}

/// The RBAC objects at one revision, indexed for requests.
#[derive(Debug, Default)]
pub struct Policy {
    /// (namespace, name) → rules.
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_roles: HashMap<String, Vec<Rule>>,
    cluster_bindings: Vec<Binding>,
    /// namespace → its RoleBindings.
    bindings: HashMap<String, Vec<Binding>>,
}

/// What the authorizer decided, and why (the reason Kubernetes reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

impl Policy {
    fn build(objects: &BTreeMap<String, Value>) -> Policy {
        let mut p = Policy::default();
        for obj in objects.values() {
            let name = text(obj, "/metadata/name").to_string();
            let ns = text(obj, "/metadata/namespace").to_string();
            let rules = || -> Vec<Rule> {
                obj.get("rules")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(Rule::from_json).collect())
                    .unwrap_or_default()
            };
            match text(obj, "/kind") {
                "Role" => {
                    p.roles.insert((ns, name), rules());
                }
                "ClusterRole" => {
                    p.cluster_roles.insert(name, rules());
                }
                "RoleBinding" => p
                    .bindings
                    .entry(ns)
                    .or_default()
                    .push(Binding::from_json(obj)),
                "ClusterRoleBinding" => p.cluster_bindings.push(Binding::from_json(obj)),
                _ => {}
            }
        }
        p
    }

    fn role_rules(&self, b: &Binding) -> Result<&[Rule], String> {
        let found = match b.role_kind.as_str() {
            "Role" => self
                .roles
                .get(&(b.namespace.clone(), b.role_name.clone()))
                .map(Vec::as_slice),
            _ => self.cluster_roles.get(&b.role_name).map(Vec::as_slice),
        };
        found.ok_or_else(|| {
            format!(
                "{}.{RBAC_GROUP} {:?} not found",
                b.role_kind.to_ascii_lowercase(),
                b.role_name
            )
        })
    }

    /// Kubernetes' `VisitRulesFor`: every rule bound to `user` that applies in `ns` (cluster
    /// bindings, then the namespace's bindings), until `visit` returns false.
    fn visit(
        &self,
        user: &User,
        ns: &str,
        mut visit: impl FnMut(&Binding, &Subject, &Rule) -> bool,
        errors: &mut Vec<String>,
    ) {
        let namespaced = self.bindings.get(ns).filter(|_| !ns.is_empty());
        let all = self
            .cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten());
        for b in all {
            let Some(subject) = b.subjects.iter().find(|s| s.applies_to(user, &b.namespace)) else {
                continue;
            };
            match self.role_rules(b) {
                Ok(rules) => {
                    for rule in rules {
                        if !visit(b, subject, rule) {
                            return;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    /// Kubernetes' RBAC `Authorize`.
    pub fn authorize(&self, user: &User, r: &RequestInfo) -> Decision {
        if user.in_group(MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let mut allowed_by = None;
        let mut errors = Vec::new();
        self.visit(
            user,
            &r.namespace,
            |b, s, rule| {
                if rule.allows(r) {
                    allowed_by = Some(format!("RBAC: allowed by {}", b.describe(s)));
                    return false;
                }
                true
            },
            &mut errors,
        );
        match allowed_by {
            Some(reason) => Decision {
                allowed: true,
                reason,
            },
            None => Decision {
                allowed: false,
                reason: match errors.len() {
                    0 => String::new(),
                    1 => format!("RBAC: {}", errors[0]),
                    _ => format!("RBAC: [{}]", errors.join(", ")),
                },
            },
        }
    }

    /// The rules that apply to `user` in `ns` (SelfSubjectRulesReview), and the errors met.
    pub fn rules_for(&self, user: &User, ns: &str) -> (Vec<Rule>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.visit(
            user,
            ns,
            |_, _, rule| {
                out.push(rule.clone());
                true
            },
            &mut errors,
        );
        (out, errors)
    }
}

/// The 403 for a request `user` may not make, worded as Kubernetes' `forbiddenMessage`.
pub fn forbidden(user: &User, r: &RequestInfo, reason: &str) -> ApiError {
    let mut why = if !r.resource_request {
        format!("User {:?} cannot {} path {:?}", user.name, r.verb, r.path)
    } else {
        let resource = if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let scope = if r.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", r.namespace)
        };
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
            user.name, r.verb, resource, r.api_group
        )
    };
    if !reason.is_empty() {
        let _ = write!(why, ": {reason}");
    }
    if r.resource_request {
        ApiError::forbidden(&r.api_group, &r.resource, &r.name, &why)
    } else {
        ApiError::forbidden("", "", "", &why)
    }
}

/// Admission of a Role, ClusterRole or binding written by the requesting user (see
/// `escalation`); other kinds, and writes of the server's own (no requester), pass.
pub fn confirm_no_escalation(
    st: &AppState,
    def: &registry::ResourceDef,
    obj: &Value,
) -> Result<(), ApiError> {
    let storage = def.storage_def();
    if storage.group != RBAC_GROUP {
        return Ok(());
    }
    let Some(user) = crate::auth::requester() else {
        return Ok(());
    };
    escalation::confirm(
        &st.rbac.policy(),
        &user,
        storage.kind,
        storage.resource,
        obj,
    )
}

/// The in-memory RBAC state: the objects by store key and the policy built from them.
#[derive(Default)]
pub struct Authorizer {
    policy: RwLock<Arc<Policy>>,
    /// Every RBAC object by store key, as last listed or watched.
    objects: tokio::sync::Mutex<BTreeMap<String, Value>>,
}

/// The store prefix of every RBAC object.
fn prefix() -> String {
    format!("/registry/{RBAC_GROUP}/")
}

impl Authorizer {
    /// The policy now.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn authorize(&self, user: &User, r: &RequestInfo) -> Decision {
        self.policy().authorize(user, r)
    }

    async fn replace(&self, objects: BTreeMap<String, Value>) {
        let mut held = self.objects.lock().await;
        *held = objects;
        self.publish(&held);
    }

    fn publish(&self, objects: &BTreeMap<String, Value>) {
        let p = Arc::new(Policy::build(objects));
        match self.policy.write() {
            Ok(mut g) => *g = p,
            Err(poisoned) => *poisoned.into_inner() = p,
        }
    }

    /// Lists the RBAC objects and publishes them; returns the revision listed at.
    pub async fn load(&self, st: &AppState) -> Result<u64, String> {
        let list = st
            .store
            .list(&prefix(), None, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut objects = BTreeMap::new();
        for kv in list.items {
            if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
                objects.insert(kv.key, v);
            }
        }
        self.replace(objects).await;
        Ok(list.revision)
    }

    /// Follows the store's changes to RBAC objects for ever (from `after`), keeping the
    /// policy current and aggregated ClusterRoles filled.
    pub async fn run(st: Arc<AppState>, mut after: u64) {
        aggregate(&st).await;
        loop {
            match st.store.watch(&prefix(), after).await {
                Ok(mut events) => {
                    while let Some(ev) = events.next().await {
                        let Ok(ev) = ev else { break };
                        after = ev.kv.mod_revision;
                        {
                            let mut objects = st.rbac.objects.lock().await;
                            match ev.kind {
                                baton_store::EventType::Deleted => {
                                    objects.remove(&ev.kv.key);
                                }
                                _ => {
                                    if let Ok(v) = serde_json::from_slice::<Value>(&ev.kv.value) {
                                        objects.insert(ev.kv.key.clone(), v);
                                    }
                                }
                            }
                            st.rbac.publish(&objects);
                        }
                        if ev.kv.key.contains("/clusterroles/") {
                            aggregate(&st).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching RBAC objects"),
            }
            // The watch ended (fell behind, history compacted): list again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            match st.rbac.load(&st).await {
                Ok(rev) => {
                    after = rev;
                    aggregate(&st).await;
                }
                Err(e) => tracing::warn!(error = %e, "listing RBAC objects"),
            }
        }
    }
}

/// The ClusterRole aggregation controller: each ClusterRole with an `aggregationRule` gets
/// the rules of every ClusterRole its selectors match (in name order, without repeats).
async fn aggregate(st: &AppState) {
    let roles: Vec<Value> = {
        let objects = st.rbac.objects.lock().await;
        objects
            .values()
            .filter(|v| text(v, "/kind") == "ClusterRole")
            .cloned()
            .collect()
    };
    let Some(def) = registry::find(RBAC_GROUP, "v1", "clusterroles") else {
        return;
    };
    for role in &roles {
        let Some(selectors) = role
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let name = text(role, "/metadata/name");
        let parsed: Vec<_> = selectors
            .iter()
            .filter_map(|s| label_selector_from_object(s).ok())
            .collect();
        let mut rules: Vec<Value> = Vec::new();
        for other in &roles {
            if text(other, "/metadata/name") == name {
                continue;
            }
            let labels = other.pointer("/metadata/labels").and_then(Value::as_object);
            if !parsed.iter().any(|s| !s.is_empty() && s.matches(labels)) {
                continue;
            }
            for rule in other
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
        let current = role.get("rules").cloned().unwrap_or(json!([]));
        if current == json!(rules) || (current.is_null() && rules.is_empty()) {
            continue;
        }
        let opts = crate::registry::UpdateOptions::default();
        let result = crate::registry::guaranteed_update(st, def, None, name, opts, |cur| {
            let mut new = cur.clone();
            new["rules"] = json!(rules);
            Ok(crate::registry::Update::Write(new))
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(clusterrole = name, error = %e.message, "aggregating ClusterRole rules");
        }
    }
}

pub mod defaults;
mod escalation;
#[cfg(test)]
mod tests;
