"""canary.ops.kube.https: which kubeconfigs the direct client reads (and which it leaves to kubectl), its
requests and responses, the connection opened early, and what it imports."""

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from canary.ops.kube.direct import object_path
from canary.ops.kube.https import (
    ApiClient,
    Credentials,
    Unsupported,
    credentials,
    kubeconfig_path,
    read_response,
)


def kubeconfig(user: dict[str, Any], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "current-context": "ctx",
        "contexts": [
            {"name": "other", "context": {"cluster": "x", "user": "x"}},
            {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
        ],
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
    }


def test_file_material_is_read_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("CA PEM")
    (tmp_path / "admin.crt").write_bytes(b"CERT PEM")
    (tmp_path / "admin.key").write_bytes(b"KEY PEM")
    doc = kubeconfig(
        {"client-certificate": "admin.crt", "client-key": str(tmp_path / "admin.key")},
        {"certificate-authority": "ca.crt"},
    )
    assert credentials(doc, str(tmp_path)) == Credentials(
        server="https://127.0.0.1:6443", ca_pem="CA PEM", cert_pem=b"CERT PEM", key_pem=b"KEY PEM"
    )


def test_inline_data_and_a_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    doc = kubeconfig(
        {"tokenFile": str(tmp_path / "token")},
        {
            "certificate-authority-data": base64.b64encode(b"CA PEM").decode(),
            "insecure-skip-tls-verify": True,
        },
    )
    creds = credentials(doc, str(tmp_path))
    assert (creds.ca_pem, creds.token, creds.insecure, creds.cert_pem) == ("CA PEM", "s3cret", True, None)


@pytest.mark.parametrize(
    ("user", "cluster", "reason"),
    [
        ({"exec": {"command": "aws"}}, {}, "exec"),
        ({"auth-provider": {"name": "oidc"}}, {}, "auth-provider"),
        ({"username": "admin", "password": "x"}, {}, "username"),
        ({"token": "t"}, {"proxy-url": "http://proxy:3128"}, "proxy-url"),
    ],
)
def test_what_only_kubectl_does_is_unsupported(
    user: dict[str, Any], cluster: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Unsupported, match=reason):
        credentials(kubeconfig(user, cluster), "/")


def test_a_missing_context_and_a_plain_http_server_are_unsupported() -> None:
    with pytest.raises(Unsupported, match="current-context"):
        credentials({**kubeconfig({}), "current-context": ""}, "/")
    with pytest.raises(Unsupported, match="no context 'gone'"):
        credentials({**kubeconfig({}), "current-context": "gone"}, "/")
    with pytest.raises(Unsupported, match="not https"):
        ApiClient(Credentials(server="http://127.0.0.1:8080"), timeout=1.0)


def test_the_kubeconfig_is_kubectls(tmp_path: Path) -> None:
    assert kubeconfig_path({"KUBECONFIG": "/k/config"}) == "/k/config"
    assert kubeconfig_path({"HOME": str(tmp_path)}) == str(tmp_path / ".kube" / "config")
    with pytest.raises(Unsupported, match="several files"):
        kubeconfig_path({"KUBECONFIG": "/a:/b"})


def test_object_paths() -> None:
    assert object_path("gateway.networking.k8s.io/v1", "httproutes", "ns", "web") == (
        "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/web"
    )


def test_responses_by_length_by_chunks_and_until_close() -> None:
    sized = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": true}'
    assert read_response(io.BytesIO(sized)) == (200, b'{"a": true}', True)
    chunked = (
        b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b'4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    )
    assert read_response(io.BytesIO(chunked)) == (409, b'{"a": 1}', False)
    assert read_response(io.BytesIO(b"HTTP/1.1 404 Not Found\r\n\r\ngone")) == (404, b"gone", False)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not an HTTP/1.1 response"),
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP/1.1 response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "inside the response headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "5 of 10 body bytes"),
    ],
)
def test_a_broken_response_is_an_error(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        read_response(io.BytesIO(raw))


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_connection_opened_early_that_fails_is_reported_once_by_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ApiClient.connect (EarlyConnection's, in the background) keeps a refused connection for the first
    request to raise, as ClusterUnreachable with that request's own message; the next request connects
    again."""
    import socket

    from canary.ops.errors import ClusterUnreachable

    client = ApiClient(Credentials(f"https://127.0.0.1:{_closed_port()}", insecure=True, token="t"), 2.0)
    dials: list[object] = []
    real = socket.create_connection

    def dial(*args: Any, **kwargs: Any) -> Any:
        dials.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", dial)
    client.connect()
    assert len(dials) == 1
    for expected_dials in (1, 2):
        with pytest.raises(ClusterUnreachable, match="did not answer GET"):
            client.get(object_path("gateway.networking.k8s.io/v1", "httproutes", "shop", "web"))
        assert len(dials) == expected_dials


def test_the_early_connection_reads_the_kubeconfig_kubectl_would_use(tmp_path: Path) -> None:
    import yaml

    from canary.ops.kube.direct import DirectReader, reader_over
    from canary.ops.kube.https import EarlyConnection

    doc = kubeconfig(
        {"token": "t"}, {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}
    )
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    reader = reader_over(EarlyConnection({"KUBECONFIG": str(tmp_path / "kubeconfig")}, 2.0))
    assert isinstance(reader, DirectReader)
    assert reader.client.where.startswith("https://127.0.0.1:")


def test_closing_an_early_connection_does_not_wait_for_one_being_opened(tmp_path: Path) -> None:
    """A listener that never answers the TLS handshake: close() returns at once (the rollback's `pulumi up`
    path must not wait for a connection it will not use) and the connection, once its attempt ends, leaves
    nothing open."""
    import socket
    import time

    import yaml

    from canary.ops.kube.https import EarlyConnection

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        server = f"https://127.0.0.1:{silent.getsockname()[1]}"
        doc = kubeconfig({"token": "t"}, {"server": server, "insecure-skip-tls-verify": True})
        (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
        connection = EarlyConnection({"KUBECONFIG": str(tmp_path / "kubeconfig")}, 1.0)
        time.sleep(0.1)  # connecting: the TCP connection is accepted by the backlog, the handshake hangs
        started = time.monotonic()
        connection.close()
        assert time.monotonic() - started < 0.5
        connection.join(timeout=10)
        assert not connection.is_alive()


def _self_signed(folder: Path) -> tuple[bytes, bytes]:
    """A client certificate and its key, made by openssl in `folder` (what a kubeconfig's inline data
    decodes to)."""
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make a client certificate for this test")
    folder.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=test",
        "-days",
        "1",
    ]
    subprocess.run(
        ["openssl", *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert.read_bytes(), key.read_bytes()


@pytest.mark.parametrize("memory_files", [True, False], ids=["memfd", "private-folder"])
def test_an_inline_client_certificate_is_loaded_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_files: bool
) -> None:
    import os
    import ssl
    import tempfile

    from canary.ops.kube.https import load_client_certificate

    cert, key = _self_signed(tmp_path / "made")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folders: list[str] = []
    real_folder = tempfile.TemporaryDirectory

    def spied_folder(**kwargs: Any) -> tempfile.TemporaryDirectory[str]:
        folder = real_folder(**kwargs)
        folders.append(folder.name)
        return folder

    monkeypatch.setattr(tempfile, "TemporaryDirectory", spied_folder)
    if not memory_files:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    descriptors = len(os.listdir("/proc/self/fd"))

    load_client_certificate(ssl.create_default_context(), cert, key)

    assert [Path(name).parent for name in folders] == ([] if memory_files else [scratch])
    assert list(scratch.iterdir()) == []
    assert len(os.listdir("/proc/self/fd")) == descriptors
    other_key = _self_signed(tmp_path / "other")[1]
    with pytest.raises(ssl.SSLError):  # the key is really read: one of another certificate is refused
        load_client_certificate(ssl.create_default_context(), cert, other_key)
    assert list(scratch.iterdir()) == []


CONNECT_AND_LIST = """
import socket, ssl, sys, threading
from canary.ops.kube.https import ApiClient, Credentials

cert_file, key_file = sys.argv[1], sys.argv[2]
server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server.load_cert_chain(cert_file, key_file)
server.verify_mode = ssl.CERT_REQUIRED  # the client's certificate (the same self-signed one) is required
server.load_verify_locations(cert_file)
listener = socket.create_server(("127.0.0.1", 0))
seen = []

def serve():
    conn, _ = listener.accept()
    with server.wrap_socket(conn, server_side=True) as tls:
        seen.append(tls.getpeercert()["subject"])

thread = threading.Thread(target=serve)
thread.start()
pem = open(cert_file, "rb").read()
creds = Credentials(
    server=f"https://127.0.0.1:{listener.getsockname()[1]}", ca_pem=pem.decode(), insecure=True,
    cert_pem=pem, key_pem=open(key_file, "rb").read(),
)
client = ApiClient(creds, timeout=10)
client.connect()
thread.join(10)
client.close()
listener.close()
print(seen, sorted(m for m in sys.modules if m in ("tempfile", "encodings.idna", "shutil", "random")))
"""


def test_a_connection_with_inline_credentials_presents_them_without_tempfile_or_idna(tmp_path: Path) -> None:
    """A real TLS handshake on loopback with a kubeconfig's inline client certificate: the server sees it,
    and neither tempfile (memory files instead) nor the idna codec (the host sent as bytes) was imported,
    which the fast rollback's start-up would pay for."""
    import subprocess
    import sys

    _self_signed(tmp_path / "made")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CONNECT_AND_LIST,
            str(tmp_path / "made/cert.pem"),
            str(tmp_path / "made/key.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[((('commonName', 'test'),),)] []", proc.stdout


@pytest.mark.parametrize(
    "server",
    [
        "https://127.0.0.1:6443",
        "https://127.0.0.1:6443/",
        "HTTPS://Api.Example.COM",
        "https://api.example.com:443/prefix/k8s/",
        "https://[::1]:6443",
        "https://[fd00::1]/base",
        "https://host:",
    ],
)
def test_a_server_address_is_read_as_urlsplit_reads_it(server: str) -> None:
    from urllib.parse import urlsplit

    from canary.ops.kube.https import server_address

    parts = urlsplit(server)
    assert server_address(server) == (parts.hostname, parts.port or 443, parts.path.rstrip("/"))


@pytest.mark.parametrize(
    "server",
    [
        "http://127.0.0.1:6443",
        "127.0.0.1:6443",
        "https://",
        "https://:6443",
        "https://h:port",
        "https://h:0",
        "https://h:70000",
        "https://[::1",
        "https://[::1]x",
        "https://u@h",
        "https://h/?q=1",
        "https://h#f",
    ],
)
def test_other_server_addresses_are_unsupported(server: str) -> None:
    from canary.ops.kube.https import server_address

    with pytest.raises(Unsupported, match="is not https://host"):
        server_address(server)


def test_a_query_string_is_what_urlencode_writes() -> None:
    from urllib.parse import parse_qsl, urlencode

    from canary.ops.kube.https import query_string

    params = {"fieldManager": "pulumi-kubernetes-1a2b_c.d~e", "force": "true"}
    assert query_string(params) == urlencode(params)
    odd = {"field Manager": "a/b&c=d é+"}
    assert parse_qsl(query_string(odd)) == list(odd.items())


def test_credentials_do_not_show_their_secrets() -> None:
    creds = Credentials(server="https://h", cert_pem=b"CERT", key_pem=b"PRIVATE KEY", token="s3cret")
    assert "PRIVATE" not in repr(creds) and "s3cret" not in repr(creds) and "CERT" in repr(creds)
    assert creds == Credentials(server="https://h", cert_pem=b"CERT", key_pem=b"PRIVATE KEY", token="s3cret")
    assert creds != Credentials(server="https://h", cert_pem=b"CERT", key_pem=b"OTHER", token="s3cret")
