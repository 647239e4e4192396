#!/usr/bin/env bash
# PersistentVolumeClaims on real containers (issue 16, must-hold 1's PVC part), through the
# real kubectl:
#  - `kubectl get sc` shows the built-in `local-path (default)` class (rancher.io/local-path,
#    Delete, WaitForFirstConsumer); a claim without a class gets it and waits for its first
#    consumer;
#  - a pod using the claim has its volume provisioned on its node under <data-dir>/volumes,
#    `kubectl get pvc,pv` show both Bound with kube-apiserver's columns; the file the pod
#    writes survives the pod's deletion and a new pod (mounting it readOnly) reads it and
#    cannot write;
#  - deleting the claim while a pod uses it leaves it Terminating (pvc-protection); once the
#    pod is gone the claim, its volume and the volume's directory go (reclaim Delete);
#  - a static hostPath volume binds to a claim of no class and is Released, its files kept,
#    when the claim goes (Retain);
#  - a pod naming a missing claim, or an unbound claim of an Immediate class, stays Pending
#    with the scheduler's message; a claim without access modes or size is a 422.
# Needs root and runc (CI has both). 13-14 s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
STARTED=$(date +%s)

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "pvc" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# ks ARGS...: kubectl get, with runs of spaces squeezed to one in $LAST_OUT.
ks() { k get "$@" >/dev/null; LAST_OUT=$(printf '%s\n' "$LAST_OUT" | tr -s ' '); }

# The default class, as kubectl prints it.
ks sc
expect "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
expect "local-path (default) rancher.io/local-path Delete WaitForFirstConsumer false"

# A claim without a class gets the default one and waits for a pod.
cat >"$E2E_TMP/claim.yaml" <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
YAML
k apply -f "$E2E_TMP/claim.yaml" >/dev/null
expect_eq "$(jp '{.spec.storageClassName}' pvc data)" "local-path" "default class"
expect_eq "$(jp '{.metadata.finalizers}' pvc data)" '["kubernetes.io/pvc-protection"]' "claim finalizers"
ks pvc data; expect "data Pending local-path <unset>"
for _ in $(seq 1 50); do
  LAST_OUT=$("$KUBECTL" get events --field-selector involvedObject.name=data 2>&1)
  case "$LAST_OUT" in *"waiting for first consumer to be created before binding"*) break ;; esac
  sleep 0.1
done
expect "WaitForFirstConsumer"

# pod NAME READONLY COMMAND: a pod mounting claim `data` at /data.
pod() {
  cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "$3; trap 'exit 0' TERM; while :; do sleep 0.2; done"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data, readOnly: $2}}]
YAML
}
pod writer false "echo persisted > /data/file"
wait_for Running '{.status.phase}' pod writer
wait_for Bound '{.status.phase}' pvc data
PV=$(jp '{.spec.volumeName}' pvc data)
expect_eq "$PV" "pvc-$(jp '{.metadata.uid}' pvc data)" "provisioned volume's name"
wait_for Bound '{.status.phase}' pv "$PV"
expect_eq "$(jp '{.metadata.annotations.volume\.kubernetes\.io/selected-node}' pvc data)" "$NODE" "selected node"
expect_eq "$(jp '{.spec.hostPath.path}' pv "$PV")" "$DATA_DIR/volumes/$PV" "volume directory"
expect_eq "$(jp '{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}' pv "$PV")" "$NODE" "volume's node"
ks pvc,pv
expect "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
expect "persistentvolumeclaim/data Bound $PV 10Mi RWO local-path <unset>"
expect "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE"
expect "persistentvolume/$PV 10Mi RWO Delete Bound default/data local-path <unset>"
for _ in $(seq 1 50); do [ -f "$DATA_DIR/volumes/$PV/file" ] && break; sleep 0.1; done
expect_eq "$(cat "$DATA_DIR/volumes/$PV/file" 2>&1)" "persisted" "the file on the host"

