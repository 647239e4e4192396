#!/usr/bin/env bash
# API machinery through kubectl (issue 3, must-hold 1 and 3): api-resources, explain, output
# formats, selectors, label/annotate, the three patch types, watch, cascade policies recorded
# for the garbage collector, and wait --for=delete.
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
start_server --watch-history 5   # a small history window, to see 410 Gone

k api-resources >/dev/null
expect 'deployments'
expect 'replicationcontrollers'
expect 'horizontalpodautoscalers'
expect 'ingresses'
expect 'leases'

# Health, version, metrics and OpenAPI endpoints (health and version need no token).
server=$(grep 'server:' "$KUBECONFIG" | awk '{print $2}')
for path in /healthz /livez /readyz /version; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DATA_DIR/ca.crt" "$server$path")
  expect_eq "$code" 200 "GET $path without a token"
done
out=$(curl_api GET /metrics); LAST_OUT=$out; expect 'apiserver_request_total'
out=$(curl_api GET /openapi/v2 -H 'Accept: application/json'); LAST_OUT=$out
expect '"swagger":"2.0"'; expect 'io.k8s.api.extensions.v1beta1.Deployment'
code=$(curl_api GET /openapi/v2 -H 'Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf' -o "$E2E_TMP/v2.pb" | tail -n 1)
expect_eq "$code" 200 'protobuf OpenAPI v2'
[ "$(stat -c %s "$E2E_TMP/v2.pb")" -gt 100000 ] || fail "protobuf OpenAPI v2 is suspiciously small"
out=$(curl_api GET /openapi/v3); LAST_OUT=$out; expect 'apis/extensions/v1beta1'; expect 'serverRelativeURL'

k explain deployment.spec.strategy >/dev/null
expect 'rollingUpdate'
expect 'Recreate'

k create -f "$YAML" >/dev/null

k get deployment rolling-update-test -o json >/dev/null
expect '"kind": "Deployment"'
expect_eq "$(jp '{.metadata.name}' deployment -l app=rolling-update-test)" '' 'jsonpath on a list needs items'
expect_eq "$(jp '{.items[0].metadata.name}' deployments -l app=rolling-update-test)" 'rolling-update-test' 'label selector'
expect_eq "$(jp '{.items[*].metadata.name}' deployments -l app=nothing)" '' 'non-matching label selector'
expect_eq "$(jp '{.items[0].metadata.name}' deployments --field-selector metadata.name=rolling-update-test)" 'rolling-update-test' 'field selector'
k get deployments --show-labels >/dev/null
expect 'app=rolling-update-test'

k get deployments -o wide >/dev/null
for col in NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR; do expect "$col"; done
expect '0/3'

# limit/continue: kubectl pages with --chunk-size.
for i in 1 2 3 4 5; do k create configmap "page-$i" --from-literal=a=b >/dev/null; done
LAST_OUT=$("$KUBECTL" get configmaps --chunk-size=2 -v=6 2>&1) || fail "chunked list failed"
expect 'continue='
for i in 1 2 3 4 5; do expect "page-$i"; done

# Watch from a resourceVersion older than the history window answers 410 Gone (as an ERROR
# event), and a watch with bookmarks allowed gets a BOOKMARK when idle.
out=$(curl_api GET "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1&timeoutSeconds=2" --http1.1)
LAST_OUT=$out; expect '"type":"ERROR"'; expect '"code":410'
rv=$(jp '{.metadata.resourceVersion}' configmap page-5)
out=$(curl_api GET "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=7" --http1.1)
LAST_OUT=$out; expect '"type":"BOOKMARK"'

k label deployment rolling-update-test tier=web >/dev/null
expect 'labeled'
k annotate deployment rolling-update-test note=hello >/dev/null
expect 'annotate'   # 1.27 prints "annotate", later versions "annotated"
expect_eq "$(jp '{.metadata.labels.tier}/{.metadata.annotations.note}' deployment rolling-update-test)" 'web/hello' 'label and annotation'
k label deployment rolling-update-test tier- >/dev/null
expect_eq "$(jp '{.metadata.labels.tier}' deployment rolling-update-test)" '' 'label removed'

