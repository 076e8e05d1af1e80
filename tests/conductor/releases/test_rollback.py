"""The rollback run with git, a deploy command and a health URL, all real: a bare origin and a
clone, a shell command that writes what it saw in its environment, an HTTP server on
127.0.0.1, a fake smoke runner. The whole run, the refusals (nothing shipped, not shipped, not
the last shipped, rolled back already, a run in progress, nothing to roll back to), and each
failure (the revert conflicting, the deploy failing, production never healthy), each reported
in the thread with what was done and what was not, and leaving a consistent state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conductor.bootstrap import Conductor
from conductor.errors import ConductorError, HeldTrain, InvalidMove, NotFound
from conductor.queries import held_by, require_release
from conductor.releases.git import REVERT_TRAILER
from conductor.releases.runs.driver import Checkpoint
from conductor.releases.runs.rollback import Rollback
from conductor.releases.runs.sink import AlertAction
from conductor.releases.runs.store import RunRunning
from conductor.states import (
    ReleaseState,
    RunKind,
    RunStatus,
    SealStatus,
    StepStatus,
    TaskState,
)
from conductor.text import half_rollback_text, held_over_line
from conductor.views import Actor
from store.db import Database
from tests.helpers import (
    GUILD,
    OPERATOR,
    ROLE,
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
    open_run,
    plan_rollback,
    roll_back,
    ship,
    write_aside,
)

#: the environment the deploy command writes down, each run one JSON line
SEEN = ("CONDUCTOR_RELEASE", "CONDUCTOR_VERSION", "CONDUCTOR_SHA", "CONDUCTOR_ROLLBACK_OF")
CARL = Actor("carl", 502)
#: fails only when it deploys a rollback
FAILS_ON_ROLLBACK = (
    'if [ -n "$CONDUCTOR_ROLLBACK_OF" ]; then echo "no route to host" >&2; exit 7; fi'
)


async def shipped(
    domain: Conductor,
    make_reviewed: MakeReviewed,
    name: str,
    task: str,
    origin: Origin | None = None,
    files: dict[str, str] | None = None,
) -> str:
    """Release ``name`` with the one member ``task`` (its branch pushed to the origin with
    ``files``), assembled and shipped; its slug."""
    if origin is not None:
        origin.commit(f"feat/{task}", files or {f"{task}.txt": f"{task}\n"})
    await make_reviewed(task)
    slug = (await domain.releases.open(GUILD, name, OPERATOR)).slug
    await domain.releases.add_task(GUILD, task, OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    outcome = await ship(domain)
    assert outcome.stopped is None and outcome.release.state is ReleaseState.SHIPPED, outcome
    return slug


def reverts(origin: Origin) -> list[str]:
    """The commits on the origin's main that carry the rollback trailer."""
    out = git(origin.bare, "log", "--format=%H", f"--grep={REVERT_TRAILER}", "main")
    return out.split()


def files_on(origin: Origin, ref: str) -> set[str]:
    return set(git(origin.bare, "ls-tree", "--name-only", ref).split())


async def member_states(domain: Conductor, *slugs: str) -> dict[str, tuple[TaskState, str | None]]:
    out = {}
    for slug in slugs:
        task = (await domain.tasks.card(GUILD, slug)).task
        out[slug] = (task.state, task.release_slug)
    return out


