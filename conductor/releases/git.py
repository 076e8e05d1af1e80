"""The release's git side, through the real ``git`` CLI run asynchronously: the RC branch
built from main with each member merged ``--no-ff`` in merge order, the test command on its
head, and (at the ship) main fast-forwarded to it and pushed.

Nothing here builds a shell string from user text: git gets its arguments as a list, branch
names are checked (:func:`conductor.branches.branch_problem`) and always passed as full
refnames (``refs/remotes/origin/<branch>``), which can never read as an option. Only the
operator's own ``test_command`` runs through a shell.

The RC is one merge commit over main (``Release <slug>``), whose second parent is the chain of
member merges. Main fast-forwards to it at the ship, so the release's merge SHA is that commit
and ``git revert -m 1 <merge sha>`` undoes the whole release at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conductor.branches import branch_problem
from conductor.errors import ConductorError
from conductor.releases.sandbox import (
    CommandRun,
    Grant,
    Limits,
    Network,
    Sandbox,
    SandboxError,
    SandboxMode,
    absolute_paths,
    scrubbed_environment,
)
from conductor.text import clip

log = logging.getLogger(__name__)

_REMOTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: what git never takes from anywhere but Conductor: hooks (a release may have planted one in
#: the clone), the file-system monitor (a program the config names)
HARDENED = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
#: the system's and the user's git config are not read: only the clone's own (the operator's:
#: no command of the release can reach it), so a filter, a merge driver or a hook a release's
#: ``.gitattributes`` names is defined nowhere
ISOLATED = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
#: who Conductor's merge commits are by
IDENTITY = {
    "GIT_AUTHOR_NAME": "Conductor",
    "GIT_AUTHOR_EMAIL": "conductor@localhost",
    "GIT_COMMITTER_NAME": "Conductor",
    "GIT_COMMITTER_EMAIL": "conductor@localhost",
}


class GitConfigError(ValueError):
    """The ``[git]`` table is malformed; the message names the field."""


class GitConfig(BaseModel):
    """The ``[git]`` table: a local clone Conductor owns, its main branch and remote, and the
    test command run on each RC head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    main: str = "main"
    #: the remote agents push their branches to; None: the clone's own branches
    remote: str | None = "origin"
    test_command: str | None = None
    test_timeout: float = Field(default=1800.0, gt=0)
    #: how the test and deploy commands run: in bubblewrap, or (written explicitly) not
    sandbox: SandboxMode = SandboxMode.BWRAP
    #: the test command's network: none (its own loopback only), or the host's
    test_network: Network = "none"
    #: paths the test command may read besides the system (a toolchain outside /usr)
    test_read: tuple[str, ...] = ()
    #: the test command's CPU, memory, processes, files and output
    limits: Limits = Limits()
    #: each git command (a fetch, a push)
    timeout: float = Field(default=120.0, gt=0)
    #: how long a confirmation waits for its fetch (Discord wants an answer within 3 s);
    #: past it, it speaks from the clone as last fetched, and says so
    look_timeout: float = Field(default=2.0, gt=0)

    @field_validator("main")
    @classmethod
    def _branch(cls, value: str) -> str:
        if (problem := branch_problem(value)) is not None:
            raise ValueError(f"not a branch name: {problem}")
        return value

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        if value is not None and not _REMOTE.fullmatch(value):
            raise ValueError("a remote's name: letters, digits, '.', '_', '-'")
        return value

    @field_validator("test_network", mode="before")
    @classmethod
    def _network(cls, value: object) -> object:
        return {False: "none", True: "host"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("test_read")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return absolute_paths(value)

    @field_validator("test_command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        return value if value is None or value.strip() else None


def parse_git_config(table: Mapping[str, Any]) -> GitConfig:
    try:
        return GitConfig.model_validate(table)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem.get("loc", ()))
        raise GitConfigError(f"git.{field}: {problem.get('msg', 'invalid')}") from None


class GitFailed(ConductorError):
    """A git step could not be done; the text says what and what to do."""


def _files(files: Sequence[str]) -> str:
    shown = ", ".join(f"`{f}`" for f in files[:10]) or "(git named no file)"
    return shown + (f" and {len(files) - 10} more" if len(files) > 10 else "")


class MergeConflict(GitFailed):
    """A member's branch conflicts: with main itself (``main``: the files; main moved since
    the branch was made), with members merged before it (``members``: each with the files
    its merge touched), or both. Neither known: with what was merged before it."""

    def __init__(
        self,
        task: str,
        branch: str,
        files: Sequence[str],
        *,
        main: str = "main",
        with_main: Sequence[str] = (),
        members: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        members = dict(members or {})
        said: list[str] = []
        if with_main:
            said.append(
                f"with `{main}` (it moved since the branch was made) in {_files(with_main)}"
            )
        if members:
            named = ", ".join(f"`{m}`" for m in members)
            touched = sorted({f for fs in members.values() for f in fs})
            said.append(
                f"with task{'s' if len(members) != 1 else ''} {named} merged before it in "
                f"{_files(touched)}"
            )
        if not said:
            said.append(f"with what was merged before it, in {_files(files)}")
        rebase = f"Rebase the branch on `{main}`" if with_main else "Rebase the branch"
        super().__init__(
            f"Task `{task}` (`{branch}`) conflicts {', and '.join(said)}. Nothing was "
            f"assembled; the release stays assembling. {rebase}, or `/release remove` the task."
        )
        self.task, self.branch, self.files = task, branch, tuple(files)
        self.with_main, self.members = tuple(with_main), {m: tuple(f) for m, f in members.items()}


class RevertConflict(GitFailed):
    def __init__(self, sha: str, main: str, files: Sequence[str]) -> None:
        super().__init__(
            f"Reverting `{sha[:10]}` conflicts with what `{main}` has since, in {_files(files)}. "
            f"`{main}` was not changed."
        )
        self.sha, self.files = sha, tuple(files)


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    subject: str


#: the commits a reading of main keeps, newest first (the rest are counted)
SINCE_KEPT = 10


@dataclass(frozen=True, slots=True)
class MainSince:
    """What main has after a release's merge commit: its head, and the commits on it since
    (first parents, newest first, Conductor's own revert of that merge left out): pushed by
    hand, they stay whatever the revert undoes."""

    head: str
    #: at most :data:`SINCE_KEPT` of them; ``count``: how many in all
    commits: tuple[Commit, ...]
    count: int
    #: Conductor's revert of the merge, when main has it (an earlier attempt)
    revert: str | None = None
    #: None: fetched just now; else why this is main as the clone last fetched it
    stale: str | None = None


@dataclass(frozen=True, slots=True)
class Reverted:
    """Main after a rollback's revert."""

    #: main's head now: the revert commit (or, when nothing needed reverting, main as it was)
    sha: str
    #: False when main already had the revert (an earlier attempt pushed it) or none of the
    #: release's changes were left to undo
    created: bool
    #: what happened, in words
    summary: str
    #: the revert commit on main (made now, or by an earlier attempt); None: none was needed
    revert: str | None = None
    #: the commits pushed onto main since the release's merge, which the revert keeps
    kept: tuple[Commit, ...] = ()
    kept_count: int = 0


#: the trailer that marks a rollback's revert commit, so a repeated attempt finds it on main
REVERT_TRAILER = "Conductor-Reverts"


@dataclass(frozen=True, slots=True)
class RcBuild:
    branch: str
    #: main's commit the RC grew from
    base: str
    #: the release merge commit: main fast-forwards to it at the ship
    head: str
    #: each member's merge commit, in merge order
    merges: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Done:
    returncode: int
    out: str
    err: str


class GitRepository:
    """One local clone, used by one assembly or ship at a time in this process."""

    def __init__(self, config: GitConfig) -> None:
        self.config = config
        self.path = Path(config.path)
        self.sandbox = Sandbox(config.sandbox)
        self._lock = asyncio.Lock()
        self._fetching: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ git itself

    async def git(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> _Done:
        """``git args`` in the clone (or ``cwd``): no hook, no config but the clone's, no
        prompt; :class:`GitFailed` naming git's words when it fails (unless not ``check``)."""
        environment = {
            **scrubbed_environment(), **IDENTITY, **ISOLATED, **(env or {}),
            "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
        }  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            shutil.which("git") or "git",
            *HARDENED,
            *args,
            cwd=cwd or self.path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.config.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise GitFailed(
                f"`git {args[0]}` took longer than {self.config.timeout:g} s and was stopped."
            ) from None
        done = _Done(
            process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if check and done.returncode != 0:
            raise GitFailed(f"`git {args[0]}` failed: {clip(' '.join(done.err.split()), 300)}")
        return done

    async def _rev(self, ref: str, cwd: Path | None = None) -> str | None:
        done = await self.git(
            "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=cwd, check=False
        )
        if done.returncode != 0:
            return None
        return done.out.strip() or None

    def _ref(self, branch: str) -> str:
        remote = self.config.remote
        return f"refs/remotes/{remote}/{branch}" if remote else f"refs/heads/{branch}"

    async def _logs(self) -> Path:
        common = (await self.git("rev-parse", "--git-common-dir")).out.strip()
        root = Path(common) if Path(common).is_absolute() else self.path / common
        return root / "conductor" / "logs"

    @contextlib.asynccontextmanager
    async def _worktree(self, commit: str) -> Any:
        where = Path(tempfile.mkdtemp(prefix="conductor-worktree-"))
        await self.git("worktree", "add", "--detach", str(where), commit)
        try:
            yield where
        finally:
            await self.git("worktree", "remove", "--force", str(where), check=False)
            shutil.rmtree(where, ignore_errors=True)
            await self.git("worktree", "prune", check=False)

    async def fetch(self) -> None:
        remote = self.config.remote
        if remote:
            await self.git(
                "fetch", "--prune", "--no-tags", remote, f"+refs/heads/*:refs/remotes/{remote}/*"
            )

    # ------------------------------------------------------------------ assembly

    async def build_rc(self, release: str, members: Sequence[tuple[str, str | None]]) -> RcBuild:
        """``release/<release>`` from main with each member (task slug, branch) merged
        ``--no-ff`` in the order given, then one release merge over main. Raises
        :class:`GitFailed` naming what is wrong (a task without a branch, a branch that is not
        a branch name or does not exist, a conflict with its files); the clone is left clean."""
        async with self._lock:
            return await self._build_rc(release, members)

    async def _build_rc(self, release: str, members: Sequence[tuple[str, str | None]]) -> RcBuild:
        rc_branch = f"release/{release}"
        if (problem := branch_problem(rc_branch)) is not None:
            raise GitFailed(f"`{rc_branch}` cannot be a branch: {problem}.")
        refs: list[tuple[str, str, str]] = []
        for task, branch in members:
            if not branch:
                raise GitFailed(
                    f"Task `{task}` has no branch: hand it off again with a `branch:` line, "
                    "or `/release remove` it."
                )
            if (problem := branch_problem(branch)) is not None:
                raise GitFailed(f"Task `{task}`'s branch is not a branch name: {problem}.")
            refs.append((task, branch, self._ref(branch)))
        await self.fetch()
        base = await self._rev(self._ref(self.config.main))
        if base is None:
            where = f"on `{self.config.remote}`" if self.config.remote else "in the clone"
            raise GitFailed(f"The main branch `{self.config.main}` does not exist {where}.")
        missing = [(task, branch) for task, branch, ref in refs if await self._rev(ref) is None]
        if missing:
            where = f"on `{self.config.remote}`" if self.config.remote else "in the clone"
            listed = ", ".join(f"`{branch}` (task `{task}`)" for task, branch in missing)
            raise GitFailed(
                f"{'This branch does' if len(missing) == 1 else 'These branches do'} not exist "
                f"{where}: {listed}. Nothing was assembled."
            )
        merges: dict[str, str] = {}
        async with self._worktree(base) as tree:
            for task, branch, ref in refs:
                merged = await self.git(
                    "merge", "--no-ff", "--no-edit", "-m", f"Merge task {task} ({branch}) into {rc_branch}",
                    ref, cwd=tree, check=False,
                )  # fmt: skip
                if merged.returncode != 0:
                    conflicted = await self.git(
                        "diff", "--name-only", "--diff-filter=U", cwd=tree, check=False
                    )
                    await self.git("merge", "--abort", cwd=tree, check=False)
                    files = [f for f in conflicted.out.splitlines() if f.strip()]
                    if not files:
                        raise GitFailed(
                            f"Merging task `{task}` (`{branch}`) failed: "
                            f"{clip(' '.join((merged.err or merged.out).split()), 300)}"
                        )
                    with_main = await self._conflicts_alone(tree, base, ref)
                    rest = [f for f in files if f not in with_main]
                    raise MergeConflict(
                        task, branch, files, main=self.config.main, with_main=with_main,
                        members=await self._touching(merges, rest) if rest else None,
                    )  # fmt: skip
                merges[task] = (await self.git("rev-parse", "HEAD", cwd=tree)).out.strip()
            chain = (await self.git("rev-parse", "HEAD", cwd=tree)).out.strip()
            await self.git("checkout", "--detach", base, cwd=tree)
            count = len(refs)
            await self.git(
                "merge", "--no-ff", "--no-edit", "-m",
                f"Release {release}: {count} task{'s' if count != 1 else ''}", chain, cwd=tree,
            )  # fmt: skip
            head = (await self.git("rev-parse", "HEAD", cwd=tree)).out.strip()
        await self.git("branch", "--force", rc_branch, head)
        log.info("rc built release=%s head=%s members=%d", release, head[:12], len(refs))
        return RcBuild(rc_branch, base, head, merges)

    async def _conflicts_alone(self, tree: Path, base: str, ref: str) -> list[str]:
        """The files ``ref`` conflicts in when merged alone onto ``base`` (main as the RC
        grows from it): none when it merges cleanly. The worktree is left at ``base``."""
        await self.git("checkout", "--quiet", "--detach", base, cwd=tree)
        merged = await self.git("merge", "--no-commit", "--no-ff", ref, cwd=tree, check=False)
        files: list[str] = []
        if merged.returncode != 0:
            conflicted = await self.git(
                "diff", "--name-only", "--diff-filter=U", cwd=tree, check=False
            )
            files = [f for f in conflicted.out.splitlines() if f.strip()]
        await self.git("merge", "--abort", cwd=tree, check=False)
        return files

    async def _touching(
        self, merges: Mapping[str, str], files: Sequence[str]
    ) -> dict[str, list[str]]:
        """Of the members merged so far (task: its merge commit), those whose merge touched
        any of ``files``, with those files, in merge order."""
        out: dict[str, list[str]] = {}
        for task, merge in merges.items():
            changed = await self.git("diff", "--name-only", f"{merge}^1", merge, check=False)
            touched = set(changed.out.splitlines())
            if hit := [f for f in files if f in touched]:
                out[task] = hit
        return out

    async def run_tests(self, release: str, head: str) -> CommandRun | None:
        """The test command on ``head``, in the sandbox, in an export of ``head`` of its own
        (no ``.git``: nothing it writes reaches the clone); None when none is configured."""
        command = self.config.test_command
        if command is None:
            return None
        async with self._lock:
            log_path = (await self._logs()) / f"{release}-tests.log"
        config = self.config
        grant = Grant(read=config.test_read, network=config.test_network)
        try:
            async with self.exported(head) as tree:
                env = {"CONDUCTOR_RELEASE": release, "CONDUCTOR_SHA": head}
                run = await self.sandbox.run(
                    command, tree=tree, log_path=log_path, limit_s=config.test_timeout,
                    env=env, grant=grant, limits=config.limits,
                )  # fmt: skip
        except SandboxError as error:
            raise GitFailed(f"The test command could not run: {error}.") from None
        log.info("rc tests release=%s passed=%s in %d ms", release, run.passed, run.duration_ms)
        return run

    @contextlib.asynccontextmanager
    async def exported(self, commit: str, sandbox: Sandbox | None = None) -> Any:
        """A private directory holding exactly ``commit``'s files and nothing of git's,
        given to the sandbox's user; removed afterwards. Written by ``git checkout-index``
        from an index of its own (the clone's index and work tree are untouched)."""
        where = Path(tempfile.mkdtemp(prefix="conductor-tree-"))
        try:
            async with self._lock:
                index = where.with_name(where.name + ".index")
                try:
                    env = {"GIT_INDEX_FILE": str(index)}
                    await self.git("read-tree", f"{commit}^{{tree}}", env=env)
                    await self.git(
                        "checkout-index", "--all", "--force", f"--prefix={where}/", env=env
                    )
                finally:
                    index.unlink(missing_ok=True)
            (sandbox or self.sandbox).own(where)
            yield where
        finally:
            shutil.rmtree(where, ignore_errors=True)

    # ------------------------------------------------------------------ the ship

    async def publish_main(self, base: str, head: str) -> str:
        """Fast-forward main from ``base`` (where the RC was built) to ``head`` (the RC) and
        push it. Done already (main is at ``head``) is fine: a resumed ship repeats it safely.
        Raises :class:`GitFailed` when main moved on meanwhile or the push is refused."""
        async with self._lock:
            await self.fetch()
            main = self.config.main
            now = await self._rev(self._ref(main))
            if now == head:
                return head
            if now != base:
                raise GitFailed(
                    f"`{main}` moved since the assembly (it is at `{(now or '?')[:10]}`, the RC "
                    f"was built on `{base[:10]}`): nothing was deployed. Abandon this release "
                    "and assemble a new one."
                )
            remote = self.config.remote
            if remote is None:
                # compare-and-swap: only from ``base``, whatever else happens in the clone
                await self.git("update-ref", f"refs/heads/{main}", head, base)
                return head
            pushed = await self.git(
                "push", "--porcelain", remote, f"{head}:refs/heads/{main}", check=False
            )
            if pushed.returncode != 0:
                why = clip(" ".join((pushed.err or pushed.out).split()), 300)
                raise GitFailed(f"The push of `{main}` to `{remote}` was refused: {why}")
            await self.fetch()
            return head

    # ------------------------------------------------------------------ the rollback

    async def revert_main(self, merge_sha: str, *, title: str, body: str) -> Reverted:
        """Revert the release merge ``merge_sha`` on main (``git revert -m 1``) and push it.
        The commit carries a ``Conductor-Reverts: <merge sha>`` trailer: when main already has
        one (an attempt pushed it, then stopped), it is used and nothing is reverted again.
        Raises :class:`RevertConflict` (main untouched) or :class:`GitFailed` (the merge is
        not on main, main moved meanwhile, the push refused)."""
        async with self._lock:
            return await self._revert_main(merge_sha, title=title, body=body)

    async def _revert_main(self, merge_sha: str, *, title: str, body: str) -> Reverted:
        main, remote = self.config.main, self.config.remote
        await self.fetch()
        since = await self._since(merge_sha, then="nothing was reverted")
        head = since.head
        if since.revert is not None:
            return Reverted(
                head,
                False,
                f"`{main}` already has the revert `{since.revert[:10]}` (an earlier attempt)",
                since.revert,
                since.commits,
                since.count,
            )
        trailer = f"{REVERT_TRAILER}: {merge_sha}"
        async with self._worktree(head) as tree:
            reverted = await self.git(
                "revert", "--no-commit", "-m", "1", merge_sha, cwd=tree, check=False
            )
            if reverted.returncode != 0:
                conflicted = await self.git(
                    "diff", "--name-only", "--diff-filter=U", cwd=tree, check=False
                )
                files = [f for f in conflicted.out.splitlines() if f.strip()]
                if not files:
                    raise GitFailed(
                        f"`git revert` of `{merge_sha[:10]}` failed: "
                        f"{clip(' '.join((reverted.err or reverted.out).split()), 300)}"
                    )
                raise RevertConflict(merge_sha, main, files)
            staged = await self.git("diff", "--cached", "--quiet", cwd=tree, check=False)
            if staged.returncode == 0:
                return Reverted(
                    head,
                    False,
                    f"`{main}` has none of `{merge_sha[:10]}`'s changes left: nothing to revert",
                    None,
                    since.commits,
                    since.count,
                )
            message = f"{title}\n\n{body}\n\n{trailer}\n"
            await self.git("commit", "--no-verify", "--quiet", "-m", message, cwd=tree)
            new = (await self.git("rev-parse", "HEAD", cwd=tree)).out.strip()
        if remote is None:
            # compare-and-swap: only from the head the revert was made on
            await self.git("update-ref", f"refs/heads/{main}", new, head)
        else:
            pushed = await self.git(
                "push", "--porcelain", remote, f"{new}:refs/heads/{main}", check=False
            )
            if pushed.returncode != 0:
                why = clip(" ".join((pushed.err or pushed.out).split()), 300)
                raise GitFailed(
                    f"The push of the revert to `{main}` on `{remote}` was refused: {why}"
                )
            await self.fetch()
        where = f" and pushed to `{remote}`" if remote else ""
        log.info("main reverted merge=%s revert=%s", merge_sha[:12], new[:12])
        return Reverted(
            new, True, f"`{main}` reverted by `{new[:10]}`{where}", new, since.commits, since.count
        )

    # ------------------------------------------------------------------ reading main

    async def commits_since(self, merge_sha: str) -> MainSince:
        """Read-only (main is not changed): what main has after the release merge
        ``merge_sha``, fetched first. A fetch that fails or does not answer within
        ``look_timeout`` (it goes on in the background) leaves main as the clone last fetched
        it, and ``stale`` says so. Raises :class:`GitFailed` when main cannot be read (no
        main, the merge not in the clone or not on main)."""
        stale = await self._fetch_within(self.config.look_timeout)
        return await self._since(merge_sha, then="Conductor cannot read it", stale=stale)

    async def _fetch_within(self, limit: float) -> str | None:
        """Fetch (in turn with every other use of the clone), waiting at most ``limit``
        seconds: None when fetched, else why not."""

        async def fetch() -> None:
            async with self._lock:
                await self.fetch()

        def ended(task: asyncio.Task[None]) -> None:
            self._fetching.discard(task)
            if not task.cancelled() and (error := task.exception()) is not None:
                log.info("a fetch of main ended: %s", error)  # said by the one who waited

        task = asyncio.create_task(fetch())
        self._fetching.add(task)  # kept until it ends: a fetch outlives a short wait
        task.add_done_callback(ended)
        try:
            await asyncio.wait_for(asyncio.shield(task), limit)
        except TimeoutError:
            return f"its fetch did not answer within {limit:g} s"
        except GitFailed as failed:
            return f"its fetch failed: {clip(str(failed), 200)}"
        return None

    async def _since(self, merge_sha: str, *, then: str, stale: str | None = None) -> MainSince:
        """Main as the clone has it after ``merge_sha``; ``then``: the refusals' end."""
        main, remote = self.config.main, self.config.remote
        head = await self._rev(self._ref(main))
        if head is None:
            where = f"on `{remote}`" if remote else "in the clone"
            raise GitFailed(f"The main branch `{main}` does not exist {where}.")
        if await self._rev(merge_sha) is None:
            raise GitFailed(
                f"The release's merge commit `{merge_sha[:10]}` is not in the clone: {then}."
            )
        on_main = await self.git("merge-base", "--is-ancestor", merge_sha, head, check=False)
        if on_main.returncode != 0:
            raise GitFailed(
                f"The release's merge commit `{merge_sha[:10]}` is not on `{main}`: {then}."
            )
        found = await self.git(
            "log", "--format=%H", "-n", "1", "--fixed-strings",
            f"--grep={REVERT_TRAILER}: {merge_sha}", f"{merge_sha}..{head}",
        )  # fmt: skip
        revert = found.out.strip() or None
        listed = await self.git(
            "log", "--first-parent",
            f"--format=%H%x09%(trailers:key={REVERT_TRAILER},valueonly,separator=%x20)%x09%s",
            f"{merge_sha}..{head}",
        )  # fmt: skip
        rows = [line.split("\t", 2) for line in listed.out.splitlines() if line.count("\t") >= 2]
        shas = {sha for sha, _, _ in rows}
        # a later release's merge and Conductor's revert of it, both since: they cancel out
        undone = {target for _, targets, _ in rows for target in targets.split() if target in shas}
        commits = [
            Commit(sha, subject)
            for sha, targets, subject in rows
            if sha != revert and sha not in undone and not set(targets.split()) & undone
        ]
        return MainSince(head, tuple(commits[:SINCE_KEPT]), len(commits), revert, stale)
