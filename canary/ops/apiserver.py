"""A direct HTTPS client of the kube-apiserver, for the commands timed in milliseconds (the fast rollback).

Each `kubectl` process costs 0.1-0.3 s of start-up before its request leaves; this client sends the same
request from the running CLI. It reads the kubeconfig kubectl would (KUBECONFIG's first file, else
~/.kube/config; its current context) and supports what a kubeconfig states inline: the server, its CA
(file or data, or insecure-skip-tls-verify), a client certificate and key (file or data), a bearer token
(or tokenFile). Anything else (exec plugins, auth providers, proxies, a KUBECONFIG merging several files)
raises Unsupported, and the caller uses kubectl, which knows them all.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlencode, urlsplit

from canary.gateway_api import API_VERSION, ROUTE_PLURAL, ROUTE_RESOURCE
from canary.ops.errors import ClusterUnreachable
from canary.ops.kube import LiveReader

Manifest = dict[str, Any]
REQUEST_TIMEOUT = 10.0
"""Seconds each apiserver request of the CLI's quick paths (`canary status`, the fast rollback) may take: an
apiserver that does not answer is reported, not waited on (a rollback's whole point is time)."""


class Unsupported(Exception):
    """The kubeconfig needs something this client does not do; use kubectl instead."""


class Conflict(Exception):
    """The apiserver answered 409: the object changed since the resourceVersion the request carried."""


class Credentials(NamedTuple):
    """Where the apiserver is and how to authenticate, from one kubeconfig context."""

    server: str
    ca_pem: str | None = None
    insecure: bool = False
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None


def kubeconfig_path(env: Mapping[str, str]) -> Path:
    """The kubeconfig kubectl reads: KUBECONFIG (one file), else ~/.kube/config."""
    value = env.get("KUBECONFIG", "")
    files = [part for part in value.split(os.pathsep) if part]
    if len(files) > 1:
        raise Unsupported("KUBECONFIG names several files (kubectl merges them)")
    if files:
        return Path(files[0])
    return Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"


def credentials(doc: Mapping[str, Any], base: Path) -> Credentials:
    """The current context's cluster and user of a parsed kubeconfig (`base`: its folder, for relative
    file names, as kubectl resolves them)."""

    def named(section: str, name: str) -> dict[str, Any]:
        for item in doc.get(section) or []:
            if item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        raise Unsupported(f"the kubeconfig has no {section[:-1]} {name!r}")

    current = doc.get("current-context")
    if not current:
        raise Unsupported("the kubeconfig has no current-context")
    context = named("contexts", str(current))
    cluster = named("clusters", str(context.get("cluster")))
    user = named("users", str(context.get("user"))) if context.get("user") else {}
    for key in ("exec", "auth-provider", "username", "impersonate", "as"):
        if user.get(key):
            raise Unsupported(f"the kubeconfig user uses {key}")
    if cluster.get("proxy-url") or cluster.get("tls-server-name"):
        raise Unsupported("the kubeconfig cluster sets proxy-url or tls-server-name")

    def material(prefix: str, holder: Mapping[str, Any]) -> bytes | None:
        if holder.get(f"{prefix}-data"):
            return base64.b64decode(str(holder[f"{prefix}-data"]))
        if holder.get(prefix):
            path = Path(str(holder[prefix]))
            return (path if path.is_absolute() else base / path).read_bytes()
        return None

    ca = material("certificate-authority", cluster)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(user["tokenFile"])).read_text().strip()
    return Credentials(
        server=str(cluster.get("server", "")),
        ca_pem=None if ca is None else ca.decode(),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_pem=material("client-certificate", user),
        key_pem=material("client-key", user),
        token=None if not token else str(token),
    )


