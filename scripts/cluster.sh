#!/usr/bin/env bash
# The local Kubernetes control plane: real etcd, kube-apiserver (admission + RBAC on, so Pod Security
# Admission and authorization are real), controller-manager and scheduler, run as processes by
# `kwokctl --runtime binary`, with kwok faking nodes and making pods Running/Ready. No containers run.
#
# With the data plane (the default cluster, as root; scripts/testbed), `up` also runs Envoy Gateway v1.9 as a
# host process with a GatewayClass `eg`, and a supervisor that runs a real Envoy for every `eg` Gateway and a real
# podinfo for every Ready pod, in network namespaces of the project's own (docs/getting-started.md: the local cluster), a
# Prometheus on 127.0.0.1 scraping every podinfo (scripts/testbed/prometheus.py; `prometheus-url` prints it), and
# Traefik, one process serving every Gateway of a second GatewayClass `traefik` (scripts/testbed/traefik.py).
#
# Usage: scripts/cluster.sh up|down|status|report|kill-apiserver|start-apiserver|prometheus-url
#   up      start (a no-op when already up; starts a missing data plane), install the Gateway API standard
#           CRDs and the GatewayClasses
#   down    stop and delete everything the cluster left (processes, PKI, etcd data; the data plane's
#           processes, network namespaces, links, routes and mounts)
#   status  exit 0 when the apiserver answers
#   prometheus-url   print the URL of the data plane's Prometheus (scraping every podinfo process)
#   report           print the data plane's problem lines (with-cluster.sh does after a failed command)
#   kill-apiserver   SIGKILL kube-apiserver (fault injection) and wait until it no longer answers; etcd,
#           kwok, the controller-manager and the scheduler keep running, as in a control-plane outage
#   start-apiserver  start it again with the command line it had, and wait until it answers
# Kubeconfig: .cluster/kubeconfig. Cluster files: .cluster/kwok/. GATEWAY_CANARY_CLUSTER_DIR and
# GATEWAY_CANARY_CLUSTER_NAME (scripts/lib.sh) place a second, private cluster elsewhere; it has no data plane
# (one per machine: fixed ports, one set of namespaces). GATEWAY_CANARY_DATA_PLANE=0|1 overrides that choice.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

NAME="$CLUSTER_NAME"
KUBECONFIG_FILE="$CLUSTER_DIR/kubeconfig"
export KWOK_WORKDIR="$CLUSTER_DIR/kwok"
BIN="$TOOLS_DIR/bin"
# kwokctl's files for this cluster; kill-apiserver saves the apiserver's command line for start-apiserver.
APISERVER_DIR="$KWOK_WORKDIR/clusters/$NAME"
PIDFILE="$APISERVER_DIR/pids/kube-apiserver.pid"
ARGVFILE="$APISERVER_DIR/kube-apiserver.argv"
GATEWAY_CLASS=gateway-canary
NODES=2
# Instance 0 of the data plane's addresses (plan_of loads the cluster's own instance).
# shellcheck source=testbed/addresses.env
source "$REPO/scripts/testbed/addresses.env"

