#!/usr/bin/env bash
# Issue 15, must-hold 1 in CI: kubectl scenarios pass with the server on a real etcd. Runs the
# seed walkthrough, the API machinery scenario and the kubectl rollout scenario with
# E2E_STORE=etcd (lib.sh starts an etcd of each scenario's own on loopback and the server with
# --store etcd://…); each prints its own failure (kubectl output, server log tail).
set -uo pipefail
here=$(dirname "$0")
failed=()
for s in seed.sh machinery.sh rollout-kubectl.sh; do
  if E2E_STORE=etcd bash "$here/$s"; then :; else failed+=("$s"); fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAIL [etcd-scenarios-once with $(basename "${KUBECTL:-kubectl}")]: on etcd: ${failed[*]}" >&2
  exit 1
fi
echo "PASS [etcd-scenarios-once with $(basename "${KUBECTL:-kubectl}")]"
