#!/usr/bin/env bash
# Issue 4, must-hold 4: the server is killed with SIGKILL in the middle of a rollout; after a
# restart on the same data dir the controllers finish the rollout without surplus pods — never
# more than replicas+maxSurge at any poll, exactly `replicas` pods of the new version at the end.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 3

WAIT_TRIES=300   # wait_for (lib.sh) retries, 0.1 s apart

# active_pods: pods of app=web not being deleted.
active_pods() {
  "$KUBECTL" get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null |
    awk 'NF == 1' | wc -l
}

cat >"$E2E_TMP/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 10
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 2, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sim.baton.dev/ready-after: 800ms}
    spec: {containers: [{name: web, image: registry.local/web:v1}]}
YAML
k create -f "$E2E_TMP/web.yaml" >/dev/null
k rollout status deployment/web --timeout=40s >/dev/null
k set image deployment/web web=registry.local/web:v2 >/dev/null
for _ in $(seq 1 200); do
  n=$(jp '{.status.updatedReplicas}' deployment web)
  [ "${n:-0}" -ge 3 ] && break
  sleep 0.05
done
[ "${n:-0}" -ge 3 ] || fail "the rollout did not get under way"
updated_before=$n
kill_server
start_server --simulated-nodes 3

max=0
for _ in $(seq 1 300); do
  n=$(active_pods)
  [ "$n" -gt "$max" ] && max=$n
  [ "$n" -gt 12 ] && fail "$n pods after restart, more than replicas+maxSurge=12"
  [ "$(jp '{.status.updatedReplicas}/{.status.availableReplicas}/{.status.replicas}' deployment web)" = 10/10/10 ] && break
  sleep 0.1
done
k rollout status deployment/web --timeout=30s >/dev/null
expect 'deployment "web" successfully rolled out'
for _ in $(seq 1 50); do
  [ "$("$KUBECTL" get pods -l app=web --no-headers 2>/dev/null | wc -l)" = 10 ] && break
  sleep 0.1
done
k get pods -l app=web -o 'jsonpath={range .items[*]}{.spec.containers[0].image}{"\n"}{end}' >/dev/null
expect_eq "$(printf '%s\n' "$LAST_OUT" | grep -c 'web:v2')" 10 "pods on v2 after the restart (updated before kill: $updated_before, most seen: $max)"
expect_eq "$(printf '%s\n' "$LAST_OUT" | grep -c .)" 10 'pods after the restart'
expect_eq "$(jp '{.items[*].metadata.name}' rs -l app=web | wc -w)" 2 'replica sets after the restart'
pass
