# Shared helpers for the bootstrap scripts (sourced, not run).
# Paths: REPO (the checkout), TOOLS_DIR (.tools: links + logs), CACHE_ROOT (per-user build cache shared by
# every clone on this machine, so CI's fresh clone reuses what a developer built).

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR="$REPO/.tools"
CACHE_ROOT="${GATEWAY_CANARY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gateway-canary}"
# The local cluster's files. A test that breaks a cluster on purpose (tests/integration/test_outage.py) starts a
# private one elsewhere by setting GATEWAY_CANARY_CLUSTER_DIR and GATEWAY_CANARY_CLUSTER_NAME.
CLUSTER_DIR="${GATEWAY_CANARY_CLUSTER_DIR:-$REPO/.cluster}"
CLUSTER_NAME="${GATEWAY_CANARY_CLUSTER_NAME:-gateway-canary}"
# shellcheck source=../tools/versions.env
source "$REPO/tools/versions.env"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# module_dir MODULE@VERSION: the unpacked module in Go's module cache (downloads it if needed).
module_dir() {
  (cd / && GOFLAGS= go mod download -json "$1") | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# copy_provider_main: the provider's main package embeds schema-embed.json and terraform-mapping-embed.json,
# generated from schema.json and not shipped in the module zip. Copy the package into the wrapper and
# generate them (VERSION goes into the schema, as upstream's build does).
copy_provider_main() {
  local src dst="$REPO/tools/kubernetes-provider/cmd/pulumi-resource-kubernetes"
  src="$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@${PULUMI_KUBERNETES_PROVIDER_MODULE}")/cmd/pulumi-resource-kubernetes"
  [ -d "$src" ] || die "provider main package not found in the module cache"
  rm -rf "$dst" && mkdir -p "$dst"
  cp "$src"/*.go "$src"/*.json "$dst"/ && chmod -R u+w "$dst"
  (cd "$dst" && VERSION="${PULUMI_KUBERNETES_VERSION}" go run generate.go)
}
