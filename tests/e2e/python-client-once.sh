#!/usr/bin/env bash
# Another client (issue 3, must-hold 9): the official Python `kubernetes` client from PyPI
# creates, lists, patches (strategic merge), watches and deletes a Deployment
# (tests/python/client_test.py). The client lives in a venv cached at target/pyvenv; it is
# created on first use (pip needs the network then, about a minute), and reused afterwards.
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${BATON_PYVENV:-$ROOT/target/pyvenv}"

if ! "$VENV/bin/python" -c 'import kubernetes' 2>/dev/null; then
  echo "installing the Python kubernetes client into $VENV"
  python3 -m venv "$VENV" >"$E2E_TMP/venv.log" 2>&1 \
    || { LAST_OUT=$(cat "$E2E_TMP/venv.log"); fail "python3 -m venv $VENV failed (is python3-venv installed?)"; }
  timeout 300 "$VENV/bin/pip" install -q kubernetes >"$E2E_TMP/pip.log" 2>&1 \
    || { LAST_OUT=$(cat "$E2E_TMP/pip.log"); fail "pip install kubernetes failed"; }
fi
echo "kubernetes client $("$VENV/bin/python" -c 'import kubernetes; print(kubernetes.__version__)')"

start_server
LAST_OUT=$(timeout 60 "$VENV/bin/python" "$ROOT/tests/python/client_test.py" 2>&1)
rc=$?
printf '%s\n' "$LAST_OUT"
[ "$rc" -eq 0 ] || fail "the Python kubernetes client scenario failed (exit $rc)"
# Issue 19, must-hold 1: create_from_yaml of an RC, a Deployment and a Service, and every
# answer through the client's strict models (37 rejects an RC without status.replicas).
LAST_OUT=$(timeout 60 "$VENV/bin/python" "$ROOT/tests/python/fidelity_test.py" 2>&1)
rc=$?
printf '%s\n' "$LAST_OUT"
[ "$rc" -eq 0 ] || fail "the Python client fidelity scenario failed (exit $rc)"
pass
