use super::*;
use http::Method;

fn info(method: Method, path: &str, query: Option<&str>) -> RequestInfo {
    RequestInfo::parse(&method, path, &Query::parse(query))
}

#[test]
fn request_attributes_as_kubernetes_derives_them() {
    let r = info(Method::GET, "/api/v1/namespaces/a/pods", None);
    assert_eq!(
        (
            r.verb.as_str(),
            r.namespace.as_str(),
            r.resource.as_str(),
            r.api_group.as_str()
        ),
        ("list", "a", "pods", "")
    );
    let r = info(Method::GET, "/api/v1/namespaces/a/pods", Some("watch=true"));
    assert_eq!(r.verb, "watch");
    let r = info(Method::GET, "/api/v1/watch/namespaces/a/pods/p", None);
    assert_eq!((r.verb.as_str(), r.name.as_str()), ("watch", "p"));
    let r = info(
        Method::DELETE,
        "/apis/apps/v1/namespaces/a/deployments",
        None,
    );
    assert_eq!(
        (r.verb.as_str(), r.api_group.as_str()),
        ("deletecollection", "apps")
    );
    let r = info(
        Method::PUT,
        "/apis/apps/v1/namespaces/a/deployments/d/scale",
        None,
    );
    assert_eq!(
        (r.verb.as_str(), r.name.as_str(), r.subresource.as_str()),
        ("update", "d", "scale")
    );
    // A namespace is addressed in its own namespace.
    let r = info(Method::GET, "/api/v1/namespaces/a", None);
    assert_eq!(
        (
            r.verb.as_str(),
            r.resource.as_str(),
            r.name.as_str(),
            r.namespace.as_str()
        ),
        ("get", "namespaces", "a", "a")
    );
    let r = info(Method::PUT, "/api/v1/namespaces/a/finalize", None);
    assert_eq!(
        (r.resource.as_str(), r.name.as_str(), r.subresource.as_str()),
        ("namespaces", "a", "finalize")
    );
    let r = info(
        Method::GET,
        "/api/v1/pods",
        Some("fieldSelector=metadata.name%3Dx"),
    );
    assert_eq!(r.verb, "list");
    let r = info(
        Method::GET,
        "/api/v1/pods",
        Some("fieldSelector=metadata.name=x"),
    );
    assert_eq!(r.name, "x");
    for p in [
        "/apis",
        "/apis/apps",
        "/api",
        "/version",
        "/healthz",
        "/openapi/v2",
    ] {
        let r = info(Method::GET, p, None);
        assert!(!r.resource_request, "{p}");
        assert_eq!(r.verb, "get");
    }
    // Discovery of a group version is a non-resource URL too (`/api/*`, `/apis/*`).
    assert!(!info(Method::GET, "/api/v1", None).resource_request);
    assert!(!info(Method::GET, "/apis/apps/v1", None).resource_request);
    assert!(info(Method::GET, "/api/v1/nodes", None).resource_request);
}

fn objects(list: &[Value]) -> BTreeMap<String, Value> {
    list.iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v.clone()))
        .collect()
}

fn user(name: &str, groups: &[&str]) -> User {
    User::authenticated(name, groups.iter().map(|g| g.to_string()).collect())
}