async def test_a_rollback_reverts_main_deploys_the_previous_version_gates_flips_and_seals(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    runner: FakeRunner,
    health: HealthServer,
    seen: Path,
) -> None:
    domain = build(command=deploy_command(seen, keys=SEEN))
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    runner.then({"/signin": "selector form input[type=password] not found"})  # v2 is red
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    v1, v2 = [await domain.releases.get(GUILD, s) for s in (first, second)]
    assert v2.merge_sha is not None and git(origin.bare, "rev-parse", "main") == v2.merge_sha
    checks_before, seals_before = health.checks, len(runner.calls)

    plan = await plan_rollback(domain)
    assert (plan.release.slug, plan.previous and plan.previous.slug) == (second, first)
    assert plan.after is None and plan.production == f"Production is `{first}` v1 again"
    assert plan.members == ("ui",)
    assert f"git revert -m 1 {v2.merge_sha}" in plan.commands[0]
    assert plan.commands[1].startswith("git push origin HEAD:refs/heads/main")
    assert f"CONDUCTOR_RELEASE={first} CONDUCTOR_VERSION=v1" in plan.commands[2]

    outcome = await roll_back(domain, reason="checkout is broken")

    assert outcome.stopped is None and outcome.run is not None, outcome
    assert outcome.run.kind is RunKind.ROLLBACK and outcome.run.status is RunStatus.DONE
    assert [s.name for s in outcome.run.steps] == list(Rollback.steps)
    assert {s.status for s in outcome.run.steps} == {StepStatus.DONE}
    # main on the origin has the revert: ui.txt gone, the tree is v1's again
    [revert] = reverts(origin)
    assert git(origin.bare, "rev-parse", "main") == revert
    assert git(origin.bare, "rev-parse", "main^") == v2.merge_sha
    assert git(origin.bare, "rev-parse", "main^{tree}") == git(
        origin.bare, "rev-parse", f"{v1.merge_sha}^{{tree}}"
    )
    message = git(origin.bare, "log", "-1", "--format=%B", "main")
    assert message.startswith(f"Revert release {second} v2")
    assert "Rolled back by olga: checkout is broken" in message
    assert f"{REVERT_TRAILER}: {v2.merge_sha}" in message
    # the deploy saw the previous version; the gate and the seal ran
    assert deploys(seen)[-1] == {
        "CONDUCTOR_RELEASE": first,
        "CONDUCTOR_VERSION": "v1",
        "CONDUCTOR_SHA": revert,
        "CONDUCTOR_ROLLBACK_OF": second,
    }
    assert len(deploys(seen)) == 3  # two ships, one rollback
    assert health.checks == checks_before + 1
    assert len(runner.calls) == seals_before + 1
    # the release: rolled back, who, when, why; its member reviewed, free, with the move
    rolled = await domain.releases.get(GUILD, second)
    assert rolled.state is ReleaseState.ROLLED_BACK
    assert (rolled.rolled_back_by, rolled.rolled_back_by_id) == (OPERATOR.name, OPERATOR.id)
    assert rolled.rollback_reason == "checkout is broken" and rolled.rolled_back_at is not None
    assert rolled.seal_status is SealStatus.RED  # its own verdict stays
    assert await member_states(domain, "ui", "core") == {
        "ui": (TaskState.REVIEWED, None),
        "core": (TaskState.SHIPPED, first),
    }
    card = await domain.tasks.card(GUILD, "ui")
    last = card.timeline[-1]
    assert (last.from_state, last.to_state, last.trigger) == (
        TaskState.SHIPPED,
        TaskState.REVIEWED,
        "roll_back",
    )
    assert (last.actor, last.actor_id) == (OPERATOR.name, OPERATOR.id)
    # the seal of the production it left: on v1, in its history as a rollback's
    status = await domain.releases.status(GUILD)
    assert status.last_shipped is not None and status.last_shipped.slug == first
    assert status.last_shipped.seal_status is SealStatus.GREEN
    history = await domain.seals.history(GUILD, first)
    assert [s.trigger for s in history] == ["ship", "rollback"]
    assert [s.trigger for s in await domain.seals.history(GUILD, second)] == ["ship"]
    # the outcome in the thread, once
    [(where, [text], _)] = [p for p in notes.posts if "Rolled back" in p[1][0]]
    assert where == second
    lines = text.splitlines()
    assert lines[0].startswith(f"⏪ **Rolled back `{second}` v2** by olga <t:")
    assert lines[1:3] == ["Why: checkout is broken", f"Production is `{first}` v1 again."]
    assert lines[3] == f"↩️ `main` reverted by `{revert[:10]}` and pushed to `origin`"
    assert lines[4] == f"🚚 deployed `{first}` v1 again"
    assert lines[5].startswith("💚 healthy after 1 check")
    assert lines[6] == "🟢 Smoke seal: green — 6/6 checks passed"
    assert lines[7] == "👀 Back to reviewed, ready for another train: `ui`"
    assert len(notes.pings) == 1  # v2's red alert; the rollback's green seal pings nobody
    assert notes.actions == [AlertAction("rollback", second)]  # the alert offered Roll back


HOTFIX = "hotfix: the checkout button"


