//! `ValidatePodSpec` and `ValidatePodTemplateSpec`: containers, ports, volumes and the pod-level
//! policies, for pods (`spec`) and controllers' templates (`spec.template.spec`) — and the
//! fields Baton's node agent does not implement ([`unsupported`]), refused here with a 422
//! naming them rather than accepted and silently ignored.

use serde_json::{Value, json};

use super::FieldError;
use super::names;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

pub(super) fn pod(obj: &Value) -> Vec<FieldError> {
    spec(obj.get("spec").unwrap_or(&Value::Null), "spec")
}

/// A pod template at `path` (`spec.template`): its labels and its pod spec.
pub(super) fn template(t: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = super::meta::labels(
        t.pointer("/metadata/labels"),
        &format!("{path}.metadata.labels"),
    );
    errs.extend(spec(
        t.get("spec").unwrap_or(&Value::Null),
        &format!("{path}.spec"),
    ));
    errs
}

pub(super) fn spec(spec: &Value, path: &str) -> Vec<FieldError> {
    spec_with_claims(spec, path, &[])
}

/// [`spec`] of a StatefulSet's template, whose containers may also mount the volumes its
/// `volumeClaimTemplates` (named `claims`) give each pod.
pub(super) fn spec_with_claims(spec: &Value, path: &str, claims: &[String]) -> Vec<FieldError> {
    let mut errs = unsupported(spec, path);
    let (volume_errs, mut volume_names) =
        super::volumes::volumes(spec.get("volumes"), &format!("{path}.volumes"));
    volume_names.extend(claims.iter().cloned());
    errs.extend(volume_errs);
    let containers = spec.get("containers").and_then(Value::as_array);
    let mut names_seen: Vec<String> = Vec::new();
    if let Some(init) = spec.get("initContainers").and_then(Value::as_array) {
        for (i, c) in init.iter().enumerate() {
            let at = format!("{path}.initContainers[{i}]");
            errs.extend(container(c, &at, &mut names_seen));
            errs.extend(init_container(c, &at));
            errs.extend(super::volumes::volume_mounts(
                c,
                &format!("{at}.volumeMounts"),
                &volume_names,
            ));
        }
    }
    match containers {
        Some(list) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                let at = format!("{path}.containers[{i}]");
                errs.extend(container(c, &at, &mut names_seen));
                if c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
                    errs.push(FieldError::forbidden(
                        format!("{at}.restartPolicy"),
                        "may not be set for non-init containers",
                    ));
                }
                errs.extend(super::volumes::volume_mounts(
                    c,
                    &format!("{at}.volumeMounts"),
                    &volume_names,
                ));
            }
        }
        _ => errs.push(FieldError::required(format!("{path}.containers"), "")),
    }
    errs.extend(one_of(
        spec.get("restartPolicy"),
        &format!("{path}.restartPolicy"),
        RESTART_POLICIES,
    ));
    errs.extend(one_of(
        spec.get("dnsPolicy"),
        &format!("{path}.dnsPolicy"),
        DNS_POLICIES,
    ));
    errs.extend(dns(spec, path));
    for field in ["terminationGracePeriodSeconds", "activeDeadlineSeconds"] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64) {
            let bad = if field == "activeDeadlineSeconds" {
                n <= 0
            } else {
                n < 0
            };
            if bad {
                let detail = if field == "activeDeadlineSeconds" {
                    "must be between 1 and 2147483647, inclusive"
                } else {
                    "must be greater than or equal to 0"
                };
                errs.push(FieldError::invalid(
                    format!("{path}.{field}"),
                    json!(n),
                    detail,
                ));
            }
        }
    }
    errs
}