fn policy() -> Policy {
    Policy::build(&objects(&[
        json!({"kind": "Role", "metadata": {"name": "pod-reader", "namespace": "a"},
               "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "jane-reads", "namespace": "a"},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": "jane"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "dangling", "namespace": "c"},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "gone"},
               "subjects": [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": "devs"}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "status-reader"},
               "rules": [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]},
                         {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "devs-status"},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "status-reader"},
               "subjects": [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": "devs"},
                            {"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}]}),
    ]))
}

#[test]
fn rules_allow_what_they_name_and_nothing_else() {
    let p = policy();
    let jane = user("jane", &[]);
    let ok = p.authorize(&jane, &info(Method::GET, "/api/v1/namespaces/a/pods", None));
    assert!(ok.allowed);
    assert_eq!(
        ok.reason,
        r#"RBAC: allowed by RoleBinding "jane-reads/a" of Role "pod-reader" to User "jane""#
    );
    assert!(
        p.authorize(
            &jane,
            &info(Method::GET, "/api/v1/namespaces/a/pods/x/log", None)
        )
        .allowed
    );
    assert!(
        !p.authorize(&jane, &info(Method::GET, "/api/v1/namespaces/b/pods", None))
            .allowed
    );
    assert!(
        !p.authorize(
            &jane,
            &info(Method::POST, "/api/v1/namespaces/a/pods", None)
        )
        .allowed
    );
    assert!(
        !p.authorize(&jane, &info(Method::GET, "/api/v1/pods", None))
            .allowed
    );
    assert!(
        !p.authorize(
            &jane,
            &info(Method::GET, "/api/v1/namespaces/a/pods/x/status", None)
        )
        .allowed
    );
    let dev = user("joe", &["devs"]);
    assert!(
        p.authorize(
            &dev,
            &info(
                Method::GET,
                "/apis/apps/v1/namespaces/q/deployments/d/status",
                None
            )
        )
        .allowed
    );
    assert!(
        p.authorize(&dev, &info(Method::GET, "/logs/x/y", None))
            .allowed
    );
    assert!(
        p.authorize(&dev, &info(Method::GET, "/metrics", None))
            .allowed
    );
    assert!(
        !p.authorize(&dev, &info(Method::GET, "/metricsx", None))
            .allowed
    );
    let bot = user("system:serviceaccount:ops:bot", &[]);
    assert!(
        p.authorize(&bot, &info(Method::GET, "/metrics", None))
            .allowed
    );
    // A binding to a missing role is reported when nothing else allows the request.
    let d = p.authorize(&dev, &info(Method::GET, "/api/v1/namespaces/c/pods", None));
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#.into()
        }
    );
    // system:masters may do anything.
    assert!(
        p.authorize(
            &user("root", &[MASTERS]),
            &info(Method::DELETE, "/api/v1/nodes/n", None)
        )
        .allowed
    );
}

#[test]
fn forbidden_messages_are_worded_as_kubernetes_words_them() {
    let jane = user("jane", &[]);
    let e = forbidden(
        &jane,
        &info(Method::GET, "/api/v1/namespaces/b/pods", None),
        "",
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b""#
    );
    let e = forbidden(
        &jane,
        &info(
            Method::GET,
            "/apis/apps/v1/namespaces/b/deployments/web/scale",
            None,
        ),
        "",
    );
    assert_eq!(
        e.message,
        r#"deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments/scale" in API group "apps" in the namespace "b""#
    );
    let e = forbidden(
        &jane,
        &info(Method::DELETE, "/api/v1/nodes/n1", None),
        "RBAC: x",
    );
    assert_eq!(
        e.message,
        r#"nodes "n1" is forbidden: User "jane" cannot delete resource "nodes" in API group "" at the cluster scope: RBAC: x"#
    );
    assert_eq!(e.details, Some(json!({"name": "n1", "kind": "nodes"})));
    let e = forbidden(&jane, &info(Method::GET, "/metrics", None), "");
    assert_eq!(
        e.message,
        r#"forbidden: User "jane" cannot get path "/metrics""#
    );
}

#[test]
fn escalation_names_the_rules_not_held() {
    let p = policy();
    let jane = user("jane", &[]);
    let role = |rules: Value| json!({"kind": "Role", "metadata": {"name": "r", "namespace": "a"}, "rules": rules});
    // What jane holds in a may be granted; in b, or more, may not.
    let held = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]));
    assert!(escalation::confirm(&p, &jane, "Role", "roles", &held).is_ok());
    let more = role(
        json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "delete"]}]),
    );
    let e = escalation::confirm(&p, &jane, "Role", "roles", &more).expect_err("escalates");
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"delete\"]}"
    );
    // A wildcard is taken literally: holding pods is not holding `*`.
    let star = role(json!([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]));
    assert!(escalation::confirm(&p, &jane, "Role", "roles", &star).is_err());
    // Binding a role whose rules jane holds is allowed; system:masters may bind anything.
    let bind = json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
                      "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "pod-reader"}});
    assert!(escalation::confirm(&p, &jane, "RoleBinding", "rolebindings", &bind).is_ok());
    let bind_status = json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
                      "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "status-reader"}});
    assert!(escalation::confirm(&p, &jane, "RoleBinding", "rolebindings", &bind_status).is_err());
    let root = user("root", &[MASTERS]);
    assert!(escalation::confirm(&p, &root, "RoleBinding", "rolebindings", &bind_status).is_ok());
}
