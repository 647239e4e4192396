#!/usr/bin/env bash
# Traffic benchmarks (issue 10, "Benchmarks"): Baton's Ingress against Debian's nginx as a
# reverse proxy to the same backends, with wrk on loopback, kept-alive and new connections
# (`Connection: close`). Prints JSON lines (figures and ratios); asserts nothing.
#
#   BACKENDS="10.244.0.2:9090 10.244.0.3:9090 10.244.0.4:9090" INGRESS=127.0.0.1:80 \
#     HOST=rolling-update-test.traefik.io bench/traffic.sh
#   bench/traffic.sh --self-test        # own backends in 3 network namespaces
#   BATON=target/release/baton bench/traffic.sh --self-test   # … and a Baton server of its own
#
# Environment (all optional except BACKENDS without --self-test):
#   BACKENDS   backend ip:port list (the pod IPs behind the Service)
#   INGRESS    Baton's ingress listener (default 127.0.0.1:80); skipped with a note when it
#              does not answer 2xx for HOST
#   HOST       Host header sent to both proxies (default rolling-update-test.traefik.io)
#   URL_PATH   request path (default /)
#   DURATION   wrk duration per run (default 10s); THREADS (2), CONNS (64)
#   WARMUP     seconds of unreported warm-up before each run (default 1; 0 = none)
#   SELFTEST_BACKEND  with --self-test: hello | busybox | nginx | auto (default auto: the
#              tutorial's hello binary when built, else busybox httpd). busybox httpd answers
#              every request with Connection: close and forks per connection, so it caps the
#              figures; nginx serves the 19-byte "This is version 1.\n" as in
#              ../shared/reference/performance-anchors.md.
#   HELLO_BIN  the hello binary (default: examples/rolling-update-test/hello/target/…/hello)
#   BATON      with --self-test: start `baton server --disable agent` with its Ingress on a free
#              port, a selectorless Service whose EndpointSlice lists the self-test backends and
#              an Ingress for HOST (KUBECTL, default kubectl, writes them); it is Baton's ingress
#              measured, in the same run as nginx
#
# nginx runs with a generated config (upstream keepalive 64, proxy_http_version 1.1) on a free
# 127.0.0.1 port under a temp prefix, `daemon off;` in the background; everything started here
# (nginx, backends, namespaces btb-1..3, bridge btb0 on 10.250.0.0/24) is removed on exit.
# Traffic goes only to loopback, the given BACKENDS/INGRESS, or the namespaces made here.
set -euo pipefail
cd "$(dirname "$0")/.."

SELF_TEST=0
for a in "$@"; do
  case "$a" in
    --self-test) SELF_TEST=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "traffic.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

HOST=${HOST:-rolling-update-test.traefik.io}
INGRESS=${INGRESS:-127.0.0.1:80}
URL_PATH=${URL_PATH:-/}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-1}
SELFTEST_BACKEND=${SELFTEST_BACKEND:-auto}
HELLO_BIN=${HELLO_BIN:-examples/rolling-update-test/hello/target/x86_64-unknown-linux-gnu/release/hello}
BR=btb0
NETNS_PREFIX=btb-
SUBNET_PREFIX=10.250.0

for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "traffic.sh: $tool is required" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/baton-traffic.XXXXXX)
PIDS=()
MADE_NETNS=()
MADE_BRIDGE=0

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # Backends may have forked (busybox httpd, nginx workers): end whatever is left in our netns.
  for ns in "${MADE_NETNS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  [ "$MADE_BRIDGE" = 1 ] && ip link del "$BR" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "traffic.sh: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (bounded) until http://$1 answers 2xx with Host $2.
wait_http() {
  local addr=$1 host=$2 tries=${3:-50}
  for _ in $(seq "$tries"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H "Host: $host" "http://$addr$URL_PATH" || true)
    case "$code" in 2??) return 0 ;; esac
    sleep 0.1
  done
  return 1
}

