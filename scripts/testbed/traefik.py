"""Traefik, the bed's second Gateway API implementation (issue 25): its command line.

One Traefik process per bed instance serves every Gateway of every GatewayClass whose controllerName is
CONTROLLER (the bed applies one, `traefik`): its data plane runs in-process, so there is no per-Gateway
process as with Envoy Gateway. `scripts/cluster.sh up` starts it in the namespace the supervisor made for it
(`plan.Plan.traefik_netns`, `net.setup_traefik`), with the kubeconfig the supervisor wrote for that namespace.

- A Gateway listener binds to the entryPoint whose address ends in `:<its port>`
  (pkg/provider/kubernetes/gateway/kubernetes.go, entryPointName); the only entryPoint is ENTRYPOINT on the
  bed's Traefik address, port PORT, so a `traefik` Gateway's HTTP listeners must use port 80 (any other port:
  the listener is not Accepted, reason PortUnavailable).
- Gateways get their status address only from `statusAddress.ip` (never from a Service): the same address.
- Traefik calls home unless told not to (the version check dials out 10 minutes after start): both off.
- No `--ping` and no API: either would add an entryPoint `traefik` on :8080.

Usage: python -m scripts.testbed.traefik command BINARY ADDRESS ACCESS_LOG   (one argument per line)
"""

from __future__ import annotations

import sys

CLASS = "traefik"
CONTROLLER = "traefik.io/gateway-controller"
ENTRYPOINT = "web"
PORT = 80


def command(binary: str, address: str, access_log: str) -> list[str]:
    """Traefik's command line: the Kubernetes Gateway provider only, one entryPoint on `address`:80, that
    address as every Gateway's status address, nothing dialled out, an access log at `access_log`."""
    return [
        binary,
        f"--entryPoints.{ENTRYPOINT}.address={address}:{PORT}",
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.statusAddress.ip={address}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        "--log.noColor=true",
        "--accessLog=true",
        f"--accessLog.filePath={access_log}",
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != "command":
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    print("\n".join(command(*argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
