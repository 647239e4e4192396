#!/usr/bin/env python3
"""Draws docs/rollout.svg: old and new pods over time during the tutorial's rolling update.

    python3 rollout-svg.py record EVENTS.jsonl SECONDS   # watch the Deployment's pods (kubectl)
    python3 rollout-svg.py draw EVENTS.jsonl OUT.svg     # draw the recorded events

`record` runs `kubectl get pods -l app=rolling-update-test --watch --output-watch-events -o json`
for SECONDS and writes one line per event: {t, type, name, hash, ready, deleting}. Start it, then
`kubectl set image ...` in another shell. rollout-recorded.jsonl next to this script is the run
docs/rollout.svg was drawn from (baton server --simulated-nodes 3 --sim-ready-delay-ms 1500).
"""

import json
import os
import subprocess
import sys
import time


def record(path, seconds):
    p = subprocess.Popen(
        ["kubectl", "get", "pods", "-l", "app=rolling-update-test", "--watch",
         "--output-watch-events", "-o", "json"], stdout=subprocess.PIPE)
    os.set_blocking(p.stdout.fileno(), False)
    dec, buf, t0 = json.JSONDecoder(), "", time.time()
    with open(path, "w") as out:
        while time.time() < t0 + seconds:
            chunk = p.stdout.read()
            if not chunk:
                time.sleep(0.01)
                continue
            buf += chunk.decode()
            while True:
                buf = buf.lstrip()
                try:
                    ev, n = dec.raw_decode(buf)
                except json.JSONDecodeError:
                    break
                buf = buf[n:]
                o, md = ev["object"], ev["object"]["metadata"]
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in o.get("status", {}).get("conditions", []))
                out.write(json.dumps({
                    "t": round(time.time() - t0, 3), "type": ev["type"], "name": md["name"],
                    "hash": md.get("labels", {}).get("pod-template-hash"), "ready": ready,
                    "deleting": "deletionTimestamp" in md}) + "\n")
                out.flush()
    p.kill()


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def draw(path, out_path):
    events = [json.loads(l) for l in open(path) if l.strip()]
    old_hash = events[0]["hash"]
    pods = {}  # name -> dict(hash, created, ready, deleting, gone)
    for e in events:
        p = pods.setdefault(e["name"], {"hash": e["hash"], "created": e["t"], "ready": None,
                                        "deleting": None, "gone": None})
        if e["type"] == "ADDED" and e["hash"] == old_hash and e["ready"]:
            p["created"] = p["ready"] = 0.0  # running before the update
        if e["ready"] and p["ready"] is None:
            p["ready"] = e["t"]
        if e["deleting"] and p["deleting"] is None:
            p["deleting"] = e["t"]
        if e["type"] == "DELETED":
            p["gone"] = e["t"]
    first_new = min(p["created"] for p in pods.values() if p["hash"] != old_hash)
    # time axis: from a little before the update to a little after the last change
    t_start = max(0.0, first_new - 0.6)
    t_end = max(e["t"] for e in events) + 0.6
    order = sorted(pods.items(), key=lambda kv: (kv[1]["hash"] != old_hash, kv[1]["created"], kv[0]))

    W, left, right = 900, 110, 200
    row_h, top = 30, 88
    chart_top = top + row_h * len(order) + 60
    chart_h = 150
    H = chart_top + chart_h + 95
    x = lambda t: left + (min(max(t, t_start), t_end) - t_start) / (t_end - t_start) * (W - left - right)
    OLD, NEW, OLD_L, NEW_L = "#4a7bd0", "#2e9e5b", "#c9d8f3", "#c6ead4"

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13" shape-rendering="crispEdges">',
         '<defs><pattern id="hatchO" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
         f'<rect width="6" height="6" fill="{OLD_L}"/><line x1="0" y1="0" x2="0" y2="6" stroke="{OLD}" stroke-width="2"/></pattern>'
         '<pattern id="hatchN" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
         f'<rect width="6" height="6" fill="{NEW_L}"/><line x1="0" y1="0" x2="0" y2="6" stroke="{NEW}" stroke-width="2"/></pattern></defs>',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         '<text x="20" y="28" font-size="17" font-weight="bold">Rolling update of rolling-update-test: 3 replicas, '
         'maxSurge 1, maxUnavailable 1</text>',
         '<text x="20" y="50" fill="#555">the extensions/v1beta1 defaults: at most 3 + 1 = 4 pods, at least 3 − 1 = 2 Ready '
         '(recorded from Baton, simulated nodes)</text>']

    # steps: moments where the controller acted (pods created or deleted)
    acts = sorted({p["created"] for p in pods.values() if p["hash"] != old_hash} |
                  {p["deleting"] for p in pods.values() if p["deleting"] is not None})
    steps = []
    for a in acts:
        if not steps or a - steps[-1] > 0.3:
            steps.append(a)
    steps.append(max(p["ready"] for p in pods.values() if p["hash"] != old_hash))  # rollout done
    for i, a in enumerate(steps, 1):
        s.append(f'<line x1="{x(a):.1f}" y1="{top - 8}" x2="{x(a):.1f}" y2="{chart_top + chart_h}" '
                 'stroke="#999" stroke-dasharray="4 3"/>')
        s.append(f'<circle cx="{x(a):.1f}" cy="{top - 14}" r="9" fill="#333"/>'
                 f'<text x="{x(a):.1f}" y="{top - 10}" fill="white" text-anchor="middle" font-size="12">{i}</text>')

    for i, (name, p) in enumerate(order):
        y = top + i * row_h
        is_old = p["hash"] == old_hash
        label = ("v1 " if is_old else "v2 ") + name.rsplit("-", 1)[-1]
        s.append(f'<text x="{left - 10}" y="{y + 19}" text-anchor="end" font-family="DejaVu Sans Mono, monospace">'
                 f'{esc(label)}</text>')
        end = p["gone"] if p["gone"] is not None else t_end
        ready = p["ready"] if p["ready"] is not None else end
        term = p["deleting"] if p["deleting"] is not None else end
        if ready > p["created"]:
            s.append(f'<rect x="{x(p["created"]):.1f}" y="{y + 5}" width="{x(ready) - x(p["created"]):.1f}" height="20" '
                     f'fill="url(#{"hatchO" if is_old else "hatchN"})" stroke="{OLD if is_old else NEW}"/>')
        if term > ready:
            s.append(f'<rect x="{x(ready):.1f}" y="{y + 5}" width="{x(term) - x(ready):.1f}" height="20" '
                     f'fill="{OLD if is_old else NEW}"/>')
        if end > term:
            s.append(f'<rect x="{x(term):.1f}" y="{y + 5}" width="{max(x(end) - x(term), 2):.1f}" height="20" '
                     f'fill="#bbb"/>')
        if p["gone"] is not None:
            s.append(f'<text x="{x(p["gone"]) + 6:.1f}" y="{y + 19}" fill="#777" font-size="12">deleted</text>')

    # counts over time: Ready old, Ready new (stacked), and all pods
    times = sorted({t_start, t_end} | {e["t"] for e in events if t_start <= e["t"] <= t_end})
    def counts(t):
        ro = rn = total = 0
        for p in pods.values():
            alive = p["created"] <= t and (p["gone"] is None or t < p["gone"])
            if not alive:
                continue
            total += 1
            if p["ready"] is not None and p["ready"] <= t and (p["deleting"] is None or t < p["deleting"]):
                if p["hash"] == old_hash:
                    ro += 1
                else:
                    rn += 1
        return ro, rn, total
    ymax = 5
    cy = lambda n: chart_top + chart_h - n / ymax * chart_h
    s.append(f'<text x="{left - 10}" y="{chart_top - 12}" text-anchor="end" font-weight="bold">pods</text>')
    s.append(f'<text x="{W - right + 8}" y="{cy(2) + 20:.1f}" fill="#c0392b" font-size="12">(maxUnavailable 1)</text>')
    for n in range(0, ymax + 1):
        s.append(f'<line x1="{left}" y1="{cy(n):.1f}" x2="{W - right}" y2="{cy(n):.1f}" stroke="#eee"/>'
                 f'<text x="{left - 10}" y="{cy(n) + 4:.1f}" text-anchor="end" fill="#555">{n}</text>')
    for a, b in zip(times, times[1:]):
        ro, rn, _ = counts(a)
        if ro:
            s.append(f'<rect x="{x(a):.1f}" y="{cy(ro):.1f}" width="{x(b) - x(a):.1f}" height="{cy(0) - cy(ro):.1f}" fill="{OLD}"/>')
        if rn:
            s.append(f'<rect x="{x(a):.1f}" y="{cy(ro + rn):.1f}" width="{x(b) - x(a):.1f}" height="{cy(ro) - cy(ro + rn):.1f}" fill="{NEW}"/>')
    pts = []
    for a, b in zip(times, times[1:]):
        tot = counts(a)[2]
        pts += [f"{x(a):.1f},{cy(tot):.1f}", f"{x(b):.1f},{cy(tot):.1f}"]
    s.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#222" stroke-width="2"/>')
    for n, text, color in ((4, "at most 4 pods (maxSurge 1)", "#c0392b"), (2, "at least 2 Ready", "#c0392b")):
        s.append(f'<line x1="{left}" y1="{cy(n):.1f}" x2="{W - right}" y2="{cy(n):.1f}" stroke="{color}" stroke-dasharray="6 4"/>'
                 f'<text x="{W - right + 8}" y="{cy(n) + 4:.1f}" fill="{color}" font-size="12">{text}</text>')
    s.append(f'<text x="{(left + W - right) / 2:.0f}" y="{chart_top + chart_h + 22}" text-anchor="middle" fill="#555">'
             f'time (s after kubectl set image)</text>')
    for k in range(0, int(t_end - first_new) + 1):
        t = first_new + k
        if t <= t_end:
            s.append(f'<text x="{x(t):.1f}" y="{chart_top + chart_h + 40}" text-anchor="middle" fill="#555" font-size="11">{k}</text>')

    # legend
    ly = H - 25
    items = [("url(#hatchO)", OLD, "v1 starting"), (OLD, OLD, "v1 Ready"), ("url(#hatchN)", NEW, "v2 starting"),
             (NEW, NEW, "v2 Ready"), ("#bbb", "#bbb", "terminating"), (None, "#222", "all pods")]
    lx = left
    for fill, stroke, text in items:
        if fill is None:
            s.append(f'<line x1="{lx}" y1="{ly - 5}" x2="{lx + 22}" y2="{ly - 5}" stroke="{stroke}" stroke-width="2"/>')
        else:
            s.append(f'<rect x="{lx}" y="{ly - 12}" width="22" height="14" fill="{fill}" stroke="{stroke}"/>')
        s.append(f'<text x="{lx + 28}" y="{ly}">{text}</text>')
        lx += 40 + 8 * len(text)
    s.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        record(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "draw":
        draw(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