# ---- self-test backends: 3 namespaces on a bridge of our own ----
self_test_backends() {
  [ "$(id -u)" = 0 ] || { note "--self-test needs root (network namespaces)"; exit 2; }
  local kind=$SELFTEST_BACKEND
  if [ "$kind" = auto ]; then
    if [ -x "$HELLO_BIN" ]; then kind=hello; else kind=busybox; fi
  fi
  case "$kind" in
    hello) [ -x "$HELLO_BIN" ] || { note "no hello binary at $HELLO_BIN (make -C examples/rolling-update-test binary)"; exit 2; } ;;
    busybox) command -v busybox >/dev/null || { note "busybox is required"; exit 2; }
      note "backends: busybox httpd (Connection: close on every answer, a fork per connection): it bounds every figure; SELFTEST_BACKEND=nginx for the anchors' setup" ;;
    nginx) ;;
    *) note "SELFTEST_BACKEND must be hello, busybox, nginx or auto"; exit 2 ;;
  esac
  if ip link show "$BR" >/dev/null 2>&1 || ip netns list | grep -q "^${NETNS_PREFIX}"; then
    note "$BR or ${NETNS_PREFIX}* netns exist already (another run, or a leftover): remove them first"
    exit 2
  fi
  ip link add "$BR" type bridge
  MADE_BRIDGE=1
  ip addr add "$SUBNET_PREFIX.1/24" dev "$BR"
  ip link set "$BR" up
  mkdir -p "$TMP/www"
  printf 'This is version 1.\n' >"$TMP/www/index.html"
  BACKENDS=""
  for i in 1 2 3; do
    local ns=$NETNS_PREFIX$i ip=$SUBNET_PREFIX.$((10 + i))
    ip netns add "$ns"
    MADE_NETNS+=("$ns")
    ip link add "btbh$i" type veth peer name "btbp$i" netns "$ns"
    ip link set "btbh$i" master "$BR" up
    ip -n "$ns" addr add "$ip/24" dev "btbp$i"
    ip -n "$ns" link set "btbp$i" up
    ip -n "$ns" link set lo up
    case "$kind" in
      hello) ip netns exec "$ns" env PORT=9090 "$HELLO_BIN" >"$TMP/hello$i.log" 2>&1 & ;;
      busybox) ip netns exec "$ns" busybox httpd -f -p "$ip:9090" -h "$TMP/www" & ;;
      nginx)
        mkdir -p "$TMP/be$i"
        cat >"$TMP/be$i/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $TMP/be$i/nginx.pid;
error_log $TMP/be$i/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/be$i/body;
  proxy_temp_path $TMP/be$i/proxy;
  fastcgi_temp_path $TMP/be$i/fastcgi;
  uwsgi_temp_path $TMP/be$i/uwsgi;
  scgi_temp_path $TMP/be$i/scgi;
  keepalive_requests 100000;
  server {
    listen $ip:9090;
    location / { default_type text/plain; return 200 "This is version 1.\n"; }
  }
}
NGX
        ip netns exec "$ns" nginx -p "$TMP/be$i" -c "$TMP/be$i/nginx.conf" -e "$TMP/be$i/error.log" & ;;
    esac
    PIDS+=($!)
    BACKENDS="$BACKENDS $ip:9090"
  done
  BACKENDS=${BACKENDS# }
  for b in $BACKENDS; do
    wait_http "$b" "$HOST" || { note "backend $b ($kind) does not answer"; exit 1; }
  done
  note "self-test backends ($kind): $BACKENDS"
  BACKEND_KIND=$kind
}