async def test_a_rollback_over_a_hotfix_pushed_by_hand_says_the_hotfix_stays_never_v1_again(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, notes: FakeNotes, seen: Path
) -> None:
    """Main moved past v2's merge (a hotfix pushed by hand): the revert undoes v2 and keeps the
    hotfix, so production runs v1's code plus the hotfix. The plan, the deploy's summary and
    the notes say so, by commit, and none of them calls it v1 again."""
    domain = build(command=deploy_command(seen, keys=SEEN))
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    v2 = await domain.releases.get(GUILD, second)
    hotfix = origin.hotfix({"fix.txt": "fixed\n"}, HOTFIX)
    stays = (
        f"`{first}` v1's code plus 1 commit pushed since `{second}` v2 shipped, which stays: "
        f"`{hotfix[:10]}` {HOTFIX}"
    )

    plan = await plan_rollback(domain)

    assert plan.after == f"`main` with `{second}` v2 reverted: {stays}"
    assert plan.production == f"Production runs `main` with `{second}` v2 reverted: {stays}"
    assert "again" not in plan.production
    assert git(origin.bare, "rev-parse", "main") == hotfix  # the plan changed nothing

    outcome = await roll_back(domain, reason="checkout is broken")

    assert outcome.stopped is None and outcome.release.state is ReleaseState.ROLLED_BACK
    [revert] = reverts(origin)
    assert git(origin.bare, "rev-parse", "main^") == hotfix  # reverted on top of the hotfix
    assert files_on(origin, "main") == {"README", "app.txt", "core.txt", "fix.txt"}  # no ui.txt
    assert deploys(seen)[-1]["CONDUCTOR_SHA"] == revert == git(origin.bare, "rev-parse", "main")
    assert v2.merge_sha is not None and outcome.run is not None
    assert outcome.run.step("revert").outcome["kept"] == [[hotfix, HOTFIX]]
    [(_, [text], _)] = [p for p in notes.posts if "Rolled back" in p[1][0]]
    lines = text.splitlines()
    assert lines[2] == (
        f"Production runs `main` at `{revert[:10]}` with `{second}` v2 reverted: {stays}."
    )
    assert lines[3] == f"↩️ `main` reverted by `{revert[:10]}` and pushed to `origin`"
    assert lines[4] == (
        f"🚚 deployed `main` at `{revert[:10]}`: `{first}` v1's code plus 1 commit pushed "
        f"since `{second}` v2 shipped"
    )
    assert "v1 again" not in text


async def test_what_main_holds_is_said_honestly_when_git_cannot_tell(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, db: Database, clone: Path
) -> None:
    """The plan reads main with a fetch; when the fetch fails, does not answer in time, or
    main cannot be read at all, the confirmation says so instead of "v1 again"."""
    domain = build()
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    origin.hotfix({"fix.txt": "fixed\n"}, HOTFIX)  # not yet fetched by the clone
    repo = domain.runs.parts.repo
    assert repo is not None
    reverted = f"`main` with `{second}` v2 reverted"
    anything = f"anything pushed onto `main` since `{second}` v2 shipped stays too"

    # the fetch cannot answer in time (the clone is busy): main as last fetched, said so
    repo.config = repo.config.model_copy(update={"look_timeout": 0.01})
    async with repo._lock:
        busy = await plan_rollback(domain)
    await asyncio.gather(*repo._fetching)  # the fetch goes on once the clone is free
    assert busy.after == (
        f"{reverted}: `{first}` v1 again as far as Conductor can tell (as Conductor's clone last "
        f"fetched `main`: its fetch did not answer within 0.01 s); {anything}"
    )

    # the fetch fails: the same, with why (waited for as long as a loaded machine needs: its
    # failure ends the wait)
    repo.config = repo.config.model_copy(update={"look_timeout": 60.0})
    git(clone, "remote", "set-url", "origin", str(clone.parent / "gone.git"))
    origin.hotfix({"more.txt": "more\n"}, "hotfix: another one")
    failed = await plan_rollback(domain)
    assert failed.after is not None
    assert failed.after.startswith(f"{reverted}: `{first}` v1's code plus 1 commit pushed since")
    assert "(as Conductor's clone last fetched `main`: its fetch failed: `git fetch` failed" in (
        failed.after
    )
    assert "v1 again" not in failed.production

    # main cannot be read at all (the merge commit is not in the clone)
    async with db.write() as session:
        row = await require_release(session, GUILD, second)
        row.merge_sha = "0" * 40
    unknown = await plan_rollback(domain)
    assert unknown.after == (
        f"{reverted}, and whatever else it holds: Conductor could not read `main` (The "
        f"release's merge commit `0000000000` is not in the clone: Conductor cannot read it.), "
        f"so it cannot say whether commits were pushed onto it since `{second}` v2 shipped"
    )


