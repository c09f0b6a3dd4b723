"""Small JSON documents the CLI keeps between runs so that `canary rollback` does not redo work it can
recognise as done (canary.ops.files.yaml_files: parses of YAML files; canary.ops.fast.write: the program's
route at
canaryWeight 0). Each document carries what it was made from, and its user compares that before trusting it.

They live in $CANARY_CACHE_DIR, else $XDG_CACHE_HOME/gateway-canary, else ~/.cache/gateway-canary (folders
0700, files 0600, each written whole and renamed into place). One that cannot be read is not there; one that
cannot be written is not kept: the work is then simply done again.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = (
    False  # not typing's: loaded before the fast rollback's connection opens (canary.ops.kube.https)
)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def cache_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("CANARY_CACHE_DIR"):
        return env["CANARY_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gateway-canary")


def _path(kind: str, name: str, environ: Mapping[str, str] | None) -> str:
    return os.path.join(cache_dir(environ), kind, name.replace("%", "%25").replace(os.sep, "%2F") + ".json")


def recall(kind: str, name: str, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The document kept as `name` among `kind`, or None."""
    try:
        with open(_path(kind, name, environ), encoding="utf-8") as stream:
            doc = json.load(stream)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def find(
    kind: str, name: str, field: str, value: object, environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The newest entry kept as `name` among `kind` (add) whose `field` is `value`, or None."""
    for entry in _entries(kind, name, environ):
        if entry.get(field) == value:
            return entry
    return None


def add(
    kind: str, name: str, entry: Mapping[str, Any], limit: int, environ: Mapping[str, str] | None = None
) -> bool:
    """Keep `entry` first among the entries kept as `name`, with at most `limit` of them; whether it was
    kept (keep's rule)."""
    entries = [dict(entry), *_entries(kind, name, environ)][:limit]
    return keep(kind, name, {"entries": entries}, environ)


def _entries(kind: str, name: str, environ: Mapping[str, str] | None) -> list[dict[str, Any]]:
    found = (recall(kind, name, environ) or {}).get("entries")
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def keep(kind: str, name: str, doc: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> bool:
    """Keep `doc` as `name` among `kind`, only if JSON gives it back equal (no dates, NaN or non-string
    keys); whether it was kept."""
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError):
        return False
    if json.loads(text) != doc:
        return False
    path = _path(kind, name, environ)
    partial = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(partial, path)
    except OSError:
        if os.path.exists(partial):
            os.unlink(partial)
        return False
    return True
