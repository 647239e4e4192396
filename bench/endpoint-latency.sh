#!/usr/bin/env bash
# Endpoint change → rule live (issue 10, "Benchmarks"): how long after an EndpointSlice change
# is visible in the API (the PATCH has answered) each proxy sends traffic by it — the nftables
# Service proxy (a new connection to the ClusterIP) and the Ingress (a request on a kept-alive
# connection) — at 10 and 1,000 endpoints. Prints JSON lines (p50/p99/max in ms); asserts
# nothing.
#
#   sudo BATON=target/release/baton flock /tmp/baton-agent.lock bench/endpoint-latency.sh
#
# How: a bridge of its own (btl0) carries N local /32 addresses; one nginx answers "A" on port
# PA and "B" on port PB on all of them. A selectorless Service's EndpointSlice lists the N
# addresses with port PA; each round patches the slice's port to the other one (every endpoint
# changes at once, so the first answer from the other port marks the rule live) and probes
# both proxies, interleaved, until each answers from the new port. The probe's own round trip
# (about 0.1-0.3 ms) is included. Runs `baton server` with the node agent (root; the Service
# proxy needs it), so it must not run beside another Baton node agent: use the flock above.
#
# Environment: BATON (required), ROUNDS per size (default 30), SIZES (default "10 1000").
# Everything made here (server, data dir, nginx, bridge and its addresses) is removed on exit;
# traffic goes only to loopback, the bridge's addresses and the ClusterIP that lands on them.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BATON:?set BATON to the baton binary}"
ROUNDS=${ROUNDS:-30}
SIZES=${SIZES:-10 1000}
BR=btl0
NET=10.253
HOST=latency.bench

[ "$(id -u)" = 0 ] || { echo "endpoint-latency.sh: needs root (bridge, node agent)" >&2; exit 2; }
for tool in nginx python3 ip; do
  command -v "$tool" >/dev/null || { echo "endpoint-latency.sh: $tool is required" >&2; exit 2; }
done
if ip link show "$BR" >/dev/null 2>&1; then
  echo "endpoint-latency.sh: $BR exists (another run, or a leftover): remove it first" >&2
  exit 2
fi

TMP=$(mktemp -d /tmp/baton-latency.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  # The node agent's own leftovers (bridge baton0, nft table, route) go with baton reset.
  [ -d "$TMP/data" ] && "$BATON" reset --data-dir "$TMP/data" >/dev/null 2>&1
  ip link del "$BR" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
note() { echo "endpoint-latency.sh: $*" >&2; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- the addresses and the backend ----
MAX=0
for n in $SIZES; do [ "$n" -gt "$MAX" ] && MAX=$n; done
[ "$MAX" -le 1000 ] || { note "at most 1000 endpoints (one EndpointSlice)"; exit 2; }
ip link add "$BR" type bridge
ip link set "$BR" up
python3 - "$MAX" "$BR" "$NET" >"$TMP/addrs.batch" <<'PY'
import sys
n, br, net = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    print(f"addr add {net}.{1 + i // 250}.{1 + i % 250}/32 dev {br}")
PY
ip -batch "$TMP/addrs.batch"
PA=$(free_port)
PB=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 100000;
  server { listen $PA; location / { default_type text/plain; return 200 "A"; } }
  server { listen $PB; location / { default_type text/plain; return 200 "B"; } }
}
NGX
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
PIDS+=($!)

# ---- Baton with the node agent (the Service proxy) and the Ingress on free ports ----
HTTP_PORT=$(free_port)
TLS_PORT=$(free_port)
"$BATON" server --data-dir "$TMP/data" --listen 127.0.0.1:0 \
  --ingress-listen "127.0.0.1:$HTTP_PORT" --ingress-tls-listen "127.0.0.1:$TLS_PORT" \
  >"$TMP/server.out" 2>"$TMP/server.log" &
PIDS+=($!)
for _ in $(seq 150); do grep -q '^export KUBECONFIG=' "$TMP/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^export KUBECONFIG=' "$TMP/server.out" || { note "baton server did not start: $(tail -3 "$TMP/server.log")"; exit 1; }
note "baton server up; Ingress 127.0.0.1:$HTTP_PORT; backends :$PA (A) and :$PB (B) on $MAX addresses of $BR"

python3 - "$TMP/data" "$HTTP_PORT" "$PA" "$PB" "$ROUNDS" "$HOST" "$NET" $SIZES <<'PY'
import http.client, json, socket, ssl, statistics, sys, time
data, ing_port, pa, pb, rounds, host, net = sys.argv[1:8]
ing_port, pa, pb, rounds = int(ing_port), int(pa), int(pb), int(rounds)
sizes = [int(s) for s in sys.argv[8:]]
server = [l.split()[1] for l in open(f"{data}/kubeconfig") if l.strip().startswith("server:")][0]
api_host, api_port = server.split("//")[1].split(":")
token = open(f"{data}/admin.token").read().strip()
ctx = ssl.create_default_context(cafile=f"{data}/ca.crt")
api = http.client.HTTPSConnection(api_host, int(api_port), context=ctx, timeout=10)

def call(method, path, body=None, ctype="application/json"):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = ctype
        body = json.dumps(body)
    api.request(method, path, body=body, headers=headers)
    r = api.getresponse()
    out = r.read()
    if r.status >= 300 and not (method == "DELETE" and r.status == 404):
        raise SystemExit(f"{method} {path}: {r.status} {out[:300]!r}")
    return json.loads(out) if out else None

def note(msg):
    print(f"endpoint-latency.sh: {msg}", file=sys.stderr, flush=True)

call("POST", "/api/v1/namespaces/default/services", {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "latency"},
    "spec": {"ports": [{"port": 80, "targetPort": pa}]}})
