"""The YAML files the CLI reads (Pulumi.yaml, Pulumi.<stack>.yaml, a kubeconfig), each parse remembered for
the file's exact text.

`canary rollback` is timed from its first line, and importing PyYAML and parsing costs it about 8 ms of the
20 ms it may spend beyond `kubectl patch`. A file whose text is byte for byte one of the last few texts
parsed (COPIES_KEPT) gets that parse back from a JSON copy (the `json` module is loaded anyway); any other
text is parsed by PyYAML (libyaml when present) and remembered. Nothing is keyed by time or size: the
remembered text itself is compared.

A parse is remembered only when JSON gives it back equal (string keys, no dates, no NaN) and the text holds no
inline credential (`client-key-data`, `token`, `password`: a kubeconfig that carries its secrets is parsed
every time rather than copied). The copies are kept by canary.ops.files.remembered, in the user's cache
folder and private to the user; one that cannot be read or written is a parse.
"""

from __future__ import annotations

import os

from canary.ops.files import remembered

TYPE_CHECKING = (
    False  # not typing's: loaded before the fast rollback's connection opens (canary.ops.kube.https)
)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class YamlError(ValueError):
    """A file that is not YAML (PyYAML's error, without importing PyYAML to catch it)."""


COPIES_KEPT = 4
"""Parses kept per file: a stack's config file alternates between a few texts during a rollout (a step's
weight, its rollback's 0)."""
SECRET_MARKERS = ("client-key-data", "token", "password")
"""Text that may be an inline credential: such a file is never copied into the cache."""


def load(path: os.PathLike[str] | str, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed YAML document of `path` (raises OSError when it cannot be read, YamlError when it is not
    YAML)."""
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    name = os.path.abspath(path)
    copy = remembered.find("yaml", name, "text", text, environ)
    if copy is not None:
        return copy.get("value")
    value = parse(text)
    if not any(marker in text for marker in SECRET_MARKERS):
        remembered.add("yaml", name, {"text": text, "value": value}, COPIES_KEPT, environ)
    return value


def parse(text: str) -> Any:
    """PyYAML's safe load of `text`, with libyaml when it is there (the pure-Python loader takes 15-30 ms
    for Pulumi.yaml)."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise YamlError(str(err)) from err
