#!/usr/bin/env bash
# Issue 18, must-holds 2, 4 and 5 for DaemonSets and PodDisruptionBudgets, on 4 simulated
# nodes: a DaemonSet runs one pod on each node but the tainted one (and on it once the taint
# goes); it rolls with maxUnavailable 1, then with maxSurge 1, the bounds sampled throughout
# (every pod event is checked by crates/baton/tests/rollout_invariants.rs); `kubectl rollout
# status|history|undo|restart ds/X` print kubectl's lines; an eviction that would break a
# PodDisruptionBudget answers 429 with Kubernetes' message; `kubectl drain --ignore-daemonsets`
# waits for the budget, evicts, and leaves the DaemonSet's pod alone; bad input is a 422
# with Kubernetes' field path and message, and nothing is stored.
# kubectl-versions: 1.27 1.33 — ~25 s per run.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 4
WAIT_TRIES=200

k taint node sim-node-3 dedicated=infra:NoSchedule >/dev/null
expect 'node/sim-node-3 tainted'

cat >"$E2E_TMP/ds.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata:
      labels: {app: agent}
      annotations: {sim.baton.dev/ready-after: 400ms}
    spec:
      containers: [{name: agent, image: registry.local/agent:v1}]
YAML
k apply -f "$E2E_TMP/ds.yaml" >/dev/null
expect 'daemonset.apps/agent created'
wait_for 3 '{.status.numberAvailable}' ds agent
k get ds agent >/dev/null
expect 'NODE SELECTOR'
printf '%s\n' "$LAST_OUT" | grep -Eq '^agent +3 +3 +3 +3 +3 +<none> ' || fail "ds row"
nodes=$(jp '{range .items[*]}{.spec.nodeName}{"\n"}{end}' pods -l app=agent | sort | tr '\n' ' ')
expect_eq "$nodes" 'sim-node-0 sim-node-1 sim-node-2 ' 'one pod per untainted node'
# Each pod is pinned by a required node affinity on metadata.name and tolerates the node conditions.
k get pods -l app=agent -o yaml >/dev/null
expect 'key: metadata.name'
expect 'node.kubernetes.io/unschedulable'
k rollout status ds/agent --timeout=20s >/dev/null
expect 'daemon set "agent" successfully rolled out'

# The taint goes: the fourth node gets its pod.
k taint node sim-node-3 dedicated- >/dev/null
wait_for 4 '{.status.numberAvailable}' ds agent
# A NoSchedule taint would leave the running pod where it is (Kubernetes' shouldContinueRunning);
# a NoExecute taint the pod does not tolerate removes it.
k taint node sim-node-3 dedicated=infra:NoExecute >/dev/null
wait_for 3 '{.status.desiredNumberScheduled}' ds agent
wait_for 3 '{.status.currentNumberScheduled}' ds agent
wait_for 0 '{.status.numberMisscheduled}' ds agent
for _ in $(seq 1 100); do
  [ "$("$KUBECTL" get pods -l app=agent -o name | wc -l)" -eq 3 ] && break
  sleep 0.1
done
expect_eq "$("$KUBECTL" get pods -l app=agent -o name | wc -l | tr -d ' ')" 3 'pods after the NoExecute taint'

