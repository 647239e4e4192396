#!/usr/bin/env bash
# Real containers, their end and the agent's restart (issue 6, must-holds 3 and 4).
#  - Graceful deletion: a container that traps SIGTERM ends in about a second although its
#    grace period is 10 s; one that ignores SIGTERM (busybox httpd as PID 1) is killed after
#    its 3 s grace. The pod object stays (Terminating) while its container runs and goes only
#    once no runc container of it is left.
#  - 50 pods created and deleted (five at a time, some deleted while still starting) leave no
#    network namespace, veth, cgroup, mount, runc container or pod directory behind.
#  - `kill -9` of the server while a 10-replica Deployment runs: after the restart the same
#    container processes run (same pid, same startedAt, same restartCount), the pods never
#    leave Ready, no pod or container is created twice, and every pod still answers HTTP.
#  - A Job of real containers completes twice; `kubectl logs job/X` prints a pod's output.
# Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "This is version 1." >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
RUNC=(runc --root "$DATA_DIR/node/runc")
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

now() { date +%s.%N; }
# elapsed START: seconds since START, as a decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
# between X LO HI: LO <= X < HI.
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN {exit !(x >= lo && x < hi)}'; }
# runc containers of pod UID (ids are <uid>-<container>).
runc_of() { "${RUNC[@]}" list -q 2>/dev/null | grep "^$1-"; }
pod_exists() { "$KUBECTL" get pod "$1" -o name >/dev/null 2>&1; }

# wait_gone POD UID: polls until the pod object is gone (at most 30 s) and, at the moment it
# is, checks that no runc container of it remains.
wait_gone() {
  local pod=$1 uid=$2
  for _ in $(seq 1 600); do
    if ! pod_exists "$pod"; then
      local left
      left=$(runc_of "$uid")
      [ -z "$left" ] || fail "pod $pod is gone but its runc containers remain: $left"
      return 0
    fi
    sleep 0.05
  done
  fail "pod $pod was not deleted within 30 s"
}

# --- Must-hold 3a: SIGTERM, the grace period, then SIGKILL ---------------------------------
cat >"$E2E_TMP/grace.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: trapper}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "echo started; trap 'echo got TERM; sleep 3; exit 0' TERM; while true; do sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: $REG/hello:v1
YAML
k apply -f "$E2E_TMP/grace.yaml" >/dev/null
wait_for true '{.status.containerStatuses[0].ready}' pod trapper
wait_for true '{.status.containerStatuses[0].ready}' pod stubborn
TRAP_UID=$(jp '{.metadata.uid}' pod trapper)
STUB_UID=$(jp '{.metadata.uid}' pod stubborn)
[ -n "$(runc_of "$TRAP_UID")" ] || fail "no runc container for pod trapper"

# The trapping container: its log (followed while it runs) shows the TERM, and the deletion
# is over once its handler exits, long before the 10 s grace period.
"$KUBECTL" logs -f trapper >"$E2E_TMP/trapper.log" 2>&1 &
LOGS_PID=$!
for _ in $(seq 1 50); do grep -q started "$E2E_TMP/trapper.log" && break; sleep 0.1; done
t0=$(now)
k delete pod trapper --wait=false >/dev/null
# One read, while the handler (3 s) still runs: the object is there, marked for deletion.
sleep 0.4
LAST_OUT=$("$KUBECTL" get pod trapper -o 'jsonpath={.metadata.deletionTimestamp}' 2>&1) \
  || fail "pod trapper vanished before its container ended"
[ -n "$LAST_OUT" ] || fail "pod trapper shows no deletionTimestamp while terminating"
wait_gone trapper "$TRAP_UID"
took=$(elapsed "$t0")
between "$took" 3 9 || fail "deleting the SIGTERM-trapping pod took ${took}s (expected 3-9 s: its handler takes ~3 s, grace is 10 s)"
for _ in $(seq 1 50); do kill -0 "$LOGS_PID" 2>/dev/null || break; sleep 0.1; done
kill "$LOGS_PID" 2>/dev/null; wait "$LOGS_PID" 2>/dev/null
grep -q "got TERM" "$E2E_TMP/trapper.log" || { cat "$E2E_TMP/trapper.log" >&2; fail "the trapping container never logged 'got TERM'"; }
echo "trapper: deleted in ${took}s (grace 10 s)"

# The container that ignores SIGTERM: still running after 2 s (Terminating), killed after the
# 3 s grace period.
STUB_CID=$(runc_of "$STUB_UID")
t0=$(now)
k delete pod stubborn --wait=false >/dev/null
sleep 2
pod_exists stubborn || fail "pod stubborn vanished within its grace period"
"${RUNC[@]}" state "$STUB_CID" 2>/dev/null | grep -q '"status": *"running"' \
  || fail "the SIGTERM-ignoring container stopped before its grace period ended"