async def test_only_the_last_shipped_release_rolls_back_and_only_once(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, notes: FakeNotes
) -> None:
    domain = build()
    with pytest.raises(NotFound, match="Nothing has shipped yet"):
        await plan_rollback(domain)
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    await make_reviewed("api")
    active = (await domain.releases.open(GUILD, "third", OPERATOR)).slug
    with pytest.raises(NotFound, match="No release `nope`"):
        await plan_rollback(domain, "nope")
    with pytest.raises(InvalidMove, match=f"Release `{active}` is assembling; only a shipped"):
        await plan_rollback(domain, active)
    with pytest.raises(
        InvalidMove,
        match=rf"Release `{first}` v1 is not what production runs: `{second}` v2 shipped "
        r"after it\. Only the last shipped release can be rolled back\.",
    ):
        await roll_back(domain, release_slug=first)

    done = await roll_back(domain, release_slug=second, reason="bad")
    assert done.release.state is ReleaseState.ROLLED_BACK

    for attempt in (plan_rollback(domain, second),
                    roll_back(domain, release_slug=second)):  # fmt: skip
        with pytest.raises(
            InvalidMove,
            match=rf"Release `{second}` v2 was rolled back already, by olga at .* \(why: "
            rf"bad\)\. A release is rolled back once; production runs `{first}` v1 now\.",
        ):
            await attempt
    assert len(reverts(origin)) == 1
    # v1 is production again, so it is now the one a rollback means
    assert (await plan_rollback(domain)).release.slug == first


async def test_no_rollback_while_a_ship_runs_and_no_ship_while_a_rollback_runs(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, db: Database
) -> None:
    domain = build()
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    origin.commit("feat/ui", {"ui.txt": "ui\n"})
    await make_reviewed("ui")
    await domain.releases.open(GUILD, "second", OPERATOR)
    await domain.releases.add_task(GUILD, "ui", OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    active = (await domain.releases.status(GUILD)).active
    assert active is not None
    shipping = await open_run(domain, RunKind.SHIP, active.slug)  # in flight
    with pytest.raises(
        RunRunning,
        match=rf"A ship of `{active.slug}` is already running \(started by .*nothing was rolled back",
    ):
        await plan_rollback(domain)
    await end_run(domain, shipping)

    # a rollback in flight (its run opened, never driven) holds ships and other rollbacks
    run = await open_run(domain, RunKind.ROLLBACK, first)
    with pytest.raises(
        RunRunning, match=rf"A rollback of `{first}` is already running .*nothing was shipped"
    ):
        await ship(domain)
    with pytest.raises(RunRunning, match=rf"A rollback of `{first}` is already running"):
        await roll_back(domain, Actor("ana", 502))
    await end_run(domain, run)
    assert (await ship(domain)).release.state is ReleaseState.SHIPPED


async def test_a_conflicting_revert_is_reported_and_changes_nothing(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    runner: FakeRunner,
    seen: Path,
) -> None:
    domain = build(command=deploy_command(seen, keys=SEEN))
    await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin, {"app.txt": "v0\nui\n"})
    # a hotfix on main since: it edits the very line the release added
    git(origin.agent, "fetch", "--quiet", "origin")
    git(origin.agent, "checkout", "--quiet", "-B", "main", "origin/main")
    hotfix = origin.commit("main", {"app.txt": "v0\nui, fixed\n"}, new=False)
    seals, deployed = len(runner.calls), len(deploys(seen))

    outcome = await roll_back(domain)

    assert outcome.stopped is not None and "conflicts with what `main` has since" in outcome.stopped
    assert "`app.txt`" in outcome.stopped
    assert outcome.run is not None and outcome.run.status is RunStatus.FAILED
    assert outcome.run.step("revert").status is StepStatus.FAILED
    assert all(s.status is StepStatus.PENDING for s in outcome.run.steps[1:])
    assert git(origin.bare, "rev-parse", "main") == hotfix  # untouched
    assert reverts(origin) == []
    assert len(deploys(seen)) == deployed and len(runner.calls) == seals
    assert (await domain.releases.get(GUILD, second)).state is ReleaseState.SHIPPED
    assert await member_states(domain, "ui") == {"ui": (TaskState.SHIPPED, second)}
    [(_, [told], _)] = [p for p in notes.posts if "rollback of" in p[1][0]]
    assert told.startswith(
        f"❌ The rollback of `{second}` v2 (run 3) stopped at the revert step: Reverting"
    )
    assert "\nDone: nothing.\n" in told
    assert "Not done: the revert, the deploy, the health gate, the state change, the seal" in told
    assert f"`{second}` is still shipped: production may still run it." in told
    assert len(notes.pings) == 0  # nothing changed in production: no ping
    # the clone is clean for the next attempt
    assert git(Path(domain.runs.parts.repo.path), "status", "--porcelain") == ""  # type: ignore[union-attr]


