#!/usr/bin/env bash
# Issue 13: the node's disks as the kubelet watches them, with real containers. The server's
# data dir (store, node dir, images) is a 256 MiB tmpfs this scenario mounts. The Node reports
# the filesystem's size as its ephemeral-storage capacity, and allocatable 10% less
# (--node-fs-min-free). The disk is filled until less than 10% is free: within ~10 s the Node
# reports DiskPressure=True naming nodefs and imagefs, with the kubelet's NodeHasDiskPressure
# event, and a pod whose image is not present fails to pull (ErrImagePull, a Failed event
# saying there is not enough disk space for images) instead of filling the disk. The filler
# is removed: DiskPressure=False again (NodeHasNoDiskPressure) and the same pod pulls its
# image and runs, with no restart. Needs root (the tmpfs) and runc; CI has both.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
[ "$(id -u)" = 0 ] || fail "disk-pressure-once.sh needs root: it mounts a size-limited tmpfs as the data dir"

start_registry || fail "starting the registry"
build_hello_image hello:v1 "disk pressure" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
IMAGE="127.0.0.1:${REGISTRY_PORT:-5000}/hello:v1"

mkdir -p "$DATA_DIR"
SIZE=$((256 * 1024 * 1024))
mount -t tmpfs -o size=$SIZE,mode=0700 baton-e2e-pressure "$DATA_DIR" || fail "cannot mount a tmpfs on $DATA_DIR"
unmount() {
  agent_cleanup
  umount "$DATA_DIR" 2>/dev/null
  cleanup
}
trap unmount EXIT

start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"
wait_for False '{.status.conditions[?(@.type=="DiskPressure")].status}' node "$NODE"
jp '{.status.capacity.ephemeral-storage}' node "$NODE" >/dev/null
[ "$LAST_OUT" = "$SIZE" ] || fail "ephemeral-storage capacity: want the tmpfs's $SIZE bytes, got $LAST_OUT"
jp '{.status.allocatable.ephemeral-storage}' node "$NODE" >/dev/null
[ "$LAST_OUT" = "$((SIZE - SIZE / 10))" ] || fail "ephemeral-storage allocatable: want $((SIZE - SIZE / 10)) (10% kept free), got $LAST_OUT"
echo "ok   ephemeral-storage capacity $SIZE, allocatable $LAST_OUT (10% kept free)"

# Leave 8% of the tmpfs free: below nodefs' 10% and imagefs' 15%.
avail=$(df --output=avail -B1 "$DATA_DIR" | tail -n 1)
fill=$((avail - SIZE * 8 / 100))
[ "$fill" -gt 0 ] || fail "the data dir already has less than 8% free: $(df -h "$DATA_DIR" | tail -n 1)"
head -c "$fill" /dev/zero >"$DATA_DIR/filler" || fail "writing the filler"
echo "ok   disk filled: $(df -h --output=used,avail "$DATA_DIR" | tail -n 1)"
wait_for True '{.status.conditions[?(@.type=="DiskPressure")].status}' node "$NODE"
jp '{.status.conditions[?(@.type=="DiskPressure")].reason}: {.status.conditions[?(@.type=="DiskPressure")].message}' node "$NODE" >/dev/null
expect "KubeletHasDiskPressure: kubelet has disk pressure: nodefs.available is "
expect "imagefs.available is "
expect "(below 15%)"
k get events --field-selector "involvedObject.kind=Node,reason=NodeHasDiskPressure" >/dev/null
expect "Node $NODE status is now: NodeHasDiskPressure"
echo "ok   DiskPressure=True with the kubelet's reason and event"

cat >"$E2E_TMP/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - {name: web, image: $IMAGE}
YAML
k apply -f "$E2E_TMP/pod.yaml" >/dev/null
wait_for ErrImagePull '{.status.containerStatuses[0].state.waiting.reason}' pod web
jp '{.status.containerStatuses[0].state.waiting.message}' pod web >/dev/null
expect "not enough disk space for images on $DATA_DIR/images: "
expect "15% ("
k get events --field-selector "involvedObject.name=web,reason=Failed" >/dev/null
expect "not enough disk space for images"
echo "ok   the image pull is refused: ErrImagePull, a Failed event saying why"

rm -f "$DATA_DIR/filler"
wait_for False '{.status.conditions[?(@.type=="DiskPressure")].status}' node "$NODE"
jp '{.status.conditions[?(@.type=="DiskPressure")].reason}' node "$NODE" >/dev/null
[ "$LAST_OUT" = KubeletHasNoDiskPressure ] || fail "reason after the pressure: $LAST_OUT"
k get events --field-selector "involvedObject.kind=Node,reason=NodeHasNoDiskPressure" >/dev/null
expect "Node $NODE status is now: NodeHasNoDiskPressure"
echo "ok   space freed: DiskPressure=False, NodeHasNoDiskPressure"
# The pull is retried after its back-off (10 s, then 20 s).
WAIT_TRIES=600 wait_for Running '{.status.phase}' pod web
jp '{.status.containerStatuses[0].restartCount}' pod web >/dev/null
[ "$LAST_OUT" = 0 ] || fail "restartCount: $LAST_OUT"
echo "ok   the same pod pulled its image and runs"
pass
