# Shared by tests/cluster/{build,up,down,status,env}. Sourced, never run.
# shellcheck shell=bash

K8S_VERSION=${HOMEPORT_K8S_VERSION:-1.33.13}
K8S_CACHE=${HOMEPORT_K8S_CACHE:-$HOME/.cache/homeport/k8s}
K8S_BIN=$K8S_CACHE/$K8S_VERSION/bin
K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)
STATE=${HOMEPORT_CLUSTER_STATE:-/var/lib/homeport-test/cluster}
# Sockets and the runtime's state live apart from dockerd's /run/containerd.
RUN=${HOMEPORT_CLUSTER_RUN:-/run/homeport-k8s}
SOCK=$RUN/containerd.sock
PKI=$STATE/pki
LOGS=$STATE/log
PIDS=$STATE/run

NODE=homeport-test
# The node's address sits on the pod bridge the scripts create, so every address the cluster
# uses is either loopback or on an interface of ours.
BRIDGE=hpbr0
NODE_IP=10.88.0.1
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/24
PAUSE_IMAGE=localhost/homeport-pause:1
API=https://127.0.0.1:6443
# etcd client and peer, apiserver, controller-manager, scheduler, kubelet healthz and API.
PORTS=(2379 2380 6443 10257 10259 10248 10250)
# Started in this order, stopped in the reverse one.
DAEMONS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet)

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

# --- build -------------------------------------------------------------------------------------

binaries_present() {
  local c
  for c in "${K8S_COMPONENTS[@]}"; do [ -x "$K8S_BIN/$c" ] || return 1; done
}

build_components() {
  binaries_present && return 0
  command -v go >/dev/null ||
    die "Go is needed to build Kubernetes $K8S_VERSION once (Go >= 1.24 on PATH); none found"
  local src=$K8S_CACHE/$K8S_VERSION/src minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=${GOFLAGS:--p=2}
  mkdir -p "$src" "$K8S_BIN"
  say "building Kubernetes v$K8S_VERSION (${K8S_COMPONENTS[*]}) into $K8S_BIN; the first build takes a while"
  local start=$SECONDS
  (
    cd "$src" || exit 1
    printf 'module homeport.test/k8s\n\ngo 1.24.0\n\ngodebug default=go1.24\n' >go.mod
    rm -f go.sum
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
    # Each staging module k8s.io/kubernetes requires at v0.0.0 has a release v0.<minor>.<patch>.
    grep -oE '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" |
      awk -v v="v0.${K8S_VERSION#1.}" '{print "replace", $1, "=>", $1, v}' >>go.mod
    local pkgs=() c
    for c in "${K8S_COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get "${pkgs[@]/%/@v$K8S_VERSION}"
    local ld="-s -w" q
    for q in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $q.gitVersion=v$K8S_VERSION -X $q.gitMajor=1 -X $q.gitMinor=$minor"
      ld+=" -X $q.gitTreeState=clean"
    done
    go build -trimpath -ldflags "$ld" -o "$K8S_BIN.tmp/" "${pkgs[@]}"
  )
  mv "$K8S_BIN.tmp/"* "$K8S_BIN/" && rmdir "$K8S_BIN.tmp"
  say "built in $((SECONDS - start)) s"
}

# --- processes ---------------------------------------------------------------------------------

# Prints the pid recorded for a daemon if that process still runs the same program.
daemon_pid() {
  local name=$1 pid exe
  [ -f "$PIDS/$name.pid" ] || return 1
  pid=$(cat "$PIDS/$name.pid")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  # A pid reused by another program since is not ours.
  case "${exe##*/}" in "$name" | "$name (deleted)") echo "$pid" ;; *) return 1 ;; esac
}

start_daemon() {
  local name=$1 exe=$2
  shift 2
  # 9>&- : the daemons must not inherit the lock of tests/cluster/up, or they hold it forever.
  setsid "$exe" "$@" >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
  # Until the child has exec'd the daemon, its pid still shows the shell.
  for _ in $(seq 50); do
    daemon_pid "$name" >/dev/null && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.02
  done
  daemon_pid "$name" >/dev/null || die "$name did not start; log: $LOGS/$name.log"
}

# wait_for SECONDS DAEMON WHAT COMMAND...: polls COMMAND; fails at once if DAEMON dies.
wait_for() {
  local timeout=$1 daemon=$2 what=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$daemon" ] && ! daemon_pid "$daemon" >/dev/null; then
      tail -n 25 "$LOGS/$daemon.log" >&2 || true
      die "$daemon exited while waiting for $what; log: $LOGS/$daemon.log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      [ -z "$daemon" ] || tail -n 25 "$LOGS/$daemon.log" >&2 || true
      die "timed out after ${timeout}s waiting for $what${daemon:+; log: $LOGS/$daemon.log}"
    fi
    sleep 0.2
  done
}

