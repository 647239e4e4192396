#!/usr/bin/env bash
# Runs every test: unit tests, the store conformance suite, API server integration tests,
# then the end-to-end scenarios in tests/e2e/ through the real kubectl, once per kubectl
# version. Installs the packages it needs first (idempotent), so it works on a fresh machine;
# builds in target/ci (install.sh builds and installs the release binary).
set -euo pipefail
cd "$(dirname "$0")"

./scripts/packages.sh

# One build for everything below: every test target and the binaries the e2e scenarios run
# (baton, kubectl-rolling_update, baton-loadcheck), at the `ci` profile (Cargo.toml). Building
# all targets at once resolves features once (the tests' dev-dependencies switch on tokio's
# test-util), so `cargo test` then reuses every artifact instead of building the tree again.
echo "== cargo build (profile ci, all targets)"
build_started=$SECONDS
cargo build --profile ci --locked --workspace --all-targets
echo "== built in $((SECONDS - build_started)) s"

echo "== cargo test (unit, conformance, integration)"
# --tests: every unit-test and tests/*.rs target, not the doc tests (the crates' doc comments
# hold no Rust examples; rustdoc would still compile each crate once more to find none).
tests_started=$SECONDS
cargo test --profile ci --locked --workspace --tests
echo "== cargo test took $((SECONDS - tests_started)) s (nothing rebuilt)"

# kubectl versions the e2e scenarios run against (those present on this machine).
KUBECTLS=()
for k in /usr/bin/kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.27 \
         /usr/lib/google-cloud-sdk/bin/kubectl.1.29 /usr/lib/google-cloud-sdk/bin/kubectl.1.33; do
  if [ -x "$k" ]; then KUBECTLS+=("$k"); else echo "warning: $k not found, skipped" >&2; fi
done
if [ "${#KUBECTLS[@]}" -eq 0 ]; then echo "no kubectl found" >&2; exit 1; fi

export BATON="$PWD/target/ci/baton"

# Which kubectls a scenario runs with: `*-once.sh` once (with the first); a header line
# `kubectl-versions: 1.27 1.33` names them (those whose kubectl-facing part is small run with
# the oldest and the newest, or once); otherwise every version above.
kubectls_for() {
  local scenario=$1 wanted v
  case "$scenario" in *-once.sh) echo "${KUBECTLS[0]}"; return ;; esac
  wanted=$(sed -n 's/.*kubectl-versions: *\([0-9. ]*\).*/\1/p' "$scenario" | head -n 1)
  if [ -z "$wanted" ]; then printf '%s\n' "${KUBECTLS[@]}"; return; fi
  for v in $wanted; do echo "/usr/lib/google-cloud-sdk/bin/kubectl.$v"; done
}

# Two lanes, so that the 2 cores are busy while scenarios wait on rollouts and timers:
# - machine: scenarios that use this machine's node agent (real containers, the bridge,
#   nftables, ports 80/443) or a local registry (`AGENT=1` or registry.sh): one at a time;
# - api: the rest (simulated nodes, each server on its own port and data dir), beside them.
# Scenarios whose header says `e2e-alone:` (load counted to the last request) run at the end
# with nothing beside them. A scenario's kubectl versions run one after another in one lane.
RESULTS=$(mktemp -d /tmp/baton-test.XXXXXX)
machine=() api=() alone=()
for scenario in tests/e2e/*.sh; do
  # lib.sh and registry.sh are sourced by the scenarios, not scenarios themselves.
  case "$(basename "$scenario")" in lib.sh|registry.sh) continue ;; esac
  if grep -q 'e2e-alone:' "$scenario"; then alone+=("$scenario")
  elif grep -q '^AGENT=1\|registry\.sh' "$scenario"; then machine+=("$scenario")
  else api+=("$scenario"); fi
done

# run_scenario FILE: every kubectl version of one scenario; its output is printed whole when
# it ends (under a lock, so the lanes do not interleave) with its duration.
run_scenario() {
  local scenario=$1 k name log started rc
  while read -r k; do
    name="$(basename "$scenario") [$(basename "$k")]"
    log="$RESULTS/$(basename "$scenario" .sh)-$(basename "$k").log"
    started=$SECONDS
    rc=0
    KUBECTL="$k" bash "$scenario" >"$log" 2>&1 </dev/null || rc=$?
    {
      flock 9
      echo "== e2e $name: $((SECONDS - started)) s"
      cat "$log"
      echo "$((SECONDS - started)) s  $name" >>"$RESULTS/timings"
      if [ "$rc" -ne 0 ]; then echo "$name" >>"$RESULTS/failed"; fi
    } 9>"$RESULTS/print.lock"
  done < <(kubectls_for "$scenario")
}

# The api queue is shared: each lane takes the next scenario when it is free.
printf '%s\n' "${api[@]}" >"$RESULTS/api-queue"
echo 0 >"$RESULTS/api-next"
next_api() {
  local n
  {
    flock 9
    n=$(cat "$RESULTS/api-next")
    echo $((n + 1)) >"$RESULTS/api-next"
  } 9>"$RESULTS/queue.lock"
  sed -n "$((n + 1))p" "$RESULTS/api-queue"
}
drain_api() {
  local scenario
  while scenario=$(next_api) && [ -n "$scenario" ]; do run_scenario "$scenario"; done
}

echo "== e2e: ${#machine[@]} machine scenarios beside ${#api[@]} api scenarios, then ${#alone[@]} alone"
( for scenario in "${machine[@]}"; do run_scenario "$scenario"; done; drain_api ) &
machine_lane=$!
drain_api
wait "$machine_lane" || echo "the machine lane itself failed ($?)" >>"$RESULTS/failed"
for scenario in "${alone[@]}"; do run_scenario "$scenario"; done

# Where the CI budget goes (45 minutes on 2 cores, build included).
echo "== e2e durations (total ${SECONDS} s since test.sh started)"
sort -rn "$RESULTS/timings" | sed 's/^/  /'

if [ -s "$RESULTS/failed" ]; then
  echo "FAILED e2e scenarios:" >&2
  sed 's/^/  /' "$RESULTS/failed" >&2
  rm -rf "$RESULTS"
  exit 1
fi
rm -rf "$RESULTS"
echo "all tests passed"
