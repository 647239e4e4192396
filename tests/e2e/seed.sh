#!/usr/bin/env bash
# The seed tutorial's API walkthrough (issue 3, "What a user does"): the tutorial's own YAML,
# extensions/v1beta1 included, through the real kubectl with client-side validation on.
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
start_server

k get namespaces >/dev/null
for ns in default kube-system kube-public kube-node-lease; do expect "$ns"; done

k create -f "$YAML" >/dev/null
expect 'deployment.extensions/rolling-update-test created'
expect 'service/rolling-update-test created'
k_fails create -f "$YAML" >/dev/null
expect 'AlreadyExists'
# The controller's writes (revision annotation, status) are no spec change: generation stays 1.
wait_for 1 '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment rolling-update-test
expect_eq "$(jp '{.metadata.generation}' deployment rolling-update-test)" 1 'generation after create'

k get deploy,rs,rc,svc,pods,events -o wide >/dev/null
expect 'deployment.apps/rolling-update-test'
expect 'service/rolling-update-test'
expect 'CONTAINERS'
expect 'registry.local/hello:v1'
expect 'app=rolling-update-test'

# apply after create: configured (kubectl adds its annotation), then unchanged, then
# configured again after an edit of the file.
k apply -f "$YAML" >/dev/null
expect 'deployment.extensions/rolling-update-test configured'
k apply -f "$YAML" >/dev/null
expect 'deployment.extensions/rolling-update-test unchanged'
expect 'service/rolling-update-test unchanged'
sed 's/hello:v1/hello:v1.1/' "$YAML" >"$E2E_TMP/edited.yaml"
k apply -f "$E2E_TMP/edited.yaml" >/dev/null
expect 'deployment.extensions/rolling-update-test configured'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment rolling-update-test)" 'registry.local/hello:v1.1' 'image after apply'

gen_before=$(jp '{.metadata.generation}' deployment rolling-update-test)
k set image deployment/rolling-update-test rolling-update-test=registry.local/hello:v2 >/dev/null
expect 'image updated'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment rolling-update-test)" 'registry.local/hello:v2' 'image after set image'
gen_after=$(jp '{.metadata.generation}' deployment rolling-update-test)
[ "$gen_after" -gt "$gen_before" ] || fail "generation did not grow on a spec change ($gen_before -> $gen_after)"

cat >"$E2E_TMP/editor.sh" <<'ED'
#!/bin/sh
sed -i 's#registry.local/hello:v2#registry.local/hello:v3#' "$1"
ED
chmod +x "$E2E_TMP/editor.sh"
EDITOR="$E2E_TMP/editor.sh" k edit deployment/rolling-update-test >/dev/null
expect 'deployment.apps/rolling-update-test edited'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment rolling-update-test)" 'registry.local/hello:v3' 'image after edit'

k scale deployment/rolling-update-test --replicas=5 >/dev/null
expect 'deployment.apps/rolling-update-test scaled'
expect_eq "$(jp '{.spec.replicas}' deployment rolling-update-test)" '5' 'replicas after scale'

k get deployment rolling-update-test -o yaml >/dev/null
expect 'apiVersion: apps/v1'
expect 'progressDeadlineSeconds: 2147483647'   # extensions/v1beta1 defaults, kept in storage
expect 'revisionHistoryLimit: 2147483647'
expect 'maxSurge: 1'
expect 'imagePullPolicy: IfNotPresent'
expect 'terminationMessagePath: /dev/termination-log'
expect 'app: rolling-update-test'

k get deployments.v1beta1.extensions rolling-update-test -o yaml >/dev/null
expect 'apiVersion: extensions/v1beta1'
expect 'matchLabels:'

k get service rolling-update-test -o jsonpath='{.spec.clusterIP}' >/dev/null
case "$LAST_OUT" in 10.*) ;; *) fail "service has no cluster IP: $LAST_OUT" ;; esac

k delete -f "$YAML" >/dev/null
expect 'deployment.extensions "rolling-update-test" deleted'
expect 'service "rolling-update-test" deleted'
k_fails get deployment rolling-update-test >/dev/null
expect 'NotFound'
pass
