# Storage for the test cluster: the local-path provisioner k3s ships, run out-of-cluster with
# the admin kubeconfig, and a default StorageClass `local-path` (WaitForFirstConsumer), so
# PersistentVolumeClaims bind as they do on k3s. Sourced by lib.sh, never run.
# shellcheck shell=bash

LPP_VERSION=${HOMEPORT_LPP_VERSION:-0.0.30}
LPP_CACHE=${HOMEPORT_LPP_CACHE:-$HOME/.cache/homeport/local-path-provisioner}
LPP_BIN=$LPP_CACHE/$LPP_VERSION/bin/local-path-provisioner
LPP_NAMESPACE=local-path-storage
LPP_SERVICE_ACCOUNT=local-path-provisioner-service-account
LPP_HELPER_REPO=127.0.0.1:5000/homeport-local-path-helper
# Volumes are directories here, one per claim, made and removed by the helper pods.
STORAGE_DIR=$STATE/storage

build_provisioner() {
  [ -x "$LPP_BIN" ] && return 0
  command -v go >/dev/null ||
    die "Go is needed to build local-path-provisioner v$LPP_VERSION once; none found on PATH"
  local out=${LPP_BIN%/*}
  say "building local-path-provisioner v$LPP_VERSION into $out"
  mkdir -p "$out.tmp"
  # The module has no replace lines, so `go install` builds it as released.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--p=2} -buildvcs=false" GOBIN="$out.tmp" \
    go install -trimpath -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@v$LPP_VERSION" ||
    die "building local-path-provisioner v$LPP_VERSION failed"
  mkdir -p "$out" && mv "$out.tmp/local-path-provisioner" "$LPP_BIN" && rmdir "$out.tmp"
}

# The helper pods' image: FROM scratch with Debian's busybox-static, pushed to the local
# registry the cluster pulls from. Prints its reference by digest.
helper_image() {
  local ctx ref
  ctx=$(mktemp -d)
  mkdir -p "$ctx/bin"
  cp /bin/busybox "$ctx/bin/busybox" || die "Debian's busybox-static is needed (/bin/busybox)"
  chmod 0755 "$ctx/bin/busybox"
  for applet in sh mkdir rm chmod ls; do ln -s busybox "$ctx/bin/$applet"; done
  printf 'FROM scratch\nCOPY bin/ /bin/\nENV PATH=/bin\n' >"$ctx/Dockerfile"
  docker build -q -t "$LPP_HELPER_REPO:busybox" "$ctx" >/dev/null 9>&- ||
    { rm -rf "$ctx"; die "could not build the helper image (is the Docker engine up?)"; }
  rm -rf "$ctx"
  docker push -q "$LPP_HELPER_REPO:busybox" >/dev/null 9>&- ||
    die "could not push $LPP_HELPER_REPO:busybox (is the registry on 127.0.0.1:5000 up?)"
  ref=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' \
    "$LPP_HELPER_REPO:busybox" | grep -m1 "^$LPP_HELPER_REPO@")
  [ -n "$ref" ] || die "the registry gave no digest for $LPP_HELPER_REPO:busybox"
  echo "$ref"
}

# Namespace, service account (the helper pods run as it), the provisioner's ConfigMap and the
# default StorageClass; `kubectl apply`, so a second run changes nothing.
storage_objects() {
  local image=$1
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $LPP_NAMESPACE}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: $LPP_SERVICE_ACCOUNT, namespace: $LPP_NAMESPACE}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: $LPP_NAMESPACE}
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$STORAGE_DIR"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      priorityClassName: system-node-critical
      automountServiceAccountToken: false
      containers:
      - name: helper-pod
        image: $image
        imagePullPolicy: IfNotPresent
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
YAML
}

provisioner_running() { daemon_pid local-path-provisioner >/dev/null; }

storage_class_present() { kubectl_admin get storageclass local-path >/dev/null 2>&1; }

# Starts the provisioner if it is not running. Needs a healthy cluster; touches nothing else.
start_storage() {
  if provisioner_running && storage_class_present; then return 0; fi
  build_provisioner
  local image
  image=$(helper_image)
  storage_objects "$image" || die "could not create the storage objects (namespace $LPP_NAMESPACE)"
  provisioner_running && return 0
  mkdir -p "$STORAGE_DIR" "$LOGS" "$PIDS"
  say "starting local-path-provisioner v$LPP_VERSION (volumes in $STORAGE_DIR)"
  start_daemon local-path-provisioner "$LPP_BIN" --debug start \
    --kubeconfig "$STATE/admin.kubeconfig" --namespace "$LPP_NAMESPACE" \
    --service-account-name "$LPP_SERVICE_ACCOUNT" --helper-image "$image" \
    --configmap-name local-path-config --provisioner-name rancher.io/local-path
  wait_for 30 local-path-provisioner "the provisioner to start" \
    grep -q "Provisioner started" "$LOGS/local-path-provisioner.log"
}

stop_storage() {
  local pid
  if pid=$(daemon_pid local-path-provisioner); then stop_pids 0 "$pid"; fi
  rm -f "$PIDS/local-path-provisioner.pid"
}
