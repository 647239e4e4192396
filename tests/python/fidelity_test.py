"""Strict-client fidelity (issue 19, must-hold 1): the official Python `kubernetes` client
(37 validates every response against its models) runs `create_from_yaml` of one file holding
a ReplicationController, a Deployment and a Service, reads each back, lists and watches them,
and the RC create response carries `status.replicas: 0`, as Kubernetes always writes it.

Loads the kubeconfig named by $KUBECONFIG. Exits non-zero with what failed.
"""

import os
import sys
import tempfile

from kubernetes import client, config, utils, watch

NAMESPACE = "default"

MANIFEST = """\
apiVersion: v1
kind: ReplicationController
metadata:
  name: fid-rc
spec:
  replicas: 1
  selector: {app: fid-rc}
  template:
    metadata:
      labels: {app: fid-rc}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fid-deploy
spec:
  replicas: 2
  selector:
    matchLabels: {app: fid-deploy}
  template:
    metadata:
      labels: {app: fid-deploy}
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: fid-svc
spec:
  selector: {app: fid-deploy}
  ports: [{port: 80, targetPort: 80}]
"""


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")


def main():
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])
    api = client.ApiClient()
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(MANIFEST)
        path = f.name
    created = utils.create_from_yaml(api, path, namespace=NAMESPACE)
    objs = [o for group in created for o in group]
    check(len(objs) == 3, f"create_from_yaml created {len(objs)} objects, want 3")
    rc = objs[0]
    check(isinstance(rc, client.V1ReplicationController), f"first object is {type(rc)}")
    check(rc.status is not None and rc.status.replicas == 0,
          f"RC create response status: {rc.status}")
    print("create_from_yaml: RC, Deployment, Service created; RC status.replicas =",
          rc.status.replicas)

    # Every read path deserializes into the strict models.
    got = core.read_namespaced_replication_controller("fid-rc", NAMESPACE)
    check(got.spec.replicas == 1, f"RC read: {got.spec}")
    d = apps.read_namespaced_deployment("fid-deploy", NAMESPACE)
    check(d.spec.replicas == 2, f"Deployment read: {d.spec}")
    s = core.read_namespaced_service("fid-svc", NAMESPACE)
    check(s.spec.ports[0].port == 80, f"Service read: {s.spec}")
    for lister in (core.list_namespaced_replication_controller, apps.list_namespaced_deployment,
                   core.list_namespaced_service, core.list_namespaced_pod,
                   apps.list_namespaced_replica_set, core.list_node, core.list_namespace,
                   core.list_namespaced_event, core.list_namespaced_endpoints):
        lister(NAMESPACE) if "namespaced" in lister.__name__ else lister()
    print("read and list: every answer fits the client's models")

    # Watch events go through the same models.
    seen = set()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_replication_controller, NAMESPACE,
                       timeout_seconds=5):
        seen.add(ev["object"].metadata.name)
        w.stop()
    check("fid-rc" in seen, f"watch of RCs saw {seen}")
    print("watch: RC events decoded")

    # Replace, patch, scale answers.
    got.spec.replicas = 0
    got.metadata.resource_version = None  # unconditional: the controller writes status meanwhile
    core.replace_namespaced_replication_controller("fid-rc", NAMESPACE, got)
    apps.patch_namespaced_deployment_scale("fid-deploy", NAMESPACE, {"spec": {"replicas": 1}})
    core.patch_namespaced_replication_controller_status(
        "fid-rc", NAMESPACE, {"status": {"observedGeneration": 2}})
    print("replace, patch, scale: answers decoded")

    # A second create answers the Status Kubernetes writes.
    try:
        apps.create_namespaced_deployment(NAMESPACE, d)
        check(False, "second create of the Deployment succeeded")
    except client.exceptions.ApiException as e:
        want = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                '"message":"deployments.apps \\"fid-deploy\\" already exists",'
                '"reason":"AlreadyExists","details":{"name":"fid-deploy","group":"apps",'
                '"kind":"deployments"},"code":409}\n')
        check(e.status == 409 and e.body == want, f"second create answered {e.status} {e.body!r}")
    print("second create: Status body as Kubernetes writes it")

    for name in ("fid-rc",):
        core.delete_namespaced_replication_controller(name, NAMESPACE)
    apps.delete_namespaced_deployment("fid-deploy", NAMESPACE)
    core.delete_namespaced_service("fid-svc", NAMESPACE)
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # the client's own validation errors land here
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