# Sends SIGTERM to the pids, SIGKILL to any left after GRACE seconds (at once for 0), and waits
# for them to die.
stop_pids() {
  local grace=$1 pid left
  shift
  [ $# -gt 0 ] || return 0
  if [ "$grace" -gt 0 ]; then
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
      left=0
      for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left=1; done
      [ $left = 1 ] || return 0
      sleep 0.1
    done
  fi
  kill -KILL "$@" 2>/dev/null || true
  # Wait for them to be gone (a killed process holds its ports until reaped).
  for _ in $(seq 50); do
    left=0
    for pid in "$@"; do [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && left=1; done
    [ $left = 1 ] || return 0
    sleep 0.1
  done
}

# The shims our containerd started (told apart from dockerd's by their -address argument).
our_shims() {
  pgrep -f -- "^[^ ]*containerd-shim[^ ]* .*-address $SOCK( |\$)" || true
}

# Every process in the pods' cgroups (the kubelet's cgroupfs driver puts them under /kubepods).
pod_pids() {
  [ -d /sys/fs/cgroup/pids/kubepods ] || return 0
  find /sys/fs/cgroup/pids/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

apiserver_ready() {
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$API/readyz" >/dev/null 2>&1
}

node_ready() {
  [ "$(kubectl_admin get node "$NODE" --request-timeout=3s \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

all_daemons_running() {
  local d
  for d in "${DAEMONS[@]}"; do daemon_pid "$d" >/dev/null || return 1; done
}

cluster_healthy() { all_daemons_running && apiserver_ready && node_ready; }

any_daemon_recorded() { compgen -G "$PIDS/*.pid" >/dev/null; }

# --- teardown ----------------------------------------------------------------------------------

# Stops every daemon, the pods' processes and our shims, then unmounts and removes what the
# runtime left. Safe on a half-started or crashed cluster and on one that is not there.
teardown() {
  local pid pids=() d
  # SIGKILL throughout: the next up starts from empty state, so nothing needs a clean shutdown.
  stop_storage
  # The kubelet goes first, so it restarts nothing while the rest goes.
  pid=$(daemon_pid kubelet) && stop_pids 0 "$pid"
  for d in kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pid=$(daemon_pid "$d") && pids+=("$pid")
  done
  stop_pids 0 "${pids[@]}"

  # Pod processes die first; then the runtime deletes its tasks (shims exit, mounts go).
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t pids < <(pod_pids)
    [ ${#pids[@]} -gt 0 ] || break
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.1
  done
  if daemon_pid containerd >/dev/null; then
    local ctr=(ctr --address "$SOCK" --namespace k8s.io) id
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      timeout 5 "${ctr[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    stop_pids 0 "$(daemon_pid containerd)"
  fi
  mapfile -t pids < <(our_shims)
  [ ${#pids[@]} -eq 0 ] || stop_pids 0 "${pids[@]}"

  # Mounts under our directories (rootfs, sandbox netns, secret volumes), deepest first.
  local mnt
  { awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE|$RUN)/" || true; } | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  if command -v iptables >/dev/null; then
    while iptables -D "${FORWARD_RULE[@]}" 2>/dev/null; do :; done
  fi
  # Empty pod cgroups the kubelet made.
  local h
  for h in /sys/fs/cgroup/*/kubepods; do
    if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  find /var/log/containers -maxdepth 1 -lname "$STATE/*" -delete 2>/dev/null || true
  rm -rf "$PIDS" "$RUN"
}

# --- setup -------------------------------------------------------------------------------------

preflight() {
  [ "$(id -u)" = 0 ] || die "run as root: the cluster mounts, makes cgroups and a bridge"
  local missing=() pair
  for pair in etcd:etcd-server containerd:containerd ctr:containerd \
    containerd-shim-runc-v2:containerd runc:runc openssl:openssl ip:iproute2 gcc:gcc \
    curl:curl python3:python3 ss:iproute2; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  for pair in bridge host-local loopback; do
    [ -x "/usr/lib/cni/$pair" ] || missing+=(containernetworking-plugins)
  done
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(find /usr/lib -name libc.a -print -quit)" ] ||
    missing+=(libc6-dev)
  [ ${#missing[@]} -eq 0 ] ||
    die "missing Debian packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')(apt-get install them)"
  local c
  for c in cpu cpuacct cpuset memory pids devices freezer; do
    [ -d "/sys/fs/cgroup/$c" ] ||
      die "cgroup v1 controller '$c' is not mounted at /sys/fs/cgroup/$c; the kubelet needs it"
  done
  [ -e /dev/kmsg ] || die "/dev/kmsg is missing; the kubelet's OOM watcher needs it"
  local port users
  for port in "${PORTS[@]}"; do
    users=$(ss -Hltnp "sport = :$port" 2>/dev/null)
    [ -z "$users" ] || die "port $port is in use: $users"
  done
}

# One CA; a client certificate per identity; kubeconfigs. Kept between runs.
make_pki() {
  [ -f "$STATE/admin.kubeconfig" ] && return 0
  say "making certificates in $PKI"
  rm -rf "$PKI"
  mkdir -p "$PKI"
  (
    cd "$PKI" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj /CN=homeport-test-ca 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cert() { # name subject usage [subjectAltName]
      openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf 'extendedKeyUsage=%s\n%s\n' "$3" "${4:+subjectAltName=$4}" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver /CN=kube-apiserver serverAuth \
      "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%.0/*}.1"
    cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    cert admin "/O=system:masters/CN=admin" clientAuth
    cert controller-manager /CN=system:kube-controller-manager clientAuth
    cert scheduler /CN=system:kube-scheduler clientAuth
    cert kubelet "/O=system:nodes/CN=system:node:$NODE" clientAuth
    cert kubelet-serving "/CN=$NODE" serverAuth "DNS:$NODE,IP:$NODE_IP"
  )
  local who
  for who in controller-manager scheduler kubelet admin; do
    cat >"$STATE/$who.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: homeport-test
  cluster: {server: "$API", certificate-authority: "$PKI/ca.crt"}
users:
- name: $who
  user: {client-certificate: "$PKI/$who.crt", client-key: "$PKI/$who.key"}
contexts:
- name: homeport-test
  context: {cluster: homeport-test, user: $who, namespace: default}
current-context: homeport-test
YAML
  done
}

# The registry of homeport installed from deploy/ (tests/incluster): images named
# 127.0.0.1:$NODE_REGISTRY_PORT/... are pulled through the node's address, as every node of a
# real cluster pulls from the registry on homeport's node (deploy/README.md, "More nodes").
NODE_REGISTRY_PORT=15000

# Plain-http registries for containerd, one hosts.toml each (what k3s makes of registries.yaml).
# containerd reads these at every pull: writing them needs no restart.
write_registry_hosts() {
  local pair name endpoint
  for pair in "127.0.0.1:5000=http://127.0.0.1:5000" \
    "127.0.0.1:$NODE_REGISTRY_PORT=http://$NODE_IP:$NODE_REGISTRY_PORT"; do
    name=${pair%%=*} endpoint=${pair#*=}
    mkdir -p "$STATE/containerd/certs.d/$name"
    printf 'server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$endpoint" "$endpoint" >"$STATE/containerd/certs.d/$name/hosts.toml"
  done
}

write_configs() {
  mkdir -p "$STATE/cni/net.d"
  # The local registry, plain http, for images referenced as 127.0.0.1:5000/name@sha256:...
  write_registry_hosts
  cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Sandbox network namespaces under our state dir, so teardown finds them.
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE in some sandboxes (this one): the kubelet's negative oom_score_adj for
  # sandboxes would make runc fail, so containers get at least containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
TOML
  # No default route in pods: they reach the node and each other, nothing outside the box.
  cat >"$STATE/cni/net.d/10-homeport.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "homeport-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]]
      }
    },
    {"type": "loopback"}
  ]
}
JSON
  cat >"$STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $STATE/pod-logs
# No DNS server runs. Pods get this unrouted address as their resolver, so lookups fail at once
# and nothing in a pod looks beyond the box (and the kubelet does not warn on every pod).
clusterDNS: [${SERVICE_CIDR%.0/*}.10]
clusterDomain: cluster.local
resolvConf: ""
serializeImagePulls: false
# containerd 1.6 does not pin the sandbox image, so image GC and disk eviction stay off.
imageGCHighThresholdPercent: 100
evictionHard: {nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
YAML
}

# The sandbox image: pause.c built static, packed as a docker-save tar for ctr import.
pause_image_tar() {
  local tar=$STATE/images/pause.tar
  if [ ! -f "$tar" ] || [ "$CLUSTER_DIR/pause.c" -nt "$tar" ]; then
    mkdir -p "$STATE/images"
    gcc -Os -s -static -o "$STATE/images/pause" "$CLUSTER_DIR/pause.c" ||
      die "could not build the pause program (gcc and libc6-dev)"
    python3 - "$STATE/images/pause" "$tar" "$PAUSE_IMAGE" "$(dpkg --print-architecture)" <<'PY'
import hashlib, io, json, sys, tarfile

binary, out, tag, arch = sys.argv[1:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    info = t.gettarinfo(binary, arcname="pause")
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    with open(binary, "rb") as f:
        t.addfile(info, f)
layer_bytes = layer.getvalue()
config = {
    "architecture": arch,
    "os": "linux",
    "config": {"Entrypoint": ["/pause"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]},
}
manifest = [{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]
with tarfile.open(out, mode="w") as t:
    for name, data in [
        ("layer.tar", layer_bytes),
        ("config.json", json.dumps(config).encode()),
        ("manifest.json", json.dumps(manifest).encode()),
    ]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
PY
  fi
  echo "$tar"
}

# Bridged pod traffic passes the iptables FORWARD chain, whose policy dockerd sets to DROP: let
# pods reach each other, and only each other, on our bridge.
FORWARD_RULE=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment homeport-test-cluster -j ACCEPT)

make_bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  if command -v iptables >/dev/null && ! iptables -C "${FORWARD_RULE[@]}" 2>/dev/null; then
    iptables -I "${FORWARD_RULE[@]}"
  fi
}

# shellcheck source=tests/cluster/storage.sh
. "$CLUSTER_DIR/storage.sh"
