#!/usr/bin/env bash
# What a user sees of a rollout through kubectl's own commands, on simulated nodes whose pods
# take a moment to become Ready (so each rollout takes several steps): the exact progress
# lines of `rollout status`, `apply` and `edit` as triggers, pause/resume mid-rollout,
# `undo --to-revision` and `history --revision`, ProgressDeadlineExceeded making
# `rollout status` fail with the usual message, and Recreate never overlapping versions.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 2


# web.yaml IMAGE [READY_AFTER]: a RollingUpdate deployment (maxSurge 1, maxUnavailable 0) whose
# pods become Ready READY_AFTER (700ms) after they start.
web_yaml() {
  cat >"$E2E_TMP/web.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sim.baton.dev/ready-after: ${2:-700ms}}
    spec: {containers: [{name: web, image: registry.local/web:$1}]}
YAML
}

web_yaml v1
k apply -f "$E2E_TMP/web.yaml" >/dev/null
k rollout status deployment/web --timeout=30s >/dev/null
expect 'deployment "web" successfully rolled out'

# --- progress lines, with `apply` of a new image as the trigger (each step lasts 1.5 s, so
# that kubectl, started after the apply, sees every one even on a busy machine) ---
web_yaml v2 1500ms
k apply -f "$E2E_TMP/web.yaml" >/dev/null
k rollout status deployment/web --timeout=30s >/dev/null
expect 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...'
expect 'Waiting for deployment "web" rollout to finish: 2 out of 3 new replicas have been updated...'
expect 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...'
expect 'deployment "web" successfully rolled out'
expect_eq "$(jp '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment web)" 2 'revision after apply'
k get pods -l app=web -o 'jsonpath={.items[*].spec.containers[0].image}' >/dev/null
expect_not 'web:v1'

# --- `edit` as the trigger ---
KUBE_EDITOR="sed -i s#registry.local/web:v2#registry.local/web:v3#" k edit deployment/web >/dev/null
expect 'edited'
k rollout status deployment/web --timeout=30s >/dev/null
expect 'successfully rolled out'
expect_eq "$(jp '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment web)" 3 'revision after edit'

# --- pause mid-rollout: nothing moves; resume: it finishes (slower pods leave time to pause) ---
k patch deployment/web -p '{"spec":{"template":{"metadata":{"annotations":{"sim.baton.dev/ready-after":"1500ms"}},"spec":{"containers":[{"name":"web","image":"registry.local/web:v4"}]}}}}' >/dev/null
# Paused as soon as the new ReplicaSet exists (a wait for one exact count could miss it).
for _ in $(seq 1 100); do
  [ -n "$("$KUBECTL" get rs -l app=web -o 'jsonpath={.items[?(@.spec.template.spec.containers[0].image=="registry.local/web:v4")].metadata.name}' 2>/dev/null)" ] && break
  sleep 0.1
done
k rollout pause deployment/web >/dev/null
expect 'paused'
sleep 0.3  # let a step already under way land
wait_for true '{.spec.paused}' deployment web
before=$(jp '{range .items[*]}{.metadata.name}={.spec.replicas} {end}' rs -l app=web)
sleep 2.5
after=$(jp '{range .items[*]}{.metadata.name}={.spec.replicas} {end}' rs -l app=web)
expect_eq "$after" "$before" 'replica sets while paused'
k rollout status deployment/web --watch=false >/dev/null
expect 'Waiting for deployment "web" rollout to finish:'
expect 'out of 3 new replicas have been updated...'
k get deployment web -o 'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}' >/dev/null
expect 'DeploymentPaused'
k rollout resume deployment/web >/dev/null
expect 'resumed'
k rollout status deployment/web --timeout=30s >/dev/null
expect 'deployment "web" successfully rolled out'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment web)" 'registry.local/web:v4' 'image after resume'

# --- history and undo --to-revision ---
k rollout history deployment/web --revision=2 >/dev/null
expect 'revision #2'
expect 'registry.local/web:v2'
k rollout undo deployment/web --to-revision=1 >/dev/null
expect 'rolled back'
k rollout status deployment/web --timeout=30s >/dev/null
expect 'successfully rolled out'
expect_eq "$(jp '{.spec.template.spec.containers[0].image}' deployment web)" 'registry.local/web:v1' 'image after undo --to-revision=1'
expect_eq "$(jp '{.metadata.annotations.deployment\.kubernetes\.io/revision}' deployment web)" 5 'revision after undo --to-revision=1'
k rollout history deployment/web >/dev/null
expect_not $'\n1 '   # revision 1 became revision 5
expect '5 '
k_fails rollout undo deployment/web --to-revision=42 >/dev/null
expect 'unable to find specified revision 42 in history'

# --- ProgressDeadlineExceeded: pods that never become Ready ---
cat >"$E2E_TMP/stuck.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 2
  progressDeadlineSeconds: 3
  selector: {matchLabels: {app: stuck}}
  template:
    metadata:
      labels: {app: stuck}
      annotations: {sim.baton.dev/never-ready: "true"}
    spec: {containers: [{name: stuck, image: registry.local/stuck:v1}]}
YAML
k create -f "$E2E_TMP/stuck.yaml" >/dev/null
k_fails rollout status deployment/stuck --timeout=30s >/dev/null
expect 'error: deployment "stuck" exceeded its progress deadline'
k describe deployment stuck >/dev/null
expect 'ProgressDeadlineExceeded'

# --- Recreate: the old version is gone before the new one starts ---
cat >"$E2E_TMP/re.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: re}
spec:
  replicas: 3
  strategy: {type: Recreate}
  selector: {matchLabels: {app: re}}
  template:
    metadata:
      labels: {app: re}
      annotations: {sim.baton.dev/ready-after: 300ms}
    spec: {containers: [{name: re, image: registry.local/re:v1}]}
YAML
k create -f "$E2E_TMP/re.yaml" >/dev/null
k rollout status deployment/re --timeout=30s >/dev/null
k set image deployment/re re=registry.local/re:v2 >/dev/null
for _ in $(seq 1 60); do
  images=$("$KUBECTL" get pods -l app=re -o 'jsonpath={.items[*].spec.containers[0].image}' 2>/dev/null)
  case "$images" in *re:v1*re:v2*|*re:v2*re:v1*) fail "Recreate overlapped versions: $images" ;; esac
  case "$images" in *re:v1*) ;; *re:v2*re:v2*re:v2*) break ;; esac
  sleep 0.05
done
k rollout status deployment/re --timeout=30s >/dev/null
expect 'deployment "re" successfully rolled out'
pass
