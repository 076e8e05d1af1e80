"""The ship run with git, a deploy command and a health URL, all real: a bare origin and a
clone, a shell command, an HTTP server on 127.0.0.1. The happy path, and each fault: the
deploy fails or hangs, production is slow to get healthy or never does, main moved, the push
is refused; the lease decides who drives a run."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import InvalidMove
from conductor.releases.runs.store import RunRunning, Runs
from conductor.states import ReleaseState, RunKind, RunStatus, SealStatus, StepStatus
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    ROLE,
    TEST_APP,
    Build,
    FakeNotes,
    FakeRunner,
    HealthServer,
    MakeReviewed,
    Origin,
    deploy_command,
    deploys,
    end_run,
    git,
    gone,
    open_run,
    ship,
    write_aside,
)


async def assembled(domain: Conductor, origin: Origin, make_reviewed: MakeReviewed) -> str:
    origin.commit("feat/core", {"core.txt": "core\n"})
    origin.commit("feat/ui", {"ui.txt": "ui\n"})
    await make_reviewed("core")
    await make_reviewed("ui", depends_on="core")
    slug = (await domain.releases.open(GUILD, "train", OPERATOR)).slug
    await domain.releases.add_task(GUILD, "core", OPERATOR)
    await domain.releases.add_task(GUILD, "ui", OPERATOR)
    outcome = await domain.assembly.assemble(GUILD, OPERATOR)
    assert outcome.assembled
    return slug


async def test_a_ship_pushes_main_deploys_waits_for_health_then_flips_seals_and_notes(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    health: HealthServer,
    seen: Path,
) -> None:
    domain = build(command=deploy_command(seen))
    slug = await assembled(domain, origin, make_reviewed)
    head = (await domain.releases.get(GUILD, slug)).rc_head
    assert head is not None

    outcome = await ship(domain)

    assert outcome.stopped is None and outcome.run is not None
    assert outcome.run.status is RunStatus.DONE
    assert [s.status for s in outcome.run.steps] == [StepStatus.DONE] * 5
    assert git(origin.bare, "rev-parse", "main") == head  # main fast-forwarded on the origin
    assert deploys(seen) == [
        {"CONDUCTOR_RELEASE": slug, "CONDUCTOR_VERSION": "v1", "CONDUCTOR_SHA": head}
    ]
    deploy = outcome.run.step("deploy").outcome
    assert deploy["sha"] == head and deploy["tail"] == "deploying"
    assert Path(deploy["log"]).read_text().startswith("deploying\n")
    assert outcome.run.step("health").outcome["summary"].startswith("healthy after 1 check")
    release = await domain.releases.get(GUILD, slug)
    assert release.state is ReleaseState.SHIPPED and release.version == 1
    assert release.merge_sha == head
    assert release.seal_status is SealStatus.GREEN and release.notes_posted_at is not None
    assert len(notes.posts) == 1 and notes.pings == []


async def test_a_red_seal_alert_carries_the_real_merge_sha(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    runner: FakeRunner,
    notes: FakeNotes,
) -> None:
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    runner.then({"/signin": "selector form input[type=password] not found"})
    outcome = await ship(domain)
    head = outcome.release.merge_sha
    assert head is not None and len(head) == 40
    [(_, alert)] = notes.pings
    assert f"git revert -m 1 {head} && bin/deploy {slug} v1" in alert
    assert "<merge_sha>" not in alert


async def test_a_failing_deploy_stops_before_the_flip_and_says_why(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    db: Database,
    runner: FakeRunner,
    notes: FakeNotes,
    clone: Path,
    health: HealthServer,
    tmp_path: Path,
    seen: Path,
) -> None:
    broken = deploy_command(seen, "echo 'bin/deploy: no route to host' >&2; exit 7")
    domain = build(command=broken)
    slug = await assembled(domain, origin, make_reviewed)

    outcome = await ship(domain)

    assert outcome.stopped == "the deploy command failed (exit 7)"
    assert outcome.run is not None and outcome.run.status is RunStatus.FAILED
    assert outcome.run.step("deploy").status is StepStatus.FAILED
    failed = outcome.run.step("deploy").outcome
    assert failed["summary"] == "the deploy command failed (exit 7)"
    assert failed["tail"] == "deploying\nbin/deploy: no route to host"
    assert outcome.run.step("ship").status is StepStatus.PENDING
    release = await domain.releases.get(GUILD, slug)
    assert release.state is ReleaseState.ASSEMBLED and release.version is None
    assert runner.calls == [] and health.checks == 0
    [(_, [told], _)] = notes.posts
    assert "stopped at the deploy step: the deploy command failed (exit 7)" in told
    assert "bin/deploy: no route to host" in told and "stays assembled" in told
    # Fixed: shipping again runs a new run; main is already there, the deploy runs again.
    fixed = build(command=deploy_command(seen))
    again = await ship(fixed)
    assert again.stopped is None and again.release.state is ReleaseState.SHIPPED
    assert [d["CONDUCTOR_VERSION"] for d in deploys(seen)] == ["v1", "v1"]


async def test_a_deploy_past_its_timeout_is_killed_with_its_children(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    tmp_path: Path,
    seen: Path,
) -> None:
    token = f"{tmp_path}/hanging-child"  # on the child's command line: found in /proc by it
    # the child first, then the record, then the wait
    hang = f"python3 -c 'import time; time.sleep(300)' {token} & " + deploy_command(seen, "wait")
    domain = build(command=hang, timeout=2)
    slug = await assembled(domain, origin, make_reviewed)

    outcome = await ship(domain)

    assert outcome.stopped == "the deploy command was killed after 2 s"
    assert deploys(seen)  # it ran
    assert await gone(token), "the deploy's child outlived its timeout"
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED


async def test_a_slow_health_gate_passes_on_the_third_check(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    health: HealthServer,
) -> None:
    domain = build()
    await assembled(domain, origin, make_reviewed)
    health.queue = [503, 503]
    outcome = await ship(domain)
    assert outcome.release.state is ReleaseState.SHIPPED
    assert health.checks == 3
    assert outcome.run is not None
    assert outcome.run.step("health").outcome["attempts"] == 3


async def test_production_never_healthy_is_a_hard_stop_with_the_rollback_ping(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    runner: FakeRunner,
    notes: FakeNotes,
    health: HealthServer,
) -> None:
    # a few checks, each answered 503 (a single check under load could time out instead)
    domain = build(health_timeout=3)
    slug = await assembled(domain, origin, make_reviewed)
    head = (await domain.releases.get(GUILD, slug)).rc_head
    health.then = 503
    outcome = await ship(domain)
    assert outcome.stopped is not None
    assert outcome.stopped.startswith("the deploy went out but production is not healthy")
    assert "status 503" in outcome.stopped
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED
    assert runner.calls == []  # no seal: nothing shipped
    [(_, text)] = notes.pings
    assert text.startswith(f"🚨 <@{OPERATOR.id}> {ROLE} ❌ The ship of `{slug}` v1 (run 1) stopped")
    assert f"git revert -m 1 {head} && bin/deploy {slug} v1" in text


async def test_main_moved_since_the_assembly_refuses_the_deploy(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
) -> None:
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    moved = origin.commit("main", {"hotfix.txt": "1\n"}, new=False)
    outcome = await ship(domain)
    assert outcome.stopped is not None and outcome.stopped.startswith(
        "`main` moved since the assembly"
    )
    assert git(origin.bare, "rev-parse", "main") == moved  # untouched
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED


async def test_a_refused_push_stops_the_ship(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
) -> None:
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    hook = origin.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    outcome = await ship(domain)
    assert outcome.stopped is not None
    assert outcome.stopped.startswith("The push of `main` to `origin` was refused")
    assert "main is protected" in outcome.stopped
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED


async def test_one_running_ship_per_release_and_the_lease_decides_who_drives(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    db: Database,
) -> None:
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    mine = Runs(db, owner="proc-a", lease_s=60)
    theirs = Runs(db, owner="proc-b", lease_s=60)
    run = await open_run(domain, RunKind.SHIP, slug, runs=mine)
    with pytest.raises(RunRunning, match="already running"):
        await ship(domain, release_slug=slug)
    assert not await theirs.claim(run.id)  # a live lease is respected
    assert await mine.claim(run.id)  # and renewed by its owner
    expired = Runs(db, owner="proc-a", lease_s=-1)  # as if proc-a stalled
    assert await expired.renew(run.id)
    assert await theirs.claim(run.id)  # past the lease: taken over
    with pytest.raises(Exception, match="held by another process"):
        await mine.mark(run.id, "deploy", StepStatus.RUNNING)  # the fence
    assert not await mine.renew(run.id)
    assert os.getpid() > 0


@pytest.fixture
def processes() -> Iterator[dict[str, int]]:
    """Pids of this host: a process alive, one that exited, one killed and not yet reaped."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    zombie.kill()
    deadline = time.monotonic() + 60  # an outer bound: a loaded machine takes its time
    while time.monotonic() < deadline:  # killed, not reaped: /proc shows it as a zombie
        if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    try:
        yield {"alive": alive.pid, "exited": exited.pid, "zombie": zombie.pid}
    finally:
        alive.kill()
        alive.wait()
        zombie.wait()