async def test_a_failing_deploy_is_reported_and_the_next_attempt_does_not_revert_again(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    health: HealthServer,
    seen: Path,
) -> None:
    domain = build(command=deploy_command(seen, FAILS_ON_ROLLBACK, keys=SEEN))
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    checks = health.checks

    outcome = await roll_back(domain, reason="broken")

    assert outcome.stopped == "the deploy command failed (exit 7)"
    assert outcome.run is not None and outcome.run.status is RunStatus.FAILED
    [revert] = reverts(origin)  # the revert went out before the deploy failed
    assert git(origin.bare, "rev-parse", "main") == revert
    failed = outcome.run.step("deploy").outcome
    assert failed["tail"] == "deploying\nno route to host" and failed["sha"] == revert
    assert health.checks == checks  # no gate after a failed deploy
    assert (await domain.releases.get(GUILD, second)).state is ReleaseState.SHIPPED
    assert await member_states(domain, "ui") == {"ui": (TaskState.SHIPPED, second)}
    [(_, [told], _)] = [p for p in notes.posts if "rollback of" in p[1][0]]
    assert told.startswith(f"❌ The rollback of `{second}` v2 (run 3) stopped at the deploy step")
    assert "no route to host" in told
    assert f"Done: `main` reverted by `{revert[:10]}` and pushed to `origin`." in told
    assert "Not done: the deploy, the health gate, the state change, the seal, the notes." in told
    assert f"Main has the revert `{revert[:10]}`" in told
    [(_, ping)] = notes.pings  # production may still run the bad release: the operator is pinged
    assert ping.startswith(
        f"🚨 <@{OPERATOR.id}> {ROLE} ❌ The rollback of `{second}` v2 (run 3) stopped"
    )

    fixed = build(command=deploy_command(seen, keys=SEEN))
    again = await roll_back(fixed, reason="broken, deploy fixed")

    assert again.stopped is None and again.release.state is ReleaseState.ROLLED_BACK
    assert reverts(origin) == [revert]  # not reverted twice
    assert git(origin.bare, "rev-parse", "main") == revert
    assert again.run is not None
    assert again.run.step("revert").outcome["summary"] == (
        f"`main` already has the revert `{revert[:10]}` (an earlier attempt)"
    )
    assert deploys(seen)[-1]["CONDUCTOR_VERSION"] == "v1"
    assert deploys(seen)[-1]["CONDUCTOR_RELEASE"] == first
    assert await member_states(domain, "ui") == {"ui": (TaskState.REVIEWED, None)}


