#!/usr/bin/env bash
# Runs every test: unit tests, the store conformance suite, API server integration tests,
# then the end-to-end scenarios in tests/e2e/ through the real kubectl, once per kubectl
# version. Installs what it needs first (idempotent), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"

./install.sh

echo "== cargo test (unit, conformance, integration)"
cargo test --release --locked --workspace

# kubectl versions the e2e scenarios run against (those present on this machine).
KUBECTLS=()
for k in /usr/bin/kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.27 \
         /usr/lib/google-cloud-sdk/bin/kubectl.1.29 /usr/lib/google-cloud-sdk/bin/kubectl.1.33; do
  if [ -x "$k" ]; then KUBECTLS+=("$k"); else echo "warning: $k not found, skipped" >&2; fi
done
if [ "${#KUBECTLS[@]}" -eq 0 ]; then echo "no kubectl found" >&2; exit 1; fi

export BATON="$PWD/target/release/baton"
failed=()
timings=()
for scenario in tests/e2e/*.sh; do
  # lib.sh and registry.sh are sourced by the scenarios, not scenarios themselves.
  case "$(basename "$scenario")" in lib.sh|registry.sh) continue ;; esac
  # Scenarios that do not exercise kubectl itself (`*-once.sh`) run once, with the first.
  runs=("${KUBECTLS[@]}")
  case "$scenario" in *-once.sh) runs=("${KUBECTLS[0]}") ;; esac
  # A scenario may name the kubectl versions it runs with (`kubectl-versions: 1.27 1.33` in
  # its header, then why): those whose kubectl-facing part is small run with the oldest and
  # the newest only; the version matrix is for what differs between kubectl versions.
  wanted=$(sed -n 's/.*kubectl-versions: *\([0-9. ]*\).*/\1/p' "$scenario" | head -n 1)
  if [ -n "$wanted" ]; then
    runs=()
    for v in $wanted; do runs+=("/usr/lib/google-cloud-sdk/bin/kubectl.$v"); done
  fi
  for k in "${runs[@]}"; do
    echo "== e2e $(basename "$scenario") with $(basename "$k")"
    started=$SECONDS
    if ! KUBECTL="$k" bash "$scenario"; then
      failed+=("$(basename "$scenario") [$(basename "$k")]")
    fi
    timings+=("$((SECONDS - started)) s  $(basename "$scenario") [$(basename "$k")]")
  done
done

# Where the CI budget goes (45 minutes on 2 cores, build included).
echo "== e2e durations (total ${SECONDS} s since test.sh started)"
printf '  %s\n' "${timings[@]}" | sort -rn

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED e2e scenarios:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all tests passed"
