"""The local test cluster runs what homeport deploys: images from the local registry by digest,
readiness probes, crash loops, and it comes back after down and up."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support.cluster import (
    CLUSTER_DIR,
    Kube,
    cluster_client,
    create_namespace,
    deployment,
    pods_of,
    service,
    wait_for_page,
    wait_until,
)

pytestmark = pytest.mark.cluster


def deploy(kube: Kube, namespace: str, manifest: dict[str, object]) -> None:
    kube.apps.create_namespaced_deployment(namespace, manifest)


def ready(kube: Kube, namespace: str, name: str) -> bool:
    status = kube.apps.read_namespaced_deployment(name, namespace).status
    return bool(status.ready_replicas)


def serve(kube: Kube, namespace: str, name: str, image: str) -> None:
    deploy(kube, namespace, deployment(name, image))
    kube.core.create_namespaced_service(namespace, service(name))
    wait_until(lambda: ready(kube, namespace, name), timeout=120, what=f"{name} to be ready")


def test_image_pulled_by_digest_serves_through_service_proxy(kube, namespace, push_image):
    """A pushed image runs by digest, passes its readiness probe and answers via the API server."""
    page = f"hello from {uuid.uuid4().hex}\n"
    image = push_image("cluster-web", {"www/index.html": page})
    assert "@sha256:" in image

    serve(kube, namespace, "web", image)

    (pod,) = pods_of(kube, namespace, "web")
    assert pod.status.container_statuses[0].image_id.endswith(image.split("@")[1])
    assert wait_for_page(kube, namespace, "web") == (200, page)


def test_pods_reach_each_other_by_pod_ip(kube, namespace, push_image):
    """A pod fetches a page from another pod's IP across the node's bridge."""
    page = f"from the server pod {uuid.uuid4().hex}\n"
    serve(kube, namespace, "server", push_image("cluster-server", {"www/index.html": page}))
    (server,) = pods_of(kube, namespace, "server")

    fetch = (
        f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc {server.status.pod_ip} 8080'
        " | sed '1,/^\\r$/d' > /www/index.html && exec httpd -f -p 8080 -h /www"
    )
    image = push_image("cluster-client", {"www/.keep": ""}, ["sh", "-c", fetch])
    serve(kube, namespace, "client", image)

    assert wait_for_page(kube, namespace, "client") == (200, page)


def test_failing_readiness_probe_keeps_pod_unready_and_says_why(kube, namespace, push_image):
    """A pod whose readiness probe fails stays unready; its conditions and events say why."""
    image = push_image("cluster-unready", {"www/index.html": "up\n"})
    deploy(kube, namespace, deployment("unready", image, readiness_path="/missing"))

    def probe_failed() -> list[object]:
        return [
            event
            for event in kube.core.list_namespaced_event(namespace).items
            if event.involved_object.name.startswith("unready-") and event.reason == "Unhealthy"
        ]

    (event, *_) = wait_until(probe_failed, timeout=120, what="a failed readiness probe event")
    assert "Readiness probe failed" in event.message
    assert "404" in event.message

    (pod,) = pods_of(kube, namespace, "unready")
    assert pod.status.phase == "Running"
    conditions = {c.type: c for c in pod.status.conditions}
    assert conditions["Ready"].status == "False"
    assert conditions["ContainersReady"].reason == "ContainersNotReady"
    assert not ready(kube, namespace, "unready")


def test_crashing_container_reaches_crash_loop_backoff(kube, namespace, push_image):
    """A container that exits at once is restarted until the kubelet backs off."""
    image = push_image("cluster-crash", {"www/index.html": "never\n"}, ["sh", "-c", "exit 3"])
    deploy(kube, namespace, deployment("crash", image, readiness_path=None))

    def backing_off() -> object:
        for pod in pods_of(kube, namespace, "crash"):
            for container in pod.status.container_statuses or []:
                waiting = container.state.waiting
                if waiting and waiting.reason == "CrashLoopBackOff":
                    return container
        return None

    container = wait_until(backing_off, timeout=120, what="CrashLoopBackOff")
    assert container.last_state.terminated.exit_code == 3
    assert container.restart_count >= 1


# Last in the file: it restarts the cluster, which starts from empty state.
def test_down_then_up_gives_a_working_cluster(namespace, push_image):
    """After down and up the cluster runs and serves a new deployment again."""
    subprocess.run([CLUSTER_DIR / "down"], check=True, timeout=60)
    assert subprocess.run([CLUSTER_DIR / "status"], capture_output=True).returncode != 0

    subprocess.run([CLUSTER_DIR / "up"], check=True, timeout=600)
    assert subprocess.run([CLUSTER_DIR / "status"], capture_output=True).returncode == 0

    kube = cluster_client()
    create_namespace(kube, namespace)
    image = push_image("cluster-web", {"www/index.html": "back again\n"})
    serve(kube, namespace, "again", image)
    assert wait_for_page(kube, namespace, "again") == (200, "back again\n")
