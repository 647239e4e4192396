//! How a container is confined: the pod's and the container's `securityContext` merged as the
//! kubelet merges them (the container's `runAsUser`, `runAsGroup`, `runAsNonRoot` and
//! `seccompProfile` over the pod's), on top of containerd's defaults — its capability set, an
//! empty ambient set, the runtime-default seccomp profile ([`crate::seccomp`]), masked and
//! read-only `/proc` paths — plus `noNewPrivileges` unless `allowPrivilegeEscalation: true`
//! (the kubelet leaves it off when the field is unset; Baton turns it on) and a pids limit.
//!
//! Pure: [`resolve`] takes the specs and the image's user and files, and either returns the
//! [`Security`] the bundle is written with or the kubelet's `CreateContainerConfigError`
//! message (a `runAsNonRoot` container whose user would be root).

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// The capabilities a container gets unless its spec adds or drops some (containerd's and
/// Docker's default set).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel defines (a privileged container's set; `add: [ALL]`).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths of /proc and /sys hidden from unprivileged containers (containerd's list).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths of /proc an unprivileged container may read but not write (containerd's list).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// At most this many processes and threads in one container (`pids.max`): a fork bomb stays
/// inside its container instead of exhausting the machine's pid space.
pub const PIDS_LIMIT: i64 = 4096;

/// What the bundle of one container is written with.
#[derive(Clone, Debug, PartialEq)]
pub struct Security {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group, the user's groups in the image's /etc/group,
    /// `supplementalGroups` and `fsGroup` (as containerd sets them: `id` shows them all).
    pub additional_gids: Vec<u32>,
    /// Bounding, effective and permitted sets (inheritable and ambient stay empty).
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// All capabilities, every device of the cgroup, nothing masked, no seccomp, /sys writable.
    pub privileged: bool,
    pub read_only_root: bool,
    /// The runtime-default seccomp profile applies (false: `Unconfined`, or privileged).
    pub seccomp: bool,
}

/// The kubelet's name for a pod in messages: `name_namespace(uid)`.
pub fn pod_ref(name: &str, namespace: &str, uid: &str) -> String {
    format!("{name}_{namespace}({uid})")
}

/// A capability as the kernel names it: `NET_ADMIN` and `cap_net_admin` are `CAP_NET_ADMIN`.
fn capability_name(c: &str) -> String {
    let upper = c.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The capability set from the defaults, `drop` then `add` (`ALL` in either meaning every one).
fn capabilities(drop: &[String], add: &[String]) -> Vec<String> {
    let all = |l: &[String]| l.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let mut caps: Vec<String> = if all(drop) {
        Vec::new()
    } else {
        let dropped: Vec<String> = drop.iter().map(|c| capability_name(c)).collect();
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !dropped.contains(c))
            .collect()
    };
    let added: Vec<String> = if all(add) {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        add.iter().map(|c| capability_name(c)).collect()
    };
    for c in added {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps
}

/// The security settings of container `c` of the pod `spec` (`pod` names it in messages),
/// whose image says `image_user` and has `passwd` and `group` as its /etc files. An error is
/// the message of a `CreateContainerConfigError`, in the kubelet's words.
pub fn resolve(
    spec: &PodSpec,
    c: &Container,
    pod: &str,
    image_user: &str,
    passwd: &str,
    group: &str,
) -> Result<Security, String> {
    let psc = spec.security_context.as_ref();
    let csc = c.security_context.as_ref();
    let run_as_user = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user));
    let run_as_group = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group));
    let run_as_non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| psc.and_then(|s| s.run_as_non_root));
    if run_as_non_root == Some(true) {
        verify_non_root(run_as_user, image_user, pod, &c.name)?;
    }
    let user = match run_as_user {
        Some(u) => u.to_string(),
        None => image_user.to_string(),
    };
    let (uid, mut gid) = resolve_user(&user, passwd, group);
    if let Some(g) = run_as_group {
        gid = g as u32;
    }
    let mut additional_gids = vec![gid];
    additional_gids.extend(user_groups(&user, uid, passwd, group));
    for g in psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(psc.and_then(|s| s.fs_group))
    {
        additional_gids.push(g as u32);
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();

    let privileged = csc.and_then(|s| s.privileged) == Some(true);
    let caps = csc.and_then(|s| s.capabilities.as_ref());
    let capabilities = if privileged {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        self::capabilities(
            &caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
            &caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        )
    };
    let escalation = csc.and_then(|s| s.allow_privilege_escalation);
    let seccomp_type = csc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or_else(|| psc.and_then(|s| s.seccomp_profile.as_ref()))
        .map(|p| p.type_.as_str());
    Ok(Security {
        uid,
        gid,
        additional_gids,
        capabilities,
        no_new_privileges: !privileged && escalation != Some(true),
        privileged,
        read_only_root: csc.and_then(|s| s.read_only_root_filesystem) == Some(true),
        seccomp: !privileged && seccomp_type != Some("Unconfined"),
    })
}

