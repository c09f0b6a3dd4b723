"""A minimal client of the local apiserver (stdlib HTTPS with the kubeconfig's client certificate).

The supervisor lists a few kinds every half second; one keep-alive connection costs far less than a `kubectl`
process per list on a 2-core machine. Credentials come from `kubectl config view --raw`, so inline data and
file paths are both handled; inline data is written to files under `secrets_dir` (mode 0600).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any


class Kube:
    def __init__(self, kubectl: str, kubeconfig: str, secrets_dir: Path) -> None:
        raw = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                kubeconfig,
                "config",
                "view",
                "--raw",
                "--flatten",
                "--minify",
                "-o",
                "json",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        config = json.loads(raw)
        self.config = config
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        secrets_dir.mkdir(parents=True, exist_ok=True)

        def path_of(item: dict[str, Any], key: str) -> str | None:
            if item.get(f"{key}-data"):
                target = secrets_dir / key
                target.touch(mode=0o600)
                target.write_bytes(base64.b64decode(item[f"{key}-data"]))
                return str(target)
            value = item.get(key)
            return str(value) if value else None

        url = urllib.parse.urlsplit(cluster["server"])
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 443
        self.context = ssl.create_default_context(cafile=path_of(cluster, "certificate-authority"))
        cert, key = path_of(user, "client-certificate"), path_of(user, "client-key")
        if cert:
            self.context.load_cert_chain(cert, key)
        self.token = user.get("token")
        self._conn: http.client.HTTPSConnection | None = None

    def write_kubeconfig(self, target: Path, address: str) -> None:
        """This kubeconfig with the server at `address` (same port), verified as the original host: for a
        client in another network namespace that reaches the apiserver through a veth link."""
        config = json.loads(json.dumps(self.config))
        cluster = config["clusters"][0]["cluster"]
        cluster["tls-server-name"] = self.host
        cluster["server"] = f"https://{address}:{self.port}"
        target.touch(mode=0o600)
        target.write_text(json.dumps(config))

    def get(self, path: str) -> dict[str, Any] | None:
        """GET `path` as JSON; None on 404. One retry on a fresh connection (the apiserver may restart)."""
        return self._request("GET", path)

    def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON merge patch of the object at `path`; None on 404 (it went away meanwhile)."""
        return self._request("PATCH", path, json.dumps(patch).encode(), "application/merge-patch+json")

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> dict[str, Any] | None:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.context, timeout=20
                )
            try:
                headers = {"Accept": "application/json"}
                if content_type:
                    headers["Content-Type"] = content_type
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                self._conn.request(method, path, body=body, headers=headers)
                resp = self._conn.getresponse()
                answer = resp.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {answer[:300]!r}")
            return json.loads(answer)  # type: ignore[no-any-return]
        raise AssertionError("unreachable")

    def items(self, path: str) -> list[dict[str, Any]]:
        """The `items` of a list (empty when the kind or namespace does not exist)."""
        return list((self.get(path) or {}).get("items", []))
