#!/usr/bin/env bash
# Pod volumes on real containers (issue 16, must-hold 1 without PVCs), through the real kubectl:
#  - one pod mounts an emptyDir on disk and one in memory (a tmpfs of its sizeLimit), a
#    ConfigMap (items, mode, defaultMode), a Secret (on a tmpfs), the downward API, a
#    projected volume (ConfigMap + Secret + downward API), a hostPath directory and a
#    FileOrCreate file, an optional missing ConfigMap (empty) and an emptyDir subPath; each
#    reads what it should through `kubectl exec`; read-only mounts refuse writes;
#  - a ConfigMap change shows in the mounted file within seconds, and a reader looping in the
#    container never sees anything but the old or the new value (the `..data` swap);
#  - a missing ConfigMap keeps its pod ContainerCreating with the kubelet's FailedMount event
#    until it is created; a hostPath of the wrong type gives the kubelet's type-check message;
#  - envFrom (a ConfigMap with a prefix, a Secret, env entries overriding and expanding them)
#    shows in `kubectl exec env`; a missing ConfigMap is CreateContainerConfigError with the
#    kubelet's message; a failing readiness probe is a counted Warning Unhealthy event; a bad
#    envFrom prefix is a 422 naming it;
#  - an unsupported volume type is a 422 naming it;
#  - nothing of a deleted pod stays mounted on the host, its directory goes, the hostPath's
#    files stay; `baton reset` unmounts a running pod's volumes.
# Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-300}
STARTED=$(date +%s)

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "volumes" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

HOSTDIR="$E2E_TMP/hostdata"
mkdir -p "$HOSTDIR"
echo "from the host" >"$HOSTDIR/file"
k create configmap cfg --from-literal=greeting=hello --from-literal=other=x >/dev/null
k create secret generic sec --from-literal=password=s3cret >/dev/null

# ex POD CMD...: runs CMD in the pod's container, output in $LAST_OUT.
ex() { local pod=$1; shift; k exec "$pod" -- "$@"; }
# mount_line POD PATH: the container's /proc/mounts line of PATH.
mount_line() { ex "$1" sh -c "grep ' $2 ' /proc/mounts"; }

cat >"$E2E_TMP/vol.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: vol, labels: {app: vol}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "echo made > /scratch/a; trap 'exit 0' TERM; while :; do v=\$(cat /cfg/dir/greeting.txt 2>&1); case \"\$v\" in hello|bonjour) ;; *) echo \"BAD:\$v\" >> /scratch/bad;; esac; sleep 0.01; done"]
    env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: scratch, mountPath: /nested, subPath: deep/er}
    - {name: mem, mountPath: /mem}
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
    - {name: proj, mountPath: /proj}
    - {name: host, mountPath: /host}
    - {name: host, mountPath: /host-ro, readOnly: true}
    - {name: hostfile, mountPath: /etc/made-file}
    - {name: opt, mountPath: /opt}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - name: cfg
    configMap:
      name: cfg
      defaultMode: 0640
      items: [{key: greeting, path: dir/greeting.txt, mode: 0400}, {key: other, path: other}]
  - {name: sec, secret: {secretName: sec, defaultMode: 0400}}
  - name: info
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
  - name: proj
    projected:
      sources:
      - configMap: {name: cfg, items: [{key: greeting, path: g}]}
      - secret: {name: sec, items: [{key: password, path: p}]}
      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}
  - {name: host, hostPath: {path: $HOSTDIR, type: Directory}}
  - {name: hostfile, hostPath: {path: $HOSTDIR/made-file, type: FileOrCreate}}
  - {name: opt, configMap: {name: not-there, optional: true}}
YAML
k apply -f "$E2E_TMP/vol.yaml" >/dev/null
wait_for Running '{.status.phase}' pod vol
UID_VOL=$(jp '{.metadata.uid}' pod vol)
PODDIR="$DATA_DIR/node/pods/$UID_VOL"

# emptyDir on disk (and a subPath of it, created on first use), shared with the host's copy.
ex vol cat /scratch/a >/dev/null; expect_eq "$LAST_OUT" "made" "emptyDir content"
ex vol sh -c 'echo deep > /nested/f' >/dev/null
expect_eq "$(cat "$PODDIR/volumes/scratch/deep/er/f" 2>&1)" "deep" "subPath file on the host"
mount_line vol /scratch >/dev/null; expect_not "tmpfs"
# emptyDir in memory: a tmpfs of the sizeLimit.
mount_line vol /mem >/dev/null; expect "tmpfs /mem tmpfs rw"; expect "size=8192k"
# ConfigMap: items at their paths with their modes, read-only.
ex vol cat /cfg/dir/greeting.txt >/dev/null; expect_eq "$LAST_OUT" "hello" "configMap item"
ex vol busybox stat -L -c %a /cfg/dir/greeting.txt /cfg/other >/dev/null
expect_eq "$(printf '%s' "$LAST_OUT" | tr '\n' ' ')" "400 640" "configMap modes"
ex vol sh -c 'ls -a /cfg | tr "\n" " "' >/dev/null; expect "..data"
"$KUBECTL" exec vol -- sh -c 'echo x > /cfg/new' >/dev/null 2>&1 && fail "a configMap volume accepted a write"
# Secret: on a tmpfs, mode 0400.
ex vol cat /sec/password >/dev/null; expect_eq "$LAST_OUT" "s3cret" "secret"
mount_line vol /sec >/dev/null; expect "tmpfs /sec tmpfs ro"
ex vol busybox stat -L -c %a /sec/password >/dev/null; expect_eq "$LAST_OUT" "400" "secret mode"
grep -q " $PODDIR/volumes/sec tmpfs " /proc/mounts \
  || fail "the secret volume is not a tmpfs on the host"