# ---- nginx as the reverse proxy ----
start_nginx_proxy() {
  NGINX_PORT=$(free_port)
  mkdir -p "$TMP/proxy"
  {
    echo "daemon off;"
    echo "worker_processes auto;"
    echo "pid $TMP/proxy/nginx.pid;"
    echo "error_log $TMP/proxy/error.log warn;"
    echo "events { worker_connections 8192; }"
    echo "http {"
    echo "  access_log off;"
    for d in body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $TMP/proxy/$d;" | sed 's/^  body_/  client_body_/'; done
    echo "  upstream backends {"
    for b in $BACKENDS; do echo "    server $b;"; done
    echo "    keepalive 64;"
    echo "  }"
    echo "  server {"
    echo "    listen 127.0.0.1:$NGINX_PORT;"
    echo "    location / {"
    echo "      proxy_pass http://backends;"
    echo "      proxy_http_version 1.1;"
    echo "      proxy_set_header Connection \"\";"
    echo "      proxy_set_header Host \$host;"
    echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
    echo "    }"
    echo "  }"
    echo "}"
  } >"$TMP/proxy/nginx.conf"
  nginx -t -q -p "$TMP/proxy" -c "$TMP/proxy/nginx.conf" -e "$TMP/proxy/error.log" >&2
  nginx -p "$TMP/proxy" -c "$TMP/proxy/nginx.conf" -e "$TMP/proxy/error.log" &
  PIDS+=($!)
  wait_http "127.0.0.1:$NGINX_PORT" "$HOST" || { note "nginx does not answer; $(tail -5 "$TMP/proxy/error.log")"; exit 1; }
}

