#!/usr/bin/env bash
# The API side of the traffic layer (issue 10) through kubectl: NodePort allocation and its
# errors, the seed's Service switched to NodePort and back with its cluster IP kept,
# EndpointSlices (columns, YAML), and the default IngressClass `baton` given to the seed's
# extensions/v1beta1 Ingress.
# kubectl-versions: 1.27 1.33 — server behaviour (allocation, errors, slices) seen through
# kubectl's generic commands.
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
start_server

# A NodePort Service gets a port of 30000-32767, shown in PORT(S).
k create service nodeport web --tcp=80:8080 >/dev/null
np=$(jp '{.spec.ports[0].nodePort}' service web)
[ "$np" -ge 30000 ] && [ "$np" -le 32767 ] || fail "nodePort $np outside 30000-32767"
k get svc web >/dev/null
expect "80:$np/TCP"
expect 'NodePort'

# A requested port outside the range, or one already held, is refused as Kubernetes words it.
nodeport_svc() {  # nodeport_svc NAME NODEPORT
  cat <<Y
apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  type: NodePort
  selector: {app: $1}
  ports:
  - {port: 80, nodePort: $2}
Y
}
nodeport_svc low 80 >"$E2E_TMP/low.yaml"
k_fails create -f "$E2E_TMP/low.yaml" >/dev/null
expect 'The Service "low" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767'
nodeport_svc fixed 30080 >"$E2E_TMP/fixed.yaml"
k create -f "$E2E_TMP/fixed.yaml" >/dev/null
expect_eq "$(jp '{.spec.ports[0].nodePort}' service fixed)" 30080 'requested nodePort'
nodeport_svc dup 30080 >"$E2E_TMP/dup.yaml"
k_fails create -f "$E2E_TMP/dup.yaml" >/dev/null
expect 'The Service "dup" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
k_fails patch svc web -p "{\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":30080}]}}" >/dev/null
expect 'spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
# Freed ports can be taken again.
k delete svc fixed >/dev/null
k create -f "$E2E_TMP/dup.yaml" >/dev/null

# The seed's Service: switched to NodePort by patch, keeps its cluster IP; `kubectl apply` of
# the original YAML (no clusterIP, no nodePort) and `replace` keep both; back to ClusterIP
# drops the node port.
k apply -f "$YAML" >/dev/null
ip=$(jp '{.spec.clusterIP}' service rolling-update-test)
case "$ip" in 10.*) ;; *) fail "cluster IP '$ip'" ;; esac
k patch svc rolling-update-test -p '{"spec":{"type":"NodePort"}}' >/dev/null
expect 'patched'
seed_np=$(jp '{.spec.ports[0].nodePort}' service rolling-update-test)
[ "$seed_np" -ge 30000 ] && [ "$seed_np" -le 32767 ] || fail "seed nodePort '$seed_np'"
[ "$seed_np" != "$np" ] || fail "nodePort $np given twice"
expect_eq "$(jp '{.spec.clusterIP}' service rolling-update-test)" "$ip" 'cluster IP after switching to NodePort'
k get svc rolling-update-test >/dev/null
expect "9090:$seed_np/TCP"
k apply -f "$YAML" >/dev/null
expect_eq "$(jp '{.spec.type} {.spec.clusterIP} {.spec.ports[0].nodePort}' service rolling-update-test)" "NodePort $ip $seed_np" 'apply of the seed YAML keeps type, IP and port'
{ echo 'apiVersion: v1'; sed -n '/^kind: Service/,$p' "$YAML" | sed 's/^spec:/spec:\n  type: NodePort/'; } >"$E2E_TMP/seed-svc.yaml"
k replace -f "$E2E_TMP/seed-svc.yaml" >/dev/null
expect_eq "$(jp '{.spec.clusterIP} {.spec.ports[0].nodePort}' service rolling-update-test)" "$ip $seed_np" 'replace without clusterIP/nodePort keeps both'
k_fails patch svc rolling-update-test -p '{"spec":{"clusterIP":"10.96.0.99"}}' >/dev/null
expect 'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.99"}: may not change once set'
k patch svc rolling-update-test -p '{"spec":{"type":"ClusterIP"}}' >/dev/null
expect_eq "$(jp '{.spec.type} {.spec.clusterIP} {.spec.ports[0].nodePort}' service rolling-update-test)" "ClusterIP $ip " 'back to ClusterIP drops the nodePort'
k get svc rolling-update-test >/dev/null
expect '9090/TCP'
expect_not "9090:$seed_np"

# A headless Service has no cluster IP and no node ports, and cannot be a NodePort.
k create service clusterip headless --clusterip=None --tcp=80:80 >/dev/null
expect_eq "$(jp '{.spec.clusterIP} {.spec.ports[0].nodePort}' service headless)" 'None ' 'headless Service'
k_fails patch svc headless -p '{"spec":{"type":"NodePort"}}' >/dev/null
expect "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"