# The secret's value reaches the environment, and no file on the data dir's own disk holds it
# (the runtime config is on the agent's tmpfs; -xdev leaves out every mount: tmpfs volumes,
# the overlay root; the store keeps API objects as etcd does).
ex vol sh -c 'echo $PASSWORD' >/dev/null; expect_eq "$LAST_OUT" "s3cret" "secret in the environment"
[ "$(stat -f -c %T "$DATA_DIR/node/run")" = tmpfs ] || fail "the agent's run dir is not a tmpfs"
on_disk=$(find "$DATA_DIR" -xdev -type f ! -name store.redb -exec grep -l s3cret {} + 2>/dev/null)
[ -z "$on_disk" ] || fail "the secret's value is on disk in: $on_disk"
# Downward API and projected volumes.
ex vol cat /info/name >/dev/null; expect_eq "$LAST_OUT" "vol" "downwardAPI name"
ex vol cat /info/labels >/dev/null; expect_eq "$LAST_OUT" 'app="vol"' "downwardAPI labels"
ex vol sh -c 'cat /proj/g; echo; cat /proj/p; echo; cat /proj/ns' >/dev/null
expect_eq "$(printf '%s' "$LAST_OUT" | tr '\n' ' ')" "hello s3cret default" "projected volume"
# hostPath: the host's files both ways, a read-only mount of it, FileOrCreate made the file.
ex vol cat /host/file >/dev/null; expect_eq "$LAST_OUT" "from the host" "hostPath read"
ex vol sh -c 'echo from the pod > /host/back' >/dev/null
expect_eq "$(cat "$HOSTDIR/back" 2>&1)" "from the pod" "hostPath write seen on the host"
"$KUBECTL" exec vol -- sh -c 'echo x > /host-ro/nope' >/dev/null 2>&1 && fail "a readOnly mount accepted a write"
[ -f "$HOSTDIR/made-file" ] || fail "hostPath FileOrCreate did not create the file"
# An optional ConfigMap that does not exist: an empty directory.
ex vol sh -c 'ls /opt | wc -l' >/dev/null; expect_eq "$LAST_OUT" "0" "optional missing configMap"

# A ConfigMap change reaches the file within seconds; the looping reader never saw anything
# but "hello" or "bonjour".
t0=$(date +%s.%N)
k patch configmap cfg --type merge -p '{"data":{"greeting":"bonjour"}}' >/dev/null
seen=""
for _ in $(seq 1 100); do
  seen=$("$KUBECTL" exec vol -- cat /cfg/dir/greeting.txt 2>&1)
  [ "$seen" = "bonjour" ] && break
  sleep 0.2
done
expect_eq "$seen" "bonjour" "configMap update in the mounted file"
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "configMap change visible in the pod after ${took}s"
ex vol cat /proj/g >/dev/null
for _ in $(seq 1 20); do [ "$LAST_OUT" = "bonjour" ] && break; sleep 0.2; ex vol cat /proj/g >/dev/null; done
expect_eq "$LAST_OUT" "bonjour" "configMap update in the projected volume"
sleep 1
ex vol sh -c 'cat /scratch/bad 2>/dev/null | head -n 3; true' >/dev/null
expect_eq "$LAST_OUT" "" "what the reader saw besides the old and the new value"

# A missing ConfigMap: ContainerCreating with the kubelet's FailedMount event, then Running
# once it exists. A hostPath of the wrong type: the type-check message.
cat >"$E2E_TMP/wait.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: waiter}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $REG/hello:v1, volumeMounts: [{name: c, mountPath: /c}, {name: s, mountPath: /s}]}
  volumes:
  - {name: c, configMap: {name: late}}
  - {name: s, secret: {secretName: sec}}
---
apiVersion: v1
kind: Pod
metadata: {name: badhost}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $REG/hello:v1, volumeMounts: [{name: h, mountPath: /h}]}
  volumes:
  - {name: h, hostPath: {path: $HOSTDIR, type: File}}
