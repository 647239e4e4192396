#!/usr/bin/env bash
# Hardening: a container that logs without end does not fill the disk. Container logs are
# rotated as the kubelet's `containerLogMaxSize` / `containerLogMaxFiles` rotate them, here with
# `--container-log-max-size 1Mi --container-log-max-files 3`: a pod writes ~10 MiB of numbered
# lines (13 MiB of log records: a dozen rotations) and its log directory never holds more than 3 files of at most
# 1 MiB each (`0.log` and `0.log.<time>` parts); `kubectl logs --tail 5` shows the last lines;
# a `kubectl logs -f` started before the output sees every line exactly once, in order,
# across the rotations. After a restart `--previous` shows the end of the rotated run, and the
# start of a third run removes the first run's files (one ended run is kept, as the kubelet's
# garbage collection keeps one dead container). Bad flag values are refused at start. Needs
# root and runc (CI has both).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-300}

# bad_flags MESSAGE FLAGS...: `baton server FLAGS` exits at once with clap's usage error
# naming the flag and MESSAGE.
bad_flags() {
  local want=$1; shift
  LAST_OUT=$(timeout 20 "$BATON" server --data-dir "$E2E_TMP/bad" --listen 127.0.0.1:0 \
    --disable agent "$@" 2>&1)
  local rc=$?
  [ "$rc" = 2 ] || fail "baton server $* exited $rc, not 2 (a usage error)"
  expect "invalid value"
  expect "${1%%=*}"
  expect "$want"
}
bad_flags "must be at least 2" --container-log-max-files 1
bad_flags "must be at least 2" --container-log-max-files 0
bad_flags "not a whole number" --container-log-max-files five
bad_flags "must be more than 0 bytes" --container-log-max-size 0
bad_flags "must be more than 0 bytes" --container-log-max-size=-1
bad_flags "not a quantity such as 10Mi" --container-log-max-size 10MB
echo "bad flag values refused"

start_registry || fail "starting the registry"
build_hello_image hello:v1 "logs" >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building the test image failed"; }
IMAGE="127.0.0.1:${REGISTRY_PORT:-5000}/hello:v1"
start_server --container-log-max-size 1Mi --container-log-max-files 3
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# Each run prints "start", waits for /tmp/go to hold a count, prints that many numbered lines
# of 100 bytes (pausing 50 ms every 1000), then "done", and ends once /tmp/end exists (a
# fresh root filesystem each run: the files are gone when it restarts).
PAD=$(printf 'x%.0s' $(seq 1 93))
cat >"$E2E_TMP/spew.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: spew
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: spew
    image: IMAGE
    command:
    - /bin/sh
    - -c
    - |
      echo start
      until [ -s /tmp/go ]; do sleep 0.1; done
      n=$(cat /tmp/go)
      i=1
      while [ $i -le $n ]; do
        printf '%06d %s\n' $i PAD
        if [ $((i % 1000)) = 0 ]; then sleep 0.05; fi
        i=$((i + 1))
      done
      echo done
      until [ -e /tmp/end ]; do sleep 0.1; done
YAML
sed -i "s|IMAGE|$IMAGE|; s|PAD|$PAD|" "$E2E_TMP/spew.yaml"
k apply -f "$E2E_TMP/spew.yaml" >/dev/null
wait_for true '{.status.containerStatuses[0].ready}' pod spew
UID_=$(jp '{.metadata.uid}' pod spew)
LOGDIR="$DATA_DIR/node/logs/default_spew_$UID_/spew"

# until_file_has FILE TEXT SECONDS
until_file_has() {
  for _ in $(seq 1 $(($3 * 10))); do grep -qx "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  LAST_OUT=$(tail -n 5 "$1" 2>&1)
  fail "$1 did not show '$2' within $3 s"
}

# A follower from before the first line.
"$KUBECTL" logs -f spew >"$E2E_TMP/follow.txt" 2>"$E2E_TMP/follow.err" &
FOLLOW=$!
until_file_has "$E2E_TMP/follow.txt" start 20

N=100000
k exec spew -- /bin/sh -c "echo $N >/tmp/go" >/dev/null
# While it writes: never more than 3 files, 1 MiB each.
MAX_FILES=0 MAX_BYTES=0 MAX_FILE=0
for _ in $(seq 1 1200); do
  read -r files bytes biggest < <(find "$LOGDIR" -type f -printf '%s\n' 2>/dev/null \
    | awk '{s += $1; n++; if ($1 > m) m = $1} END {print n + 0, s + 0, m + 0}')
  [ "$files" -gt "$MAX_FILES" ] && MAX_FILES=$files
  [ "$bytes" -gt "$MAX_BYTES" ] && MAX_BYTES=$bytes
  [ "$biggest" -gt "$MAX_FILE" ] && MAX_FILE=$biggest
  grep -qx done "$E2E_TMP/follow.txt" && break
  sleep 0.1
done
until_file_has "$E2E_TMP/follow.txt" done 1
kill "$FOLLOW" 2>/dev/null; wait "$FOLLOW" 2>/dev/null
echo "while writing: at most $MAX_FILES files, $MAX_BYTES bytes, the largest $MAX_FILE bytes"
[ "$MAX_FILES" -le 3 ] || fail "the log dir held $MAX_FILES files (max 3)"
[ "$MAX_FILE" -le 1048576 ] || fail "a log file grew to $MAX_FILE bytes (max 1Mi)"
[ "$MAX_BYTES" -le 3145728 ] || fail "the log dir held $MAX_BYTES bytes (max 3Mi)"

