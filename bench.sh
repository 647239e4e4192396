#!/usr/bin/env bash
# Benchmarks: builds the release binaries, installs the etcd peer if it is missing, and runs
# baton-bench, which prints one JSON line per figure (Baton, the etcd peer, and their ratios).
# Extra arguments go to baton-bench (see `target/release/baton-bench --help`).
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --locked -p baton -p baton-bench >&2

if ! command -v etcd >/dev/null; then
  echo "installing the etcd peer (etcd-server, etcd-client)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client >&2
fi

# Bounded: every phase has its own limits; this is the backstop.
exec timeout 600 target/release/baton-bench --baton target/release/baton --etcd "$(command -v etcd)" "$@"
