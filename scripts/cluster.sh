#!/usr/bin/env bash
# The local Kubernetes control plane: real etcd, kube-apiserver (admission + RBAC on, so Pod Security
# Admission and authorization are real), controller-manager and scheduler, run as processes by
# `kwokctl --runtime binary`, with kwok faking nodes and making pods Running/Ready. No containers run.
#
# Usage: scripts/cluster.sh up|down|status|kill-apiserver|start-apiserver
#   up      start (a no-op when already up), install the Gateway API standard CRDs and a GatewayClass
#   down    stop and delete everything the cluster left (processes, PKI, etcd data)
#   status  exit 0 when the apiserver answers
#   kill-apiserver   SIGKILL kube-apiserver (fault injection) and wait until it no longer answers; etcd,
#           kwok, the controller-manager and the scheduler keep running, as in a control-plane outage
#   start-apiserver  start it again with the command line it had, and wait until it answers
# Kubeconfig: .cluster/kubeconfig. Cluster files: .cluster/kwok/. GATEWAY_CANARY_CLUSTER_DIR and
# GATEWAY_CANARY_CLUSTER_NAME (scripts/lib.sh) place a second, private cluster elsewhere.
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

# kwok's own default stages (node init, lease heartbeat, pod ready/complete/delete) from the pinned module,
# with one test hook: pods running an image whose reference contains "never-ready" are never made Ready, so
# a Deployment of such an image never becomes Available (tests of a canary that fails to start).
write_stages() {
  local kwok; kwok="$(module_dir "sigs.k8s.io/kwok@${KWOK_VERSION}")/kustomize/stage"
  {
    cat "$kwok/node/fast/node-initialize.yaml"; echo "---"
    cat "$kwok/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"; echo "---"
    awk '
      { print }
      /^    matchExpressions:/ && !done {
        print "    - key: '"'"'.spec.containers.[] | select(.image | contains(\"never-ready\")) | .name'"'"'"
        print "      operator: '"'"'DoesNotExist'"'"'"
        done = 1
      }' "$kwok/pod/fast/pod-ready.yaml"; echo "---"
    cat "$kwok/pod/fast/pod-complete.yaml"; echo "---"
    cat "$kwok/pod/fast/pod-delete.yaml"
  } >"$CLUSTER_DIR/kwok-stages.yaml"
  grep -q 'never-ready' "$CLUSTER_DIR/kwok-stages.yaml" || die "could not add the never-ready hook to pod-ready"
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
  [ -d "$TOOLS_DIR/gateway-api-crds/standard" ] || die "Gateway API CRDs missing: run 'make tools' first"
}

install_gateway_api() {
  log "installing Gateway API ${GATEWAY_API_VERSION} standard CRDs (server-side apply)"
  # httproutes.yaml is ~430 KB: client-side apply would overflow the last-applied annotation.
  kubectl_ apply --server-side --force-conflicts -f "$TOOLS_DIR/gateway-api-crds/standard/" >/dev/null
  kubectl_ wait --for condition=Established --timeout=60s \
    crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io \
    crd/gatewayclasses.gateway.networking.k8s.io >/dev/null
  # No gateway controller runs here: this class is never Accepted, and routes get no status (see README).
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

up() {
  require_tools
  if is_up; then
    log "cluster already up (kubeconfig: $KUBECONFIG_FILE)"
  else
    # A stopped or half-created cluster from an earlier run is removed first.
    "$BIN/kwokctl" delete cluster --name "$NAME" >/dev/null 2>&1 || true
    mkdir -p "$CLUSTER_DIR"
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
      --extra-args kube-scheduler=leader-elect=false \
      --kubeconfig "$KUBECONFIG_FILE" \
      --config "$CLUSTER_DIR/kwok-stages.yaml" \
      --wait 3m >"$CLUSTER_DIR/create.log" 2>&1 \
      || { tail -n 30 "$CLUSTER_DIR/create.log" >&2; die "kwokctl create cluster failed (.cluster/create.log)"; }
    "$BIN/kwokctl" scale node --name "$NAME" --replicas "$NODES" >>"$CLUSTER_DIR/create.log" 2>&1
    log "cluster up in $(( $(date +%s) - started ))s"
  fi
  install_gateway_api
  log "ready: export KUBECONFIG=$KUBECONFIG_FILE"
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

down() {
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
  *) echo "usage: $0 up|down|status|kill-apiserver|start-apiserver" >&2; exit 2 ;;
esac