async def test_a_run_whose_process_is_gone_is_taken_up_at_once_not_after_its_lease(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    db: Database,
    processes: dict[str, int],
) -> None:
    """A bot killed mid-ship and restarted on the same host takes its run up at start: its
    owner's process is gone (exited, or killed and not yet reaped), so its lease is not
    waited out. A live process, another host, or an owner in another form keeps the run."""
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    host = socket.gethostname()[:60]
    run = await open_run(domain, RunKind.SHIP, slug, runs=Runs(db, owner="first", lease_s=-1))

    async def held_by(owner: str) -> Runs:
        """``owner`` holds the run now with a long lease (the one before it ran out)."""
        holder = Runs(db, owner=owner, lease_s=600)
        assert await holder.claim(run.id), owner
        return holder

    restarted = Runs(db, lease_s=60)
    for what, owner in (
        ("alive", f"{host}:{processes['alive']}:aaaa1111"),
        ("on another host", f"not-{host}:{processes['exited']}:bbbb2222"),
        ("in another form", "proc-a"),
    ):
        await held_by(owner)
        assert not await restarted.claim(run.id), f"claimed from a process {what}"
        await Runs(db, owner=owner, lease_s=-1).renew(run.id)  # its lease runs out
    for what, pid in (("exited", processes["exited"]), ("killed, not reaped", processes["zombie"])):
        dead = await held_by(f"{host}:{pid}:cccc3333")
        assert await restarted.claim(run.id), f"not taken from a process {what}"
        with pytest.raises(Exception, match="held by another process"):
            await dead.mark(run.id, "deploy", StepStatus.RUNNING)  # the fence holds
        await Runs(db, owner=restarted.owner, lease_s=-1).renew(run.id)


