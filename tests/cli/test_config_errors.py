"""Every bad setting is named where it was written: the config file's key when it came from
the file (``conductor.toml: [web] port``), the variable when it came from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import clean_env, run_conductor

#: (the file's line(s), the variable, the bad value as TOML, as the variable, the message)
CASES = [
    ("[web]\nport = {}", "CONDUCTOR_WEB_PORT", "70000", "70000", "Input should be less than"),
    ("[web]\nenabled = {}", "CONDUCTOR_WEB_ENABLED", '"maybe"', "maybe", "a valid boolean"),
    ("[web]\nhost = {}", "CONDUCTOR_WEB_HOST", '"a b"', "a b", "expected a host name"),
    ("required_approvals = {}", "CONDUCTOR_REQUIRED_APPROVALS", "0", "0", "greater than"),
    ("guild_id = {}", "CONDUCTOR_GUILD_ID", "-5", "-5", "greater than 0"),
    ("shard_count = {}", "CONDUCTOR_SHARD_COUNT", "0", "0", "greater than or equal to 1"),
    ("database_url = {}", "CONDUCTOR_DATABASE_URL", '"sqlite:///x.db"', "sqlite:///x.db", "async"),
    ("shard_lease_seconds = {}", "CONDUCTOR_SHARD_LEASE_SECONDS", "0.5", "0.5", "greater than"),
]
IDS = [variable.removeprefix("CONDUCTOR_").lower() for _, variable, *_ in CASES]


def _key(line: str) -> str:
    """``[web] port`` for ``[web]\\nport = {}``, ``guild_id`` for ``guild_id = {}``."""
    *tables, assignment = line.split("\n")
    return " ".join([*tables, assignment.split(" = ")[0]])


def current(tmp_path: Path, config: str, env: dict[str, str]) -> str:
    file = tmp_path / "conductor.toml"
    file.write_text(config + "\n", encoding="utf-8")
    done = run_conductor(
        tmp_path, "db", "current", env=clean_env(tmp_path, CONDUCTOR_CONFIG=str(file), **env)
    )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    return line


@pytest.mark.parametrize(("line", "variable", "in_file", "in_env", "why"), CASES, ids=IDS)
def test_a_bad_value_in_the_file_names_the_file_s_key(
    tmp_path: Path, line: str, variable: str, in_file: str, in_env: str, why: str
) -> None:
    shown = current(tmp_path, line.format(in_file), {})
    assert shown.startswith(f"{tmp_path / 'conductor.toml'}: {_key(line)}: "), shown
    assert why in shown
    assert variable not in shown  # a variable nobody set


@pytest.mark.parametrize(("line", "variable", "in_file", "in_env", "why"), CASES, ids=IDS)
def test_a_bad_value_in_the_environment_names_the_variable(
    tmp_path: Path, line: str, variable: str, in_file: str, in_env: str, why: str
) -> None:
    shown = current(tmp_path, "", {variable: in_env})
    assert shown.startswith(f"{variable}: "), shown
    assert why in shown
    assert f"(got {in_env!r})" in shown
    assert "conductor.toml" not in shown


def test_the_variable_over_a_good_file_value_is_the_one_named(tmp_path: Path) -> None:
    shown = current(tmp_path, "[web]\nport = 8080", {"CONDUCTOR_WEB_PORT": "99999"})
    assert shown.startswith("CONDUCTOR_WEB_PORT: "), shown
    # and a good variable over a bad file value: nothing wrong (the variable is what counts)
    file = tmp_path / "conductor.toml"
    file.write_text("[web]\nport = 99999\n", encoding="utf-8")
    env = clean_env(tmp_path, CONDUCTOR_CONFIG=str(file), CONDUCTOR_WEB_PORT="8080")
    done = run_conductor(tmp_path, "db", "upgrade", env=env)
    assert done.returncode == 0, done.stderr


def test_smoke_blames_its_argument_not_the_file(tmp_path: Path) -> None:
    file = tmp_path / "conductor.toml"
    file.write_text('[app]\nproduction_url = "https://app.example.com"\n', encoding="utf-8")
    for env in ({}, {"CONDUCTOR_CONFIG": str(file)}):  # the default suite, and the file's
        done = run_conductor(tmp_path, "smoke", "notaurl", env=clean_env(tmp_path, **env))
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            "error: URL: must be an http(s) URL such as https://app.example.com (got 'notaurl')"
        ]
