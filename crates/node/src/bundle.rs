//! The OCI runtime configuration (`config.json`) of one container: the pod spec merged with
//! the image's config as Kubernetes merges them (command/args over Entrypoint/Cmd, env over
//! the image's env, `$(VAR)` expansion), resources turned into cgroup limits (and a pids
//! limit), the pod's network namespace joined, and the confinement [`Security`] says (user,
//! capabilities, `noNewPrivileges`, seccomp, masked paths, read-only root). Pure functions,
//! table-tested; the runtime writes the result.
//!
//! Written with `serde_json` rather than `oci-spec`: the document is small, and building it as
//! JSON keeps every field we set visible in one place.

use std::collections::BTreeMap;

use baton_api::quantity::Quantity;
use k8s_openapi::api::core::v1::Container;
use serde_json::{Value, json};

use crate::security::{MASKED_PATHS, PIDS_LIMIT, READONLY_PATHS, Security};
use crate::volume::BindMount;

/// What the image says about how to run it (from its config blob).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageRunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// Everything besides the container spec that goes into the bundle.
#[derive(Clone, Debug)]
pub struct BundleContext<'a> {
    pub hostname: &'a str,
    pub netns_path: &'a str,
    /// Files of the pod bind-mounted over the image's (`/etc/hostname`, hosts, resolv.conf).
    pub etc_files: &'a [(String, String)],
    /// The container's volumeMounts, resolved to host paths ([`crate::volume`]).
    pub volume_mounts: &'a [BindMount],
    /// Pod-level environment for `fieldRef`s: metadata.name, metadata.namespace, status.podIP …
    pub field_values: &'a BTreeMap<String, String>,
    /// cgroup path (cgroupfs driver), e.g. `/baton/<pod uid>/<container>`.
    pub cgroups_path: &'a str,
    /// The user, capabilities, seccomp and the rest of the confinement
    /// ([`crate::security::resolve`]).
    pub security: &'a Security,
    /// Annotations recorded in the bundle so a restarted agent can tell what it is.
    pub annotations: BTreeMap<String, String>,
}

/// Why a container cannot be started from its spec (Kubernetes' `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("no command specified")]
    NoCommand,
    #[error("couldn't find key {key} in {kind} {name}")]
    MissingReference {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0}")]
    UnsupportedField(String),
    /// A resource amount the API would have refused (it validates them; this guards objects
    /// stored before it did).
    #[error("{field}: Invalid value: {value:?}: {detail}")]
    Resource {
        field: String,
        value: String,
        detail: String,
    },
}

/// The process's argv: Kubernetes' rules for `command`/`args` against Entrypoint/Cmd.
pub fn argv(c: &Container, image: &ImageRunConfig) -> Vec<String> {
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.into_iter().chain(args).collect(),
        (true, false) => image.entrypoint.iter().cloned().chain(args).collect(),
        (true, true) => image
            .entrypoint
            .iter()
            .chain(image.cmd.iter())
            .cloned()
            .collect(),
    }
}

/// What the API holds for a container's environment, read by the agent before the bundle is
/// written (`Agent::env_sources`): the variables of its `envFrom` sources in order (prefix
/// included; a later source's key replaces an earlier one's), and the value of each `env`
/// entry (by index) whose configMapKeyRef or secretKeyRef resolved. An optional reference
/// whose object or key is missing has no value: that entry is skipped, as the kubelet skips it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvSources {
    pub from: Vec<(String, String)>,
    pub refs: BTreeMap<usize, String>,
}

