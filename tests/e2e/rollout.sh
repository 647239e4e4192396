#!/usr/bin/env bash
# Issue 4's seed flow on simulated nodes: the tutorial's Deployment reaches 3 Ready pods, a
# `set image` rolls out and `rollout status` exits 0 with the usual final line, history and
# undo work, scaling works, a ReplicationController replaces a deleted pod, and repeated
# events are counted as Kubernetes counts them.
# kubectl-versions: 1.27 1.33 — controller behaviour; the kubectl-facing rollout output is
# rollout-kubectl.sh's, which runs with every version.
source "$(dirname "$0")/lib.sh"
YAML="$(cd "$(dirname "$0")/../.." && pwd)/examples/rolling-update-test.yaml"
start_server --simulated-nodes 3

k get nodes >/dev/null
expect 'sim-node-2'
expect 'Ready'

WAIT_TRIES=150   # wait_for (lib.sh) retries, 0.1 s apart

k create -f "$YAML" >/dev/null
wait_for 3 '{.status.availableReplicas}' deployment rolling-update-test
k get pods -l app=rolling-update-test >/dev/null
[ "$(printf '%s\n' "$LAST_OUT" | grep -c ' Running ')" = 3 ] || fail "expected 3 Running pods"
k rollout status deployment/rolling-update-test --timeout=30s >/dev/null
expect 'deployment "rolling-update-test" successfully rolled out'

k set image deployment/rolling-update-test rolling-update-test=registry.local/hello:v2 >/dev/null
k rollout status deployment/rolling-update-test --timeout=30s >/dev/null
expect 'deployment "rolling-update-test" successfully rolled out'
wait_for 3 '{.status.updatedReplicas}' deployment rolling-update-test
k get rs -l app=rolling-update-test >/dev/null
expect 'rolling-update-test-'
expect_eq "$(jp '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment rolling-update-test)" 2 'revision after set image'
k get pods -l app=rolling-update-test -o 'jsonpath={.items[*].spec.containers[0].image}' >/dev/null
expect_not 'hello:v1 '

k rollout history deployment/rolling-update-test >/dev/null
expect 'REVISION'
expect '1 '
expect '2 '

k rollout undo deployment/rolling-update-test >/dev/null
expect 'rolled back'
k rollout status deployment/rolling-update-test --timeout=30s >/dev/null
expect 'successfully rolled out'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment rolling-update-test)" 'registry.local/hello:v1' 'image after undo'
expect_eq "$(jp '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment rolling-update-test)" 3 'revision after undo'

k scale deployment/rolling-update-test --replicas=5 >/dev/null
wait_for 5 '{.status.availableReplicas}' deployment rolling-update-test
k scale deployment/rolling-update-test --replicas=2 >/dev/null
wait_for 2 '{.status.replicas}' deployment rolling-update-test

k describe deployment rolling-update-test >/dev/null
expect 'ScalingReplicaSet'
# extensions/v1beta1 defaults progressDeadlineSeconds to MaxInt32: no Progressing condition, as in Kubernetes.
expect 'MinimumReplicasAvailable'

cat >"$E2E_TMP/rc.yaml" <<'RC'
apiVersion: v1
kind: ReplicationController
metadata: {name: hello-rc}
spec:
  replicas: 3
  selector: {app: hello-rc}
  template:
    metadata: {labels: {app: hello-rc}}
    spec: {containers: [{name: hello, image: registry.local/hello:v1}]}
RC
k create -f "$E2E_TMP/rc.yaml" >/dev/null
wait_for 3 '{.status.readyReplicas}' rc hello-rc
victim=$(jp '{.items[0].metadata.name}' pods -l app=hello-rc)
k delete pod "$victim" >/dev/null
wait_for 3 '{.status.readyReplicas}' rc hello-rc
k get pods -l app=hello-rc >/dev/null
expect_not "$victim"
# Event correlation (client-go's EventCorrelator): from the tenth distinct "Created pod"
# message on, the RC's events are one combined event whose count grows; kubectl describe
# shows it as Kubernetes does, "(xN over ...)".
k scale rc hello-rc --replicas=12 >/dev/null
wait_for 12 '{.status.replicas}' rc hello-rc
sleep 0.5
k describe rc hello-rc >/dev/null
expect '(combined from similar events): Created pod: hello-rc-'
printf '%s\n' "$LAST_OUT" | grep -Eq 'SuccessfulCreate +[0-9]+s \(x[0-9]+ over [0-9]+s\) +replication-controller +\(combined' ||
  fail "kubectl describe rc shows no aggregated count (xN over ...)"
k scale rc hello-rc --replicas=1 >/dev/null
wait_for 1 '{.status.replicas}' rc hello-rc

# Crashing pods: a crash-looping container restarts in place (the RC keeps the same pods);
# pods that exit (phase Failed) are replaced, so the RC keeps its count of active pods.
crash_rc() {  # crash_rc NAME ANNOTATION VALUE
  cat <<Y | "$KUBECTL" create -f - >/dev/null 2>&1 || fail "creating rc $1"
apiVersion: v1
kind: ReplicationController
metadata: {name: $1}
spec:
  replicas: 2
  selector: {app: $1}
  template:
    metadata:
      labels: {app: $1}
      annotations: {"sim.baton.dev/$2": "$3"}
    spec: {containers: [{name: c, image: registry.local/hello:v1}]}
Y
}
crash_rc looping crash-loop always
wait_for 2 '{.status.replicas}' rc looping
sleep 2.5
k get pods -l app=looping >/dev/null
expect 'CrashLoopBackOff'
expect_eq "$(jp '{.items[*].metadata.name}' pods -l app=looping | wc -w)" 2 'crash-looping pods are restarted, not replaced'
restarts=$(jp '{.items[0].status.containerStatuses[0].restartCount}' pods -l app=looping)
[ "${restarts:-0}" -ge 1 ] || fail "restartCount did not grow: $restarts"
expect_eq "$(jp '{.status.readyReplicas}' rc looping)" '' 'no ready replicas while crash-looping'

crash_rc exiting exit-after 2s
replaced=no
for _ in $(seq 1 80); do
  failed=$("$KUBECTL" get pods -l app=exiting --field-selector status.phase=Failed -o name 2>/dev/null | wc -l)
  active=$("$KUBECTL" get pods -l app=exiting --field-selector status.phase!=Failed -o name 2>/dev/null | wc -l)
  if [ "$failed" -ge 2 ] && [ "$active" -eq 2 ]; then replaced=yes; break; fi
  sleep 0.25
done
[ "$replaced" = yes ] || fail "the RC did not replace its failed pods (failed $failed, active $active)"
pass
