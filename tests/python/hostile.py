"""Hostile clients against a running Baton API server (issue 13, must-hold 1).

Usage: hostile.py KUBECONFIG CA_FILE SERVER_PID CASE

Each case prints one line per check ("ok ..." or "FAIL ...") and exits non-zero on a
failure. Between attacks a separate, well-behaved client must still be served: the
`served()` check is a GET of a namespace over a fresh TLS connection.
"""

import json
import socket
import ssl
import sys
import threading
import time
import http.client
import urllib.parse

KUBECONFIG, CA, PID, CASE = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def kubeconfig():
    server = token = None
    for line in open(KUBECONFIG):
        line = line.strip()
        if line.startswith("server:"):
            server = line.split(None, 1)[1]
        if line.startswith("token:"):
            token = line.split(None, 1)[1]
    u = urllib.parse.urlparse(server)
    return u.hostname, u.port, token


HOST, PORT, TOKEN = kubeconfig()
CTX = ssl.create_default_context(cafile=CA)
FAILED = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def conn(timeout=30):
    return http.client.HTTPSConnection(HOST, PORT, context=CTX, timeout=timeout)


def request(method, path, body=None, ctype="application/json", timeout=30):
    c = conn(timeout)
    headers = {"Authorization": "Bearer " + TOKEN}
    if body is not None:
        headers["Content-Type"] = ctype
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def served(what):
    try:
        code, _ = request("GET", "/api/v1/namespaces/default", timeout=20)
        check(code == 200, f"another client is served {what} (got {code})")
    except Exception as e:  # noqa: BLE001 - any failure to be served is the finding
        check(False, f"another client is served {what} ({e!r})")


def rss_mib():
    for line in open(f"/proc/{PID}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def half_open():
    """500 TCP connections that never start their TLS handshake, held while others work."""
    socks = []
    for _ in range(500):
        s = socket.create_connection((HOST, PORT), timeout=10)
        socks.append(s)
    served("while 500 half-open TLS connections are held")
    # Half of them send a partial ClientHello and stall.
    for s in socks[:250]:
        try:
            s.send(b"\x16\x03\x01\x02\x00\x01")
        except OSError:
            pass
    served("while 250 stalled TLS handshakes are held")
    for s in socks:
        s.close()
    served("after the half-open connections closed")


def watches():
    """1,000 concurrent watches from one client: each is served or refused with a 429 Status
    (the per-client bound, --max-watches-per-client, 500 by default), none breaks the server,
    and another client's watch is still served."""
    results = {"200": 0, "429": 0, "other": []}
    refusals = []
    lock = threading.Lock()
    held = []

    def one(i):
        try:
            c = conn(60)
            c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=120",
                      headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            with lock:
                if r.status == 200:
                    results["200"] += 1
                    held.append((c, r))
                elif r.status == 429:
                    results["429"] += 1
                    refusals.append((r.getheader("Retry-After"), r.read()))
                    c.close()
                else:
                    results["other"].append(r.status)
                    c.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                results["other"].append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not results["other"], f"1,000 watches: {results['200']} served, {results['429']} refused with 429, others: {results['other'][:5]}")
    check(results["200"] + results["429"] == 1000, "every watch answered 200 or 429")
    check(results["200"] > 0 and results["429"] > 0,
          f"one client's watches are bounded: {results['200']} served, {results['429']} refused")
    bad = []
    for retry_after, body in refusals:
        try:
            st = json.loads(body)
            ok = (st.get("kind") == "Status" and st.get("code") == 429
                  and st.get("reason") == "TooManyRequests"
                  and st.get("details", {}).get("retryAfterSeconds", 0) > 0
                  and retry_after is not None and int(retry_after) > 0)
        except ValueError:
            ok = False
        if not ok:
            bad.append((retry_after, body[:200]))
    check(not bad, f"every refusal is a 429 TooManyRequests Status with Retry-After (bad: {bad[:2]})")
    if refusals:
        print(f"     refusal: Retry-After {refusals[0][0]}: {json.loads(refusals[0][1]).get('message')}", flush=True)
    served("while 1,000 watches are open")
    # Another client (its own User-Agent) still gets a watch.
    try:
        c = conn(20)
        c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
                  headers={"Authorization": "Bearer " + TOKEN, "User-Agent": "another-client/1.0"})
        r = c.getresponse()
        r.read()
        c.close()
        check(r.status == 200, f"another client's watch is served while one client holds its maximum (got {r.status})")
    except Exception as e:  # noqa: BLE001
        check(False, f"another client's watch is served while one client holds its maximum ({e!r})")
    # The watches see a change.
    code, _ = request("POST", "/api/v1/namespaces/default/configmaps",
                      json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}))
    check(code == 201, f"a write while 1,000 watches are open (got {code})")
    seen = 0
    for c, r in held[:20]:
        c.sock.settimeout(10)
        try:
            for _ in range(20):
                if b'"ADDED"' in r.fp.readline():
                    seen += 1
                    break
        except OSError:
            pass
    check(seen > 0, f"open watches receive the change ({seen} of 20 checked)")
    for c, _ in held:
        c.close()
    served("after the watches closed")


def big_updates():
    """300 updates of one 2.5 MB ConfigMap with a watcher that reads nothing: every update is
    served, the server stays up, and its peak RSS is printed."""
    value = "x" * (2_500_000)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"v": value}}
    code, _ = request("POST", "/api/v1/namespaces/default/configmaps", json.dumps(body))
    check(code == 201, f"create a 2.5 MB ConfigMap (got {code})")
    # A watch that reads nothing, as a stuck client would.
    stuck = conn(600)
    stuck.request("GET", "/api/v1/namespaces/default/configmaps?watch=1",
                  headers={"Authorization": "Bearer " + TOKEN})
    stuck.getresponse()
    peak = 0.0
    for i in range(300):
        body["data"]["v"] = value[:-6] + f"{i:06d}"
        code, data = request("PUT", "/api/v1/namespaces/default/configmaps/big", json.dumps(body), timeout=60)
        if code != 200:
            check(False, f"update {i} of the 2.5 MB ConfigMap answered {code}: {data[:200]!r}")
            break
        if i % 10 == 0:
            peak = max(peak, rss_mib())
    peak = max(peak, rss_mib())
    # Issue 13 asks for under 500 MiB: 336-364 MiB measured (845-1034 MiB before each watch's
    # response stopped buffering 256 encoded events and stored values lost their spare
    # capacity). A figure, printed and not asserted, as speed and memory targets are.
    print(f"figure: peak RSS over 300 updates of a 2.5 MB object: {peak:.0f} MiB (target < 500)", flush=True)
    stuck.close()
    served("after 300 large updates")


CASES = {"half-open": half_open, "watches": watches, "big-updates": big_updates}
CASES[CASE]()
sys.exit(1 if FAILED else 0)