# sample MAX_ACTIVE MIN_READY: checks the pods every ~0.1 s until $E2E_TMP/stop exists.
sample() {
  local max=$1 min=$2
  rm -f "$E2E_TMP/stop" "$E2E_TMP/bounds"
  while [ ! -e "$E2E_TMP/stop" ]; do
    out=$("$KUBECTL" get pods -l app=agent -o 'jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null) || continue
    active=$(printf '%s\n' "$out" | grep -c '^|')
    ready=$(printf '%s\n' "$out" | grep -c '^|True')
    if [ "$active" -gt "$max" ] || [ "$ready" -lt "$min" ]; then
      echo "active $active ready $ready" >>"$E2E_TMP/bounds"
    fi
    echo x >>"$E2E_TMP/samples"
  done
}

# Roll with maxUnavailable 1: never more than 3 pods, never fewer than 2 ready.
sample 3 2 &
SAMPLER=$!
k set image ds/agent agent=registry.local/agent:v2 >/dev/null
k rollout status ds/agent --timeout=30s >/dev/null
expect 'Waiting for daemon set "agent" rollout to finish: '
expect 'daemon set "agent" successfully rolled out'
touch "$E2E_TMP/stop"; wait "$SAMPLER"
[ ! -s "$E2E_TMP/bounds" ] || fail "maxUnavailable bounds broken: $(cat "$E2E_TMP/bounds")"

# Roll with maxSurge 1: never more than 4 pods, never fewer than 3 ready.
sample 4 3 &
SAMPLER=$!
k patch ds agent --type merge -p '{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},"template":{"spec":{"containers":[{"name":"agent","image":"registry.local/agent:v3"}]}}}}' >/dev/null
k rollout status ds/agent --timeout=30s >/dev/null
expect 'daemon set "agent" successfully rolled out'
touch "$E2E_TMP/stop"; wait "$SAMPLER"
[ ! -s "$E2E_TMP/bounds" ] || fail "maxSurge bounds broken: $(cat "$E2E_TMP/bounds")"
[ "$(wc -l <"$E2E_TMP/samples")" -ge 5 ] || fail "too few samples during the rolls"
expect_eq "$(jp '{.items[*].spec.containers[0].image}' pods -l app=agent)" \
  'registry.local/agent:v3 registry.local/agent:v3 registry.local/agent:v3' 'images after the rolls'

# History and undo through ControllerRevisions, as kubectl reads them.
k rollout history ds/agent >/dev/null
expect 'daemonset.apps/agent'
expect 'REVISION  CHANGE-CAUSE'
printf '%s\n' "$LAST_OUT" | grep -Eq '^3 +<none>' || fail "revision 3 listed"
k rollout history ds/agent --revision=2 >/dev/null
expect 'daemonset.apps/agent with revision #2'
expect 'registry.local/agent:v2'
k rollout undo ds/agent >/dev/null
expect 'daemonset.apps/agent rolled back'
k rollout status ds/agent --timeout=30s >/dev/null
expect 'successfully rolled out'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' ds agent)" 'registry.local/agent:v2' 'image after undo'
k rollout undo ds/agent --to-revision=1 >/dev/null
expect 'rolled back'
k rollout status ds/agent --timeout=30s >/dev/null
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' ds agent)" 'registry.local/agent:v1' 'image after undo to 1'
k_fails rollout undo ds/agent --to-revision=9
expect 'unable to find specified revision 9 in history'
k rollout restart ds/agent >/dev/null
expect 'daemonset.apps/agent restarted'
k rollout status ds/agent --timeout=30s >/dev/null
expect 'successfully rolled out'

# A PodDisruptionBudget that allows nothing: eviction answers 429.
k create deployment web --image=registry.local/web:v1 --replicas=2 >/dev/null
wait_for 2 '{.status.availableReplicas}' deployment web
cat >"$E2E_TMP/pdb.yaml" <<'YAML'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}
YAML
k apply -f "$E2E_TMP/pdb.yaml" >/dev/null
wait_for 2 '{.status.currentHealthy}' pdb web
k get pdb web >/dev/null
printf '%s\n' "$LAST_OUT" | grep -Eq '^web +2 +N/A +0 ' || fail "pdb row"
POD=$(jp '{.items[0].metadata.name}' pods -l app=web)
NODE=$(jp '{.spec.nodeName}' pod "$POD")
out=$(curl_api POST "/api/v1/namespaces/default/pods/$POD/eviction" -H 'Content-Type: application/json' \
  -d "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"$POD\"}}")
LAST_OUT=$out
expect "Cannot evict pod as it would violate the pod's disruption budget."
expect '"reason":"TooManyRequests"'
expect 'The disruption budget web needs 2 healthy pods and has 2 currently'
expect '429'
k get pod "$POD" >/dev/null

# kubectl drain waits for the budget; one more replica lets it through.
"$KUBECTL" drain "$NODE" --ignore-daemonsets --timeout=40s >"$E2E_TMP/drain.out" 2>&1 &
DRAIN=$!
for _ in $(seq 1 100); do grep -q 'will retry after 5s' "$E2E_TMP/drain.out" && break; sleep 0.1; done
LAST_OUT=$(cat "$E2E_TMP/drain.out")
expect "node/$NODE cordoned"
expect "error when evicting pods/\"$POD\" -n \"default\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
k scale deployment web --replicas=3 >/dev/null
wait "$DRAIN" || { LAST_OUT=$(cat "$E2E_TMP/drain.out"); fail "drain failed"; }
LAST_OUT=$(cat "$E2E_TMP/drain.out")
expect "pod/$POD evicted"
expect "node/$NODE drained"
expect 'Warning: ignoring DaemonSet-managed Pods: default/agent-'
k_fails get pod "$POD"
expect 'not found'
# The DaemonSet's pod on the drained node stays.
expect_eq "$(jp '{range .items[*]}{.spec.nodeName}{" "}{end}' pods -l app=agent | tr ' ' '\n' | grep -c "^$NODE\$")" 1 'daemon pod on the drained node'
wait_for 3 '{.status.availableReplicas}' deployment web

# Bad input: 422 with Kubernetes' path and message, nothing stored.
cat >"$E2E_TMP/bad.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: bad}
spec:
  selector: {matchLabels: {app: bad}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: c, image: registry.local/agent:v1}]}
YAML
k_fails apply -f "$E2E_TMP/bad.yaml"
expect 'The DaemonSet "bad" is invalid: '
expect 'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`'
expect 'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero'
k_fails get ds bad
expect 'not found'
cat >"$E2E_TMP/badpdb.yaml" <<'YAML'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: badpdb}
spec: {minAvailable: "120%", selector: {matchLabels: {app: web}}}
YAML
k_fails apply -f "$E2E_TMP/badpdb.yaml"
expect 'The PodDisruptionBudget "badpdb" is invalid: spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"}: must not be greater than 100%'
k_fails get pdb badpdb
expect 'not found'

pass
