#!/usr/bin/env bash
# Real containers given bad input (issue 6, must-hold 5): an image that does not exist, a
# registry that is down, an image that may never be pulled and is absent, a command that is
# not in the image, a memory limit too small to start, and a corrupt image archive. Each
# gives the kubelet's waiting/terminated reason and a message that says what went wrong, in
# the container status and in `kubectl describe pod`; a healthy pod started first keeps
# answering HTTP on its pod IP all along. Needs root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}

start_registry || fail "starting the registry failed"
build_hello_image hello:v1 "This is version 1." >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# A port nothing listens on, for the registry that is down.
DOWN_PORT=""
for p in $(seq 5090 5190); do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { DOWN_PORT=$p; break; }
done
[ -n "$DOWN_PORT" ] || fail "no free port for the down registry"

# The healthy pod, first; it is polled over HTTP from here on.
cat >"$E2E_TMP/healthy.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: healthy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: $REG/hello:v1
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
YAML
k apply -f "$E2E_TMP/healthy.yaml" >/dev/null
wait_for true '{.status.containerStatuses[0].ready}' pod healthy
HEALTHY_IP=$(jp '{.status.podIP}' pod healthy)
[ -n "$HEALTHY_IP" ] || fail "the healthy pod has no IP"
(
  while :; do
    if body=$(curl -s --max-time 2 "http://$HEALTHY_IP:8080/"); then
      echo "ok $body"
    else
      echo "FAILED at $(date +%T.%N)"
    fi
    sleep 0.2
  done
) >"$E2E_TMP/healthy-poll.log" &
POLL_PID=$!
trap 'kill "$POLL_PID" 2>/dev/null; cleanup' EXIT

cat >"$E2E_TMP/bad.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: no-such-image}
spec:
  containers:
  - name: c
    image: $REG/no-such-image:v1
---
apiVersion: v1
kind: Pod
metadata: {name: registry-down}
spec:
  containers:
  - name: c
    image: 127.0.0.1:$DOWN_PORT/hello:v1
---
apiVersion: v1
kind: Pod
metadata: {name: never-pull}
spec:
  containers:
  - name: c
    image: $REG/absent:v1
    imagePullPolicy: Never
---
apiVersion: v1
kind: Pod
metadata: {name: no-command}
spec:
  containers:
  - name: c
    image: $REG/hello:v1
    command: ["/nope"]
---
apiVersion: v1
kind: Pod
metadata: {name: tiny-memory}
spec:
  containers:
  - name: c
    image: $REG/hello:v1
    resources:
      limits: {memory: "${TINY_MEMORY:-1Mi}"}
YAML
k apply -f "$E2E_TMP/bad.yaml" >/dev/null

# state_is POD KIND REASON: polls until containerStatuses[0].state.KIND.reason is REASON and
# leaves the state's message in $MSG.
MSG=""
state_is() {
  local pod=$1 kind=$2 want=$3 got=""
  for _ in $(seq 1 "$WAIT_TRIES"); do
    got=$("$KUBECTL" get pod "$pod" -o "jsonpath={.status.containerStatuses[0].state.$kind.reason}" 2>/dev/null)
    if [ "$got" = "$want" ]; then
      MSG=$("$KUBECTL" get pod "$pod" -o "jsonpath={.status.containerStatuses[0].state.$kind.message}")
      return 0
    fi
    sleep 0.1
  done
  LAST_OUT=$("$KUBECTL" get pod "$pod" -o yaml 2>&1)
  fail "pod $pod: state.$kind.reason never became $want (last: '$got')"
}
# msg_has TEXT WHAT: the last state message contains TEXT (case-insensitive).
msg_has() {
  printf '%s' "$MSG" | grep -qi -- "$1" || fail "$2: message '$MSG' does not mention '$1'"
}
# described POD TEXT...: `kubectl describe pod POD` shows every TEXT.
described() {
  local pod=$1; shift
  k describe pod "$pod" >/dev/null
  for t in "$@"; do expect "$t"; done
}

# An image the registry does not have: ErrImagePull, then ImagePullBackOff; "not found".
state_is no-such-image waiting ErrImagePull
msg_has "not found" "no-such-image ErrImagePull"
described no-such-image "ErrImagePull" "not found"
state_is no-such-image waiting ImagePullBackOff
msg_has "not found" "no-such-image ImagePullBackOff"
msg_has "Back-off pulling image" "no-such-image ImagePullBackOff"
described no-such-image "ImagePullBackOff" "not found" "Back-off pulling image" "Error: ErrImagePull"
echo "no-such-image: ImagePullBackOff: $MSG"

# A registry that is down: the same reasons; "connection refused".
state_is registry-down waiting ErrImagePull
msg_has "connection refused" "registry-down ErrImagePull"
state_is registry-down waiting ImagePullBackOff
msg_has "connection refused" "registry-down ImagePullBackOff"
described registry-down "ImagePullBackOff" "connection refused"
echo "registry-down: ImagePullBackOff: $MSG"

