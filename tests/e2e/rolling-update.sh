#!/usr/bin/env bash
# Issue 5: `kubectl rolling-update` restored as the kubectl plugin `kubectl-rolling_update`.
# The seed's example on a 1-replica and a 5-replica controller (the printed lines, the final
# controller, and a pod watcher checking the count never leaves the printed bounds); an
# update killed midway resumed by the same command, and one interrupted with Ctrl-C rolled
# back; pods that never become Ready time out, nothing serving is deleted, --rollback
# restores; the old command's errors; --progress lines on stderr only.
# kubectl-versions: 1.27 1.33 — kubectl only finds and runs the plugin (its output is ours),
# so the oldest and newest kubectl bound the range.
#
# The plugin must be built in the same cargo profile as $BATON (it is looked for next to it,
# in target/debug or target/release): `cargo build -p baton -p baton-rolling-update`.
# kubectl refuses flags before a plugin's name ("flags cannot be placed before plugin
# name: -n"), so the seed's `kubectl -n spark-cluster rolling-update …` is run as
# `kubectl rolling-update -n spark-cluster …`; everything else is the seed's text.
source "$(dirname "$0")/lib.sh"
PLUGIN_DIR=$(cd "$(dirname "$BATON")" && pwd)
[ -x "$PLUGIN_DIR/kubectl-rolling_update" ] ||
  fail "kubectl-rolling_update not found next to $BATON (cargo build -p baton-rolling-update in the same profile)"
export PATH="$PLUGIN_DIR:$PATH"
start_server --simulated-nodes 3

NS=spark-cluster
FAST=(--update-period=1s --poll-interval=200ms)
OLD_IMAGE=sz-pg-oam-docker-hub-001.tendcloud.com/library/zeppelin:0.7.0
NEW_IMAGE=sz-pg-oam-docker-hub-001.tendcloud.com/library/zeppelin:0.7.1


# make_rc NAME REPLICAS LABEL [IMAGE]: a ReplicationController selecting app=LABEL.
make_rc() {
  "$KUBECTL" -n "$NS" create -f - >/dev/null <<RC || fail "creating rc $1"
apiVersion: v1
kind: ReplicationController
metadata: {name: $1}
spec:
  replicas: $2
  selector: {app: $3}
  template:
    metadata: {labels: {app: $3}}
    spec: {containers: [{name: $3, image: ${4:-$OLD_IMAGE}}]}
RC
  wait_for "$2" '{.status.readyReplicas}' -n "$NS" rc "$1"
}

# start_watcher LABEL FLOOR: watches the pods of app=LABEL; stop_watcher prints
# "max_active min_ready events" over the watch (terminating pods are not counted; Ready
# pods are counted from when FLOOR of them were first seen).
start_watcher() {
  WATCH_OUT="$E2E_TMP/watch.$1"
  "$KUBECTL" -n "$NS" get pods -l "app=$1" -w --output-watch-events -o json 2>/dev/null |
    python3 -c '
import json, sys
out, floor, pods, buf = sys.argv[1], int(sys.argv[2]), {}, ""
max_active, min_ready, events, armed = 0, -1, 0, False
for line in sys.stdin:
    buf += line
    try:
        ev, buf = json.loads(buf), ""
    except ValueError:
        continue
    obj = ev.get("object", {})
    name = obj.get("metadata", {}).get("name")
    if ev.get("type") == "DELETED":
        pods.pop(name, None)
    else:
        pods[name] = obj
    active = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in active if any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in p.get("status", {}).get("conditions", []))]
    events += 1
    max_active = max(max_active, len(active))
    # The initial list arrives one pod at a time: count Ready pods once the floor is reached.
    armed = armed or len(ready) >= floor
    if armed:
        min_ready = len(ready) if min_ready < 0 else min(min_ready, len(ready))
    with open(out, "w") as f:
        f.write("%d %d %d\n" % (max_active, min_ready, events))
' "$WATCH_OUT" "$2" &
  WATCH_PID=$!
  for _ in $(seq 1 100); do [ -s "$WATCH_OUT" ] && return 0; sleep 0.1; done
  fail "pod watcher for app=$1 saw nothing"
}
stop_watcher() {
  sleep 0.5
  pkill -P "$WATCH_PID" 2>/dev/null; kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null
  cat "$WATCH_OUT"
}

# check_bounds LABEL MAX MIN: the watched pod count stayed within the printed bounds.
check_bounds() {
  local max min events
  read -r max min events < <(stop_watcher)
  [ "$max" -le "$2" ] || fail "app=$1: $max pods at once, over the printed bound $2"
  [ "$min" -ge "$3" ] || fail "app=$1: only $min Ready pods at one point, under the printed bound $3"
  [ "$events" -gt 3 ] || fail "app=$1: the watcher saw only $events events"
}

# hashless: replaces each 32-hex hash by <hash>.
hashless() { sed -E 's/-[0-9a-f]{32}/-<hash>/g'; }

k create namespace "$NS" >/dev/null