cluster_ip = call("GET", "/api/v1/namespaces/default/services/latency")["spec"]["clusterIP"]
call("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "latency"},
    "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "latency", "port": {"number": 80}}}}]}}]}})
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"

class Ingress:
    """GETs on one kept-alive connection (a new one if it closed)."""
    def __init__(self):
        self.c = None
    def get(self):
        try:
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", ing_port, timeout=2)
            self.c.request("GET", "/", headers={"Host": host})
            r = self.c.getresponse()
            return r.read().decode(errors="replace") if r.status == 200 else f"status {r.status}"
        except Exception as e:
            self.c = None
            return f"error {e}"

def cluster_get():
    """One GET on a new connection to the ClusterIP (new connections take the new rules)."""
    try:
        c = http.client.HTTPConnection(cluster_ip, 80, timeout=2)
        c.request("GET", "/", headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return body
    except Exception as e:
        return f"error {e}"

def wait_both(want, ing, deadline):
    """Probes both proxies, interleaved, until each answers `want`; their times (None: never)."""
    t_ing = t_ip = None
    while (t_ing is None or t_ip is None) and time.monotonic() < deadline:
        if t_ing is None and ing.get() == want:
            t_ing = time.monotonic()
        if t_ip is None and cluster_get() == want:
            t_ip = time.monotonic()
    return t_ing, t_ip

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]

ing = Ingress()
for n in sizes:
    addrs = [f"{net}.{1 + i // 250}.{1 + i % 250}" for i in range(n)]
    call("DELETE", f"{SLICES}/latency-1")
    call("POST", SLICES, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "latency-1", "labels": {"kubernetes.io/service-name": "latency"}},
        "addressType": "IPv4", "ports": [{"port": pa}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs]})
    t_ing, t_ip = wait_both("A", ing, time.monotonic() + 30)
    if t_ing is None or t_ip is None:
        note(f"{n} endpoints: proxies never answered A (ingress {t_ing}, clusterIP {t_ip})")
        print(json.dumps({"bench": "endpoint_change_to_live_ms", "endpoints": n, "error": "not live in 30 s"}))
        continue
    res = {"ingress": [], "nftables": []}
    missed = {"ingress": 0, "nftables": 0}
    port, want = pa, "A"
    for r in range(rounds):
        port, want = (pb, "B") if port == pa else (pa, "A")
        call("PATCH", f"{SLICES}/latency-1", {"ports": [{"port": port}]},
             ctype="application/merge-patch+json")
        t0 = time.monotonic()
        t_ing, t_ip = wait_both(want, ing, t0 + 10)
        for name, t in (("ingress", t_ing), ("nftables", t_ip)):
            if t is None:
                missed[name] += 1
            else:
                res[name].append((t - t0) * 1000)
        time.sleep(0.2)
    for name, xs in res.items():
        line = {"bench": "endpoint_change_to_live_ms", "proxy": name, "endpoints": n,
                "rounds": len(xs), "not_live_in_10s": missed[name]}
        if xs:
            line.update({"p50": round(statistics.median(xs), 2), "p99": round(pct(xs, 99), 2),
                         "max": round(max(xs), 2)})
        print(json.dumps(line, separators=(",", ":")), flush=True)
PY