# EndpointSlices: applied from YAML, listed with kubectl's columns, read back as YAML.
cat >"$E2E_TMP/slice.yaml" <<'Y'
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: rolling-update-test-manual
  labels:
    kubernetes.io/service-name: rolling-update-test
addressType: IPv4
ports:
- name: http
  port: 9090
endpoints:
- addresses: ["10.244.0.2"]
  conditions: {ready: true}
- addresses: ["10.244.0.3"]
  conditions: {ready: true}
- addresses: ["10.244.0.4"]
- addresses: ["10.244.0.5"]
Y
k apply -f "$E2E_TMP/slice.yaml" >/dev/null
expect 'endpointslice.discovery.k8s.io/rolling-update-test-manual created'
k get endpointslices >/dev/null
for col in NAME ADDRESSTYPE PORTS ENDPOINTS AGE; do expect "$col"; done
expect 'rolling-update-test-manual'
expect '10.244.0.2,10.244.0.3,10.244.0.4 + 1 more...'
LAST_OUT=$("$KUBECTL" get endpointslices --no-headers 2>&1) || fail 'get endpointslices --no-headers'
[[ "$LAST_OUT" =~ rolling-update-test-manual\ +IPv4\ +9090\ +10\.244\.0\.2 ]] || fail 'EndpointSlice row'
k get endpointslice rolling-update-test-manual -o yaml >/dev/null
expect 'addressType: IPv4'
expect 'protocol: TCP'          # defaulted
expect '- 10.244.0.5'
expect 'kubernetes.io/service-name: rolling-update-test'
k get endpointslices -l kubernetes.io/service-name=rolling-update-test -o name >/dev/null
expect 'endpointslice.discovery.k8s.io/rolling-update-test-manual'
sed 's/10.244.0.5/10.244.0.300/' "$E2E_TMP/slice.yaml" >"$E2E_TMP/bad-slice.yaml"
k_fails apply -f "$E2E_TMP/bad-slice.yaml" >/dev/null
expect 'endpoints[3].addresses[0]: Invalid value: "10.244.0.300": must be a valid IPv4 address'
k api-resources --api-group=discovery.k8s.io >/dev/null
expect 'EndpointSlice'

# Endpoints keep their table.
cat <<'Y' | "$KUBECTL" apply -f - >/dev/null 2>&1 || fail 'creating Endpoints'
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
- addresses: [{ip: 10.244.0.2}, {ip: 10.244.0.3}, {ip: 10.244.0.4}]
  ports: [{port: 9090}]
Y
k get endpoints manual >/dev/null
expect '10.244.0.2:9090,10.244.0.3:9090,10.244.0.4:9090'

# The default IngressClass, and the seed's extensions/v1beta1 Ingress served by it.
k get ingressclass >/dev/null
for col in NAME CONTROLLER PARAMETERS AGE; do expect "$col"; done
expect 'baton'
expect 'baton.dev/ingress'
expect_eq "$(jp '{.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}' ingressclass baton)" 'true' 'default class annotation'
cat >"$E2E_TMP/ingress.yaml" <<'Y'
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: rolling-update-test
spec:
  rules:
  - host: rolling-update-test.traefik.io
    http:
      paths:
      - path: /
        backend:
          serviceName: rolling-update-test
          servicePort: 9090
Y
k create -f "$E2E_TMP/ingress.yaml" >/dev/null
k get ingress rolling-update-test >/dev/null
for col in NAME CLASS HOSTS ADDRESS PORTS AGE; do expect "$col"; done
LAST_OUT=$("$KUBECTL" get ingress rolling-update-test --no-headers 2>&1) || fail 'get ingress'
[[ "$LAST_OUT" =~ rolling-update-test\ +baton\ +rolling-update-test\.traefik\.io\ +80 ]] || fail 'Ingress row with class baton'
expect_eq "$(jp '{.spec.ingressClassName}' ingresses.v1beta1.extensions rolling-update-test)" 'baton' 'class in the legacy version'
# An explicit class, or the legacy annotation, is left as given.
cat <<'Y' | "$KUBECTL" create -f - >/dev/null 2>&1 || fail 'creating the annotated Ingress'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: annotated
  annotations: {kubernetes.io/ingress.class: traefik}
spec:
  defaultBackend:
    service: {name: rolling-update-test, port: {number: 9090}}
Y
expect_eq "$(jp '{.spec.ingressClassName}' ingress annotated)" '' 'legacy annotation keeps the class unset'
k create ingress explicit --class=other --rule='a.example/=rolling-update-test:9090' >/dev/null
expect_eq "$(jp '{.spec.ingressClassName}' ingress explicit)" 'other' 'explicit class kept'

# A taken Ingress port: the server names the flag that moves the Ingress and serves the API on.
hold_port
kill_server
start_server --ingress-listen "127.0.0.1:$TAKEN"
k get namespaces >/dev/null
grep -q "address 127.0.0.1:$TAKEN is in use; move the Ingress with --ingress-listen" "$SERVER_LOG" \
  || fail "no message naming --ingress-listen for a taken port"
kill "$HOLDER" 2>/dev/null

pass
