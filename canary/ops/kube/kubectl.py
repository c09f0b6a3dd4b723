"""The one way the operations side reads the apiserver: `kubectl get`, `kubectl get --watch`, JSON streams.

Objects are fetched with `kubectl` (whatever KUBECONFIG points at), which keeps the package free of a second
Kubernetes client next to the Pulumi provider; canary.route_state interprets what comes back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from canary.gateway_api import ROUTE_KIND, ROUTE_RESOURCES
from canary.ops.errors import ClusterUnreachable
from canary.route_state import RouteState, route_state

TYPE_CHECKING = False  # not typing's: see canary.records (the fast rollback's start-up)
if TYPE_CHECKING:
    from typing import Any, Protocol

    Manifest = dict[str, Any]


def json_stream(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Objects from concatenated, pretty-printed JSON documents (`kubectl get --watch -o json`)."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in lines:
        buffer += line
        while buffer.strip():
            try:
                obj, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break
            buffer = buffer.lstrip()[end:]
            if isinstance(obj, dict):
                yield obj


class LiveReader:
    """Fetches live objects with kubectl. `env` is the environment kubectl runs in (KUBECONFIG, PATH);
    `request_timeout` (kubectl's form, e.g. "10s") bounds each request, for callers that must not wait on a
    dead apiserver."""

    def __init__(
        self, env: dict[str, str] | None = None, kubectl: str = "kubectl", request_timeout: str | None = None
    ) -> None:
        self.env = env
        self._kubectl = kubectl
        self._timeout = [] if request_timeout is None else [f"--request-timeout={request_timeout}"]

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        """The live object (namespaced unless `namespace` is None), or None when it does not exist."""
        where = ["-n", namespace] if namespace else []
        import subprocess  # imported where used: `canary rollback` reads over HTTPS (canary.ops.kube.direct)

        proc = subprocess.run(
            [self._kubectl, "get", kind, name, *where, "-o", "json", *self._timeout],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise ClusterUnreachable(
                f"cannot read {kind} {namespace or '-'}/{name} from the apiserver (kubectl: "
                f"{proc.stderr.strip()}); nothing was changed"
            )
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def route(
        self, app_name: str, namespace: str, route_name: str | None = None, kind: str = ROUTE_KIND
    ) -> RouteState | None:
        """The live route (an HTTPRoute, or the `kind` the state names) as what it does with traffic."""
        route = self.get(ROUTE_RESOURCES[kind], route_name or app_name, namespace)
        return None if route is None else route_state(route, app_name)


if TYPE_CHECKING:  # for mypy only: RouteWatch is one

    class ZeroWatch(Protocol):
        """What a rollback needs of a route watch: a context that reports when the route first read 0%, and
        hands each version of the route to `on_item` as it arrives."""

        on_item: Callable[[dict[str, Any]], None] | None

        def __enter__(self) -> ZeroWatch: ...

        def __exit__(self, *_: object) -> None: ...

        def wait_for_zero(self, timeout: float) -> float | None: ...


class Watch:
    """`kubectl get KIND [NAME] -n NS --watch -o json` in the background: every object (or, with `events`,
    every watch event) seen, with the monotonic time it arrived.

    Polling after a change would measure the poll; a watch sees the apiserver's change as it happens. The
    first items are the current objects (kubectl lists before it watches), so `wait_for(...)` also answers
    for a state that already holds. The one background watch of the operations side, the tests and the bench.
    """

    def __init__(
        self,
        kind: str,
        namespace: str,
        name: str | None = None,
        *,
        events: bool = False,
        env: dict[str, str] | None = None,
        kubectl: str = "kubectl",
        on_item: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.on_item = on_item
        """Called with each item as it arrives (in the watch's thread), before waiters are woken."""
        self._changed = threading.Condition()
        argv = [kubectl, "get", kind, *([name] if name else []), "-n", namespace, "--watch", "-o", "json"]
        if events:
            argv.insert(-2, "--output-watch-events")
        import subprocess

        self._proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for obj in json_stream(self._proc.stdout):
            arrived = time.monotonic()
            if self.on_item is not None:
                self.on_item(obj)
            with self._changed:
                self.seen.append((arrived, obj))
                self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, *, after: float = 0.0
    ) -> float | None:
        """The monotonic time of the first item seen at or after `after` that satisfies `predicate`, waiting
        up to `timeout` seconds; None if none did (or the watch ended)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for when, obj in self.seen:
                    if when >= after and predicate(obj):
                        return when
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return None
                self._changed.wait(min(remaining, 0.5))

    def stop(self) -> list[tuple[float, dict[str, Any]]]:
        """End the watch; returns everything seen."""
        import subprocess

        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._thread.join(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return list(self.seen)


class RouteWatch(Watch):
    """A Watch of one HTTPRoute, read as route states."""

    def __init__(
        self,
        app_name: str,
        namespace: str,
        route_name: str,
        env: dict[str, str] | None = None,
        on_item: Callable[[dict[str, Any]], None] | None = None,
        kind: str = ROUTE_KIND,
    ) -> None:
        super().__init__(ROUTE_RESOURCES[kind], namespace, route_name, env=env, on_item=on_item)
        self._app = app_name

    def __enter__(self) -> RouteWatch:
        return self

    def state(self, obj: dict[str, Any]) -> RouteState:
        return route_state(obj, self._app)

    def wait_for_zero(self, timeout: float) -> float | None:
        """The monotonic time the route was first seen at canary 0%, waiting up to `timeout` seconds."""
        return self.wait_for(lambda obj: self.state(obj).canary_percent == 0, timeout)
