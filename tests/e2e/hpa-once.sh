#!/usr/bin/env bash
# HorizontalPodAutoscaler on real containers (issue 12, must-hold 2), through the real
# kubectl: a Deployment and a ReplicationController of a CPU-burning image (busybox sh in
# a busy loop while /ctl/burn exists on a shared hostPath, asleep otherwise; 50m requested,
# 150m limit), each under `kubectl autoscale … --min=1 --max=3 --cpu-percent=50` — the
# Deployment's HPA made by kubectl 1.33 (autoscaling/v2), the RC's by kubectl 1.27 — scale
# up to 3 while the burn runs (80-150m, 160-300% of the request against 50%: ceil(≥ 3.2 × 1)
# ≥ 4, held to max 3, in one step) and back
# down to 1 once it stops; `kubectl top pods` shows the burning pods' CPU and
# `kubectl get hpa` the TARGETS (`cpu: N%/50%`) and REPLICAS; `kubectl describe hpa` shows
# the metric, the conditions and the SuccessfulRescale events. The server runs with
# `--hpa-sync-period 1s --hpa-downscale-stabilization 5s` (Kubernetes: 15 s and 5 min).
# Needs root and runc (CI has both). About 60 s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
STARTED=$(date +%s)
# phase TEXT: what the scenario reached, with the seconds since it started.
phase() { echo "[$(( $(date +%s) - STARTED ))s] $*"; }
K127=${KUBECTL_OLD:-/usr/lib/google-cloud-sdk/bin/kubectl.1.27}
K133=${KUBECTL_NEW:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33}
[ -x "$K127" ] && [ -x "$K133" ] || fail "needs kubectl 1.27 and 1.33 ($K127, $K133)"

start_registry || fail "starting the registry failed"
build_hello_image burn:v1 "burn" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
CTL="$E2E_TMP/ctl"
mkdir -p "$CTL"
start_server --hpa-sync-period 1s --hpa-downscale-stabilization 5s
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# kv VERSION ARGS...: kubectl of that version; output in $LAST_OUT.
kv() {
  local bin=$1; shift
  LAST_OUT=$("$bin" "$@" 2>&1) || fail "$(basename "$bin") $* exited non-zero"
  printf '%s\n' "$LAST_OUT"
}

POD_SPEC="
    spec:
      terminationGracePeriodSeconds: 1
      volumes: [{name: ctl, hostPath: {path: $CTL, type: Directory}}]
      containers:
      - name: burn
        image: $REG/burn:v1
        command: [sh, -c, 'while :; do if [ -e /ctl/burn ]; then :; else sleep 0.2; fi; done']
        volumeMounts: [{name: ctl, mountPath: /ctl}]
        resources: {requests: {cpu: 50m}, limits: {cpu: 150m}}"
cat >"$E2E_TMP/burners.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
$POD_SPEC
---
apiVersion: v1
kind: ReplicationController
metadata: {name: burner-rc}
spec:
  replicas: 1
  selector: {app: burner-rc}
  template:
    metadata: {labels: {app: burner-rc}}
$POD_SPEC
YAML
phase "server up"
k apply -f "$E2E_TMP/burners.yaml" >/dev/null
WAIT_TRIES=300 wait_for 1 '{.status.readyReplicas}' deployment burner
WAIT_TRIES=300 wait_for 1 '{.status.readyReplicas}' rc burner-rc

phase "one pod each running"
kv "$K133" autoscale deployment/burner --min=1 --max=3 --cpu-percent=50 >/dev/null
expect "horizontalpodautoscaler.autoscaling/burner autoscaled"
kv "$K127" autoscale rc/burner-rc --min=1 --max=3 --cpu-percent=50 >/dev/null
expect "horizontalpodautoscaler.autoscaling/burner-rc autoscaled"
# Idle: both stay at 1, and the HPA reports a utilization.
WAIT_TRIES=150 wait_for 1 '{.status.currentReplicas}' hpa burner
WAIT_TRIES=150 wait_for ValidMetricFound '{.status.conditions[?(@.type=="ScalingActive")].reason}' hpa burner

