#!/usr/bin/env bash
# The Ingress's TLS listener and the proxies' metrics (issue 10), without containers: a
# backend on an address of its own bridge behind a selectorless Service (its EndpointSlice written by hand), a
# Secret from `kubectl create secret tls` with a certificate from `openssl req -x509`, an
# Ingress with spec.tls. curl over HTTPS with SNI reaches the backend by HTTP/1.1 and by HTTP/2
# (ALPN), which sees X-Forwarded-Proto: https; a wildcard host is served; a host whose Secret is
# missing or invalid gets a Warning Event and no handshake (never another host's certificate);
# a Secret replaced in place is used by the next handshake; `kubectl get --raw /metrics` shows
# per-backend requests by code, latency and retries; a taken TLS port names its flag.
# kubectl-versions: 1.27 1.33
source "$(dirname "$0")/lib.sh"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The backend listens on an address of a bridge made here (no ports) (Endpoints may not name
# loopback addresses, as in Kubernetes); it answers every GET with what it was asked and how.
[ "$(id -u)" = 0 ] || fail "needs root (a bridge for the backend's address)"
BE_LINK=btls0
BE_IP=10.251.0.1
ip link del "$BE_LINK" 2>/dev/null
ip link add "$BE_LINK" type bridge && ip addr add "$BE_IP/32" dev "$BE_LINK" && ip link set "$BE_LINK" up \
  || fail "making the bridge $BE_LINK"
BE_PORT=$(free_port)
python3 - "$BE_IP" "$BE_PORT" >"$E2E_TMP/backend.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("backend proto=%s host=%s path=%s\n" % (
            self.headers.get("X-Forwarded-Proto"), self.headers.get("Host"), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY
BACKEND_PID=$!
trap 'kill "$BACKEND_PID" 2>/dev/null; ip link del "$BE_LINK" 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://$BE_IP:$BE_PORT/" && break; sleep 0.1; done

HTTP_PORT=$(free_port)
TLS_PORT=$(free_port)
start_server --ingress-listen "127.0.0.1:$HTTP_PORT" --ingress-tls-listen "127.0.0.1:$TLS_PORT"
grep -q "Ingress proxy listening for HTTPS" "$SERVER_LOG" || fail "no HTTPS listener in the log"

# Certificates as users make them: self-signed, one for the site and a wildcard, and a second
# pair for the same names (the renewal).
cert() {  # cert NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=secure.example" \
    -addext "subjectAltName=DNS:secure.example,DNS:*.wild.example,DNS:bad.example,DNS:broken.example" \
    -keyout "$E2E_TMP/$1.key" -out "$E2E_TMP/$1.crt" >/dev/null 2>&1 || fail "openssl req for $1"
}
cert one
cert two

k create secret tls secure-tls --cert "$E2E_TMP/one.crt" --key "$E2E_TMP/one.key" >/dev/null
expect 'secret/secure-tls created'
# A kubernetes.io/tls Secret whose key is not the certificate's (kubectl create secret tls
# refuses such a pair, so it is made as a generic Secret of that type).
k create secret generic bad-tls --type=kubernetes.io/tls \
  --from-file=tls.crt="$E2E_TMP/one.crt" --from-file=tls.key="$E2E_TMP/two.key" >/dev/null

cat <<Y | "$KUBECTL" apply -f - >"$E2E_TMP/apply.out" 2>&1 || { LAST_OUT=$(cat "$E2E_TMP/apply.out"); fail 'applying the Service, slice and Ingress'; }
apiVersion: v1
kind: Service
metadata: {name: tlsweb}
spec:
  ports: [{port: 80, targetPort: $BE_PORT}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: tlsweb-manual
  labels: {kubernetes.io/service-name: tlsweb}
addressType: IPv4
ports: [{port: $BE_PORT}]
endpoints:
- addresses: ["$BE_IP"]
  conditions: {ready: true}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  tls:
  - hosts: [secure.example, "*.wild.example"]
    secretName: secure-tls
  - hosts: [broken.example]
    secretName: nope
  - hosts: [bad.example]
    secretName: bad-tls
  rules:
  - host: secure.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: tlsweb, port: {number: 80}}}}]}
  - host: "*.wild.example"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: tlsweb, port: {number: 80}}}}]}
  - host: broken.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: tlsweb, port: {number: 80}}}}]}
  - host: bad.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: tlsweb, port: {number: 80}}}}]}
Y

# https_get HOST CA [curl flags]: curl through the TLS listener with SNI HOST.
https_get() {
  local host=$1 ca=$2; shift 2
  curl -sS --max-time 5 --resolve "$host:$TLS_PORT:127.0.0.1" --cacert "$ca" "$@" "https://$host:$TLS_PORT/x"
}

# HTTP/1.1 and HTTP/2 (ALPN) with SNI, to the backend, which sees https.
until_answer "https://secure.example:$TLS_PORT/x" "backend proto=https host=secure.example:$TLS_PORT path=/x" \
  --resolve "secure.example:$TLS_PORT:127.0.0.1" --cacert "$E2E_TMP/one.crt" --http1.1
