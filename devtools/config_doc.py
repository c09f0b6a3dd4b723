"""The configuration reference's key table, rendered from Pulumi.yaml (the one place a default lives).

docs/configuration.md carries this table between two marker lines; tests/unit/test_docs.py fails when it
differs from Pulumi.yaml, and `python -m devtools.config_doc` rewrites it in place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "configuration.md"
BEGIN = "<!-- config keys: generated from Pulumi.yaml by `python -m devtools.config_doc` -->"
END = "<!-- end of config keys -->"


def key_table(project: dict[str, Any]) -> str:
    """One row per declared key: name, type, default (as JSON), description."""
    rows = ["| key | type | default | what it is |", "|---|---|---|---|"]
    for key, decl in (project.get("config") or {}).items():
        default = json.dumps(decl.get("default"), separators=(", ", ": "))
        description = " ".join(str(decl.get("description", "")).split()).replace("|", "\\|")
        rows.append(f"| `{key}` | {decl.get('type', '')} | `{default}` | {description} |")
    return "\n".join(rows)


def with_table(doc: str, table: str) -> str:
    """`doc` with the text between the markers replaced by `table` (ValueError when a marker is missing)."""
    head, begin, rest = doc.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{DOC} lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main() -> int:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    DOC.write_text(with_table(DOC.read_text(), key_table(project)))
    print(f"wrote the key table of {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
