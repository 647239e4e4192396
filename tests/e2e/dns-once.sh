#!/usr/bin/env bash
# Cluster DNS (issue 16, must-hold 3), with real containers on this machine's node agent
# through the real kubectl. Inside a pod: its resolv.conf is the kubelet's (the cluster DNS on
# the bridge address, the namespace's search path, the host's search domains, ndots:5, the
# pod's dnsConfig merged); `fetch` (getaddrinfo, as applications resolve, then an HTTP GET) by
# a Service's short, namespaced and fully qualified names reaches the Service; `nslookup`
# answers the ClusterIP, `kubernetes.default`, a headless Service's ready pods, a pod's
# `<hostname>.<subdomain>` name, SRV records of named ports, the ClusterIP's PTR, and NXDOMAIN
# for unknown cluster names; the zone follows a Service created and deleted. An outside name
# resolves through the host's resolvers — here a resolver this test runs on 127.0.0.77:53,
# named by `--resolv-conf` (no query leaves the machine), which must see the forwarded
# question, also through the search path. hostAliases land in /etc/hosts (setHostnameAsFQDN:
# the FQDN is the hostname), `hostname` is the
# pod's, `dnsPolicy: None` takes dnsConfig alone, and an invalid dnsConfig is a 422 naming the
# field. Prints the query latency (not asserted). ~15 s. Needs root, runc, buildah,
# docker-registry, busybox-static, gcc and python3 (CI has them); hold /tmp/baton-agent.lock
# when running it by hand.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-400}
STARTED=$(date +%s)

# The host's resolver, as this test wants it: a stand-in upstream on loopback.
UPSTREAM_IP=127.0.0.77
cat >"$E2E_TMP/upstream.py" <<'PY'
# A minimal DNS server: outside.test A 192.0.2.77, NXDOMAIN for everything else; logs each
# question ("name type") to argv[2].
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
log = open(sys.argv[2], "a", buffering=1)
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    try:
        qid, flags = struct.unpack(">HH", data[:4])
        i, labels = 12, []
        while data[i] != 0:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode().lower())
            i += 1 + n
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
    except Exception:
        continue
    question = data[12:i + 5]
    name = ".".join(labels)
    log.write(f"{name} {qtype}\n")
    rd = flags & 0x0100
    answer = b""
    rcode = 0
    if name == "outside.test":
        if qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.77")
    else:
        rcode = 3
    header = struct.pack(">HHHHHH", qid, 0x8080 | rd | rcode, 1, 1 if answer else 0, 0, 0)
    s.sendto(header + question + answer, peer)
PY
python3 "$E2E_TMP/upstream.py" "$UPSTREAM_IP" "$E2E_TMP/upstream.log" >"$E2E_TMP/upstream.out" 2>&1 &
UPSTREAM_PID=$!
trap 'kill $UPSTREAM_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do grep -q ready "$E2E_TMP/upstream.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$E2E_TMP/upstream.out" || fail "the stand-in upstream resolver did not start: $(cat "$E2E_TMP/upstream.out")"
printf 'nameserver %s\nsearch corp.test\noptions edns0\n' "$UPSTREAM_IP" >"$E2E_TMP/resolv.conf"

start_registry || fail "starting the registry failed"
REG="127.0.0.1:${REGISTRY_PORT:-5000}"
# The image: a static busybox (httpd serving "hello from dns", nslookup, sh, ...) and `fetch`,
# a C program linked against the C library (copied in) that resolves a name as applications
# do — getaddrinfo, with the pod's search path and ndots — and GETs / from it. (Debian's
# static busybox wget crashes resolving names in a scratch image: its static glibc cannot load
# its name service modules.)
cat >"$E2E_TMP/fetch.c" <<'C'
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* fetch NAME PORT: resolves NAME with getaddrinfo, GETs / over HTTP/1.0, prints the body;
   exit 2 when the name does not resolve, 3 when the connection fails. PORT "-": only prints
   the address NAME resolves to (no connection). */
int main(int argc, char **argv) {
  if (argc < 3) return 1;
  struct addrinfo hints = {0}, *res;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int only = strcmp(argv[2], "-") == 0;
  int rc = getaddrinfo(argv[1], only ? NULL : argv[2], &hints, &res);
  if (rc != 0) { fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(rc)); return 2; }
  if (only) {
    char ip[INET_ADDRSTRLEN];
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    puts(inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip));
    return 0;
  }
  int fd = socket(res->ai_family, res->ai_socktype, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) { perror("connect"); return 3; }
  char req[512];
  int n = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", argv[1]);
  if (write(fd, req, n) != n) return 3;
  static char buf[65536];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += r;
  buf[len] = 0;
  char *body = strstr(buf, "\r\n\r\n");
  fputs(body ? body + 4 : buf, stdout);
  return 0;
}
C
gcc -O2 -o "$E2E_TMP/fetch" "$E2E_TMP/fetch.c" || fail "compiling fetch failed"
CTX="$E2E_TMP/ctx"
mkdir -p "$CTX/bin" "$CTX/www" "$CTX/tmp" "$CTX/lib64" "$CTX/lib/x86_64-linux-gnu" && chmod 1777 "$CTX/tmp"
cp /bin/busybox "$CTX/bin/busybox" && cp "$E2E_TMP/fetch" "$CTX/bin/fetch" || fail "copying the binaries failed"
cp -L /lib64/ld-linux-x86-64.so.2 "$CTX/lib64/" && cp -L /lib/x86_64-linux-gnu/libc.so.6 "$CTX/lib/x86_64-linux-gnu/" \
  || fail "copying the C library failed"
