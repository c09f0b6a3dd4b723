"""The bed's Prometheus: one per data-plane instance, on loopback, scraping every podinfo process's metrics.

Prometheus runs in the root namespace (`scripts/cluster.sh up`, Debian's package, tools/versions.env),
where the pod CIDR is routed into the apps namespace, so it reaches each pod's metrics port (`apps`) at the
pod's IP. Its targets follow the pods: the supervisor rewrites `prometheus-targets.json` (file_sd, re-read
on change)
whenever a podinfo process starts or stops, one target per pod, labelled with what a PromQL check selects on:

    namespace, pod, app (app.kubernetes.io/name), track (gateway-canary/track: stable | canary), version

and, copied at scrape time, the aliases Flagger's built-in checks select on (`kubernetes_namespace`,
`kubernetes_pod_name`: its chart's Prometheus relabels to exactly these), so Flagger runs as shipped
(issue 26).

Only pod IPs of the instance's pod CIDR are ever targets (the supervisor starts nothing else), never a node.
Usage: python -m scripts.testbed.prometheus config TARGETS_FILE   (prints prometheus.yml)
       python -m scripts.testbed.prometheus port INSTANCE          (its port on 127.0.0.1)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from scripts.testbed.apps import App

BASE_PORT = 29090
"""Instance I listens on 127.0.0.1:(BASE_PORT + I)."""
SCRAPE_INTERVAL = "1s"
"""Short, so an analysis window of a few seconds already holds several samples per pod."""
JOB = "podinfo"
FLAGGER_ALIASES = {"namespace": "kubernetes_namespace", "pod": "kubernetes_pod_name"}
"""Target label -> the alias Flagger's request-success-rate and request-duration queries use."""


def port(instance: int) -> int:
    return BASE_PORT + instance


def targets(pods: Iterable[tuple[App, int]]) -> list[dict[str, Any]]:
    """file_sd entries: one per (app, metrics port), sorted so an unchanged set writes the same text."""
    entries = [
        {
            "targets": [f"{app.ip}:{metrics}"],
            "labels": {
                "namespace": app.namespace,
                "pod": app.pod,
                "app": app.app,
                "track": app.track,
                "version": app.version,
            },
        }
        for app, metrics in pods
    ]
    return sorted(entries, key=lambda e: e["targets"][0])


def write_targets(path: Path, pods: Iterable[tuple[App, int]], last: str) -> str:
    """Replace `path` atomically when the targets changed (Prometheus watches the file); returns its text."""
    text = json.dumps(targets(pods), indent=1)
    if text != last:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return text


def config(targets_file: Path) -> dict[str, Any]:
    """prometheus.yml: one job over the file_sd targets; nothing else is scraped (not even itself)."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
                "relabel_configs": [
                    {"source_labels": [label], "target_label": alias}
                    for label, alias in FLAGGER_ALIASES.items()
                ],
            }
        ],
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "config":
        print(yaml.safe_dump(config(Path(sys.argv[2])), sort_keys=False), end="")
    elif len(sys.argv) == 3 and sys.argv[1] == "port":
        print(port(int(sys.argv[2])))
    else:
        sys.exit("usage: python -m scripts.testbed.prometheus config TARGETS_FILE | port INSTANCE")