wait_gone stubborn "$STUB_UID"
took=$(elapsed "$t0")
between "$took" 3 10 || fail "deleting the SIGTERM-ignoring pod took ${took}s (expected 3-10 s: SIGKILL after the 3 s grace)"
echo "stubborn: deleted in ${took}s (grace 3 s)"

# --- Must-hold 3b: 50 create/delete cycles leave nothing behind ----------------------------
# Listings of what pods leave on the machine; netns, veths and cgroups are machine-wide, so
# they are checked against this run's pod uids, the rest is this data dir's own.
veth_of() { printf 'bv%s' "$(printf '%s' "$1" | tr -dc '0-9a-f' | cut -c1-12)"; }
data_listing() {
  echo "# mounts"; awk -v d="$DATA_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort
  echo "# runc"; "${RUNC[@]}" list -q 2>/dev/null | sort
  echo "# pod dirs"; ls "$DATA_DIR/node/pods" 2>/dev/null | sort
}
# leftovers UID...: what remains on the machine of these pods.
leftovers() {
  local netns links cgroups
  netns=$(ip netns list 2>/dev/null | awk '{print $1}')
  links=$(ip -br link 2>/dev/null | awk '{print $1}' | cut -d@ -f1)
  cgroups=$(find /sys/fs/cgroup/*/baton -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
  for uid in "$@"; do
    printf '%s\n' "$netns" | grep -x "baton-$uid"
    printf '%s\n' "$links" | grep -x "$(veth_of "$uid")"
    printf '%s\n' "$cgroups" | grep "/baton/$uid"
  done
}
data_listing >"$E2E_TMP/before.txt"
ALL_UIDS=()
cycle_yaml() {
  local batch=$1
  for i in 1 2 3 4 5; do
    cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: cycle-$batch-$i
  labels: {cycle: "b$batch"}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
YAML
  done
}
t0=$(now)
for batch in $(seq 1 10); do
  cycle_yaml "$batch" >"$E2E_TMP/cycle.yaml"
  k apply -f "$E2E_TMP/cycle.yaml" >/dev/null
  k get pods -l "cycle=b$batch" -o 'jsonpath={.items[*].metadata.uid}' >/dev/null
  read -r -a uids <<<"$LAST_OUT"
  [ "${#uids[@]}" = 5 ] || fail "batch $batch: expected 5 pods, got ${#uids[@]}"
  ALL_UIDS+=("${uids[@]}")
  if [ "$batch" -le 7 ]; then
    # Running first, then deleted.
    ready=""
    for _ in $(seq 1 "$WAIT_TRIES"); do
      ready=$(jp '{range .items[*]}{.status.containerStatuses[0].ready}{" "}{end}' pods -l "cycle=b$batch")
      [ "$ready" = "true true true true true " ] && break
      sleep 0.1
    done
    [ "$ready" = "true true true true true " ] || fail "batch $batch did not become ready: $ready"
  elif [ "$batch" -le 9 ]; then
    sleep 0.3  # deleted while starting
  fi          # batch 10: deleted at once
  k delete pods -l "cycle=b$batch" --timeout=60s >/dev/null
done
echo "50 create/delete cycles in $(elapsed "$t0")s"
k get pods -o name >/dev/null
expect_not "cycle-"
left=""
for _ in $(seq 1 100); do
  left=$(leftovers "${ALL_UIDS[@]}")
  data_listing >"$E2E_TMP/after.txt"
  [ -z "$left" ] && cmp -s "$E2E_TMP/before.txt" "$E2E_TMP/after.txt" && break
  sleep 0.1
done
[ -z "$left" ] || fail "left behind after 50 cycles: $left"
diff "$E2E_TMP/before.txt" "$E2E_TMP/after.txt" >&2 || fail "mounts, runc containers or pod dirs left behind after 50 cycles (diff above)"
[ "$(ls "$DATA_DIR/node/logs" 2>/dev/null | grep -c cycle-)" = 0 ] || fail "log dirs of deleted pods left behind: $(ls "$DATA_DIR/node/logs")"

# --- Must-hold 4: kill -9 of the server while 10 pods run ----------------------------------
cat >"$E2E_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 10
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $REG/hello:v1
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
YAML
k apply -f "$E2E_TMP/web.yaml" >/dev/null
wait_for 10 '{.status.readyReplicas}' deploy web
# name uid ip startedAt restartCount containerID, one pod a line.
snapshot_web() {
  jp '{range .items[*]}{.metadata.name} {.metadata.uid} {.status.podIP} {.status.containerStatuses[0].state.running.startedAt} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].containerID}{"\n"}{end}' pods -l app=web | sort
}
pids_of() {
  while read -r _ _ _ _ _ cid; do
    "${RUNC[@]}" state "${cid#runc://}" 2>/dev/null | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*"status":"\([a-z]*\)".*/\1 \2/p'
    echo
  done <<<"$1"
}
BEFORE=$(snapshot_web)
[ "$(printf '%s\n' "$BEFORE" | grep -c .)" = 10 ] || fail "expected 10 web pods, got: $BEFORE"
printf '%s\n' "$BEFORE" | awk 'NF != 6 {exit 1}' || fail "incomplete pod status before the restart: $BEFORE"
PIDS_BEFORE=$(pids_of "$BEFORE")
[ "$(printf '%s\n' "$PIDS_BEFORE" | grep -c ' running$')" = 10 ] || fail "expected 10 running containers, got: $PIDS_BEFORE"
RUNC_BEFORE=$("${RUNC[@]}" list -q | sort)
[ "$(printf '%s\n' "$RUNC_BEFORE" | grep -c .)" = 10 ] || fail "expected 10 runc containers, got: $RUNC_BEFORE"

# Readiness as seen from outside, every 0.2 s, through the kill and restart (failed requests
# while the server is down are skipped).
(
  while :; do
    out=$("$KUBECTL" get pods -l app=web -o 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}' 2>/dev/null) \
      && echo "$out"
    sleep 0.2
  done
) >"$E2E_TMP/ready-watch.log" &
WATCH_PID=$!
sleep 1
kill_server
"${RUNC[@]}" list -q | sort | cmp -s - <(printf '%s\n' "$RUNC_BEFORE") || fail "containers changed when the server was killed"
sleep 1
start_server
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"
# Let the agent adopt, probe and report, and the controllers resync.
sleep 8
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null
[ "$(grep -c . "$E2E_TMP/ready-watch.log")" -ge 10 ] || fail "the readiness watch saw too little: $(cat "$E2E_TMP/ready-watch.log")"
bad=$(tr ' ' '\n' <"$E2E_TMP/ready-watch.log" | grep . | grep -v '=True$' | sort -u)
[ -z "$bad" ] || fail "pods left Ready around the restart: $bad"
counts=$(awk '{print NF}' "$E2E_TMP/ready-watch.log" | sort -u)
[ "$counts" = 10 ] || fail "the number of web pods changed around the restart (seen: $counts)"

AFTER=$(snapshot_web)
[ "$AFTER" = "$BEFORE" ] || fail "pods changed over the restart (name uid ip startedAt restarts id):
before:
$BEFORE
after:
$AFTER"
PIDS_AFTER=$(pids_of "$AFTER")
[ "$PIDS_AFTER" = "$PIDS_BEFORE" ] || fail "container processes changed over the restart: before $PIDS_BEFORE, after $PIDS_AFTER"
RUNC_AFTER=$("${RUNC[@]}" list -q | sort)
[ "$RUNC_AFTER" = "$RUNC_BEFORE" ] || fail "runc containers changed over the restart: before $RUNC_BEFORE, after $RUNC_AFTER"
jp '{.status.readyReplicas} {.status.replicas}' deploy web >/dev/null
[ "$LAST_OUT" = "10 10" ] || fail "deployment after the restart: ready/replicas $LAST_OUT"
[ "$(jp '{range .items[*]}{.metadata.name}{"\n"}{end}' rs -l app=web | grep -c .)" = 1 ] || fail "more than one ReplicaSet after the restart: $LAST_OUT"
while read -r name _ ip _ _ _; do
  body=$(curl -s --max-time 5 "http://$ip:8080/") || fail "pod $name at $ip:8080 did not answer after the restart"
  [ "$body" = "This is version 1." ] || fail "pod $name answered '$body' after the restart"
done <<<"$AFTER"
grep -q "adopted running container" "$SERVER_LOG" || fail "the server log does not mention adopting containers"

# A Job of real containers (issue 18): two completions one after the other, each container's
# exit code 0 recorded, and `kubectl logs job/X` printing what a pod of it wrote.
cat <<YAML | k apply -f - >/dev/null
apiVersion: batch/v1
kind: Job
metadata: {name: real-job}
spec:
  completions: 2
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: $REG/hello:v1
        command: [/bin/sh, -c, 'echo "job done on \$(hostname)"']
YAML
k wait --for=condition=complete job/real-job --timeout=60s
expect 'job.batch/real-job condition met'
expect_eq "$(jp '{.status.succeeded}' job real-job)" 2 'succeeded pods of the real Job'
expect_eq "$(jp '{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{end}' pods -l job-name=real-job)" \
  00 'exit codes of the real Job'
k logs job/real-job
expect 'job done on real-job-'

pass
