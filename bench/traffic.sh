#!/usr/bin/env bash
# Traffic benchmarks (issue 10, "Benchmarks"): Baton's Ingress against Debian's nginx as a
# reverse proxy to the same backends, with wrk on loopback, kept-alive and new connections
# (`Connection: close`). Prints JSON lines (figures and ratios); asserts nothing.
#
# Each mode runs ROUNDS rounds of nginx and Baton back to back (nginx first in odd rounds, Baton
# in even ones), so the machine's drift shows: a line per run (requests/s, p50/p99, the 1-minute
# load, and the proxy's CPU per request — user and system µs of nginx's master and workers, of
# Baton's baton-ingress-* worker threads, plus Baton's whole process), then per proxy and mode
# the median, min and max over the rounds, and Baton/nginx as the median of each round's ratio.
# Both proxies run one worker per CPU (nginx `worker_processes auto`; Baton's Ingress defaults
# to one worker thread per CPU, at most 8); the lines say how many workers each had.
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
#   DURATION   wrk duration per run (default 10s); THREADS (2), CONNS (64); ROUNDS (3)
#   BATON_PID  the process serving INGRESS, for its CPU figures (default: found with ss)
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
ROUNDS=${ROUNDS:-3}
CLK_TCK=$(getconf CLK_TCK)
SELFTEST_BACKEND=${SELFTEST_BACKEND:-auto}
HELLO_BIN=${HELLO_BIN:-examples/rolling-update-test/hello/target/x86_64-unknown-linux-gnu/release/hello}
BR=btb0
NETNS_PREFIX=btb-
SUBNET_PREFIX=10.250.0

for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "traffic.sh: $tool is required" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/baton-traffic.XXXXXX)
mkdir -p "$TMP/runs"
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
  NGINX_PID=$!
  PIDS+=($!)
  wait_http "127.0.0.1:$NGINX_PORT" "$HOST" || { note "nginx does not answer; $(tail -5 "$TMP/proxy/error.log")"; exit 1; }
}

# ---- wrk runs ----
# proxy_cpu PROXY: the CPU the proxy's serving processes or threads used so far, as JSON
# {"user","sys"} in clock ticks (nginx: the master and its workers; Baton: its
# baton-ingress-* worker threads, and the whole process as proc_user/proc_sys), with "workers".
proxy_cpu() {
  local pid
  case "$1" in
    nginx) pid=${NGINX_PID:-} ;;
    baton) pid=${BATON_PID:-} ;;
    *) pid= ;;
  esac
  python3 - "$1" "$pid" <<'PY'
import json, os, sys
proxy, pid = sys.argv[1], sys.argv[2]
def stat(path):
    try:
        text = open(path).read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 2:].split()
    return comm, int(rest[1]), int(rest[11]), int(rest[12])  # comm, ppid, utime, stime
out = {"user": None, "sys": None, "workers": None}
if pid:
    if proxy == "nginx":
        procs = [pid] + [p for p in os.listdir("/proc") if p.isdigit() and (st := stat(f"/proc/{p}/stat")) and str(st[1]) == pid]
        sts = [st for p in procs if (st := stat(f"/proc/{p}/stat"))]
        out = {"user": sum(s[2] for s in sts), "sys": sum(s[3] for s in sts), "workers": len(sts) - 1}
    else:
        tasks = [st for t in os.listdir(f"/proc/{pid}/task") if (st := stat(f"/proc/{pid}/task/{t}/stat"))]
        ing = [t for t in tasks if t[0].startswith("baton-ingress")]
        whole = stat(f"/proc/{pid}/stat")
        out = {"user": sum(t[2] for t in ing), "sys": sum(t[3] for t in ing), "workers": len(ing),
               "proc_user": whole[2] if whole else None, "proc_sys": whole[3] if whole else None}
print(json.dumps(out))
PY
}

# run_wrk PROXY MODE ADDR ROUND: prints one JSON line (requests/s, latency, the proxy's CPU per
# request, the 1-minute load average) and keeps it in $TMP/runs for the summary.
run_wrk() {
  local proxy=$1 mode=$2 addr=$3 round=$4
  local hdr=()
  [ "$mode" = close ] && hdr=(-H 'Connection: close')
  local secs=${DURATION%s}
  if [ "$WARMUP" != 0 ]; then
    timeout 60 wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST" "${hdr[@]}" "http://$addr$URL_PATH" >/dev/null 2>&1 || true
  fi
  local out="$TMP/runs/$proxy-$mode-$round.txt"
  local load cpu0 cpu1
  load=$(cut -d' ' -f1 /proc/loadavg)
  cpu0=$(proxy_cpu "$proxy")
  if ! timeout $((secs + 60)) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
      -H "Host: $HOST" "${hdr[@]}" "http://$addr$URL_PATH" >"$out" 2>&1; then
    note "wrk against $proxy ($mode) failed: $(tail -3 "$out")"
    echo "{\"bench\":\"ingress_rps\",\"proxy\":\"$proxy\",\"mode\":\"$mode\",\"round\":$round,\"error\":\"wrk failed\"}"
    return
  fi
  cpu1=$(proxy_cpu "$proxy")
  python3 - "$out" "$proxy" "$mode" "$CONNS" "$THREADS" "$DURATION" "${BACKEND_KIND:-given}" "$round" "$load" "$cpu0" "$cpu1" "$CLK_TCK" <<'PY'
import json, re, sys
path, proxy, mode, conns, threads, duration, backend, rnd, load, cpu0, cpu1, tck = sys.argv[1:]
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
requests = int(total.group(1)) if total else None
line = {"bench": "ingress_rps", "proxy": proxy, "mode": mode, "round": int(rnd),
        "value": float(rps.group(1)) if rps else None,
        "p50_ms": ms(p50.group(1)) if p50 else None,
        "p99_ms": ms(p99.group(1)) if p99 else None,
        "requests": requests,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(["connect", "read", "write", "timeout"], map(int, sock.groups()))) if sock else {},
        "conns": int(conns), "threads": int(threads), "duration": duration, "backend": backend,
        "load1": float(load)}
