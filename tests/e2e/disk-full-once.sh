#!/usr/bin/env bash
# Disk faults (issue 13, must-hold 2). Needs root: the server's data dir is a 64 MiB tmpfs this
# scenario mounts (CI runs as root). The disk is filled up with a file: writes then answer 507
# InsufficientStorage naming the store file, reads, lists and watches keep working, /readyz
# says the store is not ready (/livez stays ok). The file is removed: /readyz is ready again
# and writes succeed with no restart, and a watch opened before the disk filled sees them.
# Then kill -9 and a restart: every acknowledged write is there.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "disk-full-once.sh needs root: it mounts a size-limited tmpfs as the data dir"

mkdir -p "$DATA_DIR"
mount -t tmpfs -o size=64m,mode=0700 baton-e2e-disk "$DATA_DIR" || fail "cannot mount a tmpfs on $DATA_DIR"
WATCH_PID=""
# The tmpfs can only go once the server (and the watch) are stopped, and before lib.sh's
# cleanup removes the scenario's temporary dir.
unmount() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; fi
  umount "$DATA_DIR" 2>/dev/null
  cleanup
}
trap unmount EXIT

start_server
CM=/api/v1/namespaces/default/configmaps
ACKED=()

# create NAME BYTES: POST a ConfigMap with BYTES of data; LAST_OUT is "BODY\nCODE".
create() {
  python3 -c 'import json, sys; print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": sys.argv[1]}, "data": {"v": "x" * int(sys.argv[2])}}))' "$1" "$2" >"$E2E_TMP/cm.json"
  LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/cm.json" 2>&1)
  code=$(printf '%s\n' "$LAST_OUT" | tail -n 1)
  if [ "$code" = 201 ]; then ACKED+=("$1"); fi
}

readyz() { curl -sS --cacert "$DATA_DIR/ca.crt" -w '\n%{http_code}' "$(grep 'server:' "$KUBECONFIG" | awk '{print $2}')/$1" 2>&1; }

for i in $(seq 1 5); do
  create "before-$i" 1000
  [ "$code" = 201 ] || fail "create before-$i: $LAST_OUT"
done
LAST_OUT=$(readyz readyz)
[ "$(printf '%s\n' "$LAST_OUT" | tail -n 1)" = 200 ] || fail "/readyz before the disk filled"

# A watch opened before the disk fills, read at the end.
"$KUBECTL" get configmaps -w -o name >"$E2E_TMP/watch.out" 2>&1 &
WATCH_PID=$!
sleep 1

# Fill the disk, then write 512 KiB ConfigMaps until one fails (the store file may have free
# pages of its own first).
dd if=/dev/zero of="$DATA_DIR/filler" bs=1M >/dev/null 2>&1
dd if=/dev/zero of="$DATA_DIR/filler-small" bs=4k >/dev/null 2>&1
echo "ok   disk filled: $(df -h --output=used,avail "$DATA_DIR" | tail -n 1)"
failed=""
for i in $(seq 1 200); do
  create "fill-$i" 512000
  if [ "$code" != 201 ]; then failed="fill-$i"; break; fi
done
[ -n "$failed" ] || fail "200 writes of 512 KB fit on a full 64 MiB disk"
echo "ok   $(( ${#ACKED[@]} - 5 )) writes fitted, then $failed failed"
body=$(printf '%s\n' "$LAST_OUT" | head -n -1)
[ "$code" = 507 ] || fail "a write on a full disk: expected 507, got $code: $body"
case "$body" in *'"reason":"InsufficientStorage"'*'store.redb'*|*'store.redb'*'"reason":"InsufficientStorage"'*) ;;
  *) fail "a write on a full disk: not an InsufficientStorage Status naming the store file: $body" ;;
esac
echo "ok   a write on a full disk: 507 InsufficientStorage naming the store file"
# kubectl shows it too, for a write as large as the one that failed (a small one may still
# fit in free pages inside the store file, as "small-on-full" below may: nothing is lost).
head -c 512000 /dev/zero | tr '\0' x >"$E2E_TMP/big"
LAST_OUT=$("$KUBECTL" create configmap by-kubectl --from-file=v="$E2E_TMP/big" 2>&1) && fail "kubectl create of 512 KB on a full disk succeeded"
expect "no space left for store file"
# Small writes fail as well once the store has failed a commit for want of space.
create small-on-full 10
[ "$code" != 201 ] || echo "note: a small write still fitted on the full disk"

# Reads, lists and new watches work; /readyz says the store is not ready, /livez is ok.
k get configmap before-1 -o name
k get configmaps -o name
expect "configmap/before-5"
LAST_OUT=$(curl_api GET "$CM?watch=1&timeoutSeconds=1" 2>&1)
case "$LAST_OUT" in *'"type":"ADDED"'*'"name":"before-1"'*) ;; *) fail "a new watch on a full disk: $LAST_OUT" ;; esac
echo "ok   reads, lists and a new watch work on a full disk"
LAST_OUT=$(readyz readyz)
[ "$(printf '%s\n' "$LAST_OUT" | tail -n 1)" = 500 ] || fail "/readyz on a full disk: $LAST_OUT"
expect "[-]store failed: no space left for store file"
LAST_OUT=$(readyz livez)
[ "$(printf '%s\n' "$LAST_OUT" | tail -n 1)" = 200 ] || fail "/livez on a full disk: $LAST_OUT"
echo "ok   /readyz 500 naming the store, /livez 200"

# Space freed: ready again within seconds, with no restart, and writes work.
rm -f "$DATA_DIR/filler" "$DATA_DIR/filler-small"
ready=""
for _ in $(seq 1 50); do
  LAST_OUT=$(readyz readyz)
  if [ "$(printf '%s\n' "$LAST_OUT" | tail -n 1)" = 200 ]; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || fail "/readyz not ready 10 s after space was freed: $LAST_OUT"
echo "ok   /readyz 200 once space is freed"
for i in $(seq 1 5); do
  create "after-$i" 512000
  [ "$code" = 201 ] || fail "create after-$i once space is freed: $LAST_OUT"
done
k create configmap after-kubectl --from-literal=a=b
ACKED+=(after-kubectl)
for _ in $(seq 1 50); do
  grep -q "configmap/after-kubectl" "$E2E_TMP/watch.out" && break
  sleep 0.2
done
kill "$WATCH_PID" 2>/dev/null
WATCH_PID=""
LAST_OUT=$(cat "$E2E_TMP/watch.out")
expect "configmap/after-5"
expect "configmap/after-kubectl"
echo "ok   writes succeed with no restart; the watch opened before the disk filled sees them"

# kill -9, restart: nothing acknowledged is lost.
kill_server
start_server
LAST_OUT=$("$KUBECTL" get configmaps -o name 2>&1) || fail "list after restart"
for name in "${ACKED[@]}"; do
  expect "configmap/$name"
done
echo "ok   after kill -9 and a restart all ${#ACKED[@]} acknowledged writes are there"
pass
