# Shared harness for the end-to-end scenarios: starts a Baton server on a free loopback port
# with a fresh data dir, points the real kubectl at it, and gives assertions that print the
# kubectl output and the server log tail when they fail.
#
# Environment: BATON (the binary), KUBECTL (the kubectl to test), E2E_STORE (`etcd`: every
# server of the scenario runs with `--store etcd://…` on an etcd of the scenario's own, started
# by the first `start_server`; default: the embedded store). Source this file, then call
# `start_server`; the server (and etcd) is stopped and its data dir removed on exit.

set -uo pipefail

: "${BATON:?BATON must name the baton binary}"
: "${KUBECTL:=kubectl}"

E2E_TMP=$(mktemp -d /tmp/baton-e2e.XXXXXX)
# cargo and rustup (the tutorial's Makefile builds with them) keep using the real home.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export HOME="$E2E_TMP/home"            # fresh kubectl discovery cache per scenario
mkdir -p "$HOME"
DATA_DIR="$E2E_TMP/data"
SERVER_LOG="$E2E_TMP/server.log"
SERVER_PID=""
SCENARIO=$(basename "$0" .sh)
LAST_OUT=""

# AGENT=1: the scenario runs real containers on this machine's node agent (root and runc
# needed); otherwise servers start with `--disable agent` and pods go to simulated nodes.
: "${AGENT:=0}"

# Removes what real containers left: pods deleted through the API first (the agent cleans up
# after them), then any runc container, mount or network namespace of this data dir.
agent_cleanup() {
  if [ -n "$SERVER_PID" ] && [ -f "$DATA_DIR/kubeconfig" ]; then
    "$KUBECTL" delete deploy,rs,rc --all --all-namespaces --wait=false >/dev/null 2>&1
    "$KUBECTL" delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
    for _ in $(seq 1 100); do
      [ -z "$(runc --root "$DATA_DIR/node/runc" list -q 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; fi
  for id in $(runc --root "$DATA_DIR/node/runc" list -q 2>/dev/null); do
    runc --root "$DATA_DIR/node/runc" delete --force "$id" >/dev/null 2>&1
  done
  # Whatever still runs in a cgroup of this data dir's pods goes too.
  for uid in $(ls "$DATA_DIR/node/pods" 2>/dev/null); do
    # cgroup v1's memory hierarchy, or v2's unified one.
    find "/sys/fs/cgroup/memory/baton/$uid" "/sys/fs/cgroup/baton/$uid" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  awk -v d="$DATA_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  for uid in $(ls "$DATA_DIR/node/pods" 2>/dev/null); do
    ip netns del "baton-$uid" 2>/dev/null
    find "/sys/fs/cgroup" -depth -type d -path "*/baton/$uid*" -exec rmdir {} + 2>/dev/null
  done
}

cleanup() {
  if [ "$AGENT" = 1 ]; then agent_cleanup; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  if [ -n "$ETCD_PID" ]; then kill "$ETCD_PID" 2>/dev/null; wait "$ETCD_PID" 2>/dev/null; fi
  if declare -F stop_registry >/dev/null; then stop_registry; fi
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$SCENARIO with $(basename "$KUBECTL")]: $*" >&2
  if [ -n "$LAST_OUT" ]; then
    echo "--- last kubectl output:" >&2
    printf '%s\n' "$LAST_OUT" | tail -n 40 >&2
  fi
  echo "--- server log tail:" >&2
  tail -n 30 "$SERVER_LOG" >&2 2>/dev/null
  exit 1
}

# --- etcd (Debian's etcd-server) -------------------------------------------------------------
ETCD_PID=""
ETCD_STORE=""
: "${E2E_STORE:=embedded}"

