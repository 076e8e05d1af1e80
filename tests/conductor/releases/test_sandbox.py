"""The release's code runs in the sandbox: the test command (the agents' branches) and the
deploy command (what the release carries), on real processes, real git and real bubblewrap.

What each test tries is what an adversary's branch would: read the bot's secrets, its
database, its config, its clone; leave a process behind; reach the network; plant a hook or
a filter that runs later; eat the machine's memory, processes or disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.releases.assembly import AssemblyOutcome
from conductor.releases.git import GitConfig, parse_git_config
from conductor.releases.sandbox import (
    NOBODY,
    CommandRun,
    Grant,
    Limits,
    Sandbox,
    SandboxError,
    SandboxMode,
)
from conductor.states import ReleaseState
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    TEST_APP,
    FakeNotes,
    FakeRunner,
    HealthServer,
    MakeReviewed,
    Origin,
    git,
    gone,
    outbox,
    processes_holding,
    roll_back,
    ship,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is missing")

TOKEN = "NzA5.the-bots-own-token"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """The bot's secrets as a running bot has them: the token and database URL in its
    environment, a config file and a database file on disk (readable by anyone: the sandbox
    alone must keep them out of reach)."""
    config = tmp_path / "conductor.toml"
    config.write_text('[git]\npath = "/srv/clone"\n# the config\n')
    config.chmod(0o644)
    monkeypatch.setenv("CONDUCTOR_DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("CONDUCTOR_DATABASE_URL", "postgresql://u:pw-of-the-db@db/x")
    monkeypatch.setenv("CONDUCTOR_CONFIG", str(config))
    outbox(tmp_path)  # the way in to tmp_path: only the sandbox keeps the rest out
    return {"config": config, "db": tmp_path / "conductor.db"}


def probe(targets: dict[str, Path], clone: Path) -> str:
    """A shell command that tries to reach each of the bot's things and prints what it got
    (``LEAK <what>`` for each it could read)."""
    tries = {
        "parent-environ": 'tr "\\0" "\\n" < /proc/$PPID/environ',
        "bot-environ": f'tr "\\0" "\\n" < /proc/{os.getpid()}/environ',
        "database": f"head -c 16 {targets['db']}",
        "config": f"cat {targets['config']}",
        "clone": f"ls {clone}/.git",
        "own-git": "ls .git",
        "token-in-env": f"env | grep -F {TOKEN}",
    }
    lines = [f'if out=$({cmd} 2>/dev/null) && [ -n "$out" ]; then echo "LEAK {name}: $out"; fi'
             for name, cmd in tries.items()]  # fmt: skip
    return "; ".join([*lines, "echo probed"])


def leaks(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("LEAK ")]


# -- inside the test command and the deploy command -------------------------------------------


async def test_inside_the_test_command_nothing_of_the_bot_is_reachable(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    secrets: dict[str, Path],
) -> None:  # fmt: skip
    token = f"{secrets['db'].parent}/left-by-tests"
    command = f"{probe(secrets, clone)}; {leave_children(token)}; {connect(9)}; true"
    domain = bootstrap(
        database=db, runner=FakeRunner(), git={"path": str(clone), "test_command": command}
    )
    origin.commit("feat/core", {"core.txt": "core\n"})
    await make_reviewed("core")
    await domain.releases.open(GUILD, "train", OPERATOR)
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    outcome = await domain.assembly.assemble(GUILD, OPERATOR)
    assert outcome.tests is not None
    log = Path(outcome.tests.log).read_text()
    assert "probed" in log and outcome.tests.passed, log
    assert leaks(log) == []
    assert TOKEN not in log and "pw-of-the-db" not in log
    assert "children started" in log and await gone(token), "a child outlived the tests"
    assert "192.0.2.1 unreachable" in log and "reached" not in log


async def test_inside_the_deploy_command_nothing_of_the_bot_is_reachable(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    secrets: dict[str, Path], health: HealthServer, tmp_path: Path,
) -> None:  # fmt: skip
    token = f"{tmp_path}/left-by-the-deploy"
    command = f"{probe(secrets, clone)}; {leave_children(token)}; {connect(9)}"
    domain = deploying(db, clone, health, tmp_path, command)
    await assembled(domain, origin, make_reviewed)
    outcome = await ship(domain)
    assert outcome.release.state is ReleaseState.SHIPPED, outcome.stopped
    log = deploy_log(tmp_path)
    assert "probed" in log and leaks(log) == []
    assert TOKEN not in log and "pw-of-the-db" not in log
    assert "children started" in log and await gone(token), "a child outlived the deploy"
    assert "192.0.2.1 unreachable" in log and "reached" not in log


async def test_the_deploy_runs_in_a_checkout_of_the_commit_it_deploys(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    health: HealthServer, tmp_path: Path,
) -> None:  # fmt: skip
    # The README's own example: command = "bin/deploy", the release's script.
    origin.commit("main", {"bin/deploy": "echo deploying with the script of v0\n"}, new=False)
    git(clone, "fetch", "--quiet", "origin")
    git(clone, "merge", "--quiet", "--ff-only", "origin/main")  # the clone's tree: v0's
    domain = deploying(db, clone, health, tmp_path, 'sh bin/deploy; echo "sha $CONDUCTOR_SHA"')
    origin.commit("feat/core", {"bin/deploy": "echo deploying with the script of core\n"})
    await make_reviewed("core")
    await domain.releases.open(GUILD, "train", OPERATOR)
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    outcome = await ship(domain)
    assert outcome.release.state is ReleaseState.SHIPPED, outcome.stopped
    log = deploy_log(tmp_path)
    assert "deploying with the script of core" in log
    assert f"sha {outcome.release.merge_sha}" in log
    assert "v0" in (clone / "bin" / "deploy").read_text()  # the stale tree it no longer uses
    # the rollback deploys main after the revert: v0's script again, from that commit
    rolled = await roll_back(domain)
    assert rolled.release.state is ReleaseState.ROLLED_BACK, rolled.stopped
    log = deploy_log(tmp_path, "rollback")
    assert "deploying with the script of v0" in log
    assert f"sha {git(origin.bare, 'rev-parse', 'main')}" in log


async def test_a_deploy_gets_the_variables_and_paths_it_is_granted_and_nothing_else(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    health: HealthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DEPLOY_KEY", "granted-key")
    monkeypatch.setenv("OTHER_SECRET", "not-granted")
    credentials = outbox(tmp_path) / "credentials"
    credentials.write_text("user=deployer\n")
    credentials.chmod(0o644)
    command = (
        f'echo "key=$DEPLOY_KEY other=$OTHER_SECRET"; cat {credentials}; '
        f"echo x > {credentials} || echo read-only"
    )
    domain = deploying(
        db, clone, health, tmp_path, command, env=["DEPLOY_KEY"], read=[str(credentials)]
    )
    await assembled(domain, origin, make_reviewed)
    outcome = await ship(domain)
    assert outcome.release.state is ReleaseState.SHIPPED, outcome.stopped
    log = deploy_log(tmp_path)
    assert "key=granted-key other=\n" in log and "user=deployer" in log and "read-only" in log
    assert credentials.read_text() == "user=deployer\n"


async def test_a_grant_of_a_missing_path_stops_the_deploy_saying_which(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    health: HealthServer, tmp_path: Path,
) -> None:  # fmt: skip
    domain = deploying(db, clone, health, tmp_path, "true", read=["/nonexistent/keys"])
    await assembled(domain, origin, make_reviewed)
    outcome = await ship(domain)
    assert outcome.stopped == (
        "the deploy command could not run: the sandbox cannot grant `/nonexistent/keys`: "
        "it does not exist"
    )
    assert outcome.release.state is ReleaseState.ASSEMBLED


# -- what it starts dies with it ---------------------------------------------------------------


# A child that says it is running (a file in its tree) and sleeps; the command waits for
# them all to say so before it ends, so what is checked after is a child that was running.
SLEEPER = "python3 -c 'import sys, time; open(sys.argv[1], \"w\"); time.sleep(300)'"


def started(*names: str) -> str:
    return f"for f in {' '.join(names)}; do while [ ! -e $f ]; do sleep 0.05; done; done"


def leave_children(token: str) -> str:
    """Start a child in the background and one in a new session, both running when it ends."""
    return (
        f"{SLEEPER} bg {token}-background & setsid {SLEEPER} ss {token}-setsid & "
        f"{started('bg', 'ss')}; echo children started"
    )


@pytest.mark.parametrize("times_out", [False, True], ids=["when-it-ends", "when-it-times-out"])
async def test_children_in_the_background_and_in_a_new_session_die_with_the_command(
    tmp_path: Path, times_out: bool
) -> None:
    token = f"{tmp_path}/child"
    command = (
        f"{SLEEPER} bg {token}-background & setsid {SLEEPER} ss {token}-setsid & "
        f"{started('bg', 'ss')}; echo started{'; wait' if times_out else ''}"
    )
    run = await sandboxed(tmp_path, command, limit_s=3 if times_out else 60)
    assert run.timed_out is times_out and "started" in run.tail
    assert await gone(f"{token}-background"), "a background child outlived its command"
    assert await gone(f"{token}-setsid"), "a child in a new session outlived its command"


async def test_unsandboxed_a_child_in_a_new_session_would_outlive_it(tmp_path: Path) -> None:
    """The control: what the sandbox buys (sandbox = "off" kills the group, not a setsid)."""
    token = f"{tmp_path}/escaped"
    command = f"setsid {SLEEPER} ss {token} & {started('ss')}; echo started"
    run = await sandboxed(tmp_path, command, mode=SandboxMode.OFF)
    assert run.passed and "started" in run.tail
    try:
        assert not await gone(token, within=1)
    finally:
        for pid in processes_holding(token):
            os.kill(pid, 9)


# -- the network -------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 that answers ``hello``."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.close()


def connect(port: int) -> str:
    code = (
        "import socket, sys\n"
        "for host in ('127.0.0.1', '192.0.2.1'):\n"
        "    try:\n"
        f"        s = socket.create_connection((host, {port}), timeout=10)\n"
        "        print(host, 'reached', s.recv(16).decode().strip())\n"
        "    except OSError as e:\n"
        "        print(host, 'unreachable:', e)\n"
    )
    return f"python3 -c {_quote(code)}"


async def test_without_network_nothing_outside_is_reachable(tmp_path: Path, listener: int) -> None:
    run = await sandboxed(tmp_path, connect(listener))
    assert "127.0.0.1 unreachable" in run.tail  # the host's loopback is not its loopback
    assert "192.0.2.1 unreachable" in run.tail
    assert "reached" not in run.tail


async def test_the_hosts_network_when_granted(tmp_path: Path, listener: int) -> None:
    run = await sandboxed(tmp_path, connect(listener), grant=Grant(network="host"))
    assert "127.0.0.1 reached hello" in run.tail


# -- the limits bubblewrap does not set --------------------------------------------------------


async def test_memory_processes_output_and_cpu_are_bounded(tmp_path: Path) -> None:
    limits = Limits(memory_mb=256, processes=40, output_mb=1, cpu_s=2)
    memory = await sandboxed(
        tmp_path, "python3 -c 'bytearray(512 * 2**20)' 2>&1 | tail -1", limits=limits
    )
    assert "MemoryError" in memory.tail
    forks = await sandboxed(
        tmp_path,
        "for i in $(seq 200); do sleep 30 & done 2>&1 | tail -1; echo forked",
        limits=limits,
    )
    assert "Cannot fork" in forks.tail or "fork" in forks.tail.lower()
    output = await sandboxed(tmp_path, "head -c 8000000 /dev/zero | tr '\\0' x", limits=limits)
    assert not output.passed and Path(output.log).stat().st_size <= 1024 * 1024
    spin = await sandboxed(tmp_path, "python3 -c 'while True: pass'", limits=limits, limit_s=120)
    assert not spin.passed and not spin.timed_out  # the CPU limit stopped it, not the clock
    assert spin.duration_ms < 60_000


async def test_an_unprivileged_user_runs_it_when_the_bot_is_root(tmp_path: Path) -> None:
    run = await sandboxed(tmp_path, "id -u; touch mine && echo wrote-its-tree")
    uid = str(NOBODY) if os.geteuid() == 0 else str(os.geteuid())
    assert run.tail.splitlines()[:2] == [uid, "wrote-its-tree"]


# -- nothing it plants runs later --------------------------------------------------------------


async def test_a_planted_hook_changes_nothing_a_later_ship_or_rollback_runs(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    health: HealthServer, tmp_path: Path,
) -> None:  # fmt: skip
    ran = tmp_path / "hook-ran"
    hook = f"#!/bin/sh\ntouch {ran}\n"
    # the test command tries the clone's hooks and its own tree's
    plant = (
        f"mkdir -p .git/hooks && printf '{hook}' > .git/hooks/pre-push; "
        f"printf '{hook}' > {clone}/.git/hooks/pre-push || echo refused; "
        f"touch {tmp_path}/outside || echo refused-outside; true"
    )
    domain = deploying(db, clone, health, tmp_path, "true", test_command=plant)
    outcome = await assembled(domain, origin, make_reviewed)
    assert outcome.tests is not None and outcome.tests.passed
    lines = outcome.tests.tail.splitlines()
    assert "refused" in lines and "refused-outside" in lines, lines
    assert not (clone / ".git" / "hooks" / "pre-push").exists()
    assert not (tmp_path / "outside").exists()
    # and a hook that got there anyway (an older, unsandboxed run) never runs either
    for name in ("pre-push", "post-checkout", "post-merge", "pre-commit", "reference-transaction"):
        path = clone / ".git" / "hooks" / name
        path.write_text(hook)
        path.chmod(0o755)
    shipped = await ship(domain)
    assert shipped.release.state is ReleaseState.SHIPPED, shipped.stopped
    rolled = await roll_back(domain)
    assert rolled.release.state is ReleaseState.ROLLED_BACK, rolled.stopped
    assert not ran.exists()
    # the control: git itself would have run it
    git(clone, "checkout", "--quiet", "--detach")
    assert ran.exists()


async def test_a_planted_gitattributes_filter_does_nothing(
    db: Database, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    health: HealthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # A filter some tool defined in the user's git config (as git-lfs does), which a release's
    # .gitattributes names for every file: git would run it on each checkout.
    ran = tmp_path / "filter-ran"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f'[filter "evil"]\n\tsmudge = "touch {ran}; cat"\n\tclean = "touch {ran}; cat"\n'
    )
    origin.commit("feat/core", {".gitattributes": "* filter=evil\n", "core.txt": "core\n"})
    await make_reviewed("core")
    monkeypatch.setenv("HOME", str(home))  # from here on: the bot's user has the filter
    domain = deploying(db, clone, health, tmp_path, "ls", test_command="cat core.txt")
    await domain.releases.open(GUILD, "train", OPERATOR)
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    assembled_ = await domain.assembly.assemble(GUILD, OPERATOR)
    assert assembled_.assembled and assembled_.tests is not None and assembled_.tests.passed
    shipped = await ship(domain)
    assert shipped.release.state is ReleaseState.SHIPPED, shipped.stopped
    assert (await roll_back(domain)).release.state is ReleaseState.ROLLED_BACK
    assert not ran.exists()
    # the control: git with the user's config runs it on a checkout of the release
    control = await asyncio.create_subprocess_exec(
        "git", "clone", "--quiet", "--branch", "feat/core", str(origin.bare),
        str(tmp_path / "control"), env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    assert await control.wait() == 0
    assert ran.exists()


# -- the bot's own process ---------------------------------------------------------------------


HOLDER = """
import os, subprocess, sys
from conductor.releases.sandbox import close_process
if sys.argv[1] == "closed":
    assert close_process()
read = subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True)
print("read" if b"HOLDER_SECRET=s3cret" in read.stdout else "refused")
"""


@pytest.mark.parametrize(("mode", "expected"), [("closed", "refused"), ("open", "read")])
def test_a_process_that_is_not_dumpable_keeps_its_environment_from_its_children(
    mode: str, expected: str
) -> None:
    # As root, both without capabilities: CAP_SYS_PTRACE reads anything, and a reader with
    # fewer capabilities than its target is refused whatever the target's dumpability.
    capless = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    done = subprocess.run(  # noqa: S603
        [*capless, sys.executable, "-c", HOLDER, mode],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3],
        env={**os.environ, "HOLDER_SECRET": "s3cret", "PYTHONPATH": str(Path(__file__).parents[3])},
    )  # fmt: skip
    assert done.stdout.strip() == expected


# -- without bubblewrap ------------------------------------------------------------------------


async def test_without_bubblewrap_commands_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_ = tmp_path / "bin"  # a PATH with what the sandbox needs but bubblewrap
    bin_.mkdir()
    (bin_ / "prlimit").symlink_to(shutil.which("prlimit") or "/usr/bin/prlimit")
    monkeypatch.setenv("PATH", str(bin_))
    box = Sandbox()
    assert box.bwrap is None
    problem = await box.probe()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("bubblewrap is missing") and 'sandbox = "off"' in problem
    with pytest.raises(SandboxError):
        await box.run("true", tree=tmp_path, log_path=tmp_path / "x.log", limit_s=5, env={})


def test_the_sandbox_settings_are_checked() -> None:
    config = parse_git_config({"path": "/x", "test_network": True, "sandbox": "off"})
    assert config.test_network == "host" and config.sandbox is SandboxMode.OFF
    assert GitConfig(path="/x").sandbox is SandboxMode.BWRAP
    for bad in ({"test_read": ["relative/path"]}, {"test_read": ["/"]}, {"sandbox": "maybe"}):
        with pytest.raises(ValueError, match="git"):
            parse_git_config({"path": "/x", **bad})


# -- helpers -------------------------------------------------------------------------------------


async def sandboxed(
    tmp_path: Path,
    command: str,
    *,
    limit_s: float = 60,
    grant: Grant = Grant(),  # noqa: B008 - frozen
    limits: Limits = Limits(),  # noqa: B008 - frozen
    mode: SandboxMode = SandboxMode.BWRAP,
) -> CommandRun:
    box = Sandbox(mode)
    tree = tmp_path / f"tree-{len(list(tmp_path.glob('tree-*')))}"
    tree.mkdir()
    outbox(tmp_path)
    box.own(tree)
    return await box.run(
        command, tree=tree, log_path=tmp_path / f"{tree.name}.log", limit_s=limit_s,
        env={"CONDUCTOR_RELEASE": "r"}, grant=grant, limits=limits,
    )  # fmt: skip


def deploying(
    db: Database, clone: Path, health: HealthServer, tmp_path: Path, command: str,
    *, test_command: str | None = None, **grants: object,
) -> Conductor:  # fmt: skip
    return bootstrap(
        database=db,
        runner=FakeRunner(),
        notes=FakeNotes(),
        app={**TEST_APP, "production_url": health.url},
        git={"path": str(clone), **({"test_command": test_command} if test_command else {})},
        deploy={
            "command": command, "health_timeout": 60, "health_interval": 0.05,
            "log_dir": str(tmp_path / "deploy-logs"), **grants,
        },
    )  # fmt: skip


async def assembled(
    domain: Conductor, origin: Origin, make_reviewed: MakeReviewed
) -> AssemblyOutcome:
    origin.commit("feat/core", {"core.txt": "core\n"})
    await make_reviewed("core")
    await domain.releases.open(GUILD, "train", OPERATOR)
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    outcome = await domain.assembly.assemble(GUILD, OPERATOR)
    assert outcome.assembled
    return outcome


def deploy_log(tmp_path: Path, what: str = "deploy") -> str:
    [log] = (tmp_path / "deploy-logs").glob(f"*-{what}.log")
    return log.read_text()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
