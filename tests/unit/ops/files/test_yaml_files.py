"""canary.ops.files.yaml_files: a YAML file's parse is remembered for its exact text, and only then."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest

from canary.ops.files import remembered, yaml_files


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test here starts with nothing remembered."""
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path / "cache"))


def _copies() -> list[Path]:
    folder = Path(remembered.cache_dir()) / "yaml"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _no_parse(text: str) -> object:
    raise AssertionError(f"parsed again: {text!r}")


def test_the_same_text_gets_the_remembered_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  gateway-canary:canaryWeight: '25'\n")
    first = yaml_files.load(path)
    monkeypatch.setattr(yaml_files, "parse", _no_parse)
    assert yaml_files.load(path) == first == {"config": {"gateway-canary:canaryWeight": "25"}}


def test_changed_text_is_parsed_again(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  gateway-canary:canaryWeight: '25'\n")
    yaml_files.load(path)
    path.write_text("config:\n  gateway-canary:canaryWeight: '50'\n")  # same size: only the text tells
    assert yaml_files.load(path) == {"config": {"gateway-canary:canaryWeight": "50"}}


def test_the_copy_is_private_to_the_user(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: gateway-canary\n")
    yaml_files.load(path)
    folder = Path(remembered.cache_dir()) / "yaml"
    copies = _copies()
    assert len(copies) == 1
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "users:\n- name: u\n  user:\n    client-key-data: c2VjcmV0\n",
        "users:\n- name: u\n  user:\n    token: abc\n",
        "when: 2026-12-02\n",  # a date: JSON would give back a string
        "1: one\n",  # a number key: JSON would give back "1"
        "x: .nan\n",
    ],
)
def test_credentials_and_what_json_would_change_are_never_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    value = yaml_files.load(path)
    assert _copies() == []
    if text.startswith("when"):
        assert value == {"when": datetime.date(2026, 12, 2)}
    calls: list[str] = []

    def parse(again: str) -> object:
        calls.append(again)
        return {"parsed": True}

    monkeypatch.setattr(yaml_files, "parse", parse)
    yaml_files.load(path)
    assert calls == [text]


def test_an_unreadable_copy_is_a_parse(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: a\n")
    yaml_files.load(path)
    (copy,) = _copies()
    copy.write_text("{not json")
    assert yaml_files.load(path) == {"name": "a"}


def test_not_yaml_is_a_yaml_error(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(yaml_files.YamlError):
        yaml_files.load(path)


def test_a_cache_folder_that_cannot_be_written_is_a_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CANARY_CACHE_DIR", str(blocker / "below-a-file"))
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: a\n")
    assert yaml_files.load(path) == {"name": "a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.yaml", "file"]


def test_a_file_alternating_between_texts_keeps_each_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    texts = [f"config:\n  gateway-canary:canaryWeight: '{w}'\n" for w in ("25", "0")]
    for text in texts:
        path.write_text(text)
        yaml_files.load(path)
    monkeypatch.setattr(yaml_files, "parse", _no_parse)
    for text, weight in zip(texts, ("25", "0"), strict=True):
        path.write_text(text)
        assert yaml_files.load(path) == {"config": {"gateway-canary:canaryWeight": weight}}
