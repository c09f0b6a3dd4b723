"""canary.ops.gates.prometheus against a real Prometheus (the pinned Debian package) on loopback: what
each kind of answer of /api/v1/query becomes. Its own private server (a temporary directory, a free port,
scraping only itself), stopped and removed after the module; no cluster needed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from canary.ops.gates.prometheus import Empty, Failure, Prometheus, Value
from tests.integration.conftest import not_run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        not_run("prometheus not found (run `make tools`: scripts/ensure-prometheus.sh)")
    where = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = where / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: self, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n"
    )
    log = (where / "log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={where / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    client = Prometheus(f"http://127.0.0.1:{port}", timeout=5)
    try:
        deadline = time.monotonic() + 30
        while client.reachable() is not None:
            assert proc.poll() is None and time.monotonic() < deadline, (where / "log").read_text()[-2000:]
            time.sleep(0.2)
        # one scrape of itself, so `up` has a sample
        while not isinstance(client.query('up{job="self"}'), Value):
            assert time.monotonic() < deadline, "Prometheus did not scrape itself"
            time.sleep(0.2)
        yield client
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        shutil.rmtree(where, ignore_errors=True)


def test_one_number(server: Prometheus) -> None:
    assert server.query("vector(42)") == Value(42.0)
    assert server.query("scalar(vector(3))") == Value(3.0)
    assert server.query('up{job="self"}') == Value(1.0)


def test_no_series_is_empty(server: Prometheus) -> None:
    assert server.query('up{job="no-such-job"}') == Empty()
    assert server.query('sum(rate(http_request_duration_seconds_count{track="canary"}[30s]))') == Empty()


def test_nan_is_a_failure(server: Prometheus) -> None:
    answer = server.query("vector(0) / vector(0)")
    assert isinstance(answer, Failure) and "NaN" in answer.reason, answer


def test_a_bad_query_is_a_failure_naming_prometheus_reason(server: Prometheus) -> None:
    answer = server.query("sum(rate(")
    assert isinstance(answer, Failure) and answer.reason.startswith("HTTP 400: bad_data:"), answer


def test_a_range_vector_is_not_one_number(server: Prometheus) -> None:
    answer = server.query('up{job="self"}[10s]')
    assert isinstance(answer, Failure) and "a matrix result" in answer.reason, answer


def test_several_series_are_not_one_number(server: Prometheus) -> None:
    answer = server.query(
        'label_replace(vector(1), "a", "1", "", "") or label_replace(vector(2), "a", "2", "", "")'
    )
    assert isinstance(answer, Failure) and "2 series" in answer.reason, answer


def test_a_fractional_timeout_is_sent_as_prometheus_accepts_it(server: Prometheus) -> None:
    assert Prometheus(server.url, timeout=1.5).query("vector(7)") == Value(7.0)


def test_nothing_listening_is_unreachable() -> None:
    answer = Prometheus(f"http://127.0.0.1:{free_port()}", timeout=2).query("vector(1)")
    assert isinstance(answer, Failure) and "unreachable" in answer.reason, answer