# The data outlives the pod; the next pod reads it through a read-only mount.
k delete pod writer >/dev/null
pod reader true "true"
wait_for Running '{.status.phase}' pod reader
k exec reader -- cat /data/file >/dev/null; expect_eq "$LAST_OUT" "persisted" "data after the pod's deletion"
k_fails exec reader -- sh -c 'echo x > /data/other' >/dev/null; expect "Read-only file system"

# Protection: the claim stays while the pod uses it; then claim, volume and directory go.
k delete pvc data --wait=false >/dev/null
sleep 1
k get pvc data >/dev/null; expect "Terminating"
[ -d "$DATA_DIR/volumes/$PV" ] || fail "the volume's directory went while a pod uses it"
k delete pod reader >/dev/null
for _ in $(seq 1 100); do
  "$KUBECTL" get pvc data >/dev/null 2>&1 || "$KUBECTL" get pv "$PV" >/dev/null 2>&1 || break
  sleep 0.1
done
k_fails get pvc data >/dev/null; expect 'persistentvolumeclaims "data" not found'
k_fails get pv "$PV" >/dev/null; expect "persistentvolumes \"$PV\" not found"
for _ in $(seq 1 50); do [ -d "$DATA_DIR/volumes/$PV" ] || break; sleep 0.1; done
[ -d "$DATA_DIR/volumes/$PV" ] && fail "the deleted volume's directory remains"

# A static volume binds to a claim of no class and is kept when the claim goes (Retain).
mkdir -p "$E2E_TMP/static" && echo kept >"$E2E_TMP/static/f"
cat >"$E2E_TMP/static.yaml" <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: static}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce, ReadOnlyMany]
  hostPath: {path: $E2E_TMP/static}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: manual}
spec:
  storageClassName: ""
  accessModes: [ReadOnlyMany]
  resources: {requests: {storage: 500Mi}}
YAML
k apply -f "$E2E_TMP/static.yaml" >/dev/null
wait_for Bound '{.status.phase}' pvc manual
expect_eq "$(jp '{.spec.volumeName}' pvc manual)" "static" "static binding"
expect_eq "$(jp '{.spec.persistentVolumeReclaimPolicy}' pv static)" "Retain" "static volume's default policy"
expect_eq "$(jp '{.metadata.annotations.pv\.kubernetes\.io/bind-completed}' pvc manual)" "yes" "bind-completed"
ks pvc manual; expect "manual Bound static 1Gi RWO,ROX <unset>"
k delete pvc manual >/dev/null
wait_for Released '{.status.phase}' pv static
expect_eq "$(cat "$E2E_TMP/static/f")" "kept" "a retained volume's files"

# Pods whose claims cannot be used stay Pending with the scheduler's message.
cat >"$E2E_TMP/waiting.yaml" <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: elsewhere}
provisioner: example.com/nobody
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: immediate}
spec:
  storageClassName: elsewhere
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  containers: [{name: c, image: $REG/hello:v1}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: nope}}]
---
apiVersion: v1
kind: Pod
metadata: {name: unbound}
spec:
  containers: [{name: c, image: $REG/hello:v1}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: immediate}}]
YAML
k apply -f "$E2E_TMP/waiting.yaml" >/dev/null
COND='{.status.conditions[?(@.type=="PodScheduled")].message}'
wait_for '0/1 nodes are available: persistentvolumeclaim "nope" not found.' "$COND" pod missing
wait_for '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.' "$COND" pod unbound
expect_eq "$(jp '{.status.phase}' pod missing)" "Pending" "pod with a missing claim"
ks sc elsewhere; expect "elsewhere example.com/nobody Delete Immediate false"

# Validation with Kubernetes' paths.
cat >"$E2E_TMP/bad.yaml" <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: bad}
spec: {}
YAML
k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'spec.accessModes: Required value: at least 1 access mode is required'
expect 'spec.resources[storage]: Required value'

echo "pvc-once: $(( $(date +%s) - STARTED ))s"
pass