# The data plane: Envoy Gateway (a host process) and the supervisor of Envoys and podinfos (scripts/testbed).
if [ -n "${GATEWAY_CANARY_DATA_PLANE:-}" ]; then DATA_PLANE=$GATEWAY_CANARY_DATA_PLANE
elif [ -n "${GATEWAY_CANARY_CLUSTER_DIR:-}" ]; then DATA_PLANE=0
else DATA_PLANE=1; fi
EG_CLASS=eg
EG_NAMESPACE=envoy-gateway-system
EG_DIR="$CLUSTER_DIR/envoy-gateway"
TRAEFIK_CLASS=traefik
TRAEFIK_DIR="$CLUSTER_DIR/traefik"
DP_DIR="$CLUSTER_DIR/dataplane"
PROM_DIR="$CLUSTER_DIR/prometheus"
# Markers of what `up` created on the machine, so the last `down` removes exactly that.
CREATED_CERTS=/run/gateway-canary-created-certs
CREATED_RUN_NETNS=/run/gateway-canary-created-run-netns
# Data-plane instances (scripts/testbed/plan.py): every checkout's cluster takes a free one, so a developer's
# cluster and CI's fresh clone run side by side. /run/gateway-canary-dataplane[-I] names instance I's owner
# ("PID DATAPLANE_DIR"; the pid is its supervisor, or the cluster.sh starting it); the cluster remembers its
# instance in .cluster/dataplane-instance (no file: instance 0).
INSTANCE_FILE="$CLUSTER_DIR/dataplane-instance"
INSTANCE=0
PYTHON_BIN="$REPO/.venv/bin/python"; [ -x "$PYTHON_BIN" ] || PYTHON_BIN=python3