/// `hostname`, `subdomain`, `hostAliases` and `dnsConfig` (`validatePodDNSConfig`,
/// `ValidateHostAliases`): at most 3 nameservers, all IP addresses; at most 32 search domains
/// and 2048 characters of them, each a DNS subdomain; named options; `dnsPolicy: None` needs
/// a nameserver.
fn dns(spec: &Value, path: &str) -> Vec<FieldError> {
    const IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
    let mut errs = Vec::new();
    for field in ["hostname", "subdomain"] {
        if let Some(v) = spec
            .get(field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(
                    format!("{path}.{field}"),
                    json!(v),
                    msg,
                ));
            }
        }
    }
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    for (i, alias) in spec
        .get("hostAliases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}.hostAliases[{i}]");
        let ip = alias.get("ip").and_then(Value::as_str).unwrap_or_default();
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(format!("{at}.ip"), json!(ip), IP));
        }
        for (j, h) in list(alias.get("hostnames")).iter().enumerate() {
            for msg in names::dns1123_subdomain(h) {
                errs.push(FieldError::invalid(
                    format!("{at}.hostnames[{j}]"),
                    json!(h),
                    msg,
                ));
            }
        }
    }
    let at = format!("{path}.dnsConfig");
    let config = spec.get("dnsConfig").filter(|c| !c.is_null());
    if spec.get("dnsPolicy").and_then(Value::as_str) == Some("None") {
        match config {
            None => {
                errs.push(FieldError::required(
                    &at,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
                return errs;
            }
            Some(c) if list(c.get("nameservers")).is_empty() => {
                errs.push(FieldError::required(
                    format!("{at}.nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ));
                return errs;
            }
            Some(_) => {}
        }
    }
    let Some(config) = config else {
        return errs;
    };
    let nameservers = list(config.get("nameservers"));
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            format!("{at}.nameservers"),
            json!(nameservers),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if ns.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                format!("{at}.nameservers[{i}]"),
                json!(ns),
                IP,
            ));
        }
    }
    let searches = list(config.get("searches"));
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            format!("{at}.searches"),
            json!(searches),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            format!("{at}.searches"),
            json!(searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        // A trailing dot is fine.
        let s = s.strip_suffix('.').unwrap_or(s);
        for msg in names::dns1123_subdomain(s) {
            errs.push(FieldError::invalid(
                format!("{at}.searches[{i}]"),
                json!(s),
                msg,
            ));
        }
    }
    for (i, o) in config
        .get("options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if o.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            errs.push(FieldError::required(
                format!("{at}.options[{i}]"),
                "must not be empty",
            ));
        }
    }
    errs
}

/// What Baton does not implement, and why that matters: `Forbidden` on every such field set
/// (to anything but its default) in the pod spec at `path` or one of its containers.
fn unsupported(spec: &Value, path: &str) -> Vec<FieldError> {
    const DETAIL: &str = "not supported by Baton";
    let mut errs = Vec::new();
    let set = |v: Option<&Value>| match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    for field in [
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "ephemeralContainers",
        "activeDeadlineSeconds",
        "readinessGates",
        "runtimeClassName",
        // Only a RuntimeClass sets overhead in Kubernetes, and there are none here.
        "overhead",
        "resourceClaims",
    ] {
        if set(spec.get(field)) {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), DETAIL));
        }
    }
    // User namespaces (hostUsers: false) are not made.
    if spec.get("hostUsers") == Some(&Value::Bool(false)) {
        errs.push(FieldError::forbidden(format!("{path}.hostUsers"), DETAIL));
    }
    let psc = format!("{path}.securityContext");
    if set(spec.pointer("/securityContext/sysctls")) {
        errs.push(FieldError::forbidden(format!("{psc}.sysctls"), DETAIL));
    }
    errs.extend(profiles(spec.get("securityContext"), &psc));
    let listed = |key: &'static str| {
        spec.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(move |(i, c)| (format!("{path}.{key}[{i}]"), c))
    };
    for (at, c) in listed("initContainers").chain(listed("containers")) {
        if set(c.get("volumeDevices")) {
            errs.push(FieldError::forbidden(format!("{at}.volumeDevices"), DETAIL));
        }
        // A stop signal other than the image's SIGTERM, and restart rules, are not followed.
        for (pointer, field) in [
            ("/lifecycle/stopSignal", "lifecycle.stopSignal"),
            ("/restartPolicyRules", "restartPolicyRules"),
        ] {
            if set(c.pointer(pointer)) {
                errs.push(FieldError::forbidden(format!("{at}.{field}"), DETAIL));
            }
        }
        for (j, e) in c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if set(e.pointer("/valueFrom/resourceFieldRef")) {
                errs.push(FieldError::forbidden(
                    format!("{at}.env[{j}].valueFrom.resourceFieldRef"),
                    DETAIL,
                ));
            }
        }
        for (j, p) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("{at}.ports[{j}].hostPort"),
                    DETAIL,
                ));
            }
        }
        let sc = format!("{at}.securityContext");
        if c.pointer("/securityContext/procMount")
            .and_then(Value::as_str)
            == Some("Unmasked")
        {
            errs.push(FieldError::forbidden(format!("{sc}.procMount"), DETAIL));
        }
        errs.extend(profiles(c.get("securityContext"), &sc));
    }
    errs
}

/// Seccomp and AppArmor profiles from files on the node (`Localhost`) are not loaded.
fn profiles(sc: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["seccompProfile", "appArmorProfile"] {
        if sc
            .and_then(|s| s.pointer(&format!("/{field}/type")))
            .and_then(Value::as_str)
            == Some("Localhost")
        {
            errs.push(FieldError::not_supported(
                format!("{path}.{field}.type"),
                json!("Localhost"),
                &["RuntimeDefault", "Unconfined"],
            ));
        }
    }
    errs
}

