"""The YAML files the CLI reads (Pulumi.yaml, Pulumi.<stack>.yaml, a kubeconfig), each parse remembered for
the file's exact text.

`canary rollback` is timed from its first line, and importing PyYAML and parsing costs it about 8 ms of the
20 ms it may spend beyond `kubectl patch`. A file whose text is byte for byte the text last parsed gets that
parse back from a JSON copy (the `json` module is loaded anyway); any other text is parsed by PyYAML (libyaml
when present) and remembered. Nothing is keyed by time or size: the remembered text itself is compared.

A parse is remembered only when JSON gives it back equal (string keys, no dates, no NaN) and the text holds no
inline credential (`client-key-data`, `token`, `password`: a kubeconfig that carries its secrets is parsed
every time rather than copied). The copies live in $CANARY_CACHE_DIR, else $XDG_CACHE_HOME/gateway-canary,
else ~/.cache/gateway-canary (folder 0700, files 0600); a copy that cannot be read or written is a parse.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any


class YamlError(ValueError):
    """A file that is not YAML (PyYAML's error, without importing PyYAML to catch it)."""


SECRET_MARKERS = ("client-key-data", "token", "password")
"""Text that may be an inline credential: such a file is never copied into the cache."""


def cache_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("CANARY_CACHE_DIR"):
        return env["CANARY_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gateway-canary")


def load(path: os.PathLike[str] | str, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed YAML document of `path` (raises OSError when it cannot be read, YamlError when it is not
    YAML)."""
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    copy = _copy_path(path, environ)
    remembered = _read_copy(copy)
    if remembered is not None and remembered.get("text") == text:
        return remembered.get("value")
    value = parse(text)
    if not any(marker in text for marker in SECRET_MARKERS):
        _write_copy(copy, text, value)
    return value


def parse(text: str) -> Any:
    """PyYAML's safe load of `text`, with libyaml when it is there (the pure-Python loader takes 15-30 ms
    for Pulumi.yaml)."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise YamlError(str(err)) from err


def _copy_path(path: os.PathLike[str] | str, environ: Mapping[str, str] | None) -> str:
    name = os.path.abspath(path).replace("%", "%25").replace(os.sep, "%2F")
    return os.path.join(cache_dir(environ), "yaml", name + ".json")


def _read_copy(copy: str) -> dict[str, Any] | None:
    try:
        with open(copy, encoding="utf-8") as stream:
            doc = json.load(stream)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _write_copy(copy: str, text: str, value: Any) -> None:
    try:
        dumped = json.dumps({"text": text, "value": value}, allow_nan=False)
    except (TypeError, ValueError):
        return  # not JSON (dates, NaN): parsed every time
    if json.loads(dumped)["value"] != value:
        return  # JSON would change it (non-string keys)
    folder = os.path.dirname(copy)
    partial = f"{copy}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(dumped)
        os.replace(partial, copy)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)
