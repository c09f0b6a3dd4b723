"""The package layout's seam: imports flow one way, from the CLI down to the program's shared names.

    canary.cli  ->  canary.ops  ->  canary.release  ->  canary (names, gateway_api, weights, route_state)

What `pulumi up` imports (canary.release) must never pull in the operations side or the CLI, and the shared
top-level modules must stay free of all three. Read from the source with ast, so a lazy import inside a
function counts too.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "canary"

# Which packages each layer may not import (prefixes of module names).
FORBIDDEN = {
    "release": ("canary.ops", "canary.cli", "pulumi.automation"),
    "ops": ("canary.cli",),
    "shared": ("canary.release", "canary.ops", "canary.cli", "pulumi", "pulumi_kubernetes"),
}


def layer_of(path: Path, package: Path = PACKAGE) -> str | None:
    relative = path.relative_to(package)
    if len(relative.parts) == 1:
        return None if relative.name in ("__init__.py", "__main__.py") else "shared"
    return relative.parts[0] if relative.parts[0] in FORBIDDEN else None


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    package = ".".join(("canary", *path.relative_to(root).parent.parts))
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    layer = layer_of(path, root)
    if layer is None:
        return []
    banned = FORBIDDEN[layer]
    return [
        f"{path.relative_to(root.parent)}:{line} imports {module} ({layer} may not import {prefix})"
        for line, module in imported_modules(path, root)
        for prefix in banned
        if module == prefix or module.startswith(prefix + ".")
    ]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_has_modules() -> None:
    """Guards the test itself: a moved package would otherwise make every check below pass vacuously."""
    layers = {layer_of(path) for path in MODULES}
    assert {"release", "ops", "shared"} <= layers
    assert (PACKAGE / "cli" / "main.py").is_file()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    assert violations(path) == []


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The checker sees absolute, relative and function-level imports of the operations side."""
    root = tmp_path / "canary"
    (root / "release").mkdir(parents=True)
    fake = root / "release" / "probe.py"
    fake.write_text("def f():\n    from canary.ops import stack\n    from ..cli import main\n")
    found = violations(fake, root)
    assert len(found) == 4, found  # canary.ops, canary.ops.stack, canary.cli, canary.cli.main
    assert all("release may not import" in item for item in found)


def test_make_help_lists_every_target_the_readme_names() -> None:
    """The README's targets and `make help` are the same list (a newcomer reads one, then types the other)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    named = set(re.findall(r"`make ([a-z-]+)`", readme))
    makefile = (PACKAGE.parent / "Makefile").read_text()
    helped = set(re.findall(r'@echo "make ([a-z-]+) ', makefile))
    assert named, "the README names no make target"
    assert named <= helped, f"make help is missing {sorted(named - helped)}"
