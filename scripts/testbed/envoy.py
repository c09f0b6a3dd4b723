"""A real Envoy for an envoy Deployment that Envoy Gateway rendered, run as a process in its own namespace.

Envoy Gateway puts the whole bootstrap into the container's args (`--config-yaml`) and keys its xDS
snapshot on `--service-cluster`. To run it outside a pod (gateway-notes.md, step 4):
- the `xds_cluster` endpoint (the `envoy-gateway` Service's DNS name) becomes Envoy Gateway's host process,
  reached at the root end of this namespace's link;
- the two SDS files it mounts from a ConfigMap at `/sds` are written here, naming the envoy client certificate
  that `envoy-gateway certgen --local` made (instead of the pod's `/certs` mount);
- `$(ENVOY_...)` placeholders (downward API env vars in the pod) become literals;
- one worker thread, and no hot restart (its shared memory would be shared by every Envoy on the machine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

XDS_PORT = 18000


def sds_files(workdir: Path, certs: Path) -> tuple[Path, Path]:
    """The SDS resources Envoy Gateway ships in its ConfigMap, with our certificate paths (same JSON shape as
    `internal/infrastructure/common/proxy_sds.go`)."""
    cert = workdir / "xds-certificate.json"
    ca = workdir / "xds-trusted-ca.json"
    secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    cert.write_text(
        json.dumps(
            {
                "resources": [
                    {
                        "@type": secret,
                        "name": "xds_certificate",
                        "tls_certificate": {
                            "certificate_chain": {"filename": str(certs / "tls.crt")},
                            "private_key": {"filename": str(certs / "tls.key")},
                        },
                    }
                ]
            }
        )
    )
    ca.write_text(
        json.dumps(
            {
                "resources": [
                    {
                        "@type": secret,
                        "name": "xds_trusted_ca",
                        "validation_context": {
                            "trusted_ca": {"filename": str(certs / "ca.crt")},
                            "match_typed_subject_alt_names": [
                                {"san_type": "DNS", "matcher": {"exact": "envoy-gateway"}}
                            ],
                        },
                    }
                ]
            }
        )
    )
    return cert, ca


def _placeholders(text: str, pod: str, namespace: str) -> str:
    for name, value in {
        "ENVOY_POD_NAME": pod,
        "ENVOY_POD_NAMESPACE": namespace,
        "ENVOY_SERVICE_ZONE": "local",
    }.items():
        text = text.replace(f"$({name})", value)
    return text


def bootstrap(config_yaml: str, xds_address: str, sds_cert: Path, sds_ca: Path) -> dict[str, Any]:
    """The rendered bootstrap with the xDS address and the SDS paths of this host."""
    config: dict[str, Any] = yaml.safe_load(config_yaml)
    found = False
    for cluster in config.get("static_resources", {}).get("clusters", []):
        if cluster.get("name") != "xds_cluster":
            continue
        found = True
        for group in cluster["load_assignment"]["endpoints"]:
            for lb in group["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"].update(address=xds_address, port_value=XDS_PORT)
        cluster["type"] = "STATIC"
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        for sds in tls.get("tls_certificate_sds_secret_configs", []):
            sds["sds_config"]["path_config_source"]["path"] = str(sds_cert)
        tls["validation_context_sds_secret_config"]["sds_config"]["path_config_source"]["path"] = str(sds_ca)
    if not found:
        raise ValueError("the rendered bootstrap has no xds_cluster")
    return config


def command(envoy: str, args: list[str], bootstrap_file: Path, pod: str, namespace: str) -> list[str]:
    """Envoy's command line: the Deployment's args without `--config-yaml` (now a file) and the flags that
    assume a container of its own."""
    out = [envoy, "-c", str(bootstrap_file)]
    rest = iter(args)
    for arg in rest:
        if arg in ("--config-yaml", "--concurrency"):
            next(rest, None)  # and its value
        elif arg != "--cpuset-threads":
            out.append(_placeholders(arg, pod, namespace))
    return [*out, "--concurrency", "1", "--disable-hot-restart"]


def write_bootstrap(
    workdir: Path, args: list[str], xds_address: str, certs: Path, pod: str, namespace: str
) -> Path:
    """Write the bootstrap (and its SDS files) for the envoy container `args` into `workdir`."""
    config_yaml = args[args.index("--config-yaml") + 1]
    cert, ca = sds_files(workdir, certs)
    config = bootstrap(_placeholders(config_yaml, pod, namespace), xds_address, cert, ca)
    target = workdir / "bootstrap.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target
