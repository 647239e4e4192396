#!/usr/bin/env bash
# The server on etcd (issue 15, the etcd store), with a real etcd 3.4 (Debian's etcd-server) on
# loopback. The seed tutorial's Deployment is created and rolled out on the embedded store;
# `baton store migrate` moves the cluster into etcd (a second migrate into the same prefix is
# refused); `baton server --store etcd://…` on the same data dir has the same objects (uids),
# rolls out, scales and watches through kubectl; the objects are in etcd under the prefix. Then `kill -9` of the server and a restart on
# the same etcd: the objects with their uids and resourceVersions intact, and a watch from a
# resourceVersion taken before the kill resumes with the changes made after it. Last, a
# server compacting every second: a watch from that old resourceVersion answers 410 Gone,
# because etcd compacted it (etcdctl says so too).
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
# The cluster starts on the embedded store whatever E2E_STORE says; etcd is started here.
E2E_STORE=embedded

# "Kind/name uid resourceVersion" of the tutorial's objects, sorted.
state() {
  "$KUBECTL" get deployments,replicasets,services,pods -l app=rolling-update-test \
    -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.metadata.uid} {.metadata.resourceVersion}{"\n"}{end}' | sort
}

start_etcd
STORE=$ETCD_STORE

# etcd flags without an etcd store are refused, not ignored.
LAST_OUT=$("$BATON" server --data-dir "$E2E_TMP/unused" --listen 127.0.0.1:0 --disable agent --etcd-prefix /x --etcd-cafile /x 2>&1) \
  && fail "etcd flags were accepted with the embedded store"
expect "--etcd-cafile, --etcd-prefix only apply with --store etcd://"

# --- the tutorial's Deployment on the embedded store, then moved into etcd ---------------------
start_server --simulated-nodes 2
k create -f "$YAML" >/dev/null
expect 'deployment.extensions/rolling-update-test created'
k rollout status deployment/rolling-update-test --timeout=60s >/dev/null
expect 'successfully rolled out'
EMBEDDED=$(state | cut -d' ' -f1,2)
LAST_OUT=$("$BATON" store migrate --from "$DATA_DIR" --to "$STORE" 2>&1) && fail "migrate ran while the server used the store"
expect "the server using it must be stopped first"
kill_server
LAST_OUT=$("$BATON" store migrate --from "$DATA_DIR" --to "$STORE" 2>&1) || fail "baton store migrate failed"
expect "copied "
expect "keys from $DATA_DIR/store.redb"
LAST_OUT=$("$BATON" store migrate --from "$DATA_DIR" --to "$STORE" 2>&1) && fail "a second migrate into the same prefix succeeded"
expect "etcd already holds /registry/"
mv "$DATA_DIR/store.redb" "$DATA_DIR/store.redb.migrated"

