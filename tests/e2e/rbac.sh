#!/usr/bin/env bash
# Issue 17's RBAC increment through the real kubectl: a user authenticated by a client
# certificate signed by the cluster CA (CN=jane, O=devs) gets exactly what a Role bound to her
# allows, with Kubernetes' 403 messages; validation of RBAC objects (422); `kubectl auth
# can-i` (SelfSubjectAccessReview, `--as` impersonation, `--list`), `kubectl auth whoami`
# (SelfSubjectReview: v1beta1 for kubectl 1.27, v1 later), a SubjectAccessReview, and a
# ClusterRole aggregated into `view` by its label.
# kubectl-versions: 1.27 1.33 — the oldest and newest whoami/can-i clients; 1.33 sends the
# typed objects (Roles, bindings, reviews) as protobuf.
source "$(dirname "$0")/lib.sh"
start_server

# A client certificate for jane in group devs, signed by the cluster CA in the data dir.
CERTS="$E2E_TMP/certs"
mkdir -p "$CERTS"
openssl req -new -newkey rsa:2048 -nodes -keyout "$CERTS/jane.key" -out "$CERTS/jane.csr" \
  -subj "/CN=jane/O=devs" 2>/dev/null || fail "openssl req"
printf 'extendedKeyUsage=clientAuth\n' > "$CERTS/ext"
openssl x509 -req -in "$CERTS/jane.csr" -CA "$DATA_DIR/ca.crt" -CAkey "$DATA_DIR/ca.key" \
  -CAcreateserial -out "$CERTS/jane.crt" -days 1 -extfile "$CERTS/ext" 2>/dev/null || fail "openssl x509"
# And one signed by a CA the server does not know.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/mallory.key" -out "$CERTS/mallory.crt" \
  -subj "/CN=mallory/O=system:masters" -days 1 2>/dev/null || fail "openssl self-signed"

k config set-credentials jane --client-certificate="$CERTS/jane.crt" \
  --client-key="$CERTS/jane.key" --embed-certs >/dev/null
k config set-context jane --cluster=baton --user=jane >/dev/null
k config set-credentials mallory --client-certificate="$CERTS/mallory.crt" \
  --client-key="$CERTS/mallory.key" --embed-certs >/dev/null
k config set-context mallory --cluster=baton --user=mallory >/dev/null

# The admin (token, system:masters) can do anything; the default roles are there.
k auth can-i create pods
expect yes
k get clusterroles
for r in cluster-admin admin edit view system:discovery system:basic-user; do expect "$r"; done
k get clusterrolebinding cluster-admin -o wide
expect 'ClusterRole/cluster-admin'
expect 'system:masters'

# Discovered and described like any kind; the reviews are listed too.
k api-resources --api-group=rbac.authorization.k8s.io
for r in clusterrolebindings clusterroles rolebindings roles; do expect "$r"; done
k api-resources --api-group=authorization.k8s.io
for r in localsubjectaccessreviews selfsubjectaccessreviews selfsubjectrulesreviews subjectaccessreviews; do expect "$r"; done
k api-resources --api-group=authentication.k8s.io
expect selfsubjectreviews
k explain clusterrole.aggregationRule.clusterRoleSelectors
expect 'ClusterRole'

k create namespace a >/dev/null
k create namespace b >/dev/null
k create configmap settings -n a --from-literal=x=1 >/dev/null
cat > "$E2E_TMP/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {containers: [{name: web, image: nginx}]}
YAML
k create -n a -f "$E2E_TMP/pod.yaml" >/dev/null
k create -n b -f "$E2E_TMP/pod.yaml" >/dev/null
k create role pod-reader -n a --verb=get,list --resource=pods >/dev/null
k create rolebinding jane-reads -n a --role=pod-reader --user=jane >/dev/null
k get rolebinding jane-reads -n a -o wide
expect 'Role/pod-reader'
expect 'jane'

# Jane, by certificate: what the Role allows, and nothing else.
k --context jane get pods -n a
expect 'web'
k_fails --context jane get pods -n b
expect 'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "b"'
k_fails --context jane get pod web -n b
expect 'Error from server (Forbidden): pods "web" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace "b"'
k_fails --context jane create -n a -f "$E2E_TMP/pod.yaml"
expect 'pods is forbidden: User "jane" cannot create resource "pods" in API group "" in the namespace "a"'
k_fails --context jane get configmaps -n a
expect 'configmaps is forbidden: User "jane" cannot list resource "configmaps" in API group "" in the namespace "a"'
k_fails --context jane get nodes
expect 'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope'
k_fails --context jane delete pod web -n a
expect 'pods "web" is forbidden: User "jane" cannot delete resource "pods" in API group "" in the namespace "a"'
# Jane may not impersonate anyone.
k_fails --context jane get pods -n a --as=admin
expect 'users "admin" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope'
# A certificate from another CA is refused in the handshake.
k_fails --context mallory get pods -n a
expect_not 'web'