# The follower saw "start", every line once and in order across the rotations, then "done".
check_sequence() {
  awk -v pad="$PAD" -v first="$2" -v last="$3" '
    $0 == "start" || $0 == "done" { next }
    {
      n = $1 + 0
      if ($2 != pad) { print "line " NR " garbled: " substr($0, 1, 40); exit 1 }
      if (seen && n != prev + 1) { print "after " prev " came " n " (line " NR ")"; exit 1 }
      if (!seen && first != "" && n != first) { print "first number " n ", not " first; exit 1 }
      prev = n; seen = 1; count++
    }
    END { if (prev != last) { print "last number " prev ", not " last; exit 1 } }' "$1"
}
LAST_OUT=$(check_sequence "$E2E_TMP/follow.txt" 1 "$N") || fail "kubectl logs -f across rotations: $LAST_OUT"
[ "$(head -n 1 "$E2E_TMP/follow.txt")" = start ] || fail "kubectl logs -f did not begin with start"
[ "$(tail -n 1 "$E2E_TMP/follow.txt")" = done ] || fail "kubectl logs -f did not end with done"
LINES=$(wc -l <"$E2E_TMP/follow.txt")
[ "$LINES" = $((N + 2)) ] || fail "kubectl logs -f printed $LINES lines, not $((N + 2))"
echo "kubectl logs -f: all $N lines once, in order"

# The directory: the current file and two rotated parts, named <log>.<UTC time>.
LAST_OUT=$(ls "$LOGDIR")
printf '%s\n' "$LAST_OUT"
[ "$(printf '%s\n' "$LAST_OUT" | wc -l)" = 3 ] || fail "expected 3 files in $LOGDIR"
expect "0.log"
[ "$(printf '%s\n' "$LAST_OUT" | grep -cE '^0\.log\.[0-9]{8}-[0-9]{6}\.[0-9]{9}$')" = 2 ] \
  || fail "expected two rotated files 0.log.<YYYYMMDD-HHMMSS.nnnnnnnnn>"
TOTAL=$(du -cb "$LOGDIR"/* | tail -n 1 | cut -f 1)
[ "$TOTAL" -le 3145728 ] || fail "the log dir holds $TOTAL bytes (max 3Mi)"

# kubectl logs: the current file, the end of the output; older lines were rotated away.
"$KUBECTL" logs spew >"$E2E_TMP/current.txt" || fail "kubectl logs failed"
CURRENT=$(wc -l <"$E2E_TMP/current.txt")
FIRST=$(head -n 1 "$E2E_TMP/current.txt" | cut -d ' ' -f 1)
[ "$FIRST" != start ] && [ "$((10#$FIRST))" -gt 1 ] || fail "kubectl logs begins with '$FIRST': nothing rotated away"
LAST_OUT=$(check_sequence "$E2E_TMP/current.txt" "" "$N") || fail "kubectl logs: $LAST_OUT"
echo "kubectl logs: the current file, $CURRENT lines from $FIRST"

# --tail 5: the last five lines (of the current file, as the kubelet reads it).
TAIL=5; [ "$CURRENT" -lt 5 ] && TAIL=$CURRENT
WANT=$( { for i in $(seq $((N - 3)) "$N"); do printf '%06d %s\n' "$i" "$PAD"; done; echo done; } | tail -n "$TAIL")
k logs spew --tail 5 >/dev/null
expect_eq "$LAST_OUT" "$WANT" "kubectl logs --tail 5"
echo "kubectl logs --tail 5: the last lines"

# A restart: --previous is the rotated run's current file; the new run has its own.
k exec spew -- /bin/sh -c ': >/tmp/end' >/dev/null
wait_for 1 '{.status.containerStatuses[0].restartCount}' pod spew
k logs spew --previous --tail 1 >/dev/null
expect_eq "$LAST_OUT" done "kubectl logs --previous --tail 1"
for _ in $(seq 1 100); do [ "$("$KUBECTL" logs spew 2>/dev/null)" = start ] && break; sleep 0.1; done
k logs spew >/dev/null
expect_eq "$LAST_OUT" start "kubectl logs after the restart"
[ -f "$LOGDIR/1.log" ] || fail "no 1.log for the second run"
[ "$(ls "$LOGDIR" | grep -c '^0\.log')" = 3 ] || fail "the first run's files are not all kept: $(ls "$LOGDIR")"

# A third run: the first run's files go, the second's stay (for --previous).
k exec spew -- /bin/sh -c 'echo 3 >/tmp/go; : >/tmp/end' >/dev/null
wait_for 2 '{.status.containerStatuses[0].restartCount}' pod spew
for _ in $(seq 1 100); do ls "$LOGDIR" | grep -q '^2\.log$' && break; sleep 0.1; done
LAST_OUT=$(ls "$LOGDIR")
expect_eq "$(printf '%s\n' "$LAST_OUT" | tr '\n' ' ')" "1.log 2.log " "the log dir after a third start"
k logs spew --previous >/dev/null
expect_eq "$LAST_OUT" "start
000001 $PAD
000002 $PAD
000003 $PAD
done" "kubectl logs --previous of the second run"

k delete pod spew --wait=false >/dev/null
pass
