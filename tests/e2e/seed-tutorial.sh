#!/usr/bin/env bash
# The seed tutorial end to end (issue 11), as a user follows docs/tutorial.md: the hello
# images built with the tutorial's Makefile and pushed to a local docker-registry, the seed's
# Deployment, Service and Ingress, "This is version 1." through the Ingress, the three ways to
# upgrade (apply -f, set image, edit) and undo, each with `kubectl rollout status`, while a
# bounded background client counts failed requests through the Ingress and the ClusterIP
# (must be 0); then the ReplicationController half with `kubectl rolling-update` and its
# printed lines; finally `baton reset` and a check that nothing is left behind.
# Needs root, runc and nftables (CI has them). kubectl-versions: 1.27 1.33
# e2e-alone: every request is counted, so test.sh runs it with nothing beside it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry.sh"
AGENT=1
WAIT_TRIES=${WAIT_TRIES:-600}
export PATH="$(dirname "$BATON"):$PATH"   # kubectl-rolling_update from this build
HOST=rolling-update-test.traefik.io

start_registry || fail "starting the registry"
build_tutorial_images

start_server
NODE=$(tr 'A-Z' 'a-z' </proc/sys/kernel/hostname)
wait_for True '{.status.conditions[?(@.type=="Ready")].status}' node "$NODE"

# The tutorial's YAML, image on this run's registry.
sed "s#127.0.0.1:5000/library/hello#$IMG#" "$EXAMPLE/rolling-update-test.yaml" >"$E2E_TMP/rut.yaml"
k create -f "$E2E_TMP/rut.yaml" >/dev/null
expect 'service/rolling-update-test created'
k create -f "$EXAMPLE/ingress.yaml" >/dev/null
wait_for 3 '{.status.readyReplicas}' deploy rolling-update-test
rollout_ok deployment/rolling-update-test
k get endpoints rolling-update-test >/dev/null
[ "$(jp '{.subsets[0].addresses[*].ip}' endpoints rolling-update-test | wc -w)" = 3 ] \
  || fail "expected 3 endpoint addresses, got: $LAST_OUT"

# "This is version 1." through the Ingress (as a browser with the /etc/hosts line would).
for _ in $(seq 1 100); do
  [ "$(curl -s --max-time 2 -H "Host: $HOST" http://127.0.0.1/)" = "This is version 1." ] && break
  sleep 0.1
done
expect_eq "$(curl_body http://127.0.0.1/ -H "Host: $HOST")" "This is version 1." "Ingress answer"
VIP=$(jp '{.spec.clusterIP}' svc rolling-update-test)
expect_eq "$(curl_body "http://$VIP:9090/")" "This is version 1." "ClusterIP answer"

load_start ingress http://127.0.0.1/ --host "$HOST" --rate 3000 --min-requests 20000
load_start clusterip "http://$VIP:9090/" --rate 3000 --min-requests 20000
sleep 1

# every_answer_is TEXT: ten answers in a row through the Ingress and the ClusterIP.
every_answer_is() {
  local _i
  for _i in $(seq 1 10); do
    expect_eq "$(curl_body http://127.0.0.1/ -H "Host: $HOST")" "$1" "Ingress answer after the rollout"
    expect_eq "$(curl_body "http://$VIP:9090/")" "$1" "ClusterIP answer after the rollout"
  done
}

# 1. Edit the YAML, kubectl apply.
sed 's#hello:v1#hello:v2#' "$E2E_TMP/rut.yaml" >"$E2E_TMP/rut-v2.yaml"
k apply -f "$E2E_TMP/rut-v2.yaml" >/dev/null
expect 'deployment.extensions/rolling-update-test configured'
rollout_ok deployment/rolling-update-test
every_answer_is "This is version 2."
# ... and back with undo.
k rollout undo deployment/rolling-update-test >/dev/null
expect 'rolled back'
rollout_ok deployment/rolling-update-test
every_answer_is "This is version 1."

# 2. kubectl set image.
k set image deployment/rolling-update-test "rolling-update-test=$IMG:v2" >/dev/null
expect 'image updated'
rollout_ok deployment/rolling-update-test
every_answer_is "This is version 2."
k rollout history deployment/rolling-update-test >/dev/null
expect 'REVISION'
REV1=$(printf '%s\n' "$LAST_OUT" | awk 'NR > 2 && NF {print $1}' | head -n 1)
k rollout undo deployment/rolling-update-test --to-revision="$REV1" >/dev/null
rollout_ok deployment/rolling-update-test
every_answer_is "This is version 1."

# 3. kubectl edit.
KUBE_EDITOR="sed -i s#hello:v1#hello:v2#" k edit deployment/rolling-update-test >/dev/null
expect 'edited'
rollout_ok deployment/rolling-update-test
every_answer_is "This is version 2."

load_stop ingress clusterip
load_expect_clean ingress 20000
load_expect_clean clusterip 20000
# The Ingress holds the clients' connections itself: nothing had to be resent.
expect_eq "$(load_field ingress "d['stale_retries']")" 0 "requests resent through the Ingress"
expect_eq "$(load_field ingress "sorted(d['bodies'])")" "['This is version 1.', 'This is version 2.']" "bodies seen"
expect_eq "$(load_field ingress "d['transitions'][-1]['body']")" "This is version 2." "last body"

# The ReplicationController half: kubectl rolling-update (flags after the plugin's name).
sed "s#127.0.0.1:5000/library/hello#$IMG#" "$EXAMPLE/zeppelin-controller.yaml" >"$E2E_TMP/zep.yaml"
k create -f "$E2E_TMP/zep.yaml" >/dev/null
k expose rc zeppelin-controller -n spark-cluster --port 9090 >/dev/null
wait_for 1 '{.status.readyReplicas}' rc zeppelin-controller -n spark-cluster
ZVIP=$(jp '{.spec.clusterIP}' svc zeppelin-controller -n spark-cluster)
for _ in $(seq 1 100); do
  [ "$(curl -s --max-time 2 "http://$ZVIP:9090/")" = "This is version 1." ] && break
  sleep 0.1
done
load_start zeppelin "http://$ZVIP:9090/" --rate 500
k rolling-update zeppelin-controller --image="$IMG:v2" -n spark-cluster --update-period=2s >/dev/null
OUT=$LAST_OUT
NEW=$(printf '%s\n' "$OUT" | sed -n 's/^Created //p')
[ -n "$NEW" ] || fail "no 'Created' line in: $OUT"
for line in \
  "Scaling up $NEW from 0 to 1, scaling down zeppelin-controller from 1 to 0 (keep 1 pods available, don't exceed 2 pods)" \
  "Scaling $NEW up to 1" \
  "Scaling zeppelin-controller down to 0" \
  "Update succeeded. Deleting old controller: zeppelin-controller" \
  "Renaming $NEW to zeppelin-controller" \
  'replicationcontroller "zeppelin-controller" rolling updated'; do
  expect "$line"
done
for _ in $(seq 1 50); do
  [ "$(curl -s --max-time 2 "http://$ZVIP:9090/")" = "This is version 2." ] && break
  sleep 0.1
done
expect_eq "$(curl_body "http://$ZVIP:9090/")" "This is version 2." "zeppelin answer after rolling-update"
load_stop zeppelin
load_expect_clean zeppelin 1000

baton_reset_leaves_nothing
pass
