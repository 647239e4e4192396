#!/usr/bin/env bash
# Container isolation by default (issue 13, must-hold 4), with real containers on this
# machine's node agent. Inside a default pod, through `kubectl exec`: `mount`, `unshare -U`,
# loading a kernel module, `ptrace` of another process (the container's PID 1) and writing
# /proc/sys all fail, and /proc/1/status shows seccomp filtering, noNewPrivileges and an empty
# ambient set. The same probes on the host, and ptrace with CAP_SYS_PTRACE added, succeed or
# fail differently, so the failures are the confinement's. securityContext is honoured:
# runAsNonRoot with a root image is refused with the kubelet's CreateContainerConfigError
# reason and message; runAsUser/runAsGroup/supplementalGroups set the process's ids;
# capabilities drop ALL empties its sets; readOnlyRootFilesystem makes / read-only; the pids
# limit is in the container's cgroup. A pod with hostNetwork (a field Baton does not run)
# is refused with a 422 naming it. Needs root, runc and gcc (CI has them).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry || fail "starting the registry failed"
REG="127.0.0.1:${REGISTRY_PORT:-5000}"

# The probe: one syscall each, printing "<what>: allowed" or the errno's text.
cat >"$E2E_TMP/probe.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  long r = -1;
  if (!strcmp(argv[1], "ptrace") && argc > 2) {
    pid_t pid = atoi(argv[2]);
    r = ptrace(PTRACE_ATTACH, pid, 0, 0);
    if (r == 0) { waitpid(pid, NULL, __WALL); ptrace(PTRACE_DETACH, pid, 0, 0); }
  } else if (!strcmp(argv[1], "module")) {
    r = syscall(SYS_init_module, NULL, 0, "");
  } else if (!strcmp(argv[1], "userns")) {
    r = unshare(CLONE_NEWUSER);
  } else {
    return 2;
  }
  if (r == 0) { printf("%s: allowed\n", argv[1]); return 0; }
  printf("%s: %s\n", argv[1], strerror(errno));
  return 1;
}
C
gcc -static -O2 -o "$E2E_TMP/probe" "$E2E_TMP/probe.c" || fail "compiling the probe failed"

# The image: a static busybox with the applets used here, and the probe.
CTX="$E2E_TMP/ctx"
mkdir -p "$CTX/bin" "$CTX/mnt" "$CTX/tmp" && chmod 1777 "$CTX/tmp"
cp /bin/busybox "$CTX/bin/busybox" && cp "$E2E_TMP/probe" "$CTX/bin/probe"
for a in sh cat grep id mount unshare touch sleep httpd echo; do ln -s busybox "$CTX/bin/$a"; done
ctr=$(_bh from scratch) || fail "buildah from scratch failed"
{ _bh copy "$ctr" "$CTX/" / >/dev/null &&
  _bh config --entrypoint '["/bin/sleep","3600"]' --cmd '' --env PATH=/bin "$ctr" &&
  _bh commit -q "$ctr" localhost/iso:v1 >/dev/null &&
  _bh push -q --tls-verify=false localhost/iso:v1 "docker://$REG/iso:v1"; } \
  || fail "building or pushing the iso image failed"
IMG="$REG/iso:v1"

start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

cat >"$E2E_TMP/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: $IMG}]
---
apiVersion: v1
kind: Pod
metadata: {name: tracer}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $IMG
    securityContext: {capabilities: {add: [SYS_PTRACE]}}
---
apiVersion: v1
kind: Pod
metadata: {name: readonly}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $IMG
    securityContext: {readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 2000, supplementalGroups: [3000]}
  containers: [{name: c, image: $IMG}]
---
apiVersion: v1
kind: Pod
metadata: {name: rootimage}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: $IMG
    securityContext: {runAsNonRoot: true}
YAML
k apply -f "$E2E_TMP/pods.yaml" >/dev/null
for p in plain tracer readonly nonroot; do
  wait_for Running '{.status.phase}' pod "$p"
done

