"""``conductor smoke URL [--config FILE]`` against the sample app: exit 0 green, 1 red, 2 error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from smoke.sample_app import SampleApp, config_toml, sample_app_table
from tests.helpers import IN_VAIN, clean_env, png_size, run_conductor

TABLE_HEADER = ("check", "status", "result", "time", "why")


def write_config(tmp_path: Path, url: str, **overrides: Any) -> Path:
    file = tmp_path / "smoke.toml"
    file.write_text(config_toml({"app": sample_app_table(url, **overrides)}), encoding="utf-8")
    return file


def smoke(tmp_path: Path, *args: str, config_env: Path | None = None) -> Any:
    if config_env is None:  # a config file without [app]: the default suite
        config_env = tmp_path / "empty.toml"
        config_env.touch()
    env = {"CONDUCTOR_CONFIG": str(config_env)}
    return CliRunner().invoke(app, ["smoke", *args], env=env)


def assert_table(output: str) -> None:
    header = next((line for line in output.splitlines() if line.lstrip().startswith("check")), "")
    assert header.split() == list(TABLE_HEADER), output


def test_green_exits_0_with_the_table(sample_app: SampleApp, tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://replaced-by-the-argument.example")
    result = smoke(tmp_path, sample_app.url, "--config", str(config))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Smoke seal of studio at {sample_app.url}: 6 checks" in out
    assert_table(out)
    for path in ("/up (health)", "/signin", "/tasks", "/changelog", "/devops"):
        assert path in out
    assert out.count("pass") >= 6
    assert "Smoke seal: green — 6/6 checks passed" in out
    # progress: one line per finished check, before the table
    assert out.index("✓ /up (health) · 200") < out.index("check ")


def test_red_exits_1_and_says_why(sample_app: SampleApp, tmp_path: Path) -> None:
    sample_app.set_status("/tasks", 500)
    config = write_config(tmp_path, sample_app.url)
    result = smoke(tmp_path, sample_app.url, "--config", str(config))

    assert result.exit_code == 1, result.output
    assert_table(result.stdout)
    assert "✗ /tasks · 500" in result.stdout
    assert "Smoke seal: red — 1 of 6 failed: /tasks (status 500)" in result.stdout


def test_unreachable_exits_1(tmp_path: Path, dead_url: str) -> None:
    config = write_config(tmp_path, dead_url)
    result = smoke(tmp_path, dead_url, "--config", str(config))

    assert result.exit_code == 1, result.output
    assert "not run" in result.stdout
    assert (
        "Smoke seal: red — production unreachable: /up (connection refused); "
        "5 page checks not run" in result.stdout
    )


def test_blocked_writes_are_listed(sample_app: SampleApp, tmp_path: Path) -> None:
    # an outer bound: the page shows its text once its writes were tried
    checks = [{"path": "/writes", "expect_text": "writes attempted", "timeout": 60}]
    config = write_config(tmp_path, sample_app.url, smoke=checks)
    result = smoke(tmp_path, sample_app.url, "--config", str(config))

    assert result.exit_code == 0, result.output
    assert "Blocked writes (aborted in the browser, never sent):" in result.stdout
    assert result.stdout.count(f"POST {sample_app.url}/api/echo  (on /writes)") == 2
    assert "2/2 checks passed; 2 writes blocked" in result.stdout
    assert sample_app.posts == 0


def test_runner_error_exits_2_naming_the_path(sample_app: SampleApp, tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    config = write_config(tmp_path, sample_app.url, chromium_path=str(missing))
    result = smoke(tmp_path, sample_app.url, "--config", str(config))

    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: the smoke runner could not run: Chromium not found at {missing} "
        "(set app.chromium_path)"
    )


def test_a_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://app.example.com", smoke=[{"path": "signin"}])
    result = smoke(tmp_path, "https://app.example.com", "--config", str(config))

    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: app.smoke.0.path: must start with '/'")


def test_a_missing_or_broken_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = smoke(tmp_path, "https://app.example.com", "--config", str(missing))
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {missing}: no such file"

    broken = tmp_path / "broken.toml"
    broken.write_text("[app\n", encoding="utf-8")
    result = smoke(tmp_path, "https://app.example.com", "--config", str(broken))
    assert result.exit_code == 2 and "not valid TOML" in result.stderr

    no_app = tmp_path / "no-app.toml"
    no_app.write_text("guild_id = 1\n", encoding="utf-8")
    result = smoke(tmp_path, "https://app.example.com", "--config", str(no_app))
    assert result.exit_code == 2 and "no [app] table" in result.stderr


def test_a_bad_url_exits_2(tmp_path: Path) -> None:
    result = smoke(tmp_path, "app.example.com")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: URL: must be an http(s) URL")


def test_without_a_config_the_default_suite_runs(sample_app: SampleApp, tmp_path: Path) -> None:
    result = smoke(tmp_path, sample_app.url)

    assert result.exit_code == 0, result.output
    assert "2 checks" in result.stdout
    assert "Smoke seal: green — 2/2 checks passed" in result.stdout
    assert ("GET", "/up") in sample_app.requests and ("GET", "/") in sample_app.requests


def test_the_conductor_toml_app_table_is_the_default(sample_app: SampleApp, tmp_path: Path) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text(
        config_toml({"app": sample_app_table("https://elsewhere.example")}, top={"guild_id": 1}),
        encoding="utf-8",
    )
    sample_app.set_status("/up", 503)
    result = smoke(tmp_path, sample_app.url, config_env=config)

    assert result.exit_code == 1, result.output
    assert "Smoke seal: red — 1 of 6 failed: /up (status 503)" in result.stdout


def test_the_console_script_in_a_subprocess(sample_app: SampleApp, tmp_path: Path) -> None:
    config = write_config(tmp_path, sample_app.url)
    assert Path(sys.executable).with_name("conductor").is_file()  # the installed script runs
    env = clean_env(tmp_path, COLUMNS="160")
    done = run_conductor(tmp_path, "smoke", sample_app.url, "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    assert_table(done.stdout)
    assert "Smoke seal: green — 6/6 checks passed" in done.stdout


def test_a_password_in_the_url_is_never_printed(sample_app: SampleApp, tmp_path: Path) -> None:
    secret_url = sample_app.url.replace("http://", "http://ops:hunter2@")
    result = smoke(tmp_path, secret_url)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert f"at {sample_app.url.replace('http://', 'http://ops:***@')}:" in result.output


def test_a_config_file_named_but_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo.toml"
    result = smoke(tmp_path, "http://127.0.0.1:9", config_env=missing)
    assert result.exit_code == 2
    assert f"error: CONDUCTOR_CONFIG: {missing} does not exist" in result.output


# -- --screenshots DIR ---------------------------------------------------------------------------


def test_screenshots_writes_a_png_of_each_failed_page_into_dir(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    sample_app.set_status("/tasks", 500)
    sample_app.break_signin()
    checks = [
        {"path": "/", "expect_text": "Studio"},
        {"path": "/signin", "selector": "form input[type=password]", "timeout": IN_VAIN},
        {"path": "/tasks"},
        {"path": "/../../escaped", "expect_status": 200},  # answered 404: fails
    ]
    config = write_config(tmp_path, sample_app.url, smoke=checks)
    shots = tmp_path / "new" / "shots"  # created, parents and all
    result = smoke(tmp_path, sample_app.url, "--config", str(config), "--screenshots", str(shots))

    assert result.exit_code == 1, result.output
    written = sorted(p.name for p in shots.iterdir())
    assert written == ["02-signin.png", "03-tasks.png", "04-escaped.png"]
    for name in written:
        assert png_size((shots / name).read_bytes()) == (1280, 720)
    assert [p for p in tmp_path.rglob("*.png") if p.parent != shots] == []
    out = result.stdout
    assert "Screenshots of the failed checks:" in out
    for name, path in zip(written, ("/signin", "/tasks", "/../../escaped"), strict=True):
        assert f"  {shots / name}  (of {path})" in out
    assert out.index("Screenshots of the failed checks:") < out.index("Smoke seal: red")


def test_screenshots_of_a_green_seal_writes_nothing(sample_app: SampleApp, tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    result = smoke(tmp_path, sample_app.url, "--screenshots", str(shots))
    assert result.exit_code == 0, result.output
    assert shots.is_dir() and list(shots.iterdir()) == []
    assert "Screenshots" not in result.stdout


def test_screenshots_dir_that_cannot_be_made_exits_2_before_the_run(
    sample_app: SampleApp, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")

    result = smoke(tmp_path, sample_app.url, "--screenshots", str(blocker))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --screenshots: {blocker} exists and is not a directory"
    assert result.stdout == ""  # nothing ran

    result = smoke(tmp_path, sample_app.url, "--screenshots", str(blocker / "shots"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --screenshots: {blocker / 'shots'} cannot be created: Not a directory"
    )
    assert sample_app.requests == []  # production was never asked


def test_a_slow_check_shows_that_it_is_waiting(sample_app: SampleApp, tmp_path: Path) -> None:
    checks = [{"path": "/", "selector": "#never-there", "timeout": 6}]
    config = write_config(tmp_path, sample_app.url, smoke=checks)
    result = smoke(tmp_path, sample_app.url, "--config", str(config))

    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    waiting = [n for n, line in enumerate(lines) if "waiting for" in line]
    verdict = next(n for n, line in enumerate(lines) if line.startswith("  ✗ / · 200"))
    assert waiting and max(waiting) < verdict, result.stdout  # said while it waited
    first = lines[waiting[0]]
    assert first.startswith("  … / · waiting for selector #never-there · "), first
    assert first.endswith(" of 6 s")
