"""One stand-in Discord, one sample production, one git origin and one bot process per test
module; every test fails if the bot sent Discord anything it would refuse (a body against
the spec, an unknown route, a broken limit). The tests of several processes share a throwaway
PostgreSQL cluster per module (``cluster``)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conductor.releases.git import IDENTITY
from e2e.driver import BotProcess, Driver
from e2e.standin import StandIn
from smoke.config import default_chromium
from smoke.sample_app import (
    SampleApp,
    config_toml,
    sample_app_table,
    sample_checks,
    serve_in_thread,
)
from tests.helpers import git, outbox
from tests.postgres import Cluster, Unavailable

GUILD_ID = 515_151
#: each smoke check's timeout: the local pages answer in milliseconds; a broken one costs it
CHECK_TIMEOUT = 5.0
#: each task's branch, and the file it adds
BRANCHES = {
    "core": ("feat/core", "core.py", "STATES = ('assembling', 'shipped')\n"),
    "ui": ("feat/ui", "board.py", "def render(release):\n    return release\n"),
    "search": ("feat/search", "search.py", "def search(tasks, text):\n    return []\n"),
    "docs": ("docs/runbook", "RUNBOOK.md", "# Runbook\n"),
    "hooks": ("feat/hooks", "hooks.py", "HOOKS = []\n"),
}


@dataclass
class World:
    standin: StandIn
    d: Driver
    bot: BotProcess
    app: SampleApp
    root: Path
    origin: Path
    channels: dict[str, int]
    operators: int
    people: dict[str, int]
    hook: int
    token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.root / "conductor.db"

    def main_sha(self) -> str:
        return git(self.origin, "rev-parse", "main")

    def deploys(self) -> list[str]:
        path = self.root / "outbox" / "deploys.txt"
        return path.read_text().splitlines() if path.exists() else []


def write_config(path: Path, top: dict[str, Any], tables: dict[str, dict[str, Any]]) -> None:
    path.write_text(config_toml(tables, top))


def make_origin(root: Path) -> tuple[Path, Path]:
    """A bare origin with main and each task's branch, and the clone Conductor ships from."""
    origin, clone, agent = root / "origin.git", root / "clone", root / "agent"
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(root, "clone", "--quiet", str(origin), str(agent))
    (agent / "app.py").write_text("print('Studio')\n")
    git(agent, "add", "--all")
    git(agent, "commit", "--quiet", "-m", "Studio")
    git(agent, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    for branch, name, text in BRANCHES.values():
        git(agent, "checkout", "--quiet", "-B", branch, "main")
        (agent / name).write_text(text)
        git(agent, "add", "--all")
        git(agent, "commit", "--quiet", "-m", f"Add {name}")
        git(agent, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
    git(root, "clone", "--quiet", str(origin), str(clone))
    return origin, clone


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the module's processes to share (a database per test:
    ``cluster.database``). Skipped where PostgreSQL cannot be had, failed under CI."""
    try:
        found = Cluster()
        found.start()
    except Unavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL: {error}", pytrace=False)
        pytest.skip(f"PostgreSQL: {error}")
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("git") is None:
        pytest.skip("git is missing")
    if not Path(default_chromium()).exists():
        pytest.skip(f"{default_chromium()} is missing")
    root = tmp_path_factory.mktemp("e2e")
    token = "e2e." + secrets.token_urlsafe(24)
    standin = StandIn(token)
    standin.start()
    d = Driver(standin)
    try:
        production = outbox(root)  # what the sandboxed deploy is granted to write
        with serve_in_thread(SampleApp(version_file=production / "VERSION")) as app:
            standin.call(lambda: standin.create_guild(GUILD_ID, "Release Train"))
            channels = {
                name: d.channel(name)
                for name in ("general", "handoffs", "reviews", "release-notes", "deployments")
            }
            operators = d.role("Operators", mentionable=True)
            pm, po = d.role("PM"), d.role("PO")  # who bids with /task size
            people = {
                "olga": d.user("olga", roles=(operators,)),
                "carl": d.user("carl"),
                "alex": d.user("alex"),
                "pia": d.user("pia", roles=(pm,)),
                "otto": d.user("otto", roles=(po,)),
                "machoke": d.user("machoke", bot=True),
            }
            hook = d.webhook(channels["handoffs"], "ci-agent")
            origin, clone = make_origin(root / "git")
            checks = [{**c, "timeout": CHECK_TIMEOUT} for c in sample_checks()]
            deploy = root / "deploy.sh"
            deploy.write_text(
                "#!/bin/sh\n"
                # a ship the test wants to stop mid-way waits here for the file to go
                f"while [ -e {production}/hold-deploy ]; do sleep 0.05; done\n"
                f'echo "$CONDUCTOR_RELEASE $CONDUCTOR_VERSION $CONDUCTOR_SHA" >> {production}/deploys.txt\n'
                f'echo "$CONDUCTOR_VERSION ($CONDUCTOR_SHA)" > {production}/VERSION\n'
            )
            deploy.chmod(0o755)
            config = root / "conductor.toml"
            write_config(
                config,
                {
                    "guild_id": GUILD_ID,
                    "handoff_channels": ["handoffs"],
                    "reviews_channel": "reviews",
                    "notes_channel": "release-notes",
                    "deployments_channel": "deployments",
                    "operator_role": "Operators",
                    "pm_role": "PM",
                    "po_role": "PO",
                    "required_approvals": 2,
                },
                {
                    "app": sample_app_table(app.url, smoke=checks, health_timeout=CHECK_TIMEOUT),
                    "git": {"path": str(clone), "test_timeout": 60},
                    "deploy": {
                        "command": str(deploy),
                        "timeout": 60,
                        # an outer bound: production answers at once, unless a test holds the
                        # ship in its health gate (503) to kill it there
                        "health_timeout": 120,
                        "health_interval": 0.05,
                        "log_dir": str(root / "deploy-logs"),
                        # the sandbox: the script itself, and where it writes production
                        "read": [str(deploy)],
                        "write": [str(production)],
                    },
                },
            )
            bot = BotProcess(
                root,
                {
                    "CONDUCTOR_DISCORD_TOKEN": token,
                    "CONDUCTOR_DISCORD_API_URL": standin.url,
                    "CONDUCTOR_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'conductor.db'}",
                    "CONDUCTOR_CONFIG": str(config),
                    # the /deployments board on a free port of 127.0.0.1 (it logs which)
                    "CONDUCTOR_WEB_PORT": "0",
                    **IDENTITY,
                },
            )
            bot.start()
            try:
                bot.wait_ready()
                yield World(
                    standin, d, bot, app, root, origin, channels, operators, people, hook, token
                )
            finally:
                bot.stop()
    finally:
        standin.stop()


@pytest.fixture(autouse=True)
def no_refusals(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if the bot sent anything Discord would refuse while it ran."""
    if "world" not in request.fixturenames:
        yield
        return
    w: World = request.getfixturevalue("world")
    before = len(w.d.failures())
    yield
    found = w.d.failures()[before:]
    assert not found, "the stand-in recorded:\n" + "\n".join(found)
