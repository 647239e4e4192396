#!/usr/bin/env bash
# Installs what Baton needs on a fresh Debian machine of this kind, builds it and puts the
# binaries on PATH (/usr/local/bin). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

./scripts/packages.sh
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The workspace build includes the kubectl plugin (crates/rolling-update); kubectl runs any
# `kubectl-<name>` on PATH, so `kubectl rolling-update` works with every kubectl version.
cargo build --release --locked
$SUDO install -m 0755 target/release/baton /usr/local/bin/baton
$SUDO install -m 0755 target/release/kubectl-rolling_update /usr/local/bin/kubectl-rolling_update
echo "installed: $(command -v baton) $(command -v kubectl-rolling_update)"
