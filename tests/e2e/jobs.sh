#!/usr/bin/env bash
# Issue 18, Jobs and CronJobs (must-holds 3 and 5) on simulated nodes: a Job with
# completions 5 and parallelism 2 completes with never more than 2 pods active (`kubectl wait
# --for=condition=complete`, kube-apiserver's columns); an Indexed Job gives each pod its
# index (annotation, label, hostname, JOB_COMPLETION_INDEX); a failing Job stops at its
# backoffLimit with a Failed condition; a CronJob's defaults and columns, `kubectl create job
# --from=cronjob/X`, and its history limits (finished Jobs it controls beyond the limits are
# deleted); bad input is a 422 with Kubernetes' field path and message and nothing stored.
# The CronJob's own schedule (a start every minute) is tested with a controllable clock in
# crates/controllers/src/cronjob/schedule/tests.rs: waiting for a minute boundary here would
# cost up to 60 s per kubectl version.
# kubectl-versions: 1.27 1.33 — controller behaviour through generic commands; about 20 s each.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 2

job() { # name completions parallelism exit-code [extra spec lines]
  cat <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
  completions: $2
  parallelism: $3
${5:-}
  template:
    metadata:
      annotations: {sim.baton.dev/exit-after: ${EXIT_AFTER:-300ms}, sim.baton.dev/exit-code: "$4"}
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.local/hello:v1}]
YAML
}

# --- completions 5, parallelism 2 --------------------------------------------------------
# Each pod runs 1.5 s so that polling (two kubectl calls a round) sees every wave: at 300 ms a
# loaded machine's polling could miss all three (CI once saw "no pod ever ran").
EXIT_AFTER=1500ms job five 5 2 0 >"$E2E_TMP/five.yaml"
k apply -f "$E2E_TMP/five.yaml" >/dev/null
expect_eq "$(jp '{.spec.backoffLimit} {.spec.completionMode} {.spec.suspend} {.spec.podReplacementPolicy}' job five)" \
  '6 NonIndexed false TerminatingOrFailed' 'Job defaults'
uid=$(jp '{.metadata.uid}' job five)
expect_eq "$(jp '{.spec.selector.matchLabels.batch\.kubernetes\.io/controller-uid}' job five)" "$uid" 'generated selector'
expect_eq "$(jp '{.spec.template.metadata.labels.job-name}' job five)" five 'job-name label'
max_active=0
for _ in $(seq 1 300); do
  n=$("$KUBECTL" get pods -l job-name=five --field-selector=status.phase!=Succeeded,status.phase!=Failed -o name | wc -l)
  [ "$n" -gt "$max_active" ] && max_active=$n
  [ "$("$KUBECTL" get job five -o 'jsonpath={.status.succeeded}')" = 5 ] && break
  sleep 0.05
done
[ "$max_active" -le 2 ] || fail "more than parallelism=2 pods ran at once: $max_active"
[ "$max_active" -ge 1 ] || fail "no pod ever ran"
k wait --for=condition=complete job/five --timeout=30s >/dev/null
expect 'job.batch/five condition met'
expect_eq "$(jp '{.status.succeeded}/{.status.failed}/{.status.active}' job five)" '5//' 'succeeded, failed, active'
[ -n "$(jp '{.status.completionTime}' job five)" ] || fail "no completionTime"
expect_eq "$("$KUBECTL" get pods -l job-name=five -o name | wc -l | tr -d ' ')" 5 'pods of job five'
expect_eq "$(jp '{.items[*].metadata.finalizers}' pods -l job-name=five)" '' 'tracking finalizers removed'
k get job five >/dev/null
expect 'NAME   STATUS     COMPLETIONS   DURATION   AGE'
expect 'five   Complete   5/5'
k get events --field-selector involvedObject.name=five >/dev/null
expect 'SuccessfulCreate'
expect 'Completed'

# --- Indexed ------------------------------------------------------------------------------
job idx 3 3 0 '  completionMode: Indexed' | k apply -f - >/dev/null
k wait --for=condition=complete job/idx --timeout=30s >/dev/null
expect_eq "$(jp '{.status.completedIndexes} {.status.succeeded}' job idx)" '0-2 3' 'completed indexes'
for p in $("$KUBECTL" get pods -l job-name=idx -o name); do
  ix=$(jp '{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}' "$p")
  expect_eq "$(jp '{.metadata.labels.batch\.kubernetes\.io/job-completion-index}' "$p")" "$ix" "$p index label"
  expect_eq "$(jp '{.spec.hostname}' "$p")" "idx-$ix" "$p hostname"
  case "$p" in pod/idx-"$ix"-*) ;; *) fail "$p is not named idx-$ix-..." ;; esac
  expect_eq "$(jp '{.spec.containers[0].env[?(@.name=="JOB_COMPLETION_INDEX")].valueFrom.fieldRef.fieldPath}' "$p")" \
    "metadata.annotations['batch.kubernetes.io/job-completion-index']" "$p index env"
  echo "$ix" >>"$E2E_TMP/indexes"
done
expect_eq "$(sort "$E2E_TMP/indexes" | tr '\n' ' ')" '0 1 2 ' 'one pod per index'