/// The kubelet's `verifyRunAsNonRoot`: an explicit `runAsUser` decides; otherwise the image's
/// user must be a number other than 0 (no user at all is root).
fn verify_non_root(
    run_as_user: Option<i64>,
    image_user: &str,
    pod: &str,
    container: &str,
) -> Result<(), String> {
    if let Some(u) = run_as_user {
        if u == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {container})"
            ));
        }
        return Ok(());
    }
    let user = image_user.split(':').next().unwrap_or_default();
    match user.parse::<i64>() {
        Ok(0) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {container})"
        )),
        Ok(_) => Ok(()),
        Err(_) if user.is_empty() => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {container})"
        )),
        Err(_) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: \"{pod}\", container: {container})"
        )),
    }
}

/// Resolves a user (`uid`, `uid:gid`, `name`, `name:group`) against the rootfs's passwd and
/// group files (given as text). Unknown names fall back to root, as runc would fail on them
/// later with a clearer message from the container itself.
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> (u32, u32) {
    if user.is_empty() {
        return (0, 0);
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let lookup = |text: &str, name: &str, field: usize| -> Option<(u32, u32)> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                let id = f.get(field).and_then(|s| s.parse().ok()).unwrap_or(0);
                let gid = f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
                (id, gid)
            })
        })
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(n))
                        .then(|| f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0))
                })
                .unwrap_or(0),
        ),
        Err(_) => lookup(passwd, u, 2).unwrap_or((0, 0)),
    };
    if !g.is_empty() {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(group, g, 2).map(|(id, _)| id).unwrap_or(0),
        };
    }
    (uid, gid)
}