# --- 1. The seed's example, 1 replica.
make_rc zeppelin-controller 1 zeppelin
start_watcher zeppelin 1
k rolling-update -n spark-cluster zeppelin-controller --image sz-pg-oam-docker-hub-001.tendcloud.com/library/zeppelin:0.7.1 "${FAST[@]}" >/dev/null
got=$(printf '%s\n' "$LAST_OUT" | hashless)
want='Created zeppelin-controller-<hash>
Scaling up zeppelin-controller-<hash> from 0 to 1, scaling down zeppelin-controller from 1 to 0 (keep 1 pods available, don'"'"'t exceed 2 pods)
Scaling zeppelin-controller-<hash> up to 1
Scaling zeppelin-controller down to 0
Update succeeded. Deleting old controller: zeppelin-controller
Renaming zeppelin-controller-<hash> to zeppelin-controller
replicationcontroller "zeppelin-controller" rolling updated'
[ "$got" = "$want" ] || fail "seed output differs:
$got"
check_bounds zeppelin 2 1
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' -n "$NS" rc zeppelin-controller)" "$NEW_IMAGE" 'image after the update'
wait_for 1 '{.status.readyReplicas}' -n "$NS" rc zeppelin-controller
k -n "$NS" get rc -o name >/dev/null
expect_eq "$LAST_OUT" 'replicationcontroller/zeppelin-controller' 'controllers left'
hash=$(jp '{.spec.selector.deployment}' -n "$NS" rc zeppelin-controller)
[ "${#hash}" = 32 ] || fail "deployment label on the selector: '$hash'"
k -n "$NS" get pods -l app=zeppelin -o 'jsonpath={range .items[*]}{.metadata.labels.deployment} {.spec.containers[0].image}{"\n"}{end}' >/dev/null
expect_eq "$LAST_OUT" "$hash $NEW_IMAGE" 'pods after the update'

# --- 2. Five replicas, with --progress: stdout keeps the classic lines, progress goes to stderr.
make_rc spark-worker 5 worker
start_watcher worker 5
"$KUBECTL" rolling-update spark-worker -n "$NS" --image="$NEW_IMAGE" "${FAST[@]}" --progress \
  >"$E2E_TMP/ru.out" 2>"$E2E_TMP/ru.err" || { LAST_OUT=$(cat "$E2E_TMP/ru.out" "$E2E_TMP/ru.err"); fail "5-replica update failed"; }
LAST_OUT=$(hashless <"$E2E_TMP/ru.out")
expect 'Scaling up spark-worker-<hash> from 0 to 5, scaling down spark-worker from 5 to 0 (keep 5 pods available, don'"'"'t exceed 6 pods)'
expect 'Scaling spark-worker-<hash> up to 1'
expect 'Scaling spark-worker down to 4'
expect 'Scaling spark-worker down to 0'
expect 'Renaming spark-worker-<hash> to spark-worker'
expect 'replicationcontroller "spark-worker" rolling updated'
expect_not 'progress:'
[ "$(head -n 1 "$E2E_TMP/ru.out" | hashless)" = 'Created spark-worker-<hash>' ] || fail "first line: $(head -n 1 "$E2E_TMP/ru.out")"
LAST_OUT=$(cat "$E2E_TMP/ru.err")
expect 'progress: ready 5 (keep 5), updated 1/5 (spark-worker-'
expect 'old 4 (spark-worker)'
check_bounds worker 6 5
wait_for 5 '{.status.readyReplicas}' -n "$NS" rc spark-worker
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' -n "$NS" rc spark-worker)" "$NEW_IMAGE" '5-replica image'

# --- 3a. Killed midway: the same command again resumes and finishes.
make_rc interpreter 4 interp
start_watcher interp 4
"$KUBECTL" rolling-update interpreter -n "$NS" --image="$NEW_IMAGE" "${FAST[@]}" >"$E2E_TMP/kill.out" 2>&1 &
ru_pid=$!
for _ in $(seq 1 200); do
  next=$("$KUBECTL" -n "$NS" get rc -o 'jsonpath={range .items[*]}{.metadata.name} {.spec.replicas}{"\n"}{end}' | awk '$1 ~ /^interpreter-/ && $2 >= 2 {print $1}')
  [ -n "$next" ] && break
  sleep 0.1
done
[ -n "$next" ] || { LAST_OUT=$(cat "$E2E_TMP/kill.out"); fail "the update never reached 2 new replicas"; }
kill -9 "$ru_pid"; wait "$ru_pid" 2>/dev/null
expect_eq "$(jp '{.metadata.annotations.kubectl\.kubernetes\.io/next-controller-id}' -n "$NS" rc interpreter)" "$next" 'next-controller-id'
[ -n "$(jp '{.metadata.annotations.kubectl\.kubernetes\.io/desired-replicas}' -n "$NS" rc "$next")" ] || fail "desired-replicas annotation missing on $next"
k rolling-update interpreter -n "$NS" --image="$NEW_IMAGE" "${FAST[@]}" >/dev/null
expect "Found existing update in progress ($next), resuming."
expect "Continuing update with existing controller $next."
expect 'replicationcontroller "interpreter" rolling updated'
check_bounds interp 5 4
wait_for 4 '{.status.readyReplicas}' -n "$NS" rc interpreter
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' -n "$NS" rc interpreter)" "$NEW_IMAGE" 'resumed image'
k -n "$NS" get rc -o name >/dev/null
expect_not 'interpreter-'

# --- 3b. Ctrl-C midway, then --rollback restores the old controller and its size.
make_rc notebook 3 notebook
"$KUBECTL" rolling-update notebook -n "$NS" --image="$NEW_IMAGE" "${FAST[@]}" >"$E2E_TMP/int.out" 2>&1 &
ru_pid=$!
for _ in $(seq 1 200); do
  next=$("$KUBECTL" -n "$NS" get rc -o 'jsonpath={range .items[*]}{.metadata.name} {.spec.replicas}{"\n"}{end}' | awk '$1 ~ /^notebook-/ && $2 >= 1 {print $1}')
  [ -n "$next" ] && break
  sleep 0.1
done
[ -n "$next" ] || { LAST_OUT=$(cat "$E2E_TMP/int.out"); fail "the update never scaled up"; }
kill -INT "$ru_pid"; wait "$ru_pid"; code=$?
LAST_OUT=$(cat "$E2E_TMP/int.out")
expect_eq "$code" 130 'exit code after Ctrl-C'
expect 'error: interrupted'
expect "kubectl rolling-update notebook $next --rollback"
start_watcher notebook 3
k rolling-update notebook "$next" -n "$NS" --rollback "${FAST[@]}" >/dev/null
expect 'Setting "notebook" replicas to 3'
expect "Update succeeded. Deleting $next"
expect 'replicationcontroller "notebook" rolled back'
check_bounds notebook 4 3
wait_for 3 '{.status.readyReplicas}' -n "$NS" rc notebook
expect_eq "$(jp '{.spec.replicas} {.spec.template.spec.containers[0].image}' -n "$NS" rc notebook)" "3 $OLD_IMAGE" 'rolled back controller'
k -n "$NS" get rc -o name >/dev/null
expect_not "$next"
k -n "$NS" get pods -l app=notebook -o 'jsonpath={.items[*].spec.containers[0].image}' >/dev/null
expect_not "$NEW_IMAGE"

# --- 4. Pods that never become Ready: a clear timeout, nothing serving deleted, --rollback.
make_rc webui 2 webui
# Only new pods get the knob: the controller does not touch running pods on a template change.
k -n "$NS" patch rc webui --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"sim.baton.dev/never-ready":"true"}}}}}' >/dev/null
k_fails rolling-update webui -n "$NS" --image="$NEW_IMAGE" "${FAST[@]}" --timeout=3s >/dev/null
expect 'error: timed out waiting for any update progress to be made'
expect 'Run the same command again to resume it, or undo it with: kubectl rolling-update webui webui-'
next=$(printf '%s\n' "$LAST_OUT" | sed -n 's/^Created \(webui-[0-9a-f]*\)$/\1/p')
[ -n "$next" ] || fail "no Created line"
expect_eq "$(jp '{.spec.replicas} {.status.readyReplicas}' -n "$NS" rc webui)" '2 2' 'old controller still serving after the timeout'
k rolling-update webui "$next" -n "$NS" --rollback "${FAST[@]}" >/dev/null
expect 'replicationcontroller "webui" rolled back'
k -n "$NS" get rc -o name >/dev/null
expect_not "$next"
wait_for 2 '{.status.readyReplicas}' -n "$NS" rc webui

