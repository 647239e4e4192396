#!/usr/bin/env bash
# Node agent benchmarks (issue 6), one JSON line per figure, peers measured in the same run:
#  1. pod start latency, create → Ready with the image already present, over PODS bare pods
#     created one after another (each once the previous is Ready, so they accumulate): from
#     just before the POST is sent to the moment a watch opened beforehand delivers the event
#     with Ready=True (bench/pods/podstart.py; ms clocks of our own, not the API's
#     second-resolution timestamps). Beside it the floor: `runc run --detach` of a prepared
#     bundle (one of the benchmark's own pods' config.json, its rootfs a copy of the same
#     image's unpacked rootfs, joining an existing netns), FLOOR_N times, and the ratio.
#  2. server RSS (VmRSS): `--disable agent` idle; with the agent idle (node Ready, no pods);
#     with the agent and PODS running pods; the difference with pods minus idle.
#  3. pull of a ~PULL_MB MB image (busybox + incompressible random data, one layer, FROM scratch
#     with buildah) from Debian's docker-registry on 127.0.0.1: `baton image pull` into a fresh
#     data dir against `buildah pull` into fresh vfs storage, PULL_RUNS times each, interleaved;
#     medians and ratio. Without `baton image`, the first pod of that image (pull + start)
#     minus the pod start p50 above stands in (n=1).
#
# Usage: bench/pods.sh [BATON] [KUBECTL]   (defaults target/release/baton, kubectl; the binary
# is copied first, so a rebuild during the run does not matter). Env: PODS (100), FLOOR_N (50),
# PULL_RUNS (3), PULL_MB (50), BRIDGE (batonbench0), POD_CIDR (10.244.251.0/24). Needs root,
# runc, buildah, docker-registry, busybox-static, jq, python3. Everything it creates (pods,
# containers, netns, mounts, cgroups, bridge, registry, temp dirs) is removed on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BATON_SRC=${1:-target/release/baton}
KUBECTL=${2:-kubectl}
PODS=${PODS:-100}
FLOOR_N=${FLOOR_N:-50}
PULL_RUNS=${PULL_RUNS:-3}
PULL_MB=${PULL_MB:-50}
BRIDGE=${BRIDGE:-batonbench0}
POD_CIDR=${POD_CIDR:-10.244.251.0/24}

TMP=$(mktemp -d /tmp/baton-pods-bench.XXXXXX)
export HOME="$TMP/home" && mkdir -p "$HOME"
cp "$BATON_SRC" "$TMP/baton"
BATON="$TMP/baton"
# shellcheck source=../tests/e2e/registry.sh
source "$HERE/../tests/e2e/registry.sh"

DATA="$TMP/agent"          # the server with the agent
PID=""                     # its pid
PID_N=""                   # the --disable agent server
FLOOR="$TMP/floor"
FLOOR_NS="batonbench-floor-$$"
FLOOR_CG="/batonbench-floor-$$"
BRIDGE_EXISTED=0
ip link show "$BRIDGE" >/dev/null 2>&1 && BRIDGE_EXISTED=1