# start_etcd: one etcd member on free loopback ports, data in the scenario's temp dir, stopped
# on exit; sets ETCD_STORE (etcd://127.0.0.1:PORT) and ETCDCTL (etcdctl against it).
start_etcd() {
  command -v etcd >/dev/null && command -v etcdctl >/dev/null \
    || fail "etcd and etcdctl are needed: install Debian's etcd-server and etcd-client (scripts/packages.sh)"
  local port peer
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  peer=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Baton's objects go up to 3 MiB (etcd's default request limit is 1.5 MiB).
  etcd --name e2e --data-dir "$E2E_TMP/etcd" --max-request-bytes 3400000 \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "e2e=http://127.0.0.1:$peer" >"$E2E_TMP/etcd.log" 2>&1 &
  ETCD_PID=$!
  ETCD_STORE="etcd://127.0.0.1:$port"
  ETCDCTL=(env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$port")
  for _ in $(seq 1 100); do
    "${ETCDCTL[@]}" endpoint health >/dev/null 2>&1 && return 0
    kill -0 "$ETCD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$E2E_TMP/etcd.log" >&2
  fail "etcd did not become healthy in 10 s"
}

# start_server [extra baton server flags...]
start_server() {
  local agent_flags=(--disable agent) store_flags=()
  if [ "$AGENT" = 1 ]; then agent_flags=(); fi
  if [ "$E2E_STORE" = etcd ]; then
    [ -n "$ETCD_PID" ] || start_etcd
    case " $* " in *" --store "*) ;; *) store_flags=(--store "$ETCD_STORE") ;; esac
  fi
  "$BATON" server --data-dir "$DATA_DIR" --listen 127.0.0.1:0 "${agent_flags[@]}" "${store_flags[@]}" "$@" \
    >"$E2E_TMP/server.out" 2>"$SERVER_LOG" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if grep -q '^export KUBECONFIG=' "$E2E_TMP/server.out" 2>/dev/null; then
      export KUBECONFIG="$DATA_DIR/kubeconfig"
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then fail "server exited during start"; fi
    sleep 0.1
  done
  fail "server did not become ready in 10s"
}

# Stops the server with SIGKILL (for durability scenarios).
kill_server() {
  kill -9 "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

# k ARGS...: runs kubectl; output in $LAST_OUT; fails the scenario on a non-zero exit.
k() {
  LAST_OUT=$("$KUBECTL" "$@" 2>&1) || fail "kubectl $* exited non-zero"
  printf '%s\n' "$LAST_OUT"
}

# k_fails ARGS...: runs kubectl expecting a non-zero exit; output in $LAST_OUT.
k_fails() {
  if LAST_OUT=$("$KUBECTL" "$@" 2>&1); then fail "kubectl $* succeeded but should have failed"; fi
  printf '%s\n' "$LAST_OUT"
}

# expect TEXT: the last kubectl output contains TEXT.
expect() {
  case "$LAST_OUT" in
    *"$1"*) ;;
    *) fail "expected output to contain: $1" ;;
  esac
}

# expect_not TEXT: the last kubectl output does not contain TEXT.
expect_not() {
  case "$LAST_OUT" in
    *"$1"*) fail "expected output not to contain: $1" ;;
    *) ;;
  esac
}

# jp JSONPATH ARGS...: prints one value with -o jsonpath.
jp() {
  local path=$1; shift
  LAST_OUT=$("$KUBECTL" get "$@" -o "jsonpath=$path" 2>&1) || fail "kubectl get $* -o jsonpath=$path failed"
  printf '%s' "$LAST_OUT"
}

# wait_for EXPECTED JSONPATH ARGS...: retries a jsonpath check every 0.1 s, WAIT_TRIES times
# (default 200, about 20 s), and fails the scenario with the last value seen.
wait_for() {
  local want=$1; shift
  local path=$1; shift
  for _ in $(seq 1 "${WAIT_TRIES:-200}"); do
    # Not through jp: a failed kubectl is retried, and LAST_OUT keeps the last answer.
    LAST_OUT=$("$KUBECTL" get "$@" -o "jsonpath=$path" 2>&1) && [ "$LAST_OUT" = "$want" ] && return 0
    sleep 0.1
  done
  set -- "$path" "$@"
  fail "timed out waiting for $* to be '$want' (last: '$LAST_OUT')"
}

