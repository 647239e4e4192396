//! The machine side of the service proxy: one `nft -f -` process per sync, the service CIDR
//! route to the pod bridge, and the two per-bridge sysctls VIP traffic needs.
//!
//! Why `nft -f` and not a netlink crate: the rules need verdict maps over concatenations,
//! `numgen`, `fib` and dynamic set updates, which neither `rustables` 0.9 (GPL-3.0, bindgen
//! at build time) nor `nftnl` 0.9 (a C library) can express; and a sync of 1,000 endpoints
//! takes tens of milliseconds through `nft -f`, of which the process start is about 2 ms (see
//! the crate's ARCHITECTURE note and `tests/serviceproxy.rs` for the figures).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::rules::Ipv4Cidr;

/// A failed step of programming the machine, with the tool's own words.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nft -f rejected the transaction: {message}")]
    Rejected { message: String },
    #[error("ip {args}: {message}")]
    Ip { args: String, message: String },
    #[error("writing {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bridge {bridge} does not exist (yet): the node agent creates it with its first pod")]
    NoBridge { bridge: String },
}

/// Runs `script` as one `nft -f -` transaction: all of it applies, or nothing does.
pub async fn apply(script: &str) -> Result<(), NftError> {
    let spawn = |source| NftError::Spawn {
        program: "nft",
        source,
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(spawn)?;
    }
    let out = child.wait_with_output().await.map_err(spawn)?;
    if out.status.success() {
        return Ok(());
    }
    // nft repeats the offending line with carets under it: the first lines say it all.
    let text = String::from_utf8_lossy(&out.stderr);
    let message: Vec<&str> = text.lines().take(6).collect();
    Err(NftError::Rejected {
        message: message.join(" | "),
    })
}

/// Whether the kernel takes conntrack timeout policies (`ct timeout` objects): `nft --check`
/// runs a transaction declaring one in a throwaway table and aborts it.
pub async fn supports_ct_timeout() -> bool {
    let script = format!(
        "add table ip baton-probe\n{}\n",
        super::rules::forget_on_reset_decl("ip baton-probe")
    );
    let Ok(mut child) = Command::new("nft")
        .args(["--check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take()
        && stdin.write_all(script.as_bytes()).await.is_err()
    {
        return false;
    }
    child.wait().await.is_ok_and(|s| s.success())
}

/// Routes the service CIDR to the bridge (`ip route replace`, idempotent) and lets the bridge
/// forward (pod → VIP → pod) and carry 127.0.0.1-sourced packets (NodePort on localhost).
/// Only the bridge's own settings change, not the machine-wide `ip_forward`.
pub async fn ensure_host(bridge: &str, service_cidr: Ipv4Cidr) -> Result<(), NftError> {
    let conf = format!("/proc/sys/net/ipv4/conf/{bridge}");
    if !std::path::Path::new(&conf).exists() {
        return Err(NftError::NoBridge {
            bridge: bridge.to_string(),
        });
    }
    for key in ["forwarding", "route_localnet"] {
        let path = format!("{conf}/{key}");
        if !std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            std::fs::write(&path, "1").map_err(|source| NftError::Sysctl { path, source })?;
        }
    }
    ip(&["route", "replace", &service_cidr.to_string(), "dev", bridge]).await
}

/// Removes the service CIDR route if it points at `bridge`. Returns whether it was there.
pub async fn remove_route(bridge: &str, service_cidr: Ipv4Cidr) -> Result<bool, NftError> {
    let cidr = service_cidr.to_string();
    let shown = Command::new("ip")
        .args(["-4", "route", "show", "exact", &cidr, "dev", bridge])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| NftError::Spawn {
            program: "ip",
            source,
        })?;
    if !shown.status.success() || String::from_utf8_lossy(&shown.stdout).trim().is_empty() {
        return Ok(false);
    }
    ip(&["route", "del", &cidr, "dev", bridge]).await?;
    Ok(true)
}

/// Whether the `ip` table `table` exists.
pub async fn table_exists(table: &str) -> Result<bool, NftError> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|source| NftError::Spawn {
            program: "nft",
            source,
        })?;
    Ok(out.success())
}

async fn ip(args: &[&str]) -> Result<(), NftError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| NftError::Spawn {
            program: "ip",
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Ip {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
