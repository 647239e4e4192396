#!/usr/bin/env bash
# Issue 5: the forms of `kubectl rolling-update` beyond `OLD --image` (rolling-update.sh has
# that one, resume, rollback and timeout): `OLD NEW --image=…`, `OLD -f NEW_RC.yaml`,
# `OLD -f -` from stdin, `--dry-run` with and without `-o`, and the old command's errors,
# each checked on stderr with its exit code and with nothing changed in the cluster.
# kubectl-versions: 1.27 1.33 — kubectl only finds and runs the plugin.
#
# The plugin is looked for next to $BATON (same cargo profile):
# `cargo build --release -p baton -p baton-rolling-update`.
source "$(dirname "$0")/lib.sh"
PLUGIN_DIR=$(cd "$(dirname "$BATON")" && pwd)
[ -x "$PLUGIN_DIR/kubectl-rolling_update" ] ||
  fail "kubectl-rolling_update not found next to $BATON (cargo build -p baton-rolling-update in the same profile)"
export PATH="$PLUGIN_DIR:$PATH"
start_server --simulated-nodes 3

NS=forms
FAST=(--update-period=1s --poll-interval=200ms)
OLD_IMAGE=registry.example/web:1.0
NEW_IMAGE=registry.example/web:2.0
k create namespace "$NS" >/dev/null

# make_rc NAME REPLICAS SELECTOR_YAML [IMAGE]: a one-container RC, Ready.
make_rc() {
  "$KUBECTL" -n "$NS" create -f - >/dev/null <<RC || fail "creating rc $1"
apiVersion: v1
kind: ReplicationController
metadata: {name: $1}
spec:
  replicas: $2
  selector: $3
  template:
    metadata: {labels: $3}
    spec: {containers: [{name: main, image: ${4:-$OLD_IMAGE}}]}
RC
  wait_for "$2" '{.status.readyReplicas}' -n "$NS" rc "$1"
}

# ru ARGS... (stdin passed on): runs `kubectl rolling-update -n $NS ARGS`, stdout in $OUT,
# stderr in $ERR, exit code in $CODE; LAST_OUT holds both for failure reports.
ru() {
  "$KUBECTL" rolling-update -n "$NS" "$@" >"$E2E_TMP/ru.out" 2>"$E2E_TMP/ru.err"
  CODE=$?
  OUT=$(cat "$E2E_TMP/ru.out")
  ERR=$(cat "$E2E_TMP/ru.err")
  LAST_OUT="exit $CODE; stdout:
$OUT
stderr:
$ERR"
}
# ru_ok ARGS...: ru, and it must succeed with nothing on stderr.
ru_ok() {
  ru "$@"
  [ "$CODE" = 0 ] || fail "rolling-update $* exited $CODE"
  [ -z "$ERR" ] || fail "rolling-update $* wrote to stderr"
}
# ru_err WANT ARGS...: ru, and it must exit 1 with exactly the line WANT on stderr and
# nothing on stdout.
ru_err() {
  local want=$1; shift
  ru "$@"
  [ "$CODE" = 1 ] || fail "rolling-update $* exited $CODE, expected 1"
  [ "$ERR" = "$want" ] || fail "rolling-update $*: stderr is not: $want"
  [ -z "$OUT" ] || fail "rolling-update $*: printed on stdout before failing"
}

# rcs: the namespace's controllers, "name replicas image" sorted, one per line.
rcs() {
  "$KUBECTL" -n "$NS" get rc -o 'jsonpath={range .items[*]}{.metadata.name} {.spec.replicas} {.spec.template.spec.containers[*].image}{"\n"}{end}' | sort
}
# pod_images SELECTOR: "image labels-value" of the live pods, sorted and counted.
pods_of() {
  "$KUBECTL" -n "$NS" get pods -l "$1" -o 'jsonpath={range .items[*]}{.spec.containers[0].image} {.metadata.labels}{"\n"}{end}' | sort | uniq -c | sed 's/^ *//'
}
# unchanged NAME SNAPSHOT: the controllers are still SNAPSHOT and NAME carries no update
# annotation nor deployment label.
unchanged() {
  expect_eq "$(rcs)" "$2" "controllers after a refused or dry run"
  expect_eq "$(jp '{.metadata.annotations}' -n "$NS" rc "$1")" '' "annotations on $1"
  expect_eq "$(jp '{.spec.selector.deployment}{.spec.template.metadata.labels.deployment}' -n "$NS" rc "$1")" '' "deployment label on $1"
}