def tls_context(creds: Credentials) -> ssl.SSLContext:
    """An SSL context that trusts the kubeconfig's CA and presents its client certificate."""
    context = (
        ssl.create_default_context(cadata=creds.ca_pem) if creds.ca_pem else ssl.create_default_context()
    )
    if creds.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if creds.cert_pem and creds.key_pem:
        # ssl loads a certificate chain from files only: a private folder, gone when loaded. (tempfile
        # is imported here, for the inline kind of kubeconfig only: start-up counts in a rollback.)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="canary-kube-") as folder:
            cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert.write_bytes(creds.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(creds.key_pem)
            context.load_cert_chain(cert, key)
    return context


class ApiClient:
    """GET and server-side apply of one object path (e.g. /apis/group/v1/namespaces/ns/kind/name)."""

    def __init__(self, creds: Credentials, timeout: float) -> None:
        parts = urlsplit(creds.server)
        if parts.scheme != "https" or not parts.hostname:
            raise Unsupported(f"the apiserver address {creds.server!r} is not https://host[:port]")
        self._host, self._port, self._prefix = parts.hostname, parts.port or 443, parts.path.rstrip("/")
        self._creds = creds
        self._context = tls_context(creds)
        self._timeout = timeout
        self._conn: ssl.SSLSocket | None = None
        self._early_error: OSError | None = None
        self.where = creds.server

    @classmethod
    def from_env(cls, env: Mapping[str, str], timeout: float) -> ApiClient:
        """The client for the kubeconfig kubectl would use in `env` (raises Unsupported)."""
        from canary.ops import yaml_files

        path = kubeconfig_path(env)
        try:
            doc = yaml_files.load(path, env)
        except (OSError, yaml_files.YamlError) as err:
            raise Unsupported(f"cannot read the kubeconfig {path}: {err}") from err
        return cls(credentials(doc or {}, path.parent), timeout)

    def get(self, path: str) -> Manifest | None:
        """The object, or None when the apiserver answers 404."""
        status, body = self._send("GET", path, None, {})
        if status == 404:
            return None
        return self._object(status, body, f"GET {path}")

    def apply(self, path: str, body: Manifest, field_manager: str, force: bool) -> Manifest:
        """Server-side apply of `body` at `path` as `field_manager` (force: take over conflicting fields).
        Raises Conflict when the apiserver answers 409 (a resourceVersion precondition failed)."""
        query = urlencode({"fieldManager": field_manager, **({"force": "true"} if force else {})})
        status, text = self._send(
            "PATCH",
            f"{path}?{query}",
            json.dumps(body).encode(),
            {"Content-Type": "application/apply-patch+yaml"},
        )
        if status == 409:
            raise Conflict(_message(text))
        return self._object(status, text, f"apply {path}")

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request on the client's connection (kept open between requests: a second TLS handshake
        would cost as much as the request; opened again if the apiserver closed it)."""
        lines = [f"{method} {self._prefix}{path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += ["Accept: application/json", "User-Agent: gateway-canary"]
        if self._creds.token:
            lines.append(f"Authorization: Bearer {self._creds.token}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(data or b'')}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b"")
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._connect()
                conn.sendall(request)
                with conn.makefile("rb") as stream:
                    status, body, keep = read_response(stream)
                if not keep:
                    self.close()
                return status, body
            except (OSError, ValueError) as err:
                self.close()
                # Only a read is sent again, and only on a kept connection the apiserver may have closed:
                # a write may have been applied before the connection dropped.
                if attempt == 1 and reused and method == "GET":
                    continue
                raise ClusterUnreachable(
                    f"the apiserver at {self.where} did not answer {method} ({err})"
                ) from err
        raise AssertionError("unreachable")

    def connect(self) -> None:
        """Open the connection now (TCP and the TLS handshake), for requests to come. A failure is kept
        and raised by the first request, as if it had happened there (so it is reported once, its way)."""
        try:
            self._connect()
        except OSError as err:
            self._early_error = err

    def _connect(self) -> ssl.SSLSocket:
        if self._early_error is not None:
            error, self._early_error = self._early_error, None
            raise error
        if self._conn is None:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
            try:
                self._conn = self._context.wrap_socket(raw, server_hostname=self._host)
            except BaseException:
                raw.close()
                raise
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _object(self, status: int, body: bytes, what: str) -> Manifest:
        if status >= 300:
            raise ClusterUnreachable(
                f"the apiserver at {self.where} refused {what}: {status} {_message(body)}"
            )
        result: Manifest = json.loads(body)
        return result


def read_response(stream: BinaryIO) -> tuple[int, bytes, bool]:
    """An HTTP/1.1 response from `stream`: (status, body, whether the connection stays open). The body is
    read by Content-Length or chunked transfer coding (what the apiserver sends); http.client would do the
    same but imports the email package (20-30 ms of a rollback's start-up)."""
    status_line = stream.readline(65537)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.1 response: {status_line[:80]!r}")
    status = int(parts[1])
    fields: dict[str, str] = {}
    while True:
        line = stream.readline(65537)
        if not line:
            raise ValueError("the connection closed inside the response headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        fields[name.strip().lower()] = value.strip()
    keep = fields.get("connection", "").lower() != "close"
    if "chunked" in fields.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(stream.readline(65537).split(b";")[0].strip(), 16)
            if size == 0:
                while stream.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return status, b"".join(chunks), keep
            chunks.append(_read_exactly(stream, size))
            stream.readline(65537)
    if "content-length" in fields:
        return status, _read_exactly(stream, int(fields["content-length"])), keep
    return status, stream.read(), False


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ValueError(f"the connection closed after {len(data)} of {size} body bytes")
    return data


def _message(body: bytes) -> str:
    """The `message` of a Kubernetes Status body, else the body's text."""
    try:
        return str(json.loads(body).get("message"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()


def object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    """The REST path of a namespaced object (`group/version`, or `v1` for the core API)."""
    prefix = "/apis" if "/" in api_version else "/api"
    return f"{prefix}/{api_version}/namespaces/{namespace}/{plural}/{name}"


RESOURCE_PATHS = {
    ROUTE_RESOURCE: (API_VERSION, ROUTE_PLURAL),
    "deployment": ("apps/v1", "deployments"),
}
"""The kinds the direct reader serves (LiveReader's kind names -> API group/version and plural)."""


class DirectReader(LiveReader):
    """A LiveReader that asks the apiserver over its own HTTPS connection; other kinds go to kubectl."""

    def __init__(self, client: ApiClient, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.client = client

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        if kind not in RESOURCE_PATHS or namespace is None:
            return super().get(kind, name, namespace)
        try:
            return self.client.get(object_path(*RESOURCE_PATHS[kind], namespace, name))
        except ClusterUnreachable as err:
            raise ClusterUnreachable(
                f"cannot read {kind} {namespace}/{name} from the apiserver ({err}); nothing was changed"
            ) from err


class EarlyConnection(threading.Thread):
    """live_reader(env, timeout), its HTTPS connection opened in the background: `canary rollback` starts one
    on its first line so that the TLS handshake (about a third of its time to the write) overlaps reading
    its config, lock and state. What fails is raised by reader() or, for the connection, the first request."""

    def __init__(self, env: Mapping[str, str] | None, timeout: float) -> None:
        super().__init__(daemon=True)
        self._env, self._timeout = env, timeout
        self._reader: LiveReader | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.start()

    def run(self) -> None:
        try:
            reader = live_reader(self._env, self._timeout)
            if isinstance(reader, DirectReader):
                reader.client.connect()
        except BaseException as err:  # handed to the thread that asks
            self._error = err
            return
        with self._lock:
            self._reader, closed = reader, self._closed
        if closed and isinstance(reader, DirectReader):
            reader.client.close()

    def reader(self) -> LiveReader:
        self.join()
        if self._error is not None:
            raise self._error
        assert self._reader is not None
        return self._reader

    def close(self) -> None:
        """Close the connection once the fast path is done with it, used or not, without waiting for one
        still being opened (that one closes itself when it is)."""
        with self._lock:
            self._closed, reader = True, self._reader
        if isinstance(reader, DirectReader):
            reader.client.close()


def live_reader(env: Mapping[str, str] | None, timeout: float) -> LiveReader:
    """The fastest reader of the cluster kubectl would talk to in `env` (None: this process's): direct
    HTTPS, else kubectl (with the same timeout) for kubeconfigs only kubectl understands."""
    environ = dict(os.environ if env is None else env)
    try:
        return DirectReader(ApiClient.from_env(environ, timeout), environ)
    except Unsupported:
        return LiveReader(environ, request_timeout=f"{timeout:.0f}s")
