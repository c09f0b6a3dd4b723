"""The package layout's seams: imports flow one way, from the CLI down to the program's shared names.

    canary.cli  ->  canary.ops  ->  canary.release  ->  canary (names, gateway_api, weights, route_state)

What `pulumi up` imports (canary.release) must never pull in the operations side or the CLI, and the shared
top-level modules must stay free of all three. Inside canary.ops, capabilities stand over adapters
(canary/ops/__init__.py draws the house): the adapters (pulumi/, kube/, files/) and the shared core/ import
no capability folder, fast/ (the write before Pulumi) imports no rollout/, and no module of canary/ is in an
import cycle. Read from the source with ast, so a lazy import inside a function counts too.
"""

import ast
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "canary"

# Which packages each layer may not import (prefixes of module names).
FORBIDDEN = {
    "release": ("canary.ops", "canary.cli", "pulumi.automation"),
    "ops": ("canary.cli",),
    "shared": ("canary.release", "canary.ops", "canary.cli", "pulumi", "pulumi_kubernetes"),
}


CAPABILITIES = ("fast", "rollout", "verify", "gates", "team")
"""canary/ops/ folders a user asks for by name; they may use each other (without cycles) and everything
below."""
BELOW_CAPABILITIES = ("core", "pulumi", "kube", "files")
"""canary/ops/ folders every capability stands on: the shared core and the adapters to the external
systems."""
OPS_FORBIDDEN = {
    **{folder: tuple(f"canary.ops.{c}" for c in CAPABILITIES) for folder in BELOW_CAPABILITIES},
    "fast": ("canary.ops.rollout",),
}
"""Which canary.ops folders each canary.ops folder may not import (prefixes of module names)."""


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


def ops_folder_of(path: Path, package: Path = PACKAGE) -> str | None:
    """The canary/ops/ folder a module is in (None for ops/errors.py, ops/__init__.py and outside ops)."""
    relative = path.relative_to(package)
    if len(relative.parts) > 2 and relative.parts[0] == "ops":
        return relative.parts[1]
    return None


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    found = []
    for where, rules in ((layer_of(path, root), FORBIDDEN), (ops_folder_of(path, root), OPS_FORBIDDEN)):
        banned = rules.get(where, ()) if where is not None else ()
        found += [
            f"{path.relative_to(root.parent)}:{line} imports {module} ({where} may not import {prefix})"
            for line, module in imported_modules(path, root)
            for prefix in banned
            if module == prefix or module.startswith(prefix + ".")
        ]
    return found


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in it, lazily too). `from a import b` counts as
    importing a.b when that is a module, else a."""
    modules = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {module for _, module in imported_modules(path, root) if module in modules}
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_has_modules() -> None:
    """Guards the test itself: a moved package would otherwise make every check below pass vacuously."""
    layers = {layer_of(path) for path in MODULES}
    assert {"release", "ops", "shared"} <= layers
    assert (PACKAGE / "cli" / "main.py").is_file()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    assert violations(path) == []


def test_every_ops_folder_the_rules_name_exists() -> None:
    """Guards the rules: a renamed folder would otherwise leave its rule holding nothing."""
    folders = {ops_folder_of(path) for path in MODULES} - {None}
    assert folders == set(CAPABILITIES) | set(BELOW_CAPABILITIES), folders


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_is_found(tmp_path: Path) -> None:
    root = tmp_path / "canary"
    (root / "ops" / "pulumi").mkdir(parents=True)
    (root / "ops" / "pulumi" / "stack.py").write_text("def f():\n    from canary.ops.pulumi import plan\n")
    (root / "ops" / "pulumi" / "plan.py").write_text("from canary.ops.pulumi.stack import f\n")
    (root / "ops" / "pulumi" / "alone.py").write_text("import canary.ops.pulumi.plan\n")
    assert cycles(import_graph(root)) == [["canary.ops.pulumi.plan", "canary.ops.pulumi.stack"]]


@pytest.mark.parametrize(
    ("folder", "imports", "allowed"),
    [
        ("pulumi", "from canary.ops.rollout.flows import apply_change", False),
        ("kube", "import canary.ops.team.lock", False),
        ("core", "from canary.ops.fast import write", False),
        ("fast", "from canary.ops.rollout import rollback", False),
        ("fast", "from canary.ops.core.plan import plan_rollback", True),
        ("rollout", "from canary.ops.fast.write import make_safe", True),
        ("gates", "from canary.ops.rollout import flows", True),
    ],
)
def test_ops_folder_rules_are_checked(tmp_path: Path, folder: str, imports: str, allowed: bool) -> None:
    root = tmp_path / "canary"
    (root / "ops" / folder).mkdir(parents=True)
    probe = root / "ops" / folder / "probe.py"
    probe.write_text(f"def f():\n    {imports}\n")
    found = violations(probe, root)
    assert (found == []) is allowed, found
    assert all(f"{folder} may not import canary.ops." in item for item in found)


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The checker sees absolute, relative and function-level imports of the operations side."""
    root = tmp_path / "canary"
    (root / "release").mkdir(parents=True)
    fake = root / "release" / "probe.py"
    fake.write_text("def f():\n    from canary.ops import stack\n    from ..cli import main\n")
    found = violations(fake, root)
    assert len(found) == 4, found  # canary.ops, canary.ops.pulumi.stack, canary.cli, canary.cli.main
    assert all("release may not import" in item for item in found)


def test_make_help_lists_every_target_the_readme_names() -> None:
    """The README's targets and `make help` are the same list (a newcomer reads one, then types the other)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    named = set(re.findall(r"`make ([a-z-]+)`", readme))
    makefile = (PACKAGE.parent / "Makefile").read_text()
    helped = set(re.findall(r'@echo "make ([a-z-]+) ', makefile))
    assert named, "the README names no make target"
    assert named <= helped, f"make help is missing {sorted(named - helped)}"