# ex POD CMD...: runs CMD in POD; its output (stdout and stderr) in $LAST_OUT, status in $RC.
ex() {
  local pod=$1; shift
  LAST_OUT=$("$KUBECTL" exec "$pod" -- "$@" 2>&1); RC=$?
  printf '%s: %s\n' "$pod" "$(printf '%s' "$LAST_OUT" | tr '\n' ' ')"
}
# denied POD WHAT CMD...: CMD fails in POD with a permission error (EPERM or EROFS).
denied() {
  local pod=$1 what=$2; shift 2
  ex "$pod" "$@"
  [ "$RC" != 0 ] || fail "$what succeeded in pod $pod"
  case "$LAST_OUT" in
    *"not permitted"*|*"permission denied"*|*"Permission denied"*|*"Read-only file system"*) ;;
    *) fail "$what in pod $pod failed, but not for lack of permission" ;;
  esac
}

# --- A default pod: nothing that escapes works -------------------------------------------
denied plain "mount" mount -t tmpfs none /mnt
denied plain "unshare -U" unshare -U true
denied plain "a user namespace" probe userns
denied plain "loading a kernel module" probe module
denied plain "ptrace of PID 1" probe ptrace 1
denied plain "writing /proc/sys" sh -c 'echo 1 > /proc/sys/kernel/ns_last_pid'
ex plain cat /proc/1/status
STATUS=$LAST_OUT
for want in "Seccomp:	2" "NoNewPrivs:	1" "CapAmb:	0000000000000000" "CapInh:	0000000000000000"; do
  case "$STATUS" in *"$want"*) ;; *) fail "/proc/1/status lacks '$want'" ;; esac
done
ex plain touch /written
[ "$RC" = 0 ] || fail "the root filesystem of a default pod is not writable"

# The same probes where nothing confines them: the kernel answers otherwise, so the denials
# above are the container's confinement, not broken probes.
HOST=$("$E2E_TMP/probe" module 2>&1)
case "$HOST" in *"not permitted"*) fail "the probe is denied on the host too: $HOST" ;; esac
echo "host: $HOST"
ex tracer probe ptrace 1
[ "$RC" = 0 ] && [ "$LAST_OUT" = "ptrace: allowed" ] || fail "ptrace with CAP_SYS_PTRACE added did not work"

# --- securityContext ----------------------------------------------------------------------
denied readonly "writing / under readOnlyRootFilesystem" touch /written
ex readonly grep Cap /proc/1/status
case "$LAST_OUT" in *"CapEff:	0000000000000000"*"CapBnd:	0000000000000000"*) ;; *) fail "capabilities drop ALL left capabilities" ;; esac

ex nonroot id
case "$LAST_OUT" in "uid=1000 gid=2000 groups=2000,3000") ;; *) fail "runAsUser/runAsGroup/supplementalGroups not applied" ;; esac

wait_for CreateContainerConfigError '{.status.containerStatuses[0].state.waiting.reason}' pod rootimage
UID_ROOT=$(jp '{.metadata.uid}' pod rootimage)
MSG=$(jp '{.status.containerStatuses[0].state.waiting.message}' pod rootimage)
expect_eq "$MSG" "container has runAsNonRoot and image will run as root (pod: \"rootimage_default($UID_ROOT)\", container: c)" "the runAsNonRoot refusal"
expect_eq "$(jp '{.status.phase}' pod rootimage)" Pending "phase of the refused pod"
[ -z "$(runc --root "$DATA_DIR/node/runc" list -q | grep "^$UID_ROOT-")" ] || fail "the refused container was started"
k describe pod rootimage >/dev/null
expect "Error: container has runAsNonRoot and image will run as root"
k get pod rootimage
expect CreateContainerConfigError

PLAIN_UID=$(jp '{.metadata.uid}' pod plain)
PIDS_MAX=$(cat "/sys/fs/cgroup/pids/baton/$PLAIN_UID/c/pids.max" 2>/dev/null || cat "/sys/fs/cgroup/baton/$PLAIN_UID/c/pids.max")
expect_eq "$PIDS_MAX" 4096 "pids.max of a default container"

# --- A field Baton does not implement: refused with a 422 naming it ------------------------
cat >"$E2E_TMP/hostnet.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  containers: [{name: c, image: $IMG}]
YAML
k_fails apply -f "$E2E_TMP/hostnet.yaml" >/dev/null
expect 'spec.hostNetwork: Forbidden: not supported by Baton'
LAST_OUT=$(curl_api POST /api/v1/namespaces/default/pods -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/hostnet.yaml")
expect_eq "$(printf '%s' "$LAST_OUT" | tail -n 1)" 422 "status code of a hostNetwork pod"
expect '"reason":"Invalid"'
k_fails get pod hostnet >/dev/null
pass
