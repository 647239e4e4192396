#!/usr/bin/env bash
# Installs what Baton needs on a fresh Debian machine of this kind, builds it and puts the
# binaries on PATH (/usr/local/bin). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Debian packages: build tools, and what the tests and later components drive for real.
# runc, iproute2, nftables, conntrack: the node agent and the Service proxy; nginx-light, wrk:
# the traffic benchmarks (bench/traffic.sh); buildah, busybox-static, docker-registry: the
# container tests build their image FROM scratch and serve it from a local registry.
PKGS=(curl ca-certificates pkg-config gcc iproute2 python3 python3-pip python3-venv
      runc nftables iptables conntrack buildah busybox-static docker-registry nginx-light wrk)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo is required (rustup: https://rustup.rs)" >&2
  exit 1
fi

# The workspace build includes the kubectl plugin (crates/rolling-update); kubectl runs any
# `kubectl-<name>` on PATH, so `kubectl rolling-update` works with every kubectl version.
cargo build --release --locked
$SUDO install -m 0755 target/release/baton /usr/local/bin/baton
$SUDO install -m 0755 target/release/kubectl-rolling_update /usr/local/bin/kubectl-rolling_update
echo "installed: $(command -v baton) $(command -v kubectl-rolling_update)"