async def test_a_rollback_whose_deploy_failed_holds_the_train_until_it_is_finished(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    db: Database,
    seen: Path,
) -> None:
    """Main reverted, production still v2, v2 still shipped: the run's notice and the status
    say main and production disagree; a release opened before does not ship past it; opening
    one asks to confirm and records who; a second rollback that ends done clears it all."""
    domain = build(command=deploy_command(seen, FAILS_ON_ROLLBACK, keys=SEEN))
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    origin.commit("feat/api", {"api.txt": "api\n"})
    await make_reviewed("api")
    early = (await domain.releases.open(GUILD, "early", OPERATOR)).slug  # before the rollback
    await domain.releases.add_task(GUILD, "api", OPERATOR)

    outcome = await roll_back(domain, reason="broken")

    assert outcome.stopped == "the deploy command failed (exit 7)"
    [revert] = reverts(origin)
    half = (
        f"`main` and production disagree: `main` was reverted (`{revert[:10]}`) but production "
        f"still runs `{second}` v2: the rollback's deploy failed (run 3: the deploy command "
        "failed (exit 7))."
    )
    [(_, [told], _)] = [p for p in notes.posts if "rollback of" in p[1][0]]
    assert (
        f"\n⚠️ {half} The train is held until the rollback is finished (`/release rollback` "
        "again) or an operator opens a release over it (`/release open` asks to confirm).\n"
    ) in told
    status = await domain.releases.status(GUILD)
    assert status.half is not None and half_rollback_text(status.half) == half
    assert not status.held  # v2's seal is green: the rollback holds the train, not the seal
    async with db.read() as session:
        hold = await held_by(session, GUILD)
    assert hold is not None and (hold.slug, hold.sealed, hold.half) == (second, False, status.half)

    # the release opened before it is assembled on the reverted main: it does not ship past it
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    with pytest.raises(InvalidMove) as refused:
        await ship(domain)
    assert str(refused.value) == (
        f"Can't ship `{early}`: {half} `{early}` was opened before that, so it would ship "
        f"`main` without `{second}` v2's changes while `{second}` v2 still reads shipped. "
        "Finish the rollback first (`/release rollback` again), or abandon "
        f"`{early}` and open a new release over `{second}` v2 (`/release open` asks to "
        "confirm)."
    )
    assert len(deploys(seen)) == 3  # two ships, the failed rollback: nothing more
    await domain.releases.abandon(GUILD, "opened before the rollback", OPERATOR)

    # a new release opens only over it, confirmed, and that is recorded
    with pytest.raises(HeldTrain) as asked:
        await domain.releases.open(GUILD, "next", CARL)
    assert str(asked.value) == (
        f"⚠️ The train is held: the rollback of `{second}` v2 stopped half way. {half}\n"
        f"A release opened now is assembled on the reverted `main`: it would ship without "
        f"`{second}` v2's changes, while `{second}` v2 still reads shipped.\n"
        "Opening a release over it needs an operator's confirmation (`/release open` asks for "
        "it); or finish the rollback first (`/release rollback` again)."
    )
    opened = await domain.releases.open(GUILD, "next", CARL, over_held=second)
    assert (opened.held_over_slug, opened.held_over_seal, opened.held_over_revert) == (
        second,
        None,
        revert,
    )
    assert (opened.held_confirmed_by, opened.held_confirmed_by_id) == ("carl", 502)
    assert opened.held_confirmed_at is not None
    assert held_over_line(opened) == (
        f"⚠️ Opened over `{second}` half rolled back (`main` had its revert `{revert[:10]}`; "
        f"the rollback never finished) — confirmed by carl "
        f"<t:{int(opened.held_confirmed_at.timestamp())}:f>"
    )
    origin.commit("feat/web", {"web.txt": "web\n"})
    await make_reviewed("web")
    await domain.releases.add_task(GUILD, "web", OPERATOR)
    assert (await domain.assembly.assemble(GUILD, OPERATOR)).assembled
    cleared = await domain.runs.plan(RunKind.SHIP, GUILD, OPERATOR)  # opened over it: it may
    assert cleared.release.slug == opened.slug

    # the rollback finished: main and production agree, nothing holds the train
    fixed = build(command=deploy_command(seen, keys=SEEN))
    again = await roll_back(fixed, reason="broken, deploy fixed")

    assert again.stopped is None and again.release.state is ReleaseState.ROLLED_BACK
    assert reverts(origin) == [revert]
    status = await domain.releases.status(GUILD)
    assert status.half is None and status.last_shipped is not None
    assert status.last_shipped.slug == first
    async with db.read() as session:
        assert await held_by(session, GUILD) is None


async def test_production_never_healthy_after_the_rollback_is_a_hard_stop_with_a_ping(
    build: Build,
    origin: Origin,
    make_reviewed: MakeReviewed,
    notes: FakeNotes,
    health: HealthServer,
    seen: Path,
) -> None:
    domain = build(command=deploy_command(seen, keys=SEEN))
    await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    health.then = 503

    # the rollback's gate gives up after 0.5 s (the ships' gates had the default: a busy
    # machine may take longer than 0.5 s to see production healthy)
    strict = build(command=deploy_command(seen, keys=SEEN), health_timeout=0.5)
    outcome = await roll_back(strict)

    assert outcome.stopped is not None and outcome.stopped.startswith(
        "the rollback's deploy went out but production is not healthy"
    )
    assert (await domain.releases.get(GUILD, second)).state is ReleaseState.SHIPPED
    [(_, ping)] = notes.pings
    assert "stopped at the health step" in ping and f"<@{OPERATOR.id}>" in ping


