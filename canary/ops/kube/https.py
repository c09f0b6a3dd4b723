"""The kube-apiserver's HTTPS connection for the commands timed in milliseconds (the fast rollback): the
kubeconfig kubectl would read, a TLS context from it, and GET and server-side apply on one kept connection.

Each `kubectl` process costs 0.1-0.3 s of start-up before its request leaves; this client sends the same
request from the running CLI. It reads the kubeconfig kubectl would (KUBECONFIG's first file, else
~/.kube/config; its current context) and supports what a kubeconfig states inline: the server, its CA
(file or data, or insecure-skip-tls-verify), a client certificate and key (file or data), a bearer token
(or tokenFile). Anything else (exec plugins, auth providers, proxies, a KUBECONFIG merging several files)
raises Unsupported, and the caller uses kubectl, which knows them all (canary.ops.kube.direct).

`canary rollback --yes` imports this module on its first line and opens the connection in a thread
(EarlyConnection) before it imports anything else, so this module imports only what the connection needs:
socket, ssl, json and threading (about 11 ms of start-up that no Python client avoids). Not pathlib,
typing, urllib.parse or http.client (2-4 ms more before the TLS handshake could start, or for http.client
the email package's 20-30 ms): paths are strings, the server address and the query are read and written
here (server_address, query_string), and the HTTP/1.1 response is read by read_response.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading

from canary.ops.errors import ClusterUnreachable
from canary.ops.files import yaml_files
from canary.records import Record

TYPE_CHECKING = False  # typing's own constant costs its import (1.5 ms); mypy reads this one the same way
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO

    Manifest = dict[str, Any]

REQUEST_TIMEOUT = 10.0
"""Seconds each apiserver request of the CLI's quick paths (`canary status`, the fast rollback) may take: an
apiserver that does not answer is reported, not waited on (a rollback's whole point is time)."""


class Unsupported(Exception):
    """The kubeconfig needs something this client does not do; use kubectl instead."""


class Conflict(Exception):
    """The apiserver answered 409: the object changed since the resourceVersion the request carried."""


class Credentials(Record):
    """Where the apiserver is and how to authenticate, from one kubeconfig context."""

    server: str
    ca_pem: str | None = None
    insecure: bool = False
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None

    def __repr__(self) -> str:
        # The key and the token are secrets: a repr (a traceback, a test's failure) gives only their length.
        shown = f"server={self.server!r}, ca_pem={self.ca_pem!r}, insecure={self.insecure!r}"
        hidden = f"key_pem=<{len(self.key_pem or b'')} bytes>, token=<{len(self.token or '')} characters>"
        return f"Credentials({shown}, cert_pem={self.cert_pem!r}, {hidden})"


def kubeconfig_path(env: Mapping[str, str]) -> str:
    """The kubeconfig kubectl reads: KUBECONFIG (one file), else ~/.kube/config."""
    value = env.get("KUBECONFIG", "")
    files = [part for part in value.split(os.pathsep) if part]
    if len(files) > 1:
        raise Unsupported("KUBECONFIG names several files (kubectl merges them)")
    if files:
        return files[0]
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".kube", "config")


def credentials(doc: Mapping[str, Any], base: str) -> Credentials:
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
            with open(os.path.join(base, str(holder[prefix])), "rb") as stream:  # an absolute name stays
                return stream.read()
        return None

    ca = material("certificate-authority", cluster)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(str(user["tokenFile"]), encoding="utf-8") as stream:
            token = stream.read().strip()
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
        load_client_certificate(context, creds.cert_pem, creds.key_pem)
    return context


def load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load a client certificate and key held in memory: ssl reads a chain from files only. On Linux the
    PEMs go to anonymous memory files (memfd: never on a disk, gone with their descriptors, and no tempfile
    import, which a rollback's start-up would pay for: 5 ms of the fast path); elsewhere to a private
    folder removed once loaded."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds: list[int] = []
        try:
            for name, pem in (("cert.pem", cert_pem), ("key.pem", key_pem)):
                fds.append(os.memfd_create(name, os.MFD_CLOEXEC))
                with open(fds[-1], "wb", closefd=False) as memory_file:
                    memory_file.write(pem)
            context.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
        finally:
            for fd in fds:
                os.close(fd)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="canary-kube-") as folder:
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for name, pem in ((cert, cert_pem), (key, key_pem)):
            with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as stream:
                stream.write(pem)
        context.load_cert_chain(cert, key)


