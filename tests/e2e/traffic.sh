#!/usr/bin/env bash
# Traffic (issue 10) with real containers: Endpoints and EndpointSlices, ClusterIP from the
# host, from a pod and from a pod to its own Service (hairpin), NodePort, headless Services;
# zero failed requests through the Ingress and the ClusterIP under load while the rollout
# paths run (set image, undo, rollout restart, scale down, delete pod, apply, edit, and the RC's
# kubectl rolling-update) with an app that exits at once on SIGTERM; a control run with draining switched
# off that shows failures; the Ingress's 503 / 404 / 502 and Events; kill -9 of the server
# (ClusterIPs keep forwarding, the Ingress comes back, addresses unchanged); `baton reset`.
# Needs root, runc and nftables (CI has them). kubectl-versions: 1.33 — the data plane under
# load; the kubectl commands it drives are the seed tutorial's, which runs with 1.27 and 1.33.
# e2e-alone: every request is counted, so test.sh runs it with nothing beside it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-600}

start_registry || fail "starting the registry"
build_tutorial_images
build_hello_image client:v1 "client pod" >"$E2E_TMP/client.log" 2>&1 \
  || { cat "$E2E_TMP/client.log" >&2; fail "building the client image failed"; }
start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

cat >"$E2E_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: $IMG:v1
        env: [{name: HELLO_SHUTDOWN, value: immediate}]
        ports: [{name: http, containerPort: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 9090}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: $REGISTRY/client:v1
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: client}
spec:
  selector: {app: client}
  ports: [{port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: client}
spec:
  rules:
  - host: client.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: client, port: {number: 8080}}}}
YAML
k apply -f "$E2E_TMP/web.yaml" >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy web
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' pod client

# Must-hold 1: endpoints, ClusterIP from the host and from a pod, hairpin, headless, NodePort.
k get endpoints web >/dev/null
expect ':9090'
[ "$(jp '{.subsets[0].addresses[*].ip}' endpoints web | wc -w)" = 3 ] || fail "web endpoints: $LAST_OUT"
k get endpointslices -l kubernetes.io/service-name=web >/dev/null
expect 'IPv4'
expect '9090'
expect_eq "$(jp '{.items[0].endpoints[*].conditions.ready}' endpointslices -l kubernetes.io/service-name=web)" "true true true" "slice conditions"
VIP=$(jp '{.spec.clusterIP}' svc web)
CVIP=$(jp '{.spec.clusterIP}' svc client)
until_answer http://127.0.0.1/ "This is version 1." -H "Host: web.test"
until_answer "http://$VIP/" "This is version 1."
# in_pod_get IP PORT: an HTTP/1.0 GET from inside the client pod (busybox nc; Debian's static
# busybox wget crashes), the body only.
in_pod_get() {
  LAST_OUT=$("$KUBECTL" exec client -- sh -c \
    "printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' | busybox nc -w 5 $1 $2" 2>&1) || fail "GET $1:$2 from a pod: $LAST_OUT"
  printf '%s' "$LAST_OUT" | sed '1,/^\r*$/d' | tr -d '\r'
}
expect_eq "$(in_pod_get "$VIP" 80)" "This is version 1." "ClusterIP from inside a pod"
expect_eq "$(in_pod_get "$CVIP" 8080)" "client pod" "a pod through its own Service (hairpin)"
expect_eq "$(jp '{.spec.clusterIP}' svc web-headless)" "None" "headless clusterIP"
[ "$(jp '{.subsets[0].addresses[*].ip}' endpoints web-headless | wc -w)" = 3 ] || fail "headless endpoints: $LAST_OUT"
k patch svc web -p '{"spec":{"type":"NodePort"}}' >/dev/null
NP=$(jp '{.spec.ports[0].nodePort}' svc web)
[ "$NP" -ge 30000 ] && [ "$NP" -le 32767 ] || fail "nodePort $NP out of range"
until_answer "http://127.0.0.1:$NP/" "This is version 1."
expect_eq "$(jp '{.spec.clusterIP}' svc web)" "$VIP" "ClusterIP after the switch to NodePort"

# Must-hold 2: every other rollout path, with an app that exits at once on SIGTERM.
load_start ingress http://127.0.0.1/ --host web.test --rate 2500 --min-requests 20000
load_start clusterip "http://$VIP/" --rate 2500 --min-requests 20000
sleep 1
k set image deployment/web "web=$IMG:v2" >/dev/null
rollout_ok deployment/web
until_answer http://127.0.0.1/ "This is version 2." -H "Host: web.test"
k rollout undo deployment/web >/dev/null
rollout_ok deployment/web
until_answer "http://$VIP/" "This is version 1."
k rollout restart deployment/web >/dev/null
rollout_ok deployment/web
k scale deployment/web --replicas=1 >/dev/null
wait_for 1 '{.status.replicas}' deploy web
k scale deployment/web --replicas=3 >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy web
victim=$(jp '{.items[0].metadata.name}' pods -l app=web)
k delete pod "$victim" >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy web
sed 's#hello:v1#hello:v2#' "$E2E_TMP/web.yaml" >"$E2E_TMP/web-v2.yaml"
k apply -f "$E2E_TMP/web-v2.yaml" >/dev/null
rollout_ok deployment/web
until_answer "http://$VIP/" "This is version 2."
KUBE_EDITOR="sed -i s#hello:v2#hello:v1#" k edit deployment/web >/dev/null
rollout_ok deployment/web
until_answer http://127.0.0.1/ "This is version 1." -H "Host: web.test"
sleep 1
load_stop ingress clusterip
load_expect_clean ingress 20000
load_expect_clean clusterip 20000
expect_eq "$(load_field ingress "d['stale_retries']")" 0 "requests resent through the Ingress"
expect_eq "$(load_field ingress "sorted(d['bodies'])")" "['This is version 1.', 'This is version 2.']" "bodies seen"

