#!/usr/bin/env bash
# Issue 18, must-hold 3's CronJob on the wall clock (simulated nodes): a CronJob every minute
# creates a Job at each minute boundary (lastScheduleTime, lastSuccessfulTime, the Jobs'
# scheduled-timestamp annotation and names `<cronjob>-<minutes since the epoch>`), keeps
# successfulJobsHistoryLimit 1 (the older finished Job deleted, with its event), and a
# suspended CronJob creates nothing. Waits for two minute boundaries: 60–125 s, mostly asleep
# (the api lane of test.sh runs it beside the machine lane). Schedules, time zones and
# missed-start handling are unit-tested with a controllable clock
# (crates/controllers/src/cronjob/); jobs.sh covers the kubectl-facing parts with 1.27 and 1.33.
source "$(dirname "$0")/lib.sh"
start_server --simulated-nodes 1
WAIT_TRIES=1400 # 140 s

cronjob() { # name suspend
  cat <<YAML
apiVersion: batch/v1
kind: CronJob
metadata: {name: $1}
spec:
  schedule: "* * * * *"
  suspend: $2
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {sim.baton.dev/exit-after: 300ms, sim.baton.dev/exit-code: "0"}
        spec:
          restartPolicy: Never
          containers: [{name: tick, image: registry.local/tick:v1}]
YAML
}
cronjob every-minute false | k apply -f - >/dev/null
cronjob suspended true | k apply -f - >/dev/null

# The first start: at the next minute boundary.
first=""
for _ in $(seq 1 700); do
  first=$("$KUBECTL" get jobs -o 'jsonpath={.items[*].metadata.name}')
  [ -n "$first" ] && break
  sleep 0.1
done
[ -n "$first" ] || fail "no Job within 70 s of a CronJob every minute"
case "$first" in every-minute-*) ;; *) fail "first Job '$first' is not every-minute-<n>" ;; esac
n1=${first#every-minute-}
scheduled=$(jp '{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}' job "$first")
# The name is the scheduled time in minutes since the epoch, and that time is a minute boundary.
expect_eq "$(date -u -d "$scheduled" +%s)" "$((n1 * 60))" "scheduled time of $first"
expect_eq "$(jp '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' job "$first")" \
  CronJob/every-minute "owner of $first"
k wait --for=condition=complete "job/$first" --timeout=30s >/dev/null
wait_for "$scheduled" '{.status.lastScheduleTime}' cj every-minute
[ -n "$(jp '{.status.lastSuccessfulTime}' cj every-minute)" ] || fail "no lastSuccessfulTime after $first completed"

# The second start, a minute later; once it has completed, the limit of 1 deletes the first.
second="every-minute-$((n1 + 1))"
wait_for Complete '{.status.conditions[?(@.status=="True")].type}' job "$second"
for _ in $(seq 1 100); do
  [ "$("$KUBECTL" get jobs -o 'jsonpath={.items[*].metadata.name}')" = "$second" ] && break
  sleep 0.1
done
expect_eq "$("$KUBECTL" get jobs -o 'jsonpath={.items[*].metadata.name}')" "$second" \
  'Jobs left with successfulJobsHistoryLimit 1'
k get events --field-selector involvedObject.name=every-minute >/dev/null
expect "Created job $first"
expect "Saw completed job: $first, condition: Complete"
expect "Deleted job $first"
k get cj >/dev/null
printf '%s\n' "$LAST_OUT" | grep -Eq '^every-minute +\* \* \* \* \* +<none> +False +0 +[0-9]+s ' \
  || fail "kubectl get cj row of every-minute"
printf '%s\n' "$LAST_OUT" | grep -Eq '^suspended +\* \* \* \* \* +<none> +True +0 +<none> ' \
  || fail "kubectl get cj row of suspended"
pass