class ApiClient:
    """GET and server-side apply of one object path (e.g. /apis/group/v1/namespaces/ns/kind/name)."""

    def __init__(self, creds: Credentials, timeout: float) -> None:
        self._host, self._port, self._prefix = server_address(creds.server)
        self._creds = creds
        self._context = tls_context(creds)
        self._timeout = timeout
        self._conn: ssl.SSLSocket | None = None
        self._early_error: OSError | None = None
        self.where = creds.server

    @classmethod
    def from_env(cls, env: Mapping[str, str], timeout: float) -> ApiClient:
        """The client for the kubeconfig kubectl would use in `env` (raises Unsupported)."""
        path = kubeconfig_path(env)
        try:
            doc = yaml_files.load(path, env)
        except (OSError, yaml_files.YamlError) as err:
            raise Unsupported(f"cannot read the kubeconfig {path}: {err}") from err
        return cls(credentials(doc or {}, os.path.dirname(path)), timeout)

    def get(self, path: str) -> Manifest | None:
        """The object, or None when the apiserver answers 404."""
        status, body = self._send("GET", path, None, {})
        if status == 404:
            return None
        return self._object(status, body, f"GET {path}")

    def apply(self, path: str, body: Manifest, field_manager: str, force: bool) -> Manifest:
        """Server-side apply of `body` at `path` as `field_manager` (force: take over conflicting fields).
        Raises Conflict when the apiserver answers 409 (a resourceVersion precondition failed)."""
        query = query_string({"fieldManager": field_manager, **({"force": "true"} if force else {})})
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
        host = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 address, as in the URL
        lines = [f"{method} {self._prefix}{path} HTTP/1.1", f"Host: {host}:{self._port}"]
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
            # The host as bytes: a str is encoded with the idna codec by getaddrinfo and ssl, whose import
            # (with stringprep and unicodedata) costs a rollback about 0.7 ms; only a non-ASCII name needs it.
            host = self._host.encode() if self._host.isascii() else self._host.encode("idna")
            address = (host, self._port)  # getaddrinfo takes bytes; typeshed's create_connection says str
            raw = socket.create_connection(address, timeout=self._timeout)  # type: ignore[arg-type]
            try:
                self._conn = self._context.wrap_socket(raw, server_hostname=host)
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


def server_address(server: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of an apiserver address `https://host[:port][/prefix]`, as
    urllib.parse.urlsplit reads it (tests/unit/ops/kube/test_https.py holds the two to the same answers);
    raises Unsupported for anything else."""
    scheme, separator, rest = server.partition("://")
    authority, slash, path = rest.partition("/")
    host, port_text = authority, ""
    if authority.startswith("["):  # an IPv6 address
        host, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            host = ""
        port_text = after[1:]
    elif ":" in authority:
        host, _, port_text = authority.partition(":")
    plain = scheme.lower() == "https" and separator and not any(mark in rest for mark in "?#@")
    if not (plain and host and (port_text == "" or (port_text.isdigit() and 0 < int(port_text) < 65536))):
        raise Unsupported(f"the apiserver address {server!r} is not https://host[:port]")
    return host.lower(), int(port_text or 443), ("/" + path).rstrip("/") if slash else ""


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def query_string(params: Mapping[str, str]) -> str:
    """`params` as a URL query (what urllib.parse.urlencode writes, without importing it)."""

    def quoted(text: str) -> str:
        return "".join(
            chr(byte) if chr(byte) in _UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
        )

    return "&".join(f"{quoted(key)}={quoted(value)}" for key, value in params.items())


class EarlyConnection(threading.Thread):
    """An ApiClient for the kubeconfig kubectl would use in `env` (None: this process's), its HTTPS
    connection opened in the background: `canary rollback` starts one on its first line so that the TLS
    handshake (about a third of its time to the write) overlaps its imports and reading its config, lock
    and state. What fails is raised by client() (Unsupported: the kubeconfig needs kubectl) or, for the
    connection itself, by the first request."""

    def __init__(self, env: Mapping[str, str] | None, timeout: float) -> None:
        super().__init__(daemon=True)
        self.environ = dict(os.environ if env is None else env)
        self.timeout = timeout
        self._client: ApiClient | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.start()

    def run(self) -> None:
        try:
            client = ApiClient.from_env(self.environ, self.timeout)
            client.connect()
        except BaseException as err:  # handed to the thread that asks
            self._error = err
            return
        with self._lock:
            self._client, closed = client, self._closed
        if closed:
            client.close()

    def client(self) -> ApiClient:
        self.join()
        if self._error is not None:
            raise self._error
        assert self._client is not None
        return self._client

    def close(self) -> None:
        """Close the connection once the fast path is done with it, used or not, without waiting for one
        still being opened (that one closes itself when it is)."""
        with self._lock:
            self._closed, client = True, self._client
        if client is not None:
            client.close()
