#!/usr/bin/env bash
# Hostile input (issue 13, must-hold 1): a server under an address-space limit
# (prlimit --as=3000000000) gets a YAML alias bomb, JSON-patch copy amplification, 100,000-deep
# JSON, non-ASCII selectors, invalid UTF-8, a chunked body over the limit, an object grown past
# the size limit by a patch, 500 half-open TLS connections, 1,000 watches and 300 updates of a
# 2.5 MB object. Each is answered with an error Status (or served, where that is correct), the
# server stays up and another client is served after each; one client's watches beyond
# --max-watches-per-client (500) get a 429 TooManyRequests Status with Retry-After while another
# client still gets a watch; the peak RSS of the large updates is printed (target 500 MiB;
# 336-364 MiB measured).
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
command -v prlimit >/dev/null || fail "prlimit (util-linux) is needed"

cat >"$E2E_TMP/baton-limited" <<SH
#!/bin/sh
exec prlimit --as=3000000000 -- "$BATON" "\$@"
SH
chmod +x "$E2E_TMP/baton-limited"
BATON="$E2E_TMP/baton-limited" start_server

alive() {
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died after: $1"
  LAST_OUT=$("$KUBECTL" get namespace default -o name 2>&1) || fail "kubectl not served after: $1"
  echo "ok   server up, kubectl served after: $1"
}

# answer WANT_CODE WANT_TEXT WHAT: checks the last curl_api output ("BODY\nCODE").
answer() {
  local code body
  code=$(printf '%s\n' "$LAST_OUT" | tail -n 1)
  body=$(printf '%s\n' "$LAST_OUT" | head -n -1 | head -c 400)
  [ "$code" = "$1" ] || fail "$3: expected HTTP $1, got $code: $body"
  case "$body" in *'"kind":"Status"'*) ;; *) [ "$1" -lt 400 ] || fail "$3: not a Status: $body" ;; esac
  case "$body" in *"$2"*) ;; *) fail "$3: expected '$2' in: $body" ;; esac
  echo "ok   $3: $code"
  alive "$3"
}

CM=/api/v1/namespaces/default/configmaps

# A YAML alias bomb: nine levels of nine aliases (387,420,489 strings once expanded).
python3 - >"$E2E_TMP/bomb.yaml" <<'PY'
print('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}')
print('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
prev = "a"
for c in "bcdefghij":
    print(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]")
    prev = c
PY
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/bomb.yaml")
answer 400 'expands (through YAML aliases)' "YAML alias bomb"

# JSON patch: each copy doubles an array (40 copies would be a terabyte).
k create configmap amp --from-literal=a=b
python3 - >"$E2E_TMP/amp.json" <<'PY'
import json
ops = [{"op": "add", "path": "/x", "value": ["x" * 1000]}]
ops += [{"op": "copy", "from": "/x", "path": "/x/-"} for _ in range(40)]
print(json.dumps(ops))
PY
LAST_OUT=$(curl_api PATCH "$CM/amp" -H 'Content-Type: application/json-patch+json' --data-binary @"$E2E_TMP/amp.json")
answer 413 'copy operations of the JSON patch' "JSON-patch copy amplification"
python3 -c 'import json; print(json.dumps([{"op": "test", "path": "/kind", "value": "ConfigMap"}] * 10001))' >"$E2E_TMP/ops.json"
LAST_OUT=$(curl_api PATCH "$CM/amp" -H 'Content-Type: application/json-patch+json' --data-binary @"$E2E_TMP/ops.json")
answer 413 'maximum operations in a JSON patch is 10000' "a JSON patch of 10,001 operations"

# 100,000-deep JSON.
python3 -c 'print("{\"a\":" * 100000 + "1" + "}" * 100000)' >"$E2E_TMP/deep.json"
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/deep.json")
answer 400 'recursion limit exceeded' "100,000-deep JSON"
python3 -c 'print("a: " + "[" * 100000 + "]" * 100000)' >"$E2E_TMP/deep.yaml"
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/yaml' --data-binary @"$E2E_TMP/deep.yaml")
answer 400 'recursion limit exceeded' "100,000-deep YAML"

# Non-ASCII selectors: a valid value is served, an invalid one is a 400.
LAST_OUT=$(curl_api GET '/api/v1/pods?fieldSelector=metadata.name%3D%C3%A9%E2%82%AC')
answer 200 '"kind":"PodList"' "a field selector with a non-ASCII value"
LAST_OUT=$(curl_api GET '/api/v1/pods?fieldSelector=%C3%A9%5C%E2%82%AC')
answer 400 "can't understand" "a field selector of non-ASCII characters and an escape"
LAST_OUT=$(curl_api GET '/api/v1/pods?labelSelector=%C3%A9%3Dx')
answer 400 '"message":"unable to parse requirement: \u003cnil\u003e: Invalid value: \"é\"' "a label selector with a non-ASCII key"

# Invalid UTF-8 in a JSON string.
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u\xff\xfe"}}' >"$E2E_TMP/utf8.json"
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/utf8.json")
answer 400 'error decoding request body' "invalid UTF-8 in JSON"

# A chunked body (no Content-Length) over the 3 MiB limit: the server stops reading at the
# limit and answers 413, closing the connection (curl, still sending, may see only the
# reset: then the server must be up and nothing stored).
head -c 4000000 /dev/zero | tr '\0' 'a' >"$E2E_TMP/big.bin"
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/json' -T - <"$E2E_TMP/big.bin" 2>&1)
case "$(printf '%s\n' "$LAST_OUT" | tail -n 1)" in
  413) answer 413 'Request entity too large' "a 4 MB chunked body" ;;
  000) case "$LAST_OUT" in
         *"(55)"*|*"(56)"*|*"(92)"*|*"(16)"*) echo "ok   a 4 MB chunked body: the server closed the stream at the limit"; alive "a 4 MB chunked body" ;;
         *) fail "a 4 MB chunked body: $LAST_OUT" ;;
       esac ;;
  *) fail "a 4 MB chunked body: $LAST_OUT" ;;
esac

# An object grown past the 3 MiB object limit by a merge patch: refused, the stored one kept.
python3 -c 'import json; print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "grow"}, "data": {"a": "y" * 2_000_000}}))' >"$E2E_TMP/grow.json"
LAST_OUT=$(curl_api POST "$CM" -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/grow.json")
answer 201 '"name":"grow"' "a 2 MB ConfigMap"
python3 -c 'import json; print(json.dumps({"data": {"b": "z" * 1_500_000}}))' >"$E2E_TMP/grow-patch.json"
LAST_OUT=$(curl_api PATCH "$CM/grow" -H 'Content-Type: application/merge-patch+json' --data-binary @"$E2E_TMP/grow-patch.json")
answer 413 'Request entity too large: limit is 3145728' "a merge patch growing an object past 3 MiB"
LAST_OUT=$("$KUBECTL" get configmap grow -o jsonpath='{.data.b}' 2>&1) || fail "get grow"
[ -z "$LAST_OUT" ] || fail "the refused patch was stored"
k delete configmap grow

# Connections, watches and large updates (tests/python/hostile.py).
for c in half-open watches big-updates; do
  LAST_OUT=$(timeout 600 python3 "$ROOT/tests/python/hostile.py" "$KUBECONFIG" "$DATA_DIR/ca.crt" "$SERVER_PID" "$c" 2>&1)
  rc=$?
  printf '%s\n' "$LAST_OUT"
  [ "$rc" -eq 0 ] || fail "hostile clients: $c"
  alive "$c"
done
pass