# The ReplicationController path (kubectl rolling-update) with the same app, through an
# Ingress and the ClusterIP.
cat >"$E2E_TMP/zep.yaml" <<YAML
apiVersion: v1
kind: ReplicationController
metadata: {name: zep}
spec:
  replicas: 2
  selector: {app: zep}
  template:
    metadata: {labels: {app: zep}}
    spec:
      containers:
      - name: zep
        image: $IMG:v1
        env: [{name: HELLO_SHUTDOWN, value: immediate}]
        ports: [{containerPort: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: zep}
spec:
  selector: {app: zep}
  ports: [{port: 9090}]
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: zep}
spec:
  rules:
  - host: zep.test
    http:
      paths:
      - {path: /, backend: {serviceName: zep, servicePort: 9090}}
YAML
k apply -f "$E2E_TMP/zep.yaml" >/dev/null
wait_for 2 '{.status.readyReplicas}' rc zep
ZVIP=$(jp '{.spec.clusterIP}' svc zep)
until_answer http://127.0.0.1/ "This is version 1." -H "Host: zep.test"
until_answer "http://$ZVIP:9090/" "This is version 1."
load_start zep-ingress http://127.0.0.1/ --host zep.test --rate 1000 --min-requests 5000
load_start zep-clusterip "http://$ZVIP:9090/" --rate 1000 --min-requests 5000
PATH="$(dirname "$BATON"):$PATH" k rolling-update zep --image="$IMG:v2" --update-period=1s >/dev/null
expect 'replicationcontroller "zep" rolling updated'
until_answer "http://$ZVIP:9090/" "This is version 2."
load_stop zep-ingress zep-clusterip
load_expect_clean zep-ingress 5000
load_expect_clean zep-clusterip 5000

# Must-hold 3: no ready endpoint → 503 naming the Service; unknown host → 404; an Ingress
# naming a missing Service gets an Event.
k scale deployment/web --replicas=0 >/dev/null
wait_for "" '{.items[*].metadata.name}' pods -l app=web
for _ in $(seq 1 50); do
  code=$(curl -s -o "$E2E_TMP/503.txt" -w '%{http_code}' -H "Host: web.test" http://127.0.0.1/)
  [ "$code" = 503 ] && break
  sleep 0.1
done
expect_eq "$code" 503 "status with no ready endpoint"
grep -q 'default/web' "$E2E_TMP/503.txt" || fail "503 body does not name the Service: $(cat "$E2E_TMP/503.txt")"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.test' http://127.0.0.1/)" 404 "unknown host"
cat >"$E2E_TMP/bad.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad}
spec:
  rules:
  - host: bad.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
YAML
k apply -f "$E2E_TMP/bad.yaml" >/dev/null
for _ in $(seq 1 100); do
  LAST_OUT=$("$KUBECTL" get events --field-selector involvedObject.name=bad 2>&1)
  case "$LAST_OUT" in *missing*) break ;; esac
  sleep 0.1
done
expect 'missing'
k scale deployment/web --replicas=1 >/dev/null
wait_for 1 '{.status.readyReplicas}' deploy web
until_answer http://127.0.0.1/ "This is version 1." -H "Host: web.test"

# A backend that dies mid-request fails that request (502) and no other.
curl -s -o /dev/null -w '%{http_code}' -H "Host: web.test" -H 'X-Delay-Ms: 4000' \
  http://127.0.0.1/ >"$E2E_TMP/slow.code" &
SLOW=$!
sleep 0.5
POD=$(jp '{.items[0].metadata.uid}' pods -l app=web)
runc --root "$DATA_DIR/node/runc" kill "$POD-web" KILL || fail "killing the web container"
others=0
for _ in $(seq 1 50); do
  [ "$(curl -s --max-time 2 -H 'Host: client.test' http://127.0.0.1/)" = "client pod" ] || others=$((others + 1))
done
wait "$SLOW"
expect_eq "$(cat "$E2E_TMP/slow.code")" 502 "status of the request whose backend died"
expect_eq "$others" 0 "failed requests to another backend meanwhile"
k scale deployment/web --replicas=3 >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy web

# Must-hold 4: kill -9 of the server. ClusterIP and NodePort keep forwarding while it is down.
kill_server
for _ in $(seq 1 20); do
  expect_eq "$(curl_body "http://$VIP/")" "This is version 1." "ClusterIP while the server is down"
  expect_eq "$(curl_body "http://127.0.0.1:$NP/")" "This is version 1." "NodePort while the server is down"
done
# The control run: the same server back with draining off shows failures, so the clean runs
# above were able to see them.
start_server --disable drain
until_answer http://127.0.0.1/ "This is version 1." -H "Host: web.test"
expect_eq "$(jp '{.spec.clusterIP}' svc web)" "$VIP" "ClusterIP after the restart"
expect_eq "$(jp '{.spec.ports[0].nodePort}' svc web)" "$NP" "NodePort after the restart"
load_start ingress http://127.0.0.1/ --host web.test --rate 2500
load_start clusterip "http://$VIP/" --rate 2500
sleep 1
k rollout restart deployment/web >/dev/null
rollout_ok deployment/web
k scale deployment/web --replicas=1 >/dev/null
wait_for 1 '{.status.replicas}' deploy web
sleep 1
load_stop ingress clusterip
failed_off=$(( $(load_field ingress "d['total'] - d['ok']") + $(load_field clusterip "d['total'] - d['ok']") ))
echo "control run with --disable drain: $failed_off failed requests"
[ "$failed_off" -gt 0 ] || fail "the control run without draining saw no failure: the test cannot see them"

baton_reset_leaves_nothing
pass
