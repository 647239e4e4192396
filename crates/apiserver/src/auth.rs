//! Authentication: who a request is from, and impersonation.
//!
//! - A TLS client certificate signed by the cluster CA (checked during the handshake, see
//!   `server::tls_config`) is the user named by its subject's CommonName, in the groups named
//!   by its Organization values (Kubernetes' x509 authenticator). It is tried first.
//! - The admin bearer token (`<data-dir>/admin.token`) is the user `admin` in
//!   `system:masters`.
//! - Anything else is 401 (anonymous requests are not enabled).
//!
//! Every authenticated user is also in `system:authenticated`. `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-*` headers then switch the
//! user, each value checked with the `impersonate` verb as Kubernetes' impersonation filter
//! does.

use std::collections::BTreeMap;

use http::HeaderMap;

use crate::errors::ApiError;
use crate::rbac::{AUTHENTICATED, MASTERS, RequestInfo, User};
use crate::state::AppState;

tokio::task_local! {
    /// The user a request is served for, while its handler runs (for admission checks that
    /// depend on who writes, such as RBAC escalation).
    static REQUESTER: User;
}

/// Runs `f` as serving a request of `user`.
pub async fn acting_as<F: std::future::Future>(user: User, f: F) -> F::Output {
    REQUESTER.scope(user, f).await
}

/// The user whose request is being served, if any.
pub fn requester() -> Option<User> {
    REQUESTER.try_with(Clone::clone).ok()
}

/// The user of the admin token.
pub const ADMIN_USER: &str = "admin";

/// The identity a verified client certificate carries (its subject CN and O values), stored in
/// each request of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub name: String,
    pub groups: Vec<String>,
}

impl CertIdentity {
    /// Reads CN and O from a DER certificate (already verified by the TLS layer). A
    /// certificate without a CommonName names no user.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())?
            .to_string();
        if name.is_empty() {
            return None;
        }
        let groups = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_string)
            .collect();
        Some(CertIdentity { name, groups })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

/// Constant-time comparison: the token is a credential.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user a request authenticates as, or `None` (401).
pub fn authenticate(
    st: &AppState,
    headers: &HeaderMap,
    cert: Option<&CertIdentity>,
) -> Option<User> {
    if let Some(c) = cert {
        return Some(User::authenticated(c.name.clone(), c.groups.clone()));
    }
    let token = bearer(headers)?;
    same_secret(token, &st.token)
        .then(|| User::authenticated(ADMIN_USER, vec![MASTERS.to_string()]))
}

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// Applies impersonation headers: `Ok(None)` when there are none, the impersonated user when
/// `user` may act as it, 403 naming the first value it may not use, 400 for groups, uid or
/// extras without a user.
pub fn impersonate(
    st: &AppState,
    user: &User,
    headers: &HeaderMap,
) -> Result<Option<User>, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let users = values(IMPERSONATE_USER);
    let groups = values(IMPERSONATE_GROUP);
    let uids = values(IMPERSONATE_UID);
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix(IMPERSONATE_EXTRA)
            && let Ok(v) = v.to_str()
        {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            extra.entry(key).or_default().push(v.to_string());
        }
    }
    if users.is_empty() {
        if !groups.is_empty() || !uids.is_empty() || !extra.is_empty() {
            return Err(ApiError::bad_request(format!(
                "requested {} without impersonating a user",
                describe_request(&groups, &uids, &extra)
            )));
        }
        return Ok(None);
    }
    let name = users[0].clone();
    let policy = st.rbac.policy();
    let check = |resource: &str, sub: &str, ns: &str, value: &str| -> Result<(), ApiError> {
        let r = RequestInfo {
            resource_request: true,
            verb: "impersonate".into(),
            // Users, groups and service accounts are core resources; uids and extras are
            // authentication.k8s.io's.
            api_group: if matches!(resource, "uids" | "userextras") {
                "authentication.k8s.io".into()
            } else {
                String::new()
            },
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: value.into(),
            ..Default::default()
        };
        let d = policy.authorize(user, &r);
        if d.allowed {
            Ok(())
        } else {
            Err(crate::rbac::forbidden(user, &r, &d.reason))
        }
    };
    let mut new_groups = groups.clone();
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => {
            check("serviceaccounts", "", ns, sa)?;
            if groups.is_empty() {
                new_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        None => check("users", "", "", &name)?,
    }
    for g in &groups {
        check("groups", "", "", g)?;
    }
    for u in &uids {
        check("uids", "", "", u)?;
    }
    for (k, vs) in &extra {
        for v in vs {
            check("userextras", k, "", v)?;
        }
    }
    if name != "system:anonymous" && !new_groups.iter().any(|g| g == AUTHENTICATED) {
        new_groups.push(AUTHENTICATED.into());
    }
    Ok(Some(User {
        name,
        uid: uids.into_iter().next().unwrap_or_default(),
        groups: new_groups,
        extra,
    }))
}

fn describe_request(
    groups: &[String],
    uids: &[String],
    extra: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut parts = Vec::new();
    for g in groups {
        parts.push(format!("groups={g}"));
    }
    for u in uids {
        parts.push(format!("uid={u}"));
    }
    for (k, vs) in extra {
        for v in vs {
            parts.push(format!("userExtras[{k}]={v}"));
        }
    }
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert(dn: &[(DnType, &str)]) -> Vec<u8> {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            p.distinguished_name.push(t.clone(), *v);
        }
        let key = KeyPair::generate().expect("key");
        p.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn a_certificate_names_its_user_by_cn_and_groups_by_o() {
        let der = cert(&[
            (DnType::CommonName, "jane"),
            (DnType::OrganizationName, "devs"),
        ]);
        assert_eq!(
            CertIdentity::from_der(&der),
            Some(CertIdentity {
                name: "jane".into(),
                groups: vec!["devs".into()]
            })
        );
        // No CommonName, no user.
        let der = cert(&[(DnType::OrganizationName, "devs")]);
        assert_eq!(CertIdentity::from_der(&der), None);
        assert_eq!(CertIdentity::from_der(b"not a certificate"), None);
    }

    #[test]
    fn every_user_is_authenticated_once() {
        let u = User::authenticated("jane", vec!["devs".into(), AUTHENTICATED.into()]);
        assert_eq!(
            u.groups,
            vec!["devs".to_string(), AUTHENTICATED.to_string()]
        );
        let u = User::authenticated(ADMIN_USER, vec![MASTERS.into()]);
        assert_eq!(
            u.groups,
            vec![MASTERS.to_string(), AUTHENTICATED.to_string()]
        );
    }
}