a, b = json.loads(cpu0), json.loads(cpu1)
us = 1e6 / int(tck)
if requests and a.get("user") is not None and b.get("user") is not None:
    user, sys_ = (b["user"] - a["user"]) * us / requests, (b["sys"] - a["sys"]) * us / requests
    line.update({"workers": b["workers"], "user_us_per_req": round(user, 2),
                 "sys_us_per_req": round(sys_, 2), "cpu_us_per_req": round(user + sys_, 2)})
    if b.get("proc_user") is not None and a.get("proc_user") is not None:
        line["process_cpu_us_per_req"] = round(((b["proc_user"] - a["proc_user"]) + (b["proc_sys"] - a["proc_sys"])) * us / requests, 2)
print(json.dumps(line, separators=(",", ":")))
with open(path + ".json", "w") as f: json.dump(line, f)
PY
}

# summary: per proxy and mode the median (min-max) over the rounds of requests/s, p99 and CPU
# per request; Baton against nginx as the median of the ratios of each round's pair (the two
# ran back to back, so a slower or busier moment of the machine hits both).
summary() {
  python3 - "$TMP/runs" <<'PY'
import glob, json, statistics, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))]
def spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs: return None
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3), "n": len(xs)}
def emit(d): print(json.dumps(d, separators=(",", ":")))
fields = ["value", "p99_ms", "cpu_us_per_req", "user_us_per_req", "sys_us_per_req", "load1"]
for mode in ["keepalive", "close"]:
    for proxy in ["direct", "nginx", "baton"]:
        rs = [r for r in runs if r["mode"] == mode and r["proxy"] == proxy]
        if rs:
            emit({"bench": "ingress_rps_median", "proxy": proxy, "mode": mode, "workers": rs[-1].get("workers"),
                  **{f: spread([r.get(f) for r in rs]) for f in fields}})
    by = {(r["proxy"], r["round"]): r for r in runs if r["mode"] == mode}
    rounds = sorted({rd for (p, rd) in by if p == "baton" and (("nginx", rd) in by)})
    for name, field in [("ingress_rps_ratio", "value"), ("ingress_p99_ratio", "p99_ms"), ("ingress_cpu_ratio", "cpu_us_per_req")]:
        rat = [by[("baton", rd)].get(field) / by[("nginx", rd)][field] for rd in rounds
               if by[("baton", rd)].get(field) is not None and by[("nginx", rd)].get(field)]
        if rat:
            s = spread(rat)
            emit({"bench": name, "proxy": "baton/nginx", "mode": mode, "value": s["median"],
                  "min": s["min"], "max": s["max"], "rounds": s["n"], "per_round": [round(x, 3) for x in rat]})
    d = [r for r in runs if r["mode"] == mode and r["proxy"] == "direct"]
    n = [r["value"] for r in runs if r["mode"] == mode and r["proxy"] == "nginx" and r.get("value")]
    if d and d[0].get("value") and n:
        emit({"bench": "ingress_rps_ratio", "proxy": "nginx/direct", "mode": mode,
              "value": round(statistics.median(n) / d[0]["value"], 3)})
PY
}

# ---- Baton's own server for --self-test ----
start_baton() {
  local port dir=$TMP/baton
  port=$(free_port)
  mkdir -p "$dir"
  "$BATON" server --data-dir "$dir/data" --listen 127.0.0.1:0 --disable agent \
    --ingress-listen "127.0.0.1:$port" >"$dir/out" 2>"$dir/log" &
  BATON_PID=$!
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
if [ -n "$INGRESS_GIVEN" ] && [ -z "${BATON_PID:-}" ]; then
  # The process listening on the Ingress port (for its CPU figures).
  BATON_PID=$(ss -Hltnp "sport = :${INGRESS_GIVEN##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
fi
[ -n "${BATON_PID:-}" ] || note "no pid for Baton's Ingress (set BATON_PID): its CPU per request is not shown"
note "rounds: $ROUNDS per mode, nginx and Baton alternated (nginx first in odd rounds); load $(cut -d' ' -f1-3 /proc/loadavg)"
BATON_UP=0
if [ -n "$INGRESS_GIVEN" ] && wait_http "$INGRESS_GIVEN" "$HOST" 10; then BATON_UP=1; fi
for mode in keepalive close; do
  run_wrk direct "$mode" "$FIRST" 0
  for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="nginx baton"; else order="baton nginx"; fi
    for proxy in $order; do
      case "$proxy" in
        nginx) run_wrk nginx "$mode" "127.0.0.1:$NGINX_PORT" "$round" ;;
        baton)
          if [ "$BATON_UP" = 1 ]; then
            run_wrk baton "$mode" "$INGRESS_GIVEN" "$round"
          elif [ "$round" = 1 ]; then
            note "Baton's ingress at ${INGRESS_GIVEN:-(none in --self-test; set BATON)} does not answer 2xx for Host $HOST: Baton skipped"
            echo "{\"bench\":\"ingress_rps\",\"proxy\":\"baton\",\"mode\":\"$mode\",\"skipped\":\"ingress ${INGRESS_GIVEN:-unset} does not answer 2xx for $HOST\"}"
          fi ;;
      esac
    done
  done
done
summary