async def test_a_red_seal_after_the_rollback_pings_and_offers_to_roll_back_the_previous_one(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, notes: FakeNotes, runner: FakeRunner
) -> None:
    domain = build()
    first = await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    runner.then({"/": "text Studio not found"})

    outcome = await roll_back(domain)

    assert (
        outcome.release.state is ReleaseState.ROLLED_BACK
        and outcome.seal is not None
        and outcome.seal.alarming
    )
    assert (await domain.releases.get(GUILD, first)).seal_status is SealStatus.RED
    assert (await domain.releases.get(GUILD, second)).seal_status is SealStatus.GREEN
    [(posted, ping)] = notes.pings
    assert ping.startswith(
        f"🚨 <@{OPERATOR.id}> {ROLE} the smoke seal of `{first}` v1 (after the rollback of "
        f"`{second}` v2) is **red**"
    )
    assert "Nothing more was rolled back" in ping
    assert notes.actions == [AlertAction("rollback", first)]
    assert posted == outcome.notes


async def test_the_first_release_rolls_back_to_what_ran_before_it(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, notes: FakeNotes, seen: Path
) -> None:
    """Nothing shipped before it: with git, the revert is what production goes back to (the
    deploy gets no release and no version, and main's SHA); the seal goes only into the
    release's history, whose own verdict stays."""
    domain = build(command=deploy_command(seen, keys=SEEN))
    only = await shipped(domain, make_reviewed, "only", "core", origin)
    plan = await plan_rollback(domain)
    assert plan.previous is None
    assert plan.commands[2].startswith(
        f"CONDUCTOR_RELEASE='' CONDUCTOR_VERSION='' CONDUCTOR_SHA=<main after the revert> "
        f"CONDUCTOR_ROLLBACK_OF={only} echo deploying"
    )
    assert plan.steps[-1].endswith(f"(recorded in `{only}`'s history only)")
    assert (
        plan.production == "Production is back to what ran before it (no release shipped before it)"
    )

    outcome = await roll_back(domain)

    assert outcome.release.state is ReleaseState.ROLLED_BACK
    [revert] = reverts(origin)
    assert files_on(origin, "main") == {"README", "app.txt"}
    assert deploys(seen)[-1] == {
        "CONDUCTOR_RELEASE": "",
        "CONDUCTOR_VERSION": "",
        "CONDUCTOR_SHA": revert,
        "CONDUCTOR_ROLLBACK_OF": only,
    }
    history = await domain.seals.history(GUILD, only)
    assert [s.trigger for s in history] == ["ship", "rollback"]
    release = await domain.releases.get(GUILD, only)
    assert release.seal_checked_at == history[0].checked_at  # its own verdict stays
    assert (await domain.releases.status(GUILD)).last_shipped is None
    [(_, [text], _)] = [p for p in notes.posts if "Rolled back" in p[1][0]]
    assert "Production is back to what ran before it (no release shipped before it)." in text


async def test_without_git_nothing_is_reverted_and_it_is_said(
    build: Build, make_reviewed: MakeReviewed, notes: FakeNotes, seen: Path
) -> None:
    domain = build(with_git=False)
    first = await shipped(domain, make_reviewed, "first", "core")
    second = await shipped(domain, make_reviewed, "second", "ui")

    outcome = await roll_back(domain)

    assert outcome.release.state is ReleaseState.ROLLED_BACK and outcome.run is not None
    statuses = {s.name: s.status for s in outcome.run.steps}
    assert statuses == {
        "revert": StepStatus.SKIPPED,
        "deploy": StepStatus.SKIPPED,
        "health": StepStatus.SKIPPED,
        "flip": StepStatus.DONE,
        "seal": StepStatus.DONE,
        "notes": StepStatus.DONE,
    }
    [(_, [text], _)] = [p for p in notes.posts if "Rolled back" in p[1][0]]
    assert "⏭️ the revert: no [git] is configured: main was not changed" in text
    assert "⏭️ the deploy: no deploy command is configured" in text
    assert f"Production is `{first}` v1 again." in text
    assert (await domain.releases.get(GUILD, second)).state is ReleaseState.ROLLED_BACK


