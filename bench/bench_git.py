"""Assembling the RC branch: 20 member branches, each touching its own files, merged into
``release/<slug>`` by :meth:`GitRepository.build_rc`, on real repositories in a temp dir (a
bare origin the agents pushed to, and Conductor's clone).

    .venv/bin/python -m bench.bench_git [--members 20] [--repeats 5]

Every git command Conductor runs is timed from the outside (spawn to exit); what is left of
the wall time is Conductor's own overhead (asyncio, the checks, the bookkeeping). Target: the
assembly is bounded by git, Conductor's share under 10 % of the wall time. Exit status 1 when
it is missed.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conductor.releases.git import IDENTITY, GitRepository, parse_git_config

OVERHEAD_TARGET = 0.10
GIT = shutil.which("git") or "git"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(  # noqa: S603 - git, fixed arguments
        [GIT, *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **IDENTITY}
    )


def world(root: Path, members: int) -> Path:
    bare, agent, clone = root / "origin.git", root / "agent", root / "clone"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(root, "clone", "--quiet", str(bare), str(agent))
    for i in range(50):  # a repository with some history and files
        (agent / f"src{i}.txt").write_text(f"module {i}\n" * 20)
    git(agent, "add", "--all")
    git(agent, "commit", "--quiet", "-m", "base")
    git(agent, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    for i in range(members):
        git(agent, "checkout", "--quiet", "-B", f"feat/m{i}", "main")
        for j in range(3):
            (agent / f"m{i}").mkdir(exist_ok=True)
            (agent / f"m{i}" / f"f{j}.txt").write_text(f"member {i} file {j}\n")
        git(agent, "add", "--all")
        git(agent, "commit", "--quiet", "-m", f"member {i}")
        git(agent, "push", "--quiet", "origin", f"HEAD:refs/heads/feat/m{i}")
    git(root, "clone", "--quiet", str(bare), str(clone))
    return clone


class TimedRepository(GitRepository):
    """Conductor's repository, with each git command's wall time added up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.git_seconds = 0.0
        self.commands = 0

    async def git(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> Any:
        started = time.perf_counter()
        try:
            return await super().git(*args, cwd=cwd, check=check, env=env)
        finally:
            self.git_seconds += time.perf_counter() - started
            self.commands += 1


async def assemble(clone: Path, members: int, repeats: int) -> list[tuple[float, float, int]]:
    out = []
    for r in range(repeats):
        repo = TimedRepository(parse_git_config({"path": str(clone)}))
        started = time.perf_counter()
        built = await repo.build_rc(
            f"2026-12-01-bench-{r}", [(f"m{i}", f"feat/m{i}") for i in range(members)]
        )
        wall = time.perf_counter() - started
        assert len(built.merges) == members
        out.append((wall, repo.git_seconds, repo.commands))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clone = world(Path(tmp), args.members)
        runs = asyncio.run(assemble(clone, args.members, args.repeats))
    walls = [w * 1000 for w, _, _ in runs]
    gits = [g * 1000 for _, g, _ in runs]
    shares = [(w - g) / w for w, g, _ in runs]
    print(
        f"assembly of {args.members} member branches: median {statistics.median(walls):.0f} ms "
        f"(min {min(walls):.0f}, max {max(walls):.0f}) over {len(runs)} runs, "
        f"{runs[0][2]} git commands each"
    )
    print(f"  inside git: median {statistics.median(gits):.0f} ms")
    share = statistics.median(shares)
    print(
        f"  Conductor's own: median {statistics.median(w - g for w, g in zip(walls, gits, strict=True)):.0f} ms "
        f"= {share:.1%} of the wall time"
    )
    verdict = "met" if share < OVERHEAD_TARGET else "MISSED"
    print(f"target: Conductor's share under {OVERHEAD_TARGET:.0%} (bounded by git): {verdict}")
    if share >= OVERHEAD_TARGET:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