# kwok's own default stages (node init, lease heartbeat, pod ready/complete/delete) from the pinned module,
# with the "never-ready" test hook and, where this cluster has a data-plane instance (choose_instance ran
# first), a release pod Ready only once its podinfo listens (scripts/testbed/stages.py says how).
write_stages() {
  local kwok gated=()
  kwok="$(module_dir "sigs.k8s.io/kwok@${KWOK_VERSION}")/kustomize/stage"
  if [ -f "$INSTANCE_FILE" ]; then gated=(--gated); fi
  (cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.stages "$kwok" "${gated[@]}") \
    >"$CLUSTER_DIR/kwok-stages.yaml" || die "could not write the kwok stages"
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

is_up() {
  [ -f "$KUBECONFIG_FILE" ] && kubectl_ get --raw /readyz >/dev/null 2>&1
}

require_tools() {
  local b
  for b in kwokctl kwok etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'make tools' first"
  done
  if [ "$DATA_PLANE" = 1 ]; then
    for b in envoy-gateway envoy podinfo traefik; do
      [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'make tools' first"
    done
  fi
  [ -d "$TOOLS_DIR/gateway-api-crds/standard" ] || die "Gateway API CRDs missing: run 'make tools' first"
}

install_gateway_api() {
  log "installing Gateway API ${GATEWAY_API_VERSION} standard CRDs (server-side apply)"
  # httproutes.yaml is ~430 KB: client-side apply would overflow the last-applied annotation.
  kubectl_ apply --server-side --force-conflicts -f "$TOOLS_DIR/gateway-api-crds/standard/" >/dev/null
  kubectl_ wait --for condition=Established --timeout=60s \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io \
    crd/gatewayclasses.gateway.networking.k8s.io >/dev/null
  # No gateway controller runs here: this class is never Accepted, and routes get no status (see docs/getting-started.md).
  kubectl_ apply --server-side -f - >/dev/null <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: ${GATEWAY_CLASS}
spec:
  controllerName: gateway-canary.dev/no-data-plane
  description: Local test class; no controller programs a data plane for it.
YAML
}

# kwok nodes with the project's own addresses (scripts/testbed/addresses.env): node i gets InternalIP
# BED_NODE_IP+i and podCIDR BED_NODE_POD_CIDR+i, never kwok's defaults (192.0.2.x is this machine's network).
scale_nodes() {
  "$BIN/kwokctl" scale node --name "$NAME" --replicas "$NODES" \
    --param ".nodeIPs=[\"${BED_NODE_IP}\"]" --param ".podCIDRs=[\"${BED_NODE_POD_CIDR}\"]" \
    >>"$CLUSTER_DIR/create.log" 2>&1 \
    || { tail -n 20 "$CLUSTER_DIR/create.log" >&2; die "kwokctl scale node failed (.cluster/create.log)"; }
  local i addrs
  for i in $(seq 1 100); do
    addrs=$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address} {.spec.podCIDR}{"\n"}{end}' 2>/dev/null || true)
    [ "$(echo "$addrs" | grep -c .)" = "$NODES" ] && break
    sleep 0.1
  done
  [ "$(echo "$addrs" | grep -c .)" = "$NODES" ] || die "expected $NODES nodes after kwokctl scale node, got: $addrs"
  if echo "$addrs" | awk -v ips="${BED_NODE_CIDR%.*}." -v pods="${BED_POD_CIDR%%.0.0/*}." \
      'index($1, ips) != 1 || index($2, pods) != 1 { bad = 1 } END { exit !bad }'; then
    die "kwok nodes do not have the project's addresses ($BED_NODE_CIDR, pods $BED_POD_CIDR): $addrs"
  fi
}

up() {
  require_tools
  if is_up; then
    log "cluster already up (kubeconfig: $KUBECONFIG_FILE)"
    plan_of "$(cat "$INSTANCE_FILE" 2>/dev/null || echo 0)"
  else
    # A stopped or half-created cluster from an earlier run is removed first.
    "$BIN/kwokctl" delete cluster --name "$NAME" >/dev/null 2>&1 || true
    mkdir -p "$CLUSTER_DIR"
    choose_instance
    write_stages
    log "starting kube-apiserver ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION} ..."
    local started; started=$(date +%s)
    # kwokctl takes the Kubernetes version (used for the components' flags) from the environment. One
    # controller-manager and one scheduler need no leader election; with it, both exit when the apiserver is
    # down for more than their renew deadline (10s) and nothing here restarts them (kill-apiserver).
    KWOK_KUBE_VERSION="${KUBERNETES_VERSION}" "$BIN/kwokctl" create cluster --name "$NAME" --runtime binary \
      --etcd-binary "$BIN/etcd" \
      --kube-apiserver-binary "$BIN/kube-apiserver" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" \
      --kwok-controller-binary "$BIN/kwok" \
      --kube-admission=true --kube-authorization=true \
      --extra-args kube-controller-manager=leader-elect=false \
      --extra-args "kube-apiserver=service-cluster-ip-range=${BED_SERVICE_CIDR}" \
      --extra-args "kube-controller-manager=service-cluster-ip-range=${BED_SERVICE_CIDR}" \
      --extra-args kube-scheduler=leader-elect=false \
      --kubeconfig "$KUBECONFIG_FILE" \
      --config "$CLUSTER_DIR/kwok-stages.yaml" \
      --wait 3m >"$CLUSTER_DIR/create.log" 2>&1 \
      || { tail -n 30 "$CLUSTER_DIR/create.log" >&2; die "kwokctl create cluster failed (.cluster/create.log)"; }
    scale_nodes
    log "cluster up in $(( $(date +%s) - started ))s"
  fi
  install_gateway_api
  if [ "$DATA_PLANE" = 1 ]; then data_plane_up; fi
  log "ready: export KUBECONFIG=$KUBECONFIG_FILE"
}

# --- the data plane --------------------------------------------------------------------------------------------

# command_has PID WORD: that process runs and its command line contains WORD
command_has() {
  local cmd
  [ -r "/proc/$1/cmdline" ] && cmd=$(tr '\0' ' ' <"/proc/$1/cmdline") && [[ "$cmd" == *"$2"* ]]
}

alive() { # alive PIDFILE WORD: the pid in PIDFILE runs and its command line contains WORD
  [ -f "$1" ] && command_has "$(cat "$1")" "$2"
}

stop_pidfile() { # stop_pidfile PIDFILE WORD: SIGTERM, up to 20 s, then SIGKILL
  local pid i
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do
    alive "$1" "$2" || { rm -f "$1"; return 0; }
    sleep 0.1
  done
  log "warning: $2 (pid $pid) still runs 20s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

plan_of() { # plan_of I: this cluster's BED_* variables are data-plane instance I's
  INSTANCE=$1
  eval "$(cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.plan shell "$INSTANCE")"
}

owner_file() { if [ "$1" = 0 ]; then echo /run/gateway-canary-dataplane; else echo "/run/gateway-canary-dataplane-$1"; fi; }

owner_of() { # owner_of I: prints the data-plane dir of instance I's live owner
  local pid dir
  [ -f "$(owner_file "$1")" ] && read -r pid dir <"$(owner_file "$1")" || return 1
  { command_has "$pid" scripts.testbed.supervisor || command_has "$pid" cluster.sh; } && echo "$dir"
}

# choose_instance: before a new cluster is created, claim a free data-plane instance (or the one this cluster
# already owns) and load its addresses; without a data plane (or none free), instance 0's addresses, unrouted.
choose_instance() {
  local i owner
  rm -f "$INSTANCE_FILE"
  plan_of 0
  [ "$DATA_PLANE" = 1 ] && [ "$(id -u)" = 0 ] || return 0
  for i in $(seq 0 $((BED_INSTANCES - 1))); do
    if ! owner=$(owner_of "$i") || [ "$owner" = "$DP_DIR" ]; then
      echo "$$ $DP_DIR" >"$(owner_file "$i")"
      echo "$i" >"$INSTANCE_FILE"
      plan_of "$i"
      log "data-plane instance $i: pods $BED_POD_CIDR, Services $BED_SERVICE_CIDR, nodes $BED_NODE_CIDR"
      return 0
    fi
  done
  log "WARNING: all $BED_INSTANCES data-plane instances are taken by other checkouts: this cluster gets none"
}

# Envoy Gateway in its normal Kubernetes mode (gateway-notes.md), as a process in its own network namespace
# (made by the supervisor; it reaches the apiserver through it, and its listeners stay off the machine's
# network). Its xDS server reads /certs/{tls.crt,tls.key,ca.crt} (a fixed path): certgen's server set is
# bind-mounted there in a private mount namespace, so the machine only ever sees an empty /certs directory,
# created here only when absent.
start_envoy_gateway() {
  if alive "$EG_DIR/pid" "envoy-gateway server"; then return 0; fi
  rm -rf "$EG_DIR" && mkdir -p "$EG_DIR"
  "$BIN/envoy-gateway" certgen --local --config-home "$EG_DIR" >"$EG_DIR/certgen.log" 2>&1 \
    || { cat "$EG_DIR/certgen.log" >&2; die "envoy-gateway certgen failed"; }
  [ -f "$EG_DIR/certs/envoy-gateway/tls.crt" ] && [ -f "$EG_DIR/certs/envoy/tls.crt" ] \
    || die "certgen wrote no certs under $EG_DIR/certs"
  cat >"$EG_DIR/envoy-gateway.yaml" <<YAML
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
provider:
  type: Kubernetes
  kubernetes:
    # One controller, restarted at will: no lease to wait out. No topology injector (a webhook server).
    leaderElection:
      disable: true
    proxyTopologyInjector:
      disabled: true
envoyProxy:
  provider:
    type: Kubernetes
    kubernetes:
      # A LoadBalancer never gets an address here, and Programmed needs one. With the listener port as the
      # container port, Envoy itself listens on 80 (the data plane runs it as a process, not in a pod).
      envoyService:
        type: ClusterIP
      useListenerPortAsContainerPort: true
logging:
  level:
    default: info
YAML
  if [ ! -e /certs ]; then
    mkdir /certs && touch "$CREATED_CERTS"
  fi
  [ -d /certs ] || die "/certs exists and is not a directory: Envoy Gateway's certs are bind-mounted there"
  kubectl_ create namespace "$EG_NAMESPACE" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  # What `certgen` without --local would have stored: the translator requires the `envoy` client Secret.
  local name
  for name in envoy-gateway envoy envoy-rate-limit; do
    kubectl_ create secret generic "$name" -n "$EG_NAMESPACE" --type kubernetes.io/tls \
      --from-file="$EG_DIR/certs/$name/tls.crt" --from-file="$EG_DIR/certs/$name/tls.key" \
      --from-file="$EG_DIR/certs/$name/ca.crt" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  done
  kubectl_ create secret generic envoy-oidc-hmac -n "$EG_NAMESPACE" \
    --from-file="$EG_DIR/certs/envoy-oidc-hmac/hmac-secret" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  log "starting Envoy Gateway ${ENVOY_GATEWAY_VERSION} in ${BED_EG_NETNS} (log: ${EG_DIR#"$REPO"/}/envoy-gateway.log)"
  KUBECONFIG="$DP_DIR/eg-kubeconfig" ENVOY_GATEWAY_NAMESPACE="$EG_NAMESPACE" \
    setsid nsenter --net="/run/netns/${BED_EG_NETNS}" unshare --mount --propagation private \
    sh -c 'mount --bind "$1" /certs && exec "$2" server --config-path "$3"' _ \
    "$EG_DIR/certs/envoy-gateway" "$BIN/envoy-gateway" "$EG_DIR/envoy-gateway.yaml" \
    >"$EG_DIR/envoy-gateway.log" 2>&1 </dev/null &
  echo $! >"$EG_DIR/pid"
  disown
}

# install_class NAME CONTROLLER DESCRIPTION WHO LOG: apply a GatewayClass and wait until its controller (WHO)
# accepts it; on a timeout, the end of the controller's LOG and a message naming both.
install_class() {
  kubectl_ apply --server-side -f - >/dev/null <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $1
spec:
  controllerName: $2
  description: $3
YAML
  kubectl_ wait --for condition=Accepted --timeout=90s "gatewayclass/$1" >/dev/null \
    || { tail -n 30 "$5" >&2; die "GatewayClass $1 not Accepted by $4 in 90s"; }
}

# Traefik (GatewayClass traefik), started like Envoy Gateway: a process in the namespace the supervisor made for
# it, with the kubeconfig it wrote (scripts/testbed/traefik.py has the command line and why). Its one address
# (BED_TRAEFIK_ADDRESS) is its entryPoint on port 80 and every traefik Gateway's status address.
TRAEFIK_WORD=--providers.kubernetesGateway.statusAddress.ip
start_traefik() {
  local argv
  if alive "$TRAEFIK_DIR/pid" "$TRAEFIK_WORD"; then return 0; fi
  rm -rf "$TRAEFIK_DIR" && mkdir -p "$TRAEFIK_DIR"
  mapfile -t argv < <(cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.traefik command "$BIN/traefik" \
    "$BED_TRAEFIK_ADDRESS" "$TRAEFIK_DIR/access.log")
  [ "${#argv[@]}" -gt 1 ] || die "no Traefik command line (scripts/testbed/traefik.py)"
  log "starting Traefik ${TRAEFIK_VERSION} in ${BED_TRAEFIK_NETNS} on ${BED_TRAEFIK_ADDRESS}:80 (log: ${TRAEFIK_DIR#"$REPO"/}/traefik.log)"
  KUBECONFIG="$DP_DIR/traefik-kubeconfig" setsid nsenter --net="/run/netns/${BED_TRAEFIK_NETNS}" "${argv[@]}" \
    >"$TRAEFIK_DIR/traefik.log" 2>&1 </dev/null &
  echo $! >"$TRAEFIK_DIR/pid"
  disown
}

# The supervisor first: it sweeps its instance's leftovers and makes the namespaces, Envoy Gateway's and
# Traefik's included.
start_supervisor() {
  if alive "$DP_DIR/pid" "scripts.testbed.supervisor"; then return 0; fi
  stop_pidfile "$EG_DIR/pid" "envoy-gateway server"   # their namespaces are about to be swept
  stop_pidfile "$TRAEFIK_DIR/pid" "$TRAEFIK_WORD"
  rm -rf "$DP_DIR" && mkdir -p "$DP_DIR"
  [ -e /run/netns ] || touch "$CREATED_RUN_NETNS"
  log "starting the data-plane supervisor (log: ${DP_DIR#"$REPO"/}/supervisor.log)"
  (cd "$REPO" && exec setsid "$PYTHON_BIN" -m scripts.testbed.supervisor run --kubeconfig "$KUBECONFIG_FILE" \
    --workdir "$DP_DIR" --certs "$EG_DIR/certs/envoy" --bin "$BIN" --instance "$INSTANCE" \
    >>"$DP_DIR/supervisor.log" 2>&1 </dev/null) &
  echo $! >"$DP_DIR/pid"
  echo "$! $DP_DIR" >"$(owner_file "$INSTANCE")"
  disown
  local i
  for i in $(seq 1 300); do
    [ -f "$DP_DIR/state.json" ] && return 0
    alive "$DP_DIR/pid" "scripts.testbed.supervisor" || break
    sleep 0.1
  done
  tail -n 30 "$DP_DIR/supervisor.log" >&2
  die "the data-plane supervisor did not start (${DP_DIR#"$REPO"/}/supervisor.log)"
}

# Prometheus (Debian's package, scripts/ensure-prometheus.sh) in the root namespace on 127.0.0.1, a port per
# data-plane instance, scraping the targets the supervisor writes; its data lives in PROM_DIR until `down`.
start_prometheus() {
  local bin port i
  if alive "$PROM_DIR/pid" "prometheus --config.file"; then return 0; fi
  bin=$(command -v prometheus) || die "prometheus is missing: run 'make tools' (scripts/ensure-prometheus.sh)"
  port=$(cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.prometheus port "$INSTANCE")
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port (Prometheus of data-plane instance $INSTANCE) is taken by another process"
  fi
  rm -rf "$PROM_DIR" && mkdir -p "$PROM_DIR"
  (cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.prometheus config "$DP_DIR/prometheus-targets.json") \
    >"$PROM_DIR/prometheus.yml"
  log "starting Prometheus ${PROMETHEUS_VERSION} on 127.0.0.1:$port (log: ${PROM_DIR#"$REPO"/}/prometheus.log)"
  setsid "$bin" --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$port" \
    >"$PROM_DIR/prometheus.log" 2>&1 </dev/null &
  echo $! >"$PROM_DIR/pid"
  disown
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "http://127.0.0.1:$port" >"$PROM_DIR/url"
      return 0
    fi
    alive "$PROM_DIR/pid" "prometheus --config.file" || break
    sleep 0.1
  done
  tail -n 20 "$PROM_DIR/prometheus.log" >&2
  die "Prometheus did not start (${PROM_DIR#"$REPO"/}/prometheus.log)"
}

prometheus_url() {
  alive "$PROM_DIR/pid" "prometheus --config.file" && [ -f "$PROM_DIR/url" ] \
    || die "no Prometheus runs for this cluster (it comes with the data plane: make cluster-up, as root)"
  cat "$PROM_DIR/url"
}

data_plane_up() {
  local owner
  if [ "$(id -u)" != 0 ]; then
    log "WARNING: NO DATA PLANE: network namespaces need root; Gateways of classes ${EG_CLASS} and ${TRAEFIK_CLASS} get no data plane"
    return 0
  fi
  if [ "$INSTANCE" = 0 ] && [ ! -f "$INSTANCE_FILE" ] && [ -f "$CLUSTER_DIR/create.log" ] \
      && ! owner_of 0 >/dev/null; then
    echo "$$ $DP_DIR" >"$(owner_file 0)"   # a cluster from before instances: it has instance 0's addresses
  fi
  owner=$(owner_of "$INSTANCE" || true)
  if [ "$owner" != "$DP_DIR" ]; then
    log "WARNING: NO DATA PLANE: data-plane instance $INSTANCE is ${owner:-not claimed by this cluster}."
    log "WARNING: Gateways of classes ${EG_CLASS} and ${TRAEFIK_CLASS} get no data plane here (make cluster-down && make cluster-up)."
    return 0
  fi
  start_supervisor
  start_prometheus
  start_envoy_gateway
  start_traefik
  install_class "$EG_CLASS" gateway.envoyproxy.io/gatewayclass-controller \
    "Envoy Gateway with a real Envoy per Gateway (scripts/testbed)" "Envoy Gateway" "$EG_DIR/envoy-gateway.log"
  install_class "$TRAEFIK_CLASS" traefik.io/gateway-controller \
    "Traefik, one process for all its Gateways, port 80" Traefik "$TRAEFIK_DIR/traefik.log"
  log "data plane up: instance $INSTANCE, GatewayClass ${EG_CLASS} (Envoy Gateway ${ENVOY_GATEWAY_VERSION}, Envoy ${ENVOY_VERSION})"
  log "GatewayClass ${TRAEFIK_CLASS}: Traefik ${TRAEFIK_VERSION} on ${BED_TRAEFIK_ADDRESS}:80"
}

# Everything data_plane_up made, in reverse, but never another checkout's running data plane; what the machine
# gained for all instances (/certs, /run/netns) goes with the last one.
data_plane_down() {
  local i owner
  [ "$DATA_PLANE" = 1 ] && [ "$(id -u)" = 0 ] || return 0
  plan_of "$(cat "$INSTANCE_FILE" 2>/dev/null || echo 0)"
  stop_pidfile "$DP_DIR/pid" "scripts.testbed.supervisor"
  stop_pidfile "$EG_DIR/pid" "envoy-gateway server"
  stop_pidfile "$TRAEFIK_DIR/pid" "$TRAEFIK_WORD"
  stop_pidfile "$PROM_DIR/pid" "prometheus --config.file"
  rm -rf "$PROM_DIR"
  if owner=$(owner_of "$INSTANCE") && [ "$owner" != "$DP_DIR" ]; then
    log "data-plane instance $INSTANCE belongs to $owner: left alone"
    return 0
  fi
  rm -f "$(owner_file "$INSTANCE")" "$INSTANCE_FILE"
  (cd "$REPO" && "$PYTHON_BIN" -m scripts.testbed.supervisor sweep --instance "$INSTANCE") \
    | while read -r line; do log "$line"; done
  for i in $(seq 0 $((BED_INSTANCES - 1))); do
    owner_of "$i" >/dev/null && return 0
  done
  # The markers of a cluster made before instances lived in its own directory.
  if [ -f "$CREATED_CERTS" ] || [ -f "$CLUSTER_DIR/created-certs-dir" ]; then
    rmdir /certs 2>/dev/null || log "warning: /certs is not empty; left in place"
    rm -f "$CREATED_CERTS" "$CLUSTER_DIR/created-certs-dir"
  fi
  if { [ -f "$CREATED_RUN_NETNS" ] || [ -f "$CLUSTER_DIR/created-run-netns" ]; } && [ -d /run/netns ] \
      && [ -z "$(ls -A /run/netns)" ]; then
    # `ip netns add` made /run/netns a (shared) bind mount of itself.
    while mountpoint -q /run/netns; do umount /run/netns || break; done
    rmdir /run/netns 2>/dev/null || true
    rm -f "$CREATED_RUN_NETNS" "$CLUSTER_DIR/created-run-netns"
  fi
}

kill_apiserver() {
  [ -f "$PIDFILE" ] || die "no kube-apiserver pid file at $PIDFILE: is the cluster up?"
  local pid i; pid=$(cat "$PIDFILE")
  cp "/proc/$pid/cmdline" "$ARGVFILE"   # what start-apiserver runs again
  kill -KILL "$pid"
  for i in $(seq 1 100); do
    is_up || { log "kube-apiserver killed"; return 0; }
    sleep 0.1
  done
  die "kube-apiserver still answers 10s after SIGKILL"
}

start_apiserver() {
  [ -f "$ARGVFILE" ] || die "no saved kube-apiserver command line: run kill-apiserver first"
  local argv i
  mapfile -d '' -t argv <"$ARGVFILE"
  # Its own session (like kwokctl's components). The shell writes its own pid (no newline: kwokctl parses
  # it, and `down` kills by it), then becomes the apiserver.
  setsid bash -c 'cd "$1" && printf %s $$ >"$2" && shift 2 && exec "$@"' _ "$APISERVER_DIR" "$PIDFILE" \
    "${argv[@]}" >>"$APISERVER_DIR/logs/kube-apiserver.log" 2>&1 </dev/null &
  disown
  for i in $(seq 1 600); do
    is_up && { rm -f "$ARGVFILE"; log "kube-apiserver started"; return 0; }
    sleep 0.1
  done
  die "kube-apiserver not ready 60s after start (see $APISERVER_DIR/logs/kube-apiserver.log)"
}

# What went wrong in the data plane, for a failed test run (CI shows only the console): the supervisor's
# problem lines and last lines, and Envoy Gateway's last errors.
report() {
  local sup="$DP_DIR/supervisor.log" eg="$EG_DIR/envoy-gateway.log"
  [ -f "$sup" ] || { log "no data-plane log at ${sup#"$REPO"/}"; return 0; }
  log "data plane report: problem lines of ${sup#"$REPO"/}"
  grep -E "failed|exited|skipping|not started|Traceback|Error" "$sup" | tail -n 40 >&2 || true
  log "last lines of ${sup#"$REPO"/}"
  tail -n 15 "$sup" >&2
  if [ -f "$PROM_DIR/url" ] && command -v curl >/dev/null; then
    local q url; url=$(cat "$PROM_DIR/url")
    for q in 'sum(count_over_time(up[3h])) - sum(sum_over_time(up[3h]))' \
        'max(max_over_time(scrape_duration_seconds[3h]))'; do
      log "Prometheus (failed scrapes, slowest scrape): $q = $(curl -s --max-time 5 --get "$url/api/v1/query" \
        --data-urlencode "query=$q" | head -c 300)"
    done
  fi
  if [ -f "$eg" ]; then
    log "last errors of ${eg#"$REPO"/}"
    grep -P '^\S+\terror\t' "$eg" | tail -n 10 | cut -c1-400 >&2 || true
  fi
  if [ -f "$TRAEFIK_DIR/traefik.log" ]; then
    log "last errors of ${TRAEFIK_DIR#"$REPO"/}/traefik.log"
    grep -E ' (ERR|FTL) ' "$TRAEFIK_DIR/traefik.log" | tail -n 10 | cut -c1-400 >&2 || true
  fi
}

# stop_peers: the bench's peers (bench/peers: Flagger, Argo Rollouts and its plugin subprocess), started by
# `python -m bench.peers up`, each the leader of a process group of its own: TERM the group, KILL it after 10 s.
stop_peers() {
  local f pid i
  for f in "$CLUSTER_DIR"/peers/*/pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if command_has "$pid" "$REPO/.tools/bin/"; then
      log "stopping $(basename "$(dirname "$f")") (pid $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || true
      for i in $(seq 1 100); do command_has "$pid" "$REPO/.tools/bin/" || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

down() {
  stop_peers
  data_plane_down
  if [ -x "$BIN/kwokctl" ]; then
    "$BIN/kwokctl" delete cluster --name "$NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$KWOK_WORKDIR" "$KUBECONFIG_FILE"
  log "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) is_up ;;
  kill-apiserver) kill_apiserver ;;
  start-apiserver) start_apiserver ;;
  prometheus-url) prometheus_url ;;
  report) report ;;
  *) echo "usage: $0 up|down|status|report|kill-apiserver|start-apiserver|prometheus-url" >&2; exit 2 ;;
esac
