#!/usr/bin/env bash
# Bad input around rollouts (issue 4, must-hold 5): invalid strategies, selectors that do not
# match the template and selector changes on apps/v1 are refused with 422 and change nothing;
# a ReplicaSet deleted during a rollout is recreated and the rollout finishes; a matching pod
# that another controller owns is never adopted (an orphan is).
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 2


# deploy NAME STRATEGY SELECTOR_APP TEMPLATE_APP: a Deployment manifest on stdout.
deploy() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: 3
  strategy: $2
  selector: {matchLabels: {app: $3}}
  template:
    metadata:
      labels: {app: $4}
      annotations: {sim.baton.dev/ready-after: 600ms}
    spec: {containers: [{name: c, image: registry.local/web:v1}]}
YAML
}

# create_422 NAME MANIFEST WANT: POST the manifest, expect 422 mentioning WANT, and no object.
create_422() {
  printf '%s\n' "$2" >"$E2E_TMP/bad.yaml"
  k_fails create -f "$E2E_TMP/bad.yaml" >/dev/null
  expect "is invalid"
  expect "$3"
  local out
  out=$(curl_api POST /apis/apps/v1/namespaces/default/deployments \
    -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/bad.yaml")
  [ "${out##*$'\n'}" = 422 ] || fail "$1: expected HTTP 422, got: $out"
  k_fails get deployment "$1" >/dev/null
  expect 'NotFound'
}

create_422 both-zero "$(deploy both-zero '{type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}' a a)" \
  'may not be 0 when `maxSurge` is 0'
create_422 bad-type "$(deploy bad-type '{type: BlueGreen}' a a)" 'spec.strategy.type'
create_422 over-percent "$(deploy over-percent '{type: RollingUpdate, rollingUpdate: {maxUnavailable: 150%}}' a a)" \
  'spec.strategy.rollingUpdate.maxUnavailable'
create_422 negative "$(deploy negative '{type: RollingUpdate, rollingUpdate: {maxSurge: -1}}' a a)" \
  'spec.strategy.rollingUpdate.maxSurge'
create_422 recreate-with-params "$(deploy recreate-with-params '{type: Recreate, rollingUpdate: {maxSurge: 1}}' a a)" \
  'spec.strategy.rollingUpdate'
create_422 mismatch "$(deploy mismatch '{type: RollingUpdate}' a b)" \
  '`selector` does not match template `labels`'

# --- the selector of an apps/v1 Deployment is immutable ---
deploy web '{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}' web web >"$E2E_TMP/web.yaml"
k create -f "$E2E_TMP/web.yaml" >/dev/null
k rollout status deployment/web --timeout=30s >/dev/null
gen=$(jp '{.metadata.generation}' deployment web)
k_fails patch deployment web --type=merge \
  -p '{"spec":{"selector":{"matchLabels":{"app":"web","tier":"x"}},"template":{"metadata":{"labels":{"app":"web","tier":"x"}}}}}' >/dev/null
expect 'field is immutable'
out=$(curl_api PATCH /apis/apps/v1/namespaces/default/deployments/web \
  -H 'Content-Type: application/merge-patch+json' \
  -d '{"spec":{"selector":{"matchLabels":{"app":"web","tier":"x"}},"template":{"metadata":{"labels":{"app":"web","tier":"x"}}}}}')
[ "${out##*$'\n'}" = 422 ] || fail "selector change: expected HTTP 422, got: $out"
expect_eq "$(jp '{.spec.selector.matchLabels}' deployment web)" '{"app":"web"}' 'selector after refused change'
expect_eq "$(jp '{.metadata.generation}' deployment web)" "$gen" 'generation after refused change'
expect_eq "$(jp '{.items[*].metadata.name}' rs -l app=web | wc -w)" 1 'replica sets after refused change'

# --- a ReplicaSet deleted during a rollout is recreated and the rollout finishes ---
# The new pods take 2 s to be ready, so the rollout lasts about 6 s; the new ReplicaSet is
# deleted as soon as it exists (a wait for one exact count could miss it on a busy machine).
k patch deployment web --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"sim.baton.dev/ready-after":"2s"}},"spec":{"containers":[{"name":"c","image":"registry.local/web:v2"}]}}}}' >/dev/null
new_rs=""
for _ in $(seq 1 100); do
  new_rs=$("$KUBECTL" get rs -l app=web -o 'jsonpath={.items[?(@.spec.template.spec.containers[0].image=="registry.local/web:v2")].metadata.name}' 2>/dev/null)
  [ -n "$new_rs" ] && break
  sleep 0.1
done
[ -n "$new_rs" ] || fail "no new replica set during the rollout"
[ "$(jp '{.status.updatedReplicas}' deployment web)" != 3 ] || fail "the rollout ended before the replica set could be deleted"
old_uid=$(jp '{.metadata.uid}' rs "$new_rs")
k delete rs "$new_rs" --wait=false >/dev/null
for _ in $(seq 1 100); do
  uid=$("$KUBECTL" get rs "$new_rs" -o 'jsonpath={.metadata.uid}' 2>/dev/null)
  [ -n "$uid" ] && [ "$uid" != "$old_uid" ] && break
  sleep 0.1
done
[ -n "$uid" ] && [ "$uid" != "$old_uid" ] || fail "replica set $new_rs was not recreated"
k rollout status deployment/web --timeout=30s >/dev/null
expect 'deployment "web" successfully rolled out'
wait_for 3 '{.status.availableReplicas}' rs "$new_rs"
wait_for 3 '{.status.replicas}' deployment web

# --- a pod that another controller owns is never adopted; an orphan is ---
k create configmap keeper >/dev/null
keeper_uid=$(jp '{.metadata.uid}' configmap keeper)
cat >"$E2E_TMP/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: foreign
  labels: {app: claimed}
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: keeper, uid: $keeper_uid, controller: true}]
spec: {containers: [{name: c, image: registry.local/web:v1}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: orphan
  labels: {app: claimed}
spec: {containers: [{name: c, image: registry.local/web:v1}]}
YAML
k create -f "$E2E_TMP/pods.yaml" >/dev/null
cat >"$E2E_TMP/rs.yaml" <<'YAML'
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: claimer}
spec:
  replicas: 2
  selector: {matchLabels: {app: claimed}}
  template:
    metadata: {labels: {app: claimed}}
    spec: {containers: [{name: c, image: registry.local/web:v1}]}
YAML
k create -f "$E2E_TMP/rs.yaml" >/dev/null
wait_for 2 '{.status.readyReplicas}' rs claimer
sleep 0.5
expect_eq "$(jp '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' pod foreign)" 'ConfigMap/keeper' 'owner of the foreign pod'
expect_eq "$(jp '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' pod orphan)" 'ReplicaSet/claimer' 'owner of the orphan pod'
expect_eq "$(jp '{.items[*].metadata.name}' pods -l app=claimed | wc -w)" 3 'pods labelled app=claimed'
expect_eq "$(jp '{.status.replicas}' rs claimer)" 2 'claimer status.replicas'
pass