/// Required when absent, NotSupported when not one of `allowed`.
fn one_of(v: Option<&Value>, path: &str, allowed: &[&str]) -> Vec<FieldError> {
    match v.and_then(Value::as_str).unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        s if allowed.contains(&s) => Vec::new(),
        s => vec![FieldError::not_supported(path, json!(s), allowed)],
    }
}

fn container(c: &Value, path: &str, seen: &mut Vec<String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in names::dns1123_label(name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                json!(name),
                msg,
            ));
        }
    }
    if !name.is_empty() && seen.iter().any(|s| s == name) {
        errs.push(FieldError::duplicate(format!("{path}.name"), json!(name)));
    } else {
        seen.push(name.to_string());
    }
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    if image.is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            format!("{path}.image"),
            json!(image),
            "must not have leading or trailing whitespace",
        ));
    }
    errs.extend(ports(c.get("ports"), &format!("{path}.ports")));
    errs.extend(super::resources::container(
        c.get("resources"),
        &format!("{path}.resources"),
    ));
    errs.extend(lifecycle(c, path));
    errs.extend(env_names(c.get("env"), &format!("{path}.env")));
    errs.extend(env_from(c.get("envFrom"), &format!("{path}.envFrom")));
    if let Some(policy) = c.get("imagePullPolicy") {
        errs.extend(one_of(
            Some(policy),
            &format!("{path}.imagePullPolicy"),
            PULL_POLICIES,
        ));
    }
    let tmp = c
        .get("terminationMessagePolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !tmp.is_empty() && !["File", "FallbackToLogsOnError"].contains(&tmp) {
        errs.push(FieldError::not_supported(
            format!("{path}.terminationMessagePolicy"),
            json!(tmp),
            &["File", "FallbackToLogsOnError"],
        ));
    }
    errs
}

/// What an init container may not have (`validateInitContainers`): a `restartPolicy` other
/// than `Always` (a sidecar); without it, no lifecycle hooks and no probes (it runs to its end
/// before anything else starts).
fn init_container(c: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let policy = c.get("restartPolicy").filter(|v| !v.is_null());
    match policy.map(|v| v.as_str().unwrap_or_default()) {
        Some("Always") => return errs,
        Some(other) => errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            json!(other),
            &["Always"],
        )),
        None => {}
    }
    for field in [
        "lifecycle",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
    ] {
        if c.get(field).is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                format!("{path}.{field}"),
                "may not be set for init containers without restartPolicy=Always",
            ));
        }
    }
    errs
}

/// The names of a container's `env` (`ValidateEnv`): required, environment variable names.
fn env_names(list: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}].name");
        match e.get("name").and_then(Value::as_str).unwrap_or_default() {
            "" => errs.push(FieldError::required(at, "")),
            name => {
                for msg in names::env_var_name(name) {
                    errs.push(FieldError::invalid(&at, json!(name), msg));
                }
            }
        }
    }
    errs
}

/// A container's `envFrom` (`ValidateEnvFrom`): a prefix that is an environment variable
/// name, and exactly one source named as a ConfigMap or Secret is (the two source errors
/// name the list, not the entry, as Kubernetes does).
fn env_from(list: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}[{i}]");
        let prefix = e.get("prefix").and_then(Value::as_str).unwrap_or_default();
        if !prefix.is_empty() {
            for msg in names::env_var_name(prefix) {
                errs.push(FieldError::invalid(
                    format!("{at}.prefix"),
                    json!(prefix),
                    msg,
                ));
            }
        }
        let mut sources = 0;
        for field in ["configMapRef", "secretRef"] {
            let Some(source) = e.get(field).filter(|v| !v.is_null()) else {
                continue;
            };
            sources += 1;
            let name = source
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name_at = format!("{at}.{field}.name");
            if name.is_empty() {
                errs.push(FieldError::required(name_at, ""));
                continue;
            }
            for msg in names::dns1123_subdomain(name) {
                errs.push(FieldError::invalid(&name_at, json!(name), msg));
            }
        }
        match sources {
            0 => errs.push(FieldError::invalid(
                path,
                json!(""),
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                path,
                json!(""),
                "may not have more than one field specified at a time",
            )),
        }
    }
    errs
}

