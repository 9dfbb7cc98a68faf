"""Create the Secret `redis-auth` with a random Redis password, unless it exists already.

Run by the Redis pod's init container (redis.yaml) with a token that may create Secrets in
its namespace and nothing else. An existing Secret is never read or changed, so Redis and
homeport keep the password across restarts; delete the Secret and restart both to rotate it.
Kubernetes cannot generate a random value itself (kustomize's secretGenerator writes the
value into the manifests), hence this step.
"""

from __future__ import annotations

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
    try:
        client.CoreV1Api().create_namespaced_secret(namespace, secret)
    except ApiException as exc:
        if exc.status == 409:
            print(f"Secret {namespace}/{NAME} exists; keeping its password")
            return 0
        print(
            f"cannot create Secret {namespace}/{NAME}: {exc.status} {exc.reason}; "
            "check the Role and RoleBinding redis-password in deploy/redis.yaml",
            file=sys.stderr,
        )
        return 1
    print(f"created Secret {namespace}/{NAME} with a new Redis password")
    return 0


if __name__ == "__main__":
    sys.exit(main())
