"""``/release assemble`` with git, on real repositories in temp dirs: a bare origin the agents
push their branches to, and the clone Conductor owns. The RC branch, its tests, conflicts,
missing and hostile branches; without git, the state change alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conductor.bootstrap import Conductor, bootstrap
from conductor.errors import ReleaseChanged
from conductor.releases.git import (
    GitConfigError,
    GitFailed,
    GitRepository,
    MergeConflict,
    parse_git_config,
)
from conductor.releases.sandbox import run_logged
from conductor.states import RcTestsStatus, ReleaseState, TaskState
from store.db import Database
from tests.helpers import GUILD, OPERATOR, FakeRunner, MakeReviewed, Origin, git


@pytest.fixture
def git_table(clone: Path) -> dict[str, object]:
    return {"path": str(clone), "main": "main", "remote": "origin"}


@pytest.fixture
def domain(db: Database, runner: FakeRunner, git_table: dict[str, object]) -> Conductor:
    return bootstrap(database=db, runner=runner, git=git_table)


async def _open_with(domain: Conductor, make_reviewed: MakeReviewed, *members: str) -> str:
    for slug in members:
        await make_reviewed(slug)
    slug = (await domain.releases.open(GUILD, "train", OPERATOR)).slug
    for member in members:
        await domain.releases.add_task(GUILD, member, OPERATOR)
    return slug


def clean(clone: Path) -> None:
    """No merge in progress, nothing changed, no worktree left behind."""
    assert git(clone, "status", "--porcelain") == ""
    assert not (clone / ".git" / "MERGE_HEAD").exists()
    assert len(git(clone, "worktree", "list").splitlines()) == 1


async def test_members_merge_in_dependency_order_into_one_release_commit(
    db: Database, runner: FakeRunner, git_table: dict[str, object], origin: Origin,
    clone: Path, make_reviewed: MakeReviewed,
) -> None:  # fmt: skip
    domain = bootstrap(
        database=db, runner=runner,
        git={**git_table, "test_command": "test -f core.txt && test -f api.txt && test -f ui.txt"},
    )  # fmt: skip
    base = git(origin.bare, "rev-parse", "main")
    origin.commit("feat/core", {"core.txt": "core\n"})
    origin.commit("feat/api", {"api.txt": "api\n"})
    origin.commit("feat/ui", {"ui.txt": "ui\n"})
    await make_reviewed("core")
    await make_reviewed("api", depends_on="core")
    await make_reviewed("ui", depends_on="api")
    slug = (await domain.releases.open(GUILD, "train", OPERATOR)).slug
    for member in ("core", "api", "ui"):  # added in dependency order (the only order allowed)
        await domain.releases.add_task(GUILD, member, OPERATOR)
    steps: list[str] = []

    async def progress(step: str, view: object) -> None:
        steps.append(step)

    outcome = await domain.assembly.assemble(GUILD, OPERATOR, progress=progress)
    assert steps == ["merge", "test"]
    assert outcome.assembled and outcome.rc is not None and outcome.tests is not None
    assert outcome.tests.passed and "killed" not in outcome.tests.tail
    release = await domain.releases.get(GUILD, slug)
    assert release.state is ReleaseState.ASSEMBLED
    assert release.rc_branch == f"release/{slug}" and release.rc_base == base
    assert release.rc_head == git(clone, "rev-parse", f"refs/heads/release/{slug}")
    assert list(release.rc_merges) == ["core", "api", "ui"]
    # One release commit over main: its first parent is main, its second the member merges.
    parents = git(clone, "rev-list", "--parents", "-n", "1", release.rc_head).split()[1:]
    assert parents[0] == base
    chain = git(clone, "rev-list", "--first-parent", f"{base}..{parents[1]}").split()
    assert chain == [release.rc_merges[s] for s in ("ui", "api", "core")]
    assert git(clone, "log", "-1", "--format=%s", release.rc_merges["core"]) == (
        f"Merge task core (feat/core) into release/{slug}"
    )
    assert release.rc_tests is not None and release.rc_tests.status is RcTestsStatus.PASSED
    assert release.rc_tests.log is not None and Path(release.rc_tests.log).is_file()
    assert {(await domain.tasks.card(GUILD, s)).task.state for s in ("core", "api", "ui")} == {
        TaskState.ASSEMBLED
    }
    clean(clone)


async def test_failing_tests_keep_the_release_assembling_with_the_last_lines(
    db: Database, runner: FakeRunner, git_table: dict[str, object], origin: Origin,
    clone: Path, make_reviewed: MakeReviewed,
) -> None:  # fmt: skip
    command = "echo running the suite; for f in *.txt; do grep -q BROKEN $f && echo FAIL $f && exit 3; done; echo ok"
    domain = bootstrap(database=db, runner=runner, git={**git_table, "test_command": command})
    origin.commit("feat/good", {"good.txt": "fine\n"})
    origin.commit("feat/bad", {"bad.txt": "BROKEN\n"})
    slug = await _open_with(domain, make_reviewed, "good", "bad")
    outcome = await domain.assembly.assemble(GUILD, OPERATOR)
    assert not outcome.assembled
    assert outcome.tests is not None and not outcome.tests.passed
    assert outcome.tests.returncode == 3
    assert outcome.tests.tail == "running the suite\nFAIL bad.txt"
    release = await domain.releases.get(GUILD, slug)
    assert release.state is ReleaseState.ASSEMBLING
    assert release.rc_tests is not None and release.rc_tests.status is RcTestsStatus.FAILED
    assert release.rc_tests.tail == "running the suite\nFAIL bad.txt"
    assert release.rc_head is not None  # the RC that failed is kept, to look at
    await domain.releases.remove_task(GUILD, "bad", OPERATOR)
    again = await domain.assembly.assemble(GUILD, OPERATOR)
    assert again.assembled and list(again.release.rc_merges) == ["good"]
    clean(clone)


async def test_a_conflict_names_the_task_and_files_and_leaves_the_clone_clean(
    domain: Conductor, origin: Origin, clone: Path, make_reviewed: MakeReviewed
) -> None:
    origin.commit("feat/one", {"app.txt": "v1 by one\n", "one.txt": "1\n"})
    origin.commit("feat/two", {"app.txt": "v1 by two\n", "two.txt": "2\n"})
    slug = await _open_with(domain, make_reviewed, "one", "two")
    with pytest.raises(MergeConflict) as conflict:
        await domain.assembly.assemble(GUILD, OPERATOR)
    assert conflict.value.task == "two" and conflict.value.files == ("app.txt",)
    assert (conflict.value.with_main, conflict.value.members) == ((), {"one": ("app.txt",)})
    assert str(conflict.value) == (
        "Task `two` (`feat/two`) conflicts with task `one` merged before it in `app.txt`. "
        "Nothing was assembled; the release stays assembling. Rebase the branch, or "
        "`/release remove` the task."
    )
    release = await domain.releases.get(GUILD, slug)
    assert release.state is ReleaseState.ASSEMBLING and release.rc_head is None
    assert git(clone, "branch", "--list", f"release/{slug}") == ""
    clean(clone)


async def test_a_conflict_with_main_itself_says_main_moved_not_an_earlier_member(
    domain: Conductor, origin: Origin, clone: Path, make_reviewed: MakeReviewed
) -> None:
    """The first member conflicts with nothing merged before it: main moved since its branch
    was made. A later one conflicting with main and with an earlier member names both."""
    origin.commit("feat/one", {"app.txt": "v1 by one\n"})
    origin.commit("feat/two", {"two.txt": "2 by two\n", "app.txt": "v0\n", "lib.txt": "two\n"})
    origin.commit("feat/three", {"lib.txt": "three\n", "app.txt": "v1 by three\n"})
    origin.hotfix({"app.txt": "v0, fixed by hand\n"}, "hotfix: app")
    slug = await _open_with(domain, make_reviewed, "one")
    with pytest.raises(MergeConflict) as conflict:
        await domain.assembly.assemble(GUILD, OPERATOR)
    assert (conflict.value.with_main, conflict.value.members) == (("app.txt",), {})
    assert str(conflict.value) == (
        "Task `one` (`feat/one`) conflicts with `main` (it moved since the branch was made) in "
        "`app.txt`. Nothing was assembled; the release stays assembling. Rebase the branch on "
        "`main`, or `/release remove` the task."
    )
    clean(clone)

    await domain.releases.remove_task(GUILD, "one", OPERATOR)
    for task in ("two", "three"):
        await make_reviewed(task)
        await domain.releases.add_task(GUILD, task, OPERATOR)
    with pytest.raises(MergeConflict) as both:
        await domain.assembly.assemble(GUILD, OPERATOR)
    assert both.value.task == "three"
    assert str(both.value).startswith(
        "Task `three` (`feat/three`) conflicts with `main` (it moved since the branch was made) "
        "in `app.txt`, and with task `two` merged before it in `lib.txt`. Nothing was "
        "assembled"
    )
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLING
    clean(clone)


async def test_a_missing_branch_is_named(
    domain: Conductor, origin: Origin, clone: Path, make_reviewed: MakeReviewed
) -> None:
    origin.commit("feat/here", {"here.txt": "1\n"})
    slug = await _open_with(domain, make_reviewed, "here", "gone")
    with pytest.raises(GitFailed, match=r"does not exist on `origin`: `feat/gone` \(task `gone`\)"):
        await domain.assembly.assemble(GUILD, OPERATOR)
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLING
    clean(clone)


async def test_a_hostile_branch_never_reaches_git(clone: Path, tmp_path: Path) -> None:
    # A task stored before branch names were checked: the assembly refuses it by itself.
    repo = GitRepository(parse_git_config({"path": str(clone)}))
    pwned = tmp_path / "pwned"
    for branch in (f"--upload-pack=touch {pwned}", "-x", "a..b", f"$(touch {pwned})"):
        with pytest.raises(GitFailed, match=r"not a branch name|does not exist"):
            await repo.build_rc("2026-12-01-x", [("evil", branch)])
    assert not pwned.exists()
    clean(clone)


async def test_members_changed_during_the_build_refuse_the_flip(
    domain: Conductor, origin: Origin, clone: Path, make_reviewed: MakeReviewed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    origin.commit("feat/a", {"a.txt": "a\n"})
    origin.commit("feat/b", {"b.txt": "b\n"})
    slug = await _open_with(domain, make_reviewed, "a", "b")
    repo = domain.assembly.repo
    assert repo is not None
    build = repo.build_rc

    async def slow_build(release: str, members: object) -> object:
        built = await build(release, members)  # type: ignore[arg-type]
        await domain.releases.remove_task(GUILD, "b", OPERATOR)  # meanwhile, an operator
        return built

    monkeypatch.setattr(repo, "build_rc", slow_build)
    with pytest.raises(ReleaseChanged, match="changed while it was being assembled"):
        await domain.assembly.assemble(GUILD, OPERATOR)
    assert (await domain.releases.get(GUILD, slug)).state is ReleaseState.ASSEMBLING


async def test_without_git_assembly_is_the_state_change_alone(
    db: Database, runner: FakeRunner, make_reviewed: MakeReviewed
) -> None:
    plain = bootstrap(database=db, runner=runner)
    await make_reviewed("solo")
    await plain.releases.open(GUILD, "plain", OPERATOR)
    await plain.releases.add_task(GUILD, "solo", OPERATOR)
    outcome = await plain.assembly.assemble(GUILD, OPERATOR)
    assert outcome.assembled and outcome.rc is None and outcome.tests is None
    assert outcome.release.rc_head is None and not plain.assembly.slow


async def test_a_command_past_its_time_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 60 & echo $! > {pids}; echo started; wait"
    run = await run_logged(
        command, cwd=tmp_path, log_path=tmp_path / "out.log", limit_s=1.0, env={}
    )
    assert run.timed_out and not run.passed
    assert run.tail == "started\n(killed after 1 s)"
    child = int(pids.read_text())
    # the kill is sent to the group; reaping may take a moment (an outer bound: a minute)
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        if not Path(f"/proc/{child}").exists() or "Z" in _state(child):
            break
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "git.path: Field required"),
        ({"path": "/x", "main": "--evil"}, "git.main: Value error, not a branch name"),
        ({"path": "/x", "remote": "a b"}, "git.remote: Value error, a remote's name"),
        ({"path": "/x", "test_timeout": 0}, "git.test_timeout: Input should be greater than 0"),
        ({"path": "/x", "tests": "make"}, "git.tests: Extra inputs are not permitted"),
    ],
)
def test_a_broken_git_table_names_the_field(table: dict[str, object], message: str) -> None:
    with pytest.raises(GitConfigError) as refused:
        parse_git_config(table)
    assert str(refused.value).startswith(message)


async def test_commands_never_see_the_token_or_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test command runs the agents' code: Conductor's secrets stay out of its environment.
    monkeypatch.setenv("CONDUCTOR_DISCORD_TOKEN", "NzA5.secret-token")
    monkeypatch.setenv("CONDUCTOR_DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("HARMLESS", "kept")
    run = await run_logged(
        "env | sort", cwd=tmp_path, log_path=tmp_path / "env.log", limit_s=10,
        env={"CONDUCTOR_RELEASE": "r"},
    )  # fmt: skip
    seen = (tmp_path / "env.log").read_text()
    assert run.passed and "HARMLESS=kept" in seen and "CONDUCTOR_RELEASE=r" in seen
    assert "secret-token" not in seen and "pw@db" not in seen