/// The groups of /etc/group that list the user (by name) as a member.
fn user_groups(user: &str, uid: u32, passwd: &str, group: &str) -> Vec<u32> {
    let u = user.split(':').next().unwrap_or_default();
    let name = if u.parse::<u32>().is_ok() {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(uid))
                .then(|| f.first().copied())
                .flatten()
        })
    } else {
        Some(u)
    };
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Vec::new();
    };
    group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f.get(3)?;
            members
                .split(',')
                .any(|m| m.trim() == name)
                .then(|| f.get(2)?.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
    };

    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:34:\nstaff:x:50:www,other\n";

    fn container(sc: Option<SecurityContext>) -> Container {
        Container {
            name: "c".into(),
            security_context: sc,
            ..Default::default()
        }
    }

    fn resolved(
        pod: Option<PodSecurityContext>,
        sc: Option<SecurityContext>,
        user: &str,
    ) -> Result<Security, String> {
        let spec = PodSpec {
            security_context: pod,
            ..Default::default()
        };
        resolve(&spec, &container(sc), "p_ns(u)", user, PASSWD, GROUP)
    }

    #[test]
    fn users_resolve_from_passwd() {
        assert_eq!(resolve_user("", PASSWD, GROUP), (0, 0));
        assert_eq!(resolve_user("www", PASSWD, GROUP), (33, 34));
        assert_eq!(resolve_user("33", PASSWD, GROUP), (33, 34));
        assert_eq!(resolve_user("1000:50", PASSWD, GROUP), (1000, 50));
        assert_eq!(resolve_user("www:staff", PASSWD, GROUP), (33, 50));
    }

    #[test]
    fn the_default_is_confined() {
        let s = resolved(None, None, "").expect("runs");
        assert_eq!((s.uid, s.gid), (0, 0));
        assert_eq!(
            s.capabilities,
            DEFAULT_CAPABILITIES.map(String::from).to_vec()
        );
        assert!(s.no_new_privileges && s.seccomp && !s.privileged && !s.read_only_root);
    }

    #[test]
    fn users_and_groups_follow_the_pod_then_the_container() {
        let pod = PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(2000),
            supplemental_groups: Some(vec![3000, 2000]),
            fs_group: Some(4000),
            ..Default::default()
        };
        let s = resolved(Some(pod.clone()), None, "www").expect("runs");
        assert_eq!((s.uid, s.gid), (1000, 2000));
        assert_eq!(s.additional_gids, vec![2000, 3000, 4000]);
        let c = SecurityContext {
            run_as_user: Some(33),
            ..Default::default()
        };
        let s = resolved(Some(pod), Some(c), "").expect("runs");
        // www is a member of staff (50).
        assert_eq!((s.uid, s.gid), (33, 2000));
        assert_eq!(s.additional_gids, vec![50, 2000, 3000, 4000]);
    }

    #[test]
    fn run_as_non_root_refuses_root_in_the_kubelets_words() {
        let non_root = |user: Option<i64>| SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: user,
            ..Default::default()
        };
        assert_eq!(
            resolved(None, Some(non_root(None)), ""),
            Err("container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)".into())
        );
        assert_eq!(
            resolved(None, Some(non_root(None)), "0:0").map(|_| ()),
            Err("container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)".into())
        );
        assert_eq!(
            resolved(None, Some(non_root(Some(0))), "1000").map(|_| ()),
            Err(
                "container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: c)"
                    .into()
            )
        );
        assert_eq!(
            resolved(None, Some(non_root(None)), "www").map(|_| ()),
            Err("container has runAsNonRoot and image has non-numeric user (www), cannot verify user is non-root (pod: \"p_ns(u)\", container: c)".into())
        );
        assert_eq!(
            resolved(None, Some(non_root(None)), "1000").map(|s| s.uid),
            Ok(1000)
        );
        assert_eq!(
            resolved(None, Some(non_root(Some(7))), "").map(|s| s.uid),
            Ok(7)
        );
        // From the pod's context too.
        let pod = PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        };
        assert!(resolved(Some(pod), None, "").is_err());
    }

    #[test]
    fn capabilities_privileges_and_the_root_filesystem() {
        let sc = SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "cap_sys_ptrace".into()]),
                drop: Some(vec!["NET_RAW".into(), "CAP_MKNOD".into()]),
            }),
            allow_privilege_escalation: Some(true),
            read_only_root_filesystem: Some(true),
            ..Default::default()
        };
        let s = resolved(None, Some(sc), "").expect("runs");
        assert!(s.capabilities.contains(&"CAP_NET_ADMIN".into()));
        assert!(s.capabilities.contains(&"CAP_SYS_PTRACE".into()));
        assert!(!s.capabilities.contains(&"CAP_NET_RAW".into()));
        assert!(!s.capabilities.contains(&"CAP_MKNOD".into()));
        assert!(!s.no_new_privileges && s.read_only_root);

        let drop_all = SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_BIND_SERVICE".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        };
        let s = resolved(None, Some(drop_all), "").expect("runs");
        assert_eq!(s.capabilities, vec!["CAP_NET_BIND_SERVICE".to_string()]);

        let privileged = SecurityContext {
            privileged: Some(true),
            ..Default::default()
        };
        let s = resolved(None, Some(privileged), "").expect("runs");
        assert_eq!(s.capabilities.len(), ALL_CAPABILITIES.len());
        assert!(s.privileged && !s.seccomp && !s.no_new_privileges);

        let unconfined = PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "Unconfined".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!resolved(Some(unconfined), None, "").expect("runs").seccomp);
    }
}
