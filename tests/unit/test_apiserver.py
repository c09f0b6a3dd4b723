"""canary.ops.apiserver: which kubeconfigs the direct client reads, and which it leaves to kubectl."""

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from canary.ops.apiserver import (
    ApiClient,
    Credentials,
    Unsupported,
    credentials,
    kubeconfig_path,
    object_path,
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
    assert credentials(doc, tmp_path) == Credentials(
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
    creds = credentials(doc, tmp_path)
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
        credentials(kubeconfig(user, cluster), Path("/"))


def test_a_missing_context_and_a_plain_http_server_are_unsupported() -> None:
    with pytest.raises(Unsupported, match="current-context"):
        credentials({**kubeconfig({}), "current-context": ""}, Path("/"))
    with pytest.raises(Unsupported, match="no context 'gone'"):
        credentials({**kubeconfig({}), "current-context": "gone"}, Path("/"))
    with pytest.raises(Unsupported, match="not https"):
        ApiClient(Credentials(server="http://127.0.0.1:8080"), timeout=1.0)


def test_the_kubeconfig_is_kubectls(tmp_path: Path) -> None:
    assert kubeconfig_path({"KUBECONFIG": "/k/config"}) == Path("/k/config")
    assert kubeconfig_path({"HOME": str(tmp_path)}) == tmp_path / ".kube" / "config"
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

    from canary.ops.apiserver import DirectReader, EarlyConnection

    doc = kubeconfig(
        {"token": "t"}, {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}
    )
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(doc))
    reader = EarlyConnection({"KUBECONFIG": str(tmp_path / "kubeconfig")}, 2.0).reader()
    assert isinstance(reader, DirectReader)
    assert reader.client.where.startswith("https://127.0.0.1:")


def test_closing_an_early_connection_does_not_wait_for_one_being_opened(tmp_path: Path) -> None:
    """A listener that never answers the TLS handshake: close() returns at once (the rollback's `pulumi up`
    path must not wait for a connection it will not use) and the connection, once its attempt ends, leaves
    nothing open."""
    import socket
    import time

    import yaml

    from canary.ops.apiserver import EarlyConnection

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
