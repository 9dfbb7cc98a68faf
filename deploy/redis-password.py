"""Create the Secret `redis-auth` with a random Redis password, unless it exists already,
and write its redis.conf to the path in $CONF for Redis to read.

Run by the Redis pod's init container (redis.yaml) with a token that may create Secrets in
its namespace and read this one. An existing Secret is never changed, so Redis and homeport
keep the password across restarts; delete the Secret and restart both to rotate it.
Kubernetes cannot generate a random value itself (kustomize's secretGenerator writes the
value into the manifests), hence this step. Redis cannot mount the Secret itself: the kubelet
starts no container of a pod, init containers included, before every volume can be mounted,
and on a first install the Secret does not exist until this script has run.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

NAME = "redis-auth"


def main() -> int:
    namespace = os.environ["NAMESPACE"]
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()  # run by hand, with a kubeconfig
    # Hex: safe unquoted both in redis.conf and in a redis:// URL.
    password = secrets.token_hex(32)
    secret = {
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": "homeport-redis"}},
        "type": "Opaque",
        "immutable": True,
        "stringData": {"password": password, "redis.conf": f"requirepass {password}\n"},
    }
    api = client.CoreV1Api()
    try:
        api.create_namespaced_secret(namespace, secret)
        print(f"created Secret {namespace}/{NAME} with a new Redis password")
    except ApiException as exc:
        if exc.status != 409:
            return _failed(f"create Secret {namespace}/{NAME}", exc)
        print(f"Secret {namespace}/{NAME} exists; keeping its password")
    conf = os.environ.get("CONF")
    if conf:
        try:
            data = api.read_namespaced_secret(NAME, namespace).data
        except ApiException as exc:
            return _failed(f"read Secret {namespace}/{NAME}", exc)
        # Readable by Redis, which runs as its own user; the volume is in memory and the
        # pod's only.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(data["redis.conf"]))
    return 0


def _failed(what: str, exc: ApiException) -> int:
    print(
        f"cannot {what}: {exc.status} {exc.reason}; "
        "check the Role and RoleBinding redis-password in deploy/redis.yaml",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
