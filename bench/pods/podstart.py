#!/usr/bin/env python3
"""Helpers for bench/pods.sh (standard library only).

  podstart.py start SERVER_URL DATA_DIR IMAGE COUNT PREFIX [PULL_POLICY]
      Watches pods labelled bench=pods in `default` (one watch opened before the first create),
      then creates COUNT bare pods PREFIX-0..N-1 one after another, each once the previous is
      Ready. Prints one latency per line in ms: from just before the POST is sent to the moment
      the watch event that first shows the pod's Ready condition True is read (what a client
      that creates a pod and watches for it to become Ready sees). Exits 1 if a pod is not
      Ready within 120 s.
  podstart.py stats BENCH [EXTRA_JSON]
      Reads numbers (ms) on stdin, prints {"bench":BENCH,"n":..,"p50_ms":..,"p99_ms":..,
      "min_ms":..,"max_ms":.., ...EXTRA} (nearest-rank percentiles).
"""
import json, math, ssl, sys, threading, time, http.client, urllib.parse


def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def stats(bench, extra):
    xs = [float(l) for l in sys.stdin if l.strip()]
    if not xs:
        print(json.dumps({"bench": bench, "error": "no samples"}, separators=(",", ":")))
        return 1
    out = {"bench": bench, "n": len(xs), "p50_ms": round(pct(xs, 50), 1),
           "p99_ms": round(pct(xs, 99), 1), "min_ms": round(min(xs), 1), "max_ms": round(max(xs), 1)}
    out.update(json.loads(extra) if extra else {})
    print(json.dumps(out, separators=(",", ":")))
    return 0


def start(url, data_dir, image, count, prefix, policy):
    u = urllib.parse.urlparse(url)
    ctx = ssl.create_default_context(cafile=f"{data_dir}/ca.crt")
    ctx.check_hostname = False  # the server's certificate names 127.0.0.1 and localhost; port-only URL
    token = open(f"{data_dir}/admin.token").read().strip()
    hdr = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    base = "/api/v1/namespaces/default/pods"

    def conn():
        return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=130)

    c = conn()
    c.request("GET", base + "?labelSelector=bench%3Dpods&limit=1", headers=hdr)
    r = c.getresponse()
    rv = json.loads(r.read())["metadata"]["resourceVersion"]

    ready = {}  # name -> time the Ready=True event was read
    cond = threading.Condition()
    wc = conn()
    wc.request("GET", f"{base}?watch=1&labelSelector=bench%3Dpods&resourceVersion={rv}"
               "&timeoutSeconds=900&allowWatchBookmarks=false", headers=hdr)
    wr = wc.getresponse()
    if wr.status != 200:
        print(f"watch: HTTP {wr.status}", file=sys.stderr)
        return 1

    def watch():
        while True:
            line = wr.readline()
            if not line:
                return
            now = time.time()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            obj = ev.get("object") or {}
            name = (obj.get("metadata") or {}).get("name")
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(x.get("type") == "Ready" and x.get("status") == "True" for x in conds):
                with cond:
                    if name not in ready:
                        ready[name] = now
                        cond.notify_all()

    threading.Thread(target=watch, daemon=True).start()
    for i in range(count):
        name = f"{prefix}-{i}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": {"bench": "pods"}},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": image, "imagePullPolicy": policy}]}}
        body = json.dumps(pod)
        t0 = time.time()
        c.request("POST", base, body=body, headers={**hdr, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            print(f"create {name}: HTTP {r.status}", file=sys.stderr)
            return 1
        with cond:
            if not cond.wait_for(lambda: name in ready, timeout=120):
                print(f"{name}: not Ready within 120 s", file=sys.stderr)
                return 1
            t1 = ready[name]
        print(f"{(t1 - t0) * 1000:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "stats":
        sys.exit(stats(a[1], a[2] if len(a) > 2 else ""))
    if a and a[0] == "start":
        sys.exit(start(a[1], a[2], a[3], int(a[4]), a[5], a[6] if len(a) > 6 else "IfNotPresent"))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
