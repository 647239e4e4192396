#!/usr/bin/env bash
# The Debian packages Baton's build, its node agent and its tests use, and a Rust toolchain
# check: what install.sh and test.sh need on a fresh machine. Safe to run again.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Debian packages: build tools, and what the tests and later components drive for real.
# runc, iproute2, nftables, conntrack: the node agent and the Service proxy; nginx-light, wrk:
# the traffic benchmarks (bench/traffic.sh); buildah, busybox-static, docker-registry: the
# container tests build their image FROM scratch and serve it from a local registry;
# protobuf-compiler: the etcd client's build compiles etcd's .proto files; etcd-server,
# etcd-client: the etcd store's tests and tests/e2e/etcd-once.sh run a real etcd 3.4 of their
# own on loopback (the etcd.service the package enables is stopped and disabled below when this
# script installed it: nothing here uses it).
PKGS=(curl ca-certificates pkg-config gcc iproute2 python3 python3-pip python3-venv
      runc nftables iptables conntrack buildah busybox-static docker-registry nginx-light wrk
      protobuf-compiler etcd-server etcd-client)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "$0: cargo is required (rustup: https://rustup.rs)" >&2
  exit 1
fi
