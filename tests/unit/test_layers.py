"""The import arrows of the package all point down: a lower layer never imports a higher one.

docs/architecture.md draws the same table. Every `import` and `from ... import` of every module
under src/vibetunnel counts, inside functions and `if TYPE_CHECKING:` blocks included: a
type-only import upwards is still an arrow the wrong way (use a Protocol in the lower layer).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "vibetunnel"

LAYERS: dict[str, int] = {
    # 0: pure or nearly so: the error tree, the wire protocol, settings, small helpers.
    "__init__": 0,
    "errors": 0,
    "files": 0,
    "config": 0,
    "aio": 0,
    "redact": 0,
    "protocol": 0,
    # 1: state on disk, each on its own.
    "recording": 1,
    "auth": 1,
    "network": 1,
    # 2: programs on PTYs, and the keeper that holds them across servers.
    "pty": 2,
    "keeper": 2,
    # 3: vt, which moves bytes between a PTY and the server; the cluster, which moves them
    # between nodes (through Redis).
    "vt": 3,
    "cluster": 3,
    # 4: the API, which moves them between a session (here or on another node) and a user.
    "api": 4,
    # 5, 6: the server's lifecycle, and the commands.
    "server": 5,
    "cli": 6,
    "__main__": 6,
}
"""The part of the package (first name under `vibetunnel`) -> its layer, lowest first."""

PEERS = [
    frozenset({"__init__", "errors", "files", "config", "aio", "redact", "protocol"}),
    frozenset({"pty", "keeper"}),
    frozenset({"cli", "__main__"}),
]
"""Parts of one layer that may import each other. Other parts of a layer are independent:
recording and auth know nothing of each other, nor do vt and the cluster."""


def module_of(path: Path) -> tuple[str, bool]:
    """The dotted name of a source file, and whether it is a package's __init__."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def part_of(module: str) -> str:
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a vibetunnel module in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module is not None:
                yield node.lineno, node.module


def allowed(importer: str, target: str) -> bool:
    a, b = part_of(importer), part_of(target)
    if a == b or LAYERS[b] < LAYERS[a]:
        return True
    return LAYERS[a] == LAYERS[b] and any(a in peers and b in peers for peers in PEERS)


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    found = []
    for line, target in imported(ast.parse(source), module, is_package):
        if target.split(".")[0] != "vibetunnel":
            continue
        if part_of(target) not in LAYERS:
            found.append(f"{module}:{line} imports {target}, a part missing from LAYERS")
        elif not allowed(module, target):
            a, b = part_of(module), part_of(target)
            found.append(
                f"{module}:{line} imports {target}: {a} (layer {LAYERS[a]}) may not import "
                f"{b} (layer {LAYERS[b]})"
            )
    return found


SOURCES = sorted(SRC.rglob("*.py"))


def test_the_sources_are_found() -> None:
    assert SRC / "errors.py" in SOURCES and len(SOURCES) > 40


def test_every_part_has_a_layer() -> None:
    parts = {part_of(module_of(path)[0]) for path in SOURCES}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_points_up(path: Path) -> None:
    module, is_package = module_of(path)
    assert violations(path.read_text(encoding="utf-8"), module, is_package) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("vibetunnel.protocol.frames", "from vibetunnel.api import app"),
        ("vibetunnel.pty.remote", "from vibetunnel.vt import link"),
        ("vibetunnel.recording.recorder", "if TYPE_CHECKING:\n    from vibetunnel.pty import x"),
        ("vibetunnel.vt.link", "import vibetunnel.cluster.node"),
        ("vibetunnel.cluster.owner", "from vibetunnel.api import app"),
        ("vibetunnel.auth.refresh", "from ..recording import index"),
        ("vibetunnel.keeper.table", "def f():\n    from vibetunnel.cli import serve"),
    ],
)
def test_the_check_catches_an_arrow_up_or_across(module: str, source: str) -> None:
    assert len(violations(source, module)) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("vibetunnel.errors", "from vibetunnel.protocol.close import Close"),
        ("vibetunnel.auth.refresh", "from ..errors import AuthError\nfrom .secret import x"),
        ("vibetunnel.keeper.table", "from vibetunnel.pty import process"),
        ("vibetunnel.pty.manager", "from vibetunnel.keeper import channel"),
        ("vibetunnel.cli.serve", "from vibetunnel.api.app import create_app"),
        ("vibetunnel.api.ws", "import asyncio\nfrom starlette import websockets"),
    ],
)
def test_the_check_lets_arrows_down_and_within_pass(module: str, source: str) -> None:
    assert violations(source, module) == []
