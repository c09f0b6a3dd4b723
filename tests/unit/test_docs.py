"""The README is a front door and docs/ the manual: every config key and CLI command documented, every link
resolving, the key table equal to what Pulumi.yaml declares."""

from __future__ import annotations

import argparse
import re

import yaml

from canary.cli.main import build_parser
from devtools.config_doc import BEGIN, DOC, END, key_table, with_table
from tests.unit.helpers import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_the_key_table_is_pulumi_yamls() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    doc = DOC.read_text()
    assert BEGIN in doc and END in doc
    assert doc == with_table(doc, key_table(project)), "run `python -m devtools.config_doc`"
    for key in project["config"]:
        assert f"| `{key}` |" in doc, key


def test_every_command_has_a_readme_line_and_a_manual_entry() -> None:
    readme = README.read_text()
    manual = (REPO / "docs" / "cli.md").read_text()
    assert len(commands()) >= 9
    for name in commands():
        assert f"| `canary {name}` |" in readme, name
        assert re.search(rf"^- `{name}\b", manual, re.MULTILINE), name


def test_every_option_of_every_command_is_in_the_manual() -> None:
    manual = (REPO / "docs" / "cli.md").read_text() + (REPO / "docs" / "gates.md").read_text()
    for name, parser in commands().items():
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in manual, f"canary {name} {option}"


def test_every_relative_link_resolves() -> None:
    for page in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links {target}"


def test_every_topic_page_is_linked_from_the_readme() -> None:
    readme = README.read_text()
    for page in DOCS:
        assert f"docs/{page.name}" in readme, page.name
