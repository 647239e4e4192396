#!/usr/bin/env bash
# Rollout benchmarks (issue 4) on simulated nodes with zero readiness delay, one JSON line per
# figure: for each size, the time from `kubectl set image` to `kubectl rollout status` seeing
# the rollout complete (maxSurge 25%, maxUnavailable 25%); then creation of a 5,000-pod
# Deployment on 50 nodes (time to all available, pods per second, server RSS); the server's
# CPU time (user + system) spent in each.
#
# Usage: bench/rollout.sh [BATON] [KUBECTL] [SIZES]   (defaults: target/release/baton,
# kubectl, "10 100 1000"; BIG=0 skips the 5,000-pod figure). No Kubernetes peer runs here.
set -euo pipefail
BATON=${1:-target/release/baton}
KUBECTL=${2:-kubectl}
SIZES=${3-10 100 1000}   # "" (given but empty): only the 5,000-pod figure
BIG=${BIG:-5000}

TMP=$(mktemp -d /tmp/baton-rollout-bench.XXXXXX)
export HOME="$TMP/home" && mkdir -p "$HOME"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

"$BATON" server --disable agent --data-dir "$TMP/data" --listen 127.0.0.1:0 --simulated-nodes 50 \
  --sim-ready-delay-ms 0 >"$TMP/out" 2>"$TMP/log" &
PID=$!
for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$TMP/out" 2>/dev/null && break; sleep 0.1; done
export KUBECONFIG="$TMP/data/kubeconfig"

ms() { date +%s%3N; }
deploy() {
  cat <<YAML | "$KUBECTL" apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec: {containers: [{name: c, image: registry.local/bench:v1}]}
YAML
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
# The server's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
ticks_s() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'; }

for n in $SIZES; do
  name="r$n"
  deploy "$name" "$n"
  "$KUBECTL" rollout status "deployment/$name" --timeout=600s >/dev/null
  start=$(ms)
  cpu0=$(cpu_ticks)
  "$KUBECTL" set image "deployment/$name" c=registry.local/bench:v2 >/dev/null
  "$KUBECTL" rollout status "deployment/$name" --timeout=600s >/dev/null
  end=$(ms)
  echo "{\"bench\":\"rollout_set_image_to_complete_ms\",\"replicas\":$n,\"value\":$((end - start))}"
  echo "{\"bench\":\"rollout_server_cpu_s\",\"replicas\":$n,\"value\":$(ticks_s $(($(cpu_ticks) - cpu0)))}"
  "$KUBECTL" delete "deployment/$name" --wait=false >/dev/null
done

if [ "$BIG" -gt 0 ]; then
  start=$(ms)
  cpu0=$(cpu_ticks)
  deploy big "$BIG"
  "$KUBECTL" rollout status deployment/big --timeout=900s >/dev/null
  end=$(ms)
  took=$((end - start))
  echo "{\"bench\":\"create_pods_to_available_ms\",\"pods\":$BIG,\"nodes\":50,\"value\":$took}"
  echo "{\"bench\":\"create_pods_per_s\",\"pods\":$BIG,\"value\":$((BIG * 1000 / (took > 0 ? took : 1)))}"
  echo "{\"bench\":\"server_rss_mb\",\"pods\":$BIG,\"value\":$(rss_mb)}"
  echo "{\"bench\":\"create_pods_server_cpu_s\",\"pods\":$BIG,\"value\":$(ticks_s $(($(cpu_ticks) - cpu0)))}"
fi
