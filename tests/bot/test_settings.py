"""The ``[web]`` table: its defaults, the file's values, and ``CONDUCTOR_WEB_*`` over them
(the faults are stopped at start: ``tests/cli/test_cli.py``)."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize(
    ("table", "where", "words"),
    [
        ("port = 70000", ("web", "port"), "less than or equal to 65535"),
        ("port = -1", ("web", "port"), "greater than or equal to 0"),
        ('enabled = "maybe"', ("web", "enabled"), "valid boolean"),
        ('host = ""', ("web", "host"), "expected a host name or an IP address"),
        ('host = "http://x"', ("web", "host"), "expected a host name or an IP address"),
        ("prot = 8080", ("web", "prot"), "Extra inputs are not permitted"),
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