# --- 1. OLD NEW --image: the new controller keeps its own name, the old one is deleted.
make_rc frontend-v1 2 '{app: frontend}'
ru_ok frontend-v1 frontend-v2 --image="$NEW_IMAGE" "${FAST[@]}"
want='Created frontend-v2
Scaling up frontend-v2 from 0 to 2, scaling down frontend-v1 from 2 to 0 (keep 2 pods available, don'"'"'t exceed 3 pods)
Scaling frontend-v2 up to 1
Scaling frontend-v1 down to 1
Scaling frontend-v2 up to 2
Scaling frontend-v1 down to 0
Update succeeded. Deleting frontend-v1
replicationcontroller "frontend-v2" rolling updated to "frontend-v2"'
expect_eq "$OUT" "$want" 'OLD NEW --image output'
expect_eq "$(rcs)" "frontend-v2 2 $NEW_IMAGE" 'controllers after OLD NEW --image'
wait_for 2 '{.status.readyReplicas}' -n "$NS" rc frontend-v2
hash=$(jp '{.spec.selector.deployment}' -n "$NS" rc frontend-v2)
[ "${#hash}" = 32 ] || fail "deployment label on frontend-v2's selector: '$hash'"
expect_eq "$(jp '{.spec.selector.app} {.spec.template.metadata.labels.deployment}' -n "$NS" rc frontend-v2)" "frontend $hash" 'frontend-v2 selector and template'
# The update's bookkeeping annotations are cleaned off the survivor.
expect_eq "$(jp '{.metadata.annotations}' -n "$NS" rc frontend-v2)" '' 'annotations left on frontend-v2'
expect_eq "$(pods_of app=frontend)" "2 $NEW_IMAGE {\"app\":\"frontend\",\"deployment\":\"$hash\"}" 'frontend pods'

# --- 2. OLD -f FILE, replicas left out of the file: the old controller's count is kept.
# With one name given the old command kept it (KeepOldName = one argument): the file's
# controller is created, then renamed to the old name once the old one is deleted.
make_rc web-v1 3 '{app: web, version: v1}'
cat >"$E2E_TMP/web-v2.yaml" <<RC
apiVersion: v1
kind: ReplicationController
metadata: {name: web-v2}
spec:
  selector: {app: web, version: v2}
  template:
    metadata: {labels: {app: web, version: v2}}
    spec: {containers: [{name: main, image: $NEW_IMAGE}]}
RC
ru_ok web-v1 -f "$E2E_TMP/web-v2.yaml" "${FAST[@]}"
LAST_OUT=$OUT
expect_eq "$(head -n 2 <<<"$OUT")" 'Created web-v2
Scaling up web-v2 from 0 to 3, scaling down web-v1 from 3 to 0 (keep 3 pods available, don'"'"'t exceed 4 pods)' '-f output head'
expect 'Scaling web-v2 up to 3'
expect 'Scaling web-v1 down to 0'
expect_eq "$(tail -n 3 <<<"$OUT")" 'Update succeeded. Deleting old controller: web-v1
Renaming web-v2 to web-v1
replicationcontroller "web-v1" rolling updated' '-f output tail'
expect_eq "$(rcs | grep '^web')" "web-v1 3 $NEW_IMAGE" 'controllers after -f'
wait_for 3 '{.status.readyReplicas}' -n "$NS" rc web-v1
# The file's selector is used as written: no deployment label added.
expect_eq "$(jp '{.spec.selector}' -n "$NS" rc web-v1)" '{"app":"web","version":"v2"}' 'web-v1 selector after -f'
expect_eq "$(jp '{.metadata.annotations}' -n "$NS" rc web-v1)" '' 'annotations left on web-v1'
expect_eq "$(pods_of app=web)" "3 $NEW_IMAGE {\"app\":\"web\",\"version\":\"v2\"}" 'web pods'

# --- 3. OLD NEW -f - from stdin (two names: the file's name stays), fewer replicas.
make_rc api-v1 3 '{app: api, track: v1}'
ru_ok api-v1 api-v2 -f - "${FAST[@]}" <<RC
apiVersion: v1
kind: ReplicationController
metadata: {name: api-v2}
spec:
  replicas: 2
  selector: {app: api, track: v2}
  template:
    metadata: {labels: {app: api, track: v2}}
    spec: {containers: [{name: main, image: $NEW_IMAGE}]}
RC
LAST_OUT=$OUT
expect_eq "$(head -n 2 <<<"$OUT")" 'Created api-v2
Scaling up api-v2 from 0 to 2, scaling down api-v1 from 3 to 0 (keep 2 pods available, don'"'"'t exceed 3 pods)' 'stdin output head'
expect 'Scaling api-v1 down to 0'
expect_eq "$(tail -n 2 <<<"$OUT")" 'Update succeeded. Deleting api-v1
replicationcontroller "api-v2" rolling updated to "api-v2"' 'stdin output tail'
expect_eq "$(rcs | grep '^api')" "api-v2 2 $NEW_IMAGE" 'controllers after -f -'
wait_for 2 '{.status.readyReplicas}' -n "$NS" rc api-v2
expect_eq "$(pods_of app=api)" "2 $NEW_IMAGE {\"app\":\"api\",\"track\":\"v2\"}" 'api pods'

# --- 4. --dry-run: prints the two names, changes nothing.
make_rc shop 2 '{app: shop}'
before=$(rcs)
ru_ok shop --image="$NEW_IMAGE" --dry-run
[[ "$OUT" =~ ^'Rolling from:'$'\n''shop'$'\n''To:'$'\n''shop-'[0-9a-f]{32}$ ]] || fail "--dry-run output"
unchanged shop "$before"
ru_ok shop shop-v2 --image="$NEW_IMAGE" --dry-run=client
expect_eq "$OUT" 'Rolling from:
shop
To:
shop-v2' 'OLD NEW --dry-run=client output'
unchanged shop "$before"
ru_ok shop -f - --dry-run <<RC
apiVersion: v1
kind: ReplicationController
metadata: {name: shop-v3}
spec:
  selector: {app: shop-v3}
  template:
    metadata: {labels: {app: shop-v3}}
    spec: {containers: [{name: main, image: $NEW_IMAGE}]}
RC
expect_eq "$OUT" 'Rolling from:
shop
To:
shop-v3' '-f - --dry-run output'
unchanged shop "$before"
# -o yaml: both controllers in full, the new one with its image, labels and the old size.
ru_ok shop --image="$NEW_IMAGE" --dry-run -o yaml
python3 - "$E2E_TMP/ru.out" "$OLD_IMAGE" "$NEW_IMAGE" <<'PY' || fail "--dry-run -o yaml output"
import re, sys, yaml
text = open(sys.argv[1]).read()
m = re.fullmatch(r"Rolling from:\n(.*)\nTo:\n(.*)\n", text, re.S)
assert m, "not 'Rolling from:\\n<yaml>\\nTo:\\n<yaml>'"
old, new = yaml.safe_load(m.group(1)), yaml.safe_load(m.group(2))
for o in (old, new):
    assert o["kind"] == "ReplicationController" and o["apiVersion"] == "v1", o
assert old["metadata"]["name"] == "shop", old["metadata"]
assert old["spec"]["template"]["spec"]["containers"][0]["image"] == sys.argv[2]
h = new["spec"]["selector"]["deployment"]
assert re.fullmatch(r"[0-9a-f]{32}", h), new["spec"]["selector"]
assert new["metadata"]["name"] == "shop-" + h, new["metadata"]
assert new["spec"]["selector"]["app"] == "shop"
assert new["spec"]["template"]["metadata"]["labels"] == {"app": "shop", "deployment": h}
assert new["spec"]["template"]["spec"]["containers"][0]["image"] == sys.argv[3]
assert old["spec"]["selector"]["deployment"] != h
PY
unchanged shop "$before"
ru_ok shop -f - --dry-run -o json <<RC
{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "shop-v4"},
 "spec": {"selector": {"app": "shop-v4"},
          "template": {"metadata": {"labels": {"app": "shop-v4"}},
                       "spec": {"containers": [{"name": "main", "image": "$NEW_IMAGE"}]}}}}
RC
python3 - "$E2E_TMP/ru.out" <<'PY' || fail "-f - --dry-run -o json output"
import json, re, sys
m = re.fullmatch(r"Rolling from:\n(.*)\nTo:\n(.*)\n", open(sys.argv[1]).read(), re.S)
old, new = json.loads(m.group(1)), json.loads(m.group(2))
assert old["metadata"]["name"] == "shop" and new["metadata"]["name"] == "shop-v4"
assert new["spec"]["replicas"] == 2, new["spec"]  # defaulted from the old controller
PY
unchanged shop "$before"

# --- 5. The old command's errors: exit 1, its words on stderr, nothing changed.
before=$(rcs)
ru_err 'Error from server (NotFound): replicationcontrollers "nope" not found' nope --image=x
ru_err 'Error from server (NotFound): replicationcontrollers "nope" not found' nope nope-v2 --image=x
ru_err 'Error from server (NotFound): replicationcontrollers "nope" not found' nope -f "$E2E_TMP/web-v2.yaml"
ru_err 'error: --image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as existing container image' shop --image="$OLD_IMAGE"
unchanged shop "$before"
ru_err 'error: Must specify --filename or --image for new controller
See '"'"'kubectl rolling-update -h'"'"' for help and examples' shop
ru_err 'error: --filename and --image can not both be specified
See '"'"'kubectl rolling-update -h'"'"' for help and examples' shop -f "$E2E_TMP/web-v2.yaml" --image=x

"$KUBECTL" -n "$NS" create -f - >/dev/null <<'RC' || fail "creating two-container rc"
apiVersion: v1
kind: ReplicationController
metadata: {name: sidecars}
spec:
  replicas: 1
  selector: {app: sidecars}
  template:
    metadata: {labels: {app: sidecars}}
    spec: {containers: [{name: a, image: a:1}, {name: b, image: b:1}]}
RC
before=$(rcs)
ru_err 'error: must specify container to update when updating a multi-container pod' sidecars --image=b:2
unchanged sidecars "$before"
ru_err 'error: container c not found in pod' sidecars --image=b:2 --container=c
unchanged sidecars "$before"

# A file whose selector does not tell its pods apart, from a path and from stdin.
cat >"$E2E_TMP/same-selector.yaml" <<RC
apiVersion: v1
kind: ReplicationController
metadata: {name: shop-next}
spec:
  selector: {app: shop}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: main, image: $NEW_IMAGE}]}