async def test_abandon_waits_for_a_running_ship(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
) -> None:
    domain = build()
    slug = await assembled(domain, origin, make_reviewed)
    run = await open_run(domain, RunKind.SHIP, slug)  # a ship in flight
    with pytest.raises(
        InvalidMove, match=r"is being shipped .* abandon it once the ship has ended"
    ):
        await domain.releases.abandon(GUILD, "changed my mind", OPERATOR)
    await end_run(domain, run)
    abandoned = await domain.releases.abandon(GUILD, "changed my mind", OPERATOR)
    assert abandoned.state is ReleaseState.ABANDONED


async def test_a_ship_taken_over_by_another_process_stops_and_writes_nothing_more(
    origin: Origin,
    make_reviewed: MakeReviewed,
    db: Database,
    runner: FakeRunner,
    notes: FakeNotes,
    clone: Path,
    health: HealthServer,
) -> None:
    """Lost at a step boundary (another process took the run, as if this one stalled past its
    lease): the drive stops as taken over, it is not recorded as a refusal, and the flip is
    left to the new owner."""

    def stolen(point: str) -> None:
        if point == "ship:deploy:done":
            write_aside(
                db, "UPDATE ship_runs SET owner = 'thief', lease_until = '2999-01-01 00:00:00'"
            )

    domain = bootstrap(
        database=db,
        runner=runner,
        notes=notes,
        app={**TEST_APP, "production_url": health.url},
        git={"path": str(clone)},
        checkpoint=stolen,
    )
    slug = await assembled(domain, origin, make_reviewed)

    outcome = await ship(domain)

    assert outcome.stopped == "another process took the run over"
    [run] = await domain.runs.runs.unfinished(GUILD)
    assert run.status is RunStatus.RUNNING and run.error is None
    assert run.step("ship").status is StepStatus.PENDING
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLED
    assert notes.posts == []
