#!/usr/bin/env bash
# Issue 16 must-hold 4 with real containers: `kubectl run -i --rm` runs a script typed into
# the container's `sh` (its stdin held by the container's monitor) and removes the pod;
# `kubectl run -it --rm` and `kubectl exec -it` under a pseudo-terminal (util-linux `script`)
# give the shell a terminal (`tty` prints a /dev/pts device, the window size reaches it);
# `kubectl attach -i` to a pod with `stdin: true` reaches its process twice (stdin stays open
# without stdinOnce). Needs root and runc (CI has both).
# kubectl-versions: 1.27 1.33 — SPDY (1.27) and WebSocket (1.33) streams with terminals.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry || fail "starting the registry"
build_hello_image hello:v1 "terminal" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
IMAGE="127.0.0.1:${REGISTRY_PORT:-5000}/hello:v1"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# gone POD: waits until the pod no longer exists.
gone() {
  for _ in $(seq 1 "$WAIT_TRIES"); do
    "$KUBECTL" get pod "$1" >/dev/null 2>&1 || return 0
    sleep 0.2
  done
  fail "pod $1 was not removed"
}

# on_terminal NAME COMMAND: runs COMMAND (a shell line) under `script` on a new pseudo-terminal
# of 100x30, its input from $E2E_TMP/NAME.in (a fifo kept open on fd 7), its screen in
# $E2E_TMP/NAME.out.
on_terminal() {
  local name=$1 line=$2
  mkfifo "$E2E_TMP/$name.in"
  exec 7<>"$E2E_TMP/$name.in"
  script -qfec "stty cols 100 rows 30; $line" "$E2E_TMP/$name.out" <&7 >/dev/null 2>&1 &
  TERM_PID=$!
}

# screen_shows NAME TEXT: waits until the terminal's screen shows TEXT.
screen_shows() {
  for _ in $(seq 1 "$WAIT_TRIES"); do
    grep -qF -- "$2" "$E2E_TMP/$1.out" 2>/dev/null && return 0
    sleep 0.1
  done
  LAST_OUT=$(cat "$E2E_TMP/$1.out" 2>/dev/null)
  fail "the terminal $1 never showed: $2"
}

# typed TEXT: types TEXT (printf format) on the current terminal.
typed() { printf "$1" >&7; }

# terminal_ends NAME: waits for the terminal's command to end; its screen becomes LAST_OUT.
terminal_ends() {
  for _ in $(seq 1 150); do
    kill -0 "$TERM_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$TERM_PID" 2>/dev/null && { kill "$TERM_PID"; LAST_OUT=$(cat "$E2E_TMP/$1.out"); fail "$1 did not end"; }
  wait "$TERM_PID" 2>/dev/null
  exec 7>&-
  LAST_OUT=$(cat "$E2E_TMP/$1.out")
}

# --- kubectl run -i --rm: a script on stdin, no terminal -----------------------------------
LAST_OUT=$(printf 'echo typed-$((6*7))\nexit 3\n' | timeout 90 "$KUBECTL" run shell-i -i --rm \
  --restart=Never --image="$IMAGE" --command -- sh 2>&1)
expect 'typed-42'
gone shell-i

# --- kubectl run -it --rm on a terminal -------------------------------------------------------
on_terminal run-it "$KUBECTL run shell-t -it --rm --restart=Never --image=$IMAGE --command -- sh"
screen_shows run-it "If you don't see a command prompt"
# The prompt shows once the container's shell reads the terminal.
for _ in $(seq 1 50); do
  typed '\r'
  grep -qF '/ # ' "$E2E_TMP/run-it.out" && break
  sleep 0.2
done
screen_shows run-it '/ # '
typed 'tty; stty size; echo sum-$((2+3))\r'
screen_shows run-it 'sum-5'
typed 'exit\r'
terminal_ends run-it
expect '/dev/pts/'
expect '30 100'
gone shell-t

# --- kubectl exec -it on a terminal; attach -i twice -----------------------------------------
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: keeper}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: $IMAGE
    command: [sh]
    stdin: true
YAML
wait_for Running '{.status.phase}' pod keeper
on_terminal exec-it "$KUBECTL exec -it keeper -- sh -c 'tty; stty size; read x; echo got-\$x'"
screen_shows exec-it '/dev/pts/'
screen_shows exec-it '30 100'
typed 'hello\r'
terminal_ends exec-it
expect 'got-hello'

# An attach ends when the container does: each is stopped once its answer came (up to 30 s).
for word in first second; do
  printf 'echo attached-%s\n' "$word" | "$KUBECTL" attach -i keeper >"$E2E_TMP/attach.out" 2>&1 &
  attach_pid=$!
  for _ in $(seq 1 300); do
    grep -q "attached-$word" "$E2E_TMP/attach.out" && break
    sleep 0.1
  done
  kill "$attach_pid" 2>/dev/null; wait "$attach_pid" 2>/dev/null
  LAST_OUT=$(cat "$E2E_TMP/attach.out")
  expect "attached-$word"
done
# What the process printed is in its log too (the monitor writes both).
k logs keeper >/dev/null
expect 'attached-first'
expect 'attached-second'
# The kubelet's events, as `kubectl describe` lists them (the image came with the first pod).
k get events --field-selector involvedObject.name=keeper -o 'custom-columns=R:.reason,M:.message' >/dev/null
expect "Container image \"$IMAGE\" already present on machine"
expect 'Created container: sh'
expect 'Started container sh'
k delete pod keeper --wait=false >/dev/null
pass
