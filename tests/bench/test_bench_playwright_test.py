"""The Playwright Test benchmark runs the same six checks on both sides."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.bench_playwright_test import app_toml, sides, spec_config, suite_json, write_specs
from smoke.config import load_app_config, parse_app_config
from smoke.runner import LAUNCH_ARGS
from smoke.sample_app import sample_app_table

URL = "http://127.0.0.1:8123"


def test_the_toml_conductor_reads_is_the_sample_suite(tmp_path: Path) -> None:
    table = sample_app_table(URL, name='studio "quoted" é')
    file = tmp_path / "six.toml"
    file.write_text(app_toml(table), encoding="utf-8")
    assert load_app_config(file) == parse_app_config(table)


def test_the_specs_carry_every_check_with_conductors_defaults(tmp_path: Path) -> None:
    app = parse_app_config(sample_app_table(URL))
    write_specs(tmp_path, app, "/usr/bin/chromium")
    spec = (tmp_path / "seal.spec.js").read_text(encoding="utf-8")
    embedded = re.search(r"^const SUITE = (\{.*?^\});$", spec, re.MULTILINE | re.DOTALL)
    assert embedded is not None
    suite = json.loads(embedded.group(1))
    assert suite == suite_json(app)
    assert suite["health_path"] == "/up"
    assert suite["health_timeout_ms"] == 10_000
    assert [(c["path"], c["expect_status"], c["timeout_ms"]) for c in suite["checks"]] == [
        ("/", 200, 15_000),
        ("/signin", 200, 15_000),
        ("/tasks", 200, 15_000),
        ("/changelog", 200, 15_000),
        ("/devops", 404, 15_000),
    ]
    config = (tmp_path / "playwright.config.js").read_text(encoding="utf-8")
    assert f"args: {json.dumps(list(LAUNCH_ARGS))}" in config
    assert 'executablePath: "/usr/bin/chromium"' in config


def test_both_sides_run_in_each_chromium_and_each_row_names_it(tmp_path: Path) -> None:
    """Like for like: every Chromium gets a conductor smoke row (its config naming that
    Chromium) and Playwright Test rows started with that Chromium's config."""
    chromiums = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]
    app = parse_app_config(sample_app_table(URL))
    for i, chromium in enumerate(chromiums):
        write_specs(tmp_path, app, chromium, spec_config(i))
    ours, theirs = sides(
        URL, tmp_path, tmp_path, [1, 2], [("conductor smoke", tmp_path)], chromiums=chromiums
    )

    assert [side.label for side in ours] == [
        "conductor smoke [headless shell]",
        "conductor smoke [full Chromium]",
    ]
    for side, chromium in zip(ours, chromiums, strict=True):
        toml = Path(side.command[side.command.index("--config") + 1])
        assert load_app_config(toml).chromium_path == chromium
    assert len(theirs) == 2 * 2 * 2  # npx and direct, two worker counts, two Chromiums
    for side in theirs:
        i = 0 if side.label.endswith("[headless shell]") else 1
        config = side.command[side.command.index("--config") + 1]
        assert config == spec_config(i)
        assert f"executablePath: {json.dumps(chromiums[i])}" in (tmp_path / config).read_text()
