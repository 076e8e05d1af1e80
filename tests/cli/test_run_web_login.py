"""``conductor run`` refuses a board served beyond loopback without Login with Discord,
naming each missing setting, before the database is touched; a secret is never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import clean_env, run_conductor

TOKEN = "NzA5.fake-token-value.do-not-print-me"
CLIENT_SECRET = "oauth-client-secret-do-not-print"


def run(tmp_path: Path, env: dict[str, str]) -> tuple[int, list[str], str]:
    db = tmp_path / "cli.db"
    result = run_conductor(
        tmp_path,
        "run",
        env=clean_env(tmp_path)
        | {
            "CONDUCTOR_DISCORD_TOKEN": TOKEN,
            "CONDUCTOR_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            **env,
        },
    )
    assert not db.exists()  # stopped before the migrations
    assert TOKEN not in result.stdout + result.stderr
    assert CLIENT_SECRET not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    return result.returncode, errors, result.stderr


def test_a_board_beyond_loopback_without_a_login_names_every_missing_setting(
    tmp_path: Path,
) -> None:
    status, [line], _ = run(tmp_path, {"CONDUCTOR_WEB_HOST": "0.0.0.0"})  # noqa: S104
    assert status == 2
    assert line.startswith("error: [web] host = 0.0.0.0 is not loopback"), line
    for named in (
        "[web] client_id (CONDUCTOR_WEB_CLIENT_ID)",
        "[web] client_secret (CONDUCTOR_WEB_CLIENT_SECRET)",
        "[web] public_url (CONDUCTOR_WEB_PUBLIC_URL)",
        "guild_id (CONDUCTOR_GUILD_ID)",
    ):
        assert named in line, (named, line)


def test_only_what_is_missing_is_named_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "conductor.toml"
    config.write_text(
        'guild_id = 42\n[web]\nhost = "10.1.2.3"\nclient_id = 1234\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
    )
    status, [line], _ = run(tmp_path, {"CONDUCTOR_CONFIG": str(config)})
    assert status == 2
    assert "[web] public_url (CONDUCTOR_WEB_PUBLIC_URL)" in line
    assert "client_id" not in line and "client_secret" not in line and "guild_id" not in line


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CONDUCTOR_WEB_PUBLIC_URL": "board.example.com"}, "CONDUCTOR_WEB_PUBLIC_URL: "),
        ({"CONDUCTOR_WEB_SESSION_SECRET": "tiny-secret"}, "CONDUCTOR_WEB_SESSION_SECRET: "),
    ],
)
def test_a_bad_login_setting_is_named_and_a_secret_not_echoed(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    status, [line], _ = run(tmp_path, env)
    assert status == 2
    assert line.startswith(named), line
    assert "tiny-secret" not in line  # a secret's value is withheld


def test_loopback_needs_no_login(tmp_path: Path) -> None:
    """On 127.0.0.1 the start goes past the web check (here to the migrations and Discord,
    unreachable or refusing the fake token)."""
    db = tmp_path / "cli.db"
    result = run_conductor(
        tmp_path,
        "run",
        env=clean_env(tmp_path)
        | {
            "CONDUCTOR_DISCORD_TOKEN": TOKEN,
            "CONDUCTOR_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "CONDUCTOR_WEB_HOST": "127.0.0.1",
        },
    )
    assert "is not loopback" not in result.stderr
    assert db.exists()
