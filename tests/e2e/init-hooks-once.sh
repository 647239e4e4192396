#!/usr/bin/env bash
# Init containers, sidecars, lifecycle hooks and termination messages on real containers
# (issue 16, must-holds 2 and 5), through the real kubectl:
#  - two init containers run in order, each to its end (the second reads the file the first
#    wrote into a shared emptyDir), `kubectl get pod` shows Init:0/3, Init:2/3, then Running,
#    and `kubectl logs -c <init container>` shows its output;
#  - a sidecar (an init container with restartPolicy: Always) starts before the second init
#    container and the app, and at deletion gets SIGTERM only once the app has ended;
#  - the app's preStop hook runs after the deletion and before SIGTERM (its output precedes
#    the app's 'got TERM' in the followed log), and the grace period counts it: a 3 s hook
#    and an app that ignores SIGTERM are SIGKILLed 6 s (the grace period) after the deletion,
#    not 9 s;
#  - an init container that keeps failing shows Init:CrashLoopBackOff; one in a Never pod
#    shows Init:Error and the pod is Failed;
#  - a container's /dev/termination-log (written by a non-root user) is its terminated
#    message; with FallbackToLogsOnError a failed container's message is the end of its log;
#  - a probe on a plain init container and a stop signal are 422s naming the field.
# Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-300}
STARTED=$(date +%s)

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "hooks" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

now() { date +%s.%N; }
# elapsed START: seconds since START, as a decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
# between X LO HI: LO <= X < HI.
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN {exit !(x >= lo && x < hi)}'; }
# status POD: the STATUS column of `kubectl get pod`.
status() { "$KUBECTL" get pod "$1" --no-headers 2>/dev/null | awk '{print $3}'; }

# --- Must-hold 2: init containers in order, a sidecar first and last -----------------------
cat >"$E2E_TMP/demo.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: demo}
spec:
  terminationGracePeriodSeconds: 6
  volumes:
  - {name: work, emptyDir: {}}
  initContainers:
  - name: first
    image: $REG/hello:v1
    command: ["sh", "-c", "echo first ran; echo first >> /work/order; sleep 2; echo 'written by first' > /work/note"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: proxy
    image: $REG/hello:v1
    restartPolicy: Always
    command: ["sh", "-c", "echo proxy >> /work/order; trap 'echo proxy got TERM; exit 0' TERM; echo proxy up; while :; do sleep 0.1; done"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: $REG/hello:v1
    command: ["sh", "-c", "echo second >> /work/order; cat /work/note || exit 1; sleep 2"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: $REG/hello:v1
    command: ["sh", "-c", "echo app >> /work/order; trap 'echo app got TERM' TERM; echo app up; while :; do sleep 0.1; done"]
    volumeMounts: [{name: work, mountPath: /work}]
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo prestop begins >> /proc/1/fd/1; sleep 3; echo prestop ends >> /proc/1/fd/1"]}
YAML
k apply -f "$E2E_TMP/demo.yaml" >/dev/null
# Every STATUS `kubectl get pod` shows until the pod runs.
SEEN=""
for _ in $(seq 1 300); do
  s=$(status demo)
  case " $SEEN " in *" $s "*) ;; *) SEEN="$SEEN $s" ;; esac
  [ "$s" = Running ] && break
  sleep 0.1
done
echo "demo STATUS: $SEEN"
for want in Init:0/3 Init:2/3 Running; do
  case " $SEEN " in *" $want "*) ;; *) fail "kubectl get pod never showed $want (saw:$SEEN)" ;; esac
done
wait_for "true true" '{.status.initContainerStatuses[1].ready} {.status.containerStatuses[0].ready}' pod demo
k get pod demo --no-headers
expect "2/2"
expect "Running"
wait_for True '{.status.conditions[?(@.type=="Initialized")].status}' pod demo
k logs demo -c first
expect "first ran"
k logs demo -c second
expect "written by first"
k exec demo -c app -- cat /work/order
expect_eq "$(printf '%s' "$LAST_OUT" | tr '\n' ' ')" "first proxy second app" "start order"
expect_eq "$(jp '{.status.initContainerStatuses[0].state.terminated.reason}' pod demo)" Completed \
  "the first init container's end"
expect_eq "$(jp '{.status.initContainerStatuses[1].started}' pod demo)" true "the sidecar's started"