/// A container's `lifecycle` (`validateLifecycle`): each hook names exactly one handler.
fn lifecycle(c: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        let Some(h) = c
            .pointer(&format!("/lifecycle/{hook}"))
            .filter(|v| !v.is_null())
        else {
            continue;
        };
        let at = format!("{path}.lifecycle.{hook}");
        let mut handlers = 0;
        for kind in ["exec", "httpGet", "tcpSocket", "sleep"] {
            if h.get(kind).is_none_or(Value::is_null) {
                continue;
            }
            handlers += 1;
            if handlers > 1 {
                errs.push(FieldError::forbidden(
                    format!("{at}.{kind}"),
                    "may not specify more than 1 handler type",
                ));
            }
        }
        if handlers == 0 {
            errs.push(FieldError::required(
                at.clone(),
                "must specify a handler type",
            ));
        }
        if let Some(seconds) = h.pointer("/sleep/seconds").and_then(Value::as_i64)
            && seconds < 0
        {
            errs.push(FieldError::invalid(
                format!("{at}.sleep.seconds"),
                json!(seconds),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

fn ports(ports: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(list) = ports.and_then(Value::as_array) else {
        return errs;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if !name.is_empty() {
            let msgs = names::port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(format!("{at}.name"), json!(name), msg));
                }
            } else if seen.contains(&name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
            } else {
                seen.push(name);
            }
        }
        match p.get("containerPort").and_then(Value::as_i64).unwrap_or(0) {
            0 => errs.push(FieldError::required(format!("{at}.containerPort"), "")),
            n => {
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(
                        format!("{at}.containerPort"),
                        json!(n),
                        msg,
                    ));
                }
            }
        }
        if let Some(n) = p
            .get("hostPort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            for msg in names::port_num(n) {
                errs.push(FieldError::invalid(format!("{at}.hostPort"), json!(n), msg));
            }
        }
        errs.extend(protocol(p.get("protocol"), &format!("{at}.protocol")));
    }
    errs
}

/// A port protocol: required, one of SCTP, TCP, UDP.
pub(super) fn protocol(v: Option<&Value>, path: &str) -> Vec<FieldError> {
    one_of(v, path, PROTOCOLS)
}

#[cfg(test)]
mod dns_tests {
    use super::*;

    fn errors(extra: Value) -> Vec<String> {
        let mut spec = json!({
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "containers": [{ "name": "c", "image": "i" }]
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        super::spec(&spec, "spec")
            .iter()
            .map(FieldError::to_string)
            .collect()
    }

    #[test]
    fn dns_fields_are_served_and_validated_as_kubernetes_does() {
        // Served now: no Forbidden.
        let ok = json!({
            "hostname": "db-0", "subdomain": "db",
            "hostAliases": [{ "ip": "192.0.2.9", "hostnames": ["foo.local", "bar"] }],
            "dnsConfig": { "nameservers": ["192.0.2.1"], "searches": ["a.example."],
                           "options": [{ "name": "ndots", "value": "2" }] }
        });
        assert_eq!(errors(ok), Vec::<String>::new());
        assert_eq!(
            errors(json!({ "dnsPolicy": "None" })),
            ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
        );
        assert_eq!(
            errors(json!({ "dnsPolicy": "None", "dnsConfig": { "searches": ["a"] } })),
            [
                "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
            ]
        );
        let got = errors(json!({
            "hostname": "Bad_Name",
            "hostAliases": [{ "ip": "nope", "hostnames": ["ok", "-x"] }],
            "dnsConfig": {
                "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "300.1.1.1"],
                "searches": ["a..b"],
                "options": [{ "value": "1" }]
            }
        }));
        let expect = [
            "spec.hostname: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label",
            "spec.hostAliases[0].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            "spec.hostAliases[0].hostnames[1]: Invalid value: \"-x\": a lowercase RFC 1123 subdomain",
            "spec.dnsConfig.nameservers: Invalid value: []string{\"1.1.1.1\", \"2.2.2.2\", \"3.3.3.3\", \"300.1.1.1\"}: must not have more than 3 nameservers",
            "spec.dnsConfig.nameservers[3]: Invalid value: \"300.1.1.1\": must be a valid IP address",
            "spec.dnsConfig.searches[0]: Invalid value: \"a..b\": a lowercase RFC 1123 subdomain",
            "spec.dnsConfig.options[0]: Required value: must not be empty",
        ];
        assert_eq!(got.len(), expect.len(), "{got:#?}");
        for (g, e) in got.iter().zip(expect) {
            assert!(g.starts_with(e), "{g}\n does not start with\n{e}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("d{i}.example")).collect();
        assert_eq!(
            errors(json!({ "dnsConfig": { "searches": many } })).len(),
            1,
            "33 search domains"
        );
    }
}
