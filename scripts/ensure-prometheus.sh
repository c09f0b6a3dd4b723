#!/usr/bin/env bash
# Prometheus and promtool at the pinned version (tools/versions.env), from the distribution's package when
# missing (as root: apt-get). The package's own service is never started: the test bed runs Prometheus as a
# process of its own per data-plane instance (scripts/cluster.sh), on loopback.
# Usage: scripts/ensure-prometheus.sh        (a no-op when the pinned version is installed)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

installed() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null \
    && [[ "$(prometheus --version 2>&1)" =~ version\ ${PROMETHEUS_VERSION//./\\.}[+\ ] ]]
}

installed && exit 0
[ "$(id -u)" = 0 ] || die "prometheus ${PROMETHEUS_VERSION} is missing: run as root, or install Debian's prometheus=${PROMETHEUS_DEB_VERSION}"
command -v apt-get >/dev/null || die "prometheus ${PROMETHEUS_VERSION} is missing and there is no apt-get to install it"
log "installing prometheus ${PROMETHEUS_DEB_VERSION} (Debian package, service not started)"
# invoke-rc.d asks policy-rc.d; exit 101 = "do not start services" (only while installing, when there is none).
policy=/usr/sbin/policy-rc.d created=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
fi
trap '[ -z "$created" ] || rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "prometheus=${PROMETHEUS_DEB_VERSION}" >/dev/null 2>&1 \
  || { apt-get update >/dev/null 2>&1 \
       && apt-get install -y --no-install-recommends "prometheus=${PROMETHEUS_DEB_VERSION}" >/dev/null; } \
  || die "apt-get install prometheus=${PROMETHEUS_DEB_VERSION} failed"
installed || die "prometheus installed but not version ${PROMETHEUS_VERSION}: $(prometheus --version 2>&1 | head -1)"
log "prometheus $(prometheus --version 2>&1 | head -1)"
