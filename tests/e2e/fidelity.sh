#!/usr/bin/env bash
# API fidelity for strict clients (issue 19): the fields Kubernetes always writes
# (ReplicationController `status.replicas: 0`, `status: {}`, `resources: {}`) in create,
# get, list and watch answers; objects and Status bodies in Kubernetes' field order, byte for
# byte for a second create; and every object of every served kind, as kubectl and a watch
# receive it, valid against the server's own /openapi/v3 schemas (tests/python/openapi_check.py).
# kubectl-versions: 1.27 1.33
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
start_server --simulated-nodes 1

cat >"$E2E_TMP/deploy.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  replicas: 1
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: web
        image: nginx
YAML
k create -f "$E2E_TMP/deploy.yaml"
k_fails create -f "$E2E_TMP/deploy.yaml"
expect 'deployments.apps "x" already exists'

# Must-hold 2: the second create's Status, byte for byte (Go's encoder ends it with a newline,
# then curl_api adds one before the code).
curl_api POST /apis/apps/v1/namespaces/default/deployments \
  -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/deploy.yaml" >"$E2E_TMP/409" \
  || fail "curl failed"
LAST_OUT=$(cat "$E2E_TMP/409")
expect_eq "$(tail -n 1 "$E2E_TMP/409")" 409 "second create's code"
printf '%s\n' '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"x\" already exists","reason":"AlreadyExists","details":{"name":"x","group":"apps","kind":"deployments"},"code":409}' >"$E2E_TMP/want"
head -n -2 "$E2E_TMP/409" | cmp -s - "$E2E_TMP/want" || fail "second create's Status body differs from Kubernetes'"

# A NotFound of the core group: no group in details, code last.
LAST_OUT=$(curl_api GET /api/v1/namespaces/default/pods/nope)
expect '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}'

# Must-hold 1: a ReplicationController answers status.replicas: 0 on create, get, list, watch.
RC='{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"rc"},"spec":{"replicas":0,"selector":{"app":"rc"},"template":{"metadata":{"labels":{"app":"rc"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}'
LAST_OUT=$(curl_api POST /api/v1/namespaces/default/replicationcontrollers \
  -H 'Content-Type: application/json' -d "$RC")
expect '"status":{"replicas":0}'
# Top level and metadata in Kubernetes' field order; a template's metadata as Go writes it.
expect '{"kind":"ReplicationController","apiVersion":"v1","metadata":{"name":"rc","namespace":"default","uid":'
expect '"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"rc"}},"spec":{"containers":[{"name":"web","image":"nginx","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always"}],"restartPolicy":"Always"'
LAST_OUT=$(curl_api GET /api/v1/namespaces/default/replicationcontrollers/rc)
expect '"status":{"replicas":0'
LAST_OUT=$(curl_api GET /api/v1/namespaces/default/replicationcontrollers)
expect '"status":{"replicas":0'
LAST_OUT=$(curl_api GET '/api/v1/namespaces/default/replicationcontrollers?watch=1&timeoutSeconds=1')
expect '{"type":"ADDED","object":{"kind":"ReplicationController","apiVersion":"v1","metadata":{"name":"rc"'
expect '"status":{"replicas":0'
k get rc rc -o jsonpath='{.status.replicas}'
expect_eq "$LAST_OUT" 0 "kubectl get rc -o jsonpath .status.replicas"
# A Service always has status.loadBalancer.
k create service clusterip fid-svc --tcp=80:80
LAST_OUT=$(curl_api GET /api/v1/namespaces/default/services/fid-svc)
expect '"status":{"loadBalancer":{}}'

# Must-hold 3: one object of each kind kubectl can make, then everything every served kind
# lists (and a watch of pods) checked against /openapi/v3.
cat >"$E2E_TMP/kinds.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: fid-cm}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: fid-secret}
stringData: {a: b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: fid-sa}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fid-ing}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: fid-svc, port: {number: 80}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: fid-hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
  minReplicas: 1
  maxReplicas: 3
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: fid-lease}
spec: {holderIdentity: me}
---
apiVersion: apps/v1
kind: ControllerRevision
metadata: {name: fid-rev}
revision: 1
data: {spec: {template: {}}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: fid-pv}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/fid-pv}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: fid-pvc}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: fid-ds}
spec:
  selector: {matchLabels: {app: fid-ds}}
  template:
    metadata: {labels: {app: fid-ds}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: fid-sts}
spec:
  serviceName: fid-svc
  replicas: 1
  selector: {matchLabels: {app: fid-sts}}
  template:
    metadata: {labels: {app: fid-sts}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: fid-job}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: busybox, command: [sh, -c, 'exit 0']}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: fid-cron}
spec:
  schedule: '0 0 1 1 *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: work, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: fid-pdb}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: x}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: fid-role}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: fid-binding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: fid-role}
subjects: [{kind: User, name: jane}, {kind: ServiceAccount, name: default}]
YAML
k apply -f "$E2E_TMP/kinds.yaml"
k scale rc rc --replicas=2
wait_for 1 '{.status.availableReplicas}' deploy x
wait_for 2 '{.status.readyReplicas}' rc rc
wait_for 1 '{.status.readyReplicas}' statefulset fid-sts
# Completed answers are what patches apply to: a settled pod must not be rewritten by its
# (simulated) kubelet's status patches when nothing changed (a no-op write stores nothing).
k get pods -l app=x -o jsonpath='{.items[0].metadata.resourceVersion}'
rv_before=$LAST_OUT
sleep 3
k get pods -l app=x -o jsonpath='{.items[0].metadata.resourceVersion}'
expect_eq "$LAST_OUT" "$rv_before" "resourceVersion of a settled pod after 3 s"

mkdir -p "$E2E_TMP/openapi" "$E2E_TMP/got"
curl_api GET /openapi/v3 | head -n -1 >"$E2E_TMP/openapi/index.json"
for p in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["paths"]))' "$E2E_TMP/openapi/index.json"); do
  curl_api GET "/openapi/v3/$p" | head -n -1 >"$E2E_TMP/openapi/${p//\//_}.json"
done
n=0
empty=()
for r in $("$KUBECTL" api-resources --verbs=list -o name); do
  case "$r" in *.metrics.k8s.io) continue ;; esac  # served live from node agents, none here
  n=$((n + 1))
  LAST_OUT=$("$KUBECTL" get "$r" -A -o json 2>&1) || fail "kubectl get $r -A -o json failed"
  printf '%s\n' "$LAST_OUT" >"$E2E_TMP/got/$r.json"
  # Every served kind is checked: each must have at least one object here.
  items=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$E2E_TMP/got/$r.json")
  [ "$items" -gt 0 ] || empty+=("$r")
done
[ "${#empty[@]}" -eq 0 ] || fail "no object of ${empty[*]} to check (create one above)" 
curl_api GET '/api/v1/pods?watch=1&timeoutSeconds=1' | head -n -1 >"$E2E_TMP/got/pods-watch.json"
curl_api GET '/apis/apps/v1/namespaces/default/deployments/x/scale' | head -n -1 >"$E2E_TMP/got/scale.json"
LAST_OUT=$(python3 "$ROOT/tests/python/openapi_check.py" "$E2E_TMP/openapi" "$E2E_TMP"/got/*.json 2>&1) \
  || fail "objects that do not fit /openapi/v3"
printf '%s\n' "$LAST_OUT"
[ "$n" -ge 15 ] || fail "only $n listable resources"
pass