async def test_without_git_a_deploy_command_has_nothing_to_go_back_to_before_the_first_release(
    build: Build, make_reviewed: MakeReviewed, seen: Path
) -> None:
    domain = build(with_git=False, command=deploy_command(seen, keys=SEEN))
    only = await shipped(domain, make_reviewed, "only", "core")
    with pytest.raises(
        InvalidMove,
        match=rf"Nothing to roll back to: no release shipped before `{only}` v1, and without "
        r"`\[git\]` there is no commit to deploy instead",
    ):
        await roll_back(domain)
    assert (await domain.releases.get(GUILD, only)).state is ReleaseState.SHIPPED


async def test_the_confirmation_never_shows_a_password_in_the_deploy_command(
    build: Build, origin: Origin, make_reviewed: MakeReviewed
) -> None:
    domain = build(command="curl -fsS https://ops:hunter2@deploy.example/hook")
    await shipped(build(), make_reviewed, "only", "core", origin)
    [*_, deploy] = (await plan_rollback(domain)).commands
    assert deploy.endswith("curl -fsS https://ops:***@deploy.example/hook")
    assert "hunter2" not in deploy


async def test_a_long_reason_is_refused_before_anything_runs(
    build: Build, origin: Origin, make_reviewed: MakeReviewed
) -> None:
    domain = build()
    slug = await shipped(domain, make_reviewed, "only", "core", origin)
    with pytest.raises(ConductorError, match="That reason is too long"):
        await roll_back(domain, reason="x" * 501)
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.SHIPPED
    assert reverts(origin) == []


def steal(db: Database, *, at: str) -> Checkpoint:
    """A checkpoint that, at ``point``, has another process take the running run over (as if
    this one had stalled past its lease), straight in the database."""

    def checkpoint(reached: str) -> None:
        if reached != at:
            return
        write_aside(
            db,
            "UPDATE ship_runs SET owner = 'thief', lease_until = '2999-01-01 00:00:00'"
            " WHERE status = 'running'",
        )

    return checkpoint


async def test_a_rollback_taken_over_by_another_process_writes_nothing_more(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, db: Database, seen: Path
) -> None:
    domain = build(command=deploy_command(seen, keys=SEEN))
    await shipped(domain, make_reviewed, "first", "core", origin)
    second = await shipped(domain, make_reviewed, "second", "ui", origin)
    taken = build(
        command=deploy_command(seen, keys=SEEN), checkpoint=steal(db, at="rollback:revert:done")
    )

    outcome = await roll_back(taken)

    assert outcome.stopped == "another process took the run over"
    assert len(deploys(seen)) == 2  # the ships': the fenced run deployed nothing
    [run] = await taken.runs.runs.unfinished(GUILD)
    assert run.status is RunStatus.RUNNING and run.step("revert").status is StepStatus.DONE
    assert run.step("deploy").status is StepStatus.PENDING  # left for its new owner
    assert (await domain.releases.get(GUILD, second)).state is ReleaseState.SHIPPED


async def test_a_step_the_domain_refuses_is_told_with_what_was_done(
    build: Build, origin: Origin, make_reviewed: MakeReviewed, db: Database, notes: FakeNotes
) -> None:
    """The flip refused (a release shipped after this one, behind the run's back): the run
    ends failed at the flip, and the thread hears it with what was done."""
    await shipped(build(), make_reviewed, "first", "core", origin)
    second = await shipped(build(), make_reviewed, "second", "ui", origin)

    def sneak(reached: str) -> None:
        if reached == "rollback:health:skipped":
            write_aside(
                db,
                "INSERT INTO releases (guild_id, slug, name, state, opened_by, opened_at,"
                " version, row_version) VALUES (:guild, 'sneaky', 'sneaky', 'shipped', 'x',"
                " '2025-01-01 00:00:00', 9, 1)",
                {"guild": GUILD},
            )

    outcome = await roll_back(build(checkpoint=sneak))

    assert outcome.stopped is not None
    assert outcome.stopped.startswith(f"Release `{second}` is not what production runs: `sneaky`")
    assert outcome.run is not None and outcome.run.status is RunStatus.FAILED
    assert outcome.run.step("flip").status is StepStatus.FAILED
    assert (await build().releases.get(GUILD, second)).state is ReleaseState.SHIPPED
    [(_, [told], _)] = [p for p in notes.posts if "rollback of" in p[1][0]]
    assert told.startswith(
        f"❌ The rollback of `{second}` v2 (run 3) stopped at the flip step: Release"
    )
    assert "\nNot done: the state change, the seal, the notes.\n" in told