# hold_port: listens on a free loopback port for 60 s in the background, so a server can be
# pointed at a taken port; sets TAKEN (the port) and HOLDER (the pid to kill).
hold_port() {
  python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$E2E_TMP/taken" &
  HOLDER=$!
  for _ in $(seq 1 50); do [ -s "$E2E_TMP/taken" ] && break; sleep 0.1; done
  TAKEN=$(cat "$E2E_TMP/taken")
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# curl_api METHOD PATH [curl args...]: raw HTTPS request with the admin token; prints
# "HTTP_CODE BODY".
curl_api() {
  local method=$1 path=$2; shift 2
  local server token
  server=$(grep 'server:' "$KUBECONFIG" | awk '{print $2}')
  token=$(grep 'token:' "$KUBECONFIG" | awk '{print $2}')
  curl -sS --cacert "$DATA_DIR/ca.crt" -H "Authorization: Bearer $token" -X "$method" \
    -w '\n%{http_code}' "$server$path" "$@"
}

pass() {
  echo "PASS [$SCENARIO with $(basename "$KUBECTL")]"
}

# --- Load during rollouts (baton-loadcheck, built with the workspace) -------------------
LOADCHECK="${LOADCHECK:-$(dirname "$BATON")/baton-loadcheck}"
LOAD_PIDS=()

# load_start NAME URL [loadcheck flags...]: bounded background load (mixed: half kept-alive,
# half new connections) until `load_stop`; its summary goes to $E2E_TMP/load-NAME.json.
load_start() {
  local name=$1 url=$2; shift 2
  rm -f "$E2E_TMP/load-$name.stop" "$E2E_TMP/load-$name.json"
  "$LOADCHECK" --url "$url" --mode mixed --requests 2000000 --max-seconds 900 \
    --concurrency 4 --stop-file "$E2E_TMP/load-$name.stop" --out "$E2E_TMP/load-$name.json" \
    "$@" >/dev/null 2>"$E2E_TMP/load-$name.err" &
  LOAD_PIDS+=($!)
}

# load_stop NAME...: stops the named loads and waits for their summaries.
load_stop() {
  local n
  for n in "$@"; do touch "$E2E_TMP/load-$n.stop"; done
  for n in "$@"; do
    for _ in $(seq 1 600); do [ -s "$E2E_TMP/load-$n.json" ] && break; sleep 0.1; done
    [ -s "$E2E_TMP/load-$n.json" ] || fail "load $n wrote no summary: $(cat "$E2E_TMP/load-$n.err" 2>/dev/null)"
  done
}

# load_field NAME PYTHON_EXPR: a value from a load summary (`d` is the summary).
load_field() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$E2E_TMP/load-$1.json"
}

# load_expect_clean NAME MIN_TOTAL: no failed request at all, at least MIN_TOTAL requests.
load_expect_clean() {
  local name=$1 min=$2 summary
  summary=$(load_field "$name" "json.dumps({k: d[k] for k in ('total','ok','non_2xx','connect_errors','other_errors','stale_retries','bodies')})")
  echo "load $name: $summary"
  local total ok
  total=$(load_field "$name" "d['total']")
  ok=$(load_field "$name" "d['ok']")
  if [ "$total" != "$ok" ]; then
    # What the kernel saw, to tell a lost packet from an application's silence: packets
    # refused for skipping NAT (counter rules of Baton's table) and conntrack's statistics.
    LAST_OUT="$summary
$(load_field "$name" "json.dumps(d.get('errors_sample', [])[:10], indent=1)")
--- nft counters: $(nft list table ip baton 2>&1 | grep -E 'counter' | tr -s ' \t' ' ')
--- conntrack -S: $(conntrack -S 2>&1 | tr -s ' \t' ' ')"
    fail "load $name: $((total - ok)) of $total requests failed"
  fi
  [ "$total" -ge "$min" ] || fail "load $name: only $total requests (want at least $min)"
}

# curl_body URL [curl flags...]: the body, failing the scenario on an HTTP error.
curl_body() {
  local url=$1; shift
  LAST_OUT=$(curl -sS -f --max-time 5 "$@" "$url" 2>&1) || fail "curl $url failed: $LAST_OUT"
  printf '%s' "$LAST_OUT"
}

