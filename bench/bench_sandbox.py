"""What the sandbox costs a command: ``true`` run unsandboxed and in bubblewrap, alternating,
and the export of a release tree it runs in.

    .venv/bin/python -m bench.bench_sandbox [--runs 30] [--files 2000]

Each run is ``Sandbox.run`` as the test and deploy commands make it (a log written, the
limits set with ``prlimit``; as root, ``nobody``), on a fresh tree of its own; the modes
alternate, so a noisy moment costs both alike; medians are compared. The export is
``GitRepository.exported`` of a commit of ``--files`` small files (a ``read-tree`` into a
private index and a ``checkout-index``), against ``git worktree add`` of the same commit, what
the test command ran in before.

Target: the sandbox adds under 100 ms to a command (a test suite runs for minutes), and the
export takes no more than twice the worktree's time. Exit status 1 when either is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conductor.releases.git import GitConfig, GitRepository
from conductor.releases.sandbox import Sandbox, SandboxMode

TARGET_OVERHEAD_MS = 100.0
TARGET_EXPORT_RATIO = 2.0


async def one(box: Sandbox, root: Path, n: int) -> float:
    tree = root / f"tree-{box.mode.value}-{n}"
    tree.mkdir()
    box.own(tree)
    started = time.perf_counter()
    run = await box.run("true", tree=tree, log_path=root / f"{tree.name}.log", limit_s=30, env={})
    elapsed = (time.perf_counter() - started) * 1000
    if not run.passed:
        raise SystemExit(f"`true` failed in {box.mode.value}: {run.tail}")
    shutil.rmtree(tree, ignore_errors=True)
    return elapsed


def repository(root: Path, files: int) -> tuple[Path, str]:
    repo = root / "repo"
    git = ["git", "-C", str(repo)]
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)  # noqa: S603, S607
    for i in range(files):
        where = repo / f"pkg{i % 40}" / f"module_{i}.py"
        where.parent.mkdir(exist_ok=True)
        where.write_text(f"VALUE = {i}\n" * 20)
    subprocess.run([*git, "add", "-A"], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*git, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "--quiet", "-m", "x"],
        check=True,
    )
    head = subprocess.run(  # noqa: S603
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, head


async def export_once(repo: GitRepository) -> float:
    started = time.perf_counter()
    async with repo.exported(await head_of(repo)):
        pass
    return (time.perf_counter() - started) * 1000


async def head_of(repo: GitRepository) -> str:
    return (await repo.git("rev-parse", "HEAD")).out.strip()


def worktree_once(repo: Path, head: str, root: Path, n: int) -> float:
    where = root / f"wt-{n}"
    started = time.perf_counter()
    subprocess.run(  # noqa: S603
        ["git", "-C", str(repo), "worktree", "add", "--quiet", "--detach", str(where), head],  # noqa: S607
        check=True,
    )
    elapsed = (time.perf_counter() - started) * 1000
    subprocess.run(  # noqa: S603
        ["git", "-C", str(repo), "worktree", "remove", "--force", str(where)],  # noqa: S607
        check=True,
    )
    return elapsed


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    on, off = Sandbox(SandboxMode.BWRAP), Sandbox(SandboxMode.OFF)
    if (problem := await on.probe()) is not None:
        raise SystemExit(problem)
    root = Path(tempfile.mkdtemp(prefix="conductor-bench-sandbox-"))
    os.chmod(root, 0o711)  # noqa: S103 - the sandbox's user finds its trees inside, lists nothing
    try:
        times: dict[str, list[float]] = {"off": [], "bwrap": []}
        for n in range(args.runs):
            times["off"].append(await one(off, root, n))
            times["bwrap"].append(await one(on, root, n))
        plain, boxed = statistics.median(times["off"]), statistics.median(times["bwrap"])
        print(f"`true`, {args.runs} runs each: unsandboxed {plain:.1f} ms, bwrap {boxed:.1f} ms")
        print(f"  the sandbox adds {boxed - plain:.1f} ms (target < {TARGET_OVERHEAD_MS:.0f} ms)")

        path, head = repository(root, args.files)
        repo = GitRepository(GitConfig(path=str(path), remote=None))
        exports, worktrees = [], []
        for n in range(max(5, args.runs // 3)):
            exports.append(await export_once(repo))
            worktrees.append(worktree_once(path, head, root, n))
        exported, worked = statistics.median(exports), statistics.median(worktrees)
        ratio = exported / worked
        print(
            f"a tree of {args.files} files: export {exported:.0f} ms, git worktree add "
            f"{worked:.0f} ms (ratio {ratio:.2f}, target <= {TARGET_EXPORT_RATIO:.1f})"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    missed = boxed - plain >= TARGET_OVERHEAD_MS or ratio > TARGET_EXPORT_RATIO
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
