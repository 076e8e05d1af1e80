"""The smoke seal against the local sample app: the runner vs the naive way, side by side.

    .venv/bin/python -m bench.bench_smoke [--repeats 5]

Six checks (the health check and five pages) of :func:`smoke.sample_app.sample_app_table`,
timed wall to wall including Playwright's start and the browser launch:

(a) the runner: one Chromium, every page in parallel (``PlaywrightRunner().run``);
(b) naive: each check on its own, one after another: Playwright and a new Chromium per check
    (``smoke.runner.chromium``), the same check logic (``check_health``, ``check_page``);
(c) naive with Playwright's driver started once and shared, still a new Chromium per check
    (the strictest reading of "a new browser per check": the driver is not the browser).

The three alternate, ``--repeats`` times each; medians are compared. Targets: (a) at least 2x
faster than both (b) and (c), and under 3 s. Exit status 1 when a target is missed or a run
is not green.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from playwright.async_api import async_playwright

from smoke.config import AppConfig, parse_app_config
from smoke.result import CheckResult, SmokeResult
from smoke.runner import PlaywrightRunner, check_health, check_page, chromium, launched
from smoke.sample_app import sample_app_table, serve_in_thread

TARGET_SPEEDUP = 2.0
TARGET_SECONDS = 3.0

Once = Callable[[AppConfig], Awaitable[SmokeResult]]


async def runner(app: AppConfig) -> SmokeResult:
    return await PlaywrightRunner().run(app)


async def naive(app: AppConfig) -> SmokeResult:
    started = time.perf_counter()
    health, _ = await check_health(app)
    checks: list[CheckResult] = [health]
    for check in app.smoke:
        async with chromium(app.chromium_path, app) as session:
            checks.append(await check_page(session, app, check))
    return SmokeResult.from_checks(tuple(checks), round((time.perf_counter() - started) * 1000))


async def naive_shared_driver(app: AppConfig) -> SmokeResult:
    started = time.perf_counter()
    health, _ = await check_health(app)
    checks: list[CheckResult] = [health]
    async with async_playwright() as playwright:
        for check in app.smoke:
            async with launched(playwright, app.chromium_path, app) as session:
                checks.append(await check_page(session, app, check))
    return SmokeResult.from_checks(tuple(checks), round((time.perf_counter() - started) * 1000))


WAYS: tuple[tuple[str, Once], ...] = (
    ("(a) runner: one browser, parallel pages", runner),
    ("(b) naive: Playwright + a browser per check, one after another", naive),
    ("(c) naive, Playwright shared: a browser per check, one after another", naive_shared_driver),
)


async def bench(url: str, repeats: int) -> tuple[dict[str, list[float]], list[str]]:
    app = parse_app_config(sample_app_table(url))
    expected = f"{len(app.smoke) + 1}/{len(app.smoke) + 1} checks passed"
    timings: dict[str, list[float]] = {label: [] for label, _ in WAYS}
    problems: list[str] = []
    await runner(app)  # warm the disk cache up (not counted)
    for _ in range(repeats):
        for label, once in WAYS:
            started = time.perf_counter()
            result = await once(app)
            timings[label].append(time.perf_counter() - started)
            if result.summary != expected:
                problems.append(f"{label}: {result.verdict} — {result.summary}")
    return timings, problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with serve_in_thread() as sample:
        checks = len(sample_app_table(sample.url)["smoke"]) + 1
        timings, problems = asyncio.run(bench(sample.url, args.repeats))
    medians = {label: statistics.median(t) for label, t in timings.items()}
    print(f"smoke seal, {checks} checks against the local sample app (wall time incl. launch)")
    for label, t in timings.items():
        print(
            f"{label}: median {medians[label]:.2f} s, "
            f"min {min(t):.2f} s, max {max(t):.2f} s over {len(t)} runs"
        )
    fast, naive_b, naive_c = (medians[label] for label, _ in WAYS)
    ok_speedup, ok_wall = True, fast < TARGET_SECONDS
    for name, naive_median in (("naive (b)", naive_b), ("naive, Playwright shared (c)", naive_c)):
        speedup = naive_median / fast
        ok_speedup = ok_speedup and speedup >= TARGET_SPEEDUP
        print(
            f"runner vs {name}: {speedup:.1f}x faster "
            f"(target >= {TARGET_SPEEDUP:.0f}x: {'pass' if speedup >= TARGET_SPEEDUP else 'FAIL'})"
        )
    print(
        f"runner wall time: {fast:.2f} s "
        f"(target < {TARGET_SECONDS:.0f} s: {'pass' if ok_wall else 'FAIL'})"
    )
    for problem in problems:
        print(f"not green: {problem}")
    if not (ok_speedup and ok_wall) or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