# rollout_ok KIND/NAME [-n NS]: `kubectl rollout status` exits 0 with the usual last line;
# on failure the object and its pods are described.
rollout_ok() {
  if ! LAST_OUT=$("$KUBECTL" rollout status "$@" --timeout=180s 2>&1); then
    LAST_OUT="$LAST_OUT
$("$KUBECTL" describe "$@" 2>&1 | tail -n 30)
$("$KUBECTL" get pods -o wide 2>&1)"
    fail "kubectl rollout status $* failed"
  fi
  expect "successfully rolled out"
}

# baton_reset_leaves_nothing: `baton reset` stops the server and removes everything Baton made
# on this machine (checked one by one), and a second run finds nothing left.
baton_reset_leaves_nothing() {
  LAST_OUT=$("$BATON" reset --data-dir "$DATA_DIR" 2>&1) || fail "baton reset failed"
  printf '%s\n' "$LAST_OUT" | head -n 5
  expect "removed"
  SERVER_PID=""
  local leftovers
  # The kernel finishes some removals (veths of deleted namespaces, killed processes) a moment
  # later: look again for up to 3 s before calling anything left behind.
  for _ in $(seq 1 30); do
    leftovers=$(_baton_leftovers)
    [ -z "$leftovers" ] && break
    sleep 0.1
  done
  [ -z "$leftovers" ] || fail "left behind after baton reset: $leftovers"
  LAST_OUT=$("$BATON" reset --data-dir "$DATA_DIR" 2>&1) || fail "second baton reset failed"
  expect "nothing to remove"
}

# What Baton may have left on this machine, one line each.
_baton_leftovers() {
  (
    nft list table ip baton >/dev/null 2>&1 && echo "nftables table ip baton"
    ip -o link show baton0 >/dev/null 2>&1 && echo "bridge baton0"
    ip -o link show | grep -o ' bv[0-9a-f]*' | sed 's/^/veth/'
    ip netns list | grep '^baton-' | sed 's/^/netns /'
    ip route show 10.96.0.0/12 | sed 's/^/route /'
    awk -v d="$DATA_DIR" 'index($2, d) == 1 {print "mount " $2}' /proc/mounts
    find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/baton*' 2>/dev/null | sed 's/^/cgroup /'
    runc --root "$DATA_DIR/node/runc" list -q 2>/dev/null | sed 's/^/container /'
    # Killed containers whose parent (the server) is gone wait as zombies for PID 1 to reap
    # them: they hold nothing, so only live processes count.
    ps -eo stat=,comm= | awk '$2 == "hello" && $1 !~ /^Z/ {found=1} END {exit !found}' && echo "a hello process"
  )
}

# build_tutorial_images: hello v1 and v2 with the tutorial's Makefile, pushed to $REGISTRY;
# sets EXAMPLE (the tutorial's directory) and IMG (the image name without tag).
build_tutorial_images() {
  EXAMPLE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/rolling-update-test" && pwd)"
  local tag
  for tag in v1 v2; do
    make -C "$EXAMPLE" all TAG=$tag REGISTRY="$REGISTRY" BUILDER=buildah \
      BUILDAH_FLAGS="--root $REGISTRY_DIR/buildah/root --runroot $REGISTRY_DIR/buildah/run --storage-driver vfs" \
      >"$E2E_TMP/make-$tag.log" 2>&1 || { tail -n 30 "$E2E_TMP/make-$tag.log" >&2; fail "make TAG=$tag all failed"; }
  done
  IMG="$REGISTRY/library/hello"
}

# until_answer URL TEXT [curl flags]: retries for up to 10 s until URL answers TEXT.
until_answer() {
  local url=$1 want=$2; shift 2
  for _ in $(seq 1 100); do
    [ "$(curl -s --max-time 2 "$@" "$url")" = "$want" ] && return 0
    sleep 0.1
  done
  fail "$url did not answer '$want' (last: '$(curl -s --max-time 2 "$@" "$url" 2>&1)')"
}
