#!/usr/bin/env bash
# Bad input gets a clear Status and nothing stored changes (issue 3, must-hold 5 and 6).
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
start_server
k create -f "$YAML" >/dev/null
# The deployment controller writes status, so compare what users write: generation and spec.
before=$(jp '{.metadata.generation} {.spec}' deployment rolling-update-test)

# Malformed YAML: kubectl refuses it before sending; the raw API answers 400.
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n' >"$E2E_TMP/bad.yaml"
k_fails create -f "$E2E_TMP/bad.yaml" >/dev/null
out=$(curl_api POST /api/v1/namespaces/default/configmaps -H 'Content-Type: application/json' -d '{"kind": "ConfigMap",')
LAST_OUT=$out; expect '"reason":"BadRequest"'; expect '"code":400'

# Unknown field under Strict (kubectl's default validation).
cat >"$E2E_TMP/unknown.yaml" <<'Y'
apiVersion: apps/v1
kind: Deployment
metadata: {name: unknown-field}
spec:
  replicas: 1
  replicaz: 2
  selector: {matchLabels: {app: u}}
  template:
    metadata: {labels: {app: u}}
    spec: {containers: [{name: c, image: registry.local/hello:v1}]}
Y
k_fails create -f "$E2E_TMP/unknown.yaml" >/dev/null
expect 'replicaz'
k_fails get deployment unknown-field >/dev/null
# Warn: created, with the server's warning printed by kubectl; Ignore: created silently.
k create -f "$E2E_TMP/unknown.yaml" --validate=warn >/dev/null
expect 'unknown field "spec.replicaz"'
k delete deployment unknown-field >/dev/null
k create -f "$E2E_TMP/unknown.yaml" --validate=false >/dev/null
expect_not 'replicaz'
k delete deployment unknown-field >/dev/null

# Invalid specs: 422 with Kubernetes' field paths.
k_fails scale deployment rolling-update-test --replicas=-1 >/dev/null
cat >"$E2E_TMP/mismatch.yaml" <<'Y'
apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatch}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: registry.local/hello:v1}]}
Y
k_fails create -f "$E2E_TMP/mismatch.yaml" >/dev/null
expect 'is invalid'
expect 'spec.template.metadata.labels'
cat >"$E2E_TMP/noimage.yaml" <<'Y'
apiVersion: apps/v1
kind: Deployment
metadata: {name: noimage}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec: {containers: [{name: c}]}
Y
k_fails create -f "$E2E_TMP/noimage.yaml" --validate=false >/dev/null
expect 'spec.template.spec.containers[0].image: Required value'
k_fails create configmap Bad_Name --from-literal=a=b >/dev/null
expect 'is invalid'
cat >"$E2E_TMP/dupports.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: dupports}
spec:
  selector: {app: a}
  ports: [{name: a, port: 80}, {name: b, port: 80}]
Y
k_fails create -f "$E2E_TMP/dupports.yaml" >/dev/null
expect 'Duplicate value'

# Missing, existing, stale.
k_fails get deployment nope >/dev/null
expect '"nope" not found'
k_fails create -f "$YAML" >/dev/null
expect 'already exists'
k get deployment rolling-update-test -o json >/dev/null
printf '%s' "$LAST_OUT" | sed 's/"resourceVersion": "[0-9]*"/"resourceVersion": "1"/' >"$E2E_TMP/stale.json"
k_fails replace -f "$E2E_TMP/stale.json" >/dev/null
expect 'the object has been modified'

# Quantities (issue 14): stored as Kubernetes stores them (a YAML number too); text that is not
# a quantity is Kubernetes' 400; past 2^63-1 units a 422 naming the field (Kubernetes caps it);
# requests above limits a 422.
cat >"$E2E_TMP/quantities.yaml" <<'Y'
apiVersion: v1
kind: Pod
metadata: {name: quantities}
spec:
  containers:
  - name: c
    image: registry.local/hello:v1
    resources:
      limits: {memory: 1Pi, cpu: 1.5}
      requests: {memory: 512974848m, cpu: 0.5m}
Y
k create -f "$E2E_TMP/quantities.yaml" >/dev/null
expect_eq "$(jp '{.spec.containers[0].resources.limits.memory} {.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.requests.cpu}' pod quantities)" \
  '1Pi 1500m 512974848m 500u' 'quantities as Kubernetes stores them'
k delete pod quantities --wait=false >/dev/null
sed 's/cpu: 0.5m/cpu: 1x/' "$E2E_TMP/quantities.yaml" >"$E2E_TMP/q-bad.yaml"
k_fails create -f "$E2E_TMP/q-bad.yaml" >/dev/null
expect 'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression'
sed 's/memory: 1Pi/memory: 9Ei/' "$E2E_TMP/quantities.yaml" >"$E2E_TMP/q-big.yaml"
k_fails create -f "$E2E_TMP/q-big.yaml" >/dev/null
expect 'spec.containers[0].resources.limits[memory]: Invalid value: "9Ei"'
sed 's/cpu: 0.5m/cpu: 2/' "$E2E_TMP/quantities.yaml" >"$E2E_TMP/q-over.yaml"
k_fails create -f "$E2E_TMP/q-over.yaml" >/dev/null
expect 'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1500m'

# Authentication and size limits.
server=$(grep 'server:' "$KUBECONFIG" | awk '{print $2}')
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DATA_DIR/ca.crt" "$server/api/v1/namespaces")
expect_eq "$code" 401 'no token'
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DATA_DIR/ca.crt" -H 'Authorization: Bearer wrong' "$server/api/v1/namespaces")
expect_eq "$code" 401 'wrong token'
head -c 4000000 /dev/zero | tr '\0' 'a' >"$E2E_TMP/big"
out=$(curl_api POST /api/v1/namespaces/default/configmaps --http1.1 -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/big")
LAST_OUT=$out; expect '413'

# dryRun stores nothing.
k create configmap dry --from-literal=a=b --dry-run=server >/dev/null
k_fails get configmap dry >/dev/null

# Security: data dir 0700, kubeconfig 0600, loopback by default.
expect_eq "$(stat -c %a "$DATA_DIR")" 700 'data dir mode'
expect_eq "$(stat -c %a "$DATA_DIR/kubeconfig")" 600 'kubeconfig mode'

after=$(jp '{.metadata.generation} {.spec}' deployment rolling-update-test)
expect_eq "$after" "$before" 'stored deployment untouched by rejected requests'
pass