RC
ru_err "error: $E2E_TMP/same-selector.yaml must specify a matching key with non-equal value in Selector for shop" shop -f "$E2E_TMP/same-selector.yaml"
ru_err 'error: - must specify a matching key with non-equal value in Selector for shop' shop -f - <"$E2E_TMP/same-selector.yaml"
# A selector with only new keys does not differ on a common key either.
sed 's/selector: {app: shop}/selector: {tier: shop}/; s/labels: {app: shop}/labels: {tier: shop}/' \
  "$E2E_TMP/same-selector.yaml" >"$E2E_TMP/other-key.yaml"
ru_err "error: $E2E_TMP/other-key.yaml must specify a matching key with non-equal value in Selector for shop" shop -f "$E2E_TMP/other-key.yaml"
sed 's/name: shop-next/name: shop/; s/{app: shop}/{app: shop, v: "2"}/g' "$E2E_TMP/same-selector.yaml" >"$E2E_TMP/same-name.yaml"
ru_err "error: $E2E_TMP/same-name.yaml cannot have the same name as the existing ReplicationController shop" shop -f "$E2E_TMP/same-name.yaml"
unchanged shop "$(rcs)"
expect_eq "$(rcs | grep -c '^shop')" 1 'shop controllers after the refused files'

# Files that are not one ReplicationController.
printf '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}\n' >"$E2E_TMP/pod.json"
ru_err "error: $E2E_TMP/pod.json contains a /v1, Kind=Pod not a ReplicationController" shop -f "$E2E_TMP/pod.json"
ru_err 'error: - contains a apps/v1, Kind=Deployment not a ReplicationController' shop -f - <<<'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}'
ru_err "error: the path \"$E2E_TMP/absent.yaml\" does not exist" shop -f "$E2E_TMP/absent.yaml"
: >"$E2E_TMP/empty.yaml"
ru_err "error: please make sure $E2E_TMP/empty.yaml exists and is not empty" shop -f "$E2E_TMP/empty.yaml"
{ cat "$E2E_TMP/web-v2.yaml"; echo ---; cat "$E2E_TMP/web-v2.yaml"; } >"$E2E_TMP/two.yaml"
ru_err "error: $E2E_TMP/two.yaml specifies multiple items" shop -f "$E2E_TMP/two.yaml"
sed 's/metadata: {name: shop-next}/metadata: {name: shop-next, namespace: elsewhere}/; s/{app: shop}/{app: shop, v: "2"}/g' \
  "$E2E_TMP/same-selector.yaml" >"$E2E_TMP/elsewhere.yaml"
ru_err "error: the namespace from the provided object \"elsewhere\" does not match the namespace \"$NS\". You must pass '--namespace=elsewhere' to perform this operation." shop -f "$E2E_TMP/elsewhere.yaml"
unchanged shop "$(rcs)"
expect_eq "$(rcs | grep -c '^shop')" 1 'shop controllers after the refused files'
ru_err 'error: Could not find shop-v9 to rollback.' shop shop-v9 --rollback
pass
