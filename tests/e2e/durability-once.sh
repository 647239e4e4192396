#!/usr/bin/env bash
# Durability (issue 3, must-hold 7): a burst of ConfigMap creates from parallel clients over
# the raw HTTPS API, the server killed with SIGKILL in the middle of it, then a restart on the
# same data dir. Every create that was acknowledged with 201 must be there afterwards, with the
# uid it was given and its data intact, and the server must come back without a store repair.
source "$(dirname "$0")/lib.sh"

CLIENTS=8
PER_CLIENT=200          # 1,600 creates in all
KILL_AFTER=500          # acknowledgements seen before the kill

start_server
first_pid=$SERVER_PID

# The burst: each client keeps one HTTPS connection open and records every 201 (name and uid)
# in its own file as soon as the response has been read. The client that sees acknowledgement
# number $KILL_AFTER sends SIGKILL to the server itself, so the kill lands mid-burst whatever the
# speed of the build. Clients stop at their first failure (the server is gone by then).
cat >"$E2E_TMP/burst.py" <<'PY'
import hashlib, http.client, json, os, signal, ssl, sys, threading, time, urllib.parse

kubeconfig, cafile, out_dir, server_pid, clients, per_client, kill_after = sys.argv[1:8]
clients, per_client, kill_after, server_pid = int(clients), int(per_client), int(kill_after), int(server_pid)
server = token = None
for line in open(kubeconfig):
    line = line.strip()
    if line.startswith("server:"):
        server = line.split(None, 1)[1]
    elif line.startswith("token:"):
        token = line.split(None, 1)[1]
url = urllib.parse.urlsplit(server)
ctx = ssl.create_default_context(cafile=cafile)
lock = threading.Lock()
acked = 0
killed = False
errors = []

def value(name):
    return hashlib.sha256(name.encode()).hexdigest()

def client(c):
    global acked, killed
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=10)
    with open(os.path.join(out_dir, "acked-%d" % c), "w") as acks:
        for i in range(per_client):
            name = "dur-%d-%d" % (c, i)
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name},
                               "data": {"v": value(name), "name": name}})
            try:
                conn.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                             headers={"Authorization": "Bearer " + token,
                                      "Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except Exception as e:  # the server was killed: this client is done
                with lock:
                    if not killed:
                        errors.append("client %d, %s: %r before the kill" % (c, name, e))
                return
            if resp.status != 201:
                with lock:
                    errors.append("client %d, %s: HTTP %d %s" % (c, name, resp.status, data[:300]))
                return
            uid = json.loads(data)["metadata"]["uid"]
            acks.write("%s %s\n" % (name, uid))
            acks.flush()
            with lock:
                acked += 1
                if acked == kill_after and not killed:
                    os.kill(server_pid, signal.SIGKILL)
                    killed = True

threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print("burst error:", e, file=sys.stderr)
print("acked=%d killed=%s" % (acked, killed))
sys.exit(1 if errors or not killed else 0)
PY

mkdir -p "$E2E_TMP/acks"
burst_out=$(timeout 90 python3 "$E2E_TMP/burst.py" "$KUBECONFIG" "$DATA_DIR/ca.crt" "$E2E_TMP/acks" \
  "$SERVER_PID" "$CLIENTS" "$PER_CLIENT" "$KILL_AFTER" 2>&1)
burst_rc=$?
LAST_OUT=$burst_out
[ "$burst_rc" -eq 0 ] || fail "the create burst did not run as planned (exit $burst_rc): $burst_out"
echo "burst: $burst_out"
kill -0 "$first_pid" 2>/dev/null && fail "the server survived the SIGKILL"
kill_server   # reaps the killed process
cat "$E2E_TMP"/acks/acked-* | sort >"$E2E_TMP/acked.txt"
acked=$(wc -l <"$E2E_TMP/acked.txt")
[ "$acked" -ge "$KILL_AFTER" ] || fail "only $acked creates were acknowledged before the kill"
[ "$acked" -lt $((CLIENTS * PER_CLIENT)) ] || fail "the burst finished before the kill ($acked acknowledged)"
cp "$SERVER_LOG" "$E2E_TMP/server-before-kill.log"

# Restart on the same data dir; it must be ready at once and say nothing about a repair.
start_server
ready=$(curl_api GET /readyz)
[ "$(printf '%s' "$ready" | tail -n 1)" = 200 ] || fail "/readyz after restart answered: $ready"
if grep -E -i 'ERROR|WARN|repair' "$SERVER_LOG" >/dev/null; then
  fail "the restarted server logged a warning, an error or a repair: $(grep -E -i 'ERROR|WARN|repair' "$SERVER_LOG" | head -n 5)"
fi

# One list call; every acknowledged create must be in it, with its uid and its data.
curl_api GET /api/v1/namespaces/default/configmaps >"$E2E_TMP/list.out" || fail "list after restart failed"
[ "$(tail -n 1 "$E2E_TMP/list.out")" = 200 ] || fail "list after restart answered: $(tail -c 500 "$E2E_TMP/list.out")"
check=$(python3 - "$E2E_TMP/list.out" "$E2E_TMP/acked.txt" <<'PY'
import hashlib, json, sys
body = open(sys.argv[1]).read().rsplit("\n", 1)[0]
items = {i["metadata"]["name"]: i for i in json.loads(body)["items"]}
problems = []
acked = [l.split() for l in open(sys.argv[2]) if l.strip()]
for name, uid in acked:
    item = items.get(name)
    if item is None:
        problems.append("%s: acknowledged but missing" % name)
        continue
    want = {"v": hashlib.sha256(name.encode()).hexdigest(), "name": name}
    if item.get("data") != want:
        problems.append("%s: data %r, expected %r" % (name, item.get("data"), want))
    if item["metadata"].get("uid") != uid:
        problems.append("%s: uid %s, acknowledged as %s" % (name, item["metadata"].get("uid"), uid))
acked_names = {name for name, _ in acked}
burst = [n for n in items if n.startswith("dur-")]
extra = sum(1 for n in burst if n not in acked_names)
print("acknowledged=%d present_after_restart=%d in_flight_at_kill_and_kept=%d problems=%d"
      % (len(acked), len(burst), extra, len(problems)))
for p in problems[:20]:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
) || { LAST_OUT=$check; fail "acknowledged creates lost or damaged after kill -9"; }
echo "$check"
pass
