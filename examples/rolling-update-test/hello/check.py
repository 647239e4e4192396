#!/usr/bin/env python3
"""Checks a built hello binary end to end: HTTP behaviour, both SIGTERM modes, throughput.

    python3 check.py [BINARY] [VERSION]

BINARY defaults to the static release build, VERSION (the N in "This is version N.") to 1.
Runs the binary on free loopback ports; prints one line per check and exits non-zero on failure.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HERE, "target/x86_64-unknown-linux-gnu/release/hello")
VERSION = sys.argv[2] if len(sys.argv) > 2 else "1"
BODY = f"This is version {VERSION}.".encode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(env=None):
    port = free_port()
    e = dict(os.environ, PORT=str(port), **(env or {}))
    p = subprocess.Popen([BIN], env=e, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"{BIN} did not listen on {port}")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s, buf=b"", no_body=False):
    """Reads one response; returns (status line, headers dict, body, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed after {buf!r}")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = 0 if no_body else int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("body cut short")
        buf += chunk
    return lines[0], headers, buf[:n], buf[n:]


def closed(s, timeout=3):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def http_checks():
    p, port = start()
    try:
        s = connect(port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body, rest = read_response(s)
        check("GET / answers 200 with the version", st == "HTTP/1.1 200 OK" and body == BODY, (st, body))
        check("Content-Type text/plain, Content-Length", h.get("content-type", "").startswith("text/plain")
              and h.get("content-length") == str(len(BODY)), h)
        s.sendall(b"DELETE /any/path?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body, rest = read_response(s, rest)
        check("keep-alive: second request on the same connection, any method and path", body == BODY)
        s.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
                  b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, b1, rest = read_response(s, rest)
        _, _, b2, rest = read_response(s, rest)
        st, h, _, rest = read_response(s, rest, no_body=True)
        check("pipelined requests with a body, a chunked body, and HEAD",
              b1 == BODY and b2 == BODY and h.get("content-length") == str(len(BODY)) and rest == b"")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        st, h, body, rest = read_response(s, rest)
        check("Connection: close is honoured", h.get("connection") == "close" and closed(s))
        s = connect(port)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        st, h, body, rest = read_response(s)
        check("HTTP/1.0 closes after the answer", body == BODY and closed(s))
        s = connect(port)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        st, _, _, rest = read_response(s)
        s.sendall(b"abc")
        _, _, body, _ = read_response(s, rest)
        check("Expect: 100-continue", st == "HTTP/1.1 100 Continue" and body == BODY, st)
        s = connect(port)
        s.sendall(b"garbage\r\n\r\n")
        st, _, _, _ = read_response(s)
        check("a malformed request gets 400", st.startswith("HTTP/1.1 400"), st)
    finally:
        p.kill()
        p.wait()


def throughput(seconds=3.0, clients=16):
    p, port = start()
    counts = [0] * clients
    errors = []
    stop = time.time() + seconds

    def client(i):
        try:
            s = connect(port)
            rest = b""
            while time.time() < stop:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                _, _, body, rest = read_response(s, rest)
                if body != BODY:
                    errors.append(body)
                counts[i] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    p.kill()
    p.wait()
    rate = sum(counts) / seconds
    check(f"throughput: {rate:.0f} req/s over {clients} keep-alive connections, no errors",
          rate > 1000 and not errors, errors[:3])


def graceful():
    p, port = start()
    idle = connect(port)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    read_response(idle)  # now an idle keep-alive connection
    busy = connect(port)
    busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Delay-Ms: 1500\r\n\r\n")
    time.sleep(0.3)  # the slow request is in flight
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    check("graceful: the idle keep-alive connection is closed", closed(idle, 1))
    refused = False
    time.sleep(0.2)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        refused = True
    check("graceful: new connections are refused", refused)
    st, h, body, _ = read_response(busy)
    check("graceful: the request in flight is answered, with Connection: close",
          body == BODY and h.get("connection") == "close", (st, h))
    check("graceful: then its connection closes", closed(busy))
    code = p.wait(timeout=10)
    took = time.time() - t0
    err = p.stderr.read().decode()
    check(f"graceful: exit code 0 after {took:.1f}s (the slow request's 1.5 s)", code == 0 and took < 3, (code, took))
    check("graceful: logs the version, the shutdown and 'stopped'",
          BODY.decode() in err and "SIGTERM: shutting down" in err and "stopped" in err, err)


def immediate():
    p, port = start({"HELLO_SHUTDOWN": "immediate"})
    busy = connect(port)
    busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Delay-Ms: 5000\r\n\r\n")
    time.sleep(0.3)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    code = p.wait(timeout=5)
    took = time.time() - t0
    check(f"immediate: exit code 0 after {took:.2f}s", code == 0 and took < 0.5, (code, took))
    check("immediate: the request in flight is dropped", closed(busy, 1))
    err = p.stderr.read().decode()
    check("immediate: logs why", "exiting at once" in err, err)


def pid1():
    """As PID 1 of a new PID namespace (as in a container), SIGTERM must still stop it."""
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        print("skip PID 1 check (needs root and unshare)")
        return
    port = free_port()
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", BIN],
                         env=dict(os.environ, PORT=str(port)), stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.02)
    # Signal the child (PID 1 inside) from outside the namespace, as the runtime does.
    child = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(child[0]), signal.SIGTERM)
    try:
        code = p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        code = "still running"
    check("as PID 1 in its own PID namespace, SIGTERM stops it with 0", code == 0, code)


http_checks()
throughput()
graceful()
immediate()
pid1()
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
