#!/usr/bin/env bash
# Issue 18, must-holds 1 and 5 for StatefulSets, on simulated nodes: a 5-replica StatefulSet
# is created in ordinal order (each pod only once its predecessor is Ready) and `kubectl
# rollout status` prints kubectl's lines and exits 0; an image change rolls from ordinal 4 down
# to 0 one pod at a time; with `partition: 3` only ordinals 3 and 4 change; `rollout history`
# lists the revisions and shows one's template, `rollout undo` returns to the previous
# revision; `rollout restart` rolls every pod again; `kubectl scale` removes the highest
# ordinals; the table prints NAME READY AGE (-o wide CONTAINERS IMAGES); a negative
# partition and a selector not matching the template answer 422 with Kubernetes' field path
# and message, and nothing is stored. The order and the one-at-a-time bound are checked on a
# `kubectl get pods -w` record of every pod event.
# kubectl-versions: 1.27 1.33 — controller behaviour through generic commands; rollout
# status/history/undo/restart are kubectl's own code for StatefulSets in both versions.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 2 --sim-ready-delay-ms 150
WAIT_TRIES=250

cat >"$E2E_TMP/web.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.local/web:v1}]
YAML

# Every pod event from here on: EVENT NAME READY IMAGE DELETING (appended, as the marks are).
"$KUBECTL" get pods -l app=web -w --output-watch-events --no-headers \
  -o 'custom-columns=E:.type,N:.object.metadata.name,R:.object.status.conditions[?(@.type=="Ready")].status,I:.object.spec.containers[0].image,D:.object.metadata.deletionTimestamp' \
  >>"$E2E_TMP/events" 2>&1 &
WATCH=$!
sleep 0.5
mark() { echo "MARK $1" >>"$E2E_TMP/events"; }

k apply -f "$E2E_TMP/web.yaml" >/dev/null
expect 'statefulset.apps/web created'
k rollout status sts/web --timeout=30s
expect 'Waiting for 1 pods to be ready...'
expect 'partitioned roll out complete: 5 new pods have been updated...'
k get sts web
expect 'NAME   READY   AGE'
expect 'web    5/5'
k get sts web -o wide
expect 'CONTAINERS   IMAGES'
expect 'registry.local/web:v1'
expect_eq "$(jp '{.items[*].spec.hostname}' pods -l app=web --sort-by=.metadata.name)" 'web-0 web-1 web-2 web-3 web-4' 'hostnames'
expect_eq "$(jp '{.spec.subdomain}' pod web-2)" 'web' 'subdomain'
expect_eq "$(jp '{.metadata.labels.apps\.kubernetes\.io/pod-index}' pod web-3)" '3' 'pod-index label'
expect_eq "$(jp '{.metadata.labels.statefulset\.kubernetes\.io/pod-name}' pod web-3)" 'web-3' 'pod-name label'
REV1=$(jp '{.status.updateRevision}' sts web)
expect_eq "$(jp '{.metadata.labels.controller-revision-hash}' pod web-0)" "$REV1" 'revision label'
expect_eq "$(jp '{.revision}' controllerrevision "$REV1")" 1 'first revision number'

mark roll
k set image sts/web web=registry.local/web:v2 >/dev/null
k rollout status sts/web --timeout=30s
expect 'partitioned roll out complete: 5 new pods have been updated...'
REV2=$(jp '{.status.updateRevision}' sts web)
[ "$REV2" != "$REV1" ] || fail "the image change made no new revision"
wait_for "$REV2" '{.status.currentRevision}' sts web
expect_eq "$(jp '{.items[*].spec.containers[0].image}' pods -l app=web)" "$(printf 'registry.local/web:v2 %.0s' 1 2 3 4; echo registry.local/web:v2)" 'images after the roll'

mark partition
k patch sts web -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":3}}}}' >/dev/null
k set image sts/web web=registry.local/web:v3 >/dev/null
k rollout status sts/web --timeout=30s
expect 'partitioned roll out complete: 2 new pods have been updated...'
expect_eq "$(jp '{.items[*].spec.containers[0].image}' pods -l app=web --sort-by=.metadata.name)" \
  'registry.local/web:v2 registry.local/web:v2 registry.local/web:v2 registry.local/web:v3 registry.local/web:v3' 'images with partition 3'
expect_eq "$(jp '{.status.updatedReplicas}' sts web)" 2 'updatedReplicas with partition 3'
expect_eq "$(jp '{.status.currentRevision}' sts web)" "$REV2" 'currentRevision with partition 3'

k rollout history sts/web
expect 'statefulset.apps/web'
expect 'REVISION'
printf '%s\n' "$LAST_OUT" | grep -Eq '^1 +<none>' || fail "revision 1 missing from the history"
printf '%s\n' "$LAST_OUT" | grep -Eq '^3 +<none>' || fail "revision 3 missing from the history"
k rollout history sts/web --revision=2
expect 'statefulset.apps/web with revision #2'
expect 'Image:	registry.local/web:v2'

