"""``conductor --help``, whole process, wall to wall: today's tree against an earlier one.

    .venv/bin/python -m bench.bench_cli [--before ba3a21a] [--runs 15]

Each run starts a fresh interpreter that imports the CLI and prints its help, as the console
script does. The earlier tree is checked out into a temporary ``git worktree`` and put first
on ``PYTHONPATH`` (its CLI was ``conductor.cli``); today's runs the same way (``cli``), and
through the installed console script too. A bare interpreter start is the floor. Runs
alternate, so a noisy moment costs both sides alike; medians are compared.

Target: today's median under 0.3 s. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3
HELP = "import sys; sys.argv = ['conductor', '--help']; from {module} import main; main()"


def timed(command: list[str], *, cwd: Path, help_expected: bool) -> float:
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter or our console script, fixed arguments
        command,
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin", "COLUMNS": "100"},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if help_expected and "Usage: conductor" not in done.stdout:
        raise SystemExit(f"{command} in {cwd} printed no help:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="ba3a21a", help="the earlier commit")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    python = sys.executable
    script = Path(python).with_name("conductor")
    tmp = Path(tempfile.mkdtemp(prefix="conductor-before-"))
    before = tmp / "tree"
    git = shutil.which("git") or "git"
    subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "worktree", "add", "--detach", str(before), args.before],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    sides: dict[str, tuple[list[str], Path]] = {
        "python start (floor)": ([python, "-c", "pass"], ROOT),
        f"before ({args.before}, conductor.cli)": (
            [python, "-c", HELP.format(module="conductor.cli")],
            before,
        ),
        "after (cli)": ([python, "-c", HELP.format(module="cli")], ROOT),
    }
    if script.is_file():
        sides["after, console script"] = ([str(script), "--help"], ROOT)
    times: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for command, cwd in sides.values():  # warm the file cache, not counted
            timed(command, cwd=cwd, help_expected=command[-1] != "pass")
        for _ in range(args.runs):
            for name, (command, cwd) in sides.items():
                times[name].append(timed(command, cwd=cwd, help_expected=command[-1] != "pass"))
    finally:
        subprocess.run(  # noqa: S603 - git, fixed arguments
            [git, "worktree", "remove", "--force", str(before)],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"{name}: median {medians[name] * 1000:.0f} ms, min {min(values) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms over {len(values)} runs"
        )
    old, new = medians[f"before ({args.before}, conductor.cli)"], medians["after (cli)"]
    print(f"before / after: {old / new:.1f}x")
    verdict = "met" if new < TARGET_S else "MISSED"
    print(f"target: after under {TARGET_S:.1f} s: {verdict}")
    if new >= TARGET_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
