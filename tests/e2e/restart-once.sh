#!/usr/bin/env bash
# The node agent across `kill -9` of the server (issue 13, must-hold 3), with real containers:
#  - a completed `restartPolicy: Never` pod stays Succeeded, its container not run again;
#  - a container that exits with code 3 while the server is down shows exit code 3 afterwards
#    (its monitor recorded it), and its Never pod is Failed;
#  - 20 pods, kill -9, 20 more pods: 40 distinct pod IPs, each the address of its pod's
#    network namespace, and the first 20 containers are the same processes as before.
# Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-600}

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "This is version 1." >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
IMG="127.0.0.1:${REGISTRY_PORT:-5000}/hello:v1"
start_server
RUNC=(runc --root "$DATA_DIR/node/runc")
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

cat >"$E2E_TMP/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: $IMG, command: ["sh", "-c", "echo finished"]}
---
apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $IMG
    command: ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3"]
YAML
k apply -f "$E2E_TMP/pods.yaml" >/dev/null
k create deployment first --image="$IMG" --replicas=20 >/dev/null
wait_for Succeeded '{.status.phase}' pod done
wait_for Running '{.status.phase}' pod late
wait_for 20 '{.status.readyReplicas}' deployment first
DONE_FINISHED=$(jp '{.status.containerStatuses[0].state.terminated.finishedAt}' pod done)
LATE_CID=$(jp '{.metadata.uid}' pod late)-c

# "name uid ip pid-of-its-container" of the pods of deployment $1, sorted.
pods_of() {
  "$KUBECTL" get pods -l "app=$1" -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.uid} {.status.podIP}{"\n"}{end}' \
    | while read -r name uid ip; do
        echo "$name $uid $ip $("${RUNC[@]}" state "$uid-hello" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')"
      done | sort
}
BEFORE=$(pods_of first)

# --- kill -9; the container of `late` exits with 3 while no server runs ---------------------
kill_server
"${RUNC[@]}" exec "$LATE_CID" sh -c ": > /tmp/go" || fail "could not tell the container to exit"
for _ in $(seq 1 100); do
  "${RUNC[@]}" state "$LATE_CID" 2>/dev/null | grep -q '"status": *"stopped"' && break
  sleep 0.1
done
"${RUNC[@]}" state "$LATE_CID" 2>/dev/null | grep -q '"status": *"stopped"' \
  || fail "the container of pod late did not exit while the server was down"
t0=$(date +%s.%N)
start_server

wait_for Failed '{.status.phase}' pod late
expect_eq "$(jp '{.status.containerStatuses[0].state.terminated.exitCode}' pod late)" 3 "exit code of the container that exited while the server was down"
expect_eq "$(jp '{.status.containerStatuses[0].state.terminated.reason}' pod late)" Error "its reason"

# The completed pod: Succeeded as before, its container not run again.
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"
expect_eq "$(jp '{.status.phase}' pod done)" Succeeded "phase of the completed Never pod after the restart"
expect_eq "$(jp '{.status.containerStatuses[0].restartCount}' pod done)" 0 "restartCount of the completed pod"
expect_eq "$(jp '{.status.containerStatuses[0].state.terminated.finishedAt}' pod done)" "$DONE_FINISHED" "finishedAt of the completed pod"
DONE_UID=$(jp '{.metadata.uid}' pod done)
[ "$(ls "$DATA_DIR/node/logs/default_done_$DONE_UID/c")" = "0.log" ] || fail "the completed container ran again: $(ls "$DATA_DIR/node/logs/default_done_$DONE_UID/c")"

# --- 20 more pods: no address is handed out twice -------------------------------------------
k create deployment second --image="$IMG" --replicas=20 >/dev/null
wait_for 20 '{.status.readyReplicas}' deployment second
wait_for 20 '{.status.readyReplicas}' deployment first
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "restart to 40 ready pods: ${took}s"
AFTER=$(pods_of first)
[ "$BEFORE" = "$AFTER" ] || { LAST_OUT="before:
$BEFORE
after:
$AFTER"; fail "the first 20 pods changed (name, uid, IP or container process) across the restart"; }
ALL=$( (pods_of first; pods_of second) )
IPS=$(printf '%s\n' "$ALL" | awk '{print $3}' | sort)
expect_eq "$(printf '%s\n' "$IPS" | grep -c .)" 40 "pods with an IP"
expect_eq "$(printf '%s\n' "$IPS" | sort -u | grep -c .)" 40 "distinct pod IPs"
while read -r name uid ip _; do
  have=$(ip -n "baton-$uid" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
  [ "$have" = "$ip" ] || fail "pod $name has IP $ip but its network namespace has '$have'"
done <<<"$ALL"
pass