# who am I
k --context jane auth whoami
expect 'jane'
expect 'devs'
expect 'system:authenticated'
k auth whoami
expect 'admin'
expect 'system:masters'
k auth whoami --as=jane --as-group=devs
expect 'jane'
expect 'devs'

# can-i: the admin asks for jane (impersonation), jane asks for herself.
k auth can-i list pods -n a --as=jane
expect yes
k_fails auth can-i list pods -n b --as=jane
expect no
k_fails auth can-i create pods -n a --as=jane
expect no
k --context jane auth can-i get pods -n a
expect yes
k_fails --context jane auth can-i get pods -n b
expect no
k --context jane auth can-i --list -n a
expect 'pods'
expect '[get list]'
expect 'selfsubjectaccessreviews.authorization.k8s.io'

# A SubjectAccessReview for jane's group.
cat > "$E2E_TMP/sar.yaml" <<'YAML'
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: jane
  groups: [devs]
  resourceAttributes: {namespace: a, verb: list, resource: pods}
YAML
k create -f "$E2E_TMP/sar.yaml" -o 'jsonpath={.status.allowed} {.status.reason}'
expect 'true RBAC: allowed by RoleBinding "jane-reads/a" of Role "pod-reader" to User "jane"'

# Binding the group devs to the default view ClusterRole in b: jane reads b now, still
# cannot write, and a ClusterRole labelled aggregate-to-view extends view.
k create rolebinding devs-view -n b --clusterrole=view --group=devs >/dev/null
k --context jane get pods -n b
expect 'web'
k --context jane get configmaps -n b
k_fails --context jane delete pod web -n b
expect 'pods "web" is forbidden'
# view leaves Secrets out; a ClusterRole labelled aggregate-to-view adds them.
k_fails auth can-i list secrets -n b --as=jane --as-group=devs
expect no
k_fails --context jane get secrets -n b
expect 'secrets is forbidden'
cat > "$E2E_TMP/secret-viewer.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: secret-viewer
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
YAML
k create -f "$E2E_TMP/secret-viewer.yaml" >/dev/null
wait_for 'get' '{.rules[?(@.resources[0]=="secrets")].verbs[0]}' clusterrole view
wait_for 'get' '{.rules[?(@.resources[0]=="secrets")].verbs[0]}' clusterrole edit
k auth can-i list secrets -n b --as=jane --as-group=devs
expect yes
k --context jane get secrets -n b

# Validation as Kubernetes words it.
cat > "$E2E_TMP/bad.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bad, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Foo, name: pod-reader}
subjects: [{kind: Robot, name: r2}]
YAML
k_fails create -f "$E2E_TMP/bad.yaml"
expect 'The RoleBinding "bad" is invalid'
expect 'roleRef.kind: Unsupported value: "Foo": supported values: "Role", "ClusterRole"'
expect 'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'
cat > "$E2E_TMP/bad-role.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bad, namespace: a}
rules:
- resources: [pods]
  verbs: []
YAML
k_fails create -f "$E2E_TMP/bad-role.yaml"
expect 'rules[0].verbs: Required value: verbs must contain at least one value'
expect 'rules[0].apiGroups: Required value: resource rules must supply at least one api group'
k_fails patch rolebinding jane-reads -n a --type=merge -p '{"roleRef":{"name":"other"}}'
expect 'cannot change roleRef'

# Escalation: jane may write Roles and bindings in a, but grant only what she holds there.
k create role rbac-writer -n a --verb=create,get,list --resource=roles,rolebindings >/dev/null
k create rolebinding jane-rbac -n a --role=rbac-writer --user=jane >/dev/null
k_fails --context jane create role secret-reader -n a --verb=get --resource=secrets
expect 'roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "jane" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:'
expect '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
k --context jane create role pod-getter -n a --verb=get --resource=pods
k_fails --context jane create rolebinding jane-admin -n a --clusterrole=admin --user=jane
expect 'rolebindings.rbac.authorization.k8s.io "jane-admin" is forbidden: user "jane"'
k --context jane create rolebinding bob-gets -n a --role=pod-getter --user=bob

# Deleting the binding takes jane's access away.
k delete rolebinding jane-reads -n a >/dev/null
for _ in $(seq 1 50); do
  LAST_OUT=$("$KUBECTL" --context jane get pods -n a 2>&1) || break
  sleep 0.1
done
expect 'pods is forbidden: User "jane" cannot list resource "pods"'
echo "rbac: ok"
