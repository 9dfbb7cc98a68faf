# Shared by tests/incluster/{images,up,token,down}. Sourced, never run.
# shellcheck shell=bash

INCLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$INCLUSTER_DIR/../.." && pwd)
# The test cluster's settings (NODE_IP, STATE, K8S_BIN) and its kubectl.
# shellcheck source=../cluster/lib.sh
. "$REPO/tests/cluster/lib.sh"

CACHE=${HOMEPORT_INCLUSTER_CACHE:-$HOME/.cache/homeport/incluster}
# The registry every image of this install is pushed to and pulled from: deploy/'s own
# registry, on the node's address (NODE_IP) as a second node would reach it, and on loopback
# for the node's Docker engine. 127.0.0.1:5000 is the test machine's registry, not ours.
IN_REGISTRY_PORT=$NODE_REGISTRY_PORT
IN_REGISTRY=127.0.0.1:$IN_REGISTRY_PORT
IN_REGISTRY_NODE=$NODE_IP:$IN_REGISTRY_PORT
# Where homeport and Redis listen, on the node's loopback (host network).
IN_HOMEPORT_PORT=18080
IN_REDIS_PORT=16379
# hostPath volumes standing in for k3s's local-path provisioner.
VOLUMES=${HOMEPORT_INCLUSTER_VOLUMES:-/var/lib/homeport-test/incluster}

say() { echo "incluster: $*" >&2; }
die() { echo "incluster: $*" >&2; exit 1; }

kc() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# up writes the kustomization it applies (the overlay plus this run's image tags) here.
APPLIED=$VOLUMES/kustomize
# Redis and the registry stand in for Docker Hub's redis:7-alpine and registry:2.
HUB=127.0.0.1:5000/homeport-incluster
