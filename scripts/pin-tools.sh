#!/usr/bin/env bash
# Regenerates the wrapper modules' go.mod/go.sum under tools/ from tools/versions.env.
#
# Usage: scripts/pin-tools.sh [pulumi|pulumi-language-python|kubernetes-provider|kubernetes|etcd|kwok|
#        envoy-gateway|podinfo|pulumi-yaml|traefik|flagger|argo-rollouts|argo-gatewayapi-plugin ...]
#
# Why wrappers: `go install pkg@version` refuses modules whose go.mod has replace directives (Pulumi,
# Kubernetes, the Kubernetes provider all have them). Each tool gets its own small module so one tool's
# k8s.io versions never pin another's. Run this after changing tools/versions.env and commit the result;
# scripts/build-tools.sh refuses to build when a go.mod and versions.env disagree.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

fresh() { # fresh NAME: start tools/NAME/go.mod from scratch
  mkdir -p "tools/$1"
  rm -f "tools/$1/go.mod" "tools/$1/go.sum"
  (cd "tools/$1" && go mod init "gateway-canary/tools/$1" >/dev/null 2>&1)
}

gomod_of() { # gomod_of MODULE@VERSION: path of that module's go.mod in the module cache
  go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p'
}

pin_pulumi() {
  # pkg/go.mod replaces sdk/v3 with ../sdk (require the same release instead) and swaps in a clipboard fork.
  fresh pulumi
  cd tools/pulumi
  go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
  go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@${PULUMI_VERSION}"
  go get "github.com/pulumi/pulumi/sdk/v3@${PULUMI_VERSION}"
  go mod tidy
}

pin_pulumi-language-python() {
  # Our language host (main.go in the folder), built against the same sdk/v3 release as the CLI.
  fresh pulumi-language-python
  cd tools/pulumi-language-python
  go get "github.com/pulumi/pulumi/sdk/v3@${PULUMI_VERSION}"
  go mod tidy
}

pin_kubernetes-provider() {
  # provider/go.mod replaces sdk/v4 with ../sdk: require the release's sdk/v4 tag instead, and copy the
  # provider's other (non-relative) replace directives. build-tools.sh copies the main package in, because
  # it embeds files generated from schema.json that are not in the module zip.
  fresh kubernetes-provider
  cd tools/kubernetes-provider
  local provider="github.com/pulumi/pulumi-kubernetes/provider/v4@${PULUMI_KUBERNETES_PROVIDER_MODULE}"
  local mod; mod=$(gomod_of "$provider")
  awk '/=>/ && $0 !~ /=> \.\.?\// {sub(/^replace /, ""); print $1"="$4"@"$5}' "$mod" | while read -r r; do
    go mod edit -replace "$r"
  done
  go get "$provider" "github.com/pulumi/pulumi-kubernetes/sdk/v4@v${PULUMI_KUBERNETES_VERSION}"
  copy_provider_main
  go mod tidy
}

pin_kubernetes() {
  # k8s.io/kubernetes replaces every staging module with ./staging/...: use the published v0.X.Y tags.
  fresh kubernetes
  cd tools/kubernetes
  local mod; mod=$(gomod_of "k8s.io/kubernetes@${KUBERNETES_VERSION}")
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  for m in $(awk '/=> .\/staging\// {print $1}' "$mod"); do
    go mod edit -replace "$m=$m@$staging"
  done
  local godebug; godebug=$(sed -n 's/^godebug //p' "$mod")
  [ -z "$godebug" ] || go mod edit -godebug "$godebug"
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${KUBERNETES_VERSION}" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBERNETES_VERSION}" \
    "k8s.io/kubernetes/cmd/kube-scheduler@${KUBERNETES_VERSION}" \
    "k8s.io/kubernetes/cmd/kubectl@${KUBERNETES_VERSION}"
  go mod tidy
}

pin_etcd() {
  fresh etcd
  cd tools/etcd
  go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  go mod tidy
}

pin_kwok() {
  fresh kwok
  cd tools/kwok
  go get -tool "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
  go mod tidy
}