start_server --store "$STORE" --simulated-nodes 2
MIGRATED=$(state | cut -d' ' -f1,2)
[ "$EMBEDDED" = "$MIGRATED" ] || { LAST_OUT="embedded:
$EMBEDDED
etcd:
$MIGRATED"; fail "objects or uids differ after the migration"; }
k rollout status deployment/rolling-update-test --timeout=60s >/dev/null
expect 'successfully rolled out'

# --- on etcd: scaled while a watch runs ----------------------------------------------------------
"$KUBECTL" get pods -l app=rolling-update-test --watch-only -o name >"$E2E_TMP/watch.out" 2>&1 &
WATCH_PID=$!
sleep 1
k scale deployment/rolling-update-test --replicas=5 >/dev/null
k rollout status deployment/rolling-update-test --timeout=60s >/dev/null
wait_for 5 '{.status.readyReplicas}' deployment rolling-update-test
sleep 0.5
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null
PODS=$(jp '{range .items[*]}{.metadata.name}{"\n"}{end}' pods -l app=rolling-update-test)
expect_eq "$(printf '%s\n' "$PODS" | grep -c .)" 5 "pods after scaling to 5"
# The watch saw the two new pods (each at least once).
seen=0
for p in $PODS; do grep -qx "pod/$p" "$E2E_TMP/watch.out" && seen=$((seen + 1)); done
[ "$seen" -ge 2 ] || { LAST_OUT=$(cat "$E2E_TMP/watch.out"); fail "the pod watch saw $seen of the 5 pods (2 were created while it ran)"; }

# The state is etcd's: keys under the prefix, no embedded store file.
KEYS=$("${ETCDCTL[@]}" get --prefix /baton/registry/ --keys-only)
LAST_OUT=$KEYS
expect "/baton/registry/apps/deployments/default/rolling-update-test"
expect "/baton/registry/core/services/default/rolling-update-test"
[ ! -e "$DATA_DIR/store.redb" ] || fail "an embedded store file was made with --store etcd://"

# --- kill -9 and restart on the same etcd ------------------------------------------------------
BEFORE=$(state)
# The pod list's resourceVersion (kubectl's own list output has none).
OLD_RV=$(curl_api GET /api/v1/namespaces/default/pods | sed '$d' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
[ -n "$OLD_RV" ] || fail "no resourceVersion in the pod list"
kill_server
start_server --store "$STORE" --simulated-nodes 2
AFTER=$(state)
[ "$BEFORE" = "$AFTER" ] || { LAST_OUT="before:
$BEFORE
after:
$AFTER"; fail "objects, uids or resourceVersions changed across kill -9 and restart"; }
expect_eq "$(printf '%s\n' "$AFTER" | grep -c ^Pod/)" 5 "pods after the restart"

# A watch from before the kill resumes: it gets what changed after, and only that.
curl_api GET "/api/v1/namespaces/default/pods?watch=1&resourceVersion=$OLD_RV&labelSelector=app%3Drolling-update-test" \
  --max-time 15 >"$E2E_TMP/resume.out" 2>/dev/null &
CURL_PID=$!
sleep 1
k scale deployment/rolling-update-test --replicas=6 >/dev/null
k rollout status deployment/rolling-update-test --timeout=60s >/dev/null
wait_for 6 '{.status.readyReplicas}' deployment rolling-update-test
NEW_POD=$("$KUBECTL" get pods -l app=rolling-update-test -o name | sed 's,^pod/,,' | grep -vxF "$PODS" | head -n 1)
[ -n "$NEW_POD" ] || fail "no new pod after scaling to 6"
for _ in $(seq 1 100); do grep -q "\"name\":\"$NEW_POD\"" "$E2E_TMP/resume.out" && break; sleep 0.1; done
kill "$CURL_PID" 2>/dev/null; wait "$CURL_PID" 2>/dev/null
LAST_OUT=$(head -c 3000 "$E2E_TMP/resume.out")
grep -q "\"type\":\"ADDED\".*\"name\":\"$NEW_POD\"" "$E2E_TMP/resume.out" \
  || fail "a watch from resourceVersion $OLD_RV (before the kill) did not deliver pod $NEW_POD added after the restart"
for p in $PODS; do
  grep -q "\"type\":\"ADDED\".*\"name\":\"$p\"" "$E2E_TMP/resume.out" \
    && fail "the resumed watch replayed pod $p, created before resourceVersion $OLD_RV"
done

# --- compaction: a server that compacts every second; the old resourceVersion is gone ----------
kill_server
start_server --store "$STORE" --simulated-nodes 2 --etcd-compaction-interval 1s
gone=""
for _ in $(seq 1 30); do
  k scale deployment/rolling-update-test --replicas=$((RANDOM % 2 + 5)) >/dev/null
  out=$(curl_api GET "/api/v1/namespaces/default/pods?watch=1&resourceVersion=$OLD_RV" --max-time 2 2>/dev/null)
  case "$out" in *'"code":410'*) gone=$out; break ;; esac
  sleep 0.5
done
LAST_OUT=$out
[ -n "$gone" ] || fail "a watch from resourceVersion $OLD_RV still worked after 30 s of compacting every second"
LAST_OUT=$gone
expect '"reason":"Expired"'
LAST_OUT=$("${ETCDCTL[@]}" get /baton/registry/core/pods --prefix --rev="$OLD_RV" 2>&1)
expect 'compacted'
grep -q 'compacted etcd' "$SERVER_LOG" || fail "the server did not log its compaction"
# The cluster goes on after compaction.
k rollout status deployment/rolling-update-test --timeout=60s >/dev/null
k get deployment rolling-update-test >/dev/null
pass