# imagePullPolicy Never and the image is absent: ErrImageNeverPull.
state_is never-pull waiting ErrImageNeverPull
msg_has "absent:v1" "never-pull"
described never-pull "ErrImageNeverPull"
echo "never-pull: ErrImageNeverPull: $MSG"

# A command that is not in the image: StartError with runc's reason, then CrashLoopBackOff.
state_is no-command waiting CrashLoopBackOff
jp '{.status.containerStatuses[0].lastState.terminated.reason}' pod no-command >/dev/null
case "$LAST_OUT" in StartError|RunContainerError) ;; *) fail "no-command: lastState reason '$LAST_OUT', expected StartError" ;; esac
MSG=$(jp '{.status.containerStatuses[0].lastState.terminated.message}' pod no-command)
msg_has "/nope" "no-command"
msg_has "no such file or directory" "no-command"
described no-command "CrashLoopBackOff" "StartError" "/nope"
echo "no-command: lastState StartError: $MSG"

# A memory limit too small to start: OOMKilled (or StartError) with a clear message.
reason=""
for _ in $(seq 1 "$WAIT_TRIES"); do
  reason=$("$KUBECTL" get pod tiny-memory -o 'jsonpath={.status.containerStatuses[0].lastState.terminated.reason}{.status.containerStatuses[0].state.terminated.reason}' 2>/dev/null)
  [ -n "$reason" ] && break
  sleep 0.1
done
case "$reason" in OOMKilled*|StartError*) ;; *) LAST_OUT=$("$KUBECTL" get pod tiny-memory -o yaml 2>&1); fail "tiny-memory: terminated reason '$reason', expected OOMKilled or StartError" ;; esac
MSG=$(jp '{.status.containerStatuses[0].lastState.terminated.message}{.status.containerStatuses[0].state.terminated.message}' pod tiny-memory)
case "$reason" in OOMKilled*) reason=OOMKilled ;; *) reason=StartError; msg_has "memory" "tiny-memory" ;; esac
described tiny-memory "$reason"
echo "tiny-memory: $reason: $MSG"

# A corrupt archive: `baton image import` says so and exits non-zero.
if "$BATON" image --help >/dev/null 2>&1; then
  save_image_archive hello:v1 "$E2E_TMP/hello.tar" >"$E2E_TMP/save.log" 2>&1 \
    || { cat "$E2E_TMP/save.log" >&2; fail "saving the image archive failed"; }
  size=$(stat -c %s "$E2E_TMP/hello.tar")
  head -c $((size / 2)) "$E2E_TMP/hello.tar" >"$E2E_TMP/truncated.tar"
  { head -c 20000 "$E2E_TMP/hello.tar"; head -c 50000 /dev/urandom; } >"$E2E_TMP/garbled.tar"
  printf 'not an archive at all\n' >"$E2E_TMP/text.tar"
  # (No backtrace in the message whatever the caller's environment says.)
  image_cmd() { env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$BATON" image --data-dir "$DATA_DIR" "$@"; }
  for f in truncated garbled text; do
    if out=$(image_cmd import "$E2E_TMP/$f.tar" 2>&1); then
      fail "baton image import of a $f archive succeeded: $out"
    fi
    case "$out" in
      *"$E2E_TMP/$f.tar"*) ;;
      *) fail "baton image import of a $f archive: the error does not name the file: $out" ;;
    esac
    [ "$(printf '%s\n' "$out" | grep -c .)" -le 3 ] || fail "baton image import of a $f archive: a long-winded error: $out"
    echo "import $f: $out"
  done
  out=$(image_cmd ls 2>&1) || fail "baton image ls failed: $out"
  case "$out" in *localhost/hello*) fail "a corrupt archive left an image behind: $out" ;; esac
  # The intact archive imports (so the failures above were about the archives).
  out=$(image_cmd import "$E2E_TMP/hello.tar" 2>&1) || fail "importing the intact archive failed: $out"
  out=$(image_cmd ls 2>&1) || fail "baton image ls failed: $out"
  case "$out" in *localhost/hello*) ;; *) fail "the imported image is not listed: $out" ;; esac
else
  echo "SKIP corrupt archive: this baton has no 'image' command yet"
fi

# The healthy pod answered throughout and is still Ready, never restarted.
kill "$POLL_PID" 2>/dev/null; wait "$POLL_PID" 2>/dev/null
[ "$(grep -c '^ok This is version 1.$' "$E2E_TMP/healthy-poll.log")" -ge 10 ] || fail "the healthy pod was polled too few times: $(cat "$E2E_TMP/healthy-poll.log")"
grep FAILED "$E2E_TMP/healthy-poll.log" && fail "the healthy pod stopped answering while bad pods were handled"
jp '{.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}' pod healthy >/dev/null
[ "$LAST_OUT" = "true 0" ] || fail "the healthy pod: ready/restarts '$LAST_OUT', expected 'true 0'"

pass
