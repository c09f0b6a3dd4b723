"""A real HTTP server on 127.0.0.1 (an ephemeral port) that answers GET /version like podinfo, with knobs for
the version of each answer, failures, a delay and a slow (dripping) body. Only ever bound to loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Podinfo:
    """What the server answers, per request number (0, 1, 2, ... in arrival order)."""

    def __init__(self) -> None:
        self.version: Callable[[int], str | None] = lambda i: "6.7.0"
        self.status: Callable[[int], int] = lambda i: 200
        self.delay = 0.0
        self.drip = 0.0
        self.raw_body: bytes | None = None
        self.seen: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/version"

    def answer(self, headers: dict[str, str]) -> tuple[int, bytes]:
        with self.lock:
            index = len(self.seen)
            self.seen.append(headers)
        version = self.version(index)
        body = {"hostname": "podinfo-test", "commit": "test"}
        if version is not None:
            body["version"] = version
        return self.status(index), self.raw_body if self.raw_body is not None else json.dumps(body).encode()


def _handler(app: Podinfo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = app.answer({k.lower(): v for k, v in self.headers.items()})
            if app.delay:
                time.sleep(app.delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if app.drip:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(app.drip)
            else:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up mid-answer (timeouts are tested on purpose)


@contextmanager
def podinfo() -> Iterator[Podinfo]:
    app = Podinfo()
    server = _Server(("127.0.0.1", 0), _handler(app))
    app.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