pin_envoy-gateway() {
  # No replace directives upstream: a plain wrapper. Its build list shares k8s.io/* with the Kubernetes tools.
  fresh envoy-gateway
  cd tools/envoy-gateway
  go get -tool "github.com/envoyproxy/gateway/cmd/envoy-gateway@${ENVOY_GATEWAY_VERSION}"
  go mod tidy
}

pin_podinfo() {
  fresh podinfo
  cd tools/podinfo
  go get -tool "github.com/stefanprodan/podinfo/cmd/podinfo@${PODINFO_MODULE}"
  go mod tidy
}

pin_pulumi-yaml() {
  # Pulumi YAML's language host: upstream's server behind a small main.go of ours in the folder (it adds
  # Link, see main.go). pulumi-yaml has no replace directives; the wrapper keeps the pulumi pkg/sdk
  # versions pulumi-yaml itself requires, as upstream's release build does.
  fresh pulumi-yaml
  cd tools/pulumi-yaml
  go get "github.com/pulumi/pulumi-yaml@${PULUMI_YAML_VERSION}"
  go mod tidy
}

pin_traefik() {
  # Traefik's go.mod replaces three modules with Containous forks (module paths, not local folders: copied) and
  # excludes one tencentcloud version (ambiguous import otherwise: copied too). Only v3.6.x resolves here: v3.7.x
  # needs modules the Go module proxy reachable here refuses (tools/versions.env).
  fresh traefik
  cd tools/traefik
  local mod; mod=$(gomod_of "github.com/traefik/traefik/v3@${TRAEFIK_VERSION}")
  awk '/=>/ && $0 !~ /=> \.\.?\// {sub(/^replace /, ""); for (i = 1; $i != "=>"; i++); print $1"="$(i+1)"@"$(i+2)}' \
    "$mod" | while read -r r; do
    go mod edit -replace "$r"
  done
  awk '/^exclude / {print $2"@"$3}' "$mod" | while read -r e; do
    go mod edit -exclude "$e"
  done
  go get -tool "github.com/traefik/traefik/v3/cmd/traefik@${TRAEFIK_VERSION}"
  go mod tidy
}

pin_flagger() {
  # No replace directives upstream: a plain wrapper (a peer of the bench, `make peers-tools`).
  fresh flagger
  cd tools/flagger
  go get -tool "github.com/fluxcd/flagger/cmd/flagger@${FLAGGER_VERSION}"
  go mod tidy
}

# argo_replaces: Argo Rollouts requires every k8s.io staging module at v0.0.0 and replaces each with a published
# tag; without them the build list asks for k8s.io/kubelet@v0.0.0, which does not exist. Its other two replaces
# (go-check, a telegram fork) are not in the controller's build list: only the k8s.io lines are copied.
argo_replaces() {
  local mod; mod=$(gomod_of "github.com/argoproj/argo-rollouts@${ARGO_ROLLOUTS_VERSION}")
  awk '/=>/ && $0 ~ /k8s\.io\// && $0 !~ /=> \.\.?\// {sub(/^replace /, ""); for (i = 1; $i != "=>"; i++);
    print $1"="$(i+1)"@"$(i+2)}' "$mod" | while read -r r; do
    go mod edit -replace "$r"
  done
}

pin_argo-rollouts() {
  fresh argo-rollouts
  cd tools/argo-rollouts
  argo_replaces
  go get -tool "github.com/argoproj/argo-rollouts/cmd/rollouts-controller@${ARGO_ROLLOUTS_VERSION}"
  go mod tidy
}

pin_argo-gatewayapi-plugin() {
  # Our stand-in traffic-router plugin (main.go in the folder), against the controller's own release: the same
  # RPC types on both sides of the go-plugin connection.
  fresh argo-gatewayapi-plugin
  cd tools/argo-gatewayapi-plugin
  argo_replaces
  go get "github.com/argoproj/argo-rollouts@${ARGO_ROLLOUTS_VERSION}"
  go mod tidy
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=(pulumi pulumi-language-python kubernetes-provider kubernetes etcd kwok envoy-gateway podinfo pulumi-yaml traefik \
  flagger argo-rollouts argo-gatewayapi-plugin)
for t in "${tools[@]}"; do
  echo "== pinning $t"
  ( "pin_$t" )
done