k patch deployment rolling-update-test -p '{"spec":{"replicas":4}}' >/dev/null
expect 'patched'
expect_eq "$(jp '{.spec.replicas}' deployment rolling-update-test)" '4' 'strategic patch'
k patch deployment rolling-update-test --type=merge -p '{"spec":{"minReadySeconds":2}}' >/dev/null
expect_eq "$(jp '{.spec.minReadySeconds}' deployment rolling-update-test)" '2' 'merge patch'
k patch deployment rolling-update-test --type=json -p '[{"op":"replace","path":"/spec/replicas","value":2}]' >/dev/null
expect_eq "$(jp '{.spec.replicas}' deployment rolling-update-test)" '2' 'json patch'
k patch deployment rolling-update-test -p '{"spec":{"template":{"spec":{"containers":[{"name":"rolling-update-test","image":"registry.local/hello:v9"}]}}}}' >/dev/null
expect_eq "$(jp '{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}' deployment rolling-update-test)" 'registry.local/hello:v9 9090' 'strategic merge by container name keeps other fields'

# Watch: a change made while watching is printed.
"$KUBECTL" get deployments -w --request-timeout=5s >"$E2E_TMP/watch.out" 2>&1 &
WPID=$!
sleep 1.5
k scale deployment rolling-update-test --replicas=7 >/dev/null
k create configmap watched --from-literal=a=b >/dev/null
sleep 1.5
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null
LAST_OUT=$(cat "$E2E_TMP/watch.out")
expect 'rolling-update-test'
"$KUBECTL" get configmaps -w -o name --request-timeout=4s >"$E2E_TMP/watch2.out" 2>&1 &
WPID=$!
sleep 1
k delete configmap watched >/dev/null
sleep 1
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null
LAST_OUT=$(cat "$E2E_TMP/watch2.out")
expect 'configmap/watched'

# Cascade policies are recorded for the garbage collector; each delete completes.
for policy in background foreground orphan; do
  k create deployment "gc-$policy" --image=registry.local/hello:v1 >/dev/null
  k delete deployment "gc-$policy" --cascade=$policy --timeout=20s >/dev/null
  expect "deployment.apps \"gc-$policy\" deleted"
done

# ...and the garbage collector honours them for dependents named by ownerReferences.
owned() {  # owned OWNER-NAME DEPENDENT-NAME: a ConfigMap owned by the deployment
  local uid
  uid=$(jp '{.metadata.uid}' deployment "$1")
  cat <<Y | "$KUBECTL" create -f - >/dev/null 2>&1 || fail "creating dependent $2"
apiVersion: v1
kind: ConfigMap
metadata:
  name: $2
  ownerReferences:
  - {apiVersion: apps/v1, kind: Deployment, name: $1, uid: $uid, controller: true, blockOwnerDeletion: true}
Y
}
for policy in background foreground orphan; do
  k create deployment "owner-$policy" --image=registry.local/hello:v1 >/dev/null
  owned "owner-$policy" "dep-$policy"
  k delete deployment "owner-$policy" --cascade=$policy --timeout=20s >/dev/null
done
for _ in $(seq 1 50); do
  LAST_OUT=$("$KUBECTL" get configmaps -o name 2>&1)
  case "$LAST_OUT" in *dep-background*|*dep-foreground*) sleep 0.2 ;; *) break ;; esac
done
expect_not 'configmap/dep-background'
expect_not 'configmap/dep-foreground'
expect 'configmap/dep-orphan'
expect_eq "$(jp '{.metadata.ownerReferences}' configmap dep-orphan)" '' 'orphaned dependent keeps no owner reference'

k create configmap gone --from-literal=a=b >/dev/null
( sleep 1; "$KUBECTL" delete configmap gone >/dev/null 2>&1 ) &
DPID=$!
k wait --for=delete configmap/gone --timeout=20s >/dev/null
wait "$DPID"

# Namespaces: deleting one deletes what is in it, then the namespace.
k create namespace scratch >/dev/null
k create configmap inside -n scratch --from-literal=a=b >/dev/null
k delete namespace scratch --timeout=30s >/dev/null
k_fails get configmap inside -n scratch >/dev/null
expect 'NotFound'
pass