/// The container's environment as the kubelet's `makeEnvironmentVariables` builds it, over the
/// image's: the `envFrom` variables, then the pod spec's `env` in order — overriding them —,
/// each value with `$(NAME)` references to earlier variables expanded. `valueFrom` resolves
/// fieldRefs from `fields`, configMap/secret references from `sources`.
pub fn environment(
    c: &Container,
    image: &ImageRunConfig,
    fields: &BTreeMap<String, String>,
    sources: &EnvSources,
) -> Result<Vec<(String, String)>, BundleError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(slot) = env.iter_mut().find(|(name, _)| *name == k) {
            slot.1 = v;
        } else {
            env.push((k, v));
        }
    };
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(&mut env, k.to_string(), v.to_string());
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    for (k, v) in &sources.from {
        set(&mut env, k.clone(), v.clone());
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                fields
                    .get(&f.field_path)
                    .cloned()
                    .ok_or_else(|| BundleError::UnsupportedField(f.field_path.clone()))?
            } else if let Some(v) = sources.refs.get(&i) {
                v.clone()
            } else {
                continue;
            }
        } else {
            let vars: BTreeMap<String, String> = env.iter().cloned().collect();
            expand(e.value.as_deref().unwrap_or(""), &vars)
        };
        set(&mut env, e.name.clone(), value);
    }
    Ok(env)
}

/// Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` escapes, unknown
/// references stay as written.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Bytes from a Kubernetes quantity (`64Mi`, `1G`, `512974848m`), rounded up as the kubelet's
/// `Value()`; None when it is not a quantity or is negative.
pub fn quantity_bytes(q: &str) -> Option<i64> {
    Quantity::parse(q.trim())
        .ok()
        .filter(|q| !q.is_negative())
        .map(|q| q.value())
}

/// The kubelet's CPU constants (`pkg/kubelet/cm/helpers_linux.go`): shares per core and the
/// kernel's bounds, the CFS period and the smallest quota.
const SHARES_PER_CPU: i128 = 1024;
const MIN_SHARES: i128 = 2;
const MAX_SHARES: i128 = 262_144;
const QUOTA_PERIOD: i128 = 100_000;
const MIN_QUOTA_PERIOD: i128 = 1_000;

/// The kubelet's `MilliCPUToShares`: 1024 per core, within the kernel's [2, 262144].
pub fn milli_cpu_to_shares(milli: i128) -> i64 {
    ((milli * SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES) as i64
}

/// The kubelet's `MilliCPUToQuota` over a 100 ms period (at least 1 ms; 0 for no limit), or
/// None when the quota does not fit the kernel's 64-bit microseconds.
pub fn milli_cpu_to_quota(milli: i128) -> Option<i64> {
    if milli == 0 {
        return Some(0);
    }
    i64::try_from((milli * QUOTA_PERIOD / 1000).max(MIN_QUOTA_PERIOD)).ok()
}

/// The cgroup resources block for the container's limits and requests, the pids limit, and
/// the device rule (none but runc's defaults; every device for a privileged container).
/// Amounts are read with [`Quantity`] as the kubelet reads them: memory in bytes (`Value()`,
/// rounded up), CPU in millicores (`MilliValue()`, rounded up). runc writes the same numbers
/// to cgroup v2 as `memory.max`, `cpu.max` ("quota period") and `cpu.weight` (from the shares).
pub fn resources(c: &Container, privileged: bool) -> Result<Value, BundleError> {
    let res = c.resources.as_ref();
    let amount = |kind: &'static str, name: &str| -> Result<Quantity, BundleError> {
        let list = match kind {
            "limits" => res.and_then(|r| r.limits.as_ref()),
            _ => res.and_then(|r| r.requests.as_ref()),
        };
        let Some(q) = list.and_then(|l| l.get(name)) else {
            return Ok(Quantity::ZERO);
        };
        let field = format!("resources.{kind}[{name}]");
        match Quantity::try_from(q) {
            Ok(q) if q.is_negative() => Err(BundleError::Resource {
                field,
                value: q.to_string(),
                detail: "must be greater than or equal to 0".into(),
            }),
            Ok(q) => Ok(q),
            Err(e) => Err(BundleError::Resource {
                field,
                value: q.0.clone(),
                detail: e.to_string(),
            }),
        }
    };
    let memory = amount("limits", "memory")?.value();
    let cpu_limit = amount("limits", "cpu")?;
    let cpu_request = amount("requests", "cpu")?;
    let mut out = serde_json::Map::new();
    if memory > 0 {
        // No swap beyond the limit (the kubelet's NoSwap).
        out.insert("memory".into(), json!({ "limit": memory, "swap": memory }));
    }
    // Shares from the request, or the limit when only that is set; 2 for neither.
    let shares_from = if cpu_request.is_zero() {
        &cpu_limit
    } else {
        &cpu_request
    };
    let mut cpu = serde_json::Map::new();
    cpu.insert(
        "shares".into(),
        json!(milli_cpu_to_shares(shares_from.milli_value())),
    );
    if !cpu_limit.is_zero() {
        let quota =
            milli_cpu_to_quota(cpu_limit.milli_value()).ok_or_else(|| BundleError::Resource {
                field: "resources.limits[cpu]".into(),
                value: cpu_limit.to_string(),
                detail: "the CFS quota it needs does not fit in 64 bits".into(),
            })?;
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(QUOTA_PERIOD as i64));
    }
    out.insert("cpu".into(), Value::Object(cpu));
    out.insert("pids".into(), json!({ "limit": PIDS_LIMIT }));
    out.insert(
        "devices".into(),
        json!([{ "allow": privileged, "access": "rwm" }]),
    );
    Ok(Value::Object(out))
}

