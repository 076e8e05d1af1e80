"""The ``[web]`` table: its defaults, the file's values, and ``CONDUCTOR_WEB_*`` over them
(the faults are stopped at start: ``tests/cli/test_cli.py``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.sample import sample_settings
from bot.settings import Settings, WebSettings


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file in a clean environment (no ``CONDUCTOR_*`` but the file's name)."""
    for key in list(os.environ):
        if key.startswith("CONDUCTOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "conductor.toml"
    monkeypatch.setenv("CONDUCTOR_CONFIG", str(path))
    return path


def test_the_board_is_on_at_127_0_0_1_8080_by_default(config: Path) -> None:
    config.write_text("")
    assert Settings().web == WebSettings(enabled=True, host="127.0.0.1", port=8080)


def test_the_environment_overrides_the_file_setting_by_setting(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text('[web]\nhost = "10.0.0.5"\nport = 9000\n')
    assert Settings().web == WebSettings(host="10.0.0.5", port=9000)
    monkeypatch.setenv("CONDUCTOR_WEB_PORT", "9100")
    monkeypatch.setenv("CONDUCTOR_WEB_ENABLED", "false")
    assert Settings().web == WebSettings(enabled=False, host="10.0.0.5", port=9100)


def test_a_commit_url_template_from_the_file_or_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text('[web]\ncommit_url = "https://github.com/org/repo/commit/{sha}"\n')
    assert Settings().web.commit_url == "https://github.com/org/repo/commit/{sha}"
    monkeypatch.setenv("CONDUCTOR_WEB_COMMIT_URL", "https://git.example.com/c/{sha}")
    assert Settings().web.commit_url == "https://git.example.com/c/{sha}"
    monkeypatch.setenv("CONDUCTOR_WEB_COMMIT_URL", "")
    assert Settings().web.commit_url is None


@pytest.mark.parametrize(
    ("table", "where", "words"),
    [
        ("port = 70000", ("web", "port"), "less than or equal to 65535"),
        ("port = -1", ("web", "port"), "greater than or equal to 0"),
        ('enabled = "maybe"', ("web", "enabled"), "valid boolean"),
        ('host = ""', ("web", "host"), "expected a host name or an IP address"),
        ('host = "http://x"', ("web", "host"), "expected a host name or an IP address"),
        ("prot = 8080", ("web", "prot"), "Extra inputs are not permitted"),
        ('commit_url = "https://x/commit"', ("web", "commit_url"), "with {sha} where the commit"),
        ('commit_url = "javascript:{sha}"', ("web", "commit_url"), "expected an http(s) URL"),
    ],
)
def test_a_bad_web_setting_is_refused_naming_it(
    config: Path, table: str, where: tuple[str, ...], words: str
) -> None:
    config.write_text(f"[web]\n{table}\n")
    with pytest.raises(ValidationError) as refused:
        Settings()
    [problem] = refused.value.errors()
    assert problem["loc"] == where and words in problem["msg"]


def test_the_sample_guild_serves_no_board_unless_asked() -> None:
    assert sample_settings("sqlite+aiosqlite://").web.enabled is False
    asked = sample_settings("sqlite+aiosqlite://", web={"port": 0})
    assert asked.web == WebSettings(enabled=True, port=0)


def test_without_shard_settings_the_bot_is_one_process(config: Path) -> None:
    config.write_text("")
    assert Settings().shards is None


def test_the_shard_settings_from_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text("")
    monkeypatch.setenv("CONDUCTOR_SHARD_COUNT", "4")
    assert Settings().shards == (0, 1, 2, 3)  # no ids: every shard
    monkeypatch.setenv("CONDUCTOR_SHARD_IDS", "3, 1")
    monkeypatch.setenv("CONDUCTOR_SHARD_LEASE_SECONDS", "2.5")
    settings = Settings()
    assert settings.shards == (1, 3) and settings.shard_lease_seconds == 2.5
    config.write_text("shard_count = 2\nshard_ids = [1]\n")
    monkeypatch.delenv("CONDUCTOR_SHARD_COUNT")
    monkeypatch.delenv("CONDUCTOR_SHARD_IDS")
    assert Settings().shards == (1,)


@pytest.mark.parametrize(
    ("count", "ids", "says"),
    [
        (None, "0", "needs CONDUCTOR_SHARD_COUNT"),
        ("2", "2", "shards are 0 to 1 with 2 shards, got [2]"),
        ("2", "-1,0", "got [-1]"),
        ("2", "1,1", "names a shard twice"),
        ("2", "one", "valid integer"),
        ("0", None, "greater than or equal to 1"),
    ],
)
def test_shard_settings_that_cannot_work_are_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, count: str | None, ids: str | None, says: str
) -> None:
    config.write_text("")
    if count is not None:
        monkeypatch.setenv("CONDUCTOR_SHARD_COUNT", count)
    if ids is not None:
        monkeypatch.setenv("CONDUCTOR_SHARD_IDS", ids)
    with pytest.raises(ValidationError, match=r"(?s)shard.*" + re.escape(says)):
        Settings()