mark undo
k rollout undo sts/web
expect 'statefulset.apps/web rolled back'
# With partition 3, ordinals 0-2 are at the restored revision already: ordinals 4 and 3 roll.
wait_for "$(printf 'registry.local/web:v2 %.0s' 1 2 3 4; echo registry.local/web:v2)" '{.items[*].spec.containers[0].image}' pods -l app=web
wait_for 5 '{.status.updatedReplicas}' sts web
k rollout status sts/web --timeout=30s
expect 'partitioned roll out complete: 5 new pods have been updated...'
expect_eq "$(jp '{.status.updateRevision}' sts web)" "$REV2" 'update revision after undo'
expect_eq "$(jp '{.revision}' controllerrevision "$REV2")" 4 'the restored revision renumbered'
k rollout undo sts/web --to-revision=4
expect 'skipped rollback (current template already matches revision 4)'

mark restart
k patch sts web -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}' >/dev/null
k rollout restart sts/web
expect 'statefulset.apps/web restarted'
k rollout status sts/web --timeout=30s
expect 'partitioned roll out complete: 5 new pods have been updated...'
REV5=$(jp '{.status.updateRevision}' sts web)
wait_for "$REV5" '{.status.currentRevision}' sts web
expect_eq "$(jp '{.items[*].metadata.labels.controller-revision-hash}' pods -l app=web)" "$REV5 $REV5 $REV5 $REV5 $REV5" 'revisions after restart'

mark scale
k scale sts web --replicas=3
expect 'statefulset.apps/web scaled'
wait_for 'web-0 web-1 web-2' '{.items[*].metadata.name}' pods -l app=web
wait_for 3 '{.status.replicas}' sts web
k get sts web
expect 'web    3/3'
sleep 0.5
kill "$WATCH" 2>/dev/null; wait "$WATCH" 2>/dev/null

# The watch record: creation in ordinal order, each pod once its predecessor was Ready;
# the rolls from the highest ordinal down, never more than one pod missing, not Ready or
# terminating at once; the partitioned roll touching ordinals 3 and 4 only; the scale-down
# taking 4, then 3.
python3 - "$E2E_TMP/events" <<'PY' || fail "pod event record: $(cat "$E2E_TMP/events" | tail -n 60)"
import sys
phase, ready, present, deleting = "create", {}, set(), set()
order = {}
worst = {}
for line in open(sys.argv[1]):
    f = line.split()
    if not f:
        continue
    if f[0] == "MARK":
        phase = f[1]; continue
    ev, name, r, image, d = f[0], f[1], f[2], f[3], f[4]
    ordinal = int(name.rsplit("-", 1)[1])
    if ev == "ADDED" and name not in present:
        if phase == "create" and ordinal > 0 and ready.get(f"web-{ordinal-1}") != "True":
            sys.exit(f"web-{ordinal} created before web-{ordinal-1} was Ready")
        order.setdefault(phase, []).append(("add", ordinal))
        present.add(name)
    if ev == "DELETED":
        present.discard(name); deleting.discard(name); ready.pop(name, None)
        continue
    if d != "<none>" and name not in deleting:
        deleting.add(name)
        order.setdefault(phase, []).append(("delete", ordinal))
    ready[name] = r
    if phase in ("roll", "undo", "restart", "partition"):
        healthy = sum(1 for n in present if ready.get(n) == "True" and n not in deleting)
        worst[phase] = min(worst.get(phase, 5), healthy)
def deletes(p):
    return [o for what, o in order.get(p, []) if what == "delete"]
adds = [o for what, o in order["create"] if what == "add"]
assert adds == [0, 1, 2, 3, 4], f"creation order {adds}"
assert deletes("roll") == [4, 3, 2, 1, 0], f"roll order {deletes('roll')}"
assert deletes("partition") == [4, 3], f"partitioned roll {deletes('partition')}"
assert deletes("undo") == [4, 3], f"undo {deletes('undo')}"
assert deletes("restart") == [4, 3, 2, 1, 0], f"restart order {deletes('restart')}"
assert deletes("scale") == [4, 3], f"scale-down order {deletes('scale')}"
for p in ("roll", "partition", "undo", "restart"):
    assert worst.get(p, 0) >= 4, f"{p}: only {worst.get(p)} of 5 pods Ready at one point"
PY

# Bad input: 422 with Kubernetes' field path and message, nothing stored.
sed -e 's/name: web}/name: bad}/' -e 's/replicas: 5/replicas: 2\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: -1}}/' \
  "$E2E_TMP/web.yaml" | awk '/^---/{p=1;next} p' >"$E2E_TMP/bad-partition.yaml"
k_fails apply -f "$E2E_TMP/bad-partition.yaml"
expect 'The StatefulSet "bad" is invalid: spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0'
sed -e 's/name: web}/name: bad}/' -e 's/labels: {app: web}/labels: {app: other}/' \
  "$E2E_TMP/web.yaml" | awk '/^---/{p=1;next} p' >"$E2E_TMP/bad-selector.yaml"
k_fails apply -f "$E2E_TMP/bad-selector.yaml"
expect 'The StatefulSet "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`'
OUT=$(curl_api POST /apis/apps/v1/namespaces/default/statefulsets -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/bad-partition.yaml")
[ "$(printf '%s' "$OUT" | tail -n 1)" = 422 ] || fail "negative partition: expected 422, got: $OUT"
printf '%s' "$OUT" | grep -q '"field":"spec.updateStrategy.rollingUpdate.partition"' || fail "no cause naming the field: $OUT"
k_fails get sts bad
expect 'statefulsets.apps "bad" not found'
pass
