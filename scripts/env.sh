# The project's environment: source it (`source scripts/env.sh`) or let the Makefile do it.
# Puts the pinned toolchain first on PATH, points at the local cluster and a local file backend inside the
# checkout, and keeps Pulumi offline (no update check, no plugin download, no registry look-ups).
# Set GATEWAY_CANARY_USE_KUBECONFIG=1 to keep an existing KUBECONFIG (a real cluster) instead.
_gc_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$_gc_repo/.tools/bin:$_gc_repo/.venv/bin:$PATH"
if [ "${GATEWAY_CANARY_USE_KUBECONFIG:-0}" != 1 ]; then
  export KUBECONFIG="$_gc_repo/.cluster/kubeconfig"
fi
export PULUMI_HOME="${PULUMI_HOME:-$_gc_repo/.state/pulumi-home}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_gc_repo/.state/backend}"
# The dev stack's passphrase: local state only, never a real secret. Override it for anything shared.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-gateway-canary-local-dev}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DISABLE_REGISTRY_RESOLVE=true
# Plugins come from PULUMI_HOME (scripts/build-tools.sh installs the provider there) and the language host
# from beside the pulumi binary, never from whatever else is on PATH.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
# The CLI's remembered YAML parses (canary/ops/files/yaml_files.py) stay with the checkout's other local state.
export CANARY_CACHE_DIR="${CANARY_CACHE_DIR:-$_gc_repo/.state/canary-cache}"
mkdir -p "$_gc_repo/.state/backend" "$PULUMI_HOME"
unset _gc_repo