phase "HPAs report idle metrics"
# --- the burn starts: up to 3 ------------------------------------------------------------
BURN_AT=$(date +%s)
touch "$CTL/burn"
WAIT_TRIES=300 wait_for 3 '{.spec.replicas}' deployment burner
WAIT_TRIES=300 wait_for 3 '{.spec.replicas}' rc burner-rc
UP_AFTER=$(( $(date +%s) - BURN_AT ))
phase "both scaled to 3"
WAIT_TRIES=300 wait_for 3 '{.status.readyReplicas}' deployment burner
phase "3 burner pods ready"
# kubectl top: every burning pod shows its CPU (a busy loop under a 150m limit; tens of
# millicores at least on a loaded machine).
for _ in $(seq 1 50); do
  LAST_OUT=$("$K133" top pods -l app=burner --no-headers 2>&1) || true
  busy=$(printf '%s\n' "$LAST_OUT" | awk '$2 ~ /m$/ && $2+0 >= 20' | wc -l)
  [ "$busy" -ge 3 ] && break
  sleep 0.5
done
[ "$busy" -ge 3 ] || fail "kubectl top pods: fewer than 3 burning pods at >= 20m"
TOP="$LAST_OUT"
phase "kubectl top pods shows 3 burning pods"
# kubectl get hpa: the server's table, TARGETS as Kubernetes prints them.
for _ in $(seq 1 50); do
  LAST_OUT=$("$K133" get hpa burner --no-headers 2>&1) || true
  printf '%s\n' "$LAST_OUT" | grep -Eq '^burner +Deployment/burner +cpu: [0-9]{2,}%/50% +1 +3 +3 ' && break
  sleep 0.3
done
printf '%s\n' "$LAST_OUT" | grep -Eq '^burner +Deployment/burner +cpu: [0-9]{2,}%/50% +1 +3 +3 ' \
  || fail "kubectl get hpa burner: unexpected row"
GET_HPA="$LAST_OUT"
phase "kubectl get hpa shows the row"
kv "$K127" get hpa >/dev/null
expect "NAME"; expect "REFERENCE"; expect "TARGETS"; expect "MINPODS"; expect "MAXPODS"; expect "REPLICAS"
expect "ReplicationController/burner-rc"
kv "$K133" describe hpa burner >/dev/null
expect "Reference:"; expect "Deployment/burner"
expect "resource cpu on pods  (as a percentage of request):"
expect "Deployment pods:"
expect "AbleToScale"; expect "ScalingActive"; expect "ValidMetricFound"; expect "ScalingLimited"
expect "SuccessfulRescale"
expect "New size: 3; reason: cpu resource utilization (percentage of request) above target"
kv "$K127" describe hpa burner-rc >/dev/null
expect "ReplicationController pods:"
expect "New size: 3; reason: cpu resource utilization (percentage of request) above target"

phase "top, get and describe checked"
# --- the burn stops: back to 1 (after the 5 s window) --------------------------------------
STOP_AT=$(date +%s)
rm -f "$CTL/burn"
WAIT_TRIES=400 wait_for 1 '{.spec.replicas}' deployment burner
WAIT_TRIES=400 wait_for 1 '{.spec.replicas}' rc burner-rc
DOWN_AFTER=$(( $(date +%s) - STOP_AT ))
[ "$DOWN_AFTER" -ge 5 ] || fail "scaled down ${DOWN_AFTER}s after the burn stopped, within the 5 s window"
kv "$K133" describe hpa burner >/dev/null
expect "New size: 1; reason: All metrics below target"
kv "$K133" get events --field-selector involvedObject.name=burner-rc >/dev/null
expect "New size: 1; reason: All metrics below target"

echo "kubectl top pods while burning:"
printf '%s\n' "$TOP"
echo "kubectl get hpa while burning:"
printf '%s\n' "$GET_HPA"
echo "HPA scaled a Deployment and an RC up in ${UP_AFTER}s of burn and down ${DOWN_AFTER}s after it ($(( $(date +%s) - STARTED ))s in all)"
pass