# --- Must-hold 5 and the sidecar's stop: preStop, SIGTERM, the grace period ----------------
"$KUBECTL" logs -f demo -c app >"$E2E_TMP/app.log" 2>&1 &
APP_LOGS=$!
"$KUBECTL" logs -f demo -c proxy >"$E2E_TMP/proxy.log" 2>&1 &
PROXY_LOGS=$!
for _ in $(seq 1 50); do grep -q "app up" "$E2E_TMP/app.log" && grep -q "proxy up" "$E2E_TMP/proxy.log" && break; sleep 0.1; done
stamp() { # stamp FILE TEXT: the moment TEXT first shows in FILE (polled every 50 ms).
  for _ in $(seq 1 400); do grep -q "$2" "$1" && { now; return; }; sleep 0.05; done
  echo never
}
t0=$(now)
k delete pod demo --wait=false >/dev/null
t_hook=$(stamp "$E2E_TMP/app.log" "prestop begins")
t_term=$(stamp "$E2E_TMP/app.log" "app got TERM")
t_proxy=$(stamp "$E2E_TMP/proxy.log" "proxy got TERM")
for _ in $(seq 1 300); do "$KUBECTL" get pod demo -o name >/dev/null 2>&1 || break; sleep 0.05; done
gone=$(elapsed "$t0")
kill "$APP_LOGS" "$PROXY_LOGS" 2>/dev/null; wait "$APP_LOGS" "$PROXY_LOGS" 2>/dev/null
LAST_OUT="$(cat "$E2E_TMP/app.log")
--- proxy:
$(cat "$E2E_TMP/proxy.log")"
for t in "$t_hook" "$t_term" "$t_proxy"; do [ "$t" != never ] || fail "a stop step never showed in the logs"; done
hook=$(awk -v a="$t0" -v b="$t_hook" 'BEGIN {printf "%.2f", b - a}')
term=$(awk -v a="$t0" -v b="$t_term" 'BEGIN {printf "%.2f", b - a}')
proxy=$(awk -v a="$t0" -v b="$t_proxy" 'BEGIN {printf "%.2f", b - a}')
echo "deletion: preStop at ${hook}s, app SIGTERM at ${term}s, sidecar SIGTERM at ${proxy}s, pod gone at ${gone}s (grace 6 s, hook 3 s)"
grep -n "prestop ends\|app got TERM" "$E2E_TMP/app.log" | head -n 1 | grep -q "prestop ends" \
  || fail "the app got SIGTERM before its preStop hook ended"
between "$term" 2.8 5 || fail "SIGTERM came ${term}s after the deletion (the 3 s preStop hook should delay it)"
between "$proxy" 5.5 8.5 || fail "the sidecar got SIGTERM at ${proxy}s: expected once the app was SIGKILLed at the 6 s grace period's end"
between "$gone" 5.5 9 || fail "the pod went ${gone}s after the deletion (grace 6 s counting the 3 s hook: expected ~6 s, not 9)"

# --- Failing init containers: Init:CrashLoopBackOff, Init:Error -----------------------------
cat >"$E2E_TMP/crash.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: crashy}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: setup, image: $REG/hello:v1, command: ["sh", "-c", "echo setup failing; exit 3"]}
  containers:
  - {name: app, image: $REG/hello:v1}
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: $REG/hello:v1, command: ["sh", "-c", "exit 4"]}
  containers:
  - {name: app, image: $REG/hello:v1}
YAML
k apply -f "$E2E_TMP/crash.yaml" >/dev/null
for _ in $(seq 1 100); do [ "$(status crashy)" = Init:CrashLoopBackOff ] && break; sleep 0.1; done
k get pod crashy --no-headers
expect "Init:CrashLoopBackOff"
expect "0/1"
k logs crashy -c setup
expect "setup failing"
wait_for Failed '{.status.phase}' pod once
k get pod once --no-headers
expect "Init:Error"
expect_eq "$(jp '{.status.initContainerStatuses[0].state.terminated.exitCode}' pod once)" 4 "the init container's exit code"
expect_eq "$(jp '{.status.containerStatuses[0].state.waiting.reason}' pod once)" PodInitializing "the app's state"

# --- Termination messages --------------------------------------------------------------------
cat >"$E2E_TMP/msg.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: msg}
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: $REG/hello:v1
    securityContext: {runAsUser: 1000}
    command: ["sh", "-c", "echo 'last words' > /dev/termination-log; exit 3"]
  - name: logs
    image: $REG/hello:v1
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "i=0; while [ \$i -lt 100 ]; do i=\$((i+1)); echo line \$i; done; exit 1"]
YAML
k apply -f "$E2E_TMP/msg.yaml" >/dev/null
wait_for Failed '{.status.phase}' pod msg
expect_eq "$(jp '{.status.containerStatuses[?(@.name=="file")].state.terminated.message}' pod msg)" "last words" \
  "the termination message from /dev/termination-log"
logs_msg=$(jp '{.status.containerStatuses[?(@.name=="logs")].state.terminated.message}' pod msg)
want=$(i=21; while [ $i -le 100 ]; do echo "line $i"; i=$((i+1)); done)
expect_eq "$logs_msg" "$want" "the FallbackToLogsOnError message (the log's last 80 lines)"

# --- What Kubernetes refuses is a 422 naming the field ----------------------------------------
cat >"$E2E_TMP/bad.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  initContainers:
  - {name: setup, image: $REG/hello:v1, readinessProbe: {exec: {command: ["true"]}}}
  containers:
  - {name: app, image: $REG/hello:v1, lifecycle: {stopSignal: SIGUSR1}}
YAML
k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
expect "spec.containers[0].lifecycle.stopSignal: Forbidden: not supported by Baton"

k delete pod crashy once msg --grace-period=1 --wait=false >/dev/null
echo "init-hooks: $(( $(date +%s) - STARTED )) s"
pass