YAML
k apply -f "$E2E_TMP/wait.yaml" >/dev/null
want_event() {
  for _ in $(seq 1 100); do
    LAST_OUT=$("$KUBECTL" get events --field-selector "involvedObject.name=$1,reason=FailedMount" \
      -o 'jsonpath={.items[*].message}' 2>&1)
    [ "$LAST_OUT" = "$2" ] && return 0
    sleep 0.1
  done
  fail "no FailedMount event '$2' for pod $1"
}
want_event waiter 'MountVolume.SetUp failed for volume "c" : configmap "late" not found'
want_event badhost "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: $HOSTDIR is not a file"
jp '{.status.containerStatuses[0].state.waiting.reason}' pod waiter >/dev/null
expect_eq "$LAST_OUT" "ContainerCreating" "waiting pod's container"
k create configmap late --from-literal=k=v >/dev/null
wait_for Running '{.status.phase}' pod waiter
ex waiter cat /c/k >/dev/null; expect_eq "$LAST_OUT" "v" "configMap created late"

# envFrom as the kubelet builds the environment: a ConfigMap with a prefix, a Secret, an
# optional missing ConfigMap (nothing), and env entries overriding and expanding its variables;
# a missing ConfigMap is the kubelet's CreateContainerConfigError; a failing readiness probe
# is a Warning Unhealthy event in the kubelet's words, its repeats counted.
t_env=$(date +%s.%N)
cat >"$E2E_TMP/env.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: envpod}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    envFrom:
    - {prefix: CFG_, configMapRef: {name: cfg}}
    - secretRef: {name: sec}
    - {configMapRef: {name: absent, optional: true}}
    env:
    - {name: CFG_other, value: overridden}
    - {name: GREETING, value: "\$(CFG_greeting) world"}
    readinessProbe:
      exec: {command: ["sh", "-c", "echo not ready yet; exit 1"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: envmissing}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $REG/hello:v1, envFrom: [{configMapRef: {name: nope}}]}
YAML
k apply -f "$E2E_TMP/env.yaml" >/dev/null
wait_for Running '{.status.phase}' pod envpod
ex envpod env >/dev/null
for want in CFG_greeting=bonjour CFG_other=overridden password=s3cret "GREETING=bonjour world"; do
  printf '%s\n' "$LAST_OUT" | grep -qx "$want" || fail "envpod's environment lacks '$want': $LAST_OUT"
done
wait_for CreateContainerConfigError '{.status.containerStatuses[0].state.waiting.reason}' pod envmissing
jp '{.status.containerStatuses[0].state.waiting.message}' pod envmissing >/dev/null
expect_eq "$LAST_OUT" 'configmap "nope" not found' "envmissing's waiting message"
for _ in $(seq 1 50); do
  LAST_OUT=$("$KUBECTL" get events --field-selector involvedObject.name=envpod,reason=Unhealthy \
    -o 'jsonpath={range .items[*]}{.type} {.count} {.message}{end}' 2>&1)
  case "$LAST_OUT" in "Warning "[2-9]" Readiness probe failed: not ready yet"*) break ;; esac
  sleep 0.1
done
case "$LAST_OUT" in
  "Warning "[2-9]" Readiness probe failed: not ready yet"*) ;;
  *) fail "no counted Unhealthy event for envpod's readiness probe: $LAST_OUT" ;;
esac
jp '{.status.containerStatuses[0].ready}' pod envpod >/dev/null
expect_eq "$LAST_OUT" "false" "envpod's readiness"
cat >"$E2E_TMP/badprefix.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: badprefix}
spec:
  containers:
  - {name: c, image: $REG/hello:v1, envFrom: [{prefix: 1X_, configMapRef: {name: cfg}}]}
YAML
k_fails apply -f "$E2E_TMP/badprefix.yaml" >/dev/null
expect 'spec.containers[0].envFrom[0].prefix: Invalid value: "1X_": a valid environment variable name must consist of'
echo "envFrom and Unhealthy checks: $(awk -v a="$t_env" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"

# Volume types the agent does not run are refused by name.
cat >"$E2E_TMP/nfs.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: nfs}
spec:
  containers: [{name: c, image: $REG/hello:v1}]
  volumes: [{name: d, nfs: {server: 127.0.0.1, path: /}}]
YAML
k_fails apply -f "$E2E_TMP/nfs.yaml" >/dev/null
expect 'spec.volumes[0].nfs: Forbidden: not supported by Baton'

# Deleting the pod: nothing of it stays mounted, its directory goes, the hostPath stays.
grep -q "$UID_VOL" /proc/mounts || fail "no host mount of the pod's volumes while it runs"
k delete pod vol badhost >/dev/null
for _ in $(seq 1 100); do [ -d "$PODDIR" ] || break; sleep 0.1; done
[ -d "$PODDIR" ] && fail "the deleted pod's directory remains: $(ls -R "$PODDIR" | head)"
left=$(grep "$UID_VOL" /proc/mounts)
[ -z "$left" ] || fail "mounts of the deleted pod remain: $left"
expect_eq "$(cat "$HOSTDIR/file")" "from the host" "hostPath content after the pod's deletion"

# baton reset unmounts the volumes of a pod still running (waiter's secret tmpfs).
grep -q "$(jp '{.metadata.uid}' pod waiter)/volumes/s" /proc/mounts || fail "waiter's secret is not mounted"
baton_reset_leaves_nothing
echo "volumes-once: $(( $(date +%s) - STARTED ))s"
pass