for a in sh cat hostname sleep httpd nslookup; do ln -s busybox "$CTX/bin/$a"; done
echo "hello from dns" >"$CTX/www/index.html"
ctr=$(_bh from scratch) || fail "buildah from scratch failed"
{ _bh copy "$ctr" "$CTX/" / >/dev/null &&
  _bh config --entrypoint '["/bin/busybox","httpd","-f","-p","8080","-h","/www"]' --cmd '' --env PATH=/bin "$ctr" &&
  _bh commit -q "$ctr" localhost/dns:v1 >/dev/null &&
  _bh push -q --tls-verify=false localhost/dns:v1 "docker://$REG/dns:v1"; } >"$E2E_TMP/build.log" 2>&1 \
  || { cat "$E2E_TMP/build.log" >&2; fail "building or pushing the dns image failed"; }
IMG="$REG/dns:v1"

start_server --resolv-conf "$E2E_TMP/resolv.conf"
grep -q 'cluster DNS listening' "$SERVER_LOG" || fail "the cluster DNS did not start"
DNS=10.244.0.1
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# --- Validation: dnsConfig as Kubernetes checks it -------------------------------------------
cat >"$E2E_TMP/bad.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  dnsPolicy: None
  dnsConfig: {nameservers: [1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4]}
  containers: [{name: c, image: $IMG}]
YAML
k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'spec.dnsConfig.nameservers: Invalid value'
expect 'must not have more than 3 nameservers'
cat >"$E2E_TMP/bad2.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  dnsPolicy: None
  containers: [{name: c, image: $IMG}]
YAML
k_fails apply -f "$E2E_TMP/bad2.yaml" >/dev/null
expect 'spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None'

# --- Pods and Services -------------------------------------------------------------------
cat >"$E2E_TMP/app.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: db}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: $IMG, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, labels: {app: db}}
spec:
  hostname: db-1
  subdomain: db
  setHostnameAsFQDN: true
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: $IMG, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  hostAliases: [{ip: 192.0.2.9, hostnames: [foo.alias, bar.alias]}]
  dnsConfig:
    searches: [extra.test]
    options: [{name: ndots, value: "5"}, {name: timeout, value: "2"}]
  containers: [{name: c, image: $IMG}]
---
apiVersion: v1
kind: Pod
metadata: {name: none}
spec:
  terminationGracePeriodSeconds: 0
  dnsPolicy: None
  dnsConfig: {nameservers: [$DNS], searches: [only.test]}
  containers: [{name: c, image: $IMG}]
YAML
k apply -f "$E2E_TMP/app.yaml" >/dev/null
for p in db-0 db-1 client none; do
  wait_for Running '{.status.phase}' pod "$p"
done
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' pod db-0
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' pod db-1
WEB_IP=$(jp '{.spec.clusterIP}' svc web)
DB0_IP=$(jp '{.status.podIP}' pod db-0)
DB1_IP=$(jp '{.status.podIP}' pod db-1)
# Both pods are in the headless Service's slice before its names are asked.
for _ in $(seq 1 100); do
  n=$("$KUBECTL" get endpointslices -l kubernetes.io/service-name=db -o jsonpath='{.items[*].endpoints[*].addresses[0]}' 2>/dev/null | wc -w)
  [ "$n" = 2 ] && break
  sleep 0.1
done

# ex POD CMD...: runs CMD in POD; output in $LAST_OUT, status in $RC.
ex() {
  local pod=$1; shift
  LAST_OUT=$("$KUBECTL" exec "$pod" -- "$@" 2>&1); RC=$?
}

# --- The pods' files ---------------------------------------------------------------------
ex client cat /etc/resolv.conf
expect_eq "$LAST_OUT" "nameserver $DNS
search default.svc.cluster.local svc.cluster.local cluster.local corp.test extra.test
options ndots:5 timeout:2" "client's resolv.conf"
ex none cat /etc/resolv.conf
expect_eq "$LAST_OUT" "nameserver $DNS
search only.test" "dnsPolicy None's resolv.conf"
ex client cat /etc/hosts
expect "# Entries added by HostAliases."
expect "192.0.2.9	foo.alias	bar.alias"
ex db-0 cat /etc/hosts
expect "$DB0_IP	db-0.db.default.svc.cluster.local	db-0"
ex db-0 hostname
expect_eq "$LAST_OUT" "db-0" "db-0's hostname"
ex db-1 hostname
expect_eq "$LAST_OUT" "db-1.db.default.svc.cluster.local" "db-1's hostname (setHostnameAsFQDN)"