# ---- wrk runs ----
# run_wrk PROXY MODE ADDR: prints one JSON line and remembers rps/p99 in R_<proxy>_<mode>.
run_wrk() {
  local proxy=$1 mode=$2 addr=$3
  local hdr=()
  [ "$mode" = close ] && hdr=(-H 'Connection: close')
  local secs=${DURATION%s}
  if [ "$WARMUP" != 0 ]; then
    timeout 60 wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST" "${hdr[@]}" "http://$addr$URL_PATH" >/dev/null 2>&1 || true
  fi
  local out="$TMP/wrk-$proxy-$mode.txt"
  if ! timeout $((secs + 60)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
      -H "Host: $HOST" "${hdr[@]}" "http://$addr$URL_PATH" >"$out" 2>&1; then
    note "wrk against $proxy ($mode) failed: $(tail -3 "$out")"
    echo "{\"bench\":\"ingress_rps\",\"proxy\":\"$proxy\",\"mode\":\"$mode\",\"error\":\"wrk failed\"}"
    return
  fi
  python3 - "$out" "$proxy" "$mode" "$CONNS" "$THREADS" "$DURATION" "${BACKEND_KIND:-given}" <<'PY'
import json, re, sys
path, proxy, mode, conns, threads, duration, backend = sys.argv[1:]
text = open(path).read()
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m: return None
    n, u = float(m.group(1)), m.group(2)
    return round(n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[u], 3)
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
total = re.search(r"(\d+) requests in", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
line = {"bench": "ingress_rps", "proxy": proxy, "mode": mode,
        "value": float(rps.group(1)) if rps else None,
        "p50_ms": ms(p50.group(1)) if p50 else None,
        "p99_ms": ms(p99.group(1)) if p99 else None,
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(["connect", "read", "write", "timeout"], map(int, sock.groups()))) if sock else {},
        "conns": int(conns), "threads": int(threads), "duration": duration, "backend": backend}
print(json.dumps(line, separators=(",", ":")))
with open(path + ".json", "w") as f: json.dump(line, f)
PY
}

ratio() { # ratio NAME MODE NUM_PROXY DEN_PROXY FIELD
  local name=$1 mode=$2 num=$3 den=$4 field=$5
  local a="$TMP/wrk-$num-$mode.txt.json" b="$TMP/wrk-$den-$mode.txt.json"
  [ -f "$a" ] && [ -f "$b" ] || return 0
  python3 - "$a" "$b" "$name" "$mode" "$num/$den" "$field" <<'PY'
import json, sys
a, b, name, mode, pair, field = sys.argv[1:]
x, y = json.load(open(a)).get(field), json.load(open(b)).get(field)
v = round(x / y, 3) if x is not None and y else None
print(json.dumps({"bench": name, "proxy": pair, "mode": mode, "value": v}, separators=(",", ":")))
PY
}

# ---- Baton's own server for --self-test ----
start_baton() {
  local port dir=$TMP/baton
  port=$(free_port)
  mkdir -p "$dir"
  "$BATON" server --data-dir "$dir/data" --listen 127.0.0.1:0 --disable agent \
    --ingress-listen "127.0.0.1:$port" >"$dir/out" 2>"$dir/log" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q '^export KUBECONFIG=' "$dir/out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^export KUBECONFIG=' "$dir/out" || { note "baton server did not start: $(tail -3 "$dir/log")"; exit 1; }
  export KUBECONFIG="$dir/data/kubeconfig"
  {
    echo "apiVersion: v1"
    echo "kind: Service"
    echo "metadata: {name: bench}"
    echo "spec: {ports: [{port: 80, targetPort: 9090}]}"
    echo "---"
    echo "apiVersion: discovery.k8s.io/v1"
    echo "kind: EndpointSlice"
    echo "metadata: {name: bench-1, labels: {kubernetes.io/service-name: bench}}"
    echo "addressType: IPv4"
    echo "ports: [{port: 9090}]"
    echo "endpoints:"
    for b in $BACKENDS; do echo "- {addresses: [\"${b%:*}\"], conditions: {ready: true}}"; done
    echo "---"
    echo "apiVersion: networking.k8s.io/v1"
    echo "kind: Ingress"
    echo "metadata: {name: bench}"
    echo "spec:"
    echo "  rules:"
    echo "  - host: $HOST"
    echo "    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: bench, port: {number: 80}}}}]}"
  } >"$dir/objects.yaml"
  "${KUBECTL:-kubectl}" apply -f "$dir/objects.yaml" >"$dir/apply.out" 2>&1 \
    || { note "kubectl apply failed: $(cat "$dir/apply.out")"; exit 1; }
  INGRESS_SELFTEST=127.0.0.1:$port
  wait_http "$INGRESS_SELFTEST" "$HOST" 100 || { note "Baton's Ingress does not answer: $(tail -3 "$dir/log")"; exit 1; }
  note "baton server ($BATON) Ingress on $INGRESS_SELFTEST -> $BACKENDS"
}

if [ "$SELF_TEST" = 1 ]; then
  self_test_backends
  if [ -n "${BATON:-}" ]; then start_baton; fi
  INGRESS_GIVEN=${INGRESS_SELFTEST:-}
else
  [ -n "${BACKENDS:-}" ] || { note "set BACKENDS=\"ip:port ...\" (the Service's pod IPs) or use --self-test"; exit 2; }
  for b in $BACKENDS; do wait_http "$b" "$HOST" 10 || note "backend $b does not answer 2xx now"; done
  INGRESS_GIVEN=$INGRESS
fi
start_nginx_proxy
note "nginx proxy on 127.0.0.1:$NGINX_PORT -> $BACKENDS; wrk -t$THREADS -c$CONNS -d$DURATION"

FIRST=${BACKENDS%% *}
for mode in keepalive close; do
  run_wrk direct "$mode" "$FIRST"
  run_wrk nginx "$mode" "127.0.0.1:$NGINX_PORT"
  if [ -n "$INGRESS_GIVEN" ] && wait_http "$INGRESS_GIVEN" "$HOST" 10; then
    run_wrk baton "$mode" "$INGRESS_GIVEN"
  else
    note "Baton's ingress at ${INGRESS_GIVEN:-(none in --self-test; set INGRESS_SELFTEST)} does not answer 2xx for Host $HOST: Baton skipped"
    echo "{\"bench\":\"ingress_rps\",\"proxy\":\"baton\",\"mode\":\"$mode\",\"skipped\":\"ingress ${INGRESS_GIVEN:-unset} does not answer 2xx for $HOST\"}"
  fi
done
for mode in keepalive close; do
  ratio ingress_rps_ratio "$mode" baton nginx value
  ratio ingress_p99_ratio "$mode" baton nginx p99_ms
  ratio ingress_rps_ratio "$mode" nginx direct value
done