# --- Errors, worded as the old command.
k_fails rolling-update nope -n "$NS" --image=x >/dev/null
expect 'Error from server (NotFound): replicationcontrollers "nope" not found'
k_fails rolling-update zeppelin-controller -n "$NS" --image="$NEW_IMAGE" >/dev/null
expect 'error: --image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as existing container image'
k_fails rolling-update zeppelin-controller -n "$NS" >/dev/null
expect 'error: Must specify --filename or --image for new controller'
"$KUBECTL" -n "$NS" create -f - >/dev/null <<'RC' || fail "creating two-container rc"
apiVersion: v1
kind: ReplicationController
metadata: {name: sidecars}
spec:
  replicas: 1
  selector: {app: sidecars}
  template:
    metadata: {labels: {app: sidecars}}
    spec: {containers: [{name: a, image: a:1}, {name: b, image: b:1}]}
RC
k_fails rolling-update sidecars -n "$NS" --image=a:2 >/dev/null
expect 'error: must specify container to update when updating a multi-container pod'
k rolling-update sidecars -n "$NS" --image=b:2 --container=b --dry-run >/dev/null
expect 'Rolling from:'
expect 'sidecars-'
k_fails rolling-update zeppelin-controller -n "$NS" -f - <<'RC' >/dev/null
apiVersion: v1
kind: ReplicationController
metadata: {name: zeppelin-v2}
spec:
  selector: {app: zeppelin}
  template:
    metadata: {labels: {app: zeppelin}}
    spec: {containers: [{name: zeppelin, image: zeppelin:2}]}
RC
expect 'error: - must specify a matching key with non-equal value in Selector for zeppelin-controller'
pass