/// The bind mounts of the pod's `/etc` files and the container's volumes, as containerd
/// orders them: a volume mounted at one of those files replaces it, and parents come before
/// what is mounted inside them (sorted by depth, stable).
fn bind_mounts(etc_files: &[(String, String)], volumes: &[BindMount]) -> Vec<Value> {
    let clean = |d: &str| d.trim_end_matches('/').to_string();
    let mut binds: Vec<(String, Value)> = etc_files
        .iter()
        .filter(|(dest, _)| !volumes.iter().any(|v| clean(&v.destination) == clean(dest)))
        .map(|(dest, src)| {
            (
                clean(dest),
                json!({"destination": dest, "type": "bind", "source": src,
                       "options": ["rbind", "rprivate"]}),
            )
        })
        .collect();
    for v in volumes {
        let mut options = vec!["rbind", "rprivate"];
        if v.read_only {
            options.push("ro");
        }
        binds.push((
            clean(&v.destination),
            json!({"destination": v.destination, "type": "bind",
                   "source": v.source.display().to_string(), "options": options}),
        ));
    }
    binds.sort_by_key(|(d, _)| d.split('/').filter(|p| !p.is_empty()).count());
    binds.into_iter().map(|(_, m)| m).collect()
}

/// The whole `config.json` for `runc run`.
pub fn runtime_config(
    c: &Container,
    image: &ImageRunConfig,
    env: &[(String, String)],
    ctx: &BundleContext<'_>,
) -> Result<Value, BundleError> {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let args: Vec<String> = argv(c, image).iter().map(|a| expand(a, &vars)).collect();
    if args.is_empty() {
        return Err(BundleError::NoCommand);
    }
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(image.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    // A volume mounted where a default mount is (e.g. /dev/shm) replaces it.
    mounts.retain(|m| {
        !ctx.volume_mounts
            .iter()
            .any(|v| m["destination"] == v.destination.trim_end_matches('/'))
    });
    mounts.extend(bind_mounts(ctx.etc_files, ctx.volume_mounts));
    let sec = ctx.security;
    if sec.privileged {
        // /sys as the host has it, writable.
        if let Some(sys) = mounts.iter_mut().find(|m| m["destination"] == "/sys") {
            sys["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
        }
    }
    let caps = &sec.capabilities;
    let mut linux = json!({
        "cgroupsPath": ctx.cgroups_path,
        "resources": resources(c, sec.privileged)?,
        "namespaces": [
            { "type": "pid" },
            { "type": "ipc" },
            { "type": "uts" },
            { "type": "mount" },
            { "type": "network", "path": ctx.netns_path }
        ],
    });
    if !sec.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if sec.seccomp {
        linux["seccomp"] = crate::seccomp::profile(caps, std::env::consts::ARCH);
    }
    let mut user = json!({ "uid": sec.uid, "gid": sec.gid });
    if !sec.additional_gids.is_empty() {
        user["additionalGids"] = json!(sec.additional_gids);
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": c.tty.unwrap_or(false),
            "user": user,
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": [], "ambient": []
            },
            "noNewPrivileges": sec.no_new_privileges
        },
        "root": { "path": "rootfs", "readonly": sec.read_only_root },
        "hostname": ctx.hostname,
        "mounts": mounts,
        "annotations": ctx.annotations,
        "linux": linux
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(command: &[&str], args: &[&str]) -> Container {
        let v = |s: &[&str]| (!s.is_empty()).then(|| s.iter().map(|x| x.to_string()).collect());
        Container {
            name: "c".into(),
            command: v(command),
            args: v(args),
            ..Default::default()
        }
    }

    fn image() -> ImageRunConfig {
        ImageRunConfig {
            entrypoint: vec!["/ep".into()],
            cmd: vec!["--default".into()],
            env: vec!["A=1".into(), "PATH=/bin".into()],
            ..Default::default()
        }
    }

    #[test]
    fn command_and_args_follow_the_kubernetes_table() {
        let img = image();
        assert_eq!(argv(&container(&[], &[]), &img), ["/ep", "--default"]);
        assert_eq!(argv(&container(&["/x"], &[]), &img), ["/x"]);
        assert_eq!(argv(&container(&[], &["-v"]), &img), ["/ep", "-v"]);
        assert_eq!(argv(&container(&["/x"], &["-v"]), &img), ["/x", "-v"]);
    }

    #[test]
    fn expansion_matches_kubernetes() {
        let vars = BTreeMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "1-$(B)-$(A)-$");
        assert_eq!(expand("x$(A", &vars), "x$(A");
    }

    #[test]
    fn env_overrides_image_and_expands_earlier_values() {
        let mut c = container(&[], &[]);
        c.env = Some(vec![
            k8s_openapi::api::core::v1::EnvVar {
                name: "A".into(),
                value: Some("2".into()),
                ..Default::default()
            },
            k8s_openapi::api::core::v1::EnvVar {
                name: "B".into(),
                value: Some("a=$(A)".into()),
                ..Default::default()
            },
        ]);
        let env = environment(&c, &image(), &BTreeMap::new(), &EnvSources::default())
            .expect("env resolves");
        assert_eq!(
            env,
            [
                ("A".to_string(), "2".to_string()),
                ("PATH".into(), "/bin".into()),
                ("B".into(), "a=2".into())
            ]
        );
    }

    #[test]
    fn env_from_comes_first_and_env_entries_override_it() {
        use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVar, EnvVarSource};
        let mut c = container(&[], &[]);
        let from_cm = |name: &str, key: &str| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "cm".into(),
                    key: key.into(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.env = Some(vec![
            EnvVar {
                name: "X_A".into(),
                value: Some("$(X_B)!".into()),
                ..Default::default()
            },
            // Resolved: replaces the envFrom value.
            from_cm("X_B", "b"),
            // Optional and missing (no value in `refs`): the envFrom value stays.
            from_cm("X_C", "c"),
        ]);
        let sources = EnvSources {
            from: vec![
                ("X_B".into(), "from-b".into()),
                ("X_C".into(), "from-c".into()),
                ("A".into(), "from-a".into()),
            ],
            refs: BTreeMap::from([(1, "ref-b".to_string())]),
        };
        let env = environment(&c, &image(), &BTreeMap::new(), &sources).expect("env resolves");
        assert_eq!(
            env,
            [
                ("A".to_string(), "from-a".to_string()),
                ("PATH".into(), "/bin".into()),
                ("X_B".into(), "ref-b".into()),
                ("X_C".into(), "from-c".into()),
                ("X_A".into(), "from-b!".into()),
            ]
        );
    }

    #[test]
    fn volumes_are_bound_parents_first_and_replace_what_they_cover() {
        let etc = [
            ("/etc/hosts".to_string(), "/pod/etc/hosts".to_string()),
            (
                "/etc/resolv.conf".to_string(),
                "/pod/etc/resolv.conf".to_string(),
            ),
        ];
        let vol = |dest: &str, src: &str, ro: bool| BindMount {
            destination: dest.into(),
            source: src.into(),
            read_only: ro,
        };
        let volumes = [
            vol("/data/cache", "/pod/volumes/cache", false),
            vol("/data", "/pod/volumes/data", false),
            vol("/etc/resolv.conf", "/pod/volumes/cfg/resolv", true),
        ];
        let got = bind_mounts(&etc, &volumes);
        let dests: Vec<&str> = got
            .iter()
            .map(|m| m["destination"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            dests,
            ["/data", "/etc/hosts", "/data/cache", "/etc/resolv.conf"]
        );
        assert_eq!(got[3]["source"], "/pod/volumes/cfg/resolv");
        assert_eq!(got[3]["options"], json!(["rbind", "rprivate", "ro"]));
        assert_eq!(got[0]["options"], json!(["rbind", "rprivate"]));
    }

    fn with_resources(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Q(v.to_string())))
                    .collect()
            })
        };
        Container {
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                limits: map(limits),
                requests: map(requests),
                ..Default::default()
            }),
            ..container(&["/x"], &[])
        }
    }

    /// What runc gets (and writes to cgroup v1, or v2's memory.max / cpu.max / cpu.weight) for
    /// amounts the old parsers dropped or misread: `1Pi` and `512974848m` of memory, `0.5m` and
    /// `1k` of CPU.
    #[test]
    fn resources_are_the_kubelets_values() {
        let r = |limits, requests| {
            resources(&with_resources(limits, requests), false).expect("valid amounts")
        };
        let one_pi = r(&[("memory", "1Pi"), ("cpu", "0.5m")], &[]);
        assert_eq!(
            one_pi["memory"],
            json!({"limit": 1i64 << 50, "swap": 1i64 << 50})
        );
        // 0.5m is one millicore (MilliValue rounds up): 1 share → the kernel's minimum 2, a
        // 100 µs quota → the 1 ms minimum.
        assert_eq!(
            one_pi["cpu"],
            json!({"shares": 2, "quota": 1000, "period": 100_000})
        );
        let milli_bytes = r(
            &[("memory", "512974848m"), ("cpu", "1k")],
            &[("cpu", "250m")],
        );
        assert_eq!(
            milli_bytes["memory"],
            json!({"limit": 512_975, "swap": 512_975})
        );
        // 1k cores: quota 1000 × 100 ms; shares from the 250m request.
        assert_eq!(
            milli_bytes["cpu"],
            json!({"shares": 256, "quota": 100_000_000, "period": 100_000})
        );
        // Shares from a limit alone, capped at the kernel's 262144; none asked: 2.
        assert_eq!(r(&[("cpu", "1k")], &[])["cpu"]["shares"], json!(262_144));
        assert_eq!(r(&[], &[])["cpu"], json!({"shares": 2}));
        assert_eq!(r(&[], &[])["memory"], Value::Null);
        assert_eq!(
            r(&[("memory", "1Ei"), ("cpu", "1.5")], &[])["cpu"],
            json!({"shares": 1536, "quota": 150_000, "period": 100_000})
        );
        assert_eq!(
            r(&[("memory", "1Ei")], &[])["memory"]["limit"],
            json!(1i64 << 60)
        );
        // Amounts the API refuses are never dropped: the container does not start.
        for (limits, field) in [
            (&[("memory", "1x")][..], "resources.limits[memory]"),
            (&[("memory", "-1")][..], "resources.limits[memory]"),
            (&[("cpu", "9E")][..], "resources.limits[cpu]"),
        ] {
            match resources(&with_resources(limits, &[]), false) {
                Err(BundleError::Resource { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{limits:?}: {other:?}"),
            }
        }
        assert_eq!(quantity_bytes("64Mi"), Some(64 << 20));
        assert_eq!(quantity_bytes("1Pi"), Some(1 << 50));
        assert_eq!(quantity_bytes("x"), None);
        assert_eq!(quantity_bytes("-1"), None);
    }
}
