"""The house's walls, read from the code's own imports: the domain, the store and the smoke
runner never reach up to the edge (``discord``, ``bot``, ``cogs``, ``cli``), and the store
takes from the domain only its words (``conductor.states``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_python

ROOT = Path(__file__).resolve().parent.parent
EDGE = {"discord", "bot", "cogs", "cli"}
#: each room below the edge, and what it may never import
WALLS = {"conductor": EDGE, "store": EDGE, "smoke": EDGE | {"conductor", "store"}}


def imports(source: str, module: str) -> Iterator[tuple[int, str]]:
    """Every module ``source`` imports (line, absolute name), at any depth: in functions,
    under ``TYPE_CHECKING``, relative imports resolved against ``module``."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parents = parts[: len(parts) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            yield node.lineno, base
            for alias in node.names:  # ``from conductor import seals`` imports a module
                yield node.lineno, f"{base}.{alias.name}"


def _a_state(name: str) -> bool:
    """``conductor.states`` or a name in it (``from conductor.states import TaskState``)."""
    return name in {"conductor", "conductor.states"} or name.startswith("conductor.states.")


def trespasses(room: str) -> list[str]:
    found = []
    for path in sorted((ROOT / room).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for line, name in imports(path.read_text(encoding="utf-8"), module):
            top = name.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            if top in WALLS[room] or (
                room == "store" and top == "conductor" and not _a_state(name)
            ):
                found.append(where)
    return found


def test_the_reader_sees_every_kind_of_import() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import discord.ext\n"
        "if TYPE_CHECKING:\n"
        "    from bot.client import ConductorBot\n"
        "def later():\n"
        "    from cogs import release\n"
        "from . import text\n"
        "from ..store import db\n"
    )
    names = {name for _, name in imports(source, "conductor.seals.sealer")}
    assert {"discord.ext", "bot.client", "cogs", "cogs.release"} <= names
    assert {"conductor.seals.text", "conductor.store.db"} <= names


@pytest.mark.parametrize("room", sorted(WALLS))
def test_no_room_below_the_edge_imports_it(room: str) -> None:
    assert trespasses(room) == []


def test_the_store_takes_only_the_states_from_the_domain() -> None:
    taken = {
        name
        for path in (ROOT / "store").rglob("*.py")
        for _, name in imports(path.read_text(encoding="utf-8"), "store.x")
        if name.split(".")[0] == "conductor"
    }
    assert all(_a_state(name) for name in taken), taken
    assert "conductor.states.TaskState" in taken  # the enums of the columns come from there


def test_importing_the_domain_the_store_and_the_smoke_runner_loads_no_discord() -> None:
    # A fresh interpreter: this test process has imported discord.py long ago.
    script = (
        "import importlib, pkgutil, sys\n"
        "for top in ('conductor', 'store', 'smoke'):\n"
        "    package = importlib.import_module(top)\n"
        "    for info in pkgutil.walk_packages(package.__path__, top + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'discord', 'bot', 'cogs', 'cli', 'simcord'}))\n"
        "print(len([m for m in sys.modules if m.startswith(('conductor.', 'store.', 'smoke.'))]))\n"
    )
    done = run_python(script)
    loaded, count = done.stdout.splitlines()
    assert loaded == "[]", loaded
    assert int(count) >= 25  # every module of the three rooms was imported
