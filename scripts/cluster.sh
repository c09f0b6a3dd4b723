#!/usr/bin/env bash
# The local Kubernetes control plane: real etcd, kube-apiserver (admission + RBAC on, so Pod Security
# Admission and authorization are real), controller-manager and scheduler, run as processes by
# `kwokctl --runtime binary`, with kwok faking nodes and making pods Running/Ready. No containers run.
#
# Usage: scripts/cluster.sh up|down|restart|status
#   up      start (a no-op when already up), install the Gateway API standard CRDs and a GatewayClass
#   down    stop and delete everything the cluster left (processes, PKI, etcd data)
#   restart stop and start every component, keeping etcd's data (fault tests use it to recover)
#   status  exit 0 when the apiserver answers
# Kubeconfig: .cluster/kubeconfig. Cluster files: .cluster/kwok/.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

NAME=gateway-canary
KUBECONFIG_FILE="$CLUSTER_DIR/kubeconfig"
export KWOK_WORKDIR="$CLUSTER_DIR/kwok"
BIN="$TOOLS_DIR/bin"
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
    log "cluster already up (kubeconfig: .cluster/kubeconfig)"
  else
    # A stopped or half-created cluster from an earlier run is removed first.
    "$BIN/kwokctl" delete cluster --name "$NAME" >/dev/null 2>&1 || true
    mkdir -p "$CLUSTER_DIR"
    write_stages
    log "starting kube-apiserver ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION} ..."
    local started; started=$(date +%s)
    # kwokctl takes the Kubernetes version (used for the components' flags) from the environment.
    KWOK_KUBE_VERSION="${KUBERNETES_VERSION}" "$BIN/kwokctl" create cluster --name "$NAME" --runtime binary \
      --etcd-binary "$BIN/etcd" \
      --kube-apiserver-binary "$BIN/kube-apiserver" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" \
      --kwok-controller-binary "$BIN/kwok" \
      --kube-admission=true --kube-authorization=true \
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

# restart: stop every component and start them again on the same etcd data (recovery after a fault test).
restart() {
  require_tools
  "$BIN/kwokctl" stop cluster --name "$NAME" >>"$CLUSTER_DIR/create.log" 2>&1 || true
  "$BIN/kwokctl" start cluster --name "$NAME" >>"$CLUSTER_DIR/create.log" 2>&1 \
    || { tail -n 30 "$CLUSTER_DIR/create.log" >&2; die "kwokctl start cluster failed"; }
  local i
  for i in $(seq 1 60); do
    is_up && { log "cluster restarted"; return 0; }
    sleep 1
  done
  die "apiserver not ready 60s after restart"
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
  restart) restart ;;
  status) is_up ;;
  *) echo "usage: $0 up|down|restart|status" >&2; exit 2 ;;
esac
