"""scripts/copy_history.py: which keys and rows it writes (the copy itself runs against a real server in
tests/integration/test_teams.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scripts.copy_history import history_files, insert_sql, key_prefix, split_url


def test_keys_go_under_the_database_name_as_pulumi_prefixes_them() -> None:
    assert key_prefix("postgres://u@h:5432/pulumi?sslmode=disable") == "pulumi/"
    assert key_prefix("postgres://u@h:5432") == ""


def test_the_table_parameter_is_pulumis_not_libpqs() -> None:
    assert split_url("postgres://u@h/db?sslmode=disable&table=team") == (
        "postgres://u@h/db?sslmode=disable",
        "team",
    )
    assert split_url("postgres://u@h/db")[1] == "pulumi_state"
    with pytest.raises(SystemExit, match="not a plain table name"):
        split_url("postgres://u@h/db?table=a;b")
    with pytest.raises(SystemExit, match="not a postgres:// URL"):
        split_url("file:///tmp/x")


def test_history_files_skip_the_attrs_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / ".pulumi" / "history" / "p" / "dev"
    folder.mkdir(parents=True)
    (folder / "dev-1.history.json").write_text("{}")
    (folder / "dev-1.history.json.attrs").write_text("{}")
    (folder / "dev-1.checkpoint.json").write_text("{}")
    assert [key for key, _ in history_files(tmp_path, "p", "dev")] == [
        ".pulumi/history/p/dev/dev-1.checkpoint.json",
        ".pulumi/history/p/dev/dev-1.history.json",
    ]


def test_rows_are_pulumis_base64_json_and_existing_ones_are_kept() -> None:
    sql = insert_sql("pulumi_state", [("pulumi/.pulumi/history/p/dev/it's.json", b'{"kind":"update"}')])
    encoded = json.dumps({"data": base64.b64encode(b'{"kind":"update"}').decode()})
    assert f"('pulumi/.pulumi/history/p/dev/it''s.json', '{encoded}'::json)" in sql
    assert "ON CONFLICT (key) DO NOTHING" in sql and sql.startswith("BEGIN;") and sql.endswith("COMMIT;\n")
