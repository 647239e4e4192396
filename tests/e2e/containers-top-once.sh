#!/usr/bin/env bash
# Metrics (issue 6, Scope "Metrics"): `kubectl top pods` and `kubectl top nodes` over
# metrics.k8s.io/v1beta1, with figures the node agent reads from the containers' cgroups
# (CPU as a rate over a window, memory working set). Two real pods run, one with a second
# container, so that --containers has two rows. Simulated
# nodes beside the agent have no kubelet endpoint and must not break the lists. Needs root
# and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "This is version 1." >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server --simulated-nodes 1
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# until_ok WHAT CMD...: retries CMD every 0.2 s, WAIT_TRIES times.
until_ok() {
  local what=$1; shift
  for _ in $(seq 1 "$WAIT_TRIES"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "timed out waiting for $what"
}

# Discovery lists the group, with both resources.
k api-versions >/dev/null
expect "metrics.k8s.io/v1beta1"
k api-resources --api-group=metrics.k8s.io >/dev/null
expect "NodeMetrics"
expect "PodMetrics"

for p in top-a top-b; do
  extra=""
  if [ "$p" = top-a ]; then
    extra="  - name: sidecar
    image: $REG/hello:v1
    command: [/bin/sleep, '3600']"
  fi
  cat >"$E2E_TMP/$p.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $p
  labels: {app: top, which: $p}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: hello
    image: $REG/hello:v1
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
$extra
YAML
  k apply -f "$E2E_TMP/$p.yaml" >/dev/null
done
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' pod top-a
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' pod top-b

# The raw API: a NodeMetricsList with this node (not the simulated one), PodMetrics with
# memory > 0 for every container.
k get --raw /apis/metrics.k8s.io/v1beta1/nodes >/dev/null
expect '"kind":"NodeMetricsList"'
expect "\"name\":\"$NODE\""
expect '"window"'
k get --raw /apis/metrics.k8s.io/v1beta1/nodes/"$NODE" >/dev/null
expect '"kind":"NodeMetrics"'
k get --raw "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=which%3Dtop-b" >/dev/null
expect '"name":"top-b"'
expect_not '"name":"top-a"'
mem=$(printf '%s' "$LAST_OUT" | grep -o '"memory":"[0-9]*' | head -n1 | grep -o '[0-9]*$')
[ "${mem:-0}" -gt 0 ] || fail "top-b's memory working set is '$mem'"

# Every container of both pods has a memory working set > 0.
k get --raw /apis/metrics.k8s.io/v1beta1/namespaces/default/pods >/dev/null
[ "$(printf '%s' "$LAST_OUT" | grep -o '"memory":"[0-9]*' | grep -vc ':"0$')" = 3 ] || fail "expected 3 containers with memory > 0"

k top pods >/dev/null
for p in top-a top-b; do
  line=$(printf '%s\n' "$LAST_OUT" | awk -v p="$p" '$1 == p')
  [ -n "$line" ] || fail "kubectl top pods does not list $p"
  cpu=$(awk '{print $2}' <<<"$line"); memory=$(awk '{print $3}' <<<"$line")
  [[ "$cpu" =~ ^[0-9]+m$ ]] || fail "$p: CPU(cores) is '$cpu'"
  [[ "$memory" =~ ^[0-9]+Mi$ ]] || fail "$p: MEMORY(bytes) is '$memory'"
done
expect "CPU(cores)"

k top pods -l which=top-b >/dev/null
expect "top-b"
expect_not "top-a"

k top pod top-a --containers >/dev/null
expect "hello"
expect "sidecar"

k top nodes >/dev/null
expect "$NODE"
line=$(printf '%s\n' "$LAST_OUT" | awk -v n="$NODE" '$1 == n')
[[ "$(awk '{print $2}' <<<"$line")" =~ ^[0-9]+m$ ]] || fail "node CPU is not in millicores: $line"
[[ "$(awk '{print $4}' <<<"$line")" =~ ^[1-9][0-9]*Mi$ ]] || fail "node memory is not positive: $line"
k top node "$NODE" >/dev/null
expect "$NODE"

# Not found, in the API's words.
k_fails top pod no-such-pod >/dev/null
expect "not found"

pass
