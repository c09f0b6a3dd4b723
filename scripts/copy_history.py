"""Copy one stack's update history from a local file backend into a postgres:// backend.

`pulumi stack export` / `import` move a stack's state (its latest checkpoint) and nothing else: the DIY
backends keep history as files beside it, `.pulumi/history/<project>/<stack>/<stack>-<unixnano>.history.json`
(+ a `.checkpoint.json` copy per update; pkg/backend/diy/state.go, addToHistory), which no command copies.
Pulumi's postgres backend stores the same keys (under the database name as a folder, key_prefix) as rows of
one table (`key`, `data` = {"data": base64 of the file}; pkg/backend/diy/postgres/bucket.go), so copying
those files as rows carries history over unchanged.

    python3 scripts/copy_history.py --from .state/backend --project gateway-canary --stack dev \
        --to 'postgres://user@host:5432/db?sslmode=disable[&table=pulumi_state]'

Rows that already exist are left alone (a second run copies nothing). Runs `psql` (the PostgreSQL client);
the URL's `table` parameter (default pulumi_state, as Pulumi's) names the table. Stdlib only, so a team can
run it anywhere psql is.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_TABLE = "pulumi_state"
ATTRS = ".attrs"
"""gocloud's fileblob keeps each file's attributes in `<file>.attrs`; other stores keep them elsewhere."""
HISTORY_SUFFIXES = (".history.json", ".history.json.gz", ".history.json.zst")


def history_files(backend: Path, project: str, stack: str) -> list[tuple[str, bytes]]:
    """(key, content) of every file of the stack's history folder, keys as the backend names them (not the
    `.attrs` files beside them: the file store's own metadata, no part of the state)."""
    folder = backend / ".pulumi" / "history" / project / stack
    if not folder.is_dir():
        raise SystemExit(f"copy_history: no history for stack {stack} of project {project} in {folder}")
    return [
        (path.relative_to(backend).as_posix(), path.read_bytes())
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.endswith(ATTRS)
    ]


def key_prefix(url: str) -> str:
    """What the backend puts before every key: Pulumi's DIY backends take the URL's path as a folder inside
    the bucket (pkg/backend/diy/backend.go, blob.PrefixedBucket), and in a postgres:// URL that path is the
    database name, so `postgres://h/pulumi` keys are `pulumi/.pulumi/...`."""
    folder = urlsplit(url).path.strip("/")
    return f"{folder}/" if folder else ""


def split_url(url: str) -> tuple[str, str]:
    """(the URL for psql, the table): Pulumi's `table` parameter is not a libpq one."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"copy_history: --to {url!r} is not a postgres:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = next((value for key, value in query if key == "table"), DEFAULT_TABLE)
    if not table.replace("_", "").replace(".", "").isalnum():
        raise SystemExit(f"copy_history: table {table!r} is not a plain table name")
    rest = urlencode([(key, value) for key, value in query if key != "table"])
    return urlunsplit(parts._replace(query=rest)), table


def insert_sql(table: str, files: list[tuple[str, bytes]]) -> str:
    """One transaction inserting every file as a row the way Pulumi writes it."""

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    rows = ",\n".join(
        f"({literal(key)}, {literal(json.dumps({'data': base64.b64encode(data).decode()}))}::json)"
        for key, data in files
    )
    return f"BEGIN;\nINSERT INTO {table} (key, data) VALUES\n{rows}\nON CONFLICT (key) DO NOTHING;\nCOMMIT;\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="backend", type=Path, required=True, help="the file backend's folder")
    parser.add_argument("--project", required=True)
    parser.add_argument("--stack", required=True, help="the stack's short name")
    parser.add_argument("--to", required=True, help="the postgres:// URL of the target backend")
    args = parser.parse_args(argv)
    prefix = key_prefix(args.to)
    files = [(prefix + key, data) for key, data in history_files(args.backend, args.project, args.stack)]
    url, table = split_url(args.to)
    proc = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url],
        input=insert_sql(table, files),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"copy_history: psql failed: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    entries = sum(1 for key, _ in files if key.endswith(HISTORY_SUFFIXES))
    print(f"copied {entries} history entries ({len(files)} files) of {args.project}/{args.stack} to {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