# --- Names from inside a pod -------------------------------------------------------------
# fetch resolves through the C library with the search path; the Service answers with its
# pods' page.
for name in web web.default web.default.svc web.default.svc.cluster.local; do
  ex client fetch "$name" 80
  [ "$RC" = 0 ] || fail "fetch http://$name/ from a pod failed: $LAST_OUT"
  expect_eq "$LAST_OUT" "hello from dns" "fetch http://$name/"
done
ex client fetch db-1.db 8080
expect_eq "$LAST_OUT" "hello from dns" "fetch http://db-1.db:8080/ (a pod's hostname.subdomain)"
# Another namespace's short name is not this one's.
ex client fetch web.nope 80
[ "$RC" = 2 ] || fail "web.nope resolved: $LAST_OUT"
# busybox's nslookup walks the search path too (and prints every miss after the hit).
ex client busybox nslookup web
expect "Name:	web.default.svc.cluster.local"
expect "Address: $WEB_IP"

# nslookup sends its own queries to the pod's nameserver.
ex client busybox nslookup web.default.svc.cluster.local
[ "$RC" = 0 ] || fail "nslookup of the Service's FQDN failed: $LAST_OUT"
expect "Address: $WEB_IP"
ex client busybox nslookup kubernetes.default.svc.cluster.local
expect "Address: 10.96.0.1"
ex client busybox nslookup db.default.svc.cluster.local
expect "Address: $DB0_IP"
expect "Address: $DB1_IP"
ex client busybox nslookup db-0.db.default.svc.cluster.local
expect "Address: $DB0_IP"
expect_not "$DB1_IP"
ex client busybox nslookup -type=SRV _http._tcp.web.default.svc.cluster.local
expect "0 100 80 web.default.svc.cluster.local"
ex client busybox nslookup -type=SRV _http._tcp.db.default.svc.cluster.local
expect "8080 db-0.db.default.svc.cluster.local"
expect "8080 db-1.db.default.svc.cluster.local"
ex client busybox nslookup nope.default.svc.cluster.local
[ "$RC" != 0 ] || fail "an unknown cluster name resolved: $LAST_OUT"
expect "NXDOMAIN"
# The reverse of the ClusterIP.
ex client busybox nslookup "$WEB_IP"
expect "web.default.svc.cluster.local"

# An outside name: forwarded to the host's resolver, which saw the question.
ex client busybox nslookup outside.test
[ "$RC" = 0 ] || fail "nslookup outside.test failed: $LAST_OUT"
expect "Address: 192.0.2.77"
grep -q '^outside.test 1$' "$E2E_TMP/upstream.log" || fail "the upstream never saw outside.test: $(cat "$E2E_TMP/upstream.log")"
# As an application resolves it: the search path's cluster tries are NXDOMAIN, the host's
# search domain and the pod's are forwarded, then the name itself answers (resolved only:
# nothing is sent to the address).
ex client fetch outside.test -
expect_eq "$LAST_OUT" "192.0.2.77" "outside.test through the C library"
grep -q '^outside.test.corp.test 1$' "$E2E_TMP/upstream.log" || fail "the host's search domain was not tried: $(cat "$E2E_TMP/upstream.log")"
ex client busybox nslookup nothing.test
[ "$RC" != 0 ] || fail "nothing.test resolved"
expect "NXDOMAIN"
# Names in the cluster domain are never forwarded (web.default.svc.cluster.local.corp.test,
# from the search path, is not one).
grep -E 'cluster\.local [0-9]+$' "$E2E_TMP/upstream.log" && fail "a cluster name was forwarded"

# The zone follows the Services: a new one resolves, a deleted one stops.
k create service clusterip late --tcp=81:8080 >/dev/null
LATE_IP=$(jp '{.spec.clusterIP}' svc late)
for _ in $(seq 1 50); do
  ex client busybox nslookup late.default.svc.cluster.local
  case "$LAST_OUT" in *"Address: $LATE_IP"*) break ;; esac
  sleep 0.1
done
expect "Address: $LATE_IP"
k delete svc late >/dev/null
for _ in $(seq 1 50); do
  ex client busybox nslookup late.default.svc.cluster.local
  case "$LAST_OUT" in *NXDOMAIN*) break ;; esac
  sleep 0.1
done
expect NXDOMAIN

# --- Latency (printed, not asserted): sequential UDP queries from the host to the bridge -----
python3 - "$DNS" <<'PY'
import socket, struct, sys, time
def query(name, qid):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for name, n in (("web.default.svc.cluster.local", 1000), ("outside.test", 200)):
    took = []
    for i in range(n):
        t = time.perf_counter()
        s.sendto(query(name, i), (sys.argv[1], 53))
        s.recvfrom(4096)
        took.append((time.perf_counter() - t) * 1e6)
    took.sort()
    print(f"dns latency {name}: {n} queries, p50 {took[n // 2]:.0f} us, p99 {took[n * 99 // 100]:.0f} us")
PY
[ $? = 0 ] || fail "the latency loop failed"

echo "dns-once took $(($(date +%s) - STARTED)) s"
pass