cleanup() {
  set +e
  if [ -n "$PID" ] && [ -f "$DATA/kubeconfig" ]; then
    KUBECONFIG="$DATA/kubeconfig" "$KUBECTL" delete pods --all --grace-period=0 --force --wait=false >/dev/null 2>&1
    for _ in $(seq 1 150); do
      [ -z "$(runc --root "$DATA/node/runc" list -q 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for p in $PID $PID_N; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  PID="" PID_N=""
  for id in $(runc --root "$DATA/node/runc" list -q 2>/dev/null); do
    runc --root "$DATA/node/runc" delete --force "$id" >/dev/null 2>&1
  done
  for uid in $(ls "$DATA/node/pods" 2>/dev/null); do
    find "/sys/fs/cgroup/memory/baton/$uid" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  for id in $(runc --root "$FLOOR/runc" list -q 2>/dev/null); do
    runc --root "$FLOOR/runc" delete --force "$id" >/dev/null 2>&1
  done
  awk -v d="$TMP" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  for uid in $(ls "$DATA/node/pods" 2>/dev/null); do
    ip netns del "baton-$uid" 2>/dev/null
    find /sys/fs/cgroup -depth -type d -path "*/baton/$uid*" -exec rmdir {} + 2>/dev/null
  done
  ip netns del "$FLOOR_NS" 2>/dev/null
  find /sys/fs/cgroup -depth -type d -path "*$FLOOR_CG*" -exec rmdir {} + 2>/dev/null
  [ "$BRIDGE_EXISTED" = 1 ] || ip link del "$BRIDGE" 2>/dev/null
  stop_registry
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench/pods.sh: $*" >&2; exit 1; }
us() { local t=$EPOCHREALTIME; echo "${t/./}"; }          # microseconds
ms_since() { echo $(( ($(us) - $1) / 1000 )); }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

# start_server DIR OUTFILE [flags...]: starts baton server, echoes nothing, sets LAST_PID.
start_server() {
  local dir=$1 out=$2; shift 2
  "$BATON" server --data-dir "$dir" --listen 127.0.0.1:0 "$@" >"$out" 2>"$out.log" &
  LAST_PID=$!
  for _ in $(seq 1 150); do
    grep -q '^export KUBECONFIG=' "$out" 2>/dev/null && return 0
    kill -0 "$LAST_PID" 2>/dev/null || { tail -n 20 "$out.log" >&2; die "server exited during start"; }
    sleep 0.1
  done
  die "server did not start in 15 s"
}

# --- the image (and the big one for the pull) in a local registry ----------------------------
start_registry >/dev/null
build_hello_image bench-hello:v1 "bench" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "building the test image failed"; }
IMAGE="$REGISTRY/bench-hello:v1"

BIG_CTX="$TMP/bigctx"
mkdir -p "$BIG_CTX/bin" "$BIG_CTX/data"
cp /bin/busybox "$BIG_CTX/bin/busybox"
ln -s busybox "$BIG_CTX/bin/sh"
for i in $(seq 1 "$PULL_MB"); do head -c 1048576 /dev/urandom >"$BIG_CTX/data/blob$i"; done
ctr=$(_bh from scratch)
_bh copy "$ctr" "$BIG_CTX/" / >/dev/null
_bh config --entrypoint '["/bin/busybox","sleep","3600"]' --cmd '' --env PATH=/bin "$ctr" >/dev/null
_bh commit -q "$ctr" localhost/bench-big:v1 >/dev/null
_bh rm "$ctr" >/dev/null
_bh push -q --tls-verify=false localhost/bench-big:v1 "docker://$REGISTRY/bench-big:v1" >/dev/null
rm -rf "$BIG_CTX"
BIG="$REGISTRY/bench-big:v1"
BIG_BYTES=$(curl -fsS --max-time 5 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/bench-big/manifests/v1" | jq '[.layers[].size] | add')

# --- 2a. --disable agent, idle ---------------------------------------------------------------
start_server "$TMP/noagent" "$TMP/noagent.out" --disable agent
PID_N=$LAST_PID
sleep 3
RSS_NOAGENT=$(rss_mb "$PID_N")
kill "$PID_N"; wait "$PID_N" 2>/dev/null || true; PID_N=""
echo "{\"bench\":\"server_rss_mb\",\"agent\":false,\"pods\":0,\"value\":$RSS_NOAGENT}"

# --- the server with the agent ---------------------------------------------------------------
start_server "$DATA" "$TMP/agent.out" --bridge "$BRIDGE" --pod-cidr "$POD_CIDR"
PID=$LAST_PID
export KUBECONFIG="$DATA/kubeconfig"
URL=$(awk '/server:/ {print $2; exit}' "$KUBECONFIG")
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
for _ in $(seq 1 150); do
  [ "$("$KUBECTL" get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  sleep 0.2
done
sleep 3
RSS_IDLE=$(rss_mb "$PID")
echo "{\"bench\":\"server_rss_mb\",\"agent\":true,\"pods\":0,\"value\":$RSS_IDLE}"

# Image present: one warm-up pod pulls it, then goes.
python3 "$HERE/pods/podstart.py" start "$URL" "$DATA" "$IMAGE" 1 warm >/dev/null || die "warm-up pod failed"
"$KUBECTL" delete pod warm-0 --grace-period=0 --force >/dev/null 2>&1 || true
for _ in $(seq 1 100); do
  [ -z "$(runc --root "$DATA/node/runc" list -q 2>/dev/null)" ] && [ -z "$("$KUBECTL" get pods -o name 2>/dev/null)" ] && break
  sleep 0.2
done

# --- 1. pod start latency --------------------------------------------------------------------
python3 "$HERE/pods/podstart.py" start "$URL" "$DATA" "$IMAGE" "$PODS" bench >"$TMP/lat.txt" || die "pod starts failed"
python3 "$HERE/pods/podstart.py" stats pod_start_create_to_ready_ms \
  '{"pods":'"$PODS"',"method":"POST then watch event with Ready=True, sequential, pods accumulate","target_p99_ms":300}' \
  <"$TMP/lat.txt" | tee "$TMP/lat.json"

# --- 2b. RSS with the pods running -----------------------------------------------------------
sleep 3
RUNNING=$(runc --root "$DATA/node/runc" list 2>/dev/null | awk '$3 == "running"' | wc -l)
RSS_PODS=$(rss_mb "$PID")
echo "{\"bench\":\"server_rss_mb\",\"agent\":true,\"pods\":$RUNNING,\"value\":$RSS_PODS}"
echo "{\"bench\":\"agent_rss_with_pods_above_idle_mb\",\"pods\":$RUNNING,\"value\":$(awk -v a="$RSS_PODS" -v b="$RSS_IDLE" 'BEGIN {printf "%.1f", a - b}'),\"target_mb\":30}"

# --- 1b. the floor: runc run --detach of a prepared bundle ------------------------------------
UID0=$("$KUBECTL" get pod bench-0 -o jsonpath='{.metadata.uid}')
PODDIR="$DATA/node/pods/$UID0"
LOWER=$(awk -v m="$PODDIR/c/bundle/rootfs" '$2 == m {print $4}' /proc/mounts | tr ',' '\n' | sed -n 's/^lowerdir=//p' | head -n1)
[ -n "$LOWER" ] || die "no overlay lowerdir for $PODDIR/c/bundle/rootfs"
mkdir -p "$FLOOR/bundle" "$FLOOR/runc"
cp -a "$LOWER" "$FLOOR/bundle/rootfs"
cp -a "$PODDIR/etc" "$FLOOR/etc"
ip netns add "$FLOOR_NS"
jq --arg ns "/run/netns/$FLOOR_NS" --arg cg "$FLOOR_CG" --arg pod "$PODDIR/etc" --arg etc "$FLOOR/etc" '
  .root.path = "rootfs"
  | .linux.cgroupsPath = $cg
  | .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
  | .mounts |= map(if (.source | startswith($pod)) then .source = ($etc + (.source | ltrimstr($pod))) else . end)
  | del(.annotations)' "$PODDIR/c/bundle/config.json" >"$FLOOR/bundle/config.json"
: >"$TMP/floor.txt"
for i in $(seq 1 "$FLOOR_N"); do
  id="batonbench-floor-$$-$i"
  t0=$(us)
  runc --root "$FLOOR/runc" run --detach --bundle "$FLOOR/bundle" --pid-file "$FLOOR/bundle/pid" "$id" \
    </dev/null >>"$FLOOR/log" 2>&1 || { tail -n 5 "$FLOOR/log" >&2; die "runc run of the floor bundle failed"; }
  t1=$(us)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f\n", d / 1000}' >>"$TMP/floor.txt"
  runc --root "$FLOOR/runc" delete --force "$id" >/dev/null 2>&1
done
python3 "$HERE/pods/podstart.py" stats runc_run_detach_floor_ms \
  '{"method":"runc run --detach of a pod bundle copy, existing netns, then delete --force"}' <"$TMP/floor.txt" | tee "$TMP/floor.json"
P50B=$(jq .p50_ms "$TMP/lat.json"); P99B=$(jq .p99_ms "$TMP/lat.json")
P50F=$(jq .p50_ms "$TMP/floor.json"); P99F=$(jq .p99_ms "$TMP/floor.json")
echo "{\"bench\":\"pod_start_ratio_baton_to_floor\",\"p50\":$(ratio "$P50B" "$P50F"),\"p99\":$(ratio "$P99B" "$P99F")}"

# --- 3. pull of the big image ----------------------------------------------------------------
if "$BATON" image --help >/dev/null 2>&1; then
  : >"$TMP/pull-baton.txt"; : >"$TMP/pull-buildah.txt"
  for i in $(seq 1 "$PULL_RUNS"); do
    d="$TMP/pull-baton-$i"
    t0=$(us)
    "$BATON" image --data-dir "$d" pull "$BIG" >"$TMP/pull.log" 2>&1 || { cat "$TMP/pull.log" >&2; die "baton image pull failed"; }
    ms_since "$t0" >>"$TMP/pull-baton.txt"
    rm -rf "$d"
    b="$TMP/pull-buildah-$i"
    t0=$(us)
    buildah --root "$b/root" --runroot "$b/run" --storage-driver vfs pull -q --tls-verify=false "docker://$BIG" \
      >"$TMP/pull.log" 2>&1 || { cat "$TMP/pull.log" >&2; die "buildah pull failed"; }
    ms_since "$t0" >>"$TMP/pull-buildah.txt"
    buildah --root "$b/root" --runroot "$b/run" --storage-driver vfs rmi --all >/dev/null 2>&1 || true
    rm -rf "$b"
  done
  MB=$(median <"$TMP/pull-baton.txt"); MU=$(median <"$TMP/pull-buildah.txt")
  echo "{\"bench\":\"image_pull_ms\",\"tool\":\"baton image pull\",\"registry_bytes\":$BIG_BYTES,\"runs\":$PULL_RUNS,\"median\":$MB,\"all\":[$(paste -sd, "$TMP/pull-baton.txt")]}"
  echo "{\"bench\":\"image_pull_ms\",\"tool\":\"buildah pull (vfs)\",\"registry_bytes\":$BIG_BYTES,\"runs\":$PULL_RUNS,\"median\":$MU,\"all\":[$(paste -sd, "$TMP/pull-buildah.txt")]}"
  echo "{\"bench\":\"image_pull_ratio_baton_to_buildah\",\"value\":$(ratio "$MB" "$MU")}"
else
  python3 "$HERE/pods/podstart.py" start "$URL" "$DATA" "$BIG" 1 big >"$TMP/big.txt" || die "the big image's pod failed"
  b="$TMP/pull-buildah"
  t0=$(us)
  buildah --root "$b/root" --runroot "$b/run" --storage-driver vfs pull -q --tls-verify=false "docker://$BIG" \
    >"$TMP/pull.log" 2>&1 || { cat "$TMP/pull.log" >&2; die "buildah pull failed"; }
  MU=$(ms_since "$t0")
  buildah --root "$b/root" --runroot "$b/run" --storage-driver vfs rmi --all >/dev/null 2>&1 || true
  rm -rf "$b"
  MB=$(awk -v a="$(cat "$TMP/big.txt")" -v b="$P50B" 'BEGIN {printf "%.0f", a - b}')
  echo "{\"bench\":\"image_pull_ms\",\"tool\":\"baton (first pod of the image minus start p50)\",\"registry_bytes\":$BIG_BYTES,\"runs\":1,\"median\":$MB}"
  echo "{\"bench\":\"image_pull_ms\",\"tool\":\"buildah pull (vfs)\",\"registry_bytes\":$BIG_BYTES,\"runs\":1,\"median\":$MU}"
  echo "{\"bench\":\"image_pull_ratio_baton_to_buildah\",\"value\":$(ratio "$MB" "$MU")}"
fi
