#!/usr/bin/env bash
# Real containers (issue 6, must-holds 1 and 2): an image built here FROM scratch with buildah
# is pushed to Debian's docker-registry on 127.0.0.1 and run by a 3-replica Deployment on this
# machine's node agent (runc, a netns and veth per pod). Each pod answers HTTP on its pod IP;
# `kubectl logs` and `kubectl exec` work; a killed container restarts, a deleted pod is
# replaced, a crash loop backs off, liveness failures restart and readiness failures only
# take the pod out of Ready. Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry
build_hello_image hello:v1 "This is version 1." >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
RUNC=(runc --root "$DATA_DIR/node/runc")

# until_ok WHAT CMD...: retries CMD every 0.2 s, WAIT_TRIES times.
until_ok() {
  local what=$1; shift
  for _ in $(seq 1 "$WAIT_TRIES"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "timed out waiting for $what"
}

NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

cat >"$E2E_TMP/hello.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 3
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: $REG/hello:v1
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
YAML
k apply -f "$E2E_TMP/hello.yaml" >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy hello

# Must-hold 1: every pod answers on its own IP, logs and exec work.
k get pods -l app=hello -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}' >/dev/null
PODS=$LAST_OUT
[ "$(printf '%s\n' "$PODS" | grep -c .)" = 3 ] || fail "expected 3 pods, got: $PODS"
while read -r name ip; do
  [ -n "$ip" ] || fail "pod $name has no IP"
  body=$(curl -s --max-time 5 "http://$ip:8080/") || fail "pod $name at $ip:8080 did not answer"
  [ "$body" = "This is version 1." ] || fail "pod $name answered '$body'"
done <<<"$PODS"
POD=$(printf '%s\n' "$PODS" | head -n1 | cut -d' ' -f1)
POD_IP=$(printf '%s\n' "$PODS" | head -n1 | cut -d' ' -f2)
[ "$(printf '%s\n' "$PODS" | cut -d' ' -f2 | sort -u | wc -l)" = 3 ] || fail "pod IPs are not distinct: $PODS"

# httpd logs each request just after answering it: allow it a moment.
until_ok "kubectl logs $POD to show the request" bash -c "\"$KUBECTL\" logs $POD | grep -q response:200"
k logs "$POD" >/dev/null
expect "response:200"
k logs "$POD" --tail=1 >/dev/null
[ "$(printf '%s\n' "$LAST_OUT" | grep -c .)" -le 1 ] || fail "--tail=1 gave more than one line"
# The log file holds CRI records (time, stream, P/F): kubectl sees the decoded lines, and
# --timestamps, --since, --since-time, --tail and --limit-bytes act as with the kubelet.
expect_not " stdout F "
[ "$(printf '%s\n' "$LAST_OUT" | grep -c .)" = 1 ] || fail "--tail=1 did not give one line"
k logs "$POD" --timestamps >/dev/null
printf '%s\n' "$LAST_OUT" | grep -Eqv '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z ' \
  && fail "a --timestamps line does not start with an RFC 3339 time"
expect "response:200"
k logs "$POD" --since=1h >/dev/null
expect "response:200"
k logs "$POD" --since-time="$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
[ -z "$LAST_OUT" ] || fail "--since-time in the future printed lines"
k logs "$POD" --timestamps --tail=1 --since=1h >/dev/null
[ "$(printf '%s\n' "$LAST_OUT" | grep -c .)" = 1 ] || fail "--tail=1 --since=1h did not give one line"
[ "$("$KUBECTL" logs "$POD" --limit-bytes=7 | wc -c)" = 7 ] || fail "--limit-bytes=7 did not give 7 bytes"
# Bad options come back as the Status the agent answers: 400 undecodable, 422 invalid.
k_fails get --raw "/api/v1/namespaces/default/pods/$POD/log?tailLines=x" >/dev/null
expect "BadRequest"
expect "tailLines"
k_fails get --raw "/api/v1/namespaces/default/pods/$POD/log?limitBytes=0" >/dev/null
expect "limitBytes: Invalid value: 0: must be greater than 0"

k exec "$POD" -- cat /etc/hostname >/dev/null
[ "$LAST_OUT" = "$POD" ] || fail "exec cat /etc/hostname gave '$LAST_OUT', expected $POD"
LAST_OUT=$("$KUBECTL" exec "$POD" -- sh -c 'exit 3' 2>&1); code=$?
[ "$code" = 3 ] || fail "exec exit code $code, expected 3"

# Must-hold 2a: killing the container's process restarts it in place.
CID=$(k get pod "$POD" -o jsonpath='{.status.containerStatuses[0].containerID}')
CID=${CID#runc://}
PID=$("${RUNC[@]}" state "$CID" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
[ -n "$PID" ] || fail "no runc pid for $CID"
kill -9 "$PID"
wait_for 1 '{.status.containerStatuses[0].restartCount}' pod "$POD"
wait_for true '{.status.containerStatuses[0].ready}' pod "$POD"
k get pod "$POD" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}' >/dev/null
[ "$LAST_OUT" = 137 ] || fail "lastState exit code $LAST_OUT, expected 137"

# Must-hold 2b: a deleted pod is replaced by the ReplicaSet (and its container is gone).
k delete pod "$POD" >/dev/null
"${RUNC[@]}" list -q | grep -qx "$CID" && fail "container $CID still exists after its pod was deleted"
wait_for 3 '{.status.readyReplicas}' deploy hello
curl -s --max-time 2 "http://$POD_IP:8080/" >/dev/null && fail "the deleted pod's IP $POD_IP still answers"

# Must-hold 2c: crash loop backs off; liveness failure restarts; readiness failure does not.
cat >"$E2E_TMP/probes.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "echo crashing; printf %040000d 0; echo; exit 2"]
---
apiVersion: v1
kind: Pod
metadata: {name: unlive}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; exec sleep 600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
YAML
k apply -f "$E2E_TMP/probes.yaml" >/dev/null
wait_for CrashLoopBackOff '{.status.containerStatuses[0].state.waiting.reason}' pod crasher
k get pod crasher -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}' >/dev/null
[ "$LAST_OUT" = 2 ] || fail "crasher's last exit code $LAST_OUT, expected 2"
k logs crasher --previous >/dev/null
expect "crashing"
# A 40000-byte line is three records in the file (16 KiB each at most), one line in the
# output, with one timestamp.
"$KUBECTL" logs crasher --previous --timestamps >"$E2E_TMP/long.log" || fail "kubectl logs --previous --timestamps failed"
[ "$(awk 'length($0) == 40031' "$E2E_TMP/long.log" | grep -c .)" = 1 ] \
  || fail "the 40000-byte line did not come back whole with one timestamp: $(awk '{print length($0)}' "$E2E_TMP/long.log")"
k get pods crasher >/dev/null
expect "CrashLoopBackOff"
until_ok "unlive restarted by its liveness probe" \
  bash -c "\"$KUBECTL\" get pod unlive -o jsonpath='{.status.containerStatuses[0].restartCount}' | grep -qv '^0\$'"
wait_for true '{.status.containerStatuses[0].ready}' pod unready
k exec unready -- rm /tmp/ready >/dev/null
wait_for False '{.status.conditions[?(@.type=="Ready")].status}' pod unready
k get pod unready -o jsonpath='{.status.containerStatuses[0].restartCount}' >/dev/null
[ "$LAST_OUT" = 0 ] || fail "a readiness failure restarted the container (restartCount $LAST_OUT)"

pass
