"""Drives a Baton server with the official Python `kubernetes` client (issue 3, must-hold 9).

Loads the kubeconfig named by $KUBECONFIG and, on an apps/v1 Deployment: create, list, a
strategic merge patch (replicas and one container's image, the other container kept), a watch
that must deliver the MODIFIED event of a change made while it runs, then delete. Each step that
fails prints what it expected and what the server answered, and the script exits non-zero.
"""

import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NAMESPACE = "default"
NAME = "py-client-test"
STRATEGIC = "application/strategic-merge-patch+json"


# The step running, named in the failure message of an API error.
current_step = "start"


class StepFailed(Exception):
    pass


def begin(step):
    global current_step
    current_step = step
    return step


def check(cond, step, what, got):
    if not cond:
        raise StepFailed("%s: %s; got: %s" % (step, what, got))


def deployment():
    labels = {"app": NAME}
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name=NAME, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="web",
                            image="registry.local/hello:v1",
                            ports=[client.V1ContainerPort(container_port=8080)],
                        ),
                        client.V1Container(name="sidecar", image="registry.local/sidecar:v1"),
                    ]
                ),
            ),
        ),
    )


def images(dep):
    return {c.name: c.image for c in dep.spec.template.spec.containers}


def run(apps):
    step = begin("create")
    created = apps.create_namespaced_deployment(NAMESPACE, deployment())
    check(created.metadata.uid, step, "a uid on the created object", created.metadata)
    check(created.metadata.generation == 1, step, "generation 1", created.metadata.generation)
    check(
        created.spec.strategy.type == "RollingUpdate",
        step,
        "the RollingUpdate strategy defaulted",
        created.spec.strategy,
    )
    print("ok create: uid=%s resourceVersion=%s" % (created.metadata.uid, created.metadata.resource_version))

    step = begin("list")
    listed = apps.list_namespaced_deployment(NAMESPACE, label_selector="app=" + NAME)
    names = [d.metadata.name for d in listed.items]
    check(names == [NAME], step, "exactly [%s] with the label selector" % NAME, names)
    check(listed.metadata.resource_version, step, "a list resourceVersion", listed.metadata)
    list_rv = listed.metadata.resource_version
    print("ok list: %s at resourceVersion %s" % (names, list_rv))

    step = begin("strategic merge patch")
    patch = {
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "web", "image": "registry.local/hello:v2"}]}},
        }
    }
    patched = apps.patch_namespaced_deployment(NAME, NAMESPACE, patch, _content_type=STRATEGIC)
    check(patched.spec.replicas == 3, step, "replicas 3", patched.spec.replicas)
    want = {"web": "registry.local/hello:v2", "sidecar": "registry.local/sidecar:v1"}
    check(images(patched) == want, step, "images %s (containers merged by name)" % want, images(patched))
    web = patched.spec.template.spec.containers[0]
    check(
        web.ports and web.ports[0].container_port == 8080,
        step,
        "the web container's port kept",
        web.ports,
    )
    check(patched.metadata.generation == 2, step, "generation 2 after a spec change", patched.metadata.generation)
    got = apps.read_namespaced_deployment(NAME, NAMESPACE)
    check(images(got) == want and got.spec.replicas == 3, step, "the patch stored", got.spec)
    print("ok patch: replicas=3 images=%s" % images(got))

    step = begin("watch")
    # Watch from the list's resourceVersion, so the ADDED/MODIFIED history is replayed and the
    # change made meanwhile is seen even if it lands before the watch is established.
    changer_errors = []

    def change_meanwhile():
        time.sleep(0.5)
        try:
            apps.patch_namespaced_deployment(
                NAME,
                NAMESPACE,
                {"metadata": {"labels": {"changed": "meanwhile"}}},
                _content_type=STRATEGIC,
            )
        except ApiException as e:  # reported by the watch step below
            changer_errors.append(e)

    changer = threading.Thread(target=change_meanwhile)
    changer.start()
    seen = []
    w = watch.Watch()
    for event in w.stream(
        apps.list_namespaced_deployment,
        NAMESPACE,
        field_selector="metadata.name=" + NAME,
        resource_version=list_rv,
        timeout_seconds=15,
    ):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.resource_version, dict(obj.metadata.labels or {})))
        if event["type"] == "MODIFIED" and (obj.metadata.labels or {}).get("changed") == "meanwhile":
            w.stop()
    changer.join()
    check(not changer_errors, step, "the change made during the watch accepted", changer_errors)
    check(
        any(t == "MODIFIED" and l.get("changed") == "meanwhile" for t, _, l in seen),
        step,
        "a MODIFIED event with label changed=meanwhile within 15 s",
        seen,
    )
    print("ok watch: events %s" % [(t, rv) for t, rv, _ in seen])

    step = begin("delete")
    status = apps.delete_namespaced_deployment(NAME, NAMESPACE)
    check(status is not None, step, "a response to the delete", status)
    deadline = time.time() + 10
    while True:
        try:
            left = apps.read_namespaced_deployment(NAME, NAMESPACE)
        except ApiException as e:
            check(e.status == 404, step, "404 NotFound after delete", "%s %s" % (e.status, e.body))
            break
        check(time.time() < deadline, step, "the deployment gone within 10 s", left.metadata)
        time.sleep(0.2)
    listed = apps.list_namespaced_deployment(NAMESPACE, label_selector="app=" + NAME)
    check(not listed.items, step, "an empty list after delete", [d.metadata.name for d in listed.items])
    print("ok delete")


def main():
    config.load_kube_config()
    apps = client.AppsV1Api()
    try:
        run(apps)
    except StepFailed as e:
        print("FAIL %s" % e, file=sys.stderr)
        return 1
    except ApiException as e:
        print(
            "FAIL in step '%s': API call answered %s %s\n%s" % (current_step, e.status, e.reason, e.body),
            file=sys.stderr,
        )
        return 1
    print("python client: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