# --- failing: stops at backoffLimit -------------------------------------------------------
job fails 2 2 3 '  backoffLimit: 1' | k apply -f - >/dev/null
k wait --for=condition=failed job/fails --timeout=30s >/dev/null
expect 'job.batch/fails condition met'
expect_eq "$(jp '{.status.conditions[?(@.type=="Failed")].reason}' job fails)" BackoffLimitExceeded 'Failed reason'
expect_eq "$(jp '{.status.conditions[?(@.type=="Failed")].message}' job fails)" \
  'Job has reached the specified backoff limit' 'Failed message'
sleep 1
expect_eq "$(jp '{.status.failed}' job fails)" 2 'failed count'
expect_eq "$("$KUBECTL" get pods -l job-name=fails -o name | wc -l | tr -d ' ')" 2 'no pod after the backoff limit'
k get job fails >/dev/null
expect 'Failed'

# --- CronJob ------------------------------------------------------------------------------
cat >"$E2E_TMP/cj.yaml" <<'YAML'
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "0 3 * * *"
  timeZone: Europe/Berlin
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {sim.baton.dev/exit-after: 200ms, sim.baton.dev/exit-code: "0"}
        spec:
          restartPolicy: OnFailure
          containers: [{name: hello, image: registry.local/hello:v1}]
YAML
k apply -f "$E2E_TMP/cj.yaml" >/dev/null
expect_eq "$(jp '{.spec.concurrencyPolicy} {.spec.suspend}' cj hello)" 'Allow false' 'CronJob defaults'
k get cj hello >/dev/null
expect 'NAME    SCHEDULE    TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   AGE'
expect 'hello   0 3 * * *   Europe/Berlin   False     0        <none>'
k create job manual --from=cronjob/hello >/dev/null
k wait --for=condition=complete job/manual --timeout=30s >/dev/null
expect_eq "$(jp '{.metadata.annotations.cronjob\.kubernetes\.io/instantiate}' job manual)" manual 'manual annotation'
# kubectl 1.33 makes the CronJob the manual Job's controller (then the history limits count
# it), 1.27 only an owner.
manual_controlled=$(jp '{.metadata.ownerReferences[0].controller}' job manual)
# Jobs the CronJob controls: the finished ones beyond the limits go, oldest first.
cj_uid=$(jp '{.metadata.uid}' cj hello)
for i in 1 2 3; do
  code=0; [ "$i" = 3 ] && code=1
  cat <<YAML | k apply -f - >/dev/null
apiVersion: batch/v1
kind: Job
metadata:
  name: hello-h$i
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: hello, uid: "$cj_uid", controller: true}]
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {sim.baton.dev/exit-after: 200ms, sim.baton.dev/exit-code: "$code"}
    spec:
      restartPolicy: Never
      containers: [{name: hello, image: registry.local/hello:v1}]
YAML
  sleep 0.3
done
# Of the succeeded Jobs the CronJob controls (h1, h2, and manual with kubectl 1.33) the newest
# stays (limit 1); h3 failed (limit 1).
want="fails five hello-h2 hello-h3 idx"
[ "$manual_controlled" = true ] || want="$want manual"
for _ in $(seq 1 200); do
  names=$("$KUBECTL" get jobs -o 'jsonpath={.items[*].metadata.name}')
  [ "$names" = "$want" ] && break
  sleep 0.1
done
expect_eq "$names" "$want" 'jobs after the history limits'
sleep 1 # nothing more goes
expect_eq "$("$KUBECTL" get jobs -o 'jsonpath={.items[*].metadata.name}')" "$want" 'jobs a second later'
k get events --field-selector involvedObject.name=hello >/dev/null
expect 'SuccessfulDelete'
expect 'Deleted job hello-h1'
if [ "$manual_controlled" = true ]; then expect 'Deleted job manual'; else expect_not 'Deleted job manual'; fi

# --- bad input: 422, nothing stored -------------------------------------------------------
bad_cj() { # name schedule [timeZone line]
  cat <<YAML
apiVersion: batch/v1
kind: CronJob
metadata: {name: $1}
spec:
  schedule: "$2"
${3:-}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: registry.local/hello:v1}]
YAML
}
bad_cj bad1 '61 * * * *' >"$E2E_TMP/bad.yaml"; k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'The CronJob "bad1" is invalid: spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
bad_cj bad2 '* * * *' >"$E2E_TMP/bad.yaml"; k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'spec.schedule: Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]'
bad_cj bad3 'TZ=UTC * * * * *' >"$E2E_TMP/bad.yaml"; k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
bad_cj bad4 '* * * * *' '  timeZone: Mars/Olympus' >"$E2E_TMP/bad.yaml"; k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'
job bad5 1 1 0 | sed 's/restartPolicy: Never/restartPolicy: Always/' >"$E2E_TMP/bad.yaml"
k_fails apply -f "$E2E_TMP/bad.yaml" >/dev/null
expect 'The Job "bad5" is invalid: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
code=$(curl_api POST /apis/batch/v1/namespaces/default/cronjobs -H 'Content-Type: application/yaml' \
  --data-binary "$(bad_cj bad6 '@every-so-often')" | tail -n 1)
expect_eq "$code" 422 'HTTP status of an invalid schedule'
k_fails patch job five --type=merge -p '{"spec":{"template":{"spec":{"containers":[{"name":"work","image":"registry.local/hello:v2"}]}}}}' >/dev/null
expect 'spec.template: Invalid value:'
expect 'field is immutable'
k get cronjobs,jobs >/dev/null
expect_not 'bad'

pass