LAST_OUT=$(https_get secure.example "$E2E_TMP/one.crt" --http2 -w ' http_version=%{http_version}' 2>&1) \
  || fail "HTTP/2 over TLS failed"
expect "backend proto=https host=secure.example:$TLS_PORT path=/x"
expect 'http_version=2'
LAST_OUT=$(https_get secure.example "$E2E_TMP/one.crt" --http1.1 -w ' http_version=%{http_version}' 2>&1) \
  || fail "HTTP/1.1 over TLS failed"
expect 'http_version=1.1'
# A wildcard TLS host and rule: one label under *.wild.example.
LAST_OUT=$(https_get a.wild.example "$E2E_TMP/one.crt" --http2 2>&1) || fail "wildcard host over TLS failed"
expect "backend proto=https host=a.wild.example:$TLS_PORT"
# Plain HTTP still says http.
LAST_OUT=$(curl -sS --max-time 5 -H 'Host: secure.example' "http://127.0.0.1:$HTTP_PORT/x" 2>&1) || fail "plain HTTP failed"
expect 'backend proto=http host=secure.example path=/x'

# A missing Secret and an invalid one: Warning Events naming them, and no handshake for those
# hosts (not even with the certificate that would verify).
wait_event() {  # wait_event TEXT
  for _ in $(seq 1 100); do
    LAST_OUT=$("$KUBECTL" get events 2>&1)
    case "$LAST_OUT" in *"$1"*) return 0 ;; esac
    sleep 0.1
  done
  fail "no event saying: $1"
}
wait_event 'TLSSecretNotFound'
expect 'secret "default/nope" (spec.tls[1].secretName) not found'
expect 'Warning'
wait_event 'TLSSecretInvalid'
expect 'secret "default/bad-tls" (spec.tls[2].secretName): tls.key does not match the certificate in tls.crt'
expect_not 'TLSNotServed'
for h in broken.example bad.example; do
  if LAST_OUT=$(https_get "$h" "$E2E_TMP/one.crt" 2>&1); then fail "$h was served over TLS: $LAST_OUT"; fi
done
# A name no Ingress lists in spec.tls gets no certificate either.
if LAST_OUT=$(https_get other.example "$E2E_TMP/one.crt" -k 2>&1); then fail "other.example was served over TLS"; fi

# The Secret replaced in place (the renewal): the next handshakes use the new certificate.
"$KUBECTL" create secret tls secure-tls --cert "$E2E_TMP/two.crt" --key "$E2E_TMP/two.key" \
  --dry-run=client -o yaml >"$E2E_TMP/renewed.yaml" 2>&1 || fail 'renewed secret YAML'
k replace -f "$E2E_TMP/renewed.yaml" >/dev/null
until_answer "https://secure.example:$TLS_PORT/x" "backend proto=https host=secure.example:$TLS_PORT path=/x" \
  --resolve "secure.example:$TLS_PORT:127.0.0.1" --cacert "$E2E_TMP/two.crt"
if LAST_OUT=$(https_get secure.example "$E2E_TMP/one.crt" 2>&1); then fail "the old certificate is still served"; fi

# The proxies' metrics on the API server's /metrics: per backend, requests by code class,
# latency histogram, retries (and the API server's own).
k get --raw /metrics >/dev/null
expect 'apiserver_request_total{'
expect '# TYPE baton_ingress_requests_total counter'
LAST_OUT=$(printf '%s\n' "$LAST_OUT" | grep 'service="tlsweb"')
[[ "$LAST_OUT" =~ baton_ingress_requests_total\{namespace=\"default\",service=\"tlsweb\",code=\"2xx\"\}\ ([0-9]+) ]] \
  || fail 'no 2xx counter for tlsweb'
[ "${BASH_REMATCH[1]}" -ge 6 ] || fail "tlsweb 2xx counter ${BASH_REMATCH[1]}, want at least 6"
expect 'baton_ingress_request_duration_seconds_bucket{namespace="default",service="tlsweb",le="+Inf"}'
expect 'baton_ingress_request_duration_seconds_count{namespace="default",service="tlsweb"}'
expect 'baton_ingress_retries_total{namespace="default",service="tlsweb"} 0'

# A taken TLS port: the message names --ingress-tls-listen and plain HTTP serves on.
hold_port
kill_server
start_server --ingress-listen "127.0.0.1:$HTTP_PORT" --ingress-tls-listen "127.0.0.1:$TAKEN"
grep -q "address 127.0.0.1:$TAKEN is in use; move the Ingress with --ingress-tls-listen" "$SERVER_LOG" \
  || fail "no message naming --ingress-tls-listen for a taken port"
until_answer "http://127.0.0.1:$HTTP_PORT/x" 'backend proto=http host=secure.example path=/x' -H 'Host: secure.example'
kill "$HOLDER" 2>/dev/null

pass
