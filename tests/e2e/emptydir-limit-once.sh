#!/usr/bin/env bash
# Issue 16: a disk-backed emptyDir's `sizeLimit` is enforced as the kubelet's eviction manager
# does, with real containers. A ReplicaSet's pod writes 3 MB into an `emptyDir: {sizeLimit:
# 1Mi}`: within the 10 s measuring period it is evicted — `kubectl get pod` shows Failed /
# Evicted with the kubelet's message, `kubectl get events` the Warning `Evicted` event, its
# container was stopped (SIGKILL after the eviction's 1 s grace: exit 137) and never
# restarted, its emptyDir's data left the disk, the pod object stays and the ReplicaSet
# replaces it. A pod writing 500 kB into the same limit keeps running.
# Containers' `ephemeral-storage` limits likewise: pod `layer`'s container `fill` (limit 2Mi,
# its sibling 8Mi) writes 4 MiB into its own filesystem (its writable layer, no volume) and the
# pod is evicted with the kubelet's container-level message; pod `whole`, whose only container
# has the 2Mi limit and writes the same, gets the pod-level message (the kubelet checks the pod
# before its containers). Both: Failed / Evicted, the Warning event, exit 137, no restart, the
# writable layer gone from the disk, the logs kept. Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-300}

start_registry || fail "starting the registry"
build_hello_image hello:v1 "emptydir" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
IMAGE="127.0.0.1:${REGISTRY_PORT:-5000}/hello:v1"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# writer BYTES: a pod template whose container writes BYTES into its 1Mi emptyDir, then sleeps.
writer() {
  cat <<EOF
    spec:
      terminationGracePeriodSeconds: 30
      containers:
      - name: fill
        image: $IMAGE
        command: ["sh", "-c", "head -c $1 /dev/zero > /scratch/fill && echo written && sleep 3600"]
        volumeMounts: [{name: scratch, mountPath: /scratch}]
      volumes:
      - name: scratch
        emptyDir: {sizeLimit: 1Mi}
EOF
}

{
  cat <<EOF
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: fill}
spec:
  replicas: 1
  selector: {matchLabels: {app: fill}}
  template:
    metadata: {labels: {app: fill}}
EOF
  writer 3000000
  cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: small, labels: {app: small}}
EOF
  writer 500000 | sed 's/^    //'
  cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: layer}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: fill
    image: $IMAGE
    command: ["sh", "-c", "head -c 4194304 /dev/zero > /fill && echo written && sleep 3600"]
    resources: {limits: {ephemeral-storage: 2Mi}}
  - name: idle
    image: $IMAGE
    command: ["sleep", "3600"]
    resources: {limits: {ephemeral-storage: 8Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: whole}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: fill
    image: $IMAGE
    command: ["sh", "-c", "head -c 4194304 /dev/zero > /fill && echo written && sleep 3600"]
    resources: {limits: {ephemeral-storage: 2Mi}}
EOF
} >"$E2E_TMP/pods.yaml"
k apply -f "$E2E_TMP/pods.yaml" >/dev/null
wait_for Running '{.status.phase}' pod small
STARTED=$(date +%s)

# The ReplicaSet's first pod is evicted.
EVICTED=""
for _ in $(seq 1 "$WAIT_TRIES"); do
  LAST_OUT=$("$KUBECTL" get pods -l app=fill \
    -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.reason}{"\n"}{end}' 2>&1)
  EVICTED=$(printf '%s\n' "$LAST_OUT" | awk '$2 == "Failed" && $3 == "Evicted" {print $1; exit}')
  [ -n "$EVICTED" ] && break
  sleep 0.1
done
[ -n "$EVICTED" ] || fail "no pod of the ReplicaSet was evicted"
echo "evicted $EVICTED after $(($(date +%s) - STARTED)) s"

MESSAGE='Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
expect_eq "$(jp '{.status.message}' pod "$EVICTED")" "$MESSAGE" "the evicted pod's message"
# Its container was stopped (busybox sh as pid 1 ignores SIGTERM: SIGKILL after 1 s), not
# restarted, after it had written.
wait_for 137 '{.status.containerStatuses[0].state.terminated.exitCode}' pod "$EVICTED"
# kubectl's STATUS is the pod's reason until a container's terminated reason replaces it (the
# printer's rule): Evicted for the second or so before the SIGKILL, Error after it.
k get pod "$EVICTED"
expect "Error"
expect_eq "$(jp '{.status.containerStatuses[0].restartCount}' pod "$EVICTED")" 0 "restarts"
k logs "$EVICTED"
expect "written"
k get events
expect "Warning   Evicted            pod/$EVICTED"
expect "${MESSAGE% }"   # the table trims the message's trailing space
expect_eq "$(jp '{.items[?(@.reason=="Evicted")].message}' events \
  --field-selector "involvedObject.name=$EVICTED")" "$MESSAGE" "the Evicted event's message"
# The pod object stays; the ReplicaSet made another one. The evicted data left the disk.
sleep 2
UID_=$(jp '{.metadata.uid}' pod "$EVICTED")
[ -d "$DATA_DIR/node/pods/$UID_" ] || fail "the evicted pod's directory is not where expected"
[ ! -e "$DATA_DIR/node/pods/$UID_/volumes/scratch" ] || fail "the evicted pod's emptyDir is still on disk"
k get pod "$EVICTED" -o 'jsonpath={.status.phase}'
expect "Failed"
k get pods -l app=fill -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}'
[ "$(printf '%s\n' "$LAST_OUT" | grep -cv "^$EVICTED\$")" -ge 1 ] \
  || fail "the ReplicaSet did not replace the evicted pod"

# check_evicted POD MESSAGE: POD was evicted over its ephemeral-storage limit with MESSAGE;
# its container `fill` had written, was killed after the 1 s grace and not restarted; its
# writable layer left the disk, its logs did not.
check_evicted() {
  local pod=$1 message=$2
  wait_for "Failed Evicted" '{.status.phase} {.status.reason}' pod "$pod"
  expect_eq "$(jp '{.status.message}' pod "$pod")" "$message" "$pod's message"
  wait_for 137 '{.status.containerStatuses[?(@.name=="fill")].state.terminated.exitCode}' pod "$pod"
  expect_eq "$(jp '{.status.containerStatuses[?(@.name=="fill")].restartCount}' pod "$pod")" 0 \
    "$pod's restarts"
  k logs "$pod" -c fill
  expect "written"
  expect_eq "$(jp '{.items[?(@.reason=="Evicted")].message}' events \
    --field-selector "involvedObject.name=$pod")" "$message" "$pod's Evicted event"
  k get events --field-selector "involvedObject.name=$pod"
  expect "Warning   Evicted"
  local uid
  uid=$(jp '{.metadata.uid}' pod "$pod")
  [ -d "$DATA_DIR/node/pods/$uid" ] || fail "$pod's directory is not where expected"
  for _ in $(seq 1 50); do
    [ -e "$DATA_DIR/node/pods/$uid/fill/upper/fill" ] || break
    sleep 0.1
  done
  [ ! -e "$DATA_DIR/node/pods/$uid/fill/upper/fill" ] || fail "$pod's writable layer is still on disk"
}
check_evicted layer 'Container fill exceeded its local ephemeral storage limit "2Mi". '
check_evicted whole 'Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. '

# 500 kB stay within 1Mi: measured at least once since, still running.
while [ $(($(date +%s) - STARTED)) -lt 12 ]; do sleep 1; done
expect_eq "$(jp '{.status.phase} {.status.reason}' pod small)" "Running " "the pod within its limit"
k get events --field-selector involvedObject.name=small
expect_not "Evicted"

pass
